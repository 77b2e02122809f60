//! OTLP/gRPC export: paytrace's own exporters on the official OTLP protobuf definitions and
//! tonic, running on a dedicated background thread.
//!
//! Why not the stock `opentelemetry-otlp` exporter: it treats a broken connection (a collector
//! restart) as final and drops the batch, has no request size cap, can report success when the
//! final export failed, and runs on the host's runtime, so a current-thread runtime stalls its
//! shutdown. Here:
//! - every export runs on paytrace's own single-thread runtime ([`ExportRuntime`]), so nothing
//!   depends on the host runtime's flavour or on being called from async code;
//! - spans and log records go through bounded queues ([`batch`]): the caller never waits, a full
//!   queue drops and counts;
//! - each request is gzip-compressed, capped in size (larger batches are split), and retried with
//!   exponential backoff and jitter on retryable codes *and* transport failures, within the
//!   export timeout ([`client`]);
//! - every outcome is counted per [`Signal`] ([`stats`]), which feeds the watchdog and the
//!   `paytrace_exporter_*` metrics.

pub(crate) mod batch;
pub(crate) mod client;
mod frame;
pub(crate) mod otlp;
pub(crate) mod processor;
pub(crate) mod runtime;
pub(crate) mod stats;

pub(crate) use batch::BatchSettings;
pub(crate) use client::Target;

use std::fmt;

/// One of the three OpenTelemetry signals.
///
/// ```
/// assert_eq!(paytrace::Signal::Traces.as_str(), "traces");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// All signals, in index order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The lowercase name used in metric labels and log records: `traces`, `metrics`, `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    pub(crate) fn env_name(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
