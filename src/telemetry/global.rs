//! The process-wide installation: [`init_tracer`] and the guard against a second one.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::BaggagePropagator;

use super::Telemetry;
use crate::config::{Config, Propagator};
use crate::error::Error;

/// Whether a global installation is live; guards against a second `init_tracer`.
static GLOBAL: AtomicBool = AtomicBool::new(false);

/// Start telemetry and install it process-wide: the global tracer and meter providers, the
/// W3C propagators, and (unless [`Config::with_install_subscriber`] is `false`) a `tracing`
/// subscriber that writes JSON to stdout and ships spans and log records to the collector.
///
/// Call it once, early in `main`, and keep the returned guard alive: dropping it flushes and
/// shuts telemetry down. It does not need to be called inside a tokio runtime: exports run on
/// paytrace's own background thread.
///
/// # Errors
/// - [`Error::InvalidConfig`] / [`Error::Certificate`] for a bad setting or `OTEL_*` variable;
/// - [`Error::AlreadyInitialized`] when called again while a previous guard is alive;
/// - [`Error::SubscriberAlreadySet`] when another global `tracing` subscriber exists.
///
/// ```no_run
/// # async fn run() -> Result<(), paytrace::Error> {
/// let telemetry = paytrace::init_tracer(
///     paytrace::Config::from_env().with_service_name("payment-gateway"),
/// )?;
/// tracing::info!(order_id = 42, "service started");
/// // ... serve ...
/// telemetry.shutdown()?;
/// # Ok(()) }
/// ```
pub fn init_tracer(config: Config) -> Result<Telemetry, Error> {
    if GLOBAL
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Error::AlreadyInitialized);
    }
    match Telemetry::start(config).and_then(|t| t.install_global().map(|()| t)) {
        Ok(mut telemetry) => {
            telemetry.global = true;
            Ok(telemetry)
        }
        Err(e) => {
            GLOBAL.store(false, Ordering::Release);
            Err(e)
        }
    }
}

/// Marks the global installation gone, so `init_tracer` may run again.
pub(super) fn release() {
    GLOBAL.store(false, Ordering::Release);
}

impl Telemetry {
    pub(super) fn install_global(&self) -> Result<(), Error> {
        if self.inner.install_subscriber {
            tracing::subscriber::set_global_default(self.subscriber())
                .map_err(|e| Error::SubscriberAlreadySet(e.to_string()))?;
        }
        opentelemetry::global::set_tracer_provider(self.inner.tracer_provider.clone());
        opentelemetry::global::set_meter_provider(self.inner.meter_provider.clone());
        install_propagators(&self.inner.propagators);
        for warning in &self.inner.config_warnings {
            tracing::warn!(target: "paytrace::config", "{warning}");
        }
        Ok(())
    }
}

fn install_propagators(propagators: &[Propagator]) {
    let list: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        propagators
            .iter()
            .map(
                |p| -> Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync> {
                    match p {
                        // paytrace's own: the SDK's zeroes the random flag, reads one
                        // tracestate field and refuses valid keys.
                        Propagator::TraceContext => {
                            Box::new(crate::propagation::TraceContextPropagator::new())
                        }
                        Propagator::Baggage => Box::new(BaggagePropagator::new()),
                        Propagator::B3 => Box::new(crate::propagation::B3Propagator::single()),
                        Propagator::B3Multi => {
                            Box::new(crate::propagation::B3Propagator::multiple())
                        }
                        Propagator::Jaeger => Box::new(crate::propagation::JaegerPropagator::new()),
                    }
                },
            )
            .collect();
    crate::propagation::enable_foreign(
        propagators
            .iter()
            .any(|p| matches!(p, Propagator::B3 | Propagator::B3Multi | Propagator::Jaeger)),
    );
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(list));
}
