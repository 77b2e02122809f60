//! Typed errors: what went wrong at [`init_tracer`](crate::init_tracer) or at shutdown, with the
//! source kept so callers can act on it.

use std::time::Duration;

use crate::signal::Signal;

/// Everything that can go wrong in paytrace's public API.
///
/// Configuration problems surface here at [`init_tracer`](crate::init_tracer) time, never as a
/// panic later in the request path.
///
/// ```
/// let err = paytrace::Config::new().with_endpoint("not a url").validate().unwrap_err();
/// assert!(matches!(err, paytrace::Error::InvalidConfig { .. }));
/// assert!(err.to_string().contains("not a url"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value (set in code or read from an `OTEL_*` variable) is invalid.
    #[error("invalid configuration: {name}={value:?}: {reason}")]
    InvalidConfig {
        /// The setting: the environment variable name, or the builder method.
        name: &'static str,
        /// The offending value, as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A certificate or key file for TLS could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Certificate {
        /// Which file: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// The path as configured.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// [`init_tracer`](crate::init_tracer) was called while telemetry is already installed.
    #[error("paytrace is already initialized in this process")]
    AlreadyInitialized,
    /// Another global `tracing` subscriber was installed first. Use
    /// [`Config::with_install_subscriber(false)`](crate::Config) and compose paytrace's layers
    /// instead.
    #[error("a global tracing subscriber is already installed: {0}")]
    SubscriberAlreadySet(String),
    /// The background export thread could not be started.
    #[error("cannot start the export runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Flush or shutdown did not finish within its timeout.
    #[error("{operation} did not finish within {timeout:?}{}", last_error.as_ref().map(|e| format!(" (last export error: {e})")).unwrap_or_default())]
    Timeout {
        /// `"flush"` or `"shutdown"`.
        operation: &'static str,
        /// The configured bound.
        timeout: Duration,
        /// The latest export error while it waited (e.g. `no collector at …`), when there was
        /// one.
        last_error: Option<String>,
    },
    /// The last export of a signal failed during flush or shutdown: data was lost.
    #[error("final {signal} export failed: {message}")]
    ExportFailed {
        /// Which signal.
        signal: Signal,
        /// The last export error.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(
        name: &'static str,
        value: impl Into<String>,
        reason: impl ToString,
    ) -> Self {
        Error::InvalidConfig {
            name,
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}
