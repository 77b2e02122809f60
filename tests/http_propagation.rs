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

/// A service whose handler calls `{b}/echo` through the ClientLayer and answers with the
/// `traceparent` and `tracestate` that call carried (B echoes them).
async fn relay(spans: &Spans) -> SocketAddr {
    let b = Router::new().route(
        "/echo",
        get(|headers: http::HeaderMap| async move {
            let get = |name: &str| {
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join("|")
            };
            format!("{}\n{}", get("traceparent"), get("tracestate"))
        }),
    );
    let b_addr = serve(b).await;
    let client = ClientLayer::from_tracer(spans.tracer())
        .layer(Client::builder(TokioExecutor::new()).build_http::<String>());
    let a = Router::new()
        .route(
            "/relay",
            get(move || {
                let client = client.clone();
                async move {
                    let req = http::Request::get(format!("http://{b_addr}/echo"))
                        .body(String::new())
                        .unwrap();
                    let res = client.oneshot(req).await.unwrap();
                    let body = res.into_body().collect().await.unwrap().to_bytes();
                    String::from_utf8(body.to_vec()).unwrap()
                }
            }),
        )
        .layer(spans.layer().0);
    serve(a).await
}

/// Sends `headers` (several fields of one name allowed) to A; returns what reached B.
async fn through(a: SocketAddr, headers: &[(&str, &str)]) -> (String, String) {
    let mut req = http::Request::get(format!("http://{a}/relay"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let caller = Client::builder(TokioExecutor::new()).build_http::<String>();
    let res = caller
        .request(req.body(String::new()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let (tp, ts) = body.split_once('\n').unwrap();
    (tp.to_owned(), ts.to_owned())
}

const PARENT: &str = "00-12345678901234567890123456789012-1234567890123456";

#[tokio::test]
async fn several_tracestate_fields_leave_as_one_list_and_the_random_flag_round_trips() {
    let spans = Spans::new();
    let a = relay(&spans).await;

    let tp = format!("{PARENT}-03");
    let (out_tp, out_ts) = through(
        a,
        &[
            ("traceparent", &tp),
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "rojo=1,congo=2,foo@@v=3"),
            ("tracestate", ""),
            ("tracestate", "baz=3,t@vvvvvvvvvvvvvv=4"),
        ],
    )
    .await;
    assert_eq!(
        out_ts, "foo=1,bar=2,rojo=1,congo=2,foo@@v=3,baz=3,t@vvvvvvvvvvvvvv=4",
        "one field, in order, keys the SDK refuses included"
    );
    assert!(
        out_tp.starts_with("00-12345678901234567890123456789012-"),
        "{out_tp}"
    );
    assert!(
        !out_tp.contains("1234567890123456-"),
        "a new parent id: {out_tp}"
    );
    assert!(out_tp.ends_with("-03"), "sampled and random: {out_tp}");

    // Random without sampled: the SDK's sampler follows the parent and drops the span, the
    // random flag still goes on.
    let (out_tp, out_ts) = through(a, &[("traceparent", &format!("{PARENT}-02"))]).await;
    assert!(out_tp.ends_with("-02"), "{out_tp}");
    assert_eq!(out_ts, "", "no empty tracestate is sent");

    // Not random upstream: not random here either.
    let (out_tp, _) = through(a, &[("traceparent", &format!("{PARENT}-01"))]).await;
    assert!(out_tp.ends_with("-01"), "{out_tp}");

    // A new root: its trace id is random, and says so.
    let (out_tp, _) = through(a, &[]).await;
    assert!(out_tp.ends_with("-03"), "{out_tp}");
    assert!(!out_tp.contains("12345678901234567890123456789012"));
}

#[tokio::test]
async fn invalid_or_oversized_tracestate_lists_are_dropped_never_the_request() {
    let spans = Spans::new();
    let a = relay(&spans).await;
    let tp = format!("{PARENT}-01");
    let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
    let (f1, f2) = (members[..32].join(","), members[32..].join(","));
    for fields in [
        vec![f1.as_str(), f2.as_str()],
        vec!["foo=1", "@foo=1,bar=2"],
        vec!["foo=1", "foo=,bar=3"],
    ] {
        let mut headers = vec![("traceparent", tp.as_str())];
        headers.extend(fields.iter().map(|f| ("tracestate", *f)));
        let (out_tp, out_ts) = through(a, &headers).await;
        assert!(out_tp.starts_with("00-12345678901234567890123456789012-"));
        assert_eq!(out_ts, "", "{fields:?}");
    }
    // 32 over two fields pass; duplicate keys keep the first.
    let (_, out_ts) = through(a, &[("traceparent", &tp), ("tracestate", &f1)]).await;
    assert_eq!(out_ts, f1);
    let (_, out_ts) = through(
        a,
        &[
            ("traceparent", &tp),
            ("tracestate", "foo=1"),
            ("tracestate", "foo=2"),
        ],
    )
    .await;
    assert_eq!(out_ts, "foo=1");
}

#[tokio::test]
async fn several_baggage_fields_reach_the_handler_without_their_invalid_members() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/bag",
            get(|| async {
                let cx = opentelemetry::Context::current();
                let mut all: Vec<String> = cx
                    .baggage()
                    .iter()
                    .map(|(k, (v, _))| format!("{k}={v}"))
                    .collect();
                all.sort();
                all.join(",")
            }),
        )
        .layer(spans.layer().0);
    let addr = serve(app).await;
    let req = http::Request::get(format!("http://{addr}/bag"))
        .header("baggage", "userId=alice, bad member")
        .header("baggage", "serverNode=DF%2028,token=a==")
        .body(String::new())
        .unwrap();
    let caller = Client::builder(TokioExecutor::new()).build_http::<String>();
    let res = caller.request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "serverNode=DF 28,token=a==,userId=alice");
}
