//! Runtime control: change the log filter, the keep ratio, and keep every trace of a route,
//! while the service runs — each change with a TTL after which it reverts on its own.
//!
//! ```
//! use std::time::Duration;
//! # fn main() -> Result<(), paytrace::Error> {
//! let telemetry = paytrace::Telemetry::start(
//!     paytrace::Config::disabled().with_sampler(paytrace::Sampler::ParentBasedRatio(0.1)),
//! )?;
//! let control = telemetry.control();
//! control.set_log_filter("info,payments::settlement=debug", Duration::from_secs(600), "alice")?;
//! control.force_keep_route("/orders/{id}", Duration::from_secs(600), "alice")?;
//! assert_eq!(control.state().log_filter, "info,payments::settlement=debug");
//! control.reset("alice");
//! assert_eq!(control.state().log_filter, "info");
//! # Ok(()) }
//! ```
//!
//! Every change and every revert is logged once at INFO under the target `paytrace::control`,
//! with the `set_by` text the caller gives, and counted in
//! `paytrace_control_changes_total{setting, action}`. A revert never undoes a newer change.
//! Mount [`Telemetry::control_service`](crate::telemetry::Telemetry::control_service) on an
//! admin router to change them over HTTP; paytrace does no authentication itself.

mod filter;
mod revert;
mod service;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;

pub(crate) use filter::{tidy as tidy_filter, DynamicFilter, FilterSlot};
pub use service::ControlService;

use crate::error::Error;
use crate::sampling::HeadControl;
use revert::Revert;

/// One runtime-control request body applied to a control of its own (log filter `info`, keep
/// ratio 1), for the fuzz targets: the outcome and the settings in force after it. Reverts are
/// queued on a runtime that never runs them.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_apply(body: &str) -> (Result<(), String>, ControlState) {
    use std::sync::OnceLock;
    static CONTROL: OnceLock<(tokio::runtime::Runtime, Control)> = OnceLock::new();
    // Fuzzing only (feature `fuzzing`): a panic here stops the harness, never a service.
    let (_, control) = CONTROL.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let control = Control::standalone(1.0, rt.handle());
        (rt, control)
    });
    (service::apply(control, body), control.state())
}

/// The longest TTL a change may have by default.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);

/// A cheap, cloneable handle on the settings that can change at run time; from
/// [`Telemetry::control`](crate::telemetry::Telemetry::control).
#[derive(Debug, Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    filter: Arc<FilterSlot>,
    base_filter: String,
    head: Option<Arc<HeadControl>>,
    base_ratio: Option<f64>,
    max_ttl: Duration,
    in_force: Mutex<InForce>,
    generation: AtomicU64,
    changes: prometheus::IntCounterVec,
    runtime: Option<Handle>,
}

#[derive(Debug, Default)]
struct InForce {
    log_filter: Option<Held<String>>,
    keep_ratio: Option<Held<f64>>,
    forced_routes: Vec<Held<String>>,
}

/// A change in force and its pending revert, which is cancelled when the change goes.
#[derive(Debug)]
struct Held<T> {
    change: Change<T>,
    _revert: Revert,
}

impl InForce {
    /// The head sampler keeps exactly the routes in force.
    fn apply_forced_routes(&self, head: &HeadControl) {
        head.set_forced_routes(
            self.forced_routes
                .iter()
                .map(|held| held.change.value.clone())
                .collect(),
        );
    }
}

/// How many routes [`Control::force_keep_route`] keeps in force at once: each is checked on
/// every request's sampling decision, and the list must stay bounded.
///
/// ```
/// # fn main() -> Result<(), paytrace::Error> {
/// let telemetry = paytrace::Telemetry::start(
///     paytrace::Config::disabled().with_sampler(paytrace::Sampler::ParentBasedRatio(0.1)),
/// )?;
/// let ttl = std::time::Duration::from_secs(60);
/// for n in 0..paytrace::control::MAX_FORCED_ROUTES {
///     telemetry.control().force_keep_route(&format!("/r/{n}"), ttl, "alice")?;
/// }
/// assert!(telemetry.control().force_keep_route("/one/more", ttl, "alice").is_err());
/// # Ok(()) }
/// ```
pub const MAX_FORCED_ROUTES: usize = 32;

/// One change in force: its value, who set it, and until when.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Change<T> {
    /// The value in force.
    pub value: T,
    /// Who set it (the text the caller gave).
    pub set_by: String,
    /// When it was set.
    pub since: SystemTime,
    /// When it reverts.
    pub until: SystemTime,
    generation: u64,
}

/// What is in force: [`Control::state`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ControlState {
    /// The log filter directives in force.
    pub log_filter: String,
    /// The change behind it, when it is not the configured one.
    pub log_filter_change: Option<Change<String>>,
    /// The head ratio in force; `None` without a ratio sampler.
    pub keep_ratio: Option<f64>,
    /// The change behind it, when it is not the configured one.
    pub keep_ratio_change: Option<Change<f64>>,
    /// Routes whose every trace is kept.
    pub forced_routes: Vec<Change<String>>,
}

/// Which setting a change is about.
#[derive(Debug, Clone, Copy)]
enum Setting {
    LogFilter,
    KeepRatio,
    ForcedRoute,
}

impl Setting {
    fn as_str(self) -> &'static str {
        match self {
            Setting::LogFilter => "log_filter",
            Setting::KeepRatio => "keep_ratio",
            Setting::ForcedRoute => "forced_route",
        }
    }
}

impl Control {
    pub(crate) fn new(
        filter: Arc<FilterSlot>,
        base_filter: String,
        head: Option<Arc<HeadControl>>,
        base_ratio: Option<f64>,
        max_ttl: Duration,
        registry: &prometheus::Registry,
        runtime: Option<Handle>,
    ) -> Result<Self, Error> {
        let err = |e| Error::invalid("metrics registry", "paytrace_control_changes_total", e);
        let changes = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "paytrace_control_changes_total",
                "Runtime control: changes set, reverted at their TTL, and reset, per setting.",
            ),
            &["setting", "action"],
        )
        .map_err(err)?;
        registry.register(Box::new(changes.clone())).map_err(err)?;
        Ok(Control {
            inner: Arc::new(Inner {
                filter,
                base_filter,
                head,
                base_ratio,
                max_ttl,
                in_force: Mutex::new(InForce::default()),
                generation: AtomicU64::new(0),
                changes,
                runtime,
            }),
        })
    }

    /// A control of its own, outside any `Telemetry`: log filter `info`, keep ratio `ratio`,
    /// reverts on `runtime`.
    #[cfg(any(test, feature = "fuzzing"))]
    fn standalone(ratio: f64, runtime: &Handle) -> Control {
        // Tests and fuzzing only: a fresh registry always takes the counter.
        Control::new(
            Arc::new(FilterSlot::new("info", None)),
            "info".into(),
            Some(Arc::new(HeadControl::new(ratio))),
            Some(ratio),
            DEFAULT_MAX_TTL,
            &prometheus::Registry::new(),
            Some(runtime.clone()),
        )
        .expect("a control")
    }

    /// Put `directives` (`RUST_LOG` syntax) in force for stdout and OTLP logs, for `ttl`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the bad directive or TTL; nothing changes then.
    pub fn set_log_filter(
        &self,
        directives: &str,
        ttl: Duration,
        set_by: &str,
    ) -> Result<(), Error> {
        self.check_ttl(ttl)?;
        let held = self.hold(directives.to_owned(), ttl, set_by, Inner::revert_log_filter)?;
        let mut in_force = self.inner.lock();
        self.inner
            .filter
            .set(directives)
            .map_err(|reason| Error::invalid("set_log_filter", directives, reason))?;
        in_force.log_filter = Some(held);
        drop(in_force);
        self.inner
            .announce(Setting::LogFilter, directives, set_by, Some(ttl));
        Ok(())
    }

    /// Keep this share of traces by the head ratio (the `th` written follows it), for `ttl`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the ratio is outside [0, 1], the TTL is 0 or above the
    /// maximum, or the service was not started with a ratio sampler; nothing changes then.
    pub fn set_keep_ratio(&self, ratio: f64, ttl: Duration, set_by: &str) -> Result<(), Error> {
        self.check_ttl(ttl)?;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(Error::invalid(
                "set_keep_ratio",
                ratio.to_string(),
                "must be within [0, 1]",
            ));
        }
        let head = self.head("set_keep_ratio")?;
        let held = self.hold(ratio, ttl, set_by, Inner::revert_keep_ratio)?;
        let mut in_force = self.inner.lock();
        head.set_ratio(ratio);
        in_force.keep_ratio = Some(held);
        drop(in_force);
        self.inner
            .announce(Setting::KeepRatio, &ratio.to_string(), set_by, Some(ttl));
        Ok(())
    }

    /// Keep every trace whose server span has this route template (`http.route`), for `ttl`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the route is not a route template (it must start with `/`,
    /// at most 256 visible characters), [`MAX_FORCED_ROUTES`] other routes are forced already,
    /// the TTL is 0 or above the maximum, or the service was not started with a ratio sampler
    /// (at 100 % every trace is kept already).
    pub fn force_keep_route(&self, route: &str, ttl: Duration, set_by: &str) -> Result<(), Error> {
        self.check_ttl(ttl)?;
        if !route.starts_with('/')
            || route.len() > 256
            || route.bytes().any(|b| !b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "force_keep_route",
                route,
                "not a route template: starts with `/`, at most 256 visible characters",
            ));
        }
        let head = self.head("force_keep_route")?;
        let held = self.hold(route.to_owned(), ttl, set_by, Inner::revert_forced_route)?;
        let mut in_force = self.inner.lock();
        in_force
            .forced_routes
            .retain(|held| held.change.value != route);
        if in_force.forced_routes.len() >= MAX_FORCED_ROUTES {
            return Err(Error::invalid(
                "force_keep_route",
                route,
                format!("{MAX_FORCED_ROUTES} routes are forced already: wait for one to revert, or reset"),
            ));
        }
        in_force.forced_routes.push(held);
        in_force.apply_forced_routes(head);
        drop(in_force);
        self.inner
            .announce(Setting::ForcedRoute, route, set_by, Some(ttl));
        Ok(())
    }

    /// What is in force now.
    pub fn state(&self) -> ControlState {
        let in_force = self.inner.lock();
        ControlState {
            log_filter: in_force.log_filter.as_ref().map_or_else(
                || self.inner.base_filter.clone(),
                |held| held.change.value.clone(),
            ),
            log_filter_change: in_force.log_filter.as_ref().map(Held::change),
            keep_ratio: in_force
                .keep_ratio
                .as_ref()
                .map(|held| held.change.value)
                .or(self.inner.base_ratio),
            keep_ratio_change: in_force.keep_ratio.as_ref().map(Held::change),
            forced_routes: in_force.forced_routes.iter().map(Held::change).collect(),
        }
    }

    /// Back to the configured settings now; the pending reverts are cancelled.
    pub fn reset(&self, set_by: &str) {
        let mut in_force = self.inner.lock();
        *in_force = InForce::default();
        let _ = self.inner.filter.set(&self.inner.base_filter);
        if let Some(head) = &self.inner.head {
            head.set_ratio(self.inner.base_ratio.unwrap_or(1.0));
            head.set_forced_routes(Vec::new());
        }
        drop(in_force);
        self.inner
            .changes
            .with_label_values(&["all", "reset"])
            .inc();
        tracing::info!(target: "paytrace::control", set_by, "runtime control reset to the configured settings");
    }

    fn check_ttl(&self, ttl: Duration) -> Result<(), Error> {
        if ttl.is_zero() || ttl > self.inner.max_ttl {
            return Err(Error::invalid(
                "ttl",
                format!("{ttl:?}"),
                format!("must be above 0 and at most {:?}", self.inner.max_ttl),
            ));
        }
        Ok(())
    }

    fn head(&self, what: &'static str) -> Result<&Arc<HeadControl>, Error> {
        self.inner.head.as_ref().ok_or_else(|| {
            Error::invalid(
                what,
                "-",
                "needs a ratio sampler at start (Sampler::ParentBasedRatio or \
                 OTEL_TRACES_SAMPLER=parentbased_traceidratio); at 100 % every trace is kept",
            )
        })
    }

    /// A new change of `value` for `ttl`, with its revert (given the change's generation)
    /// waiting; a revert runs only while the handle's state still exists.
    fn hold<T>(
        &self,
        value: T,
        ttl: Duration,
        set_by: &str,
        revert: fn(&Inner, u64),
    ) -> Result<Held<T>, Error> {
        let since = SystemTime::now();
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let revert = Revert::after(ttl, self.inner.runtime.as_ref(), move || {
            if let Some(inner) = weak.upgrade() {
                revert(&inner, generation);
            }
        })
        .map_err(|e| Error::invalid("runtime control", "revert timer", e))?;
        let change = Change {
            value,
            set_by: set_by.to_owned(),
            since,
            until: since + ttl,
            generation,
        };
        Ok(Held {
            change,
            _revert: revert,
        })
    }
}

impl<T: Clone> Held<T> {
    fn change(&self) -> Change<T> {
        self.change.clone()
    }

    /// Whether this is still the change a revert of `generation` was made for.
    fn is(&self, generation: u64) -> bool {
        self.change.generation == generation
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, InForce> {
        self.in_force.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn announce(&self, setting: Setting, value: &str, set_by: &str, ttl: Option<Duration>) {
        self.changes
            .with_label_values(&[setting.as_str(), "set"])
            .inc();
        tracing::info!(
            target: "paytrace::control",
            setting = setting.as_str(),
            value,
            set_by,
            ttl_seconds = ttl.map_or(0, |t| t.as_secs()),
            "runtime control: {} set",
            setting.as_str()
        );
    }

    fn revert_log_filter(&self, generation: u64) {
        let mut in_force = self.lock();
        let held = in_force.log_filter.take_if(|held| held.is(generation));
        if held.is_some() {
            let _ = self.filter.set(&self.base_filter);
            drop(in_force);
            self.announce_revert(Setting::LogFilter, &self.base_filter);
        }
    }

    fn revert_keep_ratio(&self, generation: u64) {
        let mut in_force = self.lock();
        let held = in_force.keep_ratio.take_if(|held| held.is(generation));
        if held.is_some() {
            let base = self.base_ratio.unwrap_or(1.0);
            if let Some(head) = &self.head {
                head.set_ratio(base);
            }
            drop(in_force);
            self.announce_revert(Setting::KeepRatio, &base.to_string());
        }
    }

    fn revert_forced_route(&self, generation: u64) {
        let mut in_force = self.lock();
        let Some(at) = in_force
            .forced_routes
            .iter()
            .position(|held| held.is(generation))
        else {
            return;
        };
        let held = in_force.forced_routes.remove(at);
        if let Some(head) = &self.head {
            in_force.apply_forced_routes(head);
        }
        drop(in_force);
        self.announce_revert(Setting::ForcedRoute, &held.change.value);
    }

    fn announce_revert(&self, setting: Setting, value: &str) {
        self.changes
            .with_label_values(&[setting.as_str(), "revert"])
            .inc();
        tracing::info!(
            target: "paytrace::control",
            setting = setting.as_str(),
            value,
            "runtime control: {} reverted at its TTL",
            setting.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::revert::test_support::{eventually, runtime};
    use super::*;

    /// A control at ratio 0.5 whose reverts run on a runtime of its own.
    fn control_on_a_runtime() -> (tokio::runtime::Runtime, Control) {
        let runtime = runtime();
        let control = Control::standalone(0.5, runtime.handle());
        (runtime, control)
    }

    /// Waits until the runtime holds at most `tasks` tasks; false after 30 s.
    fn settles_to(runtime: &tokio::runtime::Runtime, tasks: usize) -> bool {
        eventually(|| runtime.metrics().num_alive_tasks() <= tasks)
    }

    #[test]
    fn a_replaced_change_leaves_no_revert_waiting() {
        let (runtime, control) = control_on_a_runtime();
        let ttl = Duration::from_secs(600);
        for n in 0..100 {
            control
                .set_log_filter(&format!("info,n{n}=debug"), ttl, "alice")
                .unwrap();
            control.set_keep_ratio(0.9, ttl, "alice").unwrap();
            control
                .force_keep_route("/orders/{id}", ttl, "alice")
                .unwrap();
        }
        assert!(settles_to(&runtime, 3), "one revert per change in force");
        assert_eq!(control.state().forced_routes.len(), 1);
        control.reset("alice");
        assert!(settles_to(&runtime, 0), "reset cancels every revert");
    }

    #[test]
    fn a_change_still_reverts_at_its_ttl() {
        let (runtime, control) = control_on_a_runtime();
        let ttl = Duration::from_millis(20);
        control.set_log_filter("debug", ttl, "alice").unwrap();
        control.set_keep_ratio(1.0, ttl, "alice").unwrap();
        control
            .force_keep_route("/orders/{id}", ttl, "alice")
            .unwrap();
        assert!(settles_to(&runtime, 0));
        let state = control.state();
        assert_eq!(state.log_filter, "info");
        assert_eq!(state.keep_ratio, Some(0.5));
        assert!(state.forced_routes.is_empty());
    }
}
