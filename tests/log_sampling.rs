//! Log sampling keeps every WARN/ERROR and every critical-route record, keeps the configured
//! share of INFO, and counts what it drops.

mod support;

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use paytrace::log::{JsonLayer, LogSampling};
use paytrace::testing::TestCollector;
use paytrace::Telemetry;
use support::{config, Lines};
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn subscriber(telemetry: &Telemetry, lines: &Lines) -> impl tracing::Subscriber + Send + Sync {
    let make = lines.clone();
    tracing_subscriber::registry()
        .with(telemetry.layers())
        .with(JsonLayer::new(move || make.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratio_keeps_its_share_and_every_warning() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector).with_log_sampling(LogSampling::ratio(0.2))).unwrap();
    let lines = Lines::default();
    let total = 10_000;
    tracing::subscriber::with_default(subscriber(&telemetry, &lines), || {
        for i in 0..total {
            // Each record in its own trace: the decision follows the trace id.
            let cx = opentelemetry::Context::current_with_span(telemetry.tracer().start("op"));
            let _attached = cx.clone().attach();
            tracing::info!(i, "sampled info");
            if i % 20 == 0 {
                tracing::warn!(i, "always warn");
                tracing::error!(i, "always error");
            }
        }
    });
    let kept = lines.count("sampled info");
    assert!(
        (1800..=2200).contains(&kept),
        "kept {kept} of {total} at 0.2"
    );
    assert_eq!(lines.count("always warn"), total / 20);
    assert_eq!(lines.count("always error"), total / 20);
    assert_eq!(telemetry.log_stats().sampled_out, (total - kept) as u64);
    assert!(telemetry.prometheus_text().contains(&format!(
        "paytrace_log_records_dropped_total{{reason=\"sampled\"}} {}",
        total - kept
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_routes_are_always_kept() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        config(&collector)
            .with_log_sampling(LogSampling::ratio(0.0).with_critical_routes(["/callback"])),
    )
    .unwrap();
    let lines = Lines::default();
    let app = axum::Router::new()
        .route(
            "/callback",
            axum::routing::post(|| async {
                tracing::info!("callback handled");
                "ok"
            }),
        )
        .route(
            "/orders",
            axum::routing::get(|| async {
                tracing::info!("orders handled");
                "ok"
            }),
        )
        .layer(telemetry.http_layer());
    let _default = tracing::subscriber::set_default(subscriber(&telemetry, &lines));
    for _ in 0..20 {
        for (method, path) in [("POST", "/callback"), ("GET", "/orders")] {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(lines.count("callback handled"), 20);
    assert_eq!(lines.count("orders handled"), 0);
    assert_eq!(telemetry.log_stats().sampled_out, 20);
}
