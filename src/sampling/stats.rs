//! The keeper's own figures: traces kept by reason, dropped, thinned, evicted by cause, late
//! spans, buffered bytes — on `/metrics` as `paytrace_sampling_*` and in
//! [`ExporterHealth`](crate::ExporterHealth).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::reason::{Eviction, Reason};

/// Counters bound to their labels once, at start.
#[derive(Debug, Clone)]
pub(crate) struct KeepStats {
    kept_ratio: IntCounter,
    kept_error: IntCounter,
    kept_slow: IntCounter,
    kept_forced: IntCounter,
    dropped: IntCounter,
    thinned: IntCounter,
    late_kept: IntCounter,
    late_dropped: IntCounter,
    evicted_ttl: IntCounter,
    evicted_budget: IntCounter,
    evicted_span_cap: IntCounter,
    buffered_bytes: IntGauge,
}

/// A snapshot of the keeper's figures since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TailKeepHealth {
    /// Traces kept by the head ratio (counted at their local root).
    pub kept_ratio: u64,
    /// Traces kept because they failed.
    pub kept_error: u64,
    /// Traces kept because they were slow.
    pub kept_slow: u64,
    /// Traces kept because the application asked ([`keep_current_trace`](crate::keep_current_trace)).
    pub kept_forced: u64,
    /// Traces neither the ratio nor their outcome kept.
    pub dropped: u64,
    /// Outcome keeps dropped by the storm cap.
    pub thinned: u64,
    /// Spans that ended after their trace was decided and followed a kept decision.
    pub late_kept: u64,
    /// Spans that ended after their trace was decided (or forgotten) and were dropped.
    pub late_dropped: u64,
    /// Traces decided early because they outlived the TTL, the byte budget, or the span cap.
    pub evicted_ttl: u64,
    /// See [`evicted_ttl`](Self::evicted_ttl).
    pub evicted_budget: u64,
    /// See [`evicted_ttl`](Self::evicted_ttl).
    pub evicted_span_cap: u64,
    /// Estimated encoded bytes waiting for a decision now.
    pub buffered_bytes: u64,
}

impl KeepStats {
    /// Register the `paytrace_sampling_*` families in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter_vec =
            |name: &str, help: &str, label: &str| -> prometheus::Result<IntCounterVec> {
                let vec = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(vec.clone()))?;
                Ok(vec)
            };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let kept = counter_vec(
            "paytrace_sampling_traces_kept_total",
            "Traces kept, by reason: the head ratio, or their outcome (error, slow, forced).",
            "reason",
        )?;
        let late = counter_vec(
            "paytrace_sampling_late_spans_total",
            "Spans that ended after their trace was decided, by what became of them.",
            "outcome",
        )?;
        let evicted = counter_vec(
            "paytrace_sampling_traces_evicted_total",
            "Traces decided before their local roots ended, by cause (ttl, budget, span_cap).",
            "cause",
        )?;
        let buffered_bytes = IntGauge::new(
            "paytrace_sampling_buffered_bytes",
            "Estimated encoded bytes of spans waiting for their trace's outcome.",
        )?;
        registry.register(Box::new(buffered_bytes.clone()))?;
        Ok(KeepStats {
            kept_ratio: kept.with_label_values(&["ratio"]),
            kept_error: kept.with_label_values(&["error"]),
            kept_slow: kept.with_label_values(&["slow"]),
            kept_forced: kept.with_label_values(&["forced"]),
            dropped: counter(
                "paytrace_sampling_traces_dropped_total",
                "Traces neither the head ratio nor their outcome kept.",
            )?,
            thinned: counter(
                "paytrace_sampling_traces_thinned_total",
                "Outcome keeps dropped by the per-second cap (error storms).",
            )?,
            late_kept: late.with_label_values(&["kept"]),
            late_dropped: late.with_label_values(&["dropped"]),
            evicted_ttl: evicted.with_label_values(&["ttl"]),
            evicted_budget: evicted.with_label_values(&["budget"]),
            evicted_span_cap: evicted.with_label_values(&["span_cap"]),
            buffered_bytes,
        })
    }

    pub(crate) fn kept_by_ratio(&self) {
        self.kept_ratio.inc();
    }

    pub(crate) fn kept(&self, reason: Reason) {
        match reason {
            Reason::Error => self.kept_error.inc(),
            Reason::Slow => self.kept_slow.inc(),
            Reason::Forced => self.kept_forced.inc(),
        }
    }

    pub(crate) fn dropped(&self) {
        self.dropped.inc();
    }

    pub(crate) fn thinned(&self) {
        self.thinned.inc();
    }

    pub(crate) fn late(&self, kept: bool) {
        if kept {
            self.late_kept.inc();
        } else {
            self.late_dropped.inc();
        }
    }

    pub(crate) fn evicted(&self, cause: Eviction) {
        match cause {
            Eviction::Ttl => self.evicted_ttl.inc(),
            Eviction::Budget => self.evicted_budget.inc(),
            Eviction::SpanCap => self.evicted_span_cap.inc(),
        }
    }

    pub(crate) fn buffered(&self, bytes: usize) {
        self.buffered_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub(crate) fn snapshot(&self) -> TailKeepHealth {
        TailKeepHealth {
            kept_ratio: self.kept_ratio.get(),
            kept_error: self.kept_error.get(),
            kept_slow: self.kept_slow.get(),
            kept_forced: self.kept_forced.get(),
            dropped: self.dropped.get(),
            thinned: self.thinned.get(),
            late_kept: self.late_kept.get(),
            late_dropped: self.late_dropped.get(),
            evicted_ttl: self.evicted_ttl.get(),
            evicted_budget: self.evicted_budget.get(),
            evicted_span_cap: self.evicted_span_cap.get(),
            buffered_bytes: u64::try_from(self.buffered_bytes.get()).unwrap_or(0),
        }
    }
}
