//! Runtime control: a log filter change reaches events from every thread and reverts at its TTL;
//! a keep-ratio change and a forced route show in what is exported; bad input changes nothing;
//! racing changes leave the last one in force and reverts never undo a newer one; the admin
//! endpoint speaks JSON.
#![cfg(feature = "axum")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use opentelemetry::trace::{Span as _, Tracer as _};
use paytrace::testing::TestCollector;
use paytrace::{Config, LogFormat, Sampler, Telemetry};
use support::{install_propagator, Capture};
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn config(collector: &TestCollector, ratio: f64) -> Config {
    Config::new()
        .with_endpoint(collector.endpoint())
        .with_install_subscriber(false)
        .with_log_format(LogFormat::Off)
        .with_log_filter("info")
        .with_span_schedule_delay(Duration::from_millis(50))
        .with_sampler(Sampler::ParentBasedRatio(ratio))
}

/// DEBUG events from `threads` threads, captured after the telemetry's filter.
fn debug_from_threads(capture: &Capture, telemetry: &Telemetry, threads: usize) -> usize {
    let subscriber = Arc::new(
        tracing_subscriber::registry()
            .with(telemetry.layers())
            .with(capture.clone()),
    );
    let before = capture.with_target("control_test").len();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let subscriber = subscriber.clone();
            s.spawn(move || {
                tracing::subscriber::with_default(subscriber, || {
                    tracing::debug!(target: "control_test", "detail");
                })
            });
        }
    });
    capture.with_target("control_test").len() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_change_reaches_every_thread_and_reverts_at_its_ttl() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector, 0.5)).unwrap();
    let capture = Capture::default();
    assert_eq!(
        debug_from_threads(&capture, &telemetry, 4),
        0,
        "info by default"
    );

    let control = telemetry.control();
    control
        .set_log_filter(
            "info,control_test=debug",
            // Long enough that a busy machine cannot revert it before the next line checks it.
            Duration::from_secs(2),
            "test",
        )
        .unwrap();
    assert_eq!(
        debug_from_threads(&capture, &telemetry, 4),
        4,
        "in force at once"
    );
    let state = control.state();
    assert_eq!(state.log_filter, "info,control_test=debug");
    assert_eq!(state.log_filter_change.unwrap().set_by, "test");

    let reverted = Instant::now() + Duration::from_secs(15);
    while control.state().log_filter != "info" {
        assert!(Instant::now() < reverted, "not reverted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(debug_from_threads(&capture, &telemetry, 4), 0, "reverted");
    assert!(telemetry
        .prometheus_text()
        .contains(r#"paytrace_control_changes_total{action="revert",setting="log_filter"} 1"#));
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_ratio_change_and_a_forced_route_show_in_what_is_exported() {
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector, 0.0)).unwrap();
    let control = telemetry.control();

    // Ratio 0: nothing by the ratio. Raised to 1 for a while: everything.
    control
        .set_keep_ratio(1.0, Duration::from_secs(60), "test")
        .unwrap();
    for _ in 0..100 {
        telemetry.tracer().start("kept").end();
    }
    control.reset("test");
    for _ in 0..100 {
        telemetry.tracer().start("not kept").end();
    }

    // A forced route keeps all of its traces and nothing else.
    control
        .force_keep_route("/orders/{id}", Duration::from_secs(60), "test")
        .unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .route("/carts/{id}", get(|| async { "ok" }))
        .layer(telemetry.http_layer());
    for path in ["/orders/1", "/carts/1"] {
        for _ in 0..50 {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            response.into_body().collect().await.unwrap();
        }
    }
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
    let spans = collector.spans();
    let count = |name: &str| spans.iter().filter(|s| s.name() == name).count();
    assert_eq!(count("kept"), 100);
    assert_eq!(count("not kept"), 0);
    assert_eq!(count("GET /orders/{id}"), 50);
    assert_eq!(count("GET /carts/{id}"), 0);
    assert!(spans
        .iter()
        .filter(|s| s.name() == "GET /orders/{id}")
        .all(|s| s.attr_str("paytrace.sampling.reason").as_deref() == Some("forced")));
    assert!(spans
        .iter()
        .filter(|s| s.name() == "kept")
        .all(|s| s.span.trace_state == "ot=th:0"));
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector, 0.1).with_control_max_ttl(Duration::from_secs(600)))
            .unwrap();
    let control = telemetry.control();
    let before = control.state();
    let ttl = Duration::from_secs(60);
    for (what, result) in [
        ("directive", control.set_log_filter("info,[[[", ttl, "t")),
        ("ratio", control.set_keep_ratio(1.5, ttl, "t")),
        ("negative ratio", control.set_keep_ratio(-0.1, ttl, "t")),
        (
            "ttl 0",
            control.set_log_filter("debug", Duration::ZERO, "t"),
        ),
        (
            "ttl over max",
            control.set_log_filter("debug", Duration::from_secs(601), "t"),
        ),
        ("route", control.force_keep_route("orders", ttl, "t")),
        (
            "route with space",
            control.force_keep_route("/a b", ttl, "t"),
        ),
    ] {
        let err = result.expect_err(what);
        assert!(
            matches!(err, paytrace::Error::InvalidConfig { .. }),
            "{what}: {err}"
        );
    }
    assert!(control
        .set_log_filter("info,[[[", ttl, "t")
        .unwrap_err()
        .to_string()
        .contains("[[["));
    assert_eq!(control.state(), before, "nothing changed");

    // Forced routes are bounded; forcing one already in force again is not another.
    for n in 0..paytrace::control::MAX_FORCED_ROUTES {
        control
            .force_keep_route(&format!("/r/{n}"), ttl, "t")
            .unwrap();
    }
    control.force_keep_route("/r/0", ttl, "t").unwrap();
    let err = control.force_keep_route("/one/more", ttl, "t").unwrap_err();
    assert!(err.to_string().contains("forced already"), "{err}");
    assert_eq!(
        control.state().forced_routes.len(),
        paytrace::control::MAX_FORCED_ROUTES
    );

    // Without a ratio sampler there is no ratio to change, and it says so.
    let all = Telemetry::start(Config::disabled()).unwrap();
    let err = all.control().set_keep_ratio(0.5, ttl, "t").unwrap_err();
    assert!(err.to_string().contains("ratio sampler"), "{err}");
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_changes_leave_the_last_in_force_and_reverts_never_undo_a_newer_one() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Arc::new(Telemetry::start(config(&collector, 0.1)).unwrap());
    let control = telemetry.control();
    // Traffic meanwhile.
    let traffic = {
        let telemetry = telemetry.clone();
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                telemetry.tracer().start("op").end();
            }
        })
    };
    std::thread::scope(|s| {
        for t in 0..8 {
            let control = control.clone();
            s.spawn(move || {
                for i in 0..50 {
                    // Short TTLs: many reverts fire while newer changes are set.
                    let ttl = Duration::from_millis(5 + (i % 7) as u64);
                    let _ = control.set_log_filter(&format!("info,t{t}=debug"), ttl, "racer");
                    let _ = control.set_keep_ratio(f64::from(i % 10) / 10.0, ttl, "racer");
                }
            });
        }
    });
    traffic.join().unwrap();
    // The last change: long-lived; every earlier one expires meanwhile.
    control
        .set_log_filter("info,last=debug", Duration::from_secs(60), "last")
        .unwrap();
    control
        .set_keep_ratio(0.25, Duration::from_secs(60), "last")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = control.state();
    assert_eq!(state.log_filter, "info,last=debug");
    assert_eq!(state.keep_ratio, Some(0.25));
    let telemetry = Arc::try_unwrap(telemetry).expect("sole owner");
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

async fn call(app: &Router, method: Method, body: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri("/admin/telemetry")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_admin_endpoint_reads_and_changes_the_state_as_json() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector, 0.1)).unwrap();
    let app: Router = Router::new().route_service("/admin/telemetry", telemetry.control_service());

    let (status, state) = call(&app, Method::GET, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["log_filter"], "info");
    assert_eq!(state["keep_ratio"], 0.1);

    let (status, state) = call(
        &app,
        Method::PUT,
        r#"{"force_keep_route": "/orders/{id}", "ttl_seconds": 600, "set_by": "alice"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["forced_routes"][0]["value"], "/orders/{id}");
    assert_eq!(state["forced_routes"][0]["set_by"], "alice");

    for bad in [
        "{not json",
        r#"{"log_filter": "debug"}"#,
        r#"{"keep_ratio": 2, "ttl_seconds": 10}"#,
        r#"{"ttl_seconds": 10}"#,
        r#"{"log_filter": "debug", "ttl_seconds": 999999}"#,
    ] {
        let (status, reply) = call(&app, Method::PUT, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply["error"].is_string(), "{bad}: {reply}");
    }
    let (_, state) = call(&app, Method::PUT, r#"{"reset": true}"#).await;
    assert_eq!(state["forced_routes"], serde_json::json!([]));
    let (status, _) = call(&app, Method::DELETE, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}
