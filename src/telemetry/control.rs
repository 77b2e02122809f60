//! Runtime control from a [`Telemetry`]: the handle and its admin endpoint.

use super::Telemetry;
use crate::control::{Control, ControlService};

impl Telemetry {
    /// The runtime control handle: change the log filter, the keep ratio, and keep every trace
    /// of a route, each for a TTL; see [`crate::control`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// telemetry
    ///     .control()
    ///     .set_log_filter("debug", Duration::from_secs(60), "on-call")?;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn control(&self) -> Control {
        self.inner.control.clone()
    }

    /// The runtime control endpoint, a tower service for an **admin** router: `GET` returns
    /// the state as JSON, `PUT` applies a change (`{"log_filter": "debug", "ttl_seconds": 600,
    /// "set_by": "alice"}`). Never mounted by paytrace; it does no authentication, so mount it
    /// behind the application's own.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let admin: axum::Router = axum::Router::new()
    ///     .route_service("/admin/telemetry", telemetry.control_service());
    /// # let _ = admin;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn control_service(&self) -> ControlService {
        ControlService::new(self.control())
    }
}
