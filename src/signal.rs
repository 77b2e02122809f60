//! The three OpenTelemetry signals, by which export settings, statistics and errors are kept,
//! and the instrumentation scope of what paytrace itself records in them.

use std::fmt;

/// The instrumentation scope of everything paytrace itself records.
pub(crate) const SCOPE_NAME: &str = "paytrace";

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
