//! The foundation pipeline over the real wire: spans, metrics and logs reach an OTLP/gRPC
//! receiver gzip-compressed, with the right resource, and shutdown keeps its promises.
//!
//! `force_flush`/`shutdown` block their thread; the in-process collector runs on the test's
//! runtime, so these tests use a multi-thread runtime (or `spawn_blocking`) to keep it serving.

mod support;

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use paytrace::testing::{Fault, TestCollector};
use paytrace::{Config, Error, Sampler, Telemetry};
use support::{config, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_metrics_and_logs_arrive_gzip_with_resource_and_log_correlation() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector)).unwrap();

    let span = telemetry.tracer().start("charge-card");
    let cx = opentelemetry::Context::current_with_span(span);
    let (trace_id, span_id) = {
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    };
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        let _attached = cx.clone().attach();
        tracing::info!(order_id = 42, "card charged");
    });
    cx.span().end();
    let counter = telemetry
        .meter_provider()
        .meter("payments")
        .u64_counter("payments.refunds")
        .build();
    counter.add(3, &[KeyValue::new("currency", "EUR")]);

    telemetry.force_flush().unwrap();
    let span = collector
        .wait_for_span("charge-card", WAIT)
        .await
        .expect("span");
    let logs = collector.wait_for_logs(1, WAIT).await;
    let metric = collector
        .wait_for_metric("payments.refunds", WAIT)
        .await
        .expect("metric");

    assert_eq!(span.trace_id_hex(), trace_id);
    let log = logs
        .iter()
        .find(|l| l.body_str().as_deref() == Some("card charged"))
        .expect("log record");
    assert_eq!(
        log.trace_id_hex(),
        trace_id,
        "log record carries the span's trace id"
    );
    assert_eq!(
        log.span_id_hex(),
        span_id,
        "log record carries the span's span id"
    );
    assert_eq!(log.severity_text(), "INFO");
    assert_eq!(metric.name(), "payments.refunds");

    for key in [
        "host.name",
        "process.pid",
        "telemetry.sdk.language",
        "telemetry.sdk.name",
    ] {
        assert!(
            span.resource_attr_str(key).is_some(),
            "resource lacks {key}"
        );
    }
    assert_eq!(
        span.resource_attr_str("service.name").as_deref(),
        Some("paytrace-test")
    );
    assert_eq!(
        span.resource_attr_str("service.version").as_deref(),
        Some("1.2.3")
    );
    assert_eq!(
        span.resource_attr_str("deployment.environment.name")
            .as_deref(),
        Some("test")
    );
    assert_eq!(
        log.resource_attr_str("service.name").as_deref(),
        Some("paytrace-test")
    );

    let encodings = collector.encodings();
    assert!(encodings.len() >= 3);
    assert!(
        encodings.iter().all(|e| e.as_deref() == Some("gzip")),
        "{encodings:?}"
    );
    telemetry.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_configures_the_pipeline() {
    let collector = TestCollector::start().await.unwrap();
    let endpoint = collector.endpoint();
    let config = Config::from_env_vars([
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_SERVICE_NAME", "from-env"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team=payments,region=eu"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme"),
    ])
    .with_install_subscriber(false)
    .with_log_format(paytrace::LogFormat::Off)
    .with_shutdown_timeout(Duration::from_secs(2));
    let telemetry = Telemetry::start(config).unwrap();
    telemetry.tracer().start("env-span").end();
    // Metrics and logs go to a dead port, so the flush as a whole reports a timeout; the
    // traces part is what this test is about.
    let _ = telemetry.force_flush();
    let span = collector
        .wait_for_span("env-span", WAIT)
        .await
        .expect("span");
    assert_eq!(
        span.resource_attr_str("service.name").as_deref(),
        Some("from-env")
    );
    assert_eq!(span.resource_attr_str("team").as_deref(), Some("payments"));
    assert_eq!(
        collector.encodings()[0],
        None,
        "OTEL_EXPORTER_OTLP_COMPRESSION=none"
    );
    // Metrics and logs point at a dead port; shutdown still returns (with the truth).
    let _ = telemetry.shutdown();
}

#[tokio::test]
async fn invalid_environment_is_a_typed_error() {
    let err = Telemetry::start(Config::from_env_vars([(
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "ten",
    )]))
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                name: "OTEL_EXPORTER_OTLP_TIMEOUT",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_every_finished_span() {
    let collector = TestCollector::start().await.unwrap();
    // A schedule delay of an hour: only shutdown can have exported these.
    let telemetry = Telemetry::start(
        config(&collector)
            .with_span_schedule_delay(Duration::from_secs(3600))
            .with_span_queue_size(4096),
    )
    .unwrap();
    for i in 0..1500 {
        let mut span = telemetry.tracer().start(format!("op-{i}"));
        span.set_attribute(KeyValue::new("i", i64::from(i)));
        span.end();
    }
    telemetry.shutdown().unwrap();
    assert_eq!(collector.spans().len(), 1500);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_from_async_code_in_a_current_thread_runtime_loses_nothing() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(config(&collector).with_span_schedule_delay(Duration::from_secs(3600)))
            .unwrap();
    for _ in 0..100 {
        telemetry.tracer().start("ct").end();
    }
    // Blocking here stalls this runtime (and the collector running on it would stall too), so
    // shut down from a blocking thread while the collector keeps serving on this one.
    let result = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    result.unwrap();
    assert_eq!(collector.spans().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_within_its_timeout_against_a_hanging_collector() {
    let collector = TestCollector::start().await.unwrap();
    collector.set_fault(Fault::Hang);
    let telemetry =
        Telemetry::start(config(&collector).with_shutdown_timeout(Duration::from_millis(500)))
            .unwrap();
    telemetry.tracer().start("never-acknowledged").end();
    let err = telemetry.shutdown().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: "shutdown",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_a_failed_final_export() {
    let collector = TestCollector::start().await.unwrap();
    collector.set_fault(Fault::Reject(tonic::Code::InvalidArgument));
    let telemetry =
        Telemetry::start(config(&collector).with_span_schedule_delay(Duration::from_secs(3600)))
            .unwrap();
    telemetry.tracer().start("rejected").end();
    let err = telemetry.shutdown().unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExportFailed {
                signal: paytrace::Signal::Traces,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_mode_works_and_exports_nothing() {
    let collector = TestCollector::start().await.unwrap();
    for config in [
        config(&collector).with_disabled(true),
        Config::from_env_vars([("OTEL_SDK_DISABLED", "true")]),
    ] {
        let telemetry = Telemetry::start(config).unwrap();
        assert!(!telemetry.is_enabled());
        let span = telemetry.tracer().start("ignored");
        assert!(!span.is_recording());
        drop(span);
        tracing::subscriber::with_default(telemetry.subscriber(), || tracing::info!("still fine"));
        telemetry.force_flush().unwrap();
        telemetry.shutdown().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(collector.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_and_attribute_limits_apply() {
    let collector = TestCollector::start().await.unwrap();
    let none =
        Telemetry::start(config(&collector).with_sampler(Sampler::ParentBasedRatio(0.0))).unwrap();
    none.tracer().start("unsampled").end();
    none.shutdown().unwrap();
    assert!(collector.spans().is_empty(), "a 0 ratio exports nothing");

    let limited =
        Telemetry::start(config(&collector).with_attribute_value_length_limit(32)).unwrap();
    let mut span = limited.tracer().start("limited");
    span.set_attribute(KeyValue::new("huge", "x".repeat(1 << 20)));
    span.end();
    limited.shutdown().unwrap();
    let span = collector.wait_for_span("limited", WAIT).await.unwrap();
    assert_eq!(span.attr_str("huge").map(|v| v.len()), Some(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_carries_a_batch_over_a_collector_restart() {
    let collector = TestCollector::start().await.unwrap();
    let addr = collector.addr();
    let telemetry =
        Telemetry::start(config(&collector).with_export_timeout(Duration::from_secs(8))).unwrap();
    telemetry.tracer().start("before").end();
    telemetry.force_flush().unwrap();
    collector.stop().await;
    // Queued while the collector is gone: the export retries until it is back.
    telemetry.tracer().start("during-outage").end();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let collector = TestCollector::start_on(addr).await.unwrap();
    assert!(collector
        .wait_for_span("during-outage", WAIT)
        .await
        .is_some());
    telemetry.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_that_times_out_says_the_last_export_error() {
    // Nothing listens; the export keeps retrying (10 s budget) past the shutdown bound.
    let endpoint = support::closed_endpoint();
    let telemetry = Telemetry::start(
        Config::new()
            .with_endpoint(&endpoint)
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_shutdown_timeout(Duration::from_millis(1500)),
    )
    .unwrap();
    telemetry.tracer().start("lost").end();
    let err = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Timeout { .. }), "{text}");
    assert!(
        text.contains(&format!("no collector at {endpoint}")),
        "the timeout says why: {text}"
    );
}
