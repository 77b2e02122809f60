//! Logging from a [`Telemetry`]: the context-aware logger and what was dropped on the way.

use std::sync::atomic::Ordering;

use super::Telemetry;
use crate::log::{LogStats, Logger};

impl Telemetry {
    /// The context-aware logger; see [`Logger`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// telemetry.logger().info("started");
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn logger(&self) -> Logger {
        crate::log::logger()
    }

    /// Log records dropped so far.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// assert_eq!(telemetry.log_stats().stdout_dropped, 0);
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn log_stats(&self) -> LogStats {
        LogStats {
            stdout_dropped: self.inner.stdout.as_ref().map_or(0, |s| s.dropped()),
            sampled_out: self.inner.sampled_out.load(Ordering::Relaxed),
        }
    }
}
