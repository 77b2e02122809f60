//! Bursts: the export queues are bounded by bytes, absorb a burst of 20,000 requests served on
//! one thread, and when they do overflow, error and slow spans and WARN+ records are the last to
//! go — never while an ordinary item could go instead.
#![cfg(feature = "axum")]

mod support;

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use paytrace::testing::proto::common::v1::any_value::Value as AnyValue;
use paytrace::testing::{Fault, ReceivedSpan, TestCollector};
use paytrace::{Config, LogFormat, Signal, Telemetry};
use support::WAIT;

/// Defaults but for the collector and stdout: the queue settings under test are the defaults.
fn defaults(collector: &TestCollector) -> Config {
    Config::new()
        .with_endpoint(collector.endpoint())
        .with_service_name("burst-test")
        .with_install_subscriber(false)
        .with_log_format(LogFormat::Off)
}

/// `/orders/{n}`: 500 for every 20th order, slow (past a 50 ms threshold) for every 100th + 1;
/// one INFO record per request and one ERROR record per failure.
fn app(telemetry: &Telemetry) -> Router {
    Router::new()
        .route(
            "/orders/{n}",
            get(|Path(n): Path<u32>| async move {
                tracing::info!(order = n, "order queried");
                if n % 20 == 0 {
                    tracing::error!(order = n, "order lookup failed");
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                if n % 100 == 1 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
                StatusCode::OK
            }),
        )
        .layer(
            telemetry
                .http_layer()
                .with_slow_threshold(Duration::from_millis(50)),
        )
}

async fn flush(telemetry: Telemetry) -> Telemetry {
    tokio::task::spawn_blocking(move || {
        let _ = telemetry.force_flush();
        telemetry
    })
    .await
    .unwrap()
}

/// A current-thread runtime serves the burst as fast as it can; the export thread gets the core
/// only when the scheduler gives it one.
#[tokio::test]
async fn a_burst_of_twenty_thousand_requests_on_one_thread_loses_nothing() {
    const REQUESTS: u32 = 20_000;
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(defaults(&collector)).unwrap();
    let app = Router::new()
        .route("/orders/{n}", get(|| async { "ok" }))
        .layer(telemetry.http_layer());
    support::get_orders(&app, REQUESTS).await;
    let telemetry = flush(telemetry).await;

    let spans = collector.wait_for_spans(REQUESTS as usize, WAIT).await;
    assert_eq!(spans.len(), REQUESTS as usize);
    let traces = telemetry.exporter_health().get(Signal::Traces).clone();
    assert_eq!((traces.exported, traces.dropped), (u64::from(REQUESTS), 0));
    assert!(traces.peak_queued_bytes > 0);
    assert!(
        traces.peak_queued_bytes <= 16 * 1024 * 1024,
        "the queue held {} bytes",
        traces.peak_queued_bytes
    );
    assert_eq!(
        traces.queued_bytes, 0,
        "drained: the byte gauge is back at 0"
    );
    assert!(telemetry
        .prometheus_text()
        .contains(r#"paytrace_exporter_queue_bytes{signal="traces"} 0"#));
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test]
async fn a_full_queue_drops_ordinary_spans_and_keeps_every_error_and_slow_one() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        defaults(&collector)
            .with_span_queue_bytes(160 * 1024)
            .with_span_schedule_delay(Duration::from_millis(50)),
    )
    .unwrap();
    let app = app(&telemetry);
    // Every export waits a second: the burst overflows the small queue meanwhile.
    collector.set_fault(Fault::Delay(Duration::from_secs(1)));
    support::get_orders(&app, 2_000).await;
    collector.set_fault(Fault::None);
    let telemetry = flush(telemetry).await;

    let spans = collector.spans();
    let attr = |s: &ReceivedSpan, key: &str| s.attr(key).and_then(|v| v.value.clone());
    let errors = spans
        .iter()
        .filter(|s| attr(s, "http.response.status_code") == Some(AnyValue::IntValue(500)))
        .count();
    let slow = spans
        .iter()
        .filter(|s| attr(s, "paytrace.slow") == Some(AnyValue::BoolValue(true)))
        .count();
    assert_eq!(errors, 100, "every 5xx span arrived");
    assert!(slow >= 20, "every slow span arrived: {slow}");
    let traces = telemetry.exporter_health().get(Signal::Traces).clone();
    assert!(traces.dropped > 0, "the burst did overflow: {traces:?}");
    assert_eq!(traces.dropped_priority, 0, "{traces:?}");
    assert!(traces.peak_queued_bytes <= 160 * 1024, "{traces:?}");
    let text = telemetry.prometheus_text();
    assert!(
        text.contains(
            r#"paytrace_exporter_items_dropped_total{class="priority",signal="traces"} 0"#
        ),
        "{text}"
    );
    assert!(
        !text.contains(
            r#"paytrace_exporter_items_dropped_total{class="ordinary",signal="traces"} 0"#
        ),
        "{text}"
    );
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test]
async fn a_full_log_queue_keeps_every_error_record() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        defaults(&collector)
            .with_log_queue_bytes(64 * 1024)
            .with_log_schedule_delay(Duration::from_millis(50)),
    )
    .unwrap();
    let _subscriber = tracing::subscriber::set_default(telemetry.subscriber());
    let app = app(&telemetry);
    collector.set_fault(Fault::Delay(Duration::from_secs(1)));
    support::get_orders(&app, 2_000).await;
    collector.set_fault(Fault::None);
    let telemetry = flush(telemetry).await;

    let records = collector.log_records();
    let errors = records
        .iter()
        .filter(|r| {
            r.severity_text() == "ERROR" && r.body_str().as_deref() == Some("order lookup failed")
        })
        .count();
    assert_eq!(errors, 100, "every ERROR record arrived");
    let logs = telemetry.exporter_health().get(Signal::Logs).clone();
    assert!(logs.dropped > 0, "the burst did overflow: {logs:?}");
    assert_eq!(logs.dropped_priority, 0, "{logs:?}");
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}
