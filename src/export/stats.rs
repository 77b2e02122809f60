//! Per-signal export counters: the single source for the watchdog, `exporter_health()` and the
//! `paytrace_exporter_*` Prometheus metrics.
//!
//! The counters are the `prometheus` crate's atomics, bound to their `signal` label once at
//! start: counting on the export path is a relaxed atomic add, with no lock and no allocation.
//! Only the last error message (off the request path) sits behind a mutex.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::health::{Health, HealthState};
use super::Signal;
use crate::signal::PerSignal;

#[derive(Debug)]
pub(crate) struct ExportStats {
    signals: PerSignal<Arc<SignalStats>>,
}

#[derive(Debug)]
pub(crate) struct SignalStats {
    pub(crate) signal: Signal,
    pub(crate) exported: IntCounter,
    /// Items of accepted requests the collector rejected (OTLP partial success).
    pub(crate) rejected: IntCounter,
    pub(crate) failed: IntCounter,
    /// Items dropped before export, by class (`ordinary`, `priority`).
    dropped_ordinary: IntCounter,
    dropped_priority: IntCounter,
    /// Estimated encoded bytes queued, and the most seen.
    queued_bytes: IntGauge,
    queued_bytes_peak: IntGauge,
    pub(crate) exports: IntCounter,
    pub(crate) export_failures: IntCounter,
    /// Shown as `paytrace_exporter_state`.
    pub(crate) health: Health,
    last_success: IntGauge,
    last_success_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    drop_warned: AtomicBool,
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let vec = IntCounterVec::new(Opts::new(name, help), &["signal"])?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
    let vec = IntGaugeVec::new(Opts::new(name, help), &["signal"])?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

/// The `paytrace_exporter_*` families, each with a `signal` label.
struct Families {
    exported: IntCounterVec,
    rejected: IntCounterVec,
    failed: IntCounterVec,
    /// Also labelled by `class`.
    dropped: IntCounterVec,
    queued: IntGaugeVec,
    queued_peak: IntGaugeVec,
    exports: IntCounterVec,
    failures: IntCounterVec,
    state: IntGaugeVec,
    last: IntGaugeVec,
}

impl Families {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| counter(registry, name, help);
        let gauge = |name: &str, help: &str| gauge(registry, name, help);
        Ok(Families {
            exported: counter(
                "paytrace_exporter_items_exported_total",
                "Items (spans, metric points, log records) accepted by the collector.",
            )?,
            rejected: counter(
                "paytrace_exporter_items_rejected_total",
                "Items the collector rejected in requests it accepted (OTLP partial success).",
            )?,
            failed: counter(
                "paytrace_exporter_items_failed_total",
                "Items lost because their export failed after retries.",
            )?,
            dropped: dropped_by_class(registry)?,
            queued: gauge(
                "paytrace_exporter_queue_bytes",
                "Estimated encoded bytes waiting in the export queue.",
            )?,
            queued_peak: gauge(
                "paytrace_exporter_queue_bytes_peak",
                "The most estimated encoded bytes the export queue has held.",
            )?,
            exports: counter(
                "paytrace_exporter_exports_total",
                "Export requests attempted (after retries, one per batch).",
            )?,
            failures: counter(
                "paytrace_exporter_export_failures_total",
                "Export requests that failed after retries.",
            )?,
            state: gauge(
                "paytrace_exporter_state",
                "Exporter health: 0 healthy, 1 degraded, 2 failing.",
            )?,
            last: gauge(
                "paytrace_exporter_last_success_timestamp_seconds",
                "Unix time of the last successful export; 0 if none yet.",
            )?,
        })
    }

    /// One signal's children of every family.
    fn bind(&self, signal: Signal) -> SignalStats {
        let l = [signal.as_str()];
        SignalStats {
            signal,
            exported: self.exported.with_label_values(&l),
            rejected: self.rejected.with_label_values(&l),
            failed: self.failed.with_label_values(&l),
            dropped_ordinary: self
                .dropped
                .with_label_values(&[signal.as_str(), "ordinary"]),
            dropped_priority: self
                .dropped
                .with_label_values(&[signal.as_str(), "priority"]),
            queued_bytes: self.queued.with_label_values(&l),
            queued_bytes_peak: self.queued_peak.with_label_values(&l),
            exports: self.exports.with_label_values(&l),
            export_failures: self.failures.with_label_values(&l),
            health: Health::new(self.state.with_label_values(&l)),
            last_success: self.last.with_label_values(&l),
            last_success_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            drop_warned: AtomicBool::new(false),
        }
    }
}

fn dropped_by_class(registry: &Registry) -> prometheus::Result<IntCounterVec> {
    let dropped = IntCounterVec::new(
        Opts::new(
            "paytrace_exporter_items_dropped_total",
            "Items dropped before export (queue full, shutdown), by class: error and slow \
             spans and WARN+ records are `priority`, dropped only when no `ordinary` item is left.",
        ),
        &["signal", "class"],
    )?;
    registry.register(Box::new(dropped.clone()))?;
    Ok(dropped)
}

impl ExportStats {
    /// Register the `paytrace_exporter_*` families in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let families = Families::register(registry)?;
        Ok(ExportStats {
            signals: PerSignal::from_fn(|signal| Arc::new(families.bind(signal))),
        })
    }

    pub(crate) fn get(&self, signal: Signal) -> &Arc<SignalStats> {
        self.signals.get(signal)
    }
}

impl SignalStats {
    /// An accepted request of `items`, of which the collector `rejected` some.
    pub(crate) fn record_success(&self, items: u64, rejected: u64) {
        let rejected = rejected.min(items);
        self.exports.inc();
        self.exported.inc_by(items - rejected);
        self.rejected.inc_by(rejected);
        let now = unix_millis();
        let first = self.last_success_ms.swap(now, Ordering::Relaxed) == 0;
        self.last_success.set((now / 1000) as i64);
        if first {
            // Failing only because nothing had got through yet: now something has.
            self.health.clear_failing();
        }
    }

    pub(crate) fn record_failure(&self, items: u64, error: String) {
        self.exports.inc();
        self.export_failures.inc();
        self.failed.inc_by(items);
        tracing::debug!(target: "paytrace::export", signal = self.signal.as_str(), items, error = %error, "export failed");
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        if self.last_success_ms() == 0 {
            // Exports attempted and none accepted: failing from the first one, not after a
            // window (a deploy with a wrong endpoint must not read as healthy).
            self.health.set(HealthState::Failing);
        }
    }

    /// Count items dropped before export, by class; warn once per signal (the watchdog reports
    /// totals).
    pub(crate) fn record_dropped(&self, ordinary: u64, priority: u64) {
        self.dropped_ordinary.inc_by(ordinary);
        self.dropped_priority.inc_by(priority);
        if !self.drop_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "paytrace::export", signal = self.signal.as_str(),
                "export queue full: dropping telemetry (counted in paytrace_exporter_items_dropped_total; further drops are not logged)");
        }
    }

    /// Items dropped before export, both classes.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped_ordinary.get() + self.dropped_priority.get()
    }

    /// Priority items dropped before export.
    pub(crate) fn dropped_priority(&self) -> u64 {
        self.dropped_priority.get()
    }

    /// The queue now holds `bytes` (estimated, encoded).
    #[inline]
    pub(crate) fn record_queued_bytes(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.queued_bytes.set(bytes);
        if bytes > self.queued_bytes_peak.get() {
            self.queued_bytes_peak.set(bytes);
        }
    }

    /// Estimated bytes queued now, and the most seen.
    pub(crate) fn queued_bytes(&self) -> (u64, u64) {
        let get = |g: &IntGauge| u64::try_from(g.get()).unwrap_or(0);
        (get(&self.queued_bytes), get(&self.queued_bytes_peak))
    }

    /// An attempt failed and is being retried: the error is the latest known, though the
    /// export is not over (a shutdown that times out meanwhile reports it).
    pub(crate) fn note_attempt_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Unix time in milliseconds of the last success, 0 if none.
    pub(crate) fn last_success_ms(&self) -> u64 {
        self.last_success_ms.load(Ordering::Relaxed)
    }
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reach_the_registry() {
        let registry = Registry::new();
        let stats = ExportStats::new(&registry).unwrap();
        let traces = stats.get(Signal::Traces);
        traces.record_success(5, 0);
        traces.record_failure(3, "unavailable".into());
        traces.record_dropped(7, 0);
        traces.record_dropped(0, 1);
        assert_eq!(traces.exported.get(), 5);
        assert_eq!(traces.failed.get(), 3);
        assert_eq!(traces.dropped_total(), 8);
        assert_eq!(traces.dropped_priority(), 1);
        assert_eq!(traces.exports.get(), 2);
        assert_eq!(traces.export_failures.get(), 1);
        assert_eq!(traces.last_error().as_deref(), Some("unavailable"));
        assert!(traces.last_success_ms() > 0);
        assert_eq!(stats.get(Signal::Logs).exported.get(), 0);
        // A partial success: the rejected items are not exported, and never more than sent.
        traces.record_success(10, 4);
        traces.record_success(2, 9);
        assert_eq!((traces.exported.get(), traces.rejected.get()), (11, 6));
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(
            text.contains(
                r#"paytrace_exporter_items_dropped_total{class="ordinary",signal="traces"} 7"#
            ) && text.contains(
                r#"paytrace_exporter_items_dropped_total{class="priority",signal="traces"} 1"#
            ),
            "{text}"
        );
    }
}
