//! The wrong OTLP protocol is diagnosed, not left as a silent failure: gRPC sent to an OTLP/HTTP
//! (HTTP/1.1) receiver and OTLP/HTTP sent to a gRPC-only receiver each give exactly one WARN
//! naming `OTEL_EXPORTER_OTLP_PROTOCOL`, and the health view says so. Its own test binary: the
//! WARN comes from the export thread, so a process-wide subscriber catches it.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use paytrace::testing::TestCollector;
use paytrace::{Protocol, Signal, Telemetry};
use support::{config, Capture};

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.subscriber()).expect("first");
        capture
    })
}

/// Export a few batches of every signal through `telemetry`, then read what was said.
async fn diagnose(telemetry: Telemetry, endpoint: &str) -> (Vec<support::Captured>, String) {
    for i in 0..3 {
        let mut span = telemetry.tracer().start(format!("s{i}"));
        span.end();
        let _ = telemetry.force_flush();
    }
    let traces = telemetry.exporter_health().get(Signal::Traces).clone();
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    let warnings = capture()
        .with_target("paytrace::config")
        .into_iter()
        .filter(|e| e.field("endpoint").is_some_and(|e| e.starts_with(endpoint)))
        .collect();
    (warnings, traces.last_error.unwrap_or_default())
}

/// Export with `protocol` to `collector` (which speaks the other one) and check the one WARN
/// names the fix, and the health view says so.
async fn diagnosed_once(protocol: Protocol, collector: TestCollector, fix: &str) {
    capture();
    let telemetry = Telemetry::start(
        config(&collector)
            .with_protocol(protocol)
            .with_retry(false)
            .with_export_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let (warnings, last_error) = diagnose(telemetry, &collector.endpoint()).await;
    assert_eq!(warnings.len(), 1, "{warnings:#?} {last_error}");
    let message = warnings[0].field("message").unwrap_or_default();
    assert!(message.contains(fix), "{message}");
    assert!(last_error.contains("wrong protocol?"), "{last_error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_to_an_http_receiver_is_diagnosed_once() {
    let collector = TestCollector::start_http().await.unwrap();
    diagnosed_once(
        Protocol::Grpc,
        collector,
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_to_a_grpc_receiver_is_diagnosed_once() {
    let collector = TestCollector::start().await.unwrap();
    diagnosed_once(
        Protocol::HttpProtobuf,
        collector,
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
    )
    .await;
}
