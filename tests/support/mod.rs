//! Shared helpers for paytrace's integration tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::time::Duration;

use paytrace::testing::TestCollector;
use paytrace::{Config, LogFormat};

/// Generous bound for waiting on data that should arrive within milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// A config exporting to `collector` quickly: short batching delays, no global subscriber, no
/// stdout noise.
pub fn config(collector: &TestCollector) -> Config {
    Config::new()
        .with_endpoint(collector.endpoint())
        .with_service_name("paytrace-test")
        .with_service_version("1.2.3")
        .with_environment("test")
        .with_span_schedule_delay(Duration::from_millis(50))
        .with_log_schedule_delay(Duration::from_millis(50))
        .with_metric_interval(Duration::from_millis(200))
        .with_install_subscriber(false)
        .with_log_format(LogFormat::Off)
        .with_log_filter("info")
}

/// An endpoint where nothing listens: a port just bound and released.
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
