//! [`init_tracer`] and the [`Telemetry`] guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanLimits, Tracer};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::{Propagator, Sampler, Settings};
use crate::export::batch::{Batcher, DrainError};
use crate::export::client::OtlpClient;
use crate::export::encode::{Encoder, Sanitizer};
use crate::export::processor::{is_internal_target, LogQueue, MetricSender, Sender, SpanQueue};
use crate::export::runtime::ExportRuntime;
use crate::export::stats::ExportStats;
use crate::export::Signal;
use crate::metrics::Bridge;
use crate::redact::Redactor;
use crate::watchdog::{self, Watchdog};
use crate::{Config, Error};

/// The instrumentation scope of everything paytrace itself records.
pub(crate) const SCOPE_NAME: &str = "paytrace";

/// Whether a global installation is live; guards against a second `init_tracer`.
static GLOBAL: AtomicBool = AtomicBool::new(false);

/// Start telemetry and install it process-wide: the global tracer and meter providers, the
/// W3C propagators, and (unless [`Config::with_install_subscriber`] is `false`) a `tracing`
/// subscriber that writes JSON to stdout and ships spans and log records to the collector.
///
/// Call it once, early in `main`, and keep the returned guard alive: dropping it flushes and
/// shuts telemetry down. It does not need to be called inside a tokio runtime: exports run on
/// paytrace's own background thread.
///
/// # Errors
/// - [`Error::InvalidConfig`] / [`Error::Certificate`] for a bad setting or `OTEL_*` variable;
/// - [`Error::AlreadyInitialized`] when called again while a previous guard is alive;
/// - [`Error::SubscriberAlreadySet`] when another global `tracing` subscriber exists.
///
/// ```no_run
/// # async fn run() -> Result<(), paytrace::Error> {
/// let telemetry = paytrace::init_tracer(
///     paytrace::Config::from_env().with_service_name("payment-gateway"),
/// )?;
/// tracing::info!(order_id = 42, "service started");
/// // ... serve ...
/// telemetry.shutdown()?;
/// # Ok(()) }
/// ```
pub fn init_tracer(config: Config) -> Result<Telemetry, Error> {
    if GLOBAL
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Error::AlreadyInitialized);
    }
    match Telemetry::start(config).and_then(|t| t.install_global().map(|()| t)) {
        Ok(mut telemetry) => {
            telemetry.global = true;
            Ok(telemetry)
        }
        Err(e) => {
            GLOBAL.store(false, Ordering::Release);
            Err(e)
        }
    }
}

/// The telemetry guard returned by [`init_tracer`] (or [`Telemetry::start`]).
///
/// Keep it alive for the life of the service. [`Telemetry::shutdown`] flushes every signal
/// within the configured timeout and tells the truth about it; dropping the guard does the same,
/// best effort. Neither ever hangs or panics, whatever the collector does.
#[must_use = "dropping the Telemetry guard shuts telemetry down; keep it alive while the service runs"]
#[derive(Debug)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
    global: bool,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) tracer_provider: SdkTracerProvider,
    pub(crate) tracer: Tracer,
    pub(crate) meter_provider: SdkMeterProvider,
    pub(crate) logger_provider: SdkLoggerProvider,
    pub(crate) registry: prometheus::Registry,
    pub(crate) stats: Arc<ExportStats>,
    pub(crate) redactor: Redactor,
    /// The non-blocking stdout writer; `None` when stdout logging is off.
    pub(crate) stdout: Option<Arc<crate::log::Stdout>>,
    /// `service.name` as resolved into the resource, for the stdout lines.
    pub(crate) service_name: String,
    /// Records dropped by log sampling.
    pub(crate) sampled_out: Arc<std::sync::atomic::AtomicU64>,
    /// The `http_server_*` instruments, registered in `registry` by the first HTTP layer.
    pub(crate) http_metrics: std::sync::OnceLock<Option<crate::http::HttpMetrics>>,
    pipeline: Option<Pipeline>,
    shut_down: AtomicBool,
}

/// The export side, absent when disabled.
#[derive(Debug)]
struct Pipeline {
    runtime: ExportRuntime,
    bridge: Bridge,
    watchdog: tokio::task::AbortHandle,
    spans: Arc<Batcher<opentelemetry_sdk::trace::SpanData>>,
    logs: Arc<Batcher<(opentelemetry_sdk::logs::SdkLogRecord, InstrumentationScope)>>,
}

impl Telemetry {
    /// Build telemetry without touching any global state: nothing is installed, so several
    /// instances can live in one process (tests, benchmarks). Use its parts explicitly:
    /// [`Telemetry::tracer`], [`Telemetry::layers`], [`Telemetry::subscriber`].
    ///
    /// # Errors
    /// As [`init_tracer`], except the two "already" errors.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let subscriber = telemetry.subscriber();
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("scoped, not global"));
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn start(config: Config) -> Result<Telemetry, Error> {
        let settings = config.resolve()?;
        let registry = prometheus::Registry::new();
        let stats = Arc::new(
            ExportStats::new(&registry)
                .map_err(|e| Error::invalid("metrics registry", "paytrace_exporter_*", e))?,
        );
        crate::metrics::register_defaults(&registry)?;
        let stdout = crate::log::start_stdout(&settings, &registry)?;
        let sampled_out = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if settings.log_sampling.is_some() {
            let counter = sampled_out.clone();
            let collector = crate::log::DroppedCollector::new("sampled", move || {
                counter.load(std::sync::atomic::Ordering::Relaxed)
            })
            .map_err(|e| {
                Error::invalid("metrics registry", "paytrace_log_records_dropped_total", e)
            })?;
            registry.register(Box::new(collector)).map_err(|e| {
                Error::invalid("metrics registry", "paytrace_log_records_dropped_total", e)
            })?;
        }
        let resource = build_resource(&settings);
        let redactor = Redactor::default();
        let limits = SpanLimits {
            max_attributes_per_span: settings.span_attribute_count,
            ..SpanLimits::default()
        };

        let mut tracer_builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_limits(limits)
            .with_sampler(sdk_sampler(if settings.disabled {
                Sampler::AlwaysOff
            } else {
                settings.sampler
            }));
        let mut logger_builder = SdkLoggerProvider::builder().with_resource(resource.clone());
        let mut meter_builder = SdkMeterProvider::builder().with_resource(resource.clone());

        // Captured before entering the export runtime's context below.
        let host = tokio::runtime::Handle::try_current().ok();
        let pipeline = if settings.disabled {
            None
        } else {
            let runtime = ExportRuntime::start().map_err(Error::Runtime)?;
            let rt = runtime.handle().clone();
            // tonic channels spawn their connection task on the runtime they are created in.
            let _enter = rt.enter();
            let sanitizer = Sanitizer::new(
                settings.attribute_value_length,
                settings.span_attribute_count as usize,
                redactor.clone(),
            );
            // The OTLP timeout bounds every export; the queue's own timeout can only shorten it.
            let client = |signal: Signal, queue_timeout: Duration| {
                let target = &settings.targets[signal.index()];
                OtlpClient::new(target, target.timeout.min(queue_timeout), settings.retry)
            };
            let sender = |signal: Signal, queue_timeout: Duration| -> Result<Sender, Error> {
                Ok(Sender {
                    client: client(signal, queue_timeout)?,
                    stats: stats.get(signal).clone(),
                    encoder: Mutex::new(Encoder::new(
                        sanitizer.clone(),
                        &resource,
                        settings.max_request_bytes,
                    )),
                })
            };
            let spans = Arc::new(Batcher::start(
                &rt,
                settings.span_batch,
                stats.get(Signal::Traces).clone(),
                sender(Signal::Traces, settings.span_batch.timeout)?,
            ));
            let logs = Arc::new(Batcher::start(
                &rt,
                settings.log_batch,
                stats.get(Signal::Logs).clone(),
                sender(Signal::Logs, settings.log_batch.timeout)?,
            ));
            let metrics = MetricSender {
                client: client(Signal::Metrics, Duration::MAX)?,
                stats: stats.get(Signal::Metrics).clone(),
                rt: rt.clone(),
            };
            tracer_builder = tracer_builder.with_span_processor(SpanQueue(spans.clone()));
            logger_builder = logger_builder.with_log_processor(LogQueue::new(logs.clone()));
            meter_builder = meter_builder.with_reader(
                PeriodicReader::builder(metrics.clone())
                    .with_interval(settings.metric_interval)
                    .build(),
            );
            // The watchdog runs on the host's runtime when there is one (so its records reach the
            // subscriber the host sees, and tests can drive it with a paused clock), else on the
            // export thread.
            let dog = Watchdog::new(
                stats.clone(),
                settings.failure_threshold,
                settings.stale_windows,
            );
            let (span_q, log_q) = (spans.clone(), logs.clone());
            // The watchdog's windows are measured on the clock of the runtime it runs on.
            drop(_enter);
            let _host_context = host.as_ref().map(|h| h.enter());
            let task = watchdog::run(dog, settings.watchdog_interval, move || {
                [span_q.queued() > 0, false, log_q.queued() > 0]
            });
            let watchdog = match &host {
                Some(host) => host.spawn(task).abort_handle(),
                None => rt.spawn(task).abort_handle(),
            };
            // paytrace's own instruments (Prometheus registry) reach OTLP through the bridge.
            let bridge = Bridge::new(registry.clone(), &resource, metrics.clone());
            bridge.spawn(&rt, settings.metric_interval);
            Some(Pipeline {
                runtime,
                bridge,
                watchdog,
                spans,
                logs,
            })
        };

        let tracer_provider = tracer_builder.build();
        let tracer = tracer_provider.tracer_with_scope(scope());
        let service_name = resource
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let inner = Inner {
            stdout,
            service_name,
            sampled_out,
            tracer_provider,
            tracer,
            meter_provider: meter_builder.build(),
            logger_provider: logger_builder.build(),
            registry,
            stats,
            redactor,
            http_metrics: std::sync::OnceLock::new(),
            pipeline,
            shut_down: AtomicBool::new(false),
            settings,
        };
        Ok(Telemetry {
            inner: Arc::new(inner),
            global: false,
        })
    }

    fn install_global(&self) -> Result<(), Error> {
        let s = &self.inner.settings;
        if s.install_subscriber {
            tracing::subscriber::set_global_default(self.subscriber())
                .map_err(|e| Error::SubscriberAlreadySet(e.to_string()))?;
        }
        opentelemetry::global::set_tracer_provider(self.inner.tracer_provider.clone());
        opentelemetry::global::set_meter_provider(self.inner.meter_provider.clone());
        install_propagators(&s.propagators);
        Ok(())
    }

    /// `false` when built from [`Config::disabled`] or `OTEL_SDK_DISABLED=true`: spans are not
    /// sampled and nothing is exported, but every API keeps working.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// assert!(!telemetry.is_enabled());
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.pipeline.is_some()
    }

    /// The OpenTelemetry tracer paytrace records with (scope `paytrace`).
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, Span as _};
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let mut span = telemetry.tracer().start("charge");
    /// span.end();
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn tracer(&self) -> &Tracer {
        &self.inner.tracer
    }

    /// The tracer provider, for instrumentation that wants its own scope.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.inner.tracer_provider
    }

    /// The meter provider (exported over OTLP on the metric interval).
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let counter = telemetry.meter_provider().meter("payments").u64_counter("refunds").build();
    /// counter.add(1, &[]);
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.inner.meter_provider
    }

    /// The logger provider behind the OTLP log bridge.
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.inner.logger_provider
    }

    /// paytrace's `tracing` layers, for services that compose their own subscriber
    /// ([`Config::with_install_subscriber(false)`](Config::with_install_subscriber)): the env
    /// filter, JSON/pretty stdout, spans to OpenTelemetry, and events to OTLP log records.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let subscriber = tracing_subscriber::registry().with(telemetry.layers());
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("composed"));
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn layers<S>(&self) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let s = &self.inner.settings;
        // Checked in Config::resolve.
        let filter =
            tracing_subscriber::EnvFilter::try_new(&s.log_filter).unwrap_or_else(|_| "info".into());
        // Transport crates and paytrace's export diagnostics must not re-enter the pipeline.
        let not_internal =
            tracing_subscriber::filter::filter_fn(|m| !is_internal_target(m.target()));
        let otel_spans = tracing_opentelemetry::layer()
            .with_tracer(self.inner.tracer.clone())
            .with_filter(not_internal.clone());
        let otel_logs = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
            &self.inner.logger_provider,
        )
        .with_filter(not_internal);
        let stdout = crate::log::stdout_layer(self);
        // Sampling decides before every output, so stdout and OTLP keep the same records.
        let sampler = s
            .log_sampling
            .as_ref()
            .map(|sampling| crate::log::Sampler::new(sampling, self.inner.sampled_out.clone()));
        Box::new(
            filter
                .and_then(sampler)
                .and_then(stdout)
                .and_then(otel_spans)
                .and_then(otel_logs),
        )
    }

    /// A complete subscriber (a registry with [`Telemetry::layers`]), for
    /// `tracing::subscriber::set_default` in tests or `set_global_default`.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry().with(self.layers())
    }

    /// Export everything recorded so far, waiting at most the shutdown timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the collector did not answer in time, [`Error::ExportFailed`]
    /// when an export failed (the data is lost).
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// telemetry.force_flush()?;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn force_flush(&self) -> Result<(), Error> {
        let Some(p) = &self.inner.pipeline else {
            return Ok(());
        };
        let timeout = self.inner.settings.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        let spans = p.spans.flush(timeout);
        let logs = p.logs.flush(remaining(deadline));
        let provider = self.inner.meter_provider.clone();
        let metrics = bounded(remaining(deadline), move || provider.force_flush())
            .and_then(|()| p.bridge.push_now(p.runtime.handle(), remaining(deadline)));
        first_error("flush", timeout, spans, logs, metrics)
    }

    /// Flush every signal and stop exporting, within the configured shutdown timeout (default
    /// 5 s). Safe from sync or async code, in any tokio runtime flavour; never hangs.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the timeout ran out (for example a collector that accepts
    /// connections and never answers), [`Error::ExportFailed`] when a final export failed.
    /// Unlike the SDK's own shutdown, `Ok` means everything recorded before the call was
    /// accepted by the collector.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// telemetry.shutdown()?;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn shutdown(self) -> Result<(), Error> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&self) -> Result<(), Error> {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let timeout = self.inner.settings.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        let result = match &self.inner.pipeline {
            None => Ok(()),
            Some(p) => {
                p.watchdog.abort();
                let spans = p.spans.shutdown(timeout);
                let logs = p.logs.shutdown(remaining(deadline));
                let provider = self.inner.meter_provider.clone();
                let metrics = p
                    .bridge
                    .push_now(p.runtime.handle(), remaining(deadline))
                    .and(bounded(remaining(deadline), move || provider.shutdown()));
                let result = first_error("shutdown", timeout, spans, logs, metrics);
                // The queues are drained; the providers' own shutdown only marks them closed.
                let _ = self
                    .inner
                    .tracer_provider
                    .shutdown_with_timeout(Duration::from_millis(50));
                let _ = self
                    .inner
                    .logger_provider
                    .shutdown_with_timeout(Duration::from_millis(50));
                p.runtime
                    .stop(remaining(deadline).max(Duration::from_millis(10)));
                result
            }
        };
        if let Some(stdout) = &self.inner.stdout {
            stdout.close();
        }
        if self.global {
            GLOBAL.store(false, Ordering::Release);
        }
        result
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_inner() {
            // Best effort: there is no caller left to tell but stderr.
            eprintln!("paytrace: shutdown on drop: {e}");
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Run a blocking SDK call on its own thread and wait at most `timeout` for it.
fn bounded<F>(timeout: Duration, f: F) -> Result<(), DrainError>
where
    F: FnOnce() -> opentelemetry_sdk::error::OTelSdkResult + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("paytrace-flush".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return Err(DrainError::Failed("cannot spawn flush thread".into()));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown)) => Ok(()),
        Ok(Err(e)) => Err(DrainError::Failed(e.to_string())),
        Err(_) => Err(DrainError::Timeout),
    }
}

fn first_error(
    operation: &'static str,
    timeout: Duration,
    spans: Result<(), DrainError>,
    logs: Result<(), DrainError>,
    metrics: Result<(), DrainError>,
) -> Result<(), Error> {
    let results = [
        (Signal::Traces, spans),
        (Signal::Logs, logs),
        (Signal::Metrics, metrics),
    ];
    if results.iter().any(|(_, r)| *r == Err(DrainError::Timeout)) {
        return Err(Error::Timeout { operation, timeout });
    }
    for (signal, r) in results {
        if let Err(DrainError::Failed(message)) = r {
            return Err(Error::ExportFailed { signal, message });
        }
    }
    Ok(())
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn sdk_sampler(sampler: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    match sampler {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::Ratio(r) => S::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
        Sampler::ParentBasedRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
    }
}

fn install_propagators(propagators: &[Propagator]) {
    let list: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        propagators
            .iter()
            .map(
                |p| -> Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync> {
                    match p {
                        Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                        Propagator::Baggage => Box::new(BaggagePropagator::new()),
                    }
                },
            )
            .collect();
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(list));
}

fn build_resource(s: &Settings) -> Resource {
    let mut base = vec![
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", "0.33"),
        KeyValue::new("telemetry.distro.name", "paytrace"),
        KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(host) = host_name() {
        base.push(KeyValue::new("host.name", host));
    }
    let mut explicit = Vec::new();
    match &s.service_name {
        Some(name) => explicit.push(KeyValue::new("service.name", name.clone())),
        None if !s
            .resource
            .iter()
            .any(|kv| kv.key.as_str() == "service.name") =>
        {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            base.push(KeyValue::new(
                "service.name",
                format!("unknown_service:{exe}"),
            ));
        }
        None => {}
    }
    if let Some(v) = &s.service_version {
        explicit.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(e) = &s.environment {
        explicit.push(KeyValue::new("deployment.environment.name", e.clone()));
    }
    // Later entries win: detected values, then OTEL_RESOURCE_ATTRIBUTES and code attributes,
    // then the dedicated setters.
    Resource::builder_empty()
        .with_attributes(base)
        .with_attributes(s.resource.iter().cloned())
        .with_attributes(explicit)
        .build()
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}
