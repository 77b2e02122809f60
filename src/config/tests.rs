//! Resolution of every setting: defaults, variables, code over environment, refusals.

use super::resolve::DEFAULT_TIMEOUT;
use super::*;
use crate::exporter::{Exporter, Protocol};
use std::time::Duration;

fn resolve(vars: &[(&str, &str)]) -> Result<Settings, Error> {
    Config::from_env_vars(vars.iter().copied()).resolve()
}

fn invalid_name(err: Error) -> &'static str {
    match err {
        Error::InvalidConfig { name, .. } => name,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let s = Config::new().resolve().unwrap();
    assert!(!s.disabled);
    assert_eq!(s.sampler, Sampler::ParentBasedAlwaysOn);
    assert_eq!(
        s.propagators,
        vec![Propagator::TraceContext, Propagator::Baggage]
    );
    assert!(s
        .export
        .targets
        .iter()
        .all(|t| t.gzip && t.timeout == DEFAULT_TIMEOUT));
    assert_eq!(s.export.targets.traces.endpoint, "http://localhost:4317");
    assert_eq!(s.export.span_batch.queue, None);
    assert_eq!(s.export.span_batch.queue_bytes, 16 * 1024 * 1024);
    assert!(s.export.retry);
}

#[test]
fn every_variable_is_honoured() {
    let s = resolve(&[
        (OTEL_SDK_DISABLED, "TRUE"),
        (OTEL_SERVICE_NAME, "pay"),
        (OTEL_RESOURCE_ATTRIBUTES, "team=payments,region=eu%2Dwest"),
        (OTEL_PROPAGATORS, "tracecontext"),
        (OTEL_TRACES_SAMPLER, "parentbased_traceidratio"),
        (OTEL_TRACES_SAMPLER_ARG, "0.25"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://logs:4317"),
        (OTEL_EXPORTER_OTLP_HEADERS, "x-token=abc%20def"),
        (OTEL_EXPORTER_OTLP_COMPRESSION, "none"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "1500"),
        (OTEL_BSP_MAX_QUEUE_SIZE, "100"),
        (OTEL_BSP_SCHEDULE_DELAY, "250"),
        (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "50"),
        (OTEL_BSP_EXPORT_TIMEOUT, "700"),
        (OTEL_BLRP_MAX_QUEUE_SIZE, "300"),
        (OTEL_METRIC_EXPORT_INTERVAL, "5000"),
        (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, "64"),
        (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, "16"),
    ])
    .unwrap();
    assert!(s.disabled);
    assert_eq!(s.resource.service_name.as_deref(), Some("pay"));
    assert!(s
        .resource
        .attributes
        .contains(&KeyValue::new("region", "eu-west")));
    assert_eq!(s.propagators, vec![Propagator::TraceContext]);
    assert_eq!(s.sampler, Sampler::ParentBasedRatio(0.25));
    let [traces, metrics, logs] = [
        &s.export.targets.traces,
        &s.export.targets.metrics,
        &s.export.targets.logs,
    ];
    assert_eq!(traces.endpoint, "http://collector:4317/");
    assert_eq!(logs.endpoint, "https://logs:4317/");
    assert_eq!(
        traces.headers,
        vec![("x-token".to_owned(), "abc def".to_owned())]
    );
    assert!(!traces.gzip && metrics.gzip && !logs.gzip);
    assert_eq!(traces.timeout, Duration::from_millis(1500));
    assert_eq!(s.export.span_batch.queue, Some(100));
    assert_eq!(s.export.span_batch.batch, 50);
    assert_eq!(s.export.span_batch.delay, Duration::from_millis(250));
    assert_eq!(s.export.span_batch.timeout, Duration::from_millis(700));
    assert_eq!(s.export.log_batch.queue, Some(300));
    assert_eq!(s.export.metric_interval, Duration::from_secs(5));
    assert_eq!(s.export.limits.span_value_length, 64);
    assert_eq!(s.export.limits.log_value_length, 64);
    assert_eq!(s.export.limits.span_attribute_count, 16);
}

#[test]
fn certificate_variable_is_read() {
    let err = resolve(&[(OTEL_EXPORTER_OTLP_CERTIFICATE, "/nonexistent/ca.pem")]).unwrap_err();
    assert!(matches!(err, Error::Certificate { ref path, .. } if path == "/nonexistent/ca.pem"));
    let dir = std::env::temp_dir().join(format!("paytrace-ca-{}", std::process::id()));
    std::fs::write(&dir, b"-----BEGIN CERTIFICATE-----\n").unwrap();
    let s = resolve(&[(OTEL_EXPORTER_OTLP_CERTIFICATE, dir.to_str().unwrap())]).unwrap();
    assert!(s.export.targets.iter().all(|t| t.ca_pem.is_some()));
    let _ = std::fs::remove_file(dir);
}

#[test]
fn code_beats_environment() {
    let s = Config::from_env_vars([
        (OTEL_SERVICE_NAME, "from-env"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "not a url"),
        (OTEL_SDK_DISABLED, "true"),
        (OTEL_TRACES_SAMPLER, "always_off"),
    ])
    .with_service_name("from-code")
    .with_endpoint("http://127.0.0.1:4317")
    .with_disabled(false)
    .with_sampler(Sampler::AlwaysOn)
    .resolve()
    .unwrap();
    assert_eq!(s.resource.service_name.as_deref(), Some("from-code"));
    assert!(!s.disabled);
    assert_eq!(s.sampler, Sampler::AlwaysOn);
}

#[test]
fn propagators_known_and_unknown() {
    let s = resolve(&[(
        OTEL_PROPAGATORS,
        "tracecontext,baggage,b3,b3multi,jaeger,b3",
    )])
    .unwrap();
    assert_eq!(
        s.propagators,
        vec![
            Propagator::TraceContext,
            Propagator::Baggage,
            Propagator::B3,
            Propagator::B3Multi,
            Propagator::Jaeger
        ]
    );
    assert!(s.warnings.is_empty());
    // The specification: an unknown name is skipped with a warning, the service still starts.
    let s = resolve(&[(OTEL_PROPAGATORS, "tracecontext,xray,ottrace")]).unwrap();
    assert_eq!(s.propagators, vec![Propagator::TraceContext]);
    assert_eq!(s.warnings.len(), 2);
    assert!(s.warnings[0].contains("OTEL_PROPAGATORS") && s.warnings[0].contains("`xray`"));
    assert_eq!(
        resolve(&[(OTEL_PROPAGATORS, "none")]).unwrap().propagators,
        vec![]
    );
}

#[test]
fn invalid_values_name_the_variable() {
    let cases: &[(&str, &str)] = &[
        (OTEL_SDK_DISABLED, "yes"),
        (OTEL_RESOURCE_ATTRIBUTES, "novalue"),
        (OTEL_TRACES_SAMPLER, "sometimes"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "ftp://x"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "::"),
        (OTEL_EXPORTER_OTLP_COMPRESSION, "brotli"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "-1"),
        (OTEL_BSP_MAX_QUEUE_SIZE, "lots"),
        (OTEL_BSP_SCHEDULE_DELAY, "1s"),
        (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "x"),
        (OTEL_BSP_EXPORT_TIMEOUT, "0"),
        (OTEL_METRIC_EXPORT_INTERVAL, "soon"),
        (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, "big"),
        (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, "-3"),
    ];
    for &(var, value) in cases {
        let err = resolve(&[(var, value)]).unwrap_err();
        let text = err.to_string();
        assert_eq!(invalid_name(err), var, "{var}={value}");
        assert!(text.contains(value), "{text}");
    }
    let err = resolve(&[
        (OTEL_TRACES_SAMPLER, "traceidratio"),
        (OTEL_TRACES_SAMPLER_ARG, "1.5"),
    ])
    .unwrap_err();
    assert_eq!(invalid_name(err), OTEL_TRACES_SAMPLER_ARG);
    let err = resolve(&[(OTEL_EXPORTER_OTLP_HEADERS, "bad header=x")]).unwrap_err();
    assert!(
        !err.to_string().contains("=x"),
        "header values must not be echoed"
    );
}

#[test]
fn invalid_code_values() {
    assert!(Config::new()
        .with_sampler(Sampler::Ratio(-0.1))
        .validate()
        .is_err());
    assert!(Config::new()
        .with_endpoint("ftp://localhost:4317")
        .validate()
        .is_err());
    assert!(Config::new().with_log_filter("[[[").validate().is_err());
    assert!(Config::new().with_span_queue_size(0).validate().is_err());
    assert!(Config::new()
        .with_shutdown_timeout(Duration::ZERO)
        .validate()
        .is_err());
}

#[test]
fn debug_hides_header_values() {
    let text = format!(
        "{:?}",
        Config::new().with_header("authorization", "Bearer s3cr3t")
    );
    assert!(text.contains("authorization") && !text.contains("s3cr3t"));
}

#[test]
fn protocol_and_endpoints() {
    // http/protobuf: a general endpoint gets the signal's path; a per-signal one is as given.
    let s = resolve(&[
        (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4318/otlp/"),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "http://logs:9999/custom",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
    ])
    .unwrap();
    let [traces, metrics, logs] = [
        &s.export.targets.traces,
        &s.export.targets.metrics,
        &s.export.targets.logs,
    ];
    assert_eq!(traces.protocol, Protocol::HttpProtobuf);
    assert_eq!(
        traces.endpoint.to_string(),
        "http://collector:4318/otlp/v1/traces"
    );
    assert_eq!(metrics.protocol, Protocol::Grpc);
    assert_eq!(metrics.endpoint.to_string(), "http://collector:4318/otlp/");
    assert_eq!(logs.endpoint.to_string(), "http://logs:9999/custom");
    // Defaults follow the protocol.
    let s = resolve(&[(OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")]).unwrap();
    assert_eq!(
        s.export.targets.metrics.endpoint.to_string(),
        "http://localhost:4318/v1/metrics"
    );
    let s = Config::new()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint("http://c:4318")
        .resolve()
        .unwrap();
    assert_eq!(
        s.export.targets.logs.endpoint.to_string(),
        "http://c:4318/v1/logs"
    );
    // http/json is refused by name.
    let err = resolve(&[(OTEL_EXPORTER_OTLP_PROTOCOL, "http/json")]).unwrap_err();
    assert_eq!(invalid_name(err), OTEL_EXPORTER_OTLP_PROTOCOL);
    let err = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")]).unwrap_err();
    assert_eq!(invalid_name(err), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
}

#[test]
fn insecure_and_scheme_less_endpoints() {
    let s = resolve(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4317")]).unwrap();
    assert_eq!(
        s.export.targets.traces.endpoint.scheme_str(),
        Some("https"),
        "secure by default"
    );
    let s = resolve(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4317"),
        (OTEL_EXPORTER_OTLP_INSECURE, "true"),
    ])
    .unwrap();
    assert_eq!(s.export.targets.traces.endpoint.scheme_str(), Some("http"));
    // A scheme wins over INSECURE; a bad INSECURE value is named.
    let s = resolve(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "https://collector:4317"),
        (OTEL_EXPORTER_OTLP_INSECURE, "true"),
    ])
    .unwrap();
    assert_eq!(s.export.targets.traces.endpoint.scheme_str(), Some("https"));
    let err = resolve(&[(OTEL_EXPORTER_OTLP_INSECURE, "maybe")]).unwrap_err();
    assert_eq!(invalid_name(err), OTEL_EXPORTER_OTLP_INSECURE);
}

#[test]
fn exporters_per_signal() {
    let s = resolve(&[
        (OTEL_TRACES_EXPORTER, "none"),
        (OTEL_LOGS_EXPORTER, "console"),
    ])
    .unwrap();
    let kinds: Vec<Exporter> = s.export.targets.iter().map(|t| t.exporter).collect();
    assert_eq!(kinds, [Exporter::None, Exporter::Otlp, Exporter::Console]);
    let err = resolve(&[(OTEL_METRICS_EXPORTER, "prometheus")]).unwrap_err();
    assert_eq!(invalid_name(err), OTEL_METRICS_EXPORTER);
    let s = Config::new()
        .with_exporter(crate::Signal::Metrics, Exporter::None)
        .resolve()
        .unwrap();
    assert_eq!(s.export.targets.metrics.exporter, Exporter::None);
}

#[test]
fn client_certificate_and_key_go_together() {
    let dir = std::env::temp_dir().join(format!("paytrace-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert, b"cert").unwrap();
    std::fs::write(&key, b"key").unwrap();
    let s = resolve(&[
        (
            OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
            cert.to_str().unwrap(),
        ),
        (OTEL_EXPORTER_OTLP_CLIENT_KEY, key.to_str().unwrap()),
    ])
    .unwrap();
    assert!(s
        .export
        .targets
        .iter()
        .all(|t| t.client_identity == Some((b"cert".to_vec(), b"key".to_vec()))));
    let err = resolve(&[(
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
        cert.to_str().unwrap(),
    )])
    .unwrap_err();
    assert_eq!(
        invalid_name(err),
        OTEL_EXPORTER_OTLP_CLIENT_KEY,
        "the missing one is named"
    );
    let err = resolve(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "/nonexistent/c.pem",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            key.to_str().unwrap(),
        ),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limits_temporality_and_metric_timeout() {
    let s = resolve(&[
        (OTEL_ATTRIBUTE_COUNT_LIMIT, "10"),
        (OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT, "3"),
        (OTEL_SPAN_EVENT_COUNT_LIMIT, "4"),
        (OTEL_SPAN_LINK_COUNT_LIMIT, "5"),
        (OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, "6"),
        (OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, "7"),
        (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, "100"),
        (OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, "50"),
        (OTEL_METRIC_EXPORT_TIMEOUT, "1500"),
        (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, "Delta"),
    ])
    .unwrap();
    let l = s.export.limits;
    assert_eq!((l.span_attribute_count, l.log_attribute_count), (10, 3));
    assert_eq!((l.span_event_count, l.span_link_count), (4, 5));
    assert_eq!((l.event_attribute_count, l.link_attribute_count), (6, 7));
    assert_eq!((l.span_value_length, l.log_value_length), (50, 100));
    assert_eq!(s.export.metric_timeout, Duration::from_millis(1500));
    assert_eq!(
        s.export.temporality,
        opentelemetry_sdk::metrics::Temporality::Delta
    );
    let s = resolve(&[(
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
        "lowmemory",
    )])
    .unwrap();
    assert_eq!(
        s.export.temporality,
        opentelemetry_sdk::metrics::Temporality::LowMemory
    );
    for (var, bad) in [
        (
            OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
            "sometimes",
        ),
        (OTEL_METRIC_EXPORT_TIMEOUT, "0"),
        (OTEL_SPAN_EVENT_COUNT_LIMIT, "-1"),
        (OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT, "x"),
    ] {
        assert_eq!(
            invalid_name(resolve(&[(var, bad)]).unwrap_err()),
            var,
            "{var}={bad}"
        );
    }
}

#[test]
fn otel_log_level_is_parsed() {
    assert_eq!(
        resolve(&[(OTEL_LOG_LEVEL, "none")])
            .unwrap()
            .log
            .diagnostics,
        Some("off")
    );
    assert_eq!(
        resolve(&[(OTEL_LOG_LEVEL, "DEBUG")])
            .unwrap()
            .log
            .diagnostics,
        Some("debug")
    );
    assert_eq!(resolve(&[]).unwrap().log.diagnostics, None);
    assert_eq!(
        invalid_name(resolve(&[(OTEL_LOG_LEVEL, "loud")]).unwrap_err()),
        OTEL_LOG_LEVEL
    );
}

#[test]
fn exemplar_filter() {
    assert!(!resolve(&[]).unwrap().export.exemplars_off);
    assert!(
        resolve(&[(OTEL_METRICS_EXEMPLAR_FILTER, "always_off")])
            .unwrap()
            .export
            .exemplars_off
    );
    let s = resolve(&[(OTEL_METRICS_EXEMPLAR_FILTER, "always_on")]).unwrap();
    assert!(!s.export.exemplars_off);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("OTEL_METRICS_EXEMPLAR_FILTER")));
    assert_eq!(
        invalid_name(resolve(&[(OTEL_METRICS_EXEMPLAR_FILTER, "sometimes")]).unwrap_err()),
        OTEL_METRICS_EXEMPLAR_FILTER
    );
}

#[test]
fn the_log_filter_comes_from_rust_log_only_through_from_env() {
    assert_eq!(
        resolve(&[("RUST_LOG", "debug")]).unwrap().log.filter,
        "debug"
    );
    // `Config::new()` reads no environment, whatever this process's `RUST_LOG` says.
    assert_eq!(Config::new().resolve().unwrap().log.filter, "info");
    let coded = Config::from_env_vars([("RUST_LOG", "debug")]).with_log_filter("warn");
    assert_eq!(coded.resolve().unwrap().log.filter, "warn", "code wins");
}
