//! One span created and ended, sampled:
//! - `paytrace`: `telemetry.tracer()` into paytrace's bounded queue (export disabled by a
//!   schedule delay of an hour and a queue that drops when full, so only the request-path cost
//!   is measured);
//! - `paytrace otel api, in_span`: the same tracer's span made current while a closure runs
//!   (`Tracer::in_span`), as a handler's OpenTelemetry-API span is;
//! - `paytrace #[instrument]`: an `#[instrument]` function through `telemetry.subscriber()`
//!   (paytrace's span store, the log filter, stdout off) into the same queue; both are root
//!   spans, and the `#[instrument]` one also writes the random-trace marker;
//! - `…, child`: the same two inside a request's context, as a handler's spans are;
//! - `otel api + stock batch`: the OpenTelemetry API on the stock SDK batch processor;
//! - `tracing + tracing-otel`: `tracing::info_span!` through tracing-opentelemetry into the
//!   stock batch processor;
//! - `paytrace tail keep, trace of 1` / `of 3`: a trace the ratio does not keep, recorded and
//!   held by tail keep until its root ends, then dropped (the common case at a low ratio): the
//!   keeper's bookkeeping on the request path, per span, against the sampled `paytrace` row.
//!
//! Run: `cargo bench --bench span -- --warm-up-time 1 --measurement-time 3`.
//! Machine: 2 vCPU AMD EPYC (shared, noisy). Results: paytrace 421 ns, OTel API on the stock
//! batch processor 323 ns (paytrace 1.30×), tracing + tracing-otel 1.75 µs (paytrace 0.24×).

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use tracing_subscriber::layer::SubscriberExt as _;

fn spans(c: &mut Criterion) {
    let telemetry = paytrace::Telemetry::start(
        paytrace::Config::new()
            .with_endpoint("http://127.0.0.1:9")
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_span_schedule_delay(std::time::Duration::from_secs(3600))
            .with_span_batch_size(1 << 20)
            .with_span_queue_size(1 << 20)
            .with_shutdown_timeout(std::time::Duration::from_millis(100)),
    )
    .expect("telemetry");
    let stock = support::stock_provider();
    let stock_tracer = stock.tracer("bench");

    let kept_by_outcome_only = paytrace::Telemetry::start(
        paytrace::Config::new()
            .with_endpoint("http://127.0.0.1:9")
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_sampler(paytrace::Sampler::ParentBasedRatio(1e-12))
            .with_shutdown_timeout(std::time::Duration::from_millis(100)),
    )
    .expect("telemetry");

    let mut group = c.benchmark_group("span");
    group.bench_function("paytrace", |b| {
        b.iter(|| telemetry.tracer().start("op").end())
    });
    // The span a handler makes: current while its work runs, then ended.
    group.bench_function("paytrace otel api, in_span", |b| {
        b.iter(|| telemetry.tracer().in_span("op", |_cx| {}))
    });
    {
        let _default = tracing::subscriber::set_default(telemetry.subscriber());
        group.bench_function("paytrace #[instrument]", |b| b.iter(instrumented));
    }
    // The same two inside a request's context: child spans, as a handler makes them.
    {
        let request =
            opentelemetry::Context::current_with_span(telemetry.tracer().start("request"));
        let _request = request.attach();
        group.bench_function("paytrace otel api, in_span, child", |b| {
            b.iter(|| telemetry.tracer().in_span("op", |_cx| {}))
        });
        let _default = tracing::subscriber::set_default(telemetry.subscriber());
        group.bench_function("paytrace #[instrument], child", |b| b.iter(instrumented));
    }
    group.bench_function("paytrace tail keep, trace of 1", |b| {
        b.iter(|| kept_by_outcome_only.tracer().start("op").end())
    });
    group.bench_function("paytrace tail keep, trace of 3 (per trace)", |b| {
        let tracer = kept_by_outcome_only.tracer();
        b.iter(|| {
            let root = opentelemetry::Context::current_with_span(tracer.start("root"));
            tracer.start_with_context("child", &root).end();
            tracer.start_with_context("child", &root).end();
            root.span().end();
        })
    });
    group.bench_function("otel api + stock batch", |b| {
        b.iter(|| stock_tracer.start("op").end())
    });
    {
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(stock_tracer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        group.bench_function("tracing + tracing-otel", |b| {
            b.iter(|| tracing::info_span!("op").in_scope(|| {}))
        });
    }
    group.finish();
    let _ = telemetry.shutdown();
    let _ = kept_by_outcome_only.shutdown();
    let _ = stock.shutdown();
}

#[tracing::instrument]
fn instrumented() {}

criterion_group!(benches, spans);
criterion_main!(benches);
