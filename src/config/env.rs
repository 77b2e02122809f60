//! The `OTEL_*` variables paytrace reads, and the reader that hands them to the resolvers.

use std::collections::HashMap;

use crate::error::Error;

/// `true` disables paytrace entirely (a working no-op [`Telemetry`](crate::telemetry::Telemetry)).
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// The `service.name` resource attribute.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Extra resource attributes, `key=value,key2=value2` (values percent-decoded).
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// Propagators, comma-separated: `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `none`;
/// unknown names are skipped with a warning (the specification), not refused.
pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";
/// Sampler: `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
/// `parentbased_always_off`, `parentbased_traceidratio`.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// Sampler argument: the ratio in `[0, 1]` for the ratio samplers.
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// OTLP/gRPC endpoint for all signals, e.g. `http://collector:4317`.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Headers sent with every export, `key=value,key2=value2` (values percent-decoded).
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `gzip` or `none`.
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// Export timeout in milliseconds: the whole budget of one export, retries included.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// PEM file with the CA certificate(s) to trust for `https://` endpoints.
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// `grpc` (the default) or `http/protobuf`; per signal with `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, ….
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// PEM file with the client's private key, for collectors that require a client certificate
/// (mTLS); set together with [`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`].
pub const OTEL_EXPORTER_OTLP_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// PEM file with the client's certificate chain (mTLS); set together with
/// [`OTEL_EXPORTER_OTLP_CLIENT_KEY`].
pub const OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// `true`: an endpoint given without a scheme is plain `http://`; otherwise it is `https://`.
pub const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// `otlp` (default), `none` or `console`, for traces.
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `otlp` (default), `none` or `console`, for metrics.
pub const OTEL_METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
/// `otlp` (default), `none` or `console`, for logs.
pub const OTEL_LOGS_EXPORTER: &str = "OTEL_LOGS_EXPORTER";
/// Span queue capacity.
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// Delay between span exports, milliseconds.
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// Maximum spans per export request.
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// Span export timeout, milliseconds.
pub const OTEL_BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
/// Log record queue capacity.
pub const OTEL_BLRP_MAX_QUEUE_SIZE: &str = "OTEL_BLRP_MAX_QUEUE_SIZE";
/// Delay between log exports, milliseconds.
pub const OTEL_BLRP_SCHEDULE_DELAY: &str = "OTEL_BLRP_SCHEDULE_DELAY";
/// Maximum log records per export request.
pub const OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE";
/// Log export timeout, milliseconds.
pub const OTEL_BLRP_EXPORT_TIMEOUT: &str = "OTEL_BLRP_EXPORT_TIMEOUT";
/// Interval between metric exports, milliseconds.
pub const OTEL_METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// Maximum length in bytes of a string attribute value (longer ones are truncated).
pub const OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// Maximum number of attributes per span.
pub const OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT";
/// Most attributes per span and per log record unless a signal's own limit says otherwise.
pub const OTEL_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_ATTRIBUTE_COUNT_LIMIT";
/// Longest span attribute value in bytes (else [`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`]).
pub const OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// Most events per span.
pub const OTEL_SPAN_EVENT_COUNT_LIMIT: &str = "OTEL_SPAN_EVENT_COUNT_LIMIT";
/// Most links per span.
pub const OTEL_SPAN_LINK_COUNT_LIMIT: &str = "OTEL_SPAN_LINK_COUNT_LIMIT";
/// Most attributes per span event.
pub const OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT";
/// Most attributes per span link.
pub const OTEL_LINK_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT";
/// Most attributes per log record (else [`OTEL_ATTRIBUTE_COUNT_LIMIT`]).
pub const OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT";
/// Longest log record attribute value in bytes (else [`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`]).
pub const OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str =
    "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// Timeout of one metrics export, milliseconds.
pub const OTEL_METRIC_EXPORT_TIMEOUT: &str = "OTEL_METRIC_EXPORT_TIMEOUT";
/// `cumulative` (default), `delta` or `lowmemory`.
pub const OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: &str =
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
/// `trace_based` (default: exemplars only of exported traces) or `always_off`; `always_on` is
/// read as `trace_based` with a warning (an exemplar must point at a trace that exists).
pub const OTEL_METRICS_EXEMPLAR_FILTER: &str = "OTEL_METRICS_EXEMPLAR_FILTER";
/// The level of paytrace's and the OpenTelemetry SDK's own diagnostics on the service's
/// output: `error`, `warn` (default), `info`, `debug`, `none`.
pub const OTEL_LOG_LEVEL: &str = "OTEL_LOG_LEVEL";

/// Every variable [`Config::from_env`](super::Config::from_env) reads (per-signal variants such as
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` are read too).
pub const ENV_VARS: &[&str] = &[
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_PROPAGATORS,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_COMPRESSION,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_CERTIFICATE,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_CLIENT_KEY,
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
    OTEL_EXPORTER_OTLP_INSECURE,
    OTEL_TRACES_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_LOGS_EXPORTER,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_EXPORT_TIMEOUT,
    OTEL_BLRP_MAX_QUEUE_SIZE,
    OTEL_BLRP_SCHEDULE_DELAY,
    OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BLRP_EXPORT_TIMEOUT,
    OTEL_METRIC_EXPORT_INTERVAL,
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,
    OTEL_ATTRIBUTE_COUNT_LIMIT,
    OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_SPAN_EVENT_COUNT_LIMIT,
    OTEL_SPAN_LINK_COUNT_LIMIT,
    OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LINK_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_METRIC_EXPORT_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
    OTEL_LOG_LEVEL,
    OTEL_METRICS_EXEMPLAR_FILTER,
];

/// The variables a [`Config`](super::Config) was built from; blank values count as unset.
/// The `tracing` filter variable: not an OpenTelemetry one, read by `Config::from_env` too.
pub const RUST_LOG: &str = "RUST_LOG";

pub(super) struct Env<'a>(pub(super) &'a HashMap<String, String>);

impl Env<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub(super) fn parse<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        match self.get(name) {
            Some(v) => parse(v.trim())
                .map(Some)
                .map_err(|reason| Error::invalid(name, v, reason)),
            None => Ok(None),
        }
    }
}

/// The per-signal variable for `suffix`, e.g. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
pub(super) fn signal_var(signal: &str, suffix: &str) -> &'static str {
    // The per-signal names form a small fixed set; match instead of allocating.
    macro_rules! per_signal {
        ($($suffix:literal),*) => {
            match (signal, suffix) {
                $(
                    ("TRACES", $suffix) => concat!("OTEL_EXPORTER_OTLP_TRACES_", $suffix),
                    ("METRICS", $suffix) => concat!("OTEL_EXPORTER_OTLP_METRICS_", $suffix),
                    ("LOGS", $suffix) => concat!("OTEL_EXPORTER_OTLP_LOGS_", $suffix),
                )*
                _ => general_var(suffix),
            }
        };
    }
    per_signal!(
        "ENDPOINT",
        "HEADERS",
        "COMPRESSION",
        "TIMEOUT",
        "CERTIFICATE",
        "PROTOCOL",
        "CLIENT_KEY",
        "CLIENT_CERTIFICATE",
        "INSECURE"
    )
}

/// The variable for `suffix` that applies to every signal.
pub(super) fn general_var(suffix: &str) -> &'static str {
    match suffix {
        "ENDPOINT" => OTEL_EXPORTER_OTLP_ENDPOINT,
        "HEADERS" => OTEL_EXPORTER_OTLP_HEADERS,
        "COMPRESSION" => OTEL_EXPORTER_OTLP_COMPRESSION,
        "TIMEOUT" => OTEL_EXPORTER_OTLP_TIMEOUT,
        "PROTOCOL" => OTEL_EXPORTER_OTLP_PROTOCOL,
        "CLIENT_KEY" => OTEL_EXPORTER_OTLP_CLIENT_KEY,
        "CLIENT_CERTIFICATE" => OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
        "INSECURE" => OTEL_EXPORTER_OTLP_INSECURE,
        _ => OTEL_EXPORTER_OTLP_CERTIFICATE,
    }
}

/// `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` or `OTEL_LOGS_EXPORTER`.
pub(super) fn exporter_var(signal: &str) -> &'static str {
    match signal {
        "TRACES" => OTEL_TRACES_EXPORTER,
        "METRICS" => OTEL_METRICS_EXPORTER,
        _ => OTEL_LOGS_EXPORTER,
    }
}
