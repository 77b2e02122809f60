//! [`HttpMetrics`]: the RED instruments of the server layer, and their children bound to labels.
//!
//! Cardinality is bounded whatever clients send: methods fold into ten values (nine standard
//! and `_OTHER`), routes are templates (or the fallback) from a bounded table
//! ([`super::routes`]), status codes are three-digit numbers.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::error::Error;
use crate::exchange::DURATION_BUCKETS;
use crate::exemplars::{ExemplarStore, SeriesExemplars};
use crate::http::semconv::METHODS;
use crate::metrics::Registration;

/// Request duration histogram: `http_server_request_duration_seconds`.
pub(crate) const DURATION: &str = "http_server_request_duration_seconds";
/// In-flight requests gauge: `http_server_active_requests`.
pub(crate) const ACTIVE: &str = "http_server_active_requests";
/// Request body size histogram: `http_server_request_body_size_bytes`.
pub(crate) const REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
/// Response body size histogram: `http_server_response_body_size_bytes`.
pub(crate) const RESPONSE_SIZE: &str = "http_server_response_body_size_bytes";
/// Slow request counter: `http_server_slow_requests_total`.
pub(crate) const SLOW: &str = "http_server_slow_requests_total";

const L_METHOD: &str = "http_request_method";
const L_ROUTE: &str = "http_route";
const L_STATUS: &str = "http_response_status_code";

/// Body size buckets in bytes: empty, then ×4 steps from 64 B to 16 MiB.
pub(crate) const SIZE_BUCKETS: [f64; 11] = [
    0.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// The Prometheus instruments of the HTTP server layer, registered once per registry.
///
/// [`TraceLayer::new`](crate::http::TraceLayer::new) uses the telemetry's registry (created
/// once per [`Telemetry`](crate::telemetry::Telemetry)); build one yourself only with
/// [`TraceLayer::from_tracer`](crate::http::TraceLayer::from_tracer), and share it between
/// layers that record into the same registry (a second registration of the same names fails).
///
/// Families (the metrics module bridges them to OTLP under the OpenTelemetry names):
/// - `http_server_request_duration_seconds` (histogram, OTel advisory buckets 5 ms … 10 s),
///   labels `http_request_method`, `http_route`, `http_response_status_code`;
/// - `http_server_active_requests` (gauge), label `http_request_method`;
/// - `http_server_request_body_size_bytes`, `http_server_response_body_size_bytes` (histograms,
///   buckets 0, 64 B … 16 MiB in ×4 steps), the same three labels;
/// - `http_server_slow_requests_total` (counter), labels `http_request_method`, `http_route`.
///
/// `http_response_status_code` is empty (absent, to Prometheus) when no response was produced:
/// an inner service error or a cancelled request.
///
/// ```
/// let registry = prometheus::Registry::new();
/// let metrics = paytrace::http::HttpMetrics::new(&registry)?;
/// # let _ = metrics;
/// assert!(paytrace::http::HttpMetrics::new(&registry).is_err(), "names are taken");
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpMetrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    duration: HistogramVec,
    active: IntGaugeVec,
    request_size: HistogramVec,
    response_size: HistogramVec,
    slow: IntCounterVec,
    active_by_method: [OnceLock<IntGauge>; METHODS.len()],
    /// Where kept requests leave their duration exemplars, when the registry has a store.
    exemplars: OnceLock<Arc<ExemplarStore>>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Create the five `http_server_*` families and register them in `registry`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the registry refuses them, typically because they are
    /// registered there already (nothing stays registered then).
    ///
    /// ```
    /// let registry = prometheus::Registry::new();
    /// let metrics = paytrace::http::HttpMetrics::new(&registry)?;
    /// # let _ = metrics;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let set = Registration::new(registry);
        let three = [L_METHOD, L_ROUTE, L_STATUS];
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            set.add(name, HistogramVec::new(opts, &three))
        };
        let duration = histogram(
            DURATION,
            "Duration of HTTP server requests, until the response body ended.",
            &DURATION_BUCKETS,
        )?;
        let active = set.add(
            ACTIVE,
            IntGaugeVec::new(
                Opts::new(ACTIVE, "Number of active HTTP server requests."),
                &[L_METHOD],
            ),
        )?;
        let request_size = histogram(
            REQUEST_SIZE,
            "Size of HTTP server request bodies (from Content-Length).",
            &SIZE_BUCKETS,
        )?;
        let response_size = histogram(
            RESPONSE_SIZE,
            "Size of HTTP server response bodies, as sent.",
            &SIZE_BUCKETS,
        )?;
        let slow = set.add(
            SLOW,
            IntCounterVec::new(
                Opts::new(
                    SLOW,
                    "HTTP server requests slower than the layer's slow threshold.",
                ),
                &[L_METHOD, L_ROUTE],
            ),
        )?;
        set.finish();
        Ok(HttpMetrics {
            inner: Arc::new(MetricsInner {
                duration,
                active,
                request_size,
                response_size,
                slow,
                active_by_method: Default::default(),
                exemplars: OnceLock::new(),
            }),
        })
    }

    /// Keep duration exemplars of kept requests in `store` (the telemetry's, read by its
    /// OpenMetrics endpoint and its OTLP bridge).
    pub(crate) fn set_exemplars(&self, store: Arc<ExemplarStore>) {
        let _ = self.inner.exemplars.set(store);
    }

    /// The in-flight gauge of a method slot.
    pub(crate) fn active(&self, method: usize) -> Option<&IntGauge> {
        let slot = self.inner.active_by_method.get(method)?;
        if let Some(g) = slot.get() {
            return Some(g);
        }
        let g = self
            .inner
            .active
            .get_metric_with_label_values(&[METHODS[method]])
            .ok()?;
        Some(slot.get_or_init(|| g))
    }

    /// The histograms of one (method, route, status) series, bound to their labels.
    pub(crate) fn series(&self, method: usize, route: &str, status: &str) -> Option<StatusSeries> {
        let labels = [METHODS[method], route, status];
        let i = &self.inner;
        let exemplars = i.exemplars.get().map(|store| {
            store.series(
                DURATION,
                &[(L_METHOD, labels[0]), (L_ROUTE, route), (L_STATUS, status)],
                &DURATION_BUCKETS,
            )
        });
        Some(StatusSeries {
            exemplars,
            duration: i.duration.get_metric_with_label_values(&labels).ok()?,
            request_size: i.request_size.get_metric_with_label_values(&labels).ok()?,
            response_size: i.response_size.get_metric_with_label_values(&labels).ok()?,
        })
    }

    /// The slow-request counter of one (method, route), bound to its labels.
    pub(crate) fn slow(&self, method: usize, route: &str) -> Option<IntCounter> {
        self.inner
            .slow
            .get_metric_with_label_values(&[METHODS[method], route])
            .ok()
    }
}

/// The three histograms of one (method, route, status) series.
#[derive(Debug)]
pub(crate) struct StatusSeries {
    pub(crate) duration: Histogram,
    /// The duration's exemplars, when the telemetry keeps them.
    pub(crate) exemplars: Option<Arc<SeriesExemplars>>,
    pub(crate) request_size: Histogram,
    pub(crate) response_size: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_all_or_nothing() {
        let registry = Registry::new();
        // Take one of the names so the set cannot register.
        let squatter = IntCounterVec::new(Opts::new(SLOW, "x"), &["a"]).unwrap();
        registry.register(Box::new(squatter)).unwrap();
        assert!(HttpMetrics::new(&registry).is_err());
        assert_eq!(
            registry.gather().len(),
            0,
            "nothing but the squatter (which has no series)"
        );
        let fresh = Registry::new();
        HttpMetrics::new(&fresh).unwrap();
        assert!(HttpMetrics::new(&fresh).is_err());
    }
}
