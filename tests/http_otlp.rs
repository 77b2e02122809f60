//! End to end: the HTTP layer built from a real `Telemetry` exports its server spans over
//! OTLP/gRPC with the semantic-convention attributes, redacted; the slow-request WARN arrives as
//! a log record carrying the request's trace id; the RED metrics reach the collector through
//! the metrics bridge.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use paytrace::testing::{ReceivedSpan, TestCollector};
use tower::ServiceExt as _;

const WAIT: Duration = Duration::from_secs(10);

fn int_attr(span: &ReceivedSpan, key: &str) -> Option<i64> {
    span.span
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::IntValue(v) => Some(*v),
            _ => None,
        })
}

async fn telemetry(collector: &TestCollector) -> paytrace::Telemetry {
    paytrace::Telemetry::start(
        paytrace::Config::new()
            .with_endpoint(collector.endpoint())
            .with_service_name("http-otlp-test")
            .with_span_schedule_delay(Duration::from_millis(50))
            .with_log_schedule_delay(Duration::from_millis(50))
            .with_metric_interval(Duration::from_millis(200)),
    )
    .expect("telemetry")
}

fn install_propagator() {
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]))
    });
}

async fn shutdown(telemetry: paytrace::Telemetry) {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_arrive_with_semconv_attributes_redacted() {
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let telemetry = telemetry(&collector).await;
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(telemetry.http_layer());

    let req = Request::get("/orders/4111111111111111?card_number=4111111111111111&page=2")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("authorization", "Bearer sk_live_secret")
        .header("host", "shop.example")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    res.into_body().collect().await.unwrap();

    let span = collector
        .wait_for_span("GET /orders/{id}", WAIT)
        .await
        .expect("server span exported");
    assert_eq!(span.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.parent_span_id_hex(), "00f067aa0ba902b7");
    assert_eq!(
        span.span.kind,
        opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server as i32
    );
    assert_eq!(span.attr_str("http.request.method").as_deref(), Some("GET"));
    assert_eq!(span.attr_str("http.route").as_deref(), Some("/orders/{id}"));
    assert_eq!(
        span.attr_str("server.address").as_deref(),
        Some("shop.example")
    );
    assert_eq!(
        span.attr_str("paytrace.request_id").as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(int_attr(&span, "http.response.status_code"), Some(200));
    let text = format!("{:?}", span.span);
    assert!(!text.contains("4111111111111111"), "{text}");
    assert!(!text.contains("sk_live_secret"), "{text}");
    shutdown(telemetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_warning_arrives_as_a_log_record_with_the_trace_id() {
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let telemetry = telemetry(&collector).await;
    let app = Router::new()
        .route("/pay", get(|| async { "paid" }))
        // Any duration exceeds zero: every request is "slow".
        .layer(telemetry.http_layer().with_slow_threshold(Duration::ZERO));
    {
        // The request future is polled on this thread, inside the scoped subscriber.
        let _guard = tracing::subscriber::set_default(telemetry.subscriber());
        let res = app
            .oneshot(Request::get("/pay").body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
    }
    let span = collector
        .wait_for_span("GET /pay", WAIT)
        .await
        .expect("span");
    assert_eq!(span.attr_str("paytrace.slow").as_deref(), Some("true"));
    let logs = collector.wait_for_logs(1, WAIT).await;
    let warn = logs
        .iter()
        .find(|l| l.body_str().as_deref() == Some("slow HTTP request"))
        .expect("slow WARN exported");
    assert_eq!(warn.severity_text(), "WARN");
    assert_eq!(warn.trace_id_hex(), span.trace_id_hex());
    assert_eq!(warn.attr_str("route").as_deref(), Some("/pay"));
    shutdown(telemetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_metrics_reach_the_collector_through_the_bridge() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = telemetry(&collector).await;
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(telemetry.http_layer());
    let res = app
        .oneshot(Request::get("/orders/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    // The metrics module maps `http_server_request_duration_seconds` to the OTel name.
    assert!(collector
        .wait_for_metric("http.server.request.duration", WAIT)
        .await
        .is_some());
    shutdown(telemetry).await;
}
