//! [`Config`]: the builder handed to [`init_tracer`](crate::init_tracer).
//!
//! Every setting has a default tuned for a payment service; most can be set in code with a
//! `with_*` method, and (with [`Config::from_env`]) from the standard `OTEL_*` environment
//! variable named in its doc; a few exist only as variables (the README's table). **Code beats environment**: a value set with `with_*` wins over the
//! variable. Values are checked at [`Config::validate`] / `init_tracer` time and a bad one is a
//! typed [`Error::InvalidConfig`] naming the variable and the value — never a panic later.

pub(crate) mod env;
mod parse;
mod resolve;
mod settings;
mod target;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;

use crate::error::Error;
use crate::export::Signal;
use crate::exporter::{Exporter, Protocol};
use crate::log::{LogFormat, LogSampling};
use crate::propagation::{PropagateTo, Trust};
#[allow(unused_imports)] // the variable names the doc links below name
use env::*;
pub(crate) use settings::{ExportSettings, ResourceSettings, Settings};

/// Every value parser run on `value`, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_parse(value: &str) -> Vec<String> {
    vec![
        format!("{:?}", parse::parse_bool(value)),
        format!("{:?}", parse::parse_usize(value)),
        format!("{:?}", parse::parse_millis(value)),
        format!("{:?}", parse::parse_ratio(value)),
        format!("{:?}", parse::parse_propagators(value)),
        format!("{:?}", parse::parse_temporality(value)),
        format!("{:?}", parse::parse_log_level(value)),
        format!("{:?}", parse::parse_key_values(value)),
        format!("{:?}", parse::percent_decode(value)),
        format!("{:?}", parse::parse_endpoint(value)),
    ]
}

/// Head sampling decision for new traces.
///
/// ```
/// use paytrace::{Config, Sampler};
/// let config = Config::new().with_sampler(Sampler::ParentBasedRatio(0.25));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Sample every trace.
    AlwaysOn,
    /// Sample no trace.
    AlwaysOff,
    /// Sample this share of traces by trace id, ignoring the parent.
    Ratio(f64),
    /// Follow the parent's decision; sample every root. The default.
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; sample no root.
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; sample this share of roots.
    ParentBasedRatio(f64),
}

impl Sampler {
    /// The share of traces a ratio sampler keeps; `None` for the others.
    pub(crate) fn ratio(&self) -> Option<f64> {
        match *self {
            Sampler::Ratio(r) | Sampler::ParentBasedRatio(r) => Some(r),
            _ => None,
        }
    }
}

/// A propagation format for [`Config::with_propagators`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagator {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
    /// Zipkin B3, single header (`b3`); `OTEL_PROPAGATORS=b3`.
    B3,
    /// Zipkin B3, multiple headers (`x-b3-traceid`, …); `OTEL_PROPAGATORS=b3multi`.
    B3Multi,
    /// Jaeger (`uber-trace-id`); `OTEL_PROPAGATORS=jaeger`.
    Jaeger,
}

/// Configuration for [`init_tracer`](crate::init_tracer): a builder with production defaults.
///
/// ```
/// use std::time::Duration;
/// use paytrace::Config;
///
/// let config = Config::from_env()
///     .with_service_name("payment-gateway")
///     .with_service_version(env!("CARGO_PKG_VERSION"))
///     .with_environment("production")
///     .with_endpoint("http://otel-collector:4317")
///     .with_export_timeout(Duration::from_secs(5));
/// config.validate()?;
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Config {
    env: HashMap<String, String>,
    disabled: Option<bool>,
    service_name: Option<String>,
    service_version: Option<String>,
    environment: Option<String>,
    resource: Vec<KeyValue>,
    endpoint: Option<String>,
    signal_endpoints: HashMap<Signal, String>,
    headers: Vec<(String, String)>,
    compression: Option<bool>,
    timeout: Option<Duration>,
    certificate: Option<PathBuf>,
    client_identity: Option<(PathBuf, PathBuf)>,
    protocol: Option<Protocol>,
    exporters: HashMap<Signal, Exporter>,
    retry: Option<bool>,
    sampler: Option<Sampler>,
    propagators: Option<Vec<Propagator>>,
    trust: Trust,
    propagate_to: PropagateTo,
    span_queue: BatchOverrides,
    log_queue: BatchOverrides,
    metric_interval: Option<Duration>,
    attribute_value_length: Option<usize>,
    span_attribute_count: Option<u32>,
    temporality: Option<opentelemetry_sdk::metrics::Temporality>,
    max_request_bytes: Option<usize>,
    shutdown_timeout: Option<Duration>,
    install_subscriber: Option<bool>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    stdout_buffer: Option<usize>,
    watchdog_interval: Option<Duration>,
    failure_threshold: Option<u64>,
    stale_windows: Option<u32>,
    log_sampling: Option<LogSampling>,
    span_events: Option<bool>,
    tail_keep: Option<bool>,
    keep_budget: Option<usize>,
    keep_rate_limit: Option<u32>,
    keep_slow_after: Option<Duration>,
    control_max_ttl: Option<Duration>,
}

#[derive(Clone, Default, Debug)]
struct BatchOverrides {
    queue: Option<usize>,
    queue_bytes: Option<usize>,
    batch: Option<usize>,
    delay: Option<Duration>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Config {
    // Headers carry credentials: print their names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Config")
            .field("service_name", &self.service_name)
            .field("endpoint", &self.endpoint)
            .field("signal_endpoints", &self.signal_endpoints)
            .field("protocol", &self.protocol)
            .field("exporters", &self.exporters)
            .field("header_names", &header_names)
            .field("sampler", &self.sampler)
            .field("trust", &self.trust)
            .field("propagate_to", &self.propagate_to)
            .field("disabled", &self.disabled)
            .field("env_vars_read", &self.env.len())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults only; the environment is not read. See [`Config::from_env`].
    ///
    /// ```
    /// let config = paytrace::Config::new().with_service_name("checkout");
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults, overridden by the standard `OTEL_*` environment variables ([`ENV_VARS`]) and
    /// `RUST_LOG`, overridden in turn by anything set in code afterwards. Variables are read now and
    /// checked at [`Config::validate`] / `init_tracer` time.
    ///
    /// ```
    /// let config = paytrace::Config::from_env().with_service_name("checkout");
    /// # let _ = config;
    /// ```
    pub fn from_env() -> Self {
        Self::from_env_vars(
            std::env::vars().filter(|(k, _)| k.starts_with("OTEL_") || k == env::RUST_LOG),
        )
    }

    /// Like [`Config::from_env`] but from the given variables instead of the process
    /// environment: for tests, which must not mutate a process-wide environment.
    ///
    /// ```
    /// let config = paytrace::Config::from_env_vars([("OTEL_TRACES_SAMPLER_ARG", "2.0"),
    ///                                               ("OTEL_TRACES_SAMPLER", "traceidratio")]);
    /// let err = config.validate().unwrap_err();
    /// assert!(err.to_string().contains("OTEL_TRACES_SAMPLER_ARG"));
    /// ```
    pub fn from_env_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Config {
            env: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Self::default()
        }
    }

    /// A configuration that disables paytrace: `init_tracer` returns a working no-op
    /// [`Telemetry`](crate::telemetry::Telemetry) and nothing is exported. Same as `OTEL_SDK_DISABLED=true`.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// assert!(!telemetry.is_enabled());
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn disabled() -> Self {
        Config::new().with_disabled(true)
    }

    /// Disable or enable paytrace. Defaults to enabled; variable [`OTEL_SDK_DISABLED`].
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }

    /// The `service.name` resource attribute. Defaults to `unknown_service:<executable>`;
    /// variable [`OTEL_SERVICE_NAME`].
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The `service.version` resource attribute. Defaults to unset.
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// The `deployment.environment.name` resource attribute. Defaults to unset.
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Add a resource attribute; wins over [`OTEL_RESOURCE_ATTRIBUTES`].
    ///
    /// The [`KeyValue`] is OpenTelemetry's, re-exported as `paytrace::opentelemetry`: no
    /// `opentelemetry` dependency of your own, and no version to keep in step with paytrace's.
    ///
    /// ```
    /// use paytrace::opentelemetry::KeyValue;
    ///
    /// let config = paytrace::Config::new()
    ///     .with_resource_attribute(KeyValue::new("region", "eu"))
    ///     .with_resource_attribute(KeyValue::new("k8s.pod.name", "checkout-7d9f"));
    /// # let _ = config;
    /// ```
    pub fn with_resource_attribute(mut self, attribute: KeyValue) -> Self {
        self.resource.push(attribute);
        self
    }

    /// OTLP/gRPC endpoint for every signal, `http://` or `https://`. Defaults to
    /// `http://localhost:4317`; variable [`OTEL_EXPORTER_OTLP_ENDPOINT`].
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Endpoint for one signal, overriding [`Config::with_endpoint`]. Variables
    /// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`.
    pub fn with_signal_endpoint(mut self, signal: Signal, endpoint: impl Into<String>) -> Self {
        self.signal_endpoints.insert(signal, endpoint.into());
        self
    }

    /// Add a header sent with every export (e.g. an auth token). Code headers are added to
    /// those of [`OTEL_EXPORTER_OTLP_HEADERS`] and win on the same name.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Gzip-compress export requests. Defaults to `true`; variable
    /// [`OTEL_EXPORTER_OTLP_COMPRESSION`] (`gzip` / `none`).
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.compression = Some(gzip);
        self
    }

    /// The whole time budget of one export, retries included. Defaults to 10 s; variable
    /// [`OTEL_EXPORTER_OTLP_TIMEOUT`] (milliseconds).
    pub fn with_export_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// CA certificate (PEM) to trust for `https://` endpoints. Defaults to the system roots;
    /// variable [`OTEL_EXPORTER_OTLP_CERTIFICATE`].
    pub fn with_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(path.into());
        self
    }

    /// A client certificate chain and its private key (PEM files) for collectors that require
    /// mutual TLS. Defaults to none; variables [`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`] and
    /// [`OTEL_EXPORTER_OTLP_CLIENT_KEY`] (and per signal), which must be set together.
    ///
    /// ```
    /// let config = paytrace::Config::new()
    ///     .with_endpoint("https://collector.internal:4317")
    ///     .with_client_certificate("/etc/otel/client.pem", "/etc/otel/client.key");
    /// # let _ = config;
    /// ```
    pub fn with_client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_identity = Some((certificate.into(), key.into()));
        self
    }

    /// The OTLP transport for every signal. Defaults to [`Protocol::Grpc`]; variables
    /// [`OTEL_EXPORTER_OTLP_PROTOCOL`] and `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL`.
    /// With [`Protocol::HttpProtobuf`] a general endpoint gets `/v1/traces`, `/v1/metrics` and
    /// `/v1/logs` appended; a per-signal endpoint is used as it is.
    ///
    /// ```
    /// let config = paytrace::Config::new()
    ///     .with_protocol(paytrace::Protocol::HttpProtobuf)
    ///     .with_endpoint("http://collector:4318");
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Where one signal goes: OTLP (the default), nowhere, or the console. Variables
    /// [`OTEL_TRACES_EXPORTER`], [`OTEL_METRICS_EXPORTER`], [`OTEL_LOGS_EXPORTER`].
    ///
    /// ```
    /// use paytrace::{Config, Exporter, Signal};
    /// let config = Config::new().with_exporter(Signal::Logs, Exporter::None);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_exporter(mut self, signal: Signal, exporter: Exporter) -> Self {
        self.exporters.insert(signal, exporter);
        self
    }

    /// Retry failed exports with exponential backoff and jitter, within the export timeout, on
    /// retryable gRPC codes and transport failures (a collector restart). Defaults to `true`.
    pub fn with_retry(mut self, retry: bool) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The trace sampler. Defaults to [`Sampler::ParentBasedAlwaysOn`]; variables
    /// [`OTEL_TRACES_SAMPLER`] and [`OTEL_TRACES_SAMPLER_ARG`].
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Tail keep: with a ratio sampler, the traces the ratio does not keep are recorded and
    /// exported whole when they fail, are slow, or are forced
    /// ([`keep_current_trace`](crate::keep_current_trace)); see [`crate::sampling`]. Defaults to
    /// on whenever the ratio is below 1 (a payment SDK must not lose an error trace); without a
    /// ratio there is nothing to keep and nothing is buffered.
    ///
    /// ```
    /// let config = paytrace::Config::new()
    ///     .with_sampler(paytrace::Sampler::ParentBasedRatio(0.01))
    ///     .with_tail_keep(false); // plain head sampling
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_tail_keep(mut self, on: bool) -> Self {
        self.tail_keep = Some(on);
        self
    }

    /// The memory bound of tail keep: the estimated encoded bytes of spans waiting for their
    /// trace's outcome. When it is spent, the oldest waiting traces are decided at once with what
    /// is known (kept if they failed or were slow so far) and counted. Defaults to 32 MiB; at
    /// least 1 KiB.
    pub fn with_tail_keep_budget(mut self, bytes: usize) -> Self {
        self.keep_budget = Some(bytes);
        self
    }

    /// Outcome keeps per second before error-storm thinning: past it, kept traces are thinned
    /// by their randomness (every service thins the same traces) and carry
    /// `paytrace.sampling.keep_probability`. Defaults to 1,000; 0 for no cap.
    pub fn with_tail_keep_rate_limit(mut self, keeps_per_second: u32) -> Self {
        self.keep_rate_limit = Some(keeps_per_second);
        self
    }

    /// The longest TTL a runtime-control change may ask for ([`crate::control`]); longer ones
    /// are refused, so nothing stays changed by accident. Defaults to 1 hour.
    pub fn with_control_max_ttl(mut self, max: Duration) -> Self {
        self.control_max_ttl = Some(max);
        self
    }

    /// A trace whose local root has been open this long is slow: kept and exported before the
    /// root ends. Defaults to 5 s, the HTTP layer's slow threshold.
    pub fn with_tail_keep_slow_after(mut self, after: Duration) -> Self {
        self.keep_slow_after = Some(after);
        self
    }

    /// Propagation formats installed globally. Defaults to trace context + baggage; variable
    /// [`OTEL_PROPAGATORS`].
    pub fn with_propagators(mut self, propagators: impl IntoIterator<Item = Propagator>) -> Self {
        self.propagators = Some(propagators.into_iter().collect());
        self
    }

    /// Whose incoming trace context the server layers the telemetry builds
    /// (`Telemetry::http_layer`, `Telemetry::grpc_server_layer`) continue. Defaults to
    /// [`Trust::All`]; [`Trust::None`] makes every request a new root linked to the context it
    /// sent (a public endpoint); [`Trust::peers_in`] trusts the internal mesh's addresses only.
    /// A layer's own `with_trust` wins. See [`Trust`].
    ///
    /// ```
    /// use paytrace::propagation::Trust;
    /// let config = paytrace::Config::new().with_trust(Trust::peers_in(["10.0.0.0/8", "fd00::/8"])?);
    /// assert!(config.validate().is_ok());
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// Which hosts the client layers the telemetry builds (`Telemetry::http_client_layer`,
    /// `Telemetry::grpc_client_layer`) send the trace context to. Defaults to
    /// [`PropagateTo::All`]; with [`PropagateTo::hosts`] a call to any other host (a card
    /// network, a payment processor) leaves with no context header at all. A layer's own
    /// `with_propagation` wins. See [`PropagateTo`].
    ///
    /// ```
    /// use paytrace::propagation::PropagateTo;
    /// let config = paytrace::Config::new()
    ///     .with_propagate_to(PropagateTo::hosts([".svc.cluster.local", ".internal"]));
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_propagate_to(mut self, propagate_to: PropagateTo) -> Self {
        self.propagate_to = propagate_to;
        self
    }

    /// A count bound on the span queue, beside its byte budget
    /// ([`with_span_queue_bytes`](Self::with_span_queue_bytes)): spans beyond it are dropped and
    /// counted, the caller never waits. No count bound unless set (the specification's default
    /// is 2048, about 40 ms of a burst on one core); variable [`OTEL_BSP_MAX_QUEUE_SIZE`].
    pub fn with_span_queue_size(mut self, size: usize) -> Self {
        self.span_queue.queue = Some(size);
        self
    }

    /// The span queue's memory bound: the estimated encoded bytes it may hold. When it is spent,
    /// ordinary spans are dropped and counted; error and slow spans are kept while any ordinary
    /// span can make room. Defaults to 16 MiB (about 30,000 server spans of the HTTP layer, so a
    /// burst of 20,000 requests on one core is absorbed); at least 1 KiB.
    ///
    /// ```
    /// let config = paytrace::Config::new().with_span_queue_bytes(4 * 1024 * 1024);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_span_queue_bytes(mut self, bytes: usize) -> Self {
        self.span_queue.queue_bytes = Some(bytes);
        self
    }

    /// The log queue's memory bound, as [`with_span_queue_bytes`](Self::with_span_queue_bytes):
    /// WARN and ERROR records are kept while any lower record can make room. Defaults to 16 MiB.
    ///
    /// ```
    /// let config = paytrace::Config::new().with_log_queue_bytes(2 * 1024 * 1024);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_log_queue_bytes(mut self, bytes: usize) -> Self {
        self.log_queue.queue_bytes = Some(bytes);
        self
    }

    /// Maximum spans per export request. Defaults to 512; variable
    /// [`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`].
    pub fn with_span_batch_size(mut self, size: usize) -> Self {
        self.span_queue.batch = Some(size);
        self
    }

    /// Delay between span exports. Defaults to 1 s; variable [`OTEL_BSP_SCHEDULE_DELAY`].
    pub fn with_span_schedule_delay(mut self, delay: Duration) -> Self {
        self.span_queue.delay = Some(delay);
        self
    }

    /// A count bound on the log record queue, beside its byte budget
    /// ([`with_log_queue_bytes`](Self::with_log_queue_bytes)). No count bound unless set;
    /// variable [`OTEL_BLRP_MAX_QUEUE_SIZE`].
    pub fn with_log_queue_size(mut self, size: usize) -> Self {
        self.log_queue.queue = Some(size);
        self
    }

    /// Delay between log exports. Defaults to 1 s; variable [`OTEL_BLRP_SCHEDULE_DELAY`].
    pub fn with_log_schedule_delay(mut self, delay: Duration) -> Self {
        self.log_queue.delay = Some(delay);
        self
    }

    /// Interval between metric exports. Defaults to 30 s (the watchdog window); variable
    /// [`OTEL_METRIC_EXPORT_INTERVAL`].
    pub fn with_metric_interval(mut self, interval: Duration) -> Self {
        self.metric_interval = Some(interval);
        self
    }

    /// Longest string attribute value in bytes, spans and log records alike; longer ones are
    /// truncated at export. Defaults to 2048; variables [`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`],
    /// [`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`], [`OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`].
    pub fn with_attribute_value_length_limit(mut self, limit: usize) -> Self {
        self.attribute_value_length = Some(limit);
        self
    }

    /// Most attributes kept per span. Defaults to 128; variables
    /// [`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`], then [`OTEL_ATTRIBUTE_COUNT_LIMIT`]. Events, links and
    /// log records have their own variables ([`OTEL_SPAN_EVENT_COUNT_LIMIT`], …).
    pub fn with_span_attribute_count_limit(mut self, limit: u32) -> Self {
        self.span_attribute_count = Some(limit);
        self
    }

    /// The temporality of exported sums and histograms: cumulative (the default), delta, or low
    /// memory (delta for counters and histograms, cumulative for the rest). Variable
    /// [`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`].
    ///
    /// ```
    /// use paytrace::opentelemetry_sdk::metrics::Temporality;
    /// let config = paytrace::Config::new().with_metrics_temporality(Temporality::Delta);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_metrics_temporality(
        mut self,
        temporality: opentelemetry_sdk::metrics::Temporality,
    ) -> Self {
        self.temporality = Some(temporality);
        self
    }

    /// Largest encoded export request; larger batches are split. Defaults to 3 MiB, under the
    /// 4 MiB gRPC receive limit collectors use by default.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// Bound on [`Telemetry::shutdown`](crate::telemetry::Telemetry::shutdown) and
    /// [`Telemetry::force_flush`](crate::telemetry::Telemetry::force_flush). Defaults to 5 s.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Install paytrace's `tracing` subscriber globally in `init_tracer`. Defaults to `true`;
    /// set `false` to compose your own subscriber with
    /// [`Telemetry::layers`](crate::telemetry::Telemetry::layers).
    pub fn with_install_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = Some(install);
        self
    }

    /// Also copy each `tracing` event inside a span onto that span as a span event. Defaults to
    /// `false`: the event is already a log record carrying the span's trace and span ids, and
    /// the copy costs about as much again; turn it on for backends that show only span events.
    ///
    /// ```
    /// let config = paytrace::Config::new().with_span_events(true);
    /// # let _ = config;
    /// ```
    pub fn with_span_events(mut self, copy: bool) -> Self {
        self.span_events = Some(copy);
        self
    }

    /// Stdout log format. Defaults to [`LogFormat::Json`].
    pub fn with_log_format(mut self, format: LogFormat) -> Self {
        self.log_format = Some(format);
        self
    }

    /// `tracing` filter directives (`RUST_LOG` syntax). Defaults to `info`; variable `RUST_LOG`
    /// (read by [`Config::from_env`], not by [`Config::new`]).
    pub fn with_log_filter(mut self, directives: impl Into<String>) -> Self {
        self.log_filter = Some(directives.into());
        self
    }

    /// Stdout buffer in records: when stdout cannot keep up, records beyond it are dropped and
    /// counted. Defaults to 8192.
    pub fn with_stdout_buffer(mut self, records: usize) -> Self {
        self.stdout_buffer = Some(records);
        self
    }

    /// Sample DEBUG/INFO log records (stdout and OTLP alike); WARN/ERROR and critical routes
    /// are always kept. Defaults to off (every record kept).
    pub fn with_log_sampling(mut self, sampling: LogSampling) -> Self {
        self.log_sampling = Some(sampling);
        self
    }

    /// How often the exporter-health watchdog checks. Defaults to 30 s.
    pub fn with_watchdog_interval(mut self, interval: Duration) -> Self {
        self.watchdog_interval = Some(interval);
        self
    }

    /// The watchdog warns when more than this many exports of a signal failed in one window.
    /// Defaults to 10.
    pub fn with_failure_threshold(mut self, failures: u64) -> Self {
        self.failure_threshold = Some(failures);
        self
    }

    /// The watchdog also warns when a signal had data but no export succeeded for this many
    /// windows (a black-holing collector fails too slowly for the count). Defaults to 2.
    pub fn with_stale_windows(mut self, windows: u32) -> Self {
        self.stale_windows = Some(windows);
        self
    }

    /// Check every setting and environment variable now.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting or variable and the value.
    ///
    /// ```
    /// let err = paytrace::Config::from_env_vars([("OTEL_BSP_MAX_QUEUE_SIZE", "lots")])
    ///     .validate()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("OTEL_BSP_MAX_QUEUE_SIZE"));
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        self.resolve().map(drop)
    }
}
