//! Run with: `cargo run --example payment_service`
//!
//! An axum payment service instrumented with paytrace: create an order (which reserves the
//! amount on a gRPC ledger service through the gRPC client layer, so a trace goes HTTP server →
//! gRPC client → gRPC server; every 13th reservation fails by design), query it, receive the
//! payment callback (which posts to a downstream ledger service through the HTTP client layer,
//! so a two-hop trace appears), settle an order (slow on purpose), and `/metrics`. By default it
//! starts paytrace's in-process OTLP collector (`paytrace::testing::TestCollector`) as its
//! embedded collector, drives a few seconds of self-load, prints what was exported, shuts
//! telemetry down and exits 0.
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4317` exports to that collector instead; if it is
//!   down, refusing or hanging, the demo still completes, says so, and exits 0.
//! - `--serve` keeps serving on 127.0.0.1:3000 (or `--port N`) after the self-load (Ctrl-C to
//!   stop).
//! - `--seconds N` sets the self-load duration (default 3).
//! - `--logs` writes the JSON log records to stdout as well (off by default to keep the summary
//!   readable; they always go to the collector).
//! - `--watchdog-ms N` sets the exporter-health window (default 30 000 ms).
//! - `--metrics-out FILE` writes the final Prometheus exposition to FILE.
//! - `OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1` samples 10 % by
//!   ratio; tail keep still exports every failed and slow request, and the summary says how many
//!   traces each reason kept.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use paytrace::metrics::OrderPoolMetrics;
use paytrace::testing::TestCollector;
use paytrace::{Config, HealthState, Telemetry};
use serde_json::{json, Value};
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

/// The demo lowers the slow-request threshold from its 5 s default so one request is flagged
/// without waiting 5 s.
const DEMO_SLOW_THRESHOLD: Duration = Duration::from_millis(300);

/// The gRPC ledger (a hand-written tonic service with prost messages, shared with the tests).
#[path = "../tests/support/ledger.rs"]
mod ledger;

type GrpcLedger = ledger::LedgerClient<paytrace::grpc::ClientService<tonic::transport::Channel>>;

type HttpClient = paytrace::http::ClientService<
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, String>,
>;

#[derive(Clone)]
struct AppState {
    next_id: Arc<AtomicU64>,
    pool: OrderPoolMetrics,
    ledger: SocketAddr,
    client: HttpClient,
    grpc_ledger: GrpcLedger,
}

async fn create_order(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let timer = state.pool.start_processing();
    let id = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let amount = body.get("amount").and_then(Value::as_u64).unwrap_or(0);
    state.pool.set_pool_size((id % 50) as i64);
    state.pool.set_queue_length((id % 7) as i64);
    state.pool.set_channel_concurrency(
        if id % 2 == 0 { "alipay" } else { "wechat" },
        (id % 5) as i64,
    );
    // A card number in a log field is masked before it reaches stdout or the collector.
    tracing::info!(
        order_id = id,
        amount,
        card_number = "4111111111111111",
        "order created"
    );
    if id % 11 == 0 {
        timer.failure("supplier_error");
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": "supplier unavailable" })),
        );
    }
    // The gRPC hop: reserve the amount on the ledger; every 13th reservation fails by design.
    let reservation = ledger::PostRequest {
        account: format!("order-{id}"),
        amount_cents: amount as i64,
        mode: if id % 13 == 0 { "fail" } else { "" }.into(),
        ..Default::default()
    };
    if let Err(status) = state
        .grpc_ledger
        .clone()
        .post(tonic::Request::new(reservation))
        .await
    {
        tracing::warn!(order_id = id, code = ?status.code(), "ledger reservation failed");
        timer.failure("supplier_error");
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": "ledger unavailable" })),
        );
    }
    timer.success();
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "status": "pending" })),
    )
}

async fn query_order(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, StatusCode> {
    let started = Instant::now();
    if id % 10 == 0 {
        state.pool.query_failed();
        tracing::warn!(order_id = id, "order not found");
        return Err(StatusCode::NOT_FOUND);
    }
    state.pool.observe_query(started.elapsed().as_secs_f64());
    Ok(Json(json!({ "id": id, "status": "paid" })))
}

async fn settle_order(Path(id): Path<u64>) -> Json<Value> {
    // Slow on purpose: above the demo's lowered threshold, so the layer flags it.
    tokio::time::sleep(DEMO_SLOW_THRESHOLD + Duration::from_millis(100)).await;
    Json(json!({ "id": id, "settled": true }))
}

async fn payment_callback(State(state): State<AppState>, Json(body): Json<Value>) -> StatusCode {
    let id = body.get("order_id").and_then(Value::as_u64).unwrap_or(0);
    if id % 7 == 0 {
        tracing::error!(order_id = id, "payment callback rejected: bad signature");
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    // Second hop: the ledger service, through the client layer (context injected).
    let mut request = http::Request::post(format!("http://{}/ledger/entries", state.ledger))
        .header("content-type", "application/json")
        .body(json!({ "order_id": id }).to_string())
        .expect("static request parts are valid");
    request
        .extensions_mut()
        .insert(paytrace::http::UrlTemplate("/ledger/entries"));
    let mut client = state.client.clone();
    let ledger_ok = match client.ready().await {
        Ok(ready) => ready
            .call(request)
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false),
        Err(_) => false,
    };
    // Work that outlives the request keeps its trace: capture the context, log later.
    let cx = opentelemetry::Context::current();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        paytrace::log::logger()
            .with_context(&cx)
            .in_scope(|| tracing::info!(order_id = id, ledger_ok, "payment notification sent"));
    });
    tracing::info!(order_id = id, ledger_ok, "payment callback processed");
    StatusCode::OK
}

async fn ledger_entry(Json(body): Json<Value>) -> StatusCode {
    let order_id = body.get("order_id").and_then(Value::as_u64).unwrap_or(0);
    tracing::info!(order_id, "ledger entry written");
    StatusCode::CREATED
}

fn app(telemetry: &Telemetry, state: AppState) -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(query_order))
        .route("/orders/{id}/settle", post(settle_order))
        .route("/callback", post(payment_callback))
        .with_state(state)
        .layer(
            telemetry
                .http_layer()
                .with_slow_threshold(DEMO_SLOW_THRESHOLD),
        )
        .route_service("/metrics", telemetry.metrics_service())
}

fn ledger(telemetry: &Telemetry) -> Router {
    Router::new()
        .route("/ledger/entries", post(ledger_entry))
        .layer(telemetry.http_layer())
}

#[derive(Default, Debug)]
struct LoadResult {
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
}

/// Drive the service for `duration` with a mix of the calls.
async fn self_load(addr: SocketAddr, duration: Duration) -> LoadResult {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let mut result = LoadResult::default();
    let end = Instant::now() + duration;
    let mut i: u64 = 0;
    while Instant::now() < end {
        i += 1;
        let (method, path, body) = match i % 4 {
            0 => (
                "POST",
                "/orders".to_owned(),
                json!({ "amount": 100 + i }).to_string(),
            ),
            1 => ("GET", format!("/orders/{i}"), String::new()),
            2 => (
                "POST",
                "/callback".to_owned(),
                json!({ "order_id": i }).to_string(),
            ),
            // One slow settlement early in the run.
            _ if i == 3 => ("POST", format!("/orders/{i}/settle"), String::new()),
            _ => (
                "GET",
                format!("/orders/{i}?token=secret-{i}"),
                String::new(),
            ),
        };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer demo-secret-token")
            .body(body)
            .expect("static request parts are valid");
        match client.request(request).await {
            Ok(response) => {
                *result
                    .by_status
                    .entry(response.status().as_u16())
                    .or_default() += 1
            }
            Err(_) => result.transport_errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    result
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| -> Option<String> {
        let i = args.iter().position(|a| a == name)?;
        args.get(i + 1).cloned()
    };
    let serve = args.iter().any(|a| a == "--serve");
    let seconds = flag("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3);
    let watchdog = Duration::from_millis(
        flag("--watchdog-ms")
            .and_then(|s| s.parse().ok())
            .unwrap_or(30_000),
    );
    let metrics_out = flag("--metrics-out");
    let log_format = if args.iter().any(|a| a == "--logs") {
        paytrace::LogFormat::Json
    } else {
        paytrace::LogFormat::Off
    };

    // Embedded collector unless the environment names one.
    let external = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let embedded = match &external {
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
    telemetry.register_runtime_metrics(&tokio::runtime::Handle::current())?;
    let pool = OrderPoolMetrics::builder()
        .with_failure_reasons(["supplier_error", "timeout"])
        .with_channels(["alipay", "wechat"])
        .build(&telemetry)?;
    pool.set_capacity(50);

    let ledger_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ledger_addr = ledger_listener.local_addr()?;
    let ledger_app = ledger(&telemetry);
    let ledger_server = tokio::spawn(async move { axum::serve(ledger_listener, ledger_app).await });

    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let grpc_server = {
        let layer = telemetry.grpc_server_layer();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(ledger::LedgerServer)
                .serve_with_incoming(ledger::Incoming(grpc_listener))
                .await
        })
    };
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))?.connect_lazy();
    let grpc_ledger = ledger::LedgerClient::new(
        ServiceBuilder::new()
            .layer(
                telemetry
                    .grpc_client_layer()
                    .with_authority(grpc_addr.to_string().parse()?),
            )
            .service(channel),
    );

    let client = ServiceBuilder::new()
        .layer(telemetry.http_client_layer())
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<String>(),
        );
    let state = AppState {
        next_id: Arc::default(),
        pool,
        ledger: ledger_addr,
        client,
        grpc_ledger,
    };
    let port: u16 = flag("--port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(if serve { 3000 } else { 0 });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let app = app(&telemetry, state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "payment-service listening on http://{addr} (ledger on http://{ledger_addr}, gRPC ledger on {grpc_addr})"
    );

    let load = self_load(addr, Duration::from_secs(seconds)).await;
    if serve {
        println!("serving on http://{addr}; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    // Let the spawned notification tasks log before shutting down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.abort();
    ledger_server.abort();
    grpc_server.abort();

    // Flush first so the health figures include the final exports; both calls block, so they
    // run off the async worker threads.
    let (health, exposition, shutdown) = tokio::task::spawn_blocking(move || {
        let _ = telemetry.force_flush();
        let health = telemetry.exporter_health();
        let exposition = telemetry.prometheus_text();
        (health, exposition, telemetry.shutdown())
    })
    .await?;
    if let Some(path) = metrics_out {
        std::fs::write(&path, &exposition)?;
    }

    println!("\n=== paytrace demo summary ===");
    let served: u64 = load.by_status.values().sum();
    println!(
        "requests: {served} served {:?} (4xx/5xx by design), {} transport errors",
        load.by_status, load.transport_errors
    );
    match &embedded {
        Some(collector) => summarize(collector),
        None => println!("exported to {}", external.unwrap_or_default()),
    }
    for s in health.signals() {
        println!(
            "exporter {:<7}: {:<8} exported={} rejected={} failed={} dropped={}{}",
            s.signal.as_str(),
            s.state.as_str(),
            s.exported,
            s.rejected,
            s.failed,
            s.dropped,
            s.last_error
                .as_deref()
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default()
        );
    }
    if let Some(keep) = health.tail_keep() {
        println!(
            "tail keep: kept ratio={} error={} slow={} forced={}, dropped={}, late kept/dropped={}/{}, evicted ttl/budget={}/{}",
            keep.kept_ratio,
            keep.kept_error,
            keep.kept_slow,
            keep.kept_forced,
            keep.dropped,
            keep.late_kept,
            keep.late_dropped,
            keep.evicted_ttl,
            keep.evicted_budget
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
    let label = |s: &paytrace::testing::ReceivedSpan| {
        let kind = if s.span.kind == 3 { "client" } else { "server" };
        format!("{} ({kind})", s.name())
    };
    let mut by_name: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for span in &spans {
        by_name
            .entry(label(span))
            .or_insert((0, span.trace_id_hex()))
            .0 += 1;
    }
    println!("spans received: {}", spans.len());
    for (name, (count, trace_id)) in &by_name {
        println!("  {count:>5} x {name:<35} e.g. trace_id={trace_id}");
    }
    // A two-hop trace: the ledger's server span shares the callback's trace.
    if let Some(ledger) = spans.iter().find(|s| s.name() == "POST /ledger/entries") {
        let trace = ledger.trace_id_hex();
        let mut hops: Vec<_> = spans.iter().filter(|s| s.trace_id_hex() == trace).collect();
        hops.sort_by_key(|s| s.span.start_time_unix_nano);
        let hops: Vec<String> = hops.into_iter().map(label).collect();
        println!("two-hop trace {trace}: {}", hops.join(" -> "));
    }
    // HTTP server -> gRPC client -> gRPC server, one trace.
    if let Some(grpc) = spans
        .iter()
        .find(|s| s.span.kind == 2 && s.name() == "ledger.v1.Ledger/Post")
    {
        let trace = grpc.trace_id_hex();
        let mut hops: Vec<_> = spans.iter().filter(|s| s.trace_id_hex() == trace).collect();
        hops.sort_by_key(|s| s.span.start_time_unix_nano);
        let hops: Vec<String> = hops.into_iter().map(label).collect();
        println!("gRPC hop trace {trace}: {}", hops.join(" -> "));
    }
    let mut grpc_codes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.attr("rpc.system.name").is_some()) {
        let side = if s.span.kind == 3 { "client" } else { "server" };
        let code = s.attr_str("rpc.response.status_code").unwrap_or_default();
        *grpc_codes.entry((side.to_owned(), code)).or_default() += 1;
    }
    let grpc_codes: Vec<String> = grpc_codes
        .into_iter()
        .map(|((side, code), n)| format!("{side} {code}={n}"))
        .collect();
    println!(
        "gRPC calls by status (INTERNAL by design): {}",
        grpc_codes.join(", ")
    );
    for slow in spans
        .iter()
        .filter(|s| s.attr_str("paytrace.slow").as_deref() == Some("true"))
    {
        println!(
            "slow request flagged (threshold lowered to {DEMO_SLOW_THRESHOLD:?} for the demo): {} trace_id={}",
            slow.name(),
            slow.trace_id_hex()
        );
    }
    let metric_names: BTreeSet<String> = collector
        .metrics()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    println!(
        "metrics received ({}): {}",
        metric_names.len(),
        metric_names.into_iter().collect::<Vec<_>>().join(", ")
    );
    let logs = collector.log_records();
    let with_trace = logs.iter().filter(|l| !l.trace_id_hex().is_empty()).count();
    println!(
        "log records received: {} ({with_trace} with a trace_id)",
        logs.len()
    );
    if let Some(note) = logs
        .iter()
        .find(|l| l.body_str().as_deref() == Some("payment notification sent"))
    {
        let same = spans
            .iter()
            .any(|s| s.name() == "POST /callback" && s.trace_id_hex() == note.trace_id_hex());
        println!(
            "spawned-task record after the request finished: trace_id={} (same as its request: {same})",
            note.trace_id_hex()
        );
    }
    let encodings: BTreeSet<_> = collector.encodings().into_iter().flatten().collect();
    println!("grpc-encoding seen: {encodings:?}");
}
