//! The metrics a [`Telemetry`] owns: its Prometheus registry (text and `/metrics`), the
//! order-pool instruments registered there, and the exporter health.

use super::Telemetry;
use crate::error::Error;
#[cfg(feature = "metrics-endpoint")]
use crate::metrics::MetricsEndpoint;
use crate::metrics::{OrderPoolMetrics, OrderPoolMetricsBuilder};
use crate::watchdog::ExporterHealth;

impl Telemetry {
    /// Every paytrace metric in Prometheus text exposition format 0.0.4: order pool, HTTP RED,
    /// exporter health, process (and tokio, once registered).
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// assert!(telemetry.prometheus_text().contains("paytrace_exporter_items_dropped_total"));
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn prometheus_text(&self) -> String {
        crate::metrics::render(&self.inner.registry)
    }

    /// paytrace's Prometheus registry: register your own `prometheus` instruments here and
    /// they appear on `/metrics` ([`Telemetry::metrics_service`]) and reach the collector over
    /// OTLP with paytrace's own on the metric interval — the one way to both. Instruments made
    /// through [`Telemetry::meter_provider`] go over OTLP only. Exemplars are recorded on
    /// paytrace's latency histograms and the order pool's, not on instruments registered here.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let refunds = paytrace::prometheus::IntCounter::new("refunds_total", "Refunds issued.")?;
    /// telemetry.registry().register(Box::new(refunds.clone()))?;
    /// refunds.inc();
    /// assert!(telemetry.prometheus_text().contains("refunds_total 1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn registry(&self) -> &prometheus::Registry {
        &self.inner.registry
    }

    /// A ready `/metrics` endpoint: a cheap-to-clone tower service answering every request with
    /// [`Telemetry::prometheus_text`]. Mount it with axum's `Router::route_service`.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let app: axum::Router = axum::Router::new().route_service("/metrics", telemetry.metrics_service());
    /// # let _ = app;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    #[cfg(feature = "metrics-endpoint")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics-endpoint")))]
    pub fn metrics_service(&self) -> MetricsEndpoint {
        MetricsEndpoint::new(
            self.inner.registry.clone(),
            Some(self.inner.exemplars.clone()),
        )
    }

    /// Add `tokio_workers`, `tokio_alive_tasks` and `tokio_global_queue_depth` for `runtime`
    /// (usually `tokio::runtime::Handle::current()` in `main`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if runtime metrics are already registered.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), paytrace::Error> {
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// telemetry.register_runtime_metrics(&tokio::runtime::Handle::current())?;
    /// assert!(telemetry.prometheus_text().contains("tokio_alive_tasks"));
    /// # Ok(()) }
    /// ```
    pub fn register_runtime_metrics(&self, runtime: &tokio::runtime::Handle) -> Result<(), Error> {
        let err = |e: prometheus::Error| Error::invalid("register_runtime_metrics", "tokio_*", e);
        let collector =
            crate::metrics::process::RuntimeCollector::new(runtime.clone()).map_err(err)?;
        self.inner
            .registry
            .register(Box::new(collector))
            .map_err(err)
    }

    /// Exporter health per signal: state, exported/failed/dropped totals, last error, last
    /// success. The same figures are on the Prometheus endpoint as `paytrace_exporter_*`.
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// for signal in telemetry.exporter_health().signals() {
    ///     println!("{}: {} ({} dropped)", signal.signal, signal.state.as_str(), signal.dropped);
    /// }
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn exporter_health(&self) -> ExporterHealth {
        let keep = self.inner.pipeline.as_ref().and_then(|p| p.keeper.as_ref());
        crate::watchdog::snapshot(&self.inner.stats)
            .with_tail_keep(keep.map(|k| k.keeper.stats().snapshot()))
    }
}
impl OrderPoolMetrics {
    /// Register with the default label sets; see [`OrderPoolMetricsBuilder::build`].
    ///
    /// # Errors
    /// As [`OrderPoolMetricsBuilder::build`].
    pub fn new(telemetry: &Telemetry) -> Result<Self, Error> {
        Self::builder().build(telemetry)
    }
}

impl OrderPoolMetricsBuilder {
    /// Register the instruments in `telemetry`'s registry (Prometheus endpoint and OTLP).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when order-pool metrics are already registered there.
    pub fn build(self, telemetry: &Telemetry) -> Result<OrderPoolMetrics, Error> {
        self.register_with(&telemetry.inner.registry, Some(&telemetry.inner.exemplars))
    }
}
