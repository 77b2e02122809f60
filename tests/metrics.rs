//! One set of instruments, two ways out: the order pool's recordings show the same values in the
//! Prometheus text and in the OTLP points the collector receives; `/metrics` serves the text.

mod support;

use std::time::Duration;

use paytrace::metrics::OrderPoolMetrics;
use paytrace::testing::{PointValue, TestCollector};
use paytrace::Telemetry;
use support::{config, WAIT};
use tower::ServiceExt as _;

/// The value of an unlabelled sample line `name value` in Prometheus text.
fn sample(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix).map(str::trim))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {line_prefix} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_otlp_agree() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector).with_metric_interval(Duration::from_secs(3600)))
            .unwrap();
    let pool = OrderPoolMetrics::builder()
        .with_failure_reasons(["timeout"])
        .build(&telemetry)
        .unwrap();
    for seconds in [0.02, 0.2, 0.2, 3.0, 7.0] {
        pool.processed(seconds);
    }
    pool.failed("timeout", 12.0);
    pool.failed("never-declared", 0.5);
    pool.set_pool_size(42);
    pool.set_capacity(100);
    pool.observe_query(0.004);
    pool.query_failed();

    let text = telemetry.prometheus_text();
    // The final push happens at flush: no interval involved.
    let flush = tokio::task::spawn_blocking({
        let t = std::sync::Arc::new(telemetry);
        let t2 = t.clone();
        move || (t2.force_flush(), t)
    });
    let (flushed, telemetry) = flush.await.unwrap();
    flushed.unwrap();

    let processed = collector
        .wait_for_metric("order.pool.processed", WAIT)
        .await
        .expect("processed");
    assert_eq!(
        processed.sum_value(&[]),
        Some(sample(&text, "order_pool_processed_total "))
    );
    let failed = collector
        .wait_for_metric("order.pool.failed", WAIT)
        .await
        .unwrap();
    assert_eq!(failed.sum_value(&[("reason", "timeout")]), Some(1.0));
    assert_eq!(failed.sum_value(&[("reason", "other")]), Some(1.0));
    let size = collector
        .wait_for_metric("order.pool.size", WAIT)
        .await
        .unwrap();
    assert_eq!(
        size.gauge_value(&[]),
        Some(sample(&text, "order_pool_size "))
    );

    let duration = collector
        .wait_for_metric("order.pool.processing.duration", WAIT)
        .await
        .unwrap();
    assert_eq!(
        duration.histogram_count(&[]),
        Some(sample(&text, "order_pool_processing_seconds_count ") as u64)
    );
    let sum = duration.histogram_sum(&[]).unwrap();
    assert!((sum - sample(&text, "order_pool_processing_seconds_sum ")).abs() < 1e-9);
    // Per-bucket OTLP counts, summed up, reproduce every cumulative Prometheus bucket.
    let Some(point) = duration.points().into_iter().next() else {
        panic!("no point")
    };
    let PointValue::Histogram {
        bounds,
        bucket_counts,
        ..
    } = point.value
    else {
        panic!("not a histogram")
    };
    let mut cumulative = 0;
    for (bound, count) in bounds.iter().zip(&bucket_counts) {
        cumulative += count;
        let le = format!("order_pool_processing_seconds_bucket{{le=\"{bound}\"}} ");
        assert_eq!(cumulative as f64, sample(&text, &le), "bucket le={bound}");
    }
    assert_eq!(duration.metric.unit, "s");

    // Exporter health and process figures travel too.
    assert!(collector
        .wait_for_metric("process.memory.usage", WAIT)
        .await
        .is_some());
    let telemetry = std::sync::Arc::try_unwrap(telemetry).unwrap();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text() {
    let telemetry = Telemetry::start(paytrace::Config::disabled()).unwrap();
    let pool = OrderPoolMetrics::new(&telemetry).unwrap();
    pool.set_queue_length(9);
    telemetry
        .register_runtime_metrics(&tokio::runtime::Handle::current())
        .unwrap();
    let app = axum::Router::new().route_service("/metrics", telemetry.metrics_service());
    let response = app
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        paytrace::metrics::PROMETHEUS_CONTENT_TYPE
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for family in [
        "order_queue_length 9",
        "paytrace_exporter_state",
        "process_resident_memory_bytes",
        "tokio_workers",
    ] {
        assert!(text.contains(family), "{family} missing in\n{text}");
    }
    assert!(
        OrderPoolMetrics::new(&telemetry).is_err(),
        "registering twice is an error, not a panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_own_instrument_reaches_metrics_and_otlp() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector).with_metric_interval(Duration::from_secs(3600)))
            .unwrap();
    let refunds = paytrace::prometheus::IntCounterVec::new(
        paytrace::prometheus::Opts::new("refunds_total", "Refunds issued."),
        &["reason"],
    )
    .unwrap();
    telemetry
        .registry()
        .register(Box::new(refunds.clone()))
        .unwrap();
    refunds.with_label_values(&["duplicate"]).inc_by(3);
    assert!(telemetry
        .prometheus_text()
        .contains("refunds_total{reason=\"duplicate\"} 3"));
    let flushed = tokio::task::spawn_blocking(move || telemetry.force_flush().map(|()| telemetry));
    let _telemetry = flushed.await.unwrap().unwrap();
    let otlp = collector
        .wait_for_metric("refunds_total", WAIT)
        .await
        .expect("the instrument over OTLP");
    assert_eq!(otlp.sum_value(&[("reason", "duplicate")]), Some(3.0));
}
