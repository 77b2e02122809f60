//! [`GrpcMetrics`]: the call-duration histograms and slow-call counters of the gRPC layers.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::side::Side;
use super::status::name;
use crate::error::Error;
use crate::exchange::DURATION_BUCKETS;
use crate::exemplars::{ExemplarStore, SeriesExemplars};
use crate::metrics::Registration;
use tonic::Code;

/// `rpc_server_call_duration_seconds` (OTLP `rpc.server.call.duration`).
pub(crate) const SERVER_DURATION: &str = "rpc_server_call_duration_seconds";
/// `rpc_client_call_duration_seconds` (OTLP `rpc.client.call.duration`).
pub(crate) const CLIENT_DURATION: &str = "rpc_client_call_duration_seconds";
/// `rpc_server_slow_calls_total` (OTLP `paytrace.rpc.server.slow_calls`).
pub(crate) const SERVER_SLOW: &str = "rpc_server_slow_calls_total";
/// `rpc_client_slow_calls_total` (OTLP `paytrace.rpc.client.slow_calls`).
pub(crate) const CLIENT_SLOW: &str = "rpc_client_slow_calls_total";

const L_SYSTEM: &str = "rpc_system_name";
const L_METHOD: &str = "rpc_method";
const L_STATUS: &str = "rpc_response_status_code";

/// The Prometheus instruments of the gRPC layers, registered once per registry (both sides).
///
/// - `rpc_server_call_duration_seconds`, `rpc_client_call_duration_seconds` (histograms, the
///   OpenTelemetry advisory buckets 5 ms … 10 s, until the end of the response stream), labels
///   `rpc_system_name` (`grpc`), `rpc_method` (registered or learned methods, or `_OTHER`) and
///   `rpc_response_status_code` (`OK`, `CANCELLED`, …); the telemetry's own instruments carry
///   exemplars naming kept traces only (see the crate's README);
/// - `rpc_server_slow_calls_total`, `rpc_client_slow_calls_total` (counters), labels
///   `rpc_system_name`, `rpc_method`.
///
/// ```
/// let registry = prometheus::Registry::new();
/// let metrics = paytrace::grpc::GrpcMetrics::new(&registry)?;
/// # let _ = metrics;
/// assert!(paytrace::grpc::GrpcMetrics::new(&registry).is_err(), "names are taken");
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct GrpcMetrics {
    inner: Arc<Instruments>,
}

struct Instruments {
    server: HistogramVec,
    client: HistogramVec,
    server_slow: IntCounterVec,
    client_slow: IntCounterVec,
    /// Where kept calls leave their duration exemplars, when the registry has a store.
    exemplars: OnceLock<Arc<ExemplarStore>>,
}

/// The duration histogram of one (side, method, status) series, bound to its labels, and its
/// exemplars when the telemetry keeps them.
#[derive(Debug)]
pub(crate) struct DurationSeries {
    pub(crate) histogram: Histogram,
    pub(crate) exemplars: Option<Arc<SeriesExemplars>>,
}

impl std::fmt::Debug for GrpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcMetrics").finish_non_exhaustive()
    }
}

impl GrpcMetrics {
    /// Create the four `rpc_*` families and register them in `registry`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the registry refuses them, typically because they are
    /// registered there already (nothing stays registered then).
    ///
    /// ```
    /// let metrics = paytrace::grpc::GrpcMetrics::new(&prometheus::Registry::new())?;
    /// # let _ = metrics;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let set = Registration::new(registry);
        let histogram = |name: &str, help: &str| {
            let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
            set.add(
                name,
                HistogramVec::new(opts, &[L_SYSTEM, L_METHOD, L_STATUS]),
            )
        };
        let counter = |name: &str, help: &str| {
            set.add(
                name,
                IntCounterVec::new(Opts::new(name, help), &[L_SYSTEM, L_METHOD]),
            )
        };
        let inner = Instruments {
            server: histogram(
                SERVER_DURATION,
                "Duration of gRPC server calls, until the end of the response stream.",
            )?,
            client: histogram(
                CLIENT_DURATION,
                "Duration of gRPC client calls, until the end of the response stream.",
            )?,
            server_slow: counter(
                SERVER_SLOW,
                "gRPC server calls slower than the slow threshold.",
            )?,
            client_slow: counter(
                CLIENT_SLOW,
                "gRPC client calls slower than the slow threshold.",
            )?,
            exemplars: OnceLock::new(),
        };
        set.finish();
        Ok(GrpcMetrics {
            inner: Arc::new(inner),
        })
    }

    /// Keep duration exemplars of kept calls in `store` (the telemetry's, read by its
    /// `/metrics` and its OTLP metrics); the first store set stays.
    pub(crate) fn set_exemplars(&self, store: Arc<ExemplarStore>) {
        let _ = self.inner.exemplars.set(store);
    }

    pub(crate) fn duration(&self, side: Side, method: &str, code: Code) -> Option<DurationSeries> {
        let (vec, family) = match side {
            Side::Server => (&self.inner.server, SERVER_DURATION),
            Side::Client => (&self.inner.client, CLIENT_DURATION),
        };
        let status = name(code);
        let exemplars = self.inner.exemplars.get().map(|store| {
            store.series(
                family,
                &[(L_SYSTEM, "grpc"), (L_METHOD, method), (L_STATUS, status)],
                &DURATION_BUCKETS,
            )
        });
        Some(DurationSeries {
            histogram: vec
                .get_metric_with_label_values(&["grpc", method, status])
                .ok()?,
            exemplars,
        })
    }

    pub(crate) fn slow(&self, side: Side, method: &str) -> Option<IntCounter> {
        let vec = match side {
            Side::Server => &self.inner.server_slow,
            Side::Client => &self.inner.client_slow,
        };
        vec.get_metric_with_label_values(&["grpc", method]).ok()
    }
}
