//! Export cost: spans pushed through paytrace's queue and gzip OTLP/gRPC into the in-process
//! `TestCollector`.
//!
//! - `export/spans`: throughput of record + export of batches of 512 sampled spans (ten
//!   attributes each), waiting for the collector's acknowledgement (`force_flush`);
//! - printed once: CPU time of paytrace's export thread per exported span (encode + gzip +
//!   send), median and range of five rounds of 40 batches, read in nanoseconds from
//!   `/proc/self/task/*/schedstat` (so the in-process collector's own CPU is not counted), and
//!   the bytes of the same requests with gzip and without.
//!
//! Run: `cargo bench --bench export -- --warm-up-time 1 --measurement-time 3`.
//! Machine: 2 vCPU AMD EPYC (shared, noisy). Export-thread CPU per span: median of 11 runs'
//! medians 2.35 µs (1.89–2.59); the same binary moves by ±0.3 µs between runs. Gzip: 8.5×
//! fewer bytes (3.83 MB → 0.45 MB for 20 requests of 512 spans). Where the time goes: PERF.md.

mod support;

use std::io::Write as _;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry::KeyValue;
use paytrace::testing::TestCollector;
use paytrace::{Config, LogFormat, Telemetry};
use prost::Message as _;

const BATCH: usize = 512;

fn make_spans(telemetry: &Telemetry, n: usize) {
    for i in 0..n {
        let mut span = telemetry.tracer().start("GET /orders/{id}");
        span.set_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("url.path", format!("/orders/{i}")),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("server.address", "127.0.0.1"),
            KeyValue::new("server.port", 8080),
            KeyValue::new("network.protocol.version", "1.1"),
            KeyValue::new("user_agent.original", "wrk/4.2"),
            KeyValue::new("paytrace.request_id", format!("req-{i}")),
        ]);
        span.end();
    }
}

fn export(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let collector = rt.block_on(TestCollector::start()).expect("collector");
    let config = || {
        Config::new()
            .with_endpoint(collector.endpoint())
            .with_install_subscriber(false)
            .with_log_format(LogFormat::Off)
            .with_span_queue_size(BATCH * 4)
            .with_span_schedule_delay(Duration::from_secs(3600))
    };
    let telemetry = Telemetry::start(config()).expect("telemetry");

    // CPU per exported span: five rounds of 40 batches, median and range.
    let mut per_span = Vec::new();
    let mut exported_before = 0;
    for _ in 0..5 {
        let before = support::thread_cpu(|name| name == "paytrace-export");
        for _ in 0..40 {
            make_spans(&telemetry, BATCH);
            telemetry.force_flush().expect("flush");
        }
        let cpu = support::thread_cpu(|name| name == "paytrace-export") - before;
        let exported = telemetry
            .exporter_health()
            .get(paytrace::Signal::Traces)
            .exported;
        per_span.push(cpu * 1e6 / (exported - exported_before).max(1) as f64);
        exported_before = exported;
    }
    per_span.sort_by(f64::total_cmp);
    eprintln!(
        "export: export thread CPU per span, median of 5 rounds of {} spans: {:.2} µs (range {:.2}–{:.2})",
        40 * BATCH,
        per_span[2],
        per_span[0],
        per_span[4]
    );

    // Bytes on the wire with and without gzip, for the requests the collector received.
    let (mut plain, mut gzipped) = (0usize, 0usize);
    for request in collector.trace_requests().iter().take(20) {
        let bytes = request.message.encode_to_vec();
        plain += bytes.len();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&bytes).expect("in-memory");
        gzipped += gz.finish().expect("in-memory").len();
    }
    eprintln!(
        "export: 20 requests of {BATCH} spans: {plain} bytes uncompressed, {gzipped} gzipped ({:.1}x smaller)",
        plain as f64 / gzipped.max(1) as f64
    );
    collector.clear();

    let mut group = c.benchmark_group("export");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("spans", |b| {
        b.iter(|| {
            make_spans(&telemetry, BATCH);
            telemetry.force_flush().expect("flush");
        })
    });
    group.finish();
    let _ = telemetry.shutdown();
    collector.clear();
}

criterion_group!(benches, export);
criterion_main!(benches);
