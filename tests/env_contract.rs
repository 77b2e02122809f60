//! The `OTEL_*` variables that change behaviour, observed end to end through the test collector:
//! temporality, attribute/event/link limits, and the console exporter (a child process of
//! this test binary, whose stdout the test reads).

mod support;

use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry::KeyValue;
use paytrace::testing::proto::metrics::v1::metric::Data;
use paytrace::testing::TestCollector;
use paytrace::Telemetry;
use support::WAIT;

fn from_env(collector: &TestCollector, vars: &[(&str, &str)]) -> paytrace::Config {
    paytrace::Config::from_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .with_endpoint(collector.endpoint())
        .with_install_subscriber(false)
        .with_log_format(paytrace::LogFormat::Off)
        .with_span_schedule_delay(Duration::from_millis(50))
        .with_log_schedule_delay(Duration::from_millis(50))
        .with_metric_interval(Duration::from_millis(200))
}

async fn shutdown(telemetry: Telemetry) {
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_temporality_reports_what_changed() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(from_env(
        &collector,
        &[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")],
    ))
    .unwrap();
    let pool = paytrace::metrics::OrderPoolMetrics::new(&telemetry).unwrap();
    for _ in 0..3 {
        pool.start_processing().success();
    }
    // Every point of the counter is a delta; over all pushes they add up to 3.
    let total = |c: &TestCollector| -> (f64, bool) {
        let mut total = 0.0;
        let mut all_delta = true;
        for m in c
            .metrics()
            .iter()
            .filter(|m| m.name() == "order.pool.processed")
        {
            if let Some(Data::Sum(s)) = &m.metric.data {
                all_delta &= s.aggregation_temporality == 1;
                total += m.sum_value(&[]).unwrap_or(0.0);
            }
        }
        (total, all_delta)
    };
    assert!(collector.wait_until(WAIT, |c| total(c).0 >= 3.0).await);
    pool.start_processing().success();
    assert!(collector.wait_until(WAIT, |c| total(c).0 >= 4.0).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sum, all_delta) = total(&collector);
    assert!(all_delta, "aggregation temporality DELTA on every point");
    assert_eq!(
        sum, 4.0,
        "deltas add up to the count, not cumulative repeats"
    );
    shutdown(telemetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_truncate_spans_events_links_and_log_records() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(from_env(
        &collector,
        &[
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "2"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "1"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "1"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "2"),
        ],
    ))
    .unwrap();
    let tracer = telemetry.tracer();
    let linked = tracer.start("linked");
    let link_cx = linked.span_context().clone();
    let mut span = tracer
        .span_builder("limited")
        .with_links(vec![
            opentelemetry::trace::Link::with_context(link_cx.clone()),
            opentelemetry::trace::Link::with_context(link_cx),
        ])
        .start(tracer);
    for i in 0..10 {
        span.set_attribute(KeyValue::new(format!("a{i}"), "0123456789abcdef"));
    }
    for i in 0..5 {
        span.add_event(
            format!("e{i}"),
            vec![KeyValue::new("x", 1), KeyValue::new("y", 2)],
        );
    }
    span.end();
    drop(linked);
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        tracing::info!(a = 1, b = 2, c = 3, d = 4, "many fields");
    });
    let span = collector
        .wait_for_span("limited", WAIT)
        .await
        .expect("span");
    assert_eq!(span.span.attributes.len(), 3);
    assert_eq!(span.span.dropped_attributes_count, 7);
    assert_eq!(
        span.attr_str("a0").as_deref(),
        Some("01234567"),
        "values cut at 8 bytes"
    );
    assert_eq!(span.span.events.len(), 2);
    assert!(span.span.events.iter().all(|e| e.attributes.len() == 1));
    assert_eq!(span.span.links.len(), 1);
    let logs = collector.wait_for_logs(1, WAIT).await;
    let record = logs
        .iter()
        .find(|l| l.body_str().as_deref() == Some("many fields"))
        .unwrap();
    assert_eq!(
        record.record.attributes.len(),
        2,
        "{:?}",
        record.record.attributes
    );
    assert!(record.record.dropped_attributes_count >= 2);
    shutdown(telemetry).await;
}

/// The child half of `console_exporter_writes_readable_lines`: exports to the console only.
#[test]
fn console_child() {
    if std::env::var("PAYTRACE_CONSOLE_CHILD").is_err() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let telemetry = Telemetry::start(
            paytrace::Config::from_env_vars([
                ("OTEL_TRACES_EXPORTER", "console"),
                ("OTEL_LOGS_EXPORTER", "console"),
                ("OTEL_METRICS_EXPORTER", "none"),
            ])
            .with_endpoint("http://127.0.0.1:9")
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off),
        )
        .unwrap();
        let mut span = telemetry.tracer().start("console-span");
        span.set_attribute(KeyValue::new("card", "4111111111111111"));
        span.end();
        tracing::subscriber::with_default(telemetry.subscriber(), || {
            tracing::warn!(order_id = 9, "console-record");
        });
        shutdown(telemetry).await;
        // The console writer is lossy and asynchronous: give it a tick to write.
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
}

#[test]
fn console_exporter_writes_readable_lines() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PAYTRACE_CONSOLE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let span = stdout
        .lines()
        .find(|l| l.contains("span \"console-span\""))
        .unwrap_or_else(|| panic!("no span line in:\n{stdout}"));
    assert!(
        span.contains("trace_id=") && span.contains("card="),
        "{span}"
    );
    assert!(
        !stdout.contains("4111111111111111"),
        "redacted on the console too:\n{stdout}"
    );
    let record = stdout
        .lines()
        .find(|l| l.contains("console-record"))
        .unwrap_or_else(|| panic!("no log line in:\n{stdout}"));
    assert!(
        record.contains("WARN") && record.contains("order_id=\"9\""),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplar_filter_always_off_writes_no_exemplar() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    support::install_propagator();
    let scrape = |off: bool| async move {
        let collector = TestCollector::start().await.unwrap();
        let vars: &[(&str, &str)] = if off {
            &[("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")]
        } else {
            &[]
        };
        let telemetry = Telemetry::start(from_env(&collector, vars)).unwrap();
        let app = axum::Router::new()
            .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
            .layer(telemetry.http_layer())
            .route_service("/metrics", telemetry.metrics_service());
        support::get_orders(&app, 20).await;
        let response = app
            .oneshot(
                http::Request::get("/metrics")
                    .header("accept", "application/openmetrics-text;version=1.0.0")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        shutdown(telemetry).await;
        String::from_utf8(body.to_vec()).unwrap()
    };
    assert!(
        scrape(false).await.contains("# {trace_id="),
        "exemplars by default"
    );
    assert!(
        !scrape(true).await.contains("# {trace_id="),
        "none with always_off"
    );
}
