//! Run with: `cargo run --release --example hostile_soak -- [REQUESTS]`
//!
//! Memory under hostile traffic: an axum router with paytrace's HTTP layer, a handler that logs,
//! and the whole export pipeline to the in-process collector, fed REQUESTS (default 100 000)
//! hostile requests in a loop — forged, oversized and duplicated `traceparent`, 100-member
//! `tracestate`, malformed `baggage`, 90 extra headers, 16 KiB paths and queries, control bytes,
//! card numbers in paths and queries. The resident set size is sampled every tenth of the run;
//! after a warm-up tenth it must stay within ±10 % of its median, and the run exits 1 if not.
//! The figure is in the README's soak section.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::BodyExt as _;
use paytrace::testing::TestCollector;
use paytrace::{Config, LogFormat, Telemetry};
use tower::ServiceExt as _;

/// Resident set size in KiB, from `/proc/self/status` (0 where there is none).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The `i`-th hostile request: one of a dozen shapes, varied by `i` so that no two repeat.
fn hostile(i: usize) -> Request<Body> {
    let big = "x".repeat(16 * 1024);
    let (path, headers): (String, Vec<(String, Vec<u8>)>) = match i % 12 {
        0 => (format!("/orders/{i}?q={big}"), vec![]),
        1 => (format!("/{big}/{i}"), vec![]),
        2 => (
            "/orders/1".into(),
            vec![(
                "traceparent".into(),
                format!("00-{i:032x}-00f067aa0ba902b7-01{big}").into_bytes(),
            )],
        ),
        3 => (
            "/orders/2".into(),
            (0..3)
                .map(|k| {
                    let tp = format!("00-{:032x}-{:016x}-01", i + k + 1, k + 1);
                    ("traceparent".to_owned(), tp.into_bytes())
                })
                .collect(),
        ),
        4 => (
            "/orders/3".into(),
            vec![(
                "tracestate".into(),
                (0..100)
                    .map(|k| format!("v{k}x{i}=value{k}"))
                    .collect::<Vec<_>>()
                    .join(",")
                    .into_bytes(),
            )],
        ),
        5 => (
            "/orders/4".into(),
            vec![(
                "baggage".into(),
                format!("=;,,k{i}=%zz;;;=,{big}").into_bytes(),
            )],
        ),
        6 => (
            format!("/orders/{i}"),
            (0..90)
                .map(|k| (format!("x-extra-{k}"), format!("v{i}-{k}").into_bytes()))
                .collect(),
        ),
        7 => (
            "/orders/5".into(),
            vec![(
                "x-request-id".into(),
                format!("id\t{i}\x7f{big}").into_bytes(),
            )],
        ),
        8 => (
            format!(
                "/pay/4111%201111%201111%20{:04}?note=card%20{i}",
                i % 10_000
            ),
            vec![],
        ),
        9 => (
            format!("/orders/{i}"),
            vec![("user-agent".into(), format!("bot/{i} {big}").into_bytes())],
        ),
        10 => (
            format!("/orders/{i}?data=%7B%22card%22%3A%22{i:016}%22%7D"),
            vec![("cookie".into(), format!("session={i}").into_bytes())],
        ),
        _ => (
            "/orders/6".into(),
            vec![("traceparent".into(), vec![0x80, 0xff, b'-', 0x01])],
        ),
    };
    let mut request = Request::get(path);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            request = request.header(name, value);
        }
    }
    request.body(Body::empty()).expect("a valid request")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let collector = TestCollector::start().await?;
    let telemetry = Telemetry::start(
        Config::new()
            .with_endpoint(collector.endpoint())
            .with_service_name("hostile-soak")
            .with_install_subscriber(false)
            .with_log_format(LogFormat::Off)
            .with_span_schedule_delay(Duration::from_millis(100)),
    )?;
    let _subscriber = tracing::subscriber::set_default(telemetry.subscriber());
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                tracing::info!(order_id = 7, "order queried");
                "ok"
            }),
        )
        .route("/{*rest}", get(|| async { "any" }))
        .layer(telemetry.http_layer());

    let started = Instant::now();
    let step = (requests / 10).max(1);
    let mut samples = Vec::new();
    for i in 0..requests {
        let response = app.clone().oneshot(hostile(i)).await?;
        response.into_body().collect().await?;
        if (i + 1) % 1_000 == 0 {
            // The in-process collector keeps what it receives: keep its memory out of the figure.
            collector.clear();
        }
        if (i + 1) % step == 0 {
            samples.push(rss_kib());
            println!(
                "{:>8} requests  RSS {:>7} KiB  ({:.1} s)",
                i + 1,
                samples.last().copied().unwrap_or(0),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let health = telemetry.exporter_health();
    let traces = health.get(paytrace::Signal::Traces);
    println!(
        "spans exported {} dropped {} failed {}",
        traces.exported, traces.dropped, traces.failed
    );
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await??;

    let after_warmup = &samples[1.min(samples.len())..];
    let mut sorted = after_warmup.to_vec();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0) as f64;
    let (low, high) = (
        sorted.first().copied().unwrap_or(0) as f64,
        sorted.last().copied().unwrap_or(0) as f64,
    );
    let spread = if median > 0.0 {
        ((high - median).max(median - low)) / median
    } else {
        0.0
    };
    println!(
        "after warm-up: RSS {:.1}–{:.1} MiB, median {:.1} MiB, largest deviation {:.1} %",
        low / 1024.0,
        high / 1024.0,
        median / 1024.0,
        spread * 100.0
    );
    if spread > 0.10 {
        eprintln!("RSS is not flat after warm-up (more than ±10 % from its median)");
        std::process::exit(1);
    }
    Ok(())
}
