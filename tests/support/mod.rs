//! Shared helpers for paytrace's integration tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::time::Duration;

mod http;
pub mod ledger;
pub mod secrets;
#[allow(unused_imports)] // not every test binary uses the HTTP helpers
pub use http::*;

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

/// This test binary, set to run its test `name` alone (output not captured) without `RUST_LOG`:
/// for tests that read a child process's stdout.
pub fn child_test(name: &str) -> std::process::Command {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args(["--exact", name, "--nocapture"])
        .env_remove("RUST_LOG");
    child
}

/// Runs the child, asserts it passed, and returns its stdout.
pub fn child_stdout(mut child: std::process::Command) -> String {
    let output = child.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The JSON objects in `stdout`, each the rest of a line from `start` on: the test harness
/// may write its own text before a record on the same line.
pub fn json_lines(stdout: &str, start: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| l.find(start).map(|i| &l[i..]))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {l}: {e}")))
        .collect()
}

/// An endpoint where nothing listens: a port just bound and released.
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A `tracing` event as captured by [`Capture`].
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: tracing::Level,
    pub target: String,
    pub fields: std::collections::BTreeMap<String, String>,
    /// The trace id of the OpenTelemetry context current when the event fired (what log
    /// bridges stamp on the record); all zeros without one.
    pub current_trace_id: String,
}

impl Captured {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A layer that records every event, for `tracing::subscriber::set_default` in tests.
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<Captured>>>);

impl Capture {
    pub fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    /// A subscriber recording into `self`, for a scoped `set_default`.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        use tracing_subscriber::layer::SubscriberExt as _;
        tracing_subscriber::registry().with(self.clone())
    }

    pub fn with_target(&self, target: &str) -> Vec<Captured> {
        self.events()
            .into_iter()
            .filter(|e| e.target == target)
            .collect()
    }
}

struct Visitor<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for Visitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _cx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = std::collections::BTreeMap::new();
        event.record(&mut Visitor(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
            current_trace_id: {
                use opentelemetry::trace::TraceContextExt as _;
                opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .trace_id()
                    .to_string()
            },
        });
    }
}

/// Keeps [`collector_elsewhere`]'s runtime alive; dropping it stops that runtime on its own
/// thread (a runtime must not be dropped inside async code).
pub struct Elsewhere(Option<std::sync::mpsc::Sender<()>>);

impl Drop for Elsewhere {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// A collector served by its own runtime on its own threads, so a test may block its own
/// (possibly paused, current-thread) runtime without stalling the collector.
pub fn collector_elsewhere() -> (TestCollector, Elsewhere) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("collector runtime");
        let collector = rt.block_on(TestCollector::start()).expect("collector");
        ready_tx.send(collector).expect("test alive");
        // The worker thread serves the collector until the test drops its guard.
        let _ = stop_rx.recv();
    });
    let collector = ready_rx.recv().expect("collector started");
    (collector, Elsewhere(Some(stop_tx)))
}

/// Resident set size of this process in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A `MakeWriter` (via a closure returning clones) collecting written lines in memory.
#[derive(Clone, Default)]
pub struct Lines(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Everything written, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line parsed as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {l}: {e}")))
            .collect()
    }

    /// The first JSON line whose `message` is `message`.
    pub fn find(&self, message: &str) -> serde_json::Value {
        self.json()
            .into_iter()
            .find(|v| v["message"] == message)
            .unwrap_or_else(|| panic!("no {message}"))
    }

    /// Lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}
