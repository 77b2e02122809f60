//! Run with: `cargo run --example payment_service`
//!
//! A small axum payment service instrumented with paytrace: create an order, query it, receive
//! the payment callback. By default it starts paytrace's in-process OTLP collector
//! (`paytrace::testing::TestCollector`) as its embedded collector, drives a few seconds of
//! self-load, prints what was exported, shuts telemetry down and exits 0.
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4317` exports to that collector instead; if it is
//!   down, refusing or hanging, the demo still completes, says so, and exits 0.
//! - `--serve` keeps serving on 127.0.0.1:3000 after the self-load (Ctrl-C to stop).
//! - `--seconds N` sets the self-load duration (default 3).
//! - `--logs` writes the JSON log records to stdout as well (off by default to keep the summary
//!   readable; they always go to the collector).
//! - `--watchdog-ms N` sets the exporter-health window (default 30 000 ms).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use paytrace::testing::TestCollector;
use paytrace::{Config, HealthState};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct AppState {
    next_id: Arc<AtomicU64>,
}

async fn create_order(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let amount = body.get("amount").and_then(Value::as_u64).unwrap_or(0);
    tracing::info!(order_id = id, amount, "order created");
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "status": "pending" })),
    )
}

async fn query_order(Path(id): Path<u64>) -> Result<Json<Value>, StatusCode> {
    if id % 10 == 0 {
        tracing::warn!(order_id = id, "order not found");
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(json!({ "id": id, "status": "paid" })))
}

async fn payment_callback(Json(body): Json<Value>) -> StatusCode {
    let id = body.get("order_id").and_then(Value::as_u64).unwrap_or(0);
    if id % 7 == 0 {
        tracing::error!(order_id = id, "payment callback rejected: bad signature");
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    tracing::info!(order_id = id, "payment callback processed");
    StatusCode::OK
}

fn app() -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(query_order))
        .route("/callback", post(payment_callback))
        .with_state(AppState::default())
}

/// Drive the service for `duration` with a mix of the three calls; returns (ok, failed).
async fn self_load(addr: SocketAddr, duration: Duration) -> (u64, u64) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let (mut ok, mut failed) = (0, 0);
    let end = Instant::now() + duration;
    let mut i: u64 = 0;
    while Instant::now() < end {
        i += 1;
        let (method, path, body) = match i % 3 {
            0 => (
                "POST",
                "/orders".to_owned(),
                json!({ "amount": 100 + i }).to_string(),
            ),
            1 => ("GET", format!("/orders/{i}"), String::new()),
            _ => (
                "POST",
                "/callback".to_owned(),
                json!({ "order_id": i }).to_string(),
            ),
        };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .expect("static request parts are valid");
        match client.request(request).await {
            Ok(response) if !response.status().is_server_error() => ok += 1,
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (ok, failed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    let flag = |name: &str| -> Option<u64> {
        let i = args.iter().position(|a| a == name)?;
        args.get(i + 1)?.parse().ok()
    };
    let seconds = flag("--seconds").unwrap_or(3);
    let watchdog = Duration::from_millis(flag("--watchdog-ms").unwrap_or(30_000));
    let log_format = if args.iter().any(|a| a == "--logs") {
        paytrace::LogFormat::Json
    } else {
        paytrace::LogFormat::Off
    };

    // Embedded collector unless the environment names one.
    let external = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let embedded = match external {
        Some(_) => None,
        None => Some(TestCollector::start().await?),
    };
    let mut config = Config::from_env()
        .with_service_name("payment-service")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_environment("demo")
        .with_metric_interval(Duration::from_secs(1))
        .with_export_timeout(Duration::from_secs(2))
        .with_shutdown_timeout(Duration::from_secs(3))
        .with_watchdog_interval(watchdog)
        .with_log_format(log_format);
    if let Some(collector) = &embedded {
        config = config.with_endpoint(collector.endpoint());
    }
    let telemetry = paytrace::init_tracer(config)?;

    let listener = tokio::net::TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app()).await });
    println!("payment-service listening on http://{addr}");

    let (ok, failed) = self_load(addr, Duration::from_secs(seconds)).await;
    if serve {
        println!("serving on http://{addr}; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    server.abort();

    // Flush first so the health figures include the final exports; both calls block, so they
    // run off the async worker threads.
    let (health, shutdown) = tokio::task::spawn_blocking(move || {
        let _ = telemetry.force_flush();
        let health = telemetry.exporter_health();
        (health, telemetry.shutdown())
    })
    .await?;

    println!("\n=== paytrace demo summary ===");
    println!("requests: {ok} ok, {failed} failed (5xx or transport)");
    match &embedded {
        Some(collector) => summarize(collector),
        None => println!(
            "exported to {}",
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default()
        ),
    }
    for s in health.signals() {
        println!(
            "exporter {:<7}: {:<8} exported={} failed={} dropped={}{}",
            s.signal.as_str(),
            s.state.as_str(),
            s.exported,
            s.failed,
            s.dropped,
            s.last_error
                .as_deref()
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default()
        );
    }
    match shutdown {
        Ok(()) => println!("shutdown: every signal flushed"),
        Err(e) => println!("shutdown: exports failed ({e}); the service itself was not affected"),
    }
    if health.state() != HealthState::Healthy {
        println!("note: telemetry export was not healthy during the run (see above)");
    }
    Ok(())
}

fn summarize(collector: &TestCollector) {
    let spans = collector.spans();
    let mut by_name: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for span in &spans {
        let entry = by_name
            .entry(span.name().to_owned())
            .or_insert((0, span.trace_id_hex()));
        entry.0 += 1;
    }
    println!("spans received: {}", spans.len());
    for (name, (count, trace_id)) in &by_name {
        println!("  {count:>5} x {name:<28} e.g. trace_id={trace_id}");
    }
    let mut metric_names: Vec<String> = collector
        .metrics()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    metric_names.sort();
    metric_names.dedup();
    println!("metrics received: {}", metric_names.join(", "));
    let logs = collector.log_records();
    println!("log records received: {}", logs.len());
    let encodings: std::collections::BTreeSet<_> =
        collector.encodings().into_iter().flatten().collect();
    println!("grpc-encoding seen: {encodings:?}");
}
