//! Per-request cost through `tower::ServiceExt::oneshot` on an axum router with a trivial
//! handler, in one criterion group (a ladder), sampled at 100 %:
//!
//! - `bare`: the router alone;
//! - `floor`: a minimal hand-written layer that starts and ends one OpenTelemetry span;
//! - `paytrace`: `paytrace::http::TraceLayer` with its RED metrics;
//! - `tower-http + tracing-otel`: tower-http's `TraceLayer` + `tracing-opentelemetry` +
//!   `tracing-subscriber` JSON to a discarding writer — the common stack today;
//! - `otel-instrumentation-tower`: the official `opentelemetry-instrumentation-tower` layer
//!   (tracing + metrics, global providers);
//! - `axum-tracing-opentelemetry`: its `OtelAxumLayer` + `OtelInResponseLayer` on the same
//!   tracing stack.
//!
//! Every row's spans go to the same pipeline: the stock SDK batch processor feeding an exporter
//! that discards, so the figures compare the layers, not exporters (export cost is measured in
//! `benches/export.rs`). Run: `cargo bench --bench http`. Results: see README "Performance".

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use support::{drive, router, stock_provider, FloorLayer};
use tracing_subscriber::layer::SubscriberExt as _;

fn ladder(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let provider = stock_provider();
    let tracer = provider.tracer("bench");
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let registry = prometheus::Registry::new();

    let mut group = c.benchmark_group("request");

    let bare = router();
    group.bench_function("bare", |b| b.to_async(&rt).iter(|| drive(bare.clone())));

    let floor = router().layer(FloorLayer(tracer.clone()));
    group.bench_function("floor", |b| b.to_async(&rt).iter(|| drive(floor.clone())));

    let paytrace = router().layer(
        paytrace::http::TraceLayer::from_tracer(tracer.clone()).with_metrics(Some(
            paytrace::http::HttpMetrics::new(&registry).expect("metrics"),
        )),
    );
    group.bench_function("paytrace", |b| {
        b.to_async(&rt).iter(|| drive(paytrace.clone()))
    });

    let official = router().layer(
        opentelemetry_instrumentation_tower::http::server::LayerBuilder::builder()
            .build()
            .expect("official layer"),
    );
    group.bench_function("otel-instrumentation-tower", |b| {
        b.to_async(&rt).iter(|| drive(official.clone()))
    });

    // The tracing-based stacks need their subscriber as the default while they run.
    let subscriber = || {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(support::sink()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(tracer.clone()))
    };
    let common = router().layer(tower_http::trace::TraceLayer::new_for_http());
    {
        let _default = tracing::subscriber::set_default(subscriber());
        group.bench_function("tower-http + tracing-otel", |b| {
            b.to_async(&rt).iter(|| drive(common.clone()))
        });
    }
    let axum_otel = router()
        .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
        .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default());
    {
        let _default = tracing::subscriber::set_default(subscriber());
        group.bench_function("axum-tracing-opentelemetry", |b| {
            b.to_async(&rt).iter(|| drive(axum_otel.clone()))
        });
    }
    group.finish();
    let _ = provider.shutdown();
}

criterion_group!(benches, ladder);
criterion_main!(benches);
