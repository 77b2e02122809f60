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
mod service;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;

pub(crate) use filter::{tidy as tidy_filter, DynamicFilter, FilterSlot};
pub use service::ControlService;

use crate::error::Error;
use crate::sampling::HeadControl;

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
        let control = Control::new(
            Arc::new(FilterSlot::new("info", None)),
            "info".into(),
            Some(Arc::new(HeadControl::new(1.0))),
            Some(1.0),
            DEFAULT_MAX_TTL,
            &prometheus::Registry::new(),
            Some(rt.handle().clone()),
        )
        .expect("a control");
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
    log_filter: Option<Change<String>>,
    keep_ratio: Option<Change<f64>>,
    forced_routes: Vec<Change<String>>,
}

impl InForce {
    /// The head sampler keeps exactly the routes in force.
    fn apply_forced_routes(&self, head: &HeadControl) {
        head.set_forced_routes(self.forced_routes.iter().map(|c| c.value.clone()).collect());
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
        let mut in_force = self.inner.lock();
        self.inner
            .filter
            .set(directives)
            .map_err(|reason| Error::invalid("set_log_filter", directives, reason))?;
        let change = self.change(directives.to_owned(), ttl, set_by);
        let generation = change.generation;
        in_force.log_filter = Some(change);
        drop(in_force);
        self.inner
            .announce(Setting::LogFilter, directives, set_by, Some(ttl));
        self.revert_after(ttl, move |inner| {
            let mut in_force = inner.lock();
            if in_force.log_filter.as_ref().map(|c| c.generation) == Some(generation) {
                in_force.log_filter = None;
                let _ = inner.filter.set(&inner.base_filter);
                drop(in_force);
                inner.announce_revert(Setting::LogFilter, &inner.base_filter);
            }
        });
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
        let mut in_force = self.inner.lock();
        head.set_ratio(ratio);
        let change = self.change(ratio, ttl, set_by);
        let generation = change.generation;
        in_force.keep_ratio = Some(change);
        drop(in_force);
        self.inner
            .announce(Setting::KeepRatio, &ratio.to_string(), set_by, Some(ttl));
        self.revert_after(ttl, move |inner| {
            let mut in_force = inner.lock();
            if in_force.keep_ratio.as_ref().map(|c| c.generation) == Some(generation) {
                in_force.keep_ratio = None;
                let base = inner.base_ratio.unwrap_or(1.0);
                if let Some(head) = &inner.head {
                    head.set_ratio(base);
                }
                drop(in_force);
                inner.announce_revert(Setting::KeepRatio, &base.to_string());
            }
        });
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
        let mut in_force = self.inner.lock();
        in_force.forced_routes.retain(|c| c.value != route);
        if in_force.forced_routes.len() >= MAX_FORCED_ROUTES {
            return Err(Error::invalid(
                "force_keep_route",
                route,
                format!("{MAX_FORCED_ROUTES} routes are forced already: wait for one to revert, or reset"),
            ));
        }
        let change = self.change(route.to_owned(), ttl, set_by);
        let generation = change.generation;
        in_force.forced_routes.push(change);
        in_force.apply_forced_routes(head);
        drop(in_force);
        self.inner
            .announce(Setting::ForcedRoute, route, set_by, Some(ttl));
        let route = route.to_owned();
        self.revert_after(ttl, move |inner| {
            let mut in_force = inner.lock();
            let before = in_force.forced_routes.len();
            in_force
                .forced_routes
                .retain(|c| c.generation != generation);
            if in_force.forced_routes.len() < before {
                if let Some(head) = &inner.head {
                    in_force.apply_forced_routes(head);
                }
                drop(in_force);
                inner.announce_revert(Setting::ForcedRoute, &route);
            }
        });
        Ok(())
    }

    /// What is in force now.
    pub fn state(&self) -> ControlState {
        let in_force = self.inner.lock();
        ControlState {
            log_filter: in_force
                .log_filter
                .as_ref()
                .map_or_else(|| self.inner.base_filter.clone(), |c| c.value.clone()),
            log_filter_change: in_force.log_filter.clone(),
            keep_ratio: in_force
                .keep_ratio
                .as_ref()
                .map(|c| c.value)
                .or(self.inner.base_ratio),
            keep_ratio_change: in_force.keep_ratio.clone(),
            forced_routes: in_force.forced_routes.clone(),
        }
    }

    /// Back to the configured settings now; pending reverts then do nothing.
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

    fn change<T>(&self, value: T, ttl: Duration, set_by: &str) -> Change<T> {
        let since = SystemTime::now();
        Change {
            value,
            set_by: set_by.to_owned(),
            since,
            until: since + ttl,
            generation: self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Run `revert` after `ttl`, if the handle's state still exists.
    fn revert_after(&self, ttl: Duration, revert: impl FnOnce(&Inner) + Send + 'static) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let run = move || {
            if let Some(inner) = weak.upgrade() {
                revert(&inner);
            }
        };
        match &self.inner.runtime {
            Some(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(ttl).await;
                    run();
                });
            }
            // Disabled telemetry has no export thread: a sleeping thread per change.
            None => {
                let _ = std::thread::Builder::new()
                    .name("paytrace-control".into())
                    .spawn(move || {
                        std::thread::sleep(ttl);
                        run();
                    });
            }
        }
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
