//! The `/metrics` endpoint (feature `metrics-endpoint`): Prometheus text 0.0.4, or OpenMetrics
//! with exemplars when the scraper asks for it.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use super::openmetrics::{self, OPENMETRICS_CONTENT_TYPE};
use super::{render, PROMETHEUS_CONTENT_TYPE};

/// The `/metrics` endpoint from [`Telemetry::metrics_service`](crate::telemetry::Telemetry::metrics_service).
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    registry: prometheus::Registry,
    exemplars: Option<std::sync::Arc<crate::exemplars::ExemplarStore>>,
}

impl MetricsEndpoint {
    pub(crate) fn new(
        registry: prometheus::Registry,
        exemplars: Option<std::sync::Arc<crate::exemplars::ExemplarStore>>,
    ) -> Self {
        MetricsEndpoint {
            registry,
            exemplars,
        }
    }
}

impl<B> tower_service::Service<http::Request<B>> for MetricsEndpoint {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // OpenMetrics (with exemplars) when the scraper asks for it, as Prometheus does;
        // the 0.0.4 text otherwise.
        let openmetrics = request
            .headers()
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let (body, content_type) = if openmetrics {
            (
                openmetrics::encode(&self.registry.gather(), self.exemplars.as_deref()),
                OPENMETRICS_CONTENT_TYPE,
            )
        } else {
            (render(&self.registry), PROMETHEUS_CONTENT_TYPE)
        };
        let mut response = http::Response::new(body);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        ready(Ok(response))
    }
}
