//! Fault injection: the collector fails in every way; the caller never notices, the operator
//! does (watchdog records, `exporter_health()`, `paytrace_exporter_*` metrics), and shutdown
//! keeps its bound. Watchdog windows run on tokio's paused clock.

mod support;

use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use paytrace::testing::Fault;
use paytrace::{HealthState, Signal, Telemetry};
use support::{closed_endpoint, collector_elsewhere, config, Capture};
use tracing_subscriber::layer::SubscriberExt as _;

const WINDOW: Duration = Duration::from_secs(30);

fn spans(telemetry: &Telemetry, n: usize) {
    for i in 0..n {
        let mut span = telemetry.tracer().start("charge");
        span.set_attribute(opentelemetry::KeyValue::new("i", i as i64));
        span.end();
    }
}

/// `tasks` concurrent clients, each sending `per_task` requests through a traced axum router
/// whose handler logs; returns how many got a 200.
async fn router_load(telemetry: &Telemetry, tasks: usize, per_task: usize) -> usize {
    use tower::ServiceExt as _;
    let app = axum::Router::new()
        .route(
            "/orders/{id}",
            axum::routing::get(|| async {
                tracing::info!(order_id = 7, "order queried");
                "ok"
            }),
        )
        .layer(telemetry.http_layer());
    use tracing::instrument::WithSubscriber as _;
    let dispatch = tracing::Dispatch::new(telemetry.subscriber());
    let mut handles = Vec::new();
    for t in 0..tasks {
        let app = app.clone();
        let client = async move {
            let mut ok = 0;
            for i in 0..per_task {
                let request = http::Request::get(format!("/orders/{}", t * per_task + i))
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                if response.status() == 200 {
                    ok += 1;
                }
            }
            ok
        };
        // The handlers' log records go through paytrace's layers during every poll.
        handles.push(tokio::spawn(client.with_subscriber(dispatch.clone())));
    }
    let mut ok = 0;
    for handle in handles {
        ok += handle.await.expect("no client task panicked");
    }
    ok
}

/// Let the watchdog's window elapse on the paused clock: sleeping auto-advances the clock to
/// each pending timer in order, so the watchdog's tick (due first) runs before this returns.
async fn next_window() {
    tokio::time::sleep(WINDOW + Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
}

fn warnings(capture: &Capture, signal: Signal) -> Vec<support::Captured> {
    capture
        .with_target("paytrace::watchdog")
        .into_iter()
        .filter(|e| e.level == tracing::Level::WARN && e.field("signal") == Some(signal.as_str()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn refusing_collector_warns_once_per_window_with_the_count_then_recovers() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Refuse);
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    // Batches of one, flushed by hand; a short budget makes each refused export fail after a
    // retry or two, and still leaves a busy machine room for the successful ones.
    let telemetry = Telemetry::start(
        config(&collector)
            .with_span_batch_size(1)
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_export_timeout(Duration::from_millis(250)),
    )
    .unwrap();

    spans(&telemetry, 15);
    assert!(
        telemetry.force_flush().is_err(),
        "a refused export is reported"
    );
    next_window().await;
    let warns = warnings(&capture, Signal::Traces);
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert_eq!(warns[0].field("failures"), Some("15"));
    assert!(
        warns[0]
            .field("last_error")
            .unwrap()
            .contains("Unavailable"),
        "{warns:?}"
    );
    let health = telemetry.exporter_health();
    let traces = health.get(Signal::Traces);
    assert_eq!(traces.state, HealthState::Failing);
    assert_eq!(
        (traces.export_failures, traces.failed, traces.exported),
        (15, 15, 0)
    );
    assert_eq!(health.get(Signal::Logs).state, HealthState::Healthy);

    // Second failing window: one more warning, with this window's count.
    spans(&telemetry, 12);
    let _ = telemetry.force_flush();
    next_window().await;
    let warns = warnings(&capture, Signal::Traces);
    assert_eq!(warns.len(), 2);
    assert_eq!(warns[1].field("failures"), Some("12"));

    // Recovery: one INFO record, health back to healthy, and the data flows.
    collector.set_fault(Fault::None);
    spans(&telemetry, 3);
    telemetry.force_flush().unwrap();
    next_window().await;
    let infos: Vec<_> = capture
        .with_target("paytrace::watchdog")
        .into_iter()
        .filter(|e| e.level == tracing::Level::INFO && e.field("signal") == Some("traces"))
        .collect();
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert_eq!(
        telemetry.exporter_health().get(Signal::Traces).state,
        HealthState::Healthy
    );
    assert_eq!(
        warnings(&capture, Signal::Traces).len(),
        2,
        "no warning once healthy"
    );
    let _ = telemetry.shutdown();
}

#[tokio::test(start_paused = true)]
async fn black_hole_collector_is_caught_by_the_stall_rule() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Hang);
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let telemetry = Telemetry::start(
        config(&collector)
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_export_timeout(Duration::from_millis(100))
            .with_shutdown_timeout(Duration::from_secs(2))
            .with_stale_windows(2),
    )
    .unwrap();
    // Two slow failures per window: far below the count threshold of 10.
    for window in 1..=2 {
        spans(&telemetry, 1);
        let _ = telemetry.force_flush();
        spans(&telemetry, 1);
        let _ = telemetry.force_flush();
        next_window().await;
        let warns = warnings(&capture, Signal::Traces);
        if window == 1 {
            assert!(warns.is_empty(), "{warns:?}");
            // Not warned yet, but nothing ever got through: failing, not degraded.
            assert_eq!(
                telemetry.exporter_health().get(Signal::Traces).state,
                HealthState::Failing
            );
        } else {
            assert_eq!(warns.len(), 1, "{warns:?}");
            assert_eq!(warns[0].field("windows"), Some("2"));
            assert_eq!(
                telemetry.exporter_health().get(Signal::Traces).state,
                HealthState::Failing
            );
        }
    }
    let text = telemetry.prometheus_text();
    assert!(
        text.contains(r#"paytrace_exporter_state{signal="traces"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"paytrace_exporter_export_failures_total{signal="traces"} 4"#),
        "{text}"
    );
    let _ = telemetry.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_failing_from_the_first_refused_export_and_healthy_from_the_first_success() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Refuse);
    let telemetry = Telemetry::start(
        config(&collector)
            .with_span_batch_size(1)
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_export_timeout(Duration::from_millis(250)),
    )
    .unwrap();
    // Before any export: nothing to say yet.
    assert!(telemetry.exporter_health().is_healthy());

    spans(&telemetry, 1);
    assert!(telemetry.force_flush().is_err());
    // No watchdog window has closed: the first refused export is enough.
    let health = telemetry.exporter_health();
    assert_eq!(health.get(Signal::Traces).state, HealthState::Failing);
    assert!(!health.is_healthy());
    assert!(
        telemetry
            .prometheus_text()
            .contains(r#"paytrace_exporter_state{signal="traces"} 2"#),
        "the state gauge says the same"
    );

    collector.set_fault(Fault::None);
    spans(&telemetry, 1);
    telemetry.force_flush().unwrap();
    assert_eq!(
        telemetry.exporter_health().get(Signal::Traces).state,
        HealthState::Healthy
    );
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_named_as_no_collector() {
    let endpoint = closed_endpoint();
    let telemetry = Telemetry::start(
        paytrace::Config::new()
            .with_endpoint(endpoint.clone())
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_export_timeout(Duration::from_millis(300))
            .with_shutdown_timeout(Duration::from_secs(3)),
    )
    .unwrap();
    spans(&telemetry, 1);
    let error = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect_err("nothing was exported");
    assert!(
        error
            .to_string()
            .contains(&format!("no collector at {endpoint}")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_collector_never_blocks_the_caller_and_shutdown_keeps_its_bound() {
    let telemetry = std::sync::Arc::new(
        Telemetry::start(
            paytrace::Config::new()
                .with_endpoint(closed_endpoint())
                .with_install_subscriber(false)
                .with_log_format(paytrace::LogFormat::Off)
                .with_span_schedule_delay(Duration::from_millis(10))
                .with_span_queue_bytes(256 * 1024)
                .with_shutdown_timeout(Duration::from_millis(500)),
        )
        .unwrap(),
    );
    assert_eq!(
        router_load(&telemetry, 8, 2_000).await,
        16_000,
        "every request succeeds"
    );
    let health = telemetry.exporter_health();
    let traces = health.get(Signal::Traces);
    // 16,000 request spans against a 256 KiB queue and a dead collector: most are dropped, none
    // blocks.
    assert!(traces.dropped > 0, "{traces:?}");
    assert_eq!(traces.exported, 0);
    let telemetry = std::sync::Arc::try_unwrap(telemetry).expect("sole owner");
    assert!(telemetry.shutdown().is_err(), "shutdown tells the truth");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_past_the_export_timeout_fails_and_is_counted() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Delay(Duration::from_secs(3)));
    let telemetry = Telemetry::start(
        config(&collector)
            .with_export_timeout(Duration::from_millis(200))
            .with_shutdown_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    spans(&telemetry, 5);
    let err = telemetry.force_flush().unwrap_err();
    assert!(matches!(err, paytrace::Error::ExportFailed { .. }), "{err}");
    let traces = telemetry.exporter_health().get(Signal::Traces).clone();
    assert_eq!(traces.failed, 5);
    let error = traces.last_error.unwrap();
    assert!(
        error.contains("timed out") || error.contains("Timeout"),
        "{error}"
    );
    collector.set_fault(Fault::None);
    spans(&telemetry, 2);
    telemetry.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_and_drops_are_exact_while_the_collector_hangs() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Hang);
    let queue = 512;
    let telemetry = Telemetry::start(
        config(&collector)
            .with_span_queue_size(queue)
            .with_span_batch_size(queue)
            // Only a full batch wakes the exporter, so the first batch leaves whole (a timer
            // tick mid-way would take part of it and leave the rest queued).
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_export_timeout(Duration::from_secs(30))
            .with_shutdown_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    // Let the first batch reach the collector and hang there.
    spans(&telemetry, queue);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = support::rss_bytes();
    let produced = 200_000;
    spans(&telemetry, produced);
    let grown = support::rss_bytes().saturating_sub(before);
    let dropped = telemetry.exporter_health().get(Signal::Traces).dropped;
    // Exactly what did not fit in the queue is dropped: the queue holds `queue` items.
    assert_eq!(dropped, produced as u64 - queue as u64);
    assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
    let _ = telemetry.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_collector_does_not_slow_the_router_and_shutdown_keeps_its_bound() {
    let (collector, _rt) = collector_elsewhere();
    collector.set_fault(Fault::Hang);
    let telemetry = Telemetry::start(
        config(&collector)
            .with_export_timeout(Duration::from_secs(30))
            .with_shutdown_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    assert_eq!(
        router_load(&telemetry, 4, 1_000).await,
        4_000,
        "every request succeeds"
    );
    let health = telemetry.exporter_health();
    assert_eq!(health.get(Signal::Traces).exported, 0);
    let err = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, paytrace::Error::Timeout { .. }), "{err}");
}

/// A collector that accepts each request but rejects one item of it (OTLP partial success):
/// the rejected items are counted apart from the exported ones, in the health view and in
/// `paytrace_exporter_items_rejected_total`, over both transports (each answering in gzip).
async fn partial_success_is_counted(collector: paytrace::testing::TestCollector, http: bool) {
    collector.set_fault(Fault::PartialSuccess(1));
    let mut config = config(&collector)
        .with_span_batch_size(4)
        .with_span_schedule_delay(Duration::from_secs(3600));
    if http {
        config = config.with_protocol(paytrace::Protocol::HttpProtobuf);
    }
    let telemetry = Telemetry::start(config).unwrap();
    spans(&telemetry, 12);
    telemetry.force_flush().unwrap();
    let health = telemetry.exporter_health();
    let traces = health.get(Signal::Traces);
    assert!(
        traces.rejected >= 3,
        "one per request of at most 4: {traces:?}"
    );
    assert_eq!(traces.exported + traces.rejected, 12, "{traces:?}");
    assert_eq!(traces.failed, 0, "{traces:?}");
    assert!(
        telemetry.prometheus_text().contains(&format!(
            r#"paytrace_exporter_items_rejected_total{{signal="traces"}} {}"#,
            traces.rejected
        )),
        "the counter says the same"
    );
    assert_eq!(collector.spans().len(), 12, "every span was sent");
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_is_counted_as_rejected_over_grpc() {
    let collector = paytrace::testing::TestCollector::start().await.unwrap();
    partial_success_is_counted(collector, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_is_counted_as_rejected_over_http() {
    let collector = paytrace::testing::TestCollector::start_http()
        .await
        .unwrap();
    partial_success_is_counted(collector, true).await;
}
