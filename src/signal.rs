//! The three OpenTelemetry signals, by which export settings, statistics and errors are kept
//! ([`PerSignal`]), and the instrumentation scope of what paytrace itself records in them.

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
    /// All signals: traces, metrics, logs.
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
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per signal, by name rather than by position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PerSignal<T> {
    pub(crate) traces: T,
    pub(crate) metrics: T,
    pub(crate) logs: T,
}

impl<T> PerSignal<T> {
    /// Each signal's value, made by `f` in the order of [`Signal::ALL`].
    pub(crate) fn from_fn(mut f: impl FnMut(Signal) -> T) -> Self {
        PerSignal {
            traces: f(Signal::Traces),
            metrics: f(Signal::Metrics),
            logs: f(Signal::Logs),
        }
    }

    /// As [`PerSignal::from_fn`], stopping at the first error.
    pub(crate) fn try_from_fn<E>(mut f: impl FnMut(Signal) -> Result<T, E>) -> Result<Self, E> {
        Ok(PerSignal {
            traces: f(Signal::Traces)?,
            metrics: f(Signal::Metrics)?,
            logs: f(Signal::Logs)?,
        })
    }

    pub(crate) fn get(&self, signal: Signal) -> &T {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    pub(crate) fn get_mut(&mut self, signal: Signal) -> &mut T {
        match signal {
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
            Signal::Logs => &mut self.logs,
        }
    }

    /// The values in the order of [`Signal::ALL`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.traces, &self.metrics, &self.logs].into_iter()
    }
}
