//! The names tail keep shares: why a trace was kept, what forced an early decision, and the
//! attributes that say so on the spans.

/// The attribute [`keep_current_trace`](crate::keep_current_trace) sets: its value is the reason.
pub(crate) const FORCED: &str = "paytrace.sampling.forced";
/// Why a trace was kept: `ratio` is not written (the `th` in `tracestate` says it).
pub(crate) const REASON: &str = "paytrace.sampling.reason";
/// The probability with which an outcome keep survived storm thinning, when below 1.
pub(crate) const KEEP_PROBABILITY: &str = "paytrace.sampling.keep_probability";

/// Why an outcome keep happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Error,
    Slow,
    Forced,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Error => "error",
            Reason::Slow => "slow",
            Reason::Forced => "forced",
        }
    }
}

/// What forced a decision before every local root ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
    Ttl,
    Budget,
    SpanCap,
}
