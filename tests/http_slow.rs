//! The slow-request flag, on tokio's paused clock: span attribute, exactly one WARN event with
//! the trace id, the slow counter; nothing below the threshold.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use support::*;
use tower::ServiceExt as _;

fn app(layer: paytrace::http::TraceLayer) -> Router {
    let sleepy = |secs: u64| {
        get(move || async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            "done"
        })
    };
    Router::new()
        .route("/six", sleepy(6))
        .route("/four", sleepy(4))
        .route("/five", sleepy(5))
        .route("/two", sleepy(2))
        .route(
            "/stream",
            get(|| async { Body::new(SlowBody::new(3, Duration::from_secs(2))) }),
        )
        .layer(layer)
}

async fn get_path(app: &Router, path: &str) {
    let res = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
}

fn slow_warnings(events: &Capture) -> Vec<Captured> {
    events
        .events()
        .into_iter()
        .filter(|e| e.level == tracing::Level::WARN && e.target == "paytrace::http")
        .collect()
}

#[tokio::test(start_paused = true)]
async fn above_the_threshold_is_flagged_once() {
    let events = Capture::default();
    let _guard = tracing::subscriber::set_default(events.subscriber());
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);

    get_path(&app, "/six").await;

    let span = spans.only();
    assert_eq!(attr_bool(&span, "paytrace.slow"), Some(true));
    let duration = span.end_time.duration_since(span.start_time).unwrap();
    assert!(duration >= Duration::from_secs(6), "{duration:?}");

    let warnings = slow_warnings(&events);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    let trace_id = span.span_context.trace_id().to_string();
    // Carried by the context (below), not as a second `trace_id` key.
    assert!(!w.fields.contains_key("trace_id"), "{w:?}");
    assert_eq!(w.fields["method"], "GET");
    assert_eq!(w.fields["route"], "/six");
    assert_eq!(w.fields["status"], "200");
    assert_eq!(w.fields["duration_ms"], "6000");
    assert_eq!(w.fields["threshold_ms"], "5000");
    assert_eq!(
        w.fields["request_id"],
        attr_str(&span, "paytrace.request_id").unwrap()
    );
    assert_eq!(
        w.current_trace_id, trace_id,
        "the event fires inside the request's context"
    );

    let text = metrics_text(&registry);
    assert!(
        text.contains(
            r#"http_server_slow_requests_total{http_request_method="GET",http_route="/six"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn below_or_at_the_threshold_is_not_flagged() {
    let events = Capture::default();
    let _guard = tracing::subscriber::set_default(events.subscriber());
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);

    get_path(&app, "/four").await;
    get_path(&app, "/five").await; // "exceeds" is strict

    let all = spans.finished();
    assert_eq!(all.len(), 2);
    for span in &all {
        assert_eq!(attr(span, "paytrace.slow"), None, "{}", span.name);
    }
    assert!(slow_warnings(&events).is_empty(), "{:#?}", events.events());
    assert!(!metrics_text(&registry).contains("http_server_slow_requests_total{"));
}

#[tokio::test(start_paused = true)]
async fn the_threshold_is_configurable_and_covers_body_streaming() {
    let events = Capture::default();
    let _guard = tracing::subscriber::set_default(events.subscriber());
    let spans = Spans::new();
    let app = app(spans.layer().0.with_slow_threshold(Duration::from_secs(3)));

    get_path(&app, "/two").await; // 2 s: fine
    get_path(&app, "/stream").await; // headers at once, body over 6 s: slow

    let all = spans.finished();
    let two = all.iter().find(|s| s.name == "GET /two").unwrap();
    let stream = all.iter().find(|s| s.name == "GET /stream").unwrap();
    assert_eq!(attr(two, "paytrace.slow"), None);
    assert_eq!(attr_bool(stream, "paytrace.slow"), Some(true));
    let warnings = slow_warnings(&events);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].fields["route"], "/stream");
    assert_eq!(warnings[0].fields["threshold_ms"], "3000");
}
