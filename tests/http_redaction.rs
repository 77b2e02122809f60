//! Redaction corpus: no secret from headers, query, path or URL reaches a span (name,
//! attributes, status) or a metric label.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::convert::Infallible;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE, USER_AGENT};
use http::{HeaderName, Request};
use http_body_util::BodyExt as _;
use paytrace::http::ClientLayer;
use support::*;
use tower::{Layer as _, ServiceExt as _};

const SECRETS: &[&str] = &[
    "4111111111111111",
    "5555555555554444",
    "s1gnatureXYZ",
    "tokSECRET42",
    "sk_live_AUTHSECRET",
    "cHJveHlTRUNSRVQ=",
    "COOKIESECRET",
    "SETCOOKIESECRET",
    "pa55w0rdSECRET",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret}:\n{text}");
    }
}

fn hostile_request(path: &str) -> Request<Body> {
    Request::get(path)
        .header(AUTHORIZATION, "Bearer sk_live_AUTHSECRET")
        .header(PROXY_AUTHORIZATION, "Basic cHJveHlTRUNSRVQ=")
        .header(COOKIE, "session=COOKIESECRET")
        .header(USER_AGENT, "agent/1.0 card 5555555555554444")
        .header("x-card", "4111111111111111")
        .header("x-merchant", "m-1")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn no_secret_reaches_spans_or_metrics() {
    let spans = Spans::new();
    let (layer, registry) = spans.layer();
    // Ask for the sensitive headers explicitly: they must still not be recorded.
    let layer = layer.with_request_headers([
        AUTHORIZATION,
        PROXY_AUTHORIZATION,
        COOKIE,
        SET_COOKIE,
        HeaderName::from_static("x-card"),
        HeaderName::from_static("x-merchant"),
    ]);
    let app = Router::new()
        .route(
            "/cards/{pan}/charge",
            get(|| async { ([(SET_COOKIE, "sid=SETCOOKIESECRET")], "charged") }),
        )
        .layer(layer);

    let query = "card_number=4111111111111111&sign=s1gnatureXYZ&token=tokSECRET42&password=pa55w0rdSECRET&amount=100";
    for path in [
        format!("/cards/4111111111111111/charge?{query}"),
        format!("/unrouted/4111111111111111?{query}"),
    ] {
        let res = app.clone().oneshot(hostile_request(&path)).await.unwrap();
        res.into_body().collect().await.unwrap();
    }

    // Card numbers where clients choose tokens: the method and the Host header.
    let mut req = hostile_request("/cards/1/charge");
    *req.method_mut() = http::Method::from_bytes(b"4111111111111111").unwrap();
    req.headers_mut().insert(
        http::header::HOST,
        "4111111111111111.shop.example".parse().unwrap(),
    );
    app.clone()
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();

    let all = spans.finished();
    assert_eq!(all.len(), 3);
    let odd = &all[2];
    assert_eq!(
        attr_str(odd, "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert!(attr_str(odd, "http.request.method_original").is_some());
    assert!(attr_str(odd, "server.address")
        .unwrap()
        .ends_with(".shop.example"));
    assert_clean("odd span", &span_text(odd));
    let all = &all[..2];
    for span in all {
        assert_clean(&format!("span {}", span.name), &span_text(span));
        let path = attr_str(span, "url.path").unwrap();
        assert!(
            path.starts_with("/cards/") || path.starts_with("/unrouted/"),
            "{path}"
        );
        let q = attr_str(span, "url.query").unwrap();
        assert!(
            q.contains("amount=100"),
            "non-sensitive parameters are kept: {q}"
        );
        assert!(q.contains("REDACTED"), "{q}");
        assert!(attr(span, "http.request.header.x-merchant").is_some());
    }
    assert_eq!(all[0].name, "GET /cards/{pan}/charge");
    assert_clean("metrics", &metrics_text(&registry));
}

#[tokio::test]
async fn client_spans_redact_url_and_never_record_headers() {
    let spans = Spans::new();
    let inner = tower::service_fn(|req: Request<String>| async move {
        // The callee sees the propagated context but the span never saw the credentials.
        assert!(req.headers().contains_key("traceparent"));
        Ok::<_, Infallible>(http::Response::new(String::new()))
    });
    let client = ClientLayer::from_tracer(spans.tracer()).layer(inner);
    let req = Request::post(
        "https://merchant:pa55w0rdSECRET@psp.example/v1/cards/4111111111111111?token=tokSECRET42&sign=s1gnatureXYZ&currency=EUR",
    )
    .header(AUTHORIZATION, "Bearer sk_live_AUTHSECRET")
    .header(COOKIE, "session=COOKIESECRET")
    .body(String::new())
    .unwrap();
    // Context::current() must be sampled-in for the client span to be recorded: a root here.
    client.oneshot(req).await.unwrap();
    let span = spans.only();
    assert_clean("client span", &span_text(&span));
    let url = attr_str(&span, "url.full").unwrap();
    assert!(
        url.starts_with("https://REDACTED:REDACTED@psp.example/v1/cards/"),
        "{url}"
    );
    assert!(url.ends_with("currency=EUR"), "{url}");
    assert_eq!(
        attr_str(&span, "server.address").as_deref(),
        Some("psp.example")
    );
    assert_eq!(attr_i64(&span, "server.port"), Some(443));
}
