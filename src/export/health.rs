//! A signal's export health: set by the watchdog each window and by the export path on a first
//! failure or success, kept in an atomic; the `paytrace_exporter_state` gauge only shows it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

use prometheus::IntGauge;

/// The health of one signal's exports, as of the watchdog's last window.
///
/// ```
/// use paytrace::HealthState;
/// assert_eq!(HealthState::Failing.as_str(), "failing");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum HealthState {
    /// Exports succeed (or there was nothing to export).
    #[default]
    Healthy,
    /// Some exports failed in the last window, but not enough to call it an outage.
    Degraded,
    /// Every export so far failed (from the first failed export on, not only after a
    /// window), more failures than the threshold in the last window, or no success for
    /// several windows while data was waiting. The first successful export after "every export
    /// failed" makes the signal healthy at once.
    Failing,
}

impl HealthState {
    /// `healthy`, `degraded` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Failing => "failing",
        }
    }

    /// Its `paytrace_exporter_state` value: 0, 1, 2.
    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => HealthState::Degraded,
            2 => HealthState::Failing,
            _ => HealthState::Healthy,
        }
    }
}

/// One signal's health and the gauge that shows it.
#[derive(Debug)]
pub(crate) struct Health {
    state: AtomicU8,
    gauge: IntGauge,
    /// Held while a change is written to both, so the gauge ends on the state that won.
    changing: Mutex<()>,
}

impl Health {
    pub(crate) fn new(gauge: IntGauge) -> Self {
        Health {
            state: AtomicU8::new(HealthState::Healthy.code()),
            gauge,
            changing: Mutex::new(()),
        }
    }

    pub(crate) fn get(&self) -> HealthState {
        HealthState::from_code(self.state.load(Ordering::Acquire))
    }

    /// Sets the state; the lock is taken only when it changes.
    pub(crate) fn set(&self, state: HealthState) {
        if self.get() != state {
            self.change(|_| Some(state));
        }
    }

    /// Back to healthy if failing, at once (a first success after failures only).
    pub(crate) fn clear_failing(&self) {
        if self.get() == HealthState::Failing {
            self.change(|now| (now == HealthState::Failing).then_some(HealthState::Healthy));
        }
    }

    #[cfg(test)]
    pub(crate) fn gauge(&self) -> &IntGauge {
        &self.gauge
    }

    fn change(&self, to: impl FnOnce(HealthState) -> Option<HealthState>) {
        let _changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = to(self.get()) {
            self.state.store(state.code(), Ordering::Release);
            self.gauge.set(state.code().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> (Health, IntGauge) {
        let gauge = IntGauge::new("paytrace_exporter_state", "h").unwrap();
        (Health::new(gauge.clone()), gauge)
    }

    #[test]
    fn the_gauge_shows_each_state_by_its_number() {
        let (health, gauge) = health();
        for (state, shown) in [
            (HealthState::Failing, 2),
            (HealthState::Degraded, 1),
            (HealthState::Healthy, 0),
        ] {
            health.set(state);
            assert_eq!((health.get(), gauge.get()), (state, shown));
        }
    }

    #[test]
    fn the_state_is_read_from_the_health_not_the_gauge() {
        let (health, gauge) = health();
        health.set(HealthState::Degraded);
        gauge.set(2);
        assert_eq!(health.get(), HealthState::Degraded);
    }

    #[test]
    fn only_failing_is_cleared() {
        let (health, gauge) = health();
        health.set(HealthState::Degraded);
        health.clear_failing();
        assert_eq!(health.get(), HealthState::Degraded);
        health.set(HealthState::Failing);
        health.clear_failing();
        assert_eq!((health.get(), gauge.get()), (HealthState::Healthy, 0));
    }
}
