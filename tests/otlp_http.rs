//! OTLP/HTTP (`http/protobuf`) with gzip to the test collector's HTTP face: all three signals
//! arrive, retries honour the collector's answers, and `OTEL_*_EXPORTER=none` keeps a signal
//! home while the others leave.

mod support;

use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use paytrace::testing::{Fault, TestCollector};
use paytrace::{Exporter, HealthState, Protocol, Signal, Telemetry};
use support::{config, WAIT};

async fn shutdown(telemetry: Telemetry) {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}

fn emit(telemetry: &Telemetry) {
    let mut span = telemetry.tracer().start("charge");
    span.end();
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        tracing::info!(order_id = 7, "charged");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_signals_arrive_over_http_protobuf_with_gzip() {
    let collector = TestCollector::start_http().await.unwrap();
    let telemetry = Telemetry::start(config(&collector).with_protocol(Protocol::HttpProtobuf))
        .expect("telemetry");
    emit(&telemetry);
    assert!(collector.wait_for_span("charge", WAIT).await.is_some());
    assert!(!collector.wait_for_logs(1, WAIT).await.is_empty());
    assert!(collector
        .wait_for_metric("paytrace.exporter.exports", WAIT)
        .await
        .is_some());
    assert!(
        collector
            .encodings()
            .iter()
            .all(|e| e.as_deref() == Some("gzip")),
        "{:?}",
        collector.encodings()
    );
    let ct: Vec<String> = collector
        .trace_requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(ct, ["application/x-protobuf"]);
    telemetry.force_flush().unwrap();
    let health = telemetry.exporter_health();
    for s in health.signals() {
        assert_eq!(s.state, HealthState::Healthy, "{s:?}");
        assert!(s.exported > 0, "{s:?}");
    }
    shutdown(telemetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_collector_is_retried_until_it_accepts() {
    let collector = TestCollector::start_http().await.unwrap();
    collector.set_fault(Fault::Refuse);
    let telemetry = Telemetry::start(
        config(&collector)
            .with_protocol(Protocol::HttpProtobuf)
            .with_export_timeout(Duration::from_secs(8)),
    )
    .unwrap();
    let mut span = telemetry.tracer().start("retried");
    span.end();
    // 503s are retryable: the span waits in the retry loop, then arrives.
    assert!(
        collector
            .wait_until(WAIT, |c| c.trace_requests().len() >= 2)
            .await
    );
    collector.set_fault(Fault::None);
    assert!(
        collector
            .wait_until(WAIT, |c| c
                .trace_requests()
                .iter()
                .any(|r| r.fault == Fault::None))
            .await
    );
    assert!(collector.wait_for_span("retried", WAIT).await.is_some());
    shutdown(telemetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_export_is_not_retried_and_says_why() {
    let collector = TestCollector::start_http().await.unwrap();
    collector.set_fault(Fault::Reject(paytrace::testing::Code::InvalidArgument));
    let telemetry =
        Telemetry::start(config(&collector).with_protocol(Protocol::HttpProtobuf)).unwrap();
    let mut span = telemetry.tracer().start("rejected");
    span.end();
    let _ = telemetry.force_flush();
    assert_eq!(collector.trace_requests().len(), 1, "400 is final");
    let traces = telemetry.exporter_health().get(Signal::Traces).clone();
    let error = traces.last_error.unwrap_or_default();
    assert!(
        error.contains("400") && error.contains("Fault::Reject"),
        "{error}"
    );
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_none_keeps_that_signal_home() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        paytrace::Config::from_env_vars([("OTEL_TRACES_EXPORTER", "none")])
            .with_endpoint(collector.endpoint())
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_log_schedule_delay(Duration::from_millis(50))
            .with_metric_interval(Duration::from_millis(200)),
    )
    .unwrap();
    emit(&telemetry);
    assert!(!collector.wait_for_logs(1, WAIT).await.is_empty());
    assert!(collector
        .wait_for_metric("paytrace.exporter.exports", WAIT)
        .await
        .is_some());
    telemetry.force_flush().unwrap();
    assert!(
        collector.trace_requests().is_empty(),
        "no trace export at all"
    );
    shutdown(telemetry).await;

    // And in code: metrics off, traces on.
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector).with_exporter(Signal::Metrics, Exporter::None))
            .unwrap();
    emit(&telemetry);
    assert!(collector.wait_for_span("charge", WAIT).await.is_some());
    tokio::time::sleep(Duration::from_millis(600)).await; // three metric intervals
    telemetry.force_flush().unwrap();
    assert!(collector.metric_requests().is_empty());
    shutdown(telemetry).await;
}
