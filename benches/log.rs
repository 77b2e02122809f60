//! Cost of one INFO event with five fields inside a sampled span (its OpenTelemetry context
//! attached), written as JSON to a discarding writer:
//! - `paytrace JsonLayer` (trace_id/span_id injected, fields redacted, card numbers masked);
//! - `tracing-subscriber json` (its own JSON formatter, no trace ids) — the baseline.
//!
//!
//! And the stdout writer behind it (`log-writer` group), the same JSON line written through:
//! - `paytrace Stdout`: lines appended to a bounded buffer that a thread writes out on a tick;
//! - `tracing-appender non_blocking`: a channel to a worker thread woken per line (lossy mode).
//!
//! Both write to a discarding sink, so what is measured is the caller's share: the reason
//! paytrace keeps a hand-written writer is that the caller never pays a cross-thread wakeup.
//!
//! Target: paytrace at most 1.2x the baseline. Run: `cargo bench --bench log`. Results: README.

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use tracing_subscriber::layer::SubscriberExt as _;

fn event() {
    tracing::info!(
        order_id = 42_u64,
        amount = 1999_i64,
        currency = "EUR",
        channel = "alipay",
        retry = false,
        "payment callback processed"
    );
}

fn logs(c: &mut Criterion) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bench");
    let cx = opentelemetry::Context::current_with_span(tracer.start("request"));
    let _attached = cx.attach();

    let mut group = c.benchmark_group("log");
    {
        let subscriber = tracing_subscriber::registry()
            .with(paytrace::log::JsonLayer::new(std::io::sink).with_service_name("bench"));
        let _default = tracing::subscriber::set_default(subscriber);
        group.bench_function("paytrace JsonLayer", |b| b.iter(event));
    }
    {
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::sink),
        );
        let _default = tracing::subscriber::set_default(subscriber);
        group.bench_function("tracing-subscriber json", |b| b.iter(event));
    }
    group.finish();
}

fn writers(c: &mut Criterion) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bench");
    let cx = opentelemetry::Context::current_with_span(tracer.start("request"));
    let _attached = cx.attach();

    let mut group = c.benchmark_group("log-writer");
    {
        let stdout = paytrace::log::Stdout::new(std::io::sink(), 8192);
        let subscriber = tracing_subscriber::registry()
            .with(paytrace::log::JsonLayer::new(stdout.writer()).with_service_name("bench"));
        let _default = tracing::subscriber::set_default(subscriber);
        group.bench_function("paytrace Stdout", |b| b.iter(event));
    }
    {
        let (writer, _guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(true)
            .finish(std::io::sink());
        let subscriber = tracing_subscriber::registry()
            .with(paytrace::log::JsonLayer::new(writer).with_service_name("bench"));
        let _default = tracing::subscriber::set_default(subscriber);
        group.bench_function("tracing-appender non_blocking", |b| b.iter(event));
    }
    group.finish();
}

criterion_group!(benches, logs, writers);
criterion_main!(benches);
