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
//! up, lines are dropped and counted ([`Telemetry::log_stats`](crate::telemetry::Telemetry::log_stats),
//! `paytrace_log_records_dropped_total{reason="stdout_full"}`), the caller never waits.

mod event;
mod json;
mod sampling;
// Its items are `pub` for the `bench-hooks` re-export below, crate-private without it.
#[cfg_attr(not(feature = "bench-hooks"), allow(unreachable_pub))]
mod stdout;

use event::EventLayer;
pub use json::JsonLayer;
pub use sampling::LogSampling;
pub(crate) use sampling::{KeepLogs, LogSampler};
// Public only with the `bench-hooks` feature, for `benches/log.rs`, which compares it with
// tracing-appender's writer; not part of the stable API.
#[cfg(not(feature = "bench-hooks"))]
pub(crate) use stdout::Stdout;
#[cfg(feature = "bench-hooks")]
#[doc(hidden)]
pub use stdout::{Stdout, StdoutWriter};

use std::sync::Arc;

use opentelemetry_sdk::logs::SdkLoggerProvider;
use tracing_subscriber::layer::Identity;
use tracing_subscriber::Layer;

use crate::export::batch::Batcher;
use crate::export::log_record::QueuedLog;
use crate::redact::Redactor;

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

/// The logging part of the resolved settings.
#[derive(Debug, Clone)]
pub(crate) struct LogSettings {
    pub(crate) format: LogFormat,
    /// `EnvFilter` directives, checked at resolve time.
    pub(crate) filter: String,
    /// `OTEL_LOG_LEVEL`: the level of the SDK's and paytrace's own records, when set.
    pub(crate) diagnostics: Option<&'static str>,
    /// Lines the stdout buffer holds before it drops.
    pub(crate) stdout_buffer: usize,
    pub(crate) sampling: Option<LogSampling>,
    /// Copy events inside a `tracing` span onto its OpenTelemetry span as span events.
    pub(crate) span_events: bool,
}

/// A cheap handle for logging with an explicit trace context. Get one from
/// [`Telemetry::logger`](crate::telemetry::Telemetry::logger) or [`logger`].
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
        use crate::spans::SpanExt as _;
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

/// Counts of log records paytrace dropped: [`Telemetry::log_stats`](crate::telemetry::Telemetry::log_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LogStats {
    /// Lines dropped because stdout could not keep up.
    pub stdout_dropped: u64,
    /// DEBUG/INFO records dropped by [`LogSampling`].
    pub sampled_out: u64,
}

/// The stdout layer, when there is a stdout.
fn json_layer(
    stdout: Option<&Stdout>,
    format: LogFormat,
    service_name: &str,
    redactor: &Redactor,
) -> Option<JsonLayer<stdout::StdoutWriter>> {
    stdout.map(|stdout| {
        JsonLayer::new(stdout.writer())
            .with_service_name(service_name.to_owned())
            .with_redactor(redactor.clone())
            .pretty(format == LogFormat::Pretty)
    })
}

/// Where events go: the stdout layer, and the layer making their log records (into the export
/// queue when there is one, else through the logger provider). With JSON lines and logs over
/// OTLP, the stdout layer writes both from one visit of each event.
pub(crate) fn event_layers<S>(
    stdout: Option<&Stdout>,
    format: LogFormat,
    service_name: &str,
    redactor: &Redactor,
    records: Option<Arc<Batcher<QueuedLog>>>,
    provider: &SdkLoggerProvider,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + Send + Sync,
{
    let json = json_layer(stdout, format, service_name, redactor);
    match (json, records) {
        (Some(json), Some(records)) if format == LogFormat::Json => {
            json.with_records(records).boxed()
        }
        (json, records) => json
            .map_or_else(|| Identity::new().boxed(), Layer::boxed)
            .and_then(EventLayer::new(records, provider))
            .boxed(),
    }
}
