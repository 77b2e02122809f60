//! The server layer on an axum Router and a plain hyper service: span name, kind, attributes,
//! status for 2xx/4xx/5xx, inner errors, dropped requests and bodies, streamed bodies, skip,
//! request ids, context inside handlers, MatchedPath ordering.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use support::*;
use tower::{Layer as _, ServiceExt as _};

fn app(layer: paytrace::http::TraceLayer) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|Path(id): Path<String>| async move { format!("order {id}") }),
        )
        .route(
            "/orders",
            post(|body: String| async move { (StatusCode::CREATED, body) }),
        )
        .route("/refunds/{id}", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/boom",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/stream",
            get(|| async { Body::new(SlowBody::new(3, Duration::from_secs(1))) }),
        )
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/ctx",
            get(|| async {
                // The handler runs inside the request's context.
                let cx = opentelemetry::Context::current();
                format!("{}", cx.span().span_context().span_id())
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(layer)
}

/// `GET /orders/1` sent under an upstream `traceparent`.
fn under_parent(traceparent: &str) -> Request<Body> {
    Request::get("/orders/1")
        .header("traceparent", traceparent)
        .body(Body::empty())
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (http::response::Parts, bytes::Bytes) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn ok_request_has_semconv_name_kind_and_attributes() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let req = Request::get("/orders/42?page=2")
        .header("host", "shop.example:8443")
        .header("user-agent", "curl/8.5")
        .body(Body::empty())
        .unwrap();
    let (parts, body) = send(&app, req).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, "order 42");

    let span = spans.only();
    assert_eq!(span.name, "GET /orders/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.status, Status::Unset);
    assert!(
        !span.parent_span_id.to_bytes().iter().any(|b| *b != 0),
        "root span"
    );
    assert_eq!(
        attr_str(&span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(attr_str(&span, "url.scheme").as_deref(), Some("http"));
    assert_eq!(attr_str(&span, "url.path").as_deref(), Some("/orders/42"));
    assert_eq!(attr_str(&span, "url.query").as_deref(), Some("page=2"));
    assert_eq!(
        attr_str(&span, "http.route").as_deref(),
        Some("/orders/{id}")
    );
    assert_eq!(attr_i64(&span, "http.response.status_code"), Some(200));
    assert_eq!(
        attr_str(&span, "server.address").as_deref(),
        Some("shop.example")
    );
    assert_eq!(attr_i64(&span, "server.port"), Some(8443));
    assert_eq!(
        attr_str(&span, "user_agent.original").as_deref(),
        Some("curl/8.5")
    );
    assert_eq!(
        attr_str(&span, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(attr_i64(&span, "http.response.body.size"), Some(8));
    assert_eq!(attr(&span, "error.type"), None);
    assert_eq!(attr(&span, "paytrace.slow"), None);
    assert_eq!(attr(&span, "paytrace.request.cancelled"), None);
    assert_eq!(attr(&span, "http.request.method_original"), None);

    // The generated request id: `{trace_id}-{span_id}`, on the span and the response.
    let expected = format!(
        "{}-{}",
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    assert_eq!(
        attr_str(&span, "paytrace.request_id").as_deref(),
        Some(expected.as_str())
    );
    assert_eq!(parts.headers["x-request-id"], expected.as_str());

    let text = metrics_text(&registry);
    let labels =
        r#"http_request_method="GET",http_response_status_code="200",http_route="/orders/{id}""#;
    assert!(
        text.contains(&format!(
            "http_server_request_duration_seconds_count{{{labels}}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "http_server_response_body_size_bytes_sum{{{labels}}} 8"
        )),
        "{text}"
    );
    assert!(
        text.contains(r#"http_server_active_requests{http_request_method="GET"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn request_body_size_comes_from_content_length() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let req = Request::post("/orders")
        .header("content-length", "5")
        .body(Body::from("hello"))
        .unwrap();
    let (parts, body) = send(&app, req).await;
    assert_eq!(
        (parts.status, &body[..]),
        (StatusCode::CREATED, &b"hello"[..])
    );
    let span = spans.only();
    assert_eq!(span.name, "POST /orders");
    assert_eq!(attr_i64(&span, "http.request.body.size"), Some(5));
    assert_eq!(attr_i64(&span, "http.response.status_code"), Some(201));
    let text = metrics_text(&registry);
    assert!(text.contains(r#"http_server_request_body_size_bytes_sum{http_request_method="POST",http_response_status_code="201",http_route="/orders"} 5"#), "{text}");
}

#[tokio::test]
async fn client_errors_do_not_set_error_status() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let (parts, _) = send(
        &app,
        Request::get("/refunds/7").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(parts.status, 404);
    let span = spans.only();
    assert_eq!(span.name, "GET /refunds/{id}");
    assert_eq!(attr_i64(&span, "http.response.status_code"), Some(404));
    assert_eq!(
        span.status,
        Status::Unset,
        "4xx is the client's error on a server span"
    );
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn server_errors_set_error_status_and_type() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let (parts, _) = send(&app, Request::get("/boom").body(Body::empty()).unwrap()).await;
    assert_eq!(parts.status, 503);
    let span = spans.only();
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("503"));
    assert!(metrics_text(&registry).contains(r#"http_response_status_code="503""#));
}

#[tokio::test]
async fn unmatched_paths_use_the_fallback_route_never_the_raw_path() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let (parts, _) = send(
        &app,
        Request::get("/no/such/path/123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 404);
    let span = spans.only();
    assert_eq!(span.name, "GET unmatched");
    assert_eq!(attr_str(&span, "http.route").as_deref(), Some("unmatched"));
    assert_eq!(
        attr_str(&span, "url.path").as_deref(),
        Some("/no/such/path/123")
    );
    let text = metrics_text(&registry);
    assert!(text.contains(r#"http_route="unmatched""#), "{text}");
    assert!(!text.contains("/no/such"), "{text}");
}

#[tokio::test]
async fn custom_fallback_route() {
    let spans = Spans::new();
    let app = app(spans.layer().0.with_fallback_route("other"));
    send(&app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(spans.only().name, "GET other");
}

#[tokio::test]
async fn non_standard_methods_fold_into_other() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let req = Request::builder()
        .method("PURGE")
        .uri("/orders/1")
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    let span = spans.only();
    assert!(span.name.starts_with("HTTP "), "{}", span.name);
    assert_eq!(
        attr_str(&span, "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr_str(&span, "http.request.method_original").as_deref(),
        Some("PURGE")
    );
    let text = metrics_text(&registry);
    assert!(text.contains(r#"http_request_method="_OTHER""#), "{text}");
    assert!(!text.contains("PURGE"), "{text}");
}

#[tokio::test]
async fn matched_path_needs_router_layer() {
    // `Router::layer` runs after routing: the template is known.
    let spans = Spans::new();
    let routed = Router::new()
        .route("/orders/{id}", get(|| async { "x" }))
        .layer(spans.layer().0);
    send(
        &routed,
        Request::get("/orders/9").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(spans.only().name, "GET /orders/{id}");

    // Wrapped around the whole router from outside, it runs before routing: fallback.
    let spans = Spans::new();
    let router = Router::new().route("/orders/{id}", get(|| async { "x" }));
    let outside = spans.layer().0.layer(router);
    let res = outside
        .oneshot(Request::get("/orders/9").body(Body::empty()).unwrap())
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    let span = spans.only();
    assert_eq!(span.name, "GET unmatched");
    assert_eq!(attr_str(&span, "url.path").as_deref(), Some("/orders/9"));
}

#[tokio::test]
async fn streamed_body_ends_the_span_at_its_end() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    tokio::time::pause();
    let res = app
        .clone()
        .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        spans.finished().is_empty(),
        "the span must not end with the headers"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 3 * CHUNK.len());

    let span = spans.only();
    let duration = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        duration >= Duration::from_secs(3),
        "span covers the streaming: {duration:?}"
    );
    assert_eq!(attr_i64(&span, "http.response.body.size"), Some(30));
    let text = metrics_text(&registry);
    // 3 s lands in the (2.5, 5] bucket.
    assert!(text.contains(r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/stream",le="2.5"} 0"#), "{text}");
    assert!(text.contains(r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/stream",le="5"} 1"#), "{text}");
}

#[tokio::test]
async fn empty_body_ends_at_the_headers() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let res = app
        .clone()
        .oneshot(Request::get("/empty").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Ended although the body was never polled.
    let span = spans.only();
    assert_eq!(attr_i64(&span, "http.response.body.size"), Some(0));
    drop(res);
    assert_eq!(attr(&spans.only(), "paytrace.request.cancelled"), None);
}

#[tokio::test]
async fn dropped_request_ends_its_span_as_cancelled() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    tokio::time::pause();
    let res = tokio::time::timeout(
        Duration::from_secs(30),
        app.clone()
            .oneshot(Request::get("/hang").body(Body::empty()).unwrap()),
    )
    .await;
    assert!(res.is_err(), "the handler never answers");
    let span = spans.only();
    assert_eq!(span.name, "GET /hang");
    assert_eq!(attr_bool(&span, "paytrace.request.cancelled"), Some(true));
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("cancelled"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert!(matches!(span.status, Status::Error { .. }));
    let duration = span.end_time.duration_since(span.start_time).unwrap();
    assert!(duration >= Duration::from_secs(30), "{duration:?}");
    let text = metrics_text(&registry);
    assert!(text.contains(r#"http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="",http_route="/hang"} 1"#), "{text}");
    assert!(
        text.contains(r#"http_server_active_requests{http_request_method="GET"} 0"#),
        "{text}"
    );
    // 30 s is above the 5 s default threshold.
    assert!(
        text.contains(
            r#"http_server_slow_requests_total{http_request_method="GET",http_route="/hang"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn dropped_body_ends_its_span_as_cancelled() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    tokio::time::pause();
    let res = app
        .clone()
        .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.data_ref().unwrap().len(), CHUNK.len());
    assert!(spans.finished().is_empty());
    drop(body);
    let span = spans.only();
    assert_eq!(attr_bool(&span, "paytrace.request.cancelled"), Some(true));
    assert_eq!(attr_i64(&span, "http.response.status_code"), Some(200));
    assert_eq!(
        attr_i64(&span, "http.response.body.size"),
        Some(CHUNK.len() as i64)
    );
}

#[derive(Debug)]
struct PaymentGatewayDown;

impl std::fmt::Display for PaymentGatewayDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gateway down")
    }
}

impl std::error::Error for PaymentGatewayDown {}

#[tokio::test]
async fn inner_service_error_sets_error_type_to_the_type_name() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let svc = tower::service_fn(|_req: Request<String>| async {
        Err::<http::Response<String>, _>(PaymentGatewayDown)
    });
    let svc = layer.with_route(|_| Some("/pay")).layer(svc);
    let err = svc
        .oneshot(Request::post("/pay").body(String::new()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "gateway down");
    let span = spans.only();
    assert_eq!(span.name, "POST /pay");
    let error_type = attr_str(&span, "error.type").unwrap();
    assert!(error_type.ends_with("PaymentGatewayDown"), "{error_type}");
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert!(metrics_text(&registry).contains(r#"http_response_status_code="",http_route="/pay""#));
}

#[tokio::test]
async fn a_panicking_handler_ends_the_span_as_a_panic() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = Router::new()
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .layer(layer);
    // The panic unwinds through the layer's future; the task catches it.
    let joined =
        tokio::spawn(app.oneshot(Request::get("/panic").body(Body::empty()).unwrap())).await;
    assert!(joined.unwrap_err().is_panic());
    let span = spans.only();
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("panic"));
    assert_eq!(attr(&span, "paytrace.request.cancelled"), None);
    assert!(matches!(span.status, Status::Error { .. }));
    assert!(metrics_text(&registry)
        .contains(r#"http_server_active_requests{http_request_method="GET"} 0"#));
}

#[tokio::test]
async fn skipped_paths_get_no_span_and_no_metrics() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    let app = app(layer);
    let (parts, body) = send(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert!(parts.headers.get("x-request-id").is_none());
    assert!(spans.finished().is_empty());
    assert!(!metrics_text(&registry).contains("http_server_request_duration_seconds_count"));

    // A custom predicate replaces the default list.
    let spans = Spans::new();
    let app = self::app(
        spans
            .layer()
            .0
            .with_skip(|req| req.uri.path().starts_with("/orders")),
    );
    send(&app, Request::get("/orders/1").body(Body::empty()).unwrap()).await;
    send(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    let names: Vec<_> = spans.finished().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["GET /health"]);
}

#[tokio::test]
async fn valid_incoming_request_id_is_kept_invalid_is_replaced() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let req = Request::get("/orders/1")
        .header("x-request-id", "req-abc_123")
        .body(Body::empty())
        .unwrap();
    let (parts, _) = send(&app, req).await;
    assert_eq!(parts.headers["x-request-id"], "req-abc_123");
    assert_eq!(
        attr_str(&spans.only(), "paytrace.request_id").as_deref(),
        Some("req-abc_123")
    );

    let spans = Spans::new();
    let app = self::app(spans.layer().0);
    let req = Request::get("/orders/1")
        .header("x-request-id", "bad id <script>")
        .body(Body::empty())
        .unwrap();
    let (parts, _) = send(&app, req).await;
    let span = spans.only();
    let generated = format!(
        "{}-{}",
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    assert_eq!(parts.headers["x-request-id"], generated.as_str());
    assert_eq!(attr_str(&span, "paytrace.request_id"), Some(generated));
}

#[tokio::test]
async fn handler_sees_the_request_id_and_can_disable_it() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/echo",
            get(|req: Request<Body>| async move {
                req.headers()["x-request-id"].to_str().unwrap().to_owned()
            }),
        )
        .layer(spans.layer().0);
    let (parts, body) = send(&app, Request::get("/echo").body(Body::empty()).unwrap()).await;
    assert_eq!(
        parts.headers["x-request-id"],
        std::str::from_utf8(&body).unwrap()
    );

    let spans = Spans::new();
    let app = self::app(spans.layer().0.with_request_id(false));
    let (parts, _) = send(&app, Request::get("/orders/1").body(Body::empty()).unwrap()).await;
    assert!(parts.headers.get("x-request-id").is_none());
    assert_eq!(attr(&spans.only(), "paytrace.request_id"), None);
}

#[tokio::test]
async fn trace_id_header_is_opt_in() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let (parts, _) = send(&app, Request::get("/orders/1").body(Body::empty()).unwrap()).await;
    assert!(parts.headers.get("x-trace-id").is_none());

    let spans = Spans::new();
    let layer = spans
        .layer()
        .0
        .with_trace_id_header(Some(http::HeaderName::from_static("x-trace-id")));
    let (parts, _) = send(
        &self::app(layer),
        Request::get("/orders/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        parts.headers["x-trace-id"],
        spans.only().span_context.trace_id().to_string().as_str()
    );
}

#[tokio::test]
async fn upstream_traceparent_becomes_the_parent() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let req = under_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    send(&app, req).await;
    let span = spans.only();
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
}

#[tokio::test]
async fn handler_runs_inside_the_server_span_context() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let (_, body) = send(&app, Request::get("/ctx").body(Body::empty()).unwrap()).await;
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        spans.only().span_context.span_id().to_string()
    );
}

#[tokio::test]
async fn handlers_can_enrich_the_server_span() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/pay",
            post(|| async {
                opentelemetry::trace::get_active_span(|span| {
                    span.set_attribute(opentelemetry::KeyValue::new("payment.order_id", 42));
                });
                "paid"
            }),
        )
        .layer(spans.layer().0);
    send(&app, Request::post("/pay").body(Body::empty()).unwrap()).await;
    assert_eq!(attr_i64(&spans.only(), "payment.order_id"), Some(42));
}

#[tokio::test]
async fn recorded_request_headers_are_an_allow_list_without_secrets() {
    let spans = Spans::new();
    let layer = spans.layer().0.with_request_headers([
        http::HeaderName::from_static("x-merchant-id"),
        http::header::AUTHORIZATION,
        http::header::COOKIE,
    ]);
    let req = Request::get("/orders/1")
        .header("x-merchant-id", "m-77")
        .header("authorization", "Bearer sk_live_secret")
        .header("cookie", "session=abc")
        .body(Body::empty())
        .unwrap();
    send(&app(layer), req).await;
    let span = spans.only();
    match attr(&span, "http.request.header.x-merchant-id") {
        Some(opentelemetry::Value::Array(opentelemetry::Array::String(v))) => {
            assert_eq!(v.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["m-77"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(attr(&span, "http.request.header.authorization"), None);
    assert_eq!(attr(&span, "http.request.header.cookie"), None);
    let text = span_text(&span);
    assert!(
        !text.contains("sk_live_secret") && !text.contains("session=abc"),
        "{text}"
    );
}

/// The layer on a plain hyper 1 server (no axum), over a real socket, with a route hook.
#[tokio::test]
async fn plain_hyper_service_over_a_socket() {
    use hyper_util::rt::TokioIo;

    let spans = Spans::new();
    let layer = spans.layer().0.with_route(|req| {
        req.uri
            .path()
            .starts_with("/items/")
            .then_some("/items/{id}")
    });
    let inner = tower::service_fn(|req: Request<hyper::body::Incoming>| async move {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from(format!("got {body}")),
        )))
    });
    let svc = layer.layer(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let svc = hyper::service::service_fn(move |req| svc.clone().oneshot(req));
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await
            .unwrap();
    });

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/items/55")
        .header("host", addr.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"abc")))
        .unwrap();
    sender.ready().await.unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "got 3");

    let span = spans.only();
    assert_eq!(span.name, "POST /items/{id}");
    assert_eq!(
        attr_str(&span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(attr_i64(&span, "server.port"), Some(i64::from(addr.port())));
    assert_eq!(attr_i64(&span, "http.request.body.size"), Some(3));
    assert_eq!(attr_i64(&span, "http.response.body.size"), Some(5));
}

/// `client.address` from axum's `ConnectInfo`, over a real socket.
#[tokio::test]
async fn client_address_from_connect_info() {
    let spans = Spans::new();
    let app = app(spans.layer().0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let res = client
        .get(format!("http://{addr}/orders/3").parse().unwrap())
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    let span = spans.only();
    assert_eq!(
        attr_str(&span, "client.address").as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn public_types_are_send_sync_clone() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    type Svc = axum::routing::Route;
    send_sync_clone::<paytrace::http::TraceLayer>();
    send_sync_clone::<paytrace::http::TracedService<Svc>>();
    send_sync_clone::<paytrace::http::ClientLayer>();
    send_sync_clone::<paytrace::http::ClientService<Svc>>();
    send::<<paytrace::http::TracedService<Svc> as tower::Service<Request<Body>>>::Future>();
    send::<paytrace::http::ResponseBody<Body>>();
    send::<<paytrace::http::ClientService<Svc> as tower::Service<Request<Body>>>::Future>();
}

#[tokio::test]
async fn traceresponse_is_opt_in_and_names_the_server_span() {
    // Off by default, with or without the trace-id header.
    let spans = Spans::new();
    let (parts, _) = send(
        &app(spans.layer().0),
        Request::get("/orders/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(parts.headers.get("traceresponse").is_none());
    let spans = Spans::new();
    let layer = spans
        .layer()
        .0
        .with_trace_id_header(Some(http::HeaderName::from_static("x-trace-id")));
    let (parts, _) = send(
        &app(layer),
        Request::get("/orders/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(parts.headers.get("traceresponse").is_none());

    // On: `00-{trace_id}-{span_id}-01` of the exported server span, under an upstream parent.
    let spans = Spans::new();
    let app = app(spans.layer().0.with_traceresponse(true));
    let req = under_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let (parts, _) = send(&app, req).await;
    let value = parts.headers["traceresponse"].to_str().unwrap().to_owned();
    let fields: Vec<&str> = value.split('-').collect();
    assert_eq!(fields.len(), 4, "{value}");
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    assert_eq!(fields[0], "00", "{value}");
    assert!(lower_hex(fields[1], 32), "{value}");
    assert!(lower_hex(fields[2], 16), "{value}");
    assert_eq!(fields[3], "01", "{value}");
    let span = spans.only();
    assert_eq!(fields[1], span.span_context.trace_id().to_string());
    assert_eq!(fields[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    // The server span's own id, not the caller's.
    assert_eq!(fields[2], span.span_context.span_id().to_string());
    assert_ne!(fields[2], "00f067aa0ba902b7");

    // A trace the caller did not sample: the same trace, flags 00, nothing exported.
    let spans = Spans::new();
    let app = self::app(spans.layer().0.with_traceresponse(true));
    let req = under_parent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    let (parts, _) = send(&app, req).await;
    let value = parts.headers["traceresponse"].to_str().unwrap();
    assert!(
        value.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && value.ends_with("-00"),
        "{value}"
    );
    assert_eq!(value.len(), 55, "{value}");
    assert!(spans.finished().is_empty());
}
