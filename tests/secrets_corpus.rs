//! The standing secrets corpus. Over a thousand generated secrets — Luhn-valid card numbers of
//! 13–19 digits written plain, spaced, dashed, percent- and `+`-encoded, escaped inside JSON and
//! free text; CVVs and expiry dates; bearer tokens, API keys, signatures, cookies, passwords — go
//! through real requests over a socket (path, query, headers; sent through the client layer to a
//! server with the HTTP layer) and through logs (named fields, free text). Then every exported
//! byte of every signal, the stdout JSON and `/metrics` are searched for each of them, read as a
//! person searching a backend would: escapes undone, separators ignored.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use http::header::{AUTHORIZATION, COOKIE, USER_AGENT};
use http::{HeaderName, Request};
use http_body_util::BodyExt as _;
use paytrace::log::JsonLayer;
use paytrace::testing::TestCollector;
use paytrace::Telemetry;
use prost::Message as _;
use support::secrets::{grouped, leaks, percent_all, Rng, Secret, ALNUM};
use support::{config, Lines, WAIT};
use tower::{Service as _, ServiceBuilder, ServiceExt as _};
use tracing_subscriber::layer::SubscriberExt as _;

const REQUESTS: usize = 100;

/// One request's worth of secrets, and the request and log lines that carry them.
struct Case {
    path: String,
    headers: Vec<(HeaderName, String)>,
    secrets: Vec<Secret>,
}

fn case(rng: &mut Rng, i: usize) -> Case {
    let mut secrets = Vec::new();
    let mut card = |rng: &mut Rng| {
        let c = rng.card();
        secrets.push(Secret::Card(c.clone()));
        c
    };
    let (in_path, in_query, in_json, named, in_header, logged) = (
        card(rng),
        card(rng),
        card(rng),
        card(rng),
        card(rng),
        card(rng),
    );
    let path_form = match i % 5 {
        0 => in_path,
        1 => grouped(&in_path, "-"),
        2 => grouped(&in_path, "%20"),
        3 => grouped(&in_path, "+"),
        _ => percent_all(&in_path),
    };
    let query_form = if i.is_multiple_of(2) {
        format!("card%20{}%20now", grouped(&in_query, "%20"))
    } else {
        format!("card+{}+now", grouped(&in_query, "+"))
    };
    let json_form = format!("%7B%22note%22%3A%22{}%22%7D", grouped(&in_json, "%20"));

    let mut opaque = |rng: &mut Rng, prefix: &str| {
        let v = format!("{prefix}{}", rng.word(ALNUM, 24));
        secrets.push(Secret::Opaque(v.clone()));
        v
    };
    let (sig, api_key, bearer, header_key, cookie, password) = (
        opaque(rng, "sig_"),
        opaque(rng, "ak_"),
        opaque(rng, "tok_"),
        opaque(rng, "hk_"),
        opaque(rng, "ck_"),
        opaque(rng, "pw_"),
    );
    let cvv = format!("{}", 100 + rng.below(9900));
    let expiry = format!("{:02}/{}", 1 + rng.below(12), 27 + rng.below(8));
    secrets.push(Secret::Named("cvv", cvv.clone()));
    secrets.push(Secret::Named("expiry", expiry.clone()));

    let path = format!(
        "/pay/{path_form}?q={query_form}&data={json_form}&pan={named}&cvv={cvv}&expiry={}&sign={sig}&api_key={api_key}",
        expiry.replace('/', "%2F")
    );
    let headers = vec![
        (AUTHORIZATION, format!("Bearer {bearer}")),
        (HeaderName::from_static("x-api-key"), header_key),
        (COOKIE, format!("session={cookie}; theme=dark")),
        (
            HeaderName::from_static("x-note"),
            format!("card {}", grouped(&in_header, " ")),
        ),
        (USER_AGENT, format!("shop/1.0 (card {in_header})")),
        (
            HeaderName::from_static("x-log"),
            format!(
                "{logged}|{}|{cvv}|{expiry}|{password}",
                grouped(&logged, "\\u0020")
            ),
        ),
    ];
    Case {
        path,
        headers,
        secrets,
    }
}

/// The handler logs what `x-log` carries: a card as a named field and escaped inside a JSON
/// message, a CVV and an expiry date by name, a password in free text.
async fn pay(headers: HeaderMap) -> &'static str {
    let log = headers
        .get("x-log")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts: Vec<&str> = log.split('|').collect();
    if let [card, escaped, cvv, expiry, password] = parts[..] {
        tracing::info!(card, cvv, expiry, "charging");
        tracing::warn!(
            note = format!("card {escaped}"),
            "declined: {{\"note\":\"{escaped}\"}} password={password}"
        );
    }
    "ok"
}

#[tokio::test]
async fn no_secret_in_any_exported_byte() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector)).unwrap();
    let lines = Lines::default();
    let make = lines.clone();
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new(move || make.clone()).with_service_name("corpus"))
        .with(telemetry.layers());
    // Scoped to this thread; the current-thread runtime runs the server's tasks here too.
    let _default = tracing::subscriber::set_default(subscriber);

    let layer = telemetry.http_layer().with_request_headers([
        AUTHORIZATION,
        COOKIE,
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static("x-note"),
    ]);
    let app = Router::new()
        .route("/pay/{id}", get(pay))
        .route_service("/metrics", telemetry.metrics_service())
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let mut client = ServiceBuilder::new()
        .layer(telemetry.http_client_layer())
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<String>(),
        );

    let mut rng = Rng::new(0x5eed_c0de);
    let mut secrets = Vec::new();
    for i in 0..REQUESTS {
        let case = case(&mut rng, i);
        let mut request = Request::get(format!("http://{addr}{}", case.path));
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        let response = client
            .ready()
            .await
            .unwrap()
            .call(request.body(String::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", case.path);
        response.into_body().collect().await.unwrap();
        secrets.extend(case.secrets);
    }
    assert!(secrets.len() >= 1000, "{} secrets", secrets.len());

    let metrics_text = {
        let response = client
            .ready()
            .await
            .unwrap()
            .call(
                Request::get(format!("http://{addr}/metrics"))
                    .body(String::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    };
    // Both layers' spans: a server and a client span per request.
    collector.wait_for_spans(2 * REQUESTS, WAIT).await;
    collector.wait_for_logs(2 * REQUESTS, WAIT).await;
    server.abort();
    let telemetry = Arc::new(telemetry);
    let flushing = telemetry.clone();
    tokio::task::spawn_blocking(move || flushing.force_flush())
        .await
        .unwrap()
        .unwrap();

    let mut found = Vec::new();
    for r in collector.trace_requests() {
        found.extend(leaks("traces", &r.message.encode_to_vec(), &secrets));
    }
    for r in collector.log_requests() {
        found.extend(leaks("logs", &r.message.encode_to_vec(), &secrets));
    }
    for r in collector.metric_requests() {
        found.extend(leaks("metrics", &r.message.encode_to_vec(), &secrets));
    }
    found.extend(leaks("stdout", lines.text().as_bytes(), &secrets));
    found.extend(leaks("/metrics", &metrics_text, &secrets));
    found.extend(leaks(
        "/metrics (in process)",
        telemetry.prometheus_text().as_bytes(),
        &secrets,
    ));
    assert!(
        found.is_empty(),
        "{} of {} secrets leaked, e.g. {:?}",
        found.len(),
        secrets.len(),
        &found[..found.len().min(10)]
    );

    // The corpus reached every place it is searched in: a search of nothing finds nothing.
    let spans = collector.spans();
    assert!(spans
        .iter()
        .any(|s| s.attr_str("url.full").is_some_and(|u| u.contains("/pay/"))));
    assert!(spans.iter().any(|s| s
        .attr_str("url.query")
        .is_some_and(|q| q.contains("api_key=REDACTED"))));
    assert!(lines.text().contains("declined"));
    assert!(collector.log_records().len() >= 2 * REQUESTS);
}

#[test]
fn the_leak_finder_reads_every_spelling() {
    let card = "4111111111111111";
    let secret = [Secret::Card(card.into())];
    for text in [
        "x 4111111111111111 y".to_owned(),
        "/pay/4111%201111%201111%201111".into(),
        "q=card+4111+1111+1111+1111".into(),
        r#"{\"n\":\"4111\u00201111-1111 1111\"}"#.into(),
        percent_all(card),
        format!("x%20{}", grouped(card, "%2520")),
    ] {
        assert_eq!(leaks("t", text.as_bytes(), &secret).len(), 1, "{text}");
    }
    assert!(leaks("t", b"411111******1111", &secret).is_empty());
    let named = [Secret::Named("cvv", "123".into())];
    assert_eq!(leaks("t", b"x%22cvv%22%3A%22123%22", &named).len(), 1);
    assert!(leaks("t", b"cvv=REDACTED 123", &named).is_empty());
}
