//! The Prometheus ↔ OTLP name table of `README.md` (and of the `paytrace::metrics` module docs)
//! against what paytrace really puts out: one of each family recorded through a real
//! `Telemetry`, then every row's Prometheus name must be a family of `prometheus_text()` and its
//! OTLP name and unit must reach the test collector — and every family on either side must have
//! a row. Edit the table, or the names, and this test says which side moved.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt as _;
use paytrace::metrics::OrderPoolMetrics;
use paytrace::testing::TestCollector;
use paytrace::{LogFormat, Telemetry};
use support::ledger::{Incoming, LedgerClient, LedgerServer};
use support::{config, WAIT};
use tower::ServiceExt as _;

/// One row of the table: Prometheus family, OTLP metric name, OTLP unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    prometheus: String,
    otlp: String,
    unit: String,
}

/// The rows of the first table after the heading that names "Prometheus ↔ OTLP", in Markdown
/// (`README.md`) or in `//!` docs.
fn table(text: &str) -> Vec<Row> {
    let mut lines = text
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l).trim())
        .skip_while(|l| !(l.starts_with('#') && l.contains("Prometheus ↔ OTLP")))
        .skip(1)
        .skip_while(|l| !l.starts_with('|'));
    let header = lines.next().expect("a table after the heading");
    assert!(header.contains("Prometheus"), "{header}");
    let separator = lines.next().expect("the separator row");
    assert!(separator.starts_with("|---"), "{separator}");
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            assert_eq!(cells.len(), 3, "a row of three cells: {l}");
            Row {
                prometheus: cells[0].to_owned(),
                otlp: cells[1].to_owned(),
                unit: cells[2].to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_readme_and_the_module_docs_give_the_same_table() {
    let readme = table(include_str!("../README.md"));
    let docs = table(include_str!("../src/metrics/mod.rs"));
    assert!(readme.len() >= 40, "{readme:#?}");
    let only_readme: Vec<_> = readme.iter().filter(|r| !docs.contains(r)).collect();
    let only_docs: Vec<_> = docs.iter().filter(|r| !readme.contains(r)).collect();
    assert!(
        only_readme.is_empty() && only_docs.is_empty(),
        "only in README.md: {only_readme:#?}\nonly in src/metrics/mod.rs: {only_docs:#?}"
    );
    assert_eq!(readme, docs, "the same rows, in another order");
    let unique: BTreeSet<_> = readme.iter().map(|r| &r.prometheus).collect();
    assert_eq!(unique.len(), readme.len(), "a family listed twice");
}

/// Records one of every family: the order pool, a slow HTTP request with a body, a slow gRPC
/// call through both layers, the tokio gauges and a runtime-control change (the exporter,
/// sampling, process and stdout-drop families are there from the start).
async fn record_everything(telemetry: &Telemetry) {
    let pool = OrderPoolMetrics::builder()
        .with_channels(["alipay"])
        .build(telemetry)
        .unwrap();
    pool.start_processing().success();
    pool.start_processing().failure("timeout");
    pool.set_pool_size(3);
    pool.set_capacity(100);
    pool.set_queue_length(2);
    pool.observe_query(0.02);
    pool.query_failed();
    pool.redis_error();
    pool.set_channel_concurrency("alipay", 1);
    pool.set_road_concurrency("road-1", 1);
    pool.set_face_value_concurrency("100", 1);

    let slow = Duration::from_millis(1);
    let app = Router::new()
        .route(
            "/orders",
            post(|body: String| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                body
            }),
        )
        .layer(telemetry.http_layer().with_slow_threshold(slow));
    let request = http::Request::post("/orders")
        .header("content-length", "2")
        .body(Body::from("{}"))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_layer = telemetry.grpc_server_layer().with_slow_threshold(slow);
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .layer(server_layer)
            .add_service(LedgerServer)
            .serve_with_incoming(Incoming(listener))
            .await;
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let channel = tower::ServiceBuilder::new()
        .layer(
            telemetry
                .grpc_client_layer()
                .with_slow_threshold(slow)
                .with_authority(addr.to_string().parse().unwrap()),
        )
        .service(channel);
    let mut client = LedgerClient::new(channel);
    let mut request = support::ledger::post("sleep");
    request.get_mut().sleep_ms = 20;
    client.post(request).await.expect("the call succeeds");
    server.abort();

    telemetry
        .register_runtime_metrics(&tokio::runtime::Handle::current())
        .unwrap();
    telemetry
        .control()
        .set_log_filter("info", Duration::from_secs(60), "metric-names test")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_what_prometheus_and_otlp_really_show() {
    let rows = table(include_str!("../README.md"));
    let collector = TestCollector::start().await.unwrap();
    // JSON stdout (the default) registers `paytrace_log_records_dropped_total{reason="stdout_full"}`;
    // nothing is logged to it here (no subscriber is installed).
    let telemetry = std::sync::Arc::new(
        Telemetry::start(config(&collector).with_log_format(LogFormat::Json)).unwrap(),
    );
    record_everything(&telemetry).await;

    // Prometheus: every row is a family, every family is a row.
    let text = telemetry.prometheus_text();
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.prometheus.as_str()).collect();
    let missing: Vec<_> = listed.difference(&families).collect();
    assert!(
        missing.is_empty(),
        "in the table, not on /metrics: {missing:?}\n{text}"
    );
    let unlisted: Vec<_> = families.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "on /metrics, not in the table: {unlisted:?}"
    );

    // OTLP: a push after everything was recorded, then every row's name and unit.
    let t = telemetry.clone();
    tokio::task::spawn_blocking(move || t.force_flush())
        .await
        .unwrap()
        .expect("flush");
    for row in &rows {
        let metric = collector
            .wait_for_metric(&row.otlp, WAIT)
            .await
            .unwrap_or_else(|| panic!("{} never arrived over OTLP", row.otlp));
        assert_eq!(metric.scope, "paytrace", "{row:?}");
        assert_eq!(metric.metric.unit, row.unit, "unit of {}", row.otlp);
    }
    let exported: BTreeSet<String> = collector
        .metrics()
        .into_iter()
        .filter(|m| m.scope == "paytrace")
        .map(|m| m.metric.name)
        .collect();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.otlp.clone()).collect();
    let unlisted: Vec<_> = exported.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "over OTLP, not in the table: {unlisted:?}"
    );

    tokio::task::spawn_blocking(move || std::sync::Arc::into_inner(telemetry).unwrap().shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}
