//! Run with: `cargo run --example w3c_service` (prints `listening on http://ADDR/test`).
//!
//! The test service the W3C Trace Context suite's harness drives (`scripts/w3c.sh`): paytrace's
//! server `TraceLayer` in, its `ClientLayer` out, default propagators and sampler. `POST /test`
//! takes a JSON list of `{"url", "arguments"}` and, for each, POSTs `arguments` to `url` from
//! inside the request, so the harness sees what paytrace propagates.
use std::time::Duration;

use axum::{routing::post, Json, Router};
use serde_json::Value;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

type Client = paytrace::http::ClientService<
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, String>,
>;

/// One callback: `arguments` POSTed to `url`, within the incoming request's trace.
async fn call(mut client: Client, item: &Value) {
    let (Some(url), Some(arguments)) = (item["url"].as_str(), item.get("arguments")) else {
        return;
    };
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(arguments.to_string());
    let Ok(request) = request else { return };
    let sent = async {
        let response = client.ready().await?.call(request).await?;
        http_body_util::BodyExt::collect(response.into_body()).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(5), sent).await {
        eprintln!("w3c_service: callback to {url} timed out: {e}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = paytrace::init_tracer(
        paytrace::Config::from_env()
            .with_service_name("w3c-test-service")
            .with_log_format(paytrace::LogFormat::Off),
    )?;
    let client: Client = ServiceBuilder::new()
        .layer(telemetry.http_client_layer())
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<String>(),
        );
    let app = Router::new()
        .route(
            "/test",
            post(move |Json(items): Json<Vec<Value>>| async move {
                for item in &items {
                    call(client.clone(), item).await;
                }
                "ok"
            }),
        )
        .layer(telemetry.http_layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}/test", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    Ok(())
}
