//! Cost of recording one processed order (count + processing time) through
//! `OrderPoolMetrics::processed`, which feeds both the Prometheus endpoint and OTLP, against the
//! same two operations on raw `prometheus` crate instruments.
//!
//! And the same inside a sampled trace, where the timer also writes its bucket's exemplar.
//!
//! Target: at most 2x the raw crate; an exemplar at most 100 ns more. Run:
//! `cargo bench --bench metrics`. Results: README.

use criterion::{criterion_group, criterion_main, Criterion};
use paytrace::metrics::{OrderPoolMetrics, PROCESSING_BUCKETS};
use std::hint::black_box;

fn record(c: &mut Criterion) {
    let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled()).expect("telemetry");
    let pool = OrderPoolMetrics::new(&telemetry).expect("metrics");
    let counter = prometheus::IntCounter::new("raw_processed_total", "h").expect("counter");
    let histogram = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("raw_processing_seconds", "h")
            .buckets(PROCESSING_BUCKETS.to_vec()),
    )
    .expect("histogram");

    let mut group = c.benchmark_group("order_pool");
    group.bench_function("raw prometheus", |b| {
        b.iter(|| {
            counter.inc();
            histogram.observe(black_box(0.042));
        })
    });
    group.bench_function("OrderPoolMetrics", |b| {
        b.iter(|| pool.processed(black_box(0.042)))
    });
    {
        // Inside a sampled trace: the timer also writes its bucket's exemplar.
        use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};
        let sampled = SpanContext::new(
            opentelemetry::trace::TraceId::from(7),
            opentelemetry::trace::SpanId::from(7),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let _attached = opentelemetry::Context::new()
            .with_remote_span_context(sampled)
            .attach();
        group.bench_function("OrderPoolMetrics, kept request (exemplar)", |b| {
            b.iter(|| pool.processed(black_box(0.042)))
        });
    }
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
