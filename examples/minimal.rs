//! Run with: `cargo run --example minimal`, then `curl http://ADDR/orders/7` (ADDR printed).
//! Spans, logs and metrics go to `OTEL_EXPORTER_OTLP_ENDPOINT` (default localhost:4317);
//! `/metrics` serves Prometheus; Ctrl-C stops the server and flushes.
use axum::{extract::Path, routing::get, Router};

#[tracing::instrument] // a child span of the request span
async fn charge(order_id: u64) -> &'static str {
    tracing::info!(order_id, "charged"); // a log record with the span's trace and span ids
    "paid"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry =
        paytrace::init_tracer(paytrace::Config::from_env().with_service_name("minimal"))?;
    let app = Router::new()
        .route("/orders/{id}", get(|Path(id): Path<u64>| charge(id)))
        .layer(telemetry.http_layer())
        .route_service("/metrics", telemetry.metrics_service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // The final flush waits on the network: off the async worker.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await??;
    Ok(())
}
