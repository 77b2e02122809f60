//! The context-aware logger: every record carries the trace it belongs to, goes to stdout (one
//! JSON object per line) and to the collector (an OTLP log record with its trace and span ids),
//! never blocks the caller and never writes a secret.
//!
//! Idiomatic `tracing` works as is: inside a request traced by [`crate::http::TraceLayer`] or
//! inside a tracing span, `tracing::info!(order_id, "paid")` carries that trace's ids. Where no
//! span is current — a spawned task, a queue consumer — carry an OpenTelemetry `Context` and log
//! through [`Logger::with_context`]:
//!
//! ```
//! # #[tokio::main] async fn main() {
//! let cx = opentelemetry::Context::current(); // captured while handling the request
//! tokio::spawn(async move {
//!     paytrace::log::logger()
//!         .with_context(&cx)
//!         .in_scope(|| tracing::info!(order_id = 42, "payment notification sent"));
//! })
//! .await
//! .unwrap();
//! # }
//! ```
//!
//! Stdout is written by a background thread through a bounded buffer
//! ([`Config::with_stdout_buffer`](crate::Config::with_stdout_buffer)): when stdout cannot keep
//! up, lines are dropped and counted ([`Telemetry::log_stats`],
//! `paytrace_log_records_dropped_total{reason="stdout_full"}`), the caller never waits.

mod json;
mod sampling;
mod stdout;

use std::sync::{Arc, Mutex};

pub use json::JsonLayer;
use prometheus::core::{Collector, Desc};
pub use sampling::LogSampling;
pub(crate) use sampling::{KeepLogs, Sampler};
pub(crate) use stdout::Stdout;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::{LogFormat, Settings};
use crate::{Error, Telemetry};

/// A cheap handle for logging with an explicit trace context. Get one from
/// [`Telemetry::logger`] or [`logger`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Logger {
    _private: (),
}

/// The global logger: logs through whatever `tracing` dispatcher is current (paytrace's once
/// [`init_tracer`](crate::init_tracer) installed it).
///
/// ```
/// paytrace::log::logger().info("hello");
/// ```
pub fn logger() -> Logger {
    Logger::default()
}

impl Logger {
    /// A logger whose records carry `cx`'s trace and span ids, whether or not any span is
    /// current (a task spawned from a request, a consumer that extracted a context from a
    /// message).
    pub fn with_context(&self, cx: &opentelemetry::Context) -> ContextLogger {
        ContextLogger { cx: cx.clone() }
    }

    /// A logger whose records carry the ids of a `tracing` span (bridged to OpenTelemetry by
    /// paytrace's subscriber).
    ///
    /// ```
    /// let span = tracing::info_span!("settlement");
    /// paytrace::log::logger().with_span(&span).info("settled");
    /// ```
    pub fn with_span(&self, span: &tracing::Span) -> ContextLogger {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        ContextLogger { cx: span.context() }
    }

    /// Log a message at INFO with the current context.
    pub fn info(&self, message: &str) {
        tracing::info!(target: "paytrace::log", "{message}");
    }
}

/// A logger bound to a trace context: see [`Logger::with_context`].
#[derive(Debug, Clone)]
pub struct ContextLogger {
    cx: opentelemetry::Context,
}

impl ContextLogger {
    /// Run `f` with the context current: every `tracing` event inside, with its structured
    /// fields, carries the context's trace and span ids, on stdout and in OTLP.
    ///
    /// ```
    /// let cx = opentelemetry::Context::new();
    /// let n = paytrace::log::logger().with_context(&cx).in_scope(|| {
    ///     tracing::warn!(order_id = 42, attempt = 3, "retrying supplier query");
    ///     3
    /// });
    /// assert_eq!(n, 3);
    /// ```
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _attached = self.cx.clone().attach();
        f()
    }

    /// Log `message` at INFO under this context.
    pub fn info(&self, message: &str) {
        self.in_scope(|| tracing::info!(target: "paytrace::log", "{message}"));
    }

    /// Log `message` at WARN under this context.
    pub fn warn(&self, message: &str) {
        self.in_scope(|| tracing::warn!(target: "paytrace::log", "{message}"));
    }

    /// Log `message` at ERROR under this context.
    pub fn error(&self, message: &str) {
        self.in_scope(|| tracing::error!(target: "paytrace::log", "{message}"));
    }
}

/// Counts of log records paytrace dropped: [`Telemetry::log_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LogStats {
    /// Lines dropped because stdout could not keep up.
    pub stdout_dropped: u64,
    /// DEBUG/INFO records dropped by [`LogSampling`].
    pub sampled_out: u64,
}

impl Telemetry {
    /// The context-aware logger; see [`Logger`].
    pub fn logger(&self) -> Logger {
        Logger::default()
    }

    /// Log records dropped so far.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// assert_eq!(telemetry.log_stats().stdout_dropped, 0);
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn log_stats(&self) -> LogStats {
        LogStats {
            stdout_dropped: self.inner.stdout.as_ref().map_or(0, |s| s.dropped()),
            sampled_out: self
                .inner
                .sampled_out
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Starts the stdout writer; `None` when stdout logging is off.
pub(crate) fn start_stdout(
    settings: &Settings,
    registry: &prometheus::Registry,
) -> Result<Option<Arc<Stdout>>, Error> {
    if settings.log_format == LogFormat::Off {
        return Ok(None);
    }
    let stdout = Arc::new(Stdout::new(std::io::stdout(), settings.stdout_buffer));
    let counted = stdout.clone();
    let collector = DroppedCollector::new("stdout_full", move || counted.dropped())
        .map_err(|e| Error::invalid("metrics registry", "paytrace_log_records_dropped_total", e))?;
    registry
        .register(Box::new(collector))
        .map_err(|e| Error::invalid("metrics registry", "paytrace_log_records_dropped_total", e))?;
    Ok(Some(stdout))
}

/// The stdout layer for the configured [`LogFormat`].
pub(crate) fn stdout_layer<S>(telemetry: &Telemetry) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let inner = &telemetry.inner;
    match &inner.stdout {
        Some(stdout) => JsonLayer::new(stdout.writer())
            .with_service_name(inner.service_name.clone())
            .with_redactor(inner.redactor.clone())
            .pretty(inner.settings.log_format == LogFormat::Pretty)
            .boxed(),
        None => tracing_subscriber::layer::Identity::new().boxed(),
    }
}

/// `paytrace_log_records_dropped_total{reason=...}`, read at scrape time.
pub(crate) struct DroppedCollector {
    source: Box<dyn Fn() -> u64 + Send + Sync>,
    counter: prometheus::IntCounter,
    seen: Mutex<u64>,
    descs: Vec<Desc>,
}

impl DroppedCollector {
    pub(crate) fn new(
        reason: &str,
        source: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> prometheus::Result<Self> {
        let counter = prometheus::IntCounter::with_opts(
            prometheus::Opts::new(
                "paytrace_log_records_dropped_total",
                "Log records dropped before reaching their output.",
            )
            .const_label("reason", reason),
        )?;
        let descs = counter.desc().into_iter().cloned().collect();
        Ok(DroppedCollector {
            source: Box::new(source),
            counter,
            seen: Mutex::new(0),
            descs,
        })
    }
}

impl std::fmt::Debug for DroppedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DroppedCollector")
            .field("counter", &self.counter.get())
            .finish()
    }
}

impl Collector for DroppedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let now = (self.source)();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if now > *seen {
            self.counter.inc_by(now - *seen);
            *seen = now;
        }
        self.counter.collect()
    }
}
