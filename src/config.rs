//! [`Config`]: the builder handed to [`init_tracer`](crate::init_tracer).
//!
//! Every setting has a default tuned for a payment service, can be set in code with a `with_*`
//! method, and (with [`Config::from_env`]) can come from the standard `OTEL_*` environment
//! variable named in its doc. **Code beats environment**: a value set with `with_*` wins over the
//! variable. Values are checked at [`Config::validate`] / `init_tracer` time and a bad one is a
//! typed [`Error::InvalidConfig`] naming the variable and the value — never a panic later.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;

use crate::export::Signal;
use crate::Error;

// === environment variable names ===

/// `true` disables paytrace entirely (a working no-op [`Telemetry`](crate::Telemetry)).
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// The `service.name` resource attribute.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Extra resource attributes, `key=value,key2=value2` (values percent-decoded).
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// Propagators, comma-separated: `tracecontext`, `baggage`, `none`.
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

/// Every variable [`Config::from_env`] reads (per-signal variants such as
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
];

// === defaults (why: see the README's configuration table) ===

const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
// 2048 spans of ~1 KiB each bound the queue to a few MiB; a payment service making a few thousand
// spans per second between exports fits, and a burst beyond it is dropped and counted.
const DEFAULT_QUEUE_SIZE: usize = 2048;
// 512 spans gzip to well under 1 MiB: far below collectors' 4 MiB receive limit.
const DEFAULT_BATCH_SIZE: usize = 512;
// 1 s rather than the SDK's 5 s: spans reach the on-call engineer sooner and the queue drains
// before it fills at high request rates.
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(30);
// One huge header or field must not bloat every export.
const DEFAULT_ATTRIBUTE_VALUE_LENGTH: usize = 2048;
const DEFAULT_SPAN_ATTRIBUTE_COUNT: u32 = 128;
// Collectors refuse requests above 4 MiB by default (gRPC's receive limit): stay well below.
const DEFAULT_MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_WATCHDOG_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_FAILURE_THRESHOLD: u64 = 10;
const DEFAULT_STALE_WINDOWS: u32 = 2;
const DEFAULT_LOG_QUEUE_SIZE: usize = 4096;
const DEFAULT_STDOUT_BUFFER: usize = 8192;

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

/// How logs are written to stdout.
///
/// ```
/// let config = paytrace::Config::new().with_log_format(paytrace::LogFormat::Pretty);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line, with trace ids. The default.
    #[default]
    Json,
    /// Human-readable lines for development.
    Pretty,
    /// Nothing on stdout (records still go to the collector).
    Off,
}

/// A propagation format for [`Config::with_propagators`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagator {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
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
    retry: Option<bool>,
    sampler: Option<Sampler>,
    propagators: Option<Vec<Propagator>>,
    span_queue: BatchOverrides,
    log_queue: BatchOverrides,
    metric_interval: Option<Duration>,
    attribute_value_length: Option<usize>,
    span_attribute_count: Option<u32>,
    max_request_bytes: Option<usize>,
    shutdown_timeout: Option<Duration>,
    install_subscriber: Option<bool>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    stdout_buffer: Option<usize>,
    watchdog_interval: Option<Duration>,
    failure_threshold: Option<u64>,
    stale_windows: Option<u32>,
    log_sampling: Option<crate::log::LogSampling>,
}

#[derive(Clone, Default, Debug)]
struct BatchOverrides {
    queue: Option<usize>,
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
            .field("header_names", &header_names)
            .field("sampler", &self.sampler)
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

    /// Defaults, overridden by the standard `OTEL_*` environment variables ([`ENV_VARS`]),
    /// overridden in turn by anything set in code afterwards. Variables are read now and
    /// checked at [`Config::validate`] / `init_tracer` time.
    ///
    /// ```
    /// let config = paytrace::Config::from_env().with_service_name("checkout");
    /// # let _ = config;
    /// ```
    pub fn from_env() -> Self {
        Self::from_env_vars(std::env::vars().filter(|(k, _)| k.starts_with("OTEL_")))
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
    /// [`Telemetry`](crate::Telemetry) and nothing is exported. Same as `OTEL_SDK_DISABLED=true`.
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

    /// Propagation formats installed globally. Defaults to trace context + baggage; variable
    /// [`OTEL_PROPAGATORS`].
    pub fn with_propagators(mut self, propagators: impl IntoIterator<Item = Propagator>) -> Self {
        self.propagators = Some(propagators.into_iter().collect());
        self
    }

    /// Span queue capacity: spans beyond it are dropped and counted, the caller never waits.
    /// Defaults to 2048; variable [`OTEL_BSP_MAX_QUEUE_SIZE`].
    pub fn with_span_queue_size(mut self, size: usize) -> Self {
        self.span_queue.queue = Some(size);
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

    /// Log record queue capacity. Defaults to 4096; variable [`OTEL_BLRP_MAX_QUEUE_SIZE`].
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

    /// Longest string attribute value in bytes; longer ones are truncated at export. Defaults
    /// to 2048; variable [`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`].
    pub fn with_attribute_value_length_limit(mut self, limit: usize) -> Self {
        self.attribute_value_length = Some(limit);
        self
    }

    /// Most attributes kept per span. Defaults to 128; variable
    /// [`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`].
    pub fn with_span_attribute_count_limit(mut self, limit: u32) -> Self {
        self.span_attribute_count = Some(limit);
        self
    }

    /// Largest encoded export request; larger batches are split. Defaults to 3 MiB, under the
    /// 4 MiB gRPC receive limit collectors use by default.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// Bound on [`Telemetry::shutdown`](crate::Telemetry::shutdown) and
    /// [`Telemetry::force_flush`](crate::Telemetry::force_flush). Defaults to 5 s.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Install paytrace's `tracing` subscriber globally in `init_tracer`. Defaults to `true`;
    /// set `false` to compose your own subscriber with
    /// [`Telemetry::layers`](crate::Telemetry::layers).
    pub fn with_install_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = Some(install);
        self
    }

    /// Stdout log format. Defaults to [`LogFormat::Json`].
    pub fn with_log_format(mut self, format: LogFormat) -> Self {
        self.log_format = Some(format);
        self
    }

    /// `tracing` filter directives (`RUST_LOG` syntax). Defaults to `RUST_LOG`, else `info`.
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
    pub fn with_log_sampling(mut self, sampling: crate::log::LogSampling) -> Self {
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

    pub(crate) fn resolve(&self) -> Result<Settings, Error> {
        let env = Env(&self.env);
        let disabled = match self.disabled {
            Some(d) => d,
            None => env.parse(OTEL_SDK_DISABLED, parse_bool)?.unwrap_or(false),
        };
        let sampler = match self.sampler {
            Some(s) => s,
            None => env.sampler()?,
        };
        check_sampler(sampler)?;
        let propagators = match &self.propagators {
            Some(p) => p.clone(),
            None => env
                .parse(OTEL_PROPAGATORS, parse_propagators)?
                .unwrap_or_else(|| vec![Propagator::TraceContext, Propagator::Baggage]),
        };

        let mut resource = env
            .parse(OTEL_RESOURCE_ATTRIBUTES, parse_key_values)?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect::<Vec<_>>();
        resource.extend(self.resource.iter().cloned());
        let service_name = self
            .service_name
            .clone()
            .or_else(|| env.get(OTEL_SERVICE_NAME).map(str::to_owned));

        let mut targets = Vec::with_capacity(3);
        for signal in Signal::ALL {
            targets.push(self.target(&env, signal)?);
        }

        let span_batch = self.span_queue.resolve(
            &env,
            [
                OTEL_BSP_MAX_QUEUE_SIZE,
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                OTEL_BSP_SCHEDULE_DELAY,
                OTEL_BSP_EXPORT_TIMEOUT,
            ],
            DEFAULT_QUEUE_SIZE,
        )?;
        let log_batch = self.log_queue.resolve(
            &env,
            [
                OTEL_BLRP_MAX_QUEUE_SIZE,
                OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
                OTEL_BLRP_SCHEDULE_DELAY,
                OTEL_BLRP_EXPORT_TIMEOUT,
            ],
            DEFAULT_LOG_QUEUE_SIZE,
        )?;
        let metric_interval = positive_duration(
            "with_metric_interval",
            self.metric_interval,
            env.parse(OTEL_METRIC_EXPORT_INTERVAL, parse_millis)?,
            DEFAULT_METRIC_INTERVAL,
        )?;
        let attribute_value_length = match self.attribute_value_length {
            Some(v) => v,
            None => env
                .parse(OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, parse_usize)?
                .unwrap_or(DEFAULT_ATTRIBUTE_VALUE_LENGTH),
        };
        let span_attribute_count = match self.span_attribute_count {
            Some(v) => v,
            None => env
                .parse(OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, |s| {
                    s.parse::<u32>().map_err(|e| e.to_string())
                })?
                .unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT),
        };
        let max_request_bytes = self.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes < 1024 {
            return Err(Error::invalid(
                "with_max_request_bytes",
                max_request_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        let log_filter = match &self.log_filter {
            Some(f) => f.clone(),
            None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        };
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| Error::invalid("with_log_filter", log_filter.clone(), e))?;
        let watchdog_interval = positive_duration(
            "with_watchdog_interval",
            self.watchdog_interval,
            None,
            DEFAULT_WATCHDOG_INTERVAL,
        )?;
        let shutdown_timeout = positive_duration(
            "with_shutdown_timeout",
            self.shutdown_timeout,
            None,
            DEFAULT_SHUTDOWN_TIMEOUT,
        )?;

        if let Some(sampling) = &self.log_sampling {
            if !sampling.is_valid() {
                return Err(Error::invalid(
                    "with_log_sampling",
                    format!("{sampling:?}"),
                    "ratio must be within [0, 1]",
                ));
            }
        }
        Ok(Settings {
            log_sampling: self.log_sampling.clone(),
            disabled,
            service_name,
            service_version: self.service_version.clone(),
            environment: self.environment.clone(),
            resource,
            targets,
            retry: self.retry.unwrap_or(true),
            sampler,
            propagators,
            span_batch,
            log_batch,
            metric_interval,
            attribute_value_length,
            span_attribute_count,
            max_request_bytes,
            shutdown_timeout,
            install_subscriber: self.install_subscriber.unwrap_or(true),
            log_format: self.log_format.unwrap_or_default(),
            log_filter,
            stdout_buffer: self.stdout_buffer.unwrap_or(DEFAULT_STDOUT_BUFFER).max(1),
            watchdog_interval,
            failure_threshold: self.failure_threshold.unwrap_or(DEFAULT_FAILURE_THRESHOLD),
            stale_windows: self.stale_windows.unwrap_or(DEFAULT_STALE_WINDOWS).max(1),
        })
    }

    fn target(&self, env: &Env<'_>, signal: Signal) -> Result<Target, Error> {
        let upper = signal.env_name();
        // Per-signal variables win over the general ones, code wins over both.
        let var = |suffix: &'static str| -> (&'static str, Option<&str>) {
            let specific = signal_var(upper, suffix);
            match env.get(specific) {
                Some(v) => (specific, Some(v)),
                None => {
                    let general = general_var(suffix);
                    (general, env.get(general))
                }
            }
        };
        let (endpoint_name, endpoint) = match self
            .signal_endpoints
            .get(&signal)
            .or(self.endpoint.as_ref())
        {
            Some(e) => ("with_endpoint", e.clone()),
            None => match var("ENDPOINT") {
                (name, Some(v)) => (name, v.to_owned()),
                (name, None) => (name, DEFAULT_ENDPOINT.to_owned()),
            },
        };
        let endpoint = parse_endpoint(&endpoint)
            .map_err(|reason| Error::invalid(endpoint_name, endpoint.clone(), reason))?;

        let mut headers = match var("HEADERS") {
            (name, Some(v)) => {
                parse_key_values(v).map_err(|reason| Error::invalid(name, v, reason))?
            }
            _ => Vec::new(),
        };
        for (k, v) in &self.headers {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        for (k, v) in &headers {
            let valid_name =
                tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(k.as_bytes())
                    .is_ok();
            if !valid_name || tonic::metadata::MetadataValue::try_from(v.as_str()).is_err() {
                // Never echo a header value: it is usually a credential.
                return Err(Error::invalid(
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    k.clone(),
                    "not a valid gRPC metadata name/value",
                ));
            }
        }
        let gzip = match self.compression {
            Some(g) => g,
            None => match var("COMPRESSION") {
                (name, Some(v)) => match v.trim().to_ascii_lowercase().as_str() {
                    "gzip" => true,
                    "none" | "" => false,
                    _ => return Err(Error::invalid(name, v, "expected `gzip` or `none`")),
                },
                _ => true,
            },
        };
        let timeout = match self.timeout {
            Some(t) => t,
            None => match var("TIMEOUT") {
                (name, Some(v)) => parse_millis(v).map_err(|r| Error::invalid(name, v, r))?,
                _ => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(Error::invalid(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "0",
                "must be > 0",
            ));
        }
        let certificate = match &self.certificate {
            Some(p) => Some(p.clone()),
            None => var("CERTIFICATE").1.map(PathBuf::from),
        };
        let ca_pem = match certificate {
            Some(path) => Some(std::fs::read(&path).map_err(|source| Error::Certificate {
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        };
        Ok(Target {
            signal,
            endpoint,
            headers,
            gzip,
            timeout,
            ca_pem,
        })
    }
}

impl BatchOverrides {
    fn resolve(
        &self,
        env: &Env<'_>,
        [queue_var, batch_var, delay_var, timeout_var]: [&'static str; 4],
        default_queue: usize,
    ) -> Result<BatchSettings, Error> {
        let queue = match self.queue {
            Some(q) => q,
            None => env.parse(queue_var, parse_usize)?.unwrap_or(default_queue),
        };
        let batch = match self.batch {
            Some(b) => b,
            None => env
                .parse(batch_var, parse_usize)?
                .unwrap_or(DEFAULT_BATCH_SIZE),
        };
        if queue == 0 || batch == 0 {
            return Err(Error::invalid(
                queue_var,
                queue.to_string(),
                "queue and batch sizes must be > 0",
            ));
        }
        let delay = positive_duration(
            delay_var,
            self.delay,
            env.parse(delay_var, parse_millis)?,
            DEFAULT_SCHEDULE_DELAY,
        )?;
        let timeout = positive_duration(
            timeout_var,
            self.timeout,
            env.parse(timeout_var, parse_millis)?,
            DEFAULT_TIMEOUT,
        )?;
        Ok(BatchSettings {
            queue,
            // A batch larger than the queue could never fill.
            batch: batch.min(queue),
            delay,
            timeout,
        })
    }
}

// === resolved settings (crate-internal) ===

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) disabled: bool,
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) resource: Vec<KeyValue>,
    /// Indexed by `Signal as usize`.
    pub(crate) targets: Vec<Target>,
    pub(crate) retry: bool,
    pub(crate) sampler: Sampler,
    pub(crate) propagators: Vec<Propagator>,
    pub(crate) span_batch: BatchSettings,
    pub(crate) log_batch: BatchSettings,
    pub(crate) metric_interval: Duration,
    pub(crate) attribute_value_length: usize,
    pub(crate) span_attribute_count: u32,
    pub(crate) max_request_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) install_subscriber: bool,
    pub(crate) log_format: LogFormat,
    pub(crate) log_filter: String,
    pub(crate) stdout_buffer: usize,
    pub(crate) watchdog_interval: Duration,
    pub(crate) failure_threshold: u64,
    pub(crate) stale_windows: u32,
    pub(crate) log_sampling: Option<crate::log::LogSampling>,
}

#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) signal: Signal,
    pub(crate) endpoint: http::Uri,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.len())
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("custom_ca", &self.ca_pem.is_some())
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) delay: Duration,
    pub(crate) timeout: Duration,
}

// === parsing ===

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(
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

    fn sampler(&self) -> Result<Sampler, Error> {
        let ratio = |default: f64| -> Result<f64, Error> {
            Ok(self
                .parse(OTEL_TRACES_SAMPLER_ARG, parse_ratio)?
                .unwrap_or(default))
        };
        let Some(name) = self.get(OTEL_TRACES_SAMPLER) else {
            return Ok(Sampler::ParentBasedAlwaysOn);
        };
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::Ratio(ratio(1.0)?),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedRatio(ratio(1.0)?),
            _ => {
                return Err(Error::invalid(
                    OTEL_TRACES_SAMPLER,
                    name,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ))
            }
        })
    }
}

fn signal_var(signal: &str, suffix: &str) -> &'static str {
    // The per-signal names form a small fixed set; match instead of allocating.
    match (signal, suffix) {
        ("TRACES", "ENDPOINT") => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ("TRACES", "HEADERS") => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ("TRACES", "COMPRESSION") => "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ("TRACES", "TIMEOUT") => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        ("TRACES", "CERTIFICATE") => "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        ("METRICS", "ENDPOINT") => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ("METRICS", "HEADERS") => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ("METRICS", "COMPRESSION") => "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        ("METRICS", "TIMEOUT") => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        ("METRICS", "CERTIFICATE") => "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
        ("LOGS", "ENDPOINT") => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ("LOGS", "HEADERS") => "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        ("LOGS", "COMPRESSION") => "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
        ("LOGS", "TIMEOUT") => "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        ("LOGS", "CERTIFICATE") => "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        _ => general_var(suffix),
    }
}

fn general_var(suffix: &str) -> &'static str {
    match suffix {
        "ENDPOINT" => OTEL_EXPORTER_OTLP_ENDPOINT,
        "HEADERS" => OTEL_EXPORTER_OTLP_HEADERS,
        "COMPRESSION" => OTEL_EXPORTER_OTLP_COMPRESSION,
        "TIMEOUT" => OTEL_EXPORTER_OTLP_TIMEOUT,
        _ => OTEL_EXPORTER_OTLP_CERTIFICATE,
    }
}

fn positive_duration(
    name: &'static str,
    code: Option<Duration>,
    env: Option<Duration>,
    default: Duration,
) -> Result<Duration, Error> {
    let d = code.or(env).unwrap_or(default);
    if d.is_zero() {
        return Err(Error::invalid(name, "0", "must be greater than zero"));
    }
    Ok(d)
}

fn check_sampler(sampler: Sampler) -> Result<(), Error> {
    match sampler {
        Sampler::Ratio(r) | Sampler::ParentBasedRatio(r) if !(0.0..=1.0).contains(&r) => Err(
            Error::invalid("with_sampler", r.to_string(), "ratio must be within [0, 1]"),
        ),
        _ => Ok(()),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected `true` or `false`".into()),
    }
}

fn parse_usize(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|e| format!("expected a non-negative integer: {e}"))
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("expected milliseconds as an integer: {e}"))
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("ratio must be within [0, 1]".into()),
        Err(e) => Err(format!("expected a number: {e}")),
    }
}

fn parse_propagators(s: &str) -> Result<Vec<Propagator>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "tracecontext" => out.push(Propagator::TraceContext),
            "baggage" => out.push(Propagator::Baggage),
            "none" => return Ok(Vec::new()),
            other => {
                return Err(format!(
                    "unsupported propagator `{other}` (supported: tracecontext, baggage, none)"
                ))
            }
        }
    }
    out.dedup();
    Ok(out)
}

/// `k=v,k2=v2` with percent-encoded values (W3C baggage-like syntax used by the OTel spec).
fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("empty key in `{pair}`"));
        }
        out.push((percent_decode(k)?, percent_decode(v.trim())?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = crate::util::percent_escape_at(bytes, i)
                .ok_or_else(|| format!("bad percent-encoding in `{s}`"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 after percent-decoding"))
}

fn parse_endpoint(s: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = s.trim().parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("the scheme must be http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("missing host".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .targets
            .iter()
            .all(|t| t.gzip && t.timeout == DEFAULT_TIMEOUT));
        assert_eq!(s.targets[0].endpoint, "http://localhost:4317");
        assert_eq!(s.span_batch.queue, 2048);
        assert!(s.retry);
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
        assert_eq!(s.service_name.as_deref(), Some("pay"));
        assert!(s.resource.contains(&KeyValue::new("region", "eu-west")));
        assert_eq!(s.propagators, vec![Propagator::TraceContext]);
        assert_eq!(s.sampler, Sampler::ParentBasedRatio(0.25));
        let [traces, metrics, logs] = [&s.targets[0], &s.targets[1], &s.targets[2]];
        assert_eq!(traces.endpoint, "http://collector:4317/");
        assert_eq!(logs.endpoint, "https://logs:4317/");
        assert_eq!(
            traces.headers,
            vec![("x-token".to_owned(), "abc def".to_owned())]
        );
        assert!(!traces.gzip && metrics.gzip && !logs.gzip);
        assert_eq!(traces.timeout, Duration::from_millis(1500));
        assert_eq!(s.span_batch.queue, 100);
        assert_eq!(s.span_batch.batch, 50);
        assert_eq!(s.span_batch.delay, Duration::from_millis(250));
        assert_eq!(s.span_batch.timeout, Duration::from_millis(700));
        assert_eq!(s.log_batch.queue, 300);
        assert_eq!(s.metric_interval, Duration::from_secs(5));
        assert_eq!(s.attribute_value_length, 64);
        assert_eq!(s.span_attribute_count, 16);
    }

    #[test]
    fn certificate_variable_is_read() {
        let err = resolve(&[(OTEL_EXPORTER_OTLP_CERTIFICATE, "/nonexistent/ca.pem")]).unwrap_err();
        assert!(
            matches!(err, Error::Certificate { ref path, .. } if path == "/nonexistent/ca.pem")
        );
        let dir = std::env::temp_dir().join(format!("paytrace-ca-{}", std::process::id()));
        std::fs::write(&dir, b"-----BEGIN CERTIFICATE-----\n").unwrap();
        let s = resolve(&[(OTEL_EXPORTER_OTLP_CERTIFICATE, dir.to_str().unwrap())]).unwrap();
        assert!(s.targets.iter().all(|t| t.ca_pem.is_some()));
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
        assert_eq!(s.service_name.as_deref(), Some("from-code"));
        assert!(!s.disabled);
        assert_eq!(s.sampler, Sampler::AlwaysOn);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases: &[(&str, &str)] = &[
            (OTEL_SDK_DISABLED, "yes"),
            (OTEL_RESOURCE_ATTRIBUTES, "novalue"),
            (OTEL_PROPAGATORS, "b3"),
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
            .with_endpoint("localhost:4317")
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
}
