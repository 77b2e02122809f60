//! The gRPC layers built from a [`Telemetry`]: its tracer, redactor and Prometheus registry.

use super::Telemetry;
use crate::grpc::{ClientLayer, GrpcMetrics, Kind, ServerLayer};

impl Telemetry {
    /// The gRPC server layer for this telemetry, for `tonic::transport::Server::builder().layer(...)`.
    /// See [`crate::grpc`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.grpc_server_layer();
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn grpc_server_layer(&self) -> ServerLayer {
        self.grpc_layer()
    }

    /// The gRPC client layer for this telemetry, around a tonic `Channel`. See [`crate::grpc`].
    ///
    /// ```
    /// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.grpc_client_layer();
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn grpc_client_layer(&self) -> ClientLayer {
        self.grpc_layer()
    }

    fn grpc_layer<K: Kind>(&self) -> crate::grpc::GrpcLayer<K> {
        let inner = &self.inner;
        let metrics = inner
            .grpc_metrics
            .get_or_init(|| match GrpcMetrics::new(&inner.registry) {
                Ok(m) => {
                    m.set_exemplars(inner.exemplars.clone());
                    Some(m)
                }
                Err(e) => {
                    tracing::warn!(target: "paytrace::grpc", error = %e, "gRPC metrics are unavailable");
                    None
                }
            })
            .clone();
        crate::grpc::GrpcLayer::from_tracer(inner.tracer.clone())
            .with_redactor(inner.redactor.clone())
            .with_metrics(metrics)
            .with_boundaries(inner.trust.clone(), inner.propagate_to.clone())
            .with_thinned(inner.thinned.clone())
    }
}
