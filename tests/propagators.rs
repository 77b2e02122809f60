//! `OTEL_PROPAGATORS` with B3 and Jaeger beside W3C, through `init_tracer` and the HTTP layers.
//! Alone in its own test binary: the propagator is process-wide.

mod support;

use axum::routing::get;
use http_body_util::BodyExt as _;
use paytrace::testing::TestCollector;
use support::{Capture, WAIT};
use tower::ServiceExt as _;

const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const S: &str = "e457b5a2e4d86bd1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3_and_jaeger_are_read_and_written_and_unknown_names_only_warn() {
    let collector = TestCollector::start().await.unwrap();
    let capture = Capture::default();
    let telemetry = {
        let _guard = tracing::subscriber::set_default(capture.subscriber());
        let vars = [("OTEL_PROPAGATORS", "tracecontext,baggage,b3,jaeger,xray")];
        paytrace::init_tracer(
            paytrace::Config::from_env_vars(vars)
                .with_endpoint(collector.endpoint())
                .with_install_subscriber(false)
                .with_log_format(paytrace::LogFormat::Off)
                .with_span_schedule_delay(std::time::Duration::from_millis(50)),
        )
        .expect("an unknown propagator does not stop the service")
    };
    let warned = capture.with_target("paytrace::config");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0]
        .field("message")
        .is_some_and(|m| m.contains("OTEL_PROPAGATORS") && m.contains("`xray`")));

    let app = axum::Router::new()
        .route("/pay", get(|| async { "ok" }))
        .layer(telemetry.http_layer());
    let headers: [(&str, String); 4] = [
        ("b3", format!("{T}-{S}-1")),
        ("uber-trace-id", format!("{T}:{S}:0:1")),
        ("x-b3-traceid", "not hex at all".to_owned()),
        ("b3", "0".to_owned()),
    ];
    for (i, (name, value)) in headers.iter().enumerate() {
        let req = http::Request::get(format!("/pay?case={i}"))
            .header(*name, value)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
    assert!(collector.wait_until(WAIT, |c| c.spans().len() >= 4).await);
    let spans = collector.spans();
    let case = |i: usize| {
        spans
            .iter()
            .find(|s| s.attr_str("url.query").as_deref() == Some(&format!("case={i}")))
            .unwrap()
    };
    for i in [0, 1] {
        assert_eq!(case(i).trace_id_hex(), T, "case {i} continues the trace");
        assert_eq!(case(i).parent_span_id_hex(), S);
    }
    for i in [2, 3] {
        assert!(
            case(i).span.parent_span_id.is_empty(),
            "case {i} starts a new trace"
        );
    }

    // Outgoing: every installed format is written.
    let client = tower::service_fn(|req: http::Request<String>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(format!("{:?}", req.headers())))
    });
    let client = tower::ServiceBuilder::new()
        .layer(telemetry.http_client_layer())
        .service(client);
    let res = client
        .oneshot(
            http::Request::get("http://ledger/x")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let sent = res.into_body();
    for name in ["traceparent", "\"b3\"", "uber-trace-id"] {
        assert!(sent.contains(name), "{name} missing from {sent}");
    }
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}
