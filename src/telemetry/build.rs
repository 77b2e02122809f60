//! [`Telemetry::start`]: settings resolved, then each signal's provider built on its part of the
//! export pipeline (`pipeline`).
//!
//! ```text
//!  tracer ──► SpanQueue ─┐                       ┌─► OtlpClient (traces) ──┐
//!  log bridge ► LogQueue ├─► Batcher ─► Encoder ─┼─► OtlpClient (logs) ────┼─► collector
//!  meters ──► PeriodicReader / Bridge ──────────►└─► OtlpClient (metrics) ─┘
//!                          (export runtime: one background thread)
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanLimits};
use opentelemetry_sdk::Resource;

use super::pipeline::{start_pipeline, LogBatcher};
use super::resource::build_resource;
use super::shared::Shared;
use super::{Inner, Pipeline, Telemetry};
use crate::config::{Config, Sampler, Settings};
use crate::control::{Control, FilterSlot};
use crate::error::Error;
use crate::export::console::Console;
use crate::export::processor::{LogQueue, MetricSender, SpanQueue};
use crate::export::Target;
use crate::exporter::Exporter;
use crate::log::{LogSettings, Stdout};
use crate::metrics::DroppedCollector;
use crate::redact::Redactor;
use crate::sampling::{ConsistentSampler, HeadControl, TailKeepQueue};
use crate::signal::{PerSignal, SCOPE_NAME};

impl Telemetry {
    /// Build telemetry without touching any global state: nothing is installed, so several
    /// instances can live in one process (tests, benchmarks). Use its parts explicitly:
    /// [`Telemetry::tracer`], [`Telemetry::layers`], [`Telemetry::subscriber`].
    ///
    /// # Errors
    /// As [`init_tracer`](crate::init_tracer), except the two "already" errors.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let subscriber = telemetry.subscriber();
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("scoped, not global"));
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn start(config: Config) -> Result<Telemetry, Error> {
        let settings = config.resolve()?;
        let shared = Shared::register(&settings)?;
        let logs = LogOutput::start(&settings.log, &shared.registry)?;
        let resource = build_resource(&settings.resource);
        // The head ratio, changeable at run time, when a ratio sampler is configured.
        let head = settings
            .sampler
            .ratio()
            .map(|r| Arc::new(HeadControl::new(r)));
        let console = console(&settings.export.targets, &shared.redactor);
        let pipeline = match settings.disabled {
            true => None,
            false => Some(start_pipeline(
                &settings,
                &resource,
                &shared,
                console.as_ref(),
            )?),
        };
        let to = Destinations::new(&settings, pipeline.as_ref(), console.as_ref());
        let providers = Providers::new(&settings, &resource, to, head.as_ref());
        let control = Control::new(
            logs.filter.clone(),
            settings.log.filter.clone(),
            head,
            settings.sampler.ratio(),
            settings.control_max_ttl,
            &shared.registry,
            pipeline.as_ref().map(|p| p.runtime.handle().clone()),
        )?;
        let inner = assemble(
            settings, shared, &resource, logs, providers, control, pipeline,
        );
        Ok(Telemetry {
            inner: Arc::new(inner),
            global: false,
        })
    }
}

/// The local side of logging: the stdout writer, what log sampling drops, the filter in force.
struct LogOutput {
    stdout: Option<Arc<Stdout>>,
    sampled_out: Arc<AtomicU64>,
    filter: Arc<FilterSlot>,
}

impl LogOutput {
    fn start(log: &LogSettings, registry: &prometheus::Registry) -> Result<Self, Error> {
        Ok(LogOutput {
            stdout: start_stdout(log, registry)?,
            sampled_out: sampled_out_counter(log, registry)?,
            filter: Arc::new(FilterSlot::new(&log.filter, log.diagnostics)),
        })
    }
}

/// What `start` built, as the `Telemetry` methods find it.
fn assemble(
    settings: Settings,
    shared: Shared,
    resource: &Resource,
    logs: LogOutput,
    providers: Providers,
    control: Control,
    pipeline: Option<Pipeline>,
) -> Inner {
    Inner {
        tracer: providers.tracer.tracer_with_scope(scope()),
        tracer_provider: providers.tracer,
        meter_provider: providers.meter,
        logger_provider: providers.logger,
        registry: shared.registry,
        stats: shared.stats,
        redactor: shared.redactor,
        exemplars: shared.exemplars,
        thinned: shared.thinned.clone(),
        stdout: logs.stdout,
        service_name: service_name(resource),
        sampled_out: logs.sampled_out,
        filter: logs.filter,
        http_metrics: OnceLock::new(),
        #[cfg(feature = "grpc")]
        grpc_metrics: OnceLock::new(),
        control,
        log: settings.log,
        propagators: settings.propagators,
        trust: settings.trust,
        propagate_to: settings.propagate_to,
        config_warnings: settings.warnings,
        install_subscriber: settings.install_subscriber,
        shutdown_timeout: settings.shutdown_timeout,
        event_queue: providers.events,
        pipeline,
        shut_down: AtomicBool::new(false),
    }
}

/// `service.name` as resolved into the resource, for the stdout lines.
fn service_name(resource: &Resource) -> String {
    resource
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The console exporters' writer, when one of them is on: the lossy stdout every console
/// signal shares.
fn console(targets: &PerSignal<Target>, redactor: &Redactor) -> Option<Console> {
    use std::io::Write as _;
    if !targets.iter().any(|t| t.exporter == Exporter::Console) {
        return None;
    }
    // One writer per process: console output is for development, and lines of several
    // telemetry instances interleave whole.
    static STDOUT: OnceLock<Stdout> = OnceLock::new();
    let stdout = STDOUT.get_or_init(|| Stdout::new(std::io::stdout(), 8192));
    let sink = Arc::new(move |line: &str| {
        let _ = stdout.writer().write_all(line.as_bytes());
    });
    Some(Console::new(sink, redactor.clone()))
}

/// Where ended spans go: straight to the export queue, through tail keep, or to the console.
enum SpansTo {
    Queue(SpanQueue),
    Keeper(TailKeepQueue),
    Console(Console),
}

/// Where log records go besides stdout JSON: the export queue or the console.
enum LogsTo {
    // Boxed: the queue's blank record is large, and the enum only lives during the build.
    Queue(Box<LogQueue>),
    Console(Console),
}

/// Where each signal's provider sends what it records, decided once from the exporters; `None`
/// for a signal going nowhere (disabled, or its exporter is `none`).
struct Destinations {
    spans: Option<SpansTo>,
    logs: Option<LogsTo>,
    metrics: Option<MetricSender>,
}

impl Destinations {
    fn new(settings: &Settings, pipeline: Option<&Pipeline>, console: Option<&Console>) -> Self {
        let Some(pipeline) = pipeline else {
            return Destinations {
                spans: None,
                logs: None,
                metrics: None,
            };
        };
        let targets = &settings.export.targets;
        // The providers' `force_flush` waits as long as `Telemetry::force_flush` does.
        let flush = settings.shutdown_timeout;
        Destinations {
            spans: spans_to(targets.traces.exporter, pipeline, console, flush),
            logs: logs_to(targets.logs.exporter, pipeline, console, flush),
            metrics: (targets.metrics.exporter == Exporter::Otlp).then(|| pipeline.metrics.clone()),
        }
    }
}

/// Over OTLP, spans pass through tail keep when it is on.
fn spans_to(
    exporter: Exporter,
    pipeline: &Pipeline,
    console: Option<&Console>,
    flush: Duration,
) -> Option<SpansTo> {
    match exporter {
        Exporter::Otlp => Some(match &pipeline.keeper {
            Some(keeper) => SpansTo::Keeper(keeper.clone()),
            None => SpansTo::Queue(SpanQueue::new(pipeline.spans.clone(), flush)),
        }),
        Exporter::Console => console.cloned().map(SpansTo::Console),
        Exporter::None => None,
    }
}

fn logs_to(
    exporter: Exporter,
    pipeline: &Pipeline,
    console: Option<&Console>,
    flush: Duration,
) -> Option<LogsTo> {
    match exporter {
        Exporter::Otlp => Some(LogsTo::Queue(Box::new(LogQueue::new(
            pipeline.logs.clone(),
            flush,
        )))),
        Exporter::Console => console.cloned().map(LogsTo::Console),
        Exporter::None => None,
    }
}

/// The three SDK providers, each on its part of the pipeline.
struct Providers {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
    /// The queue behind the logger's processor when logs go over OTLP: `tracing` events are
    /// written into it directly.
    events: Option<Arc<LogBatcher>>,
    meter: SdkMeterProvider,
}

impl Providers {
    fn new(
        settings: &Settings,
        resource: &Resource,
        to: Destinations,
        head: Option<&Arc<HeadControl>>,
    ) -> Self {
        let events = match &to.logs {
            Some(LogsTo::Queue(queue)) => Some(queue.queue().clone()),
            _ => None,
        };
        Providers {
            tracer: tracer_provider(settings, resource, to.spans, head),
            logger: logger_provider(resource, to.logs),
            events,
            meter: meter_provider(resource, to.metrics, settings.export.metric_interval),
        }
    }
}

fn tracer_provider(
    settings: &Settings,
    resource: &Resource,
    to: Option<SpansTo>,
    head: Option<&Arc<HeadControl>>,
) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_limits(span_limits(settings));
    let builder = match (settings.disabled, head) {
        (true, _) => builder.with_sampler(sdk_sampler(Sampler::AlwaysOff)),
        // The ratio is decided the consistent way, and what it does not keep is recorded
        // for tail keep when that is on.
        (false, Some(head)) => builder.with_sampler(ConsistentSampler::new(
            head.clone(),
            matches!(settings.sampler, Sampler::ParentBasedRatio(_)),
            settings.tail_keep.is_some(),
        )),
        (false, None) => builder.with_sampler(sdk_sampler(settings.sampler)),
    };
    match to {
        Some(SpansTo::Queue(queue)) => builder.with_span_processor(queue).build(),
        Some(SpansTo::Keeper(keeper)) => builder.with_span_processor(keeper).build(),
        Some(SpansTo::Console(console)) => builder.with_span_processor(console).build(),
        None => builder.build(),
    }
}

fn span_limits(settings: &Settings) -> SpanLimits {
    let l = &settings.export.limits;
    SpanLimits {
        max_attributes_per_span: l.span_attribute_count,
        max_events_per_span: l.span_event_count,
        max_links_per_span: l.span_link_count,
        max_attributes_per_event: l.event_attribute_count,
        max_attributes_per_link: l.link_attribute_count,
    }
}

fn logger_provider(resource: &Resource, to: Option<LogsTo>) -> SdkLoggerProvider {
    let builder = SdkLoggerProvider::builder().with_resource(resource.clone());
    match to {
        Some(LogsTo::Queue(queue)) => builder.with_log_processor(*queue).build(),
        Some(LogsTo::Console(console)) => builder.with_log_processor(console).build(),
        None => builder.build(),
    }
}

fn meter_provider(
    resource: &Resource,
    sender: Option<MetricSender>,
    interval: Duration,
) -> SdkMeterProvider {
    let builder = SdkMeterProvider::builder().with_resource(resource.clone());
    match sender {
        Some(sender) => builder
            .with_reader(
                PeriodicReader::builder(sender)
                    .with_interval(interval)
                    .build(),
            )
            .build(),
        None => builder.build(),
    }
}

/// Starts the stdout writer and counts what it drops; `None` when stdout logging is off.
fn start_stdout(
    log: &LogSettings,
    registry: &prometheus::Registry,
) -> Result<Option<Arc<Stdout>>, Error> {
    if log.format == crate::log::LogFormat::Off {
        return Ok(None);
    }
    let stdout = Arc::new(Stdout::new(std::io::stdout(), log.stdout_buffer));
    let counted = stdout.clone();
    register_dropped(registry, "stdout_full", move || counted.dropped())?;
    Ok(Some(stdout))
}

/// The count of records log sampling drops, registered when sampling is on.
fn sampled_out_counter(
    log: &LogSettings,
    registry: &prometheus::Registry,
) -> Result<Arc<AtomicU64>, Error> {
    let sampled_out = Arc::new(AtomicU64::new(0));
    if log.sampling.is_some() {
        let counter = sampled_out.clone();
        register_dropped(registry, "sampled", move || {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        })?;
    }
    Ok(sampled_out)
}

fn register_dropped(
    registry: &prometheus::Registry,
    reason: &str,
    source: impl Fn() -> u64 + Send + Sync + 'static,
) -> Result<(), Error> {
    let err = |e| Error::invalid("metrics registry", "paytrace_log_records_dropped_total", e);
    let collector = DroppedCollector::new(reason, source).map_err(err)?;
    registry.register(Box::new(collector)).map_err(err)
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
