//! [`Telemetry::start`]: settings resolved, then each signal's provider built on its part of the
//! export pipeline.
//!
//! ```text
//!  tracer ──► SpanQueue ─┐                       ┌─► OtlpClient (traces) ──┐
//!  log bridge ► LogQueue ├─► Batcher ─► Encoder ─┼─► OtlpClient (logs) ────┼─► collector
//!  meters ──► PeriodicReader / Bridge ──────────►└─► OtlpClient (metrics) ─┘
//!                          (export runtime: one background thread)
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanLimits};
use opentelemetry_sdk::Resource;

use super::resource::build_resource;
use super::{Inner, Pipeline, Telemetry};
use crate::config::Settings;
use crate::config::{Config, Sampler};
use crate::control::{Control, FilterSlot};
use crate::error::Error;
use crate::exemplars::ExemplarStore;
use crate::export::batch::Batcher;
use crate::export::client::OtlpClient;
use crate::export::console::{Console, LineSink};
use crate::export::diagnosis::Diagnosis;
use crate::export::otlp::{Encoder, Sanitizer};
use crate::export::processor::{LogQueue, MetricSender, Sender, SpanQueue};
use crate::export::runtime::ExportRuntime;
use crate::export::stats::ExportStats;
use crate::export::Signal;
use crate::exporter::Exporter;
use crate::log::{LogSettings, Stdout};
use crate::metrics::{Bridge, DroppedCollector};
use crate::redact::Redactor;
use crate::sampling::{ConsistentSampler, HeadControl, KeepStats, TailKeepQueue, TailKeeper};
use crate::signal::SCOPE_NAME;
use crate::watchdog::{self, Watchdog};

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
        let registry = prometheus::Registry::new();
        let exemplars = Arc::new(if settings.export.exemplars_off {
            ExemplarStore::off()
        } else {
            ExemplarStore::default()
        });
        let stats = Arc::new(
            ExportStats::new(&registry)
                .map_err(|e| Error::invalid("metrics registry", "paytrace_exporter_*", e))?,
        );
        crate::metrics::register_defaults(&registry)?;
        // Registered whether tail keep is on or not: dashboards and alerts find the families.
        let keep_stats = KeepStats::new(&registry)
            .map_err(|e| Error::invalid("metrics registry", "paytrace_sampling_*", e))?;
        let stdout = start_stdout(&settings.log, &registry)?;
        let sampled_out = sampled_out_counter(&settings.log, &registry)?;
        let resource = build_resource(&settings.resource);
        let redactor = Redactor::default();

        // The head ratio, changeable at run time, when a ratio sampler is configured.
        let head = match settings.sampler {
            Sampler::Ratio(r) | Sampler::ParentBasedRatio(r) => Some(Arc::new(HeadControl::new(r))),
            _ => None,
        };
        let pipeline = if settings.disabled {
            None
        } else {
            Some(start_pipeline(
                &settings,
                &resource,
                &redactor,
                &stats,
                &registry,
                keep_stats,
                exemplars.clone(),
            )?)
        };
        let exporter = |signal: Signal| settings.export.targets[signal.index()].exporter;
        let console = console_sink(&settings);
        let (tracer_provider, logger_provider, meter_provider) = match &pipeline {
            Some((pipeline, queues)) => (
                tracer_provider(
                    &settings,
                    &resource,
                    match (exporter(Signal::Traces), &pipeline.keeper) {
                        (Exporter::Otlp, Some(keeper)) => Some(SpansTo::Keeper(keeper.clone())),
                        (Exporter::Otlp, None) => {
                            Some(SpansTo::Queue(SpanQueue(queues.spans.clone())))
                        }
                        (Exporter::Console, _) => console
                            .clone()
                            .map(|sink| SpansTo::Console(Console::new(sink, redactor.clone()))),
                        _ => None,
                    },
                    head.as_ref(),
                ),
                logger_provider(
                    &resource,
                    match exporter(Signal::Logs) {
                        Exporter::Otlp => {
                            Some(LogsTo::Queue(Box::new(LogQueue::new(queues.logs.clone()))))
                        }
                        Exporter::Console => console
                            .clone()
                            .map(|sink| LogsTo::Console(Console::new(sink, redactor.clone()))),
                        _ => None,
                    },
                ),
                meter_provider(
                    &resource,
                    (exporter(Signal::Metrics) == Exporter::Otlp).then(|| queues.metrics.clone()),
                    &settings,
                ),
            ),
            None => (
                tracer_provider(&settings, &resource, None, head.as_ref()),
                logger_provider(&resource, None),
                meter_provider(&resource, None, &settings),
            ),
        };
        let tracer = tracer_provider.tracer_with_scope(scope());
        let filter = Arc::new(FilterSlot::new(
            &settings.log.filter,
            settings.log.diagnostics,
        ));
        let control = Control::new(
            filter.clone(),
            settings.log.filter.clone(),
            head,
            match settings.sampler {
                Sampler::Ratio(r) | Sampler::ParentBasedRatio(r) => Some(r),
                _ => None,
            },
            settings.control_max_ttl,
            &registry,
            pipeline.as_ref().map(|(p, _)| p.runtime.handle().clone()),
        )?;
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
            meter_provider,
            logger_provider,
            registry,
            stats,
            redactor,
            http_metrics: std::sync::OnceLock::new(),
            grpc_metrics: std::sync::OnceLock::new(),
            exemplars,
            filter,
            control,
            log: settings.log,
            propagators: settings.propagators,
            trust: settings.trust,
            propagate_to: settings.propagate_to,
            config_warnings: settings.warnings,
            install_subscriber: settings.install_subscriber,
            shutdown_timeout: settings.shutdown_timeout,
            pipeline: pipeline.map(|(pipeline, _)| pipeline),
            shut_down: AtomicBool::new(false),
        };
        Ok(Telemetry {
            inner: Arc::new(inner),
            global: false,
        })
    }
}

/// The queues the providers feed.
struct Queues {
    spans: Arc<Batcher<opentelemetry_sdk::trace::SpanData>>,
    logs: Arc<Batcher<(opentelemetry_sdk::logs::SdkLogRecord, InstrumentationScope)>>,
    metrics: MetricSender,
}

/// The export runtime with a batcher per signal, the watchdog and the metrics bridge.
fn start_pipeline(
    settings: &Settings,
    resource: &Resource,
    redactor: &Redactor,
    stats: &Arc<ExportStats>,
    registry: &prometheus::Registry,
    keep_stats: KeepStats,
    exemplars: Arc<ExemplarStore>,
) -> Result<(Pipeline, Queues), Error> {
    let export = &settings.export;
    let diagnosis = Arc::new(Diagnosis::default());
    // Captured before entering the export runtime's context below.
    let host = tokio::runtime::Handle::try_current().ok();
    let runtime = ExportRuntime::start().map_err(Error::Runtime)?;
    let rt = runtime.handle().clone();
    // tonic channels spawn their connection task on the runtime they are created in.
    let entered = rt.enter();
    let limits = export.limits;
    let sanitizer = |signal: Signal| match signal {
        Signal::Logs => Sanitizer::new(
            limits.log_value_length,
            limits.log_attribute_count,
            redactor.clone(),
        ),
        _ => Sanitizer::new(
            limits.span_value_length,
            limits.span_attribute_count as usize,
            redactor.clone(),
        ),
    };
    // The OTLP timeout bounds every export; the queue's own timeout can only shorten it.
    let client = |signal: Signal, queue_timeout: Duration| {
        let target = &export.targets[signal.index()];
        OtlpClient::new(
            target,
            target.timeout.min(queue_timeout),
            export.retry,
            diagnosis.clone(),
            stats.get(signal).clone(),
        )
    };
    let sender = |signal: Signal, queue_timeout: Duration| -> Result<Sender, Error> {
        Ok(Sender {
            client: client(signal, queue_timeout)?,
            stats: stats.get(signal).clone(),
            encoder: Mutex::new(Encoder::new(
                sanitizer(signal),
                resource,
                export.max_request_bytes,
            )),
        })
    };
    let spans = Arc::new(Batcher::start(
        &rt,
        export.span_batch,
        stats.get(Signal::Traces).clone(),
        sender(Signal::Traces, export.span_batch.timeout)?,
    ));
    let keep = settings
        .tail_keep
        .filter(|_| export.targets[Signal::Traces.index()].exporter == Exporter::Otlp);
    let keeper = match keep {
        Some(keep) => {
            let queue = TailKeepQueue {
                keeper: Arc::new(TailKeeper::new(keep, keep_stats)),
                spans: spans.clone(),
            };
            queue.spawn_sweep(&rt);
            Some(queue)
        }
        None => None,
    };
    let logs = Arc::new(Batcher::start(
        &rt,
        export.log_batch,
        stats.get(Signal::Logs).clone(),
        sender(Signal::Logs, export.log_batch.timeout)?,
    ));
    let metrics = MetricSender {
        client: client(Signal::Metrics, export.metric_timeout)?,
        temporality: export.temporality,
        stats: stats.get(Signal::Metrics).clone(),
        rt: rt.clone(),
    };
    drop(entered);

    // The watchdog runs on the host's runtime when there is one (so its records reach the
    // subscriber the host sees, and tests can drive it with a paused clock), else on the export
    // thread; its windows are measured on that runtime's clock.
    let _host_context = host.as_ref().map(|h| h.enter());
    let dog = Watchdog::new(
        stats.clone(),
        settings.watchdog.failure_threshold,
        settings.watchdog.stale_windows,
    );
    let (span_q, log_q) = (spans.clone(), logs.clone());
    let task = watchdog::run(dog, settings.watchdog.interval, move || {
        [span_q.queued() > 0, false, log_q.queued() > 0]
    });
    let watchdog = match &host {
        Some(host) => host.spawn(task).abort_handle(),
        None => rt.spawn(task).abort_handle(),
    };
    // paytrace's own instruments (Prometheus registry) reach OTLP through the bridge.
    let bridge = match export.targets[Signal::Metrics.index()].exporter {
        Exporter::Otlp => {
            let bridge = Bridge::new(registry.clone(), resource, metrics.clone(), exemplars);
            bridge.spawn(&rt, export.metric_interval);
            Some(bridge)
        }
        Exporter::Console => {
            if let Some(sink) = console_sink(settings) {
                spawn_console_metrics(&rt, registry.clone(), sink, export.metric_interval);
            }
            None
        }
        Exporter::None => None,
    };
    let queues = Queues {
        spans: spans.clone(),
        logs: logs.clone(),
        metrics,
    };
    Ok((
        Pipeline {
            runtime,
            bridge,
            watchdog,
            spans,
            logs,
            keeper,
        },
        queues,
    ))
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

/// The lossy stdout the console exporters write to, when one of them is on.
fn console_sink(settings: &Settings) -> Option<LineSink> {
    use std::io::Write as _;
    use std::sync::OnceLock;
    if !settings
        .export
        .targets
        .iter()
        .any(|t| t.exporter == Exporter::Console)
    {
        return None;
    }
    // One writer per process: console output is for development, and lines of several
    // telemetry instances interleave whole.
    static STDOUT: OnceLock<Stdout> = OnceLock::new();
    let stdout = STDOUT.get_or_init(|| Stdout::new(std::io::stdout(), 8192));
    Some(Arc::new(move |line: &str| {
        let _ = stdout.writer().write_all(line.as_bytes());
    }))
}

/// `OTEL_METRICS_EXPORTER=console`: the Prometheus exposition of paytrace's instruments on
/// stdout every interval.
fn spawn_console_metrics(
    rt: &tokio::runtime::Handle,
    registry: prometheus::Registry,
    sink: LineSink,
    interval: Duration,
) {
    rt.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let text = crate::metrics::render(&registry);
            sink(&format!("metrics\n{text}"));
        }
    });
}

fn tracer_provider(
    settings: &Settings,
    resource: &Resource,
    queue: Option<SpansTo>,
    head: Option<&Arc<HeadControl>>,
) -> SdkTracerProvider {
    let l = &settings.export.limits;
    let limits = SpanLimits {
        max_attributes_per_span: l.span_attribute_count,
        max_events_per_span: l.span_event_count,
        max_links_per_span: l.span_link_count,
        max_attributes_per_event: l.event_attribute_count,
        max_attributes_per_link: l.link_attribute_count,
    };
    let sampler = if settings.disabled {
        Sampler::AlwaysOff
    } else {
        settings.sampler
    };
    let builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_limits(limits);
    let builder = match sampler {
        // The ratio is decided the consistent way, and what it does not keep is recorded
        // for tail keep when that is on.
        Sampler::Ratio(_) | Sampler::ParentBasedRatio(_) => match head {
            Some(head) => builder.with_sampler(ConsistentSampler::new(
                head.clone(),
                matches!(sampler, Sampler::ParentBasedRatio(_)),
                settings.tail_keep.is_some(),
            )),
            None => builder.with_sampler(sdk_sampler(sampler)),
        },
        other => builder.with_sampler(sdk_sampler(other)),
    };
    match queue {
        Some(SpansTo::Queue(queue)) => builder.with_span_processor(queue).build(),
        Some(SpansTo::Keeper(keeper)) => builder.with_span_processor(keeper).build(),
        Some(SpansTo::Console(console)) => builder.with_span_processor(console).build(),
        None => builder.build(),
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
    settings: &Settings,
) -> SdkMeterProvider {
    let builder = SdkMeterProvider::builder().with_resource(resource.clone());
    match sender {
        Some(sender) => builder
            .with_reader(
                PeriodicReader::builder(sender)
                    .with_interval(settings.export.metric_interval)
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
