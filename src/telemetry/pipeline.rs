//! The export side of [`Telemetry::start`](super::Telemetry::start): the export runtime, a
//! batcher per signal, tail keep, the watchdog and paytrace's own metrics export.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

use super::shared::Shared;
use super::Pipeline;
use crate::config::{ExportSettings, Settings};
use crate::error::Error;
use crate::export::batch::Batcher;
use crate::export::client::OtlpClient;
use crate::export::console::{Console, LineSink};
use crate::export::diagnosis::Diagnosis;
use crate::export::log_record::QueuedLog;
use crate::export::otlp::{Encoder, Sanitizer};
use crate::export::processor::{MetricSender, Sender};
use crate::export::runtime::ExportRuntime;
use crate::export::stats::ExportStats;
use crate::export::Signal;
use crate::exporter::Exporter;
use crate::metrics::Bridge;
use crate::sampling::{TailKeepQueue, TailKeeper};
use crate::signal::PerSignal;
use crate::watchdog::{self, Watchdog, WatchdogSettings};

pub(crate) type LogBatcher = Batcher<QueuedLog>;

/// The export runtime with a batcher per signal, tail keep, the watchdog and the metrics bridge.
pub(super) fn start_pipeline(
    settings: &Settings,
    resource: &Resource,
    shared: &Shared,
    console: Option<&Console>,
) -> Result<Pipeline, Error> {
    let export = &settings.export;
    // Captured before entering the export runtime's context below.
    let host = Handle::try_current().ok();
    let runtime = ExportRuntime::start().map_err(Error::Runtime)?;
    let rt = runtime.handle().clone();
    let senders = Senders::new(export, resource, shared);
    // tonic channels spawn their connection task on the runtime they are created in.
    let entered = rt.enter();
    let spans = Arc::new(senders.batcher(&rt, Signal::Traces)?);
    let logs = Arc::new(senders.batcher(&rt, Signal::Logs)?);
    let metrics = senders.metrics(&rt)?;
    drop(entered);
    let keeper = start_keeper(settings, shared, &spans, &rt);
    let watchdog = start_watchdog(&settings.watchdog, &shared.stats, host, &rt, &spans, &logs);
    let bridge = start_metrics_export(export, shared, resource, &metrics, console, &rt);
    Ok(Pipeline {
        runtime,
        bridge,
        watchdog,
        spans,
        logs,
        keeper,
        metrics,
    })
}

/// Builds each signal's OTLP client and encoder from the export settings.
struct Senders<'a> {
    export: &'a ExportSettings,
    resource: &'a Resource,
    shared: &'a Shared,
    diagnosis: Arc<Diagnosis>,
}

impl<'a> Senders<'a> {
    fn new(export: &'a ExportSettings, resource: &'a Resource, shared: &'a Shared) -> Self {
        Senders {
            export,
            resource,
            shared,
            diagnosis: Arc::new(Diagnosis::default()),
        }
    }

    /// The OTLP timeout bounds every export; the queue's own timeout can only shorten it.
    fn client(&self, signal: Signal, queue_timeout: Duration) -> Result<OtlpClient, Error> {
        let target = self.export.targets.get(signal);
        OtlpClient::new(
            target,
            target.timeout.min(queue_timeout),
            self.export.retry,
            self.diagnosis.clone(),
            self.shared.stats.get(signal).clone(),
        )
    }

    /// Log records have their own limits; spans' limits serve the other signals.
    fn sanitizer(&self, signal: Signal) -> Sanitizer {
        let (limits, redactor) = (&self.export.limits, self.shared.redactor.clone());
        match signal {
            Signal::Logs => Sanitizer::new(
                limits.log_value_length,
                limits.log_attribute_count,
                redactor,
            ),
            _ => Sanitizer::new(
                limits.span_value_length,
                limits.span_attribute_count as usize,
                redactor,
            ),
        }
    }

    /// The batch queue of spans or log records, exporting on `rt`.
    fn batcher<T>(&self, rt: &Handle, signal: Signal) -> Result<Batcher<T>, Error>
    where
        T: crate::export::queue::Weigh + Send + 'static,
        Sender: crate::export::batch::BatchExport<T>,
    {
        let batch = match signal {
            Signal::Logs => self.export.log_batch,
            _ => self.export.span_batch,
        };
        let stats = self.shared.stats.get(signal).clone();
        let sender = Sender {
            client: self.client(signal, batch.timeout)?,
            stats: stats.clone(),
            encoder: Mutex::new(Encoder::new(
                self.sanitizer(signal),
                self.resource,
                self.export.max_request_bytes,
            )),
        };
        Ok(Batcher::start(rt, batch, stats, sender))
    }

    fn metrics(&self, rt: &Handle) -> Result<MetricSender, Error> {
        Ok(MetricSender {
            client: self.client(Signal::Metrics, self.export.metric_timeout)?,
            temporality: self.export.temporality,
            stats: self.shared.stats.get(Signal::Metrics).clone(),
            rt: rt.clone(),
        })
    }
}

/// Tail keep, when it is on and spans go over OTLP; its sweep runs on the export runtime.
fn start_keeper(
    settings: &Settings,
    shared: &Shared,
    spans: &Arc<Batcher<SpanData>>,
    rt: &Handle,
) -> Option<TailKeepQueue> {
    let keep = settings
        .tail_keep
        .filter(|_| settings.export.targets.traces.exporter == Exporter::Otlp)?;
    let queue = TailKeepQueue {
        keeper: Arc::new(TailKeeper::new(
            keep,
            shared.keep_stats.clone(),
            shared.thinned.clone(),
        )),
        spans: spans.clone(),
        flush_timeout: settings.shutdown_timeout,
    };
    queue.spawn_sweep(rt);
    Some(queue)
}

/// The watchdog runs on the host's runtime when there is one (so its records reach the
/// subscriber the host sees, and tests can drive it with a paused clock), else on the export
/// thread; its windows are measured on that runtime's clock.
fn start_watchdog(
    settings: &WatchdogSettings,
    stats: &Arc<ExportStats>,
    host: Option<Handle>,
    rt: &Handle,
    spans: &Arc<Batcher<SpanData>>,
    logs: &Arc<LogBatcher>,
) -> tokio::task::AbortHandle {
    let _host_context = host.as_ref().map(Handle::enter);
    let dog = Watchdog::new(
        stats.clone(),
        settings.failure_threshold,
        settings.stale_windows,
    );
    let (spans, logs) = (spans.clone(), logs.clone());
    // Metrics have no queue here: the SDK's reader exports them as it collects.
    let task = watchdog::run(dog, settings.interval, move || PerSignal {
        traces: spans.queued() > 0,
        metrics: false,
        logs: logs.queued() > 0,
    });
    host.as_ref().unwrap_or(rt).spawn(task).abort_handle()
}

/// paytrace's own instruments (Prometheus registry) reach OTLP through the bridge, or the
/// console as Prometheus text.
fn start_metrics_export(
    export: &ExportSettings,
    shared: &Shared,
    resource: &Resource,
    metrics: &MetricSender,
    console: Option<&Console>,
    rt: &Handle,
) -> Option<Bridge> {
    let registry = shared.registry.clone();
    match export.targets.metrics.exporter {
        Exporter::Otlp => {
            let bridge = Bridge::new(
                registry,
                resource,
                metrics.clone(),
                shared.exemplars.clone(),
            );
            bridge.spawn(rt, export.metric_interval);
            Some(bridge)
        }
        Exporter::Console => {
            if let Some(console) = console {
                spawn_console_metrics(rt, registry, console.sink().clone(), export.metric_interval);
            }
            None
        }
        Exporter::None => None,
    }
}

/// `OTEL_METRICS_EXPORTER=console`: the Prometheus exposition of paytrace's instruments on
/// stdout every interval.
fn spawn_console_metrics(
    rt: &Handle,
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
