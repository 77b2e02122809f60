//! Hostile input: malformed and oversized `traceparent`/`tracestate`/`baggage`/`x-request-id`
//! values and odd paths never panic and give a sane result (a new root span, a generated
//! request id); a proptest throws arbitrary valid header values at the layer.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::convert::Infallible;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{HeaderValue, Request};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use support::*;
use tower::ServiceExt as _;

const VALID_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn app(spans: &Spans) -> Router {
    Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .route("/{*rest}", get(|| async { "any" }))
        .route("/", get(|| async { "root" }))
        .layer(spans.layer().0)
}

/// Send one request; return the response's request id.
async fn send(app: &Router, req: Request<Body>) -> String {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let id = res
        .headers()
        .get("x-request-id")
        .expect("a request id is always returned")
        .clone();
    res.into_body().collect().await.unwrap();
    id.to_str().unwrap().to_owned()
}

fn is_root(span: &opentelemetry_sdk::trace::SpanData) -> bool {
    span.parent_span_id == opentelemetry::trace::SpanId::INVALID
}

#[tokio::test]
async fn malformed_traceparent_values_start_a_new_root() {
    let long = "a".repeat(8 * 1024);
    let corpus: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        format!("00-{VALID_TRACE}-00f067aa0ba902b7").into_bytes(), // no flags
        b"00-4bf92f3577b34da6-00f067aa0ba902b7-01".to_vec(),       // short trace id
        format!("00-{VALID_TRACE}-00f067aa-01").into_bytes(),      // short span id
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_vec(),
        format!("00-{VALID_TRACE}-0000000000000000-01").into_bytes(),
        format!("ff-{VALID_TRACE}-00f067aa0ba902b7-01").into_bytes(),
        format!("00-{}-00F067AA0BA902B7-01", VALID_TRACE.to_uppercase()).into_bytes(),
        format!("00-{VALID_TRACE}-00f067aa0ba902b7-01-extra").into_bytes(),
        format!("00-{VALID_TRACE}-00f067aa0ba902b7-1").into_bytes(),
        format!("00_{VALID_TRACE}_00f067aa0ba902b7_01").into_bytes(),
        format!("00-{VALID_TRACE}-00f067aa0ba902bz-01").into_bytes(),
        format!("00-{VALID_TRACE}-00f067aa0ba902b7-0g").into_bytes(),
        b"0-0-0-0".to_vec(),
        b"----".to_vec(),
        long.clone().into_bytes(),
        format!("00-{VALID_TRACE}-00f067aa0ba902b7-01{long}").into_bytes(),
        b"00-\x804bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01".to_vec(),
        vec![0xff; 55],
    ];
    let spans = Spans::new();
    let app = app(&spans);
    for value in corpus {
        spans.exporter.reset();
        let value =
            HeaderValue::from_bytes(&value).expect("corpus entries are valid header values");
        let req = Request::get("/orders/1")
            .header("traceparent", value.clone())
            .body(Body::empty())
            .unwrap();
        let id = send(&app, req).await;
        let span = spans.only();
        assert!(is_root(&span), "{value:?} must not be trusted as a parent");
        assert_eq!(
            id,
            format!(
                "{}-{}",
                span.span_context.trace_id(),
                span.span_context.span_id()
            )
        );
    }
}

#[tokio::test]
async fn oversized_and_garbage_tracestate_baggage_request_id_are_ignored() {
    let huge = "k=v,".repeat(16 * 1024); // 64 KiB
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tracestate", huge.clone().into_bytes()),
        ("tracestate", b"=,=,,,".to_vec()),
        ("tracestate", b"\x80\xff".to_vec()),
        (
            "tracestate",
            (0..200)
                .map(|i| format!("v{i}=x"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
        ),
        ("baggage", huge.replace(',', ";").into_bytes()),
        ("baggage", b"k=%ZZ".to_vec()),
        ("baggage", b"=;=;".to_vec()),
        ("baggage", b"\x80=\xff".to_vec()),
        (
            "baggage",
            (0..500)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
        ),
        ("x-request-id", b"".to_vec()),
        ("x-request-id", "r".repeat(10 * 1024).into_bytes()),
        ("x-request-id", b"has space".to_vec()),
        ("x-request-id", b"\x80\x81".to_vec()),
        ("x-request-id", b"tab\there".to_vec()),
        ("x-request-id", b"<script>alert(1)</script>".to_vec()),
    ];
    let spans = Spans::new();
    let app = app(&spans);
    for (name, value) in cases {
        spans.exporter.reset();
        let value = HeaderValue::from_bytes(&value).unwrap();
        let req = Request::get("/orders/1")
            // A valid parent alongside: tracestate/baggage garbage must not cost it.
            .header(
                "traceparent",
                format!("00-{VALID_TRACE}-00f067aa0ba902b7-01"),
            )
            .header(name, value.clone())
            .body(Body::empty())
            .unwrap();
        let id = send(&app, req).await;
        let span = spans.only();
        assert_eq!(
            span.span_context.trace_id().to_string(),
            VALID_TRACE,
            "{name}: {value:?}"
        );
        assert!(
            paytrace::propagation::valid_request_id(id.as_bytes()),
            "{name}: returned id {id:?}"
        );
        if name == "x-request-id" {
            assert_eq!(
                id,
                format!(
                    "{}-{}",
                    span.span_context.trace_id(),
                    span.span_context.span_id()
                )
            );
        }
        // Whatever got in, the span's own attributes stay bounded.
        for kv in &span.attributes {
            assert!(
                kv.value.as_str().len() <= 4096,
                "{name}: attribute {} too long",
                kv.key
            );
        }
    }
}

#[tokio::test]
async fn odd_paths_are_harmless() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .layer(layer);
    let long = format!("/{}", "x".repeat(65_000));
    let paths = [
        "//",
        "/%00",
        "/%FF%FE%80",
        "/..",
        "/../../etc/passwd",
        "/a/./b/../c",
        "/orders/%2e%2e",
        long.as_str(),
    ];
    for path in paths {
        spans.exporter.reset();
        let req = Request::get(path).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
        let span = spans.only();
        assert!(
            span.name == "GET unmatched" || span.name == "GET /orders/{id}",
            "{path}: {}",
            span.name
        );
        let recorded = attr_str(&span, "url.path").unwrap();
        assert!(recorded.len() <= 2048, "{path}: url.path is bounded");
        assert!(path.starts_with(&recorded), "{path}: {recorded}");
    }
    let text = metrics_text(&registry);
    assert!(
        !text.contains("etc/passwd") && !text.contains("xxxxxxxx"),
        "raw paths never become labels"
    );
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[0-9a-fA-F-]{0,60}".prop_map(String::into_bytes),
        "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}".prop_map(String::into_bytes),
        "[a-z0-9=,; %]{0,200}".prop_map(String::into_bytes),
    ]
    .prop_filter_map("valid header value", |b| HeaderValue::from_bytes(&b).ok())
}

fn w3c_valid(v: &HeaderValue) -> Option<(String, String)> {
    let s = v.to_str().ok()?;
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str| {
        p.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    (parts.len() == 4
        && parts[0] == "00"
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && parts.iter().all(|p| hex(p)))
    .then(|| (parts[1].to_owned(), parts[2].to_owned()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_values_never_break_the_layer(
        traceparent in header_value(),
        tracestate in header_value(),
        baggage in header_value(),
        request_id in header_value(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Always on: a valid but unsampled parent must still give a span to check.
        let spans = Spans::with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn);
        let layer = spans.layer().0.with_route(|_| Some("/p"));
        let svc = tower::Layer::layer(&layer, tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("ok")))
        }));
        let req = Request::get("/p")
            .header("traceparent", traceparent.clone())
            .header("tracestate", tracestate)
            .header("baggage", baggage)
            .header("x-request-id", request_id.clone())
            .body(String::new())
            .unwrap();
        let res = rt.block_on(svc.oneshot(req)).unwrap();
        let returned = res.headers()["x-request-id"].clone();
        let body = rt.block_on(res.into_body().collect()).unwrap().to_bytes();
        prop_assert_eq!(&body[..], b"ok");

        let span = spans.only();
        prop_assert!(paytrace::propagation::valid_request_id(returned.as_bytes()));
        if paytrace::propagation::valid_request_id(request_id.as_bytes()) {
            prop_assert_eq!(&returned, &request_id);
        }
        match w3c_valid(&traceparent) {
            // Only a well-formed W3C value may become the parent.
            None => prop_assert!(is_root(&span), "{:?} became a parent", traceparent),
            Some((trace, parent)) if trace != "0".repeat(32) && parent != "0".repeat(16) => {
                // ... and a well-formed one must.
                prop_assert_eq!(span.span_context.trace_id().to_string(), trace);
                prop_assert_eq!(span.parent_span_id.to_string(), parent);
            }
            Some(_) => prop_assert!(is_root(&span)),
        }
    }
}
