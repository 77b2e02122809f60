//! The context-aware logger: `tracing` events with trace ids on stdout and as OTLP log records.

use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::LogFormat;
use crate::Telemetry;

/// The stdout layer for the configured [`LogFormat`].
pub(crate) fn stdout_layer<S>(telemetry: &Telemetry) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    match telemetry.inner.settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        _ => tracing_subscriber::layer::Identity::new().boxed(),
    }
}
