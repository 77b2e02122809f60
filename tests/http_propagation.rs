//! Context propagation across two real servers: caller → A (server span) → ClientLayer (client
//! span) → B (server span), one trace, correct parents, baggage carried along.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{SpanKind, Status};
use paytrace::http::{ClientLayer, UrlTemplate};
use support::*;
use tower::{Layer as _, ServiceExt as _};

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn one_trace_across_two_services_with_baggage() {
    let spans = Spans::new();

    // B reports the baggage it received.
    let b = Router::new()
        .route(
            "/charge/{id}",
            get(|Path(_id): Path<u32>| async {
                let cx = opentelemetry::Context::current();
                cx.baggage()
                    .get("tenant")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            }),
        )
        .layer(spans.layer().0);
    let b_addr = serve(b).await;

    // A calls B through a hyper-util client wrapped in ClientLayer.
    let client = ClientLayer::from_tracer(spans.tracer())
        .layer(Client::builder(TokioExecutor::new()).build_http::<String>());
    let a = Router::new()
        .route(
            "/checkout",
            get(move || {
                let client = client.clone();
                async move {
                    let mut req =
                        http::Request::get(format!("http://{b_addr}/charge/7?token=tok_secret"))
                            .body(String::new())
                            .unwrap();
                    req.extensions_mut().insert(UrlTemplate("/charge/{id}"));
                    let res = client.oneshot(req).await.unwrap();
                    let body = res.into_body().collect().await.unwrap().to_bytes();
                    String::from_utf8(body.to_vec()).unwrap()
                }
            }),
        )
        .layer(spans.layer().0);
    let a_addr = serve(a).await;

    let caller = Client::builder(TokioExecutor::new()).build_http::<String>();
    let req = http::Request::get(format!("http://{a_addr}/checkout"))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("baggage", "tenant=acme")
        .body(String::new())
        .unwrap();
    let res = caller.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "acme", "baggage reached B through A");

    let all = spans.finished();
    assert_eq!(
        all.len(),
        3,
        "{:#?}",
        all.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let find = |name: &str, kind: SpanKind| {
        all.iter()
            .find(|s| s.name == name && s.span_kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} span {name}"))
            .clone()
    };
    let a_span = find("GET /checkout", SpanKind::Server);
    let client_span = find("GET /charge/{id}", SpanKind::Client);
    let b_span = find("GET /charge/{id}", SpanKind::Server);

    for s in [&a_span, &client_span, &b_span] {
        assert_eq!(
            s.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
    assert_eq!(a_span.parent_span_id.to_string(), "b7ad6b7169203331");
    assert!(a_span.parent_span_is_remote);
    assert_eq!(client_span.parent_span_id, a_span.span_context.span_id());
    assert!(!client_span.parent_span_is_remote);
    assert_eq!(b_span.parent_span_id, client_span.span_context.span_id());
    assert!(b_span.parent_span_is_remote);

    assert_eq!(
        attr_str(&client_span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(&client_span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_i64(&client_span, "server.port"),
        Some(i64::from(b_addr.port()))
    );
    assert_eq!(
        attr_str(&client_span, "url.template").as_deref(),
        Some("/charge/{id}")
    );
    assert_eq!(
        attr_i64(&client_span, "http.response.status_code"),
        Some(200)
    );
    let url = attr_str(&client_span, "url.full").unwrap();
    assert!(
        url.starts_with(&format!("http://{b_addr}/charge/7?token=")),
        "{url}"
    );
    assert!(!url.contains("tok_secret"), "{url}");
    assert_eq!(client_span.status, Status::Unset);
}

#[tokio::test]
async fn client_span_marks_4xx_and_transport_errors() {
    let spans = Spans::new();
    let b = Router::new().route("/missing", get(|| async { http::StatusCode::NOT_FOUND }));
    let b_addr = serve(b).await;
    let client = ClientLayer::from_tracer(spans.tracer())
        .layer(Client::builder(TokioExecutor::new()).build_http::<String>());

    let res = client
        .clone()
        .oneshot(
            http::Request::get(format!("http://{b_addr}/missing"))
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let span = spans.only();
    assert_eq!(span.name, "GET");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("404"));
    assert!(matches!(span.status, Status::Error { .. }));

    // A closed port: the call fails, the span says which error type.
    spans.exporter.reset();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = client
        .oneshot(
            http::Request::post(format!("http://{closed}/x"))
                .body(String::new())
                .unwrap(),
        )
        .await;
    assert!(err.is_err());
    let span = spans.only();
    assert_eq!(span.name, "POST");
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert!(
        attr_str(&span, "error.type").unwrap().contains("Error"),
        "{:?}",
        span.attributes
    );
}

#[tokio::test]
async fn inject_context_for_non_tower_clients() {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
    let spans = Spans::new();
    let tracer = spans.tracer();
    let span = tracer.start("work");
    let cx = opentelemetry::Context::current_with_span(span);
    let _guard = cx.clone().attach();
    let mut headers = http::HeaderMap::new();
    paytrace::http::inject_context(&mut headers);
    let tp = headers["traceparent"].to_str().unwrap();
    let sc = cx.span().span_context().clone();
    assert_eq!(tp, format!("00-{}-{}-01", sc.trace_id(), sc.span_id()));
}
