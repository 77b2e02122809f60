//! The HTTP layers built from a [`Telemetry`]: its tracer, redactor and Prometheus registry.

use std::sync::Arc;

use super::Telemetry;
use crate::http::{ClientLayer, HttpMetrics, TraceLayer};

impl Telemetry {
    /// The HTTP server layer for this telemetry: [`TraceLayer::new`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/pay", axum::routing::post(|| async { "ok" }))
    ///     .layer(telemetry.http_layer());
    /// # let _ = app;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn http_layer(&self) -> TraceLayer {
        TraceLayer::new(self)
    }

    /// The HTTP client layer for this telemetry: [`ClientLayer::new`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_client_layer();
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn http_client_layer(&self) -> ClientLayer {
        ClientLayer::new(self)
    }
}

impl TraceLayer {
    /// The layer for a [`Telemetry`]: its tracer (scope `paytrace`), its Prometheus registry
    /// (the `http_server_*` families are registered there once, whatever the number of
    /// layers) and its redactor. Same as [`Telemetry::http_layer`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = paytrace::http::TraceLayer::new(&telemetry);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn new(telemetry: &Telemetry) -> Self {
        let inner = &telemetry.inner;
        let metrics = inner
            .http_metrics
            .get_or_init(|| match HttpMetrics::new(&inner.registry) {
                Ok(m) => {
                    m.set_exemplars(inner.exemplars.clone());
                    Some(m)
                }
                Err(e) => {
                    tracing::warn!(target: "paytrace::http", error = %e, "HTTP server metrics are unavailable");
                    None
                }
            })
            .clone();
        let critical: Arc<[String]> = inner
            .log
            .sampling
            .as_ref()
            .map(|s| Arc::from(s.critical_routes.clone()))
            .unwrap_or_else(|| Arc::from(Vec::new()));
        TraceLayer::from_tracer(inner.tracer.clone())
            .with_redactor(inner.redactor.clone())
            .with_metrics(metrics)
            .with_critical_routes(critical)
            .with_thinned(inner.thinned.clone())
            .with_trust(inner.trust.clone())
    }
}

impl ClientLayer {
    /// The client layer for a [`Telemetry`] (its tracer and redactor). Same as
    /// [`Telemetry::http_client_layer`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = paytrace::http::ClientLayer::new(&telemetry);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn new(telemetry: &Telemetry) -> Self {
        ClientLayer::from_tracer(telemetry.inner.tracer.clone())
            .with_redactor(telemetry.inner.redactor.clone())
            .with_propagation(telemetry.inner.propagate_to.clone())
    }
}
