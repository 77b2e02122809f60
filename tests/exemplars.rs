//! Exemplars point only at exported traces: at 10 % and 1 % with tail keep (and at 10 % without
//! it, where failed requests are not kept), every exemplar of
//! the request-duration histogram — in OTLP and in the OpenMetrics answer of `/metrics` — names
//! a trace the collector received; failed and slow requests get theirs; the 0.0.4 text is
//! unchanged and carries none.
#![cfg(feature = "axum")]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use paytrace::testing::TestCollector;
use paytrace::{Config, LogFormat, Sampler, Telemetry};
use support::install_propagator;
use tower::ServiceExt as _;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn run(ratio: f64, tail_keep: bool) {
    run_with(ratio, tail_keep, None).await;
}

/// `keeps_per_second`: tail keep's storm cap, past which it thins outcome keeps away.
async fn run_with(ratio: f64, tail_keep: bool, keeps_per_second: Option<u32>) {
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let mut config = Config::new();
    if let Some(limit) = keeps_per_second {
        config = config.with_tail_keep_rate_limit(limit);
    }
    let telemetry = Telemetry::start(
        config
            .with_endpoint(collector.endpoint())
            .with_install_subscriber(false)
            .with_log_format(LogFormat::Off)
            .with_span_schedule_delay(Duration::from_millis(50))
            .with_metric_interval(Duration::from_millis(200))
            .with_sampler(Sampler::ParentBasedRatio(ratio))
            .with_tail_keep(tail_keep),
    )
    .unwrap();
    let app = Router::new()
        .route(
            "/orders/{n}",
            get(|Path(n): Path<u32>| async move {
                if n % 50 == 7 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                if n % 50 == 0 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route_service("/metrics", telemetry.metrics_service())
        .layer(
            telemetry
                .http_layer()
                .with_slow_threshold(Duration::from_millis(20)),
        );
    support::get_orders(&app, 2_000).await;

    // OpenMetrics when asked for, 0.0.4 (unchanged) otherwise.
    let scrape = |accept: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut request = Request::get("/metrics");
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let response = app
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (content_type, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (om_type, openmetrics) = scrape(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ))
    .await;
    let (text_type, text) = scrape(None).await;
    assert!(om_type.starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(text_type.starts_with("text/plain; version=0.0.4"));
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(!text.contains(" # {"), "no exemplar in 0.0.4 text");
    // The 0.0.4 answer is the registry's own text encoder (values move between two reads, the
    // families do not).
    let families = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("# "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(families(&text), families(&telemetry.prometheus_text()));

    let flushed = tokio::task::spawn_blocking(move || {
        let _ = telemetry.force_flush();
        telemetry
    })
    .await
    .unwrap();
    let exported: BTreeSet<String> = collector.spans().iter().map(|s| s.trace_id_hex()).collect();

    // OpenMetrics: exemplars on bucket lines only, each naming an exported trace.
    let mut om_exemplars = 0;
    let mut om_error_exemplars = 0;
    for line in openmetrics.lines() {
        let Some((sample, exemplar)) = line.split_once(" # {") else {
            continue;
        };
        assert!(
            sample.starts_with("http_server_request_duration_seconds_bucket{"),
            "exemplar on {line}"
        );
        let trace = exemplar
            .split("trace_id=\"")
            .nth(1)
            .and_then(|s| s.get(..32))
            .unwrap();
        assert!(
            exported.contains(trace),
            "{ratio}: exemplar of unexported trace {trace}"
        );
        om_exemplars += 1;
        om_error_exemplars += usize::from(sample.contains("http_response_status_code=\"500\""));
    }
    assert!(om_exemplars > 0, "{ratio}: {openmetrics}");
    // Without tail keep a failed request's trace is exported only when the ratio kept it.
    assert!(
        !tail_keep || om_error_exemplars > 0,
        "{ratio}: failed requests have exemplars"
    );

    // OTLP: the same, on the duration histogram's data points.
    let mut otlp_exemplars = 0;
    for request in collector.metric_requests() {
        for rm in &request.message.resource_metrics {
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    if let Some(paytrace::testing::proto::metrics::v1::metric::Data::Histogram(h)) =
                        &m.data
                    {
                        for p in &h.data_points {
                            for e in &p.exemplars {
                                assert_eq!(m.name, "http.server.request.duration");
                                assert!(exported.contains(&hex(&e.trace_id)), "{ratio}");
                                otlp_exemplars += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(otlp_exemplars > 0, "{ratio}: no OTLP exemplar");
    tokio::task::spawn_blocking(move || flushed.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_ten_percent_every_exemplar_names_an_exported_trace() {
    run(0.1, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tail_keep_every_exemplar_names_an_exported_trace() {
    run(0.1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_one_percent_every_exemplar_names_an_exported_trace() {
    run(0.01, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_an_error_storm_no_exemplar_names_a_thinned_trace() {
    // 80 failed or slow requests in well under a second against a cap of 2 keeps a second:
    // most outcome keeps are thinned away, and their exemplars with them.
    run_with(0.01, true, Some(2)).await;
}
