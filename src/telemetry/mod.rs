//! [`Telemetry`]: the guard [`init_tracer`](crate::init_tracer) returns, and every method on it.
//! Each method is a thin call into the module that does the work; data flows down from here,
//! and no module below imports `Telemetry`.
//!
//! - `build`: [`Telemetry::start`], one function per signal;
//! - `pipeline`: the export runtime, queues, tail keep and watchdog `start` wires the providers to;
//! - `global`: [`init_tracer`](crate::init_tracer), the process-wide installation;
//! - `resource`: who is sending;
//! - `drain`: bounded waits for flush and shutdown;
//! - `http`, `grpc`, `logs`, `metrics`: the constructors and methods of those subsystems that start
//!   from a `Telemetry`.

mod build;
mod control;
mod drain;
pub(crate) mod global;
#[cfg(feature = "grpc")]
mod grpc;
mod http;
mod logs;
mod metrics;
mod pipeline;
mod resource;
mod shared;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::Propagator;
use crate::error::Error;
use crate::export::batch::Batcher;
use crate::export::runtime::ExportRuntime;
use crate::export::stats::ExportStats;
use crate::log::LogSettings;
use crate::metrics::Bridge;
use crate::redact::Redactor;
use crate::signal::PerSignal;
use drain::{bounded, first_error, remaining};

/// The telemetry guard returned by [`init_tracer`](crate::init_tracer) (or [`Telemetry::start`]).
///
/// Keep it alive for the life of the service. [`Telemetry::shutdown`] flushes every signal
/// within the configured timeout and tells the truth about it; dropping the guard does the same,
/// best effort. Neither ever hangs or panics, whatever the collector does.
#[must_use = "dropping the Telemetry guard shuts telemetry down; keep it alive while the service runs"]
#[derive(Debug)]
pub struct Telemetry {
    inner: Arc<Inner>,
    global: bool,
}

/// What the methods of [`Telemetry`] hand down to the subsystems.
#[derive(Debug)]
struct Inner {
    tracer_provider: SdkTracerProvider,
    tracer: Tracer,
    meter_provider: SdkMeterProvider,
    logger_provider: SdkLoggerProvider,
    /// The log export queue when logs go over OTLP: `tracing` events are written straight into
    /// it; elsewhere (console, none) they go through the logger provider.
    event_queue: Option<Arc<pipeline::LogBatcher>>,
    /// paytrace's own instruments: the Prometheus endpoint, bridged to OTLP.
    registry: prometheus::Registry,
    stats: Arc<ExportStats>,
    redactor: Redactor,
    /// The non-blocking stdout writer; `None` when stdout logging is off.
    stdout: Option<Arc<crate::log::Stdout>>,
    /// `service.name` as resolved into the resource, for the stdout lines.
    service_name: String,
    /// Records dropped by log sampling.
    sampled_out: Arc<AtomicU64>,
    /// The `http_server_*` instruments, registered in `registry` by the first HTTP layer.
    http_metrics: std::sync::OnceLock<Option<crate::http::HttpMetrics>>,
    /// The `rpc_*` instruments, registered in `registry` by the first gRPC layer.
    #[cfg(feature = "grpc")]
    grpc_metrics: std::sync::OnceLock<Option<crate::grpc::GrpcMetrics>>,
    log: LogSettings,
    /// Exemplars of kept requests, read by `/metrics` (OpenMetrics) and the OTLP bridge.
    exemplars: Arc<crate::exemplars::ExemplarStore>,
    /// The traces tail keep's storm cap thinned: no exemplar names them.
    thinned: crate::sampling::Thinned,
    /// The log filter in force (runtime control swaps it).
    filter: Arc<crate::control::FilterSlot>,
    control: crate::control::Control,
    propagators: Vec<Propagator>,
    /// Whose incoming context the server layers continue.
    trust: crate::propagation::Trust,
    /// Which hosts the client layers send the context to.
    propagate_to: crate::propagation::PropagateTo,
    /// Configuration that was skipped, said once the subscriber is installed.
    config_warnings: Vec<String>,
    install_subscriber: bool,
    shutdown_timeout: Duration,
    pipeline: Option<Pipeline>,
    shut_down: AtomicBool,
}

/// The export side, absent when disabled.
#[derive(Debug)]
struct Pipeline {
    runtime: ExportRuntime,
    /// The OTLP metrics bridge; `None` when metrics are not exported over OTLP.
    bridge: Option<Bridge>,
    watchdog: tokio::task::AbortHandle,
    spans: Arc<Batcher<opentelemetry_sdk::trace::SpanData>>,
    logs: Arc<pipeline::LogBatcher>,
    /// Tail keep, when a ratio is set and it is on.
    keeper: Option<crate::sampling::TailKeepQueue>,
    /// The metrics exporter the meter provider's reader and the bridge share.
    metrics: crate::export::processor::MetricSender,
}

impl Telemetry {
    /// `false` when built from [`Config::disabled`](crate::Config::disabled) or `OTEL_SDK_DISABLED=true`: spans are not
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

    /// The logger provider for records made through the OpenTelemetry Logs API: they reach the
    /// same export queue as `tracing` events, which paytrace's layers write there directly.
    ///
    /// ```
    /// use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let logger = telemetry.logger_provider().logger("payments");
    /// let mut record = logger.create_log_record();
    /// record.set_body("refund issued".into());
    /// logger.emit(record);
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.inner.logger_provider
    }

    /// paytrace's `tracing` layers, for services that compose their own subscriber
    /// ([`Config::with_install_subscriber(false)`](crate::Config::with_install_subscriber)): the env
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
        let otel_spans = crate::spans::SpanLayer::new(self.recorder());
        Box::new(self.event_layers().and_then(otel_spans))
    }

    /// A complete subscriber, for `tracing::subscriber::set_default` in tests or
    /// `set_global_default`: the layers of [`Telemetry::layers`] over paytrace's own span store.
    ///
    /// The store records the same spans as `tracing_subscriber`'s registry with
    /// [`Telemetry::layers`], for less work per span and per enter.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// tracing::subscriber::with_default(telemetry.subscriber(), || {
    ///     tracing::info_span!("settle").in_scope(|| tracing::info!("settled"));
    /// });
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let store = crate::spans::SpanStore::new(self.recorder());
        self.event_layers().with_subscriber(store)
    }

    /// The log filter in force, the log sampler, then where events go: sampling decides before
    /// every output, so stdout and the log records keep the same events.
    fn event_layers<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + Send + Sync,
    {
        // Shared by every stack built here: runtime control changes it.
        let filter = crate::control::DynamicFilter(self.inner.filter.clone());
        let sampler =
            self.inner.log.sampling.as_ref().map(|sampling| {
                crate::log::LogSampler::new(sampling, self.inner.sampled_out.clone())
            });
        let events = crate::log::event_layers(
            self.inner.stdout.as_deref(),
            self.inner.log.format,
            &self.inner.service_name,
            &self.inner.redactor,
            self.inner.event_queue.clone(),
            &self.inner.logger_provider,
        );
        filter.and_then(sampler).and_then(events)
    }

    fn recorder(&self) -> crate::spans::Recorder {
        crate::spans::Recorder::new(self.inner.tracer.clone(), self.inner.log.span_events)
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
        let timeout = self.inner.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        let traces = p.spans.flush(timeout);
        let logs = p.logs.flush(remaining(deadline));
        let provider = self.inner.meter_provider.clone();
        let metrics = bounded(remaining(deadline), move || provider.force_flush()).and_then(|()| {
            match &p.bridge {
                Some(bridge) => bridge.push_now(p.runtime.handle(), remaining(deadline)),
                None => Ok(()),
            }
        });
        let drained = PerSignal {
            traces,
            metrics,
            logs,
        };
        first_error("flush", timeout, drained, |s| {
            self.inner.stats.get(s).last_error()
        })
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
        let result = match &self.inner.pipeline {
            None => Ok(()),
            Some(p) => self.shutdown_pipeline(p),
        };
        if let Some(stdout) = &self.inner.stdout {
            stdout.close();
        }
        if self.global {
            global::release();
        }
        result
    }

    /// Drain every queue, then close the providers and stop the export runtime, all within the
    /// shutdown timeout.
    fn shutdown_pipeline(&self, p: &Pipeline) -> Result<(), Error> {
        let timeout = self.inner.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        p.watchdog.abort();
        // Waiting traces are decided with what is known, then flushed with the rest.
        if let Some(keeper) = &p.keeper {
            keeper.decide_all();
        }
        let traces = p.spans.shutdown(timeout);
        let logs = p.logs.shutdown(remaining(deadline));
        let provider = self.inner.meter_provider.clone();
        let pushed = match &p.bridge {
            Some(bridge) => bridge.push_now(p.runtime.handle(), remaining(deadline)),
            None => Ok(()),
        };
        let metrics = pushed.and(bounded(remaining(deadline), move || provider.shutdown()));
        let drained = PerSignal {
            traces,
            metrics,
            logs,
        };
        let result = first_error("shutdown", timeout, drained, |s| {
            self.inner.stats.get(s).last_error()
        });
        // The queues are drained; the providers' own shutdown only marks them closed, and
        // gets what is left of the deadline, so the bound holds.
        let _ = self
            .inner
            .tracer_provider
            .shutdown_with_timeout(remaining(deadline));
        let _ = self
            .inner
            .logger_provider
            .shutdown_with_timeout(remaining(deadline));
        p.runtime.stop(remaining(deadline));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_installed_subscriber_keeps_spans_in_paytraces_store() {
        let config = Config::new()
            .with_endpoint("http://127.0.0.1:9")
            .with_install_subscriber(false)
            .with_shutdown_timeout(std::time::Duration::from_millis(50));
        let telemetry = Telemetry::start(config).unwrap();
        let dispatch = tracing::Dispatch::new(telemetry.subscriber());
        assert!(dispatch.downcast_ref::<crate::spans::SpanStore>().is_some());
        // Console logs too: their records go through the logger provider, no registry needed.
        let console = Telemetry::start(Config::disabled()).unwrap();
        let dispatch = tracing::Dispatch::new(console.subscriber());
        assert!(dispatch.downcast_ref::<crate::spans::SpanStore>().is_some());
        assert!(dispatch
            .downcast_ref::<tracing_subscriber::Registry>()
            .is_none());
    }
}
