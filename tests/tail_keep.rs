//! Tail keep over real gRPC to the test collector: at a 10 % ratio every failed and slow trace
//! arrives whole, late spans included, and nothing of a dropped trace arrives; the ratio keeps
//! its share and writes the specification's `th`; two services agree on one trace; the buffer
//! stays within its budget.
#![cfg(feature = "axum")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use paytrace::testing::{ReceivedSpan, TestCollector};
use paytrace::{Config, LogFormat, Sampler, Telemetry};
use support::install_propagator;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

fn config(collector: &TestCollector, ratio: f64) -> Config {
    Config::new()
        .with_endpoint(collector.endpoint())
        .with_service_name("tail-keep-test")
        .with_install_subscriber(false)
        .with_log_format(LogFormat::Off)
        .with_span_schedule_delay(Duration::from_millis(100))
        .with_sampler(Sampler::ParentBasedRatio(ratio))
}

async fn shutdown(telemetry: Telemetry) {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}

fn reason(span: &ReceivedSpan) -> Option<String> {
    span.attr_str("paytrace.sampling.reason")
}

fn trace_state(span: &ReceivedSpan) -> &str {
    &span.span.trace_state
}

/// Every 100th order fails, every 200th + 7 is slow, every 10th + 3 and every failed one has a
/// child span that ends after the response (late).
const REQUESTS: u32 = 100_000;
fn fails(n: u32) -> bool {
    n.is_multiple_of(100)
}
fn is_slow(n: u32) -> bool {
    n % 200 == 7
}
fn has_late_child(n: u32) -> bool {
    n % 10 == 3 || fails(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_and_slow_trace_arrives_whole_and_nothing_of_a_dropped_one() {
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector, 0.1)).unwrap();
    let tracer = telemetry.tracer().clone();
    let app = Router::new()
        .route(
            "/orders/{n}",
            get(move |Path(n): Path<u32>| {
                let tracer = tracer.clone();
                async move {
                    let cx = opentelemetry::Context::current();
                    tracer.start_with_context("db.query", &cx).end();
                    if has_late_child(n) {
                        let tracer = tracer.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            tracer.start_with_context("notify", &cx).end();
                        });
                    }
                    if is_slow(n) {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    if fails(n) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(
            telemetry
                .http_layer()
                .with_slow_threshold(Duration::from_millis(20)),
        );
    support::get_orders(&app, REQUESTS).await;
    // The late children end a few milliseconds after their response.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health = telemetry.exporter_health();
    shutdown(telemetry).await;

    let spans = collector.spans();
    let mut traces: BTreeMap<String, Vec<&ReceivedSpan>> = BTreeMap::new();
    for span in &spans {
        traces.entry(span.trace_id_hex()).or_default().push(span);
    }
    // Which order each trace served, from its server span.
    let mut order_of: BTreeMap<String, u32> = BTreeMap::new();
    for (trace, spans) in &traces {
        for span in spans {
            if let Some(path) = span.attr_str("url.path") {
                let n = path.trim_start_matches("/orders/").parse().unwrap();
                order_of.insert(trace.clone(), n);
            }
        }
    }
    let arrived: BTreeSet<u32> = order_of.values().copied().collect();
    // Orders the ratio kept (their spans carry `th`), apart from any a busy machine made slow.
    let ratio_kept: BTreeSet<u32> = order_of
        .iter()
        .filter(|(trace, _)| {
            traces[*trace]
                .iter()
                .all(|s| trace_state(s).contains("th:"))
        })
        .map(|(_, n)| *n)
        .collect();
    for n in (0..REQUESTS).filter(|&n| fails(n) || is_slow(n)) {
        assert!(
            arrived.contains(&n),
            "order {n} (failed or slow) did not arrive"
        );
    }
    for (trace, spans) in &traces {
        // Nothing of a dropped trace: every span was kept by the ratio (th) or by its outcome.
        for span in spans {
            assert!(
                trace_state(span).contains("th:") || reason(span).is_some(),
                "span {} of trace {trace} was neither ratio- nor outcome-kept",
                span.name()
            );
        }
        // Whole: the server span, its child, and the late child where there is one.
        let n = order_of[trace];
        let expected = 2 + usize::from(has_late_child(n));
        assert_eq!(
            spans.len(),
            expected,
            "trace of order {n}: {:?}",
            spans.iter().map(|s| s.name()).collect::<Vec<_>>()
        );
        if fails(n) {
            assert!(spans
                .iter()
                .all(|s| trace_state(s).contains("th:") || reason(s).as_deref() == Some("error")));
        }
    }
    let keep = health.tail_keep().expect("tail keep is on with a ratio");
    // Failed orders the ratio did not keep already (about 90 % of 1,000).
    assert!(keep.kept_error >= 850, "{keep:?}");
    assert!(keep.dropped > 80_000, "{keep:?}");
    assert!(keep.late_dropped > 0 && keep.late_kept > 0, "{keep:?}");
    // The share of the rest kept by the ratio.
    let rest: Vec<u32> = (0..REQUESTS)
        .filter(|&n| !fails(n) && !is_slow(n))
        .collect();
    let share = rest.iter().filter(|n| ratio_kept.contains(n)).count() as f64 / rest.len() as f64;
    assert!((share / 0.1 - 1.0).abs() < 0.1, "{share}");
}

#[tokio::test]
async fn the_ratio_keeps_its_share_and_writes_the_specification_threshold() {
    for (ratio, th) in [(0.1, "ot=th:e66666"), (0.01, "ot=th:fd70a4")] {
        let collector = TestCollector::start().await.unwrap();
        let telemetry = Telemetry::start(config(&collector, ratio)).unwrap();
        let n = 100_000;
        for _ in 0..n {
            telemetry.tracer().start("payment").end();
        }
        shutdown(telemetry).await;
        let spans = collector.spans();
        let share = spans.len() as f64 / f64::from(n);
        assert!((share / ratio - 1.0).abs() < 0.1, "{ratio}: {share}");
        assert!(spans.iter().all(|s| trace_state(s) == th), "{ratio}");
    }
}

/// Service A calls service B through the client layer; both sample at 50 %.
async fn service_b(collector: &TestCollector) -> (Telemetry, SocketAddr) {
    let telemetry = Telemetry::start(config(collector, 0.5)).unwrap();
    let app = Router::new()
        .route("/ledger/ok", get(|| async { StatusCode::OK }))
        .route(
            "/ledger/fail",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(telemetry.http_layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (telemetry, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_agree_on_one_trace() {
    install_propagator();
    let (collector_a, collector_b) = (
        TestCollector::start().await.unwrap(),
        TestCollector::start().await.unwrap(),
    );
    let (telemetry_b, b) = service_b(&collector_b).await;
    let telemetry_a = Telemetry::start(config(&collector_a, 0.5)).unwrap();
    let client = ServiceBuilder::new()
        .layer(telemetry_a.http_client_layer())
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<String>(),
        );
    let app = Router::new()
        .route(
            "/pay/{outcome}",
            get(move |Path(outcome): Path<String>| {
                let mut client = client.clone();
                async move {
                    let request = Request::get(format!("http://{b}/ledger/{outcome}"))
                        .body(String::new())
                        .unwrap();
                    let response = client.ready().await.unwrap().call(request).await.unwrap();
                    if response.status().is_success() {
                        StatusCode::OK
                    } else {
                        StatusCode::BAD_GATEWAY
                    }
                }
            }),
        )
        .layer(telemetry_a.http_layer());
    for i in 0..200 {
        let outcome = if i % 4 == 0 { "fail" } else { "ok" };
        let response = app
            .clone()
            .oneshot(
                Request::get(format!("/pay/{outcome}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    shutdown(telemetry_a).await;
    shutdown(telemetry_b).await;

    let by_trace = |spans: Vec<ReceivedSpan>| {
        let mut map: BTreeMap<String, Vec<ReceivedSpan>> = BTreeMap::new();
        for s in spans {
            map.entry(s.trace_id_hex()).or_default().push(s);
        }
        map
    };
    let (a, b) = (by_trace(collector_a.spans()), by_trace(collector_b.spans()));
    let failed = |spans: &Vec<ReceivedSpan>| {
        spans
            .iter()
            .any(|s| s.attr_str("url.path").is_some_and(|p| p.ends_with("/fail")))
    };
    // Every failed payment: both services kept the whole trace, by its outcome or by the ratio.
    let a_failed: BTreeSet<&String> = a
        .iter()
        .filter(|(_, s)| failed(s))
        .map(|(t, _)| t)
        .collect();
    let b_failed: BTreeSet<&String> = b
        .iter()
        .filter(|(_, s)| failed(s))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(a_failed.len(), 50, "A kept every failed payment");
    assert_eq!(a_failed, b_failed, "B kept the same failed traces");
    for trace in &a_failed {
        assert_eq!(a[*trace].len(), 2, "A's server and client span");
    }
    // The rest: B follows A's ratio decision, carried by the sampled flag and `th`.
    let a_ok: BTreeSet<&String> = a
        .iter()
        .filter(|(_, s)| !failed(s))
        .map(|(t, _)| t)
        .collect();
    let b_ok: BTreeSet<&String> = b
        .iter()
        .filter(|(_, s)| !failed(s))
        .map(|(t, _)| t)
        .collect();
    assert!(!a_ok.is_empty() && a_ok.len() < 150, "{}", a_ok.len());
    assert_eq!(
        a_ok, b_ok,
        "the downstream keeps exactly the traces the upstream's ratio kept"
    );
    for trace in &b_ok {
        assert!(b[*trace].iter().all(|s| trace_state(s).contains("th:8")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_stays_within_its_budget_while_roots_stay_open() {
    let collector = TestCollector::start().await.unwrap();
    collector.set_fault(paytrace::testing::Fault::Hang);
    let budget = 64 * 1024;
    let telemetry = Arc::new(
        Telemetry::start(
            config(&collector, 0.01)
                .with_tail_keep_budget(budget)
                .with_shutdown_timeout(Duration::from_secs(1)),
        )
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for task in 0..200 {
        let telemetry = telemetry.clone();
        tasks.push(tokio::spawn(async move {
            let tracer = telemetry.tracer();
            let root = tracer.start(format!("order {task}"));
            let cx = opentelemetry::Context::current_with_span(root);
            for i in 0..5 {
                let mut child = tracer.start_with_context(format!("step {i}"), &cx);
                child.set_attribute(opentelemetry::KeyValue::new("note", "x".repeat(200)));
                child.end();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            cx.span().end();
            telemetry
                .exporter_health()
                .tail_keep()
                .unwrap()
                .buffered_bytes
        }));
    }
    for task in tasks {
        let buffered = task.await.unwrap();
        assert!(buffered <= budget as u64, "{buffered}");
    }
    let keep = *telemetry.exporter_health().tail_keep().unwrap();
    assert!(keep.evicted_budget > 0, "{keep:?}");
    let telemetry = Arc::try_unwrap(telemetry).expect("sole owner");
    // The collector hangs: shutdown returns within its bound (a hang would stall this test),
    // without a panic, and says what it could not do.
    let result = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    if keep.kept_ratio + keep.kept_error > 0 {
        assert!(result.is_err(), "nothing reached the hanging collector");
    }
}

/// The server span of each request (by route), its attributes as `key=value`, and its reason.
async fn server_spans(ratio: f64) -> BTreeMap<String, (BTreeSet<String>, Option<String>)> {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector, ratio)).unwrap();
    let tracer = telemetry.tracer().clone();
    let app = Router::new()
        .route(
            "/review/{id}",
            get(|| async {
                paytrace::keep_current_trace("manual review");
                "ok"
            }),
        )
        .route(
            "/review-in-child/{id}",
            get(move || {
                let tracer = tracer.clone();
                async move {
                    let child = tracer.start("fraud check");
                    let cx = opentelemetry::Context::current_with_span(child);
                    let _guard = cx.clone().attach();
                    paytrace::keep_current_trace("fraud check");
                    cx.span().end();
                    "ok"
                }
            }),
        )
        .route("/plain/{id}", get(|| async { "ok" }))
        .layer(telemetry.http_layer());
    for path in [
        "/review/4111?card=4111111111111111",
        "/review-in-child/7",
        "/plain/1",
    ] {
        let request = Request::get(path)
            .header("user-agent", "checkout-ios/5.2")
            .header("x-request-id", "req-42")
            .header("host", "pay.example.com:8443")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    shutdown(telemetry).await;
    collector
        .spans()
        .iter()
        .filter(|s| s.span.kind == 2)
        .map(|s| {
            let attrs = s
                .span
                .attributes
                .iter()
                .filter(|kv| !kv.key.starts_with("paytrace.sampling."))
                .map(|kv| format!("{}={:?}", kv.key, kv.value))
                .collect();
            (
                s.attr_str("http.route").unwrap_or_default(),
                (attrs, reason(s)),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_trace_has_every_attribute_a_sampled_one_has() {
    install_propagator();
    // Sampled by the ratio: every attribute built when the request starts.
    let sampled = server_spans(1.0).await;
    assert_eq!(sampled.len(), 3, "{sampled:?}");
    // Held by tail keep, the attributes built only once the trace is kept.
    let kept = server_spans(1e-9).await;
    assert!(
        !kept.contains_key("/plain/{id}"),
        "a plain trace is dropped"
    );
    for path in ["/review/{id}", "/review-in-child/{id}"] {
        let (attrs, reason) = kept.get(path).unwrap_or_else(|| panic!("{path} not kept"));
        assert_eq!(reason.as_deref(), Some("forced"), "{path}");
        assert_eq!(attrs, &sampled[path].0, "{path}");
        for attr in [
            "url.path",
            "url.query",
            "server.address",
            "user_agent.original",
            "paytrace.request_id",
            "http.response.status_code",
        ] {
            assert_eq!(
                attrs
                    .iter()
                    .filter(|a| a.starts_with(&format!("{attr}=")))
                    .count(),
                usize::from(attr != "url.query" || path.starts_with("/review/")),
                "{path}: {attr} in {attrs:?}"
            );
        }
    }
}
