//! The exporter-health watchdog and the snapshot behind `Telemetry::exporter_health`.
//!
//! Every window (30 s by default) the watchdog compares each signal's export counters with the
//! previous window:
//! - more failed exports than the threshold (default 10) → one WARN record for that signal and
//!   window, naming the count and the last error;
//! - data waiting (exports attempted, items dropped, or items queued) but no successful export
//!   for `stale_windows` windows → one WARN record per window as well. A collector that accepts
//!   connections and never answers makes each export wait out its whole timeout, so only about
//!   three fail per 30 s and the count rule alone would stay silent through a total outage;
//! - back to healthy after a warning → one INFO record.
//!
//! Its records use the target `paytrace::watchdog`. They are bounded (one per signal per window),
//! so a failing log export cannot turn them into a loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::export::health::HealthState;
use crate::export::stats::{ExportStats, SignalStats};
use crate::export::Signal;
use crate::signal::PerSignal;

/// The watchdog part of the resolved settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchdogSettings {
    /// How often exports are checked (the window).
    pub(crate) interval: std::time::Duration,
    /// Warn when more exports than this fail in a window.
    pub(crate) failure_threshold: u64,
    /// Warn when data waits and nothing got through for this many windows.
    pub(crate) stale_windows: u32,
}

/// One signal's export figures since start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalHealth {
    /// Which signal.
    pub signal: Signal,
    /// State as of the last watchdog window.
    pub state: HealthState,
    /// Items (spans, metric points, log records) the collector accepted.
    pub exported: u64,
    /// Items the collector rejected in requests it accepted (OTLP partial success: too old,
    /// invalid, over a limit); its one WARN says why.
    pub rejected: u64,
    /// Items lost because their export failed after retries.
    pub failed: u64,
    /// Items dropped before export (queue full, after shutdown), both classes.
    pub dropped: u64,
    /// Of those, priority items (error and slow spans, WARN and ERROR records): dropped only
    /// when no ordinary item was left to drop instead.
    pub dropped_priority: u64,
    /// Estimated encoded bytes waiting in the export queue now.
    pub queued_bytes: u64,
    /// The most estimated encoded bytes the export queue has held.
    pub peak_queued_bytes: u64,
    /// Export requests attempted.
    pub exports: u64,
    /// Export requests that failed.
    pub export_failures: u64,
    /// The last export error, if any.
    pub last_error: Option<String>,
    /// When an export last succeeded.
    pub last_success: Option<SystemTime>,
}

/// A snapshot of exporter health for every signal:
/// [`Telemetry::exporter_health`](crate::telemetry::Telemetry::exporter_health).
///
/// ```
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let health = telemetry.exporter_health();
/// assert!(health.is_healthy());
/// assert_eq!(health.get(paytrace::Signal::Traces).dropped, 0);
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterHealth {
    signals: PerSignal<SignalHealth>,
    tail_keep: Option<crate::sampling::TailKeepHealth>,
}

impl ExporterHealth {
    /// Tail keep's figures, when it is on ([`crate::sampling`]).
    pub fn tail_keep(&self) -> Option<&crate::sampling::TailKeepHealth> {
        self.tail_keep.as_ref()
    }

    pub(crate) fn with_tail_keep(mut self, keep: Option<crate::sampling::TailKeepHealth>) -> Self {
        self.tail_keep = keep;
        self
    }

    /// The figures of one signal.
    pub fn get(&self, signal: Signal) -> &SignalHealth {
        self.signals.get(signal)
    }

    /// All three signals: traces, metrics, logs.
    pub fn signals(&self) -> impl Iterator<Item = &SignalHealth> {
        self.signals.iter()
    }

    /// The worst state of any signal.
    pub fn state(&self) -> HealthState {
        self.signals
            .iter()
            .map(|s| s.state)
            .max()
            .unwrap_or_default()
    }

    /// `true` when every signal is healthy.
    pub fn is_healthy(&self) -> bool {
        self.state() == HealthState::Healthy
    }
}

pub(crate) fn snapshot(stats: &ExportStats) -> ExporterHealth {
    let one = |signal: Signal| {
        let s = stats.get(signal);
        let ms = s.last_success_ms();
        SignalHealth {
            signal,
            state: s.health.get(),
            exported: s.exported.get(),
            rejected: s.rejected.get(),
            failed: s.failed.get(),
            dropped: s.dropped_total(),
            dropped_priority: s.dropped_priority(),
            queued_bytes: s.queued_bytes().0,
            peak_queued_bytes: s.queued_bytes().1,
            exports: s.exports.get(),
            export_failures: s.export_failures.get(),
            last_error: s.last_error(),
            last_success: (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms)),
        }
    };
    ExporterHealth {
        signals: PerSignal::from_fn(one),
        tail_keep: None,
    }
}

/// What the watchdog decided for one signal in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Quiet,
    TooManyFailures {
        failures: u64,
        last_error: Option<String>,
    },
    NoSuccess {
        windows: u32,
        last_error: Option<String>,
    },
    Recovered,
}

/// Per-signal memory between windows.
#[derive(Debug, Default, Clone)]
struct Window {
    exports: u64,
    failures: u64,
    dropped: u64,
    rejected: u64,
    stale: u32,
    warned: bool,
}

/// The watchdog's decision logic, free of clocks so it can be tested window by window.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stats: Arc<ExportStats>,
    threshold: u64,
    stale_windows: u32,
    windows: PerSignal<Window>,
}

impl Watchdog {
    pub(crate) fn new(stats: Arc<ExportStats>, threshold: u64, stale_windows: u32) -> Self {
        // The first window counts from the figures as they are now.
        let windows = PerSignal::from_fn(|signal| {
            let s = stats.get(signal);
            Window {
                exports: s.exports.get(),
                failures: s.export_failures.get(),
                dropped: s.dropped_total(),
                rejected: s.rejected.get(),
                ..Window::default()
            }
        });
        Watchdog {
            stats,
            threshold,
            stale_windows,
            windows,
        }
    }

    /// Close a window: update every signal's state and say what to report. `queued` tells,
    /// per signal, whether items are waiting in its queue.
    pub(crate) fn check(&mut self, queued: PerSignal<bool>) -> PerSignal<Verdict> {
        PerSignal::from_fn(|signal| {
            let stats = self.stats.get(signal).clone();
            self.check_one(&stats, *queued.get(signal))
        })
    }

    fn check_one(&mut self, s: &SignalStats, queued: bool) -> Verdict {
        let w = self.windows.get_mut(s.signal);
        let (exports, failures, dropped) =
            (s.exports.get(), s.export_failures.get(), s.dropped_total());
        let new_exports = exports - w.exports;
        let new_failures = failures - w.failures;
        let new_dropped = dropped - w.dropped;
        let rejected = s.rejected.get();
        // Items lost at the collector degrade like items dropped here.
        let new_lost = new_dropped + (rejected - w.rejected);
        let successes = new_exports - new_failures;
        (w.exports, w.failures, w.dropped, w.rejected) = (exports, failures, dropped, rejected);

        let waiting = new_exports > 0 || new_dropped > 0 || queued;
        if successes > 0 {
            w.stale = 0;
        } else if waiting {
            w.stale += 1;
        }
        let (state, verdict) = if new_failures > self.threshold {
            (
                HealthState::Failing,
                Verdict::TooManyFailures {
                    failures: new_failures,
                    last_error: s.last_error(),
                },
            )
        } else if w.stale >= self.stale_windows {
            (
                HealthState::Failing,
                Verdict::NoSuccess {
                    windows: w.stale,
                    last_error: s.last_error(),
                },
            )
        } else if failures > 0 && s.last_success_ms() == 0 {
            // Nothing ever got through: failing, whatever this window's count (no extra WARN).
            (HealthState::Failing, Verdict::Quiet)
        } else if new_failures > 0 || new_lost > 0 || w.stale > 0 {
            (HealthState::Degraded, Verdict::Quiet)
        } else {
            (HealthState::Healthy, Verdict::Quiet)
        };
        s.health.set(state);
        match verdict {
            Verdict::Quiet if state == HealthState::Healthy && w.warned => {
                w.warned = false;
                Verdict::Recovered
            }
            Verdict::Quiet => Verdict::Quiet,
            v => {
                w.warned = true;
                v
            }
        }
    }
}

/// Run the watchdog every `interval` until aborted. `queued` reports whether each signal has
/// items waiting.
pub(crate) fn run(
    mut dog: Watchdog,
    interval: Duration,
    queued: impl Fn() -> PerSignal<bool> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    // Windows start now, not at the task's first poll.
    let start = tokio::time::Instant::now() + interval;
    async move {
        let mut ticks = tokio::time::interval_at(start, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let verdicts = dog.check(queued());
            report(&verdicts, &dog.stats);
        }
    }
}

/// Report one window's verdicts as `tracing` records.
pub(crate) fn report(verdicts: &PerSignal<Verdict>, stats: &ExportStats) {
    // On the export thread telemetry is suppressed; these few records should reach the
    // collector when it works for their signal.
    let _not_suppressed = opentelemetry::Context::new().attach();
    for signal in Signal::ALL {
        let s = stats.get(signal);
        match verdicts.get(signal) {
            Verdict::Quiet => {}
            Verdict::TooManyFailures {
                failures,
                last_error,
            } => tracing::warn!(
                target: "paytrace::watchdog",
                signal = signal.as_str(),
                failures = *failures,
                dropped_total = s.dropped_total(),
                dropped_priority_total = s.dropped_priority(),
                last_error = last_error.as_deref().unwrap_or(""),
                "telemetry export failing: {failures} {signal} exports failed in the last window"
            ),
            Verdict::NoSuccess {
                windows,
                last_error,
            } => tracing::warn!(
                target: "paytrace::watchdog",
                signal = signal.as_str(),
                windows = *windows,
                dropped_total = s.dropped_total(),
                dropped_priority_total = s.dropped_priority(),
                last_error = last_error.as_deref().unwrap_or(""),
                "telemetry export stalled: no {signal} export succeeded for {windows} windows"
            ),
            Verdict::Recovered => tracing::info!(
                target: "paytrace::watchdog",
                signal = signal.as_str(),
                "telemetry export recovered: {signal} exports succeed again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No signal has items queued.
    fn idle() -> PerSignal<bool> {
        PerSignal::default()
    }

    fn setup(threshold: u64, stale: u32) -> (Arc<ExportStats>, Watchdog) {
        let stats = Arc::new(ExportStats::new(&prometheus::Registry::new()).unwrap());
        let dog = Watchdog::new(stats.clone(), threshold, stale);
        (stats, dog)
    }

    fn fail(stats: &ExportStats, signal: Signal, n: u64) {
        for _ in 0..n {
            stats
                .get(signal)
                .record_failure(10, "Unavailable: connection refused".into());
        }
    }

    #[test]
    fn more_than_threshold_failures_warn_once_per_window() {
        let (stats, mut dog) = setup(10, 3);
        fail(&stats, Signal::Traces, 10);
        let v = dog.check(idle());
        assert_eq!(v.traces, Verdict::Quiet, "10 is not more than 10");
        fail(&stats, Signal::Traces, 11);
        let v = dog.check(idle());
        assert!(
            matches!(&v.traces, Verdict::TooManyFailures { failures: 11, last_error: Some(e) } if e.contains("refused"))
        );
        assert_eq!(v.metrics, Verdict::Quiet);
        assert_eq!(
            snapshot(&stats).get(Signal::Traces).state,
            HealthState::Failing
        );
        // Next window: failures continue → warned again (one per window), with this window's count.
        fail(&stats, Signal::Traces, 12);
        assert!(matches!(
            dog.check(idle()).traces,
            Verdict::TooManyFailures { failures: 12, .. }
        ));
    }

    #[test]
    fn slow_black_hole_is_caught_by_the_stale_rule() {
        let (stats, mut dog) = setup(10, 2);
        // Three timeouts per window: never above the count threshold.
        fail(&stats, Signal::Logs, 3);
        // No warning yet, but nothing ever got through: failing, not degraded.
        assert_eq!(dog.check(idle()).logs, Verdict::Quiet);
        assert_eq!(
            snapshot(&stats).get(Signal::Logs).state,
            HealthState::Failing
        );
        fail(&stats, Signal::Logs, 3);
        assert!(matches!(
            dog.check(idle()).logs,
            Verdict::NoSuccess { windows: 2, .. }
        ));
        assert_eq!(
            snapshot(&stats).get(Signal::Logs).state,
            HealthState::Failing
        );
        // A window with no completed export but data queued still counts.
        assert!(matches!(
            dog.check(PerSignal {
                logs: true,
                ..idle()
            })
            .logs,
            Verdict::NoSuccess { windows: 3, .. }
        ));
        // Recovery: one INFO, then quiet.
        stats.get(Signal::Logs).record_success(5, 0);
        assert_eq!(dog.check(idle()).logs, Verdict::Recovered);
        assert_eq!(dog.check(idle()).logs, Verdict::Quiet);
        assert_eq!(
            snapshot(&stats).get(Signal::Logs).state,
            HealthState::Healthy
        );
    }

    #[test]
    fn the_snapshot_reads_the_watchdog_state_which_the_gauge_shows() {
        let registry = prometheus::Registry::new();
        let stats = Arc::new(ExportStats::new(&registry).unwrap());
        let mut dog = Watchdog::new(stats.clone(), 10, 5);
        stats.get(Signal::Traces).record_success(1, 0);
        stats.get(Signal::Traces).record_dropped(1, 0);
        dog.check(idle());
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(
            text.contains(r#"paytrace_exporter_state{signal="traces"} 1"#),
            "{text}"
        );
        stats.get(Signal::Traces).health.gauge().set(0);
        assert_eq!(
            snapshot(&stats).get(Signal::Traces).state,
            HealthState::Degraded
        );
    }

    #[test]
    fn idle_signal_stays_healthy() {
        let (stats, mut dog) = setup(10, 1);
        for _ in 0..5 {
            assert_eq!(dog.check(idle()), PerSignal::from_fn(|_| Verdict::Quiet));
        }
        assert!(snapshot(&stats).is_healthy());
    }

    #[test]
    fn drops_alone_degrade() {
        let (stats, mut dog) = setup(10, 5);
        stats.get(Signal::Traces).record_success(1, 0);
        stats.get(Signal::Traces).record_dropped(100, 0);
        assert_eq!(dog.check(idle()).traces, Verdict::Quiet);
        let h = snapshot(&stats);
        assert_eq!(h.get(Signal::Traces).state, HealthState::Degraded);
        assert_eq!(h.get(Signal::Traces).dropped, 100);
        assert!(h.get(Signal::Traces).last_success.is_some());
    }

    #[test]
    fn rejections_degrade() {
        let (stats, mut dog) = setup(10, 5);
        stats.get(Signal::Logs).record_success(10, 3);
        assert_eq!(dog.check(idle()).logs, Verdict::Quiet);
        let h = snapshot(&stats);
        let logs = h.get(Signal::Logs);
        assert_eq!(
            (logs.state, logs.exported, logs.rejected),
            (HealthState::Degraded, 7, 3)
        );
        stats.get(Signal::Logs).record_success(10, 0);
        dog.check(idle());
        assert_eq!(
            snapshot(&stats).get(Signal::Logs).state,
            HealthState::Healthy
        );
    }
}
