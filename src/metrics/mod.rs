//! Metrics: the order pool's instruments, process and runtime gauges, and the two ways out —
//! Prometheus text (scrape `/metrics`) and OTLP (pushed every metric interval).
//!
//! paytrace keeps one set of instruments, in a `prometheus` registry owned by [`Telemetry`](crate::telemetry::Telemetry):
//! recording is an atomic add on a pre-bound instrument, and the Prometheus endpoint keeps
//! working while OTLP export fails (so the `paytrace_exporter_*` health figures stay visible).
//! A bridge converts the same registry to OTLP, so both sides show the same numbers. Metrics
//! recorded through the OpenTelemetry API (`telemetry.meter_provider()`) are exported over OTLP
//! by the SDK as usual.
//!
//! # Names: Prometheus ↔ OTLP
//!
//! The bridge names each family per OpenTelemetry conventions (`order_pool_processed_total`
//! on `/metrics` is `order.pool.processed` over OTLP) and maps label names to attribute keys
//! (`http_route` → `http.route`, `http_response_status_code` → `http.response.status_code`, an
//! integer; `rpc_*` likewise); other labels keep their names. A family with no series yet is
//! in neither output. Families without an OpenTelemetry name keep their Prometheus name. The
//! README carries the same table; `tests/metric_names.rs` checks both against the real
//! outputs.
//!
//! | Prometheus (`/metrics`) | OTLP (metric name) | OTLP unit |
//! |---|---|---|
//! | `order_pool_processed_total` | `order.pool.processed` | `{order}` |
//! | `order_pool_failed_total` | `order.pool.failed` | `{order}` |
//! | `order_pool_processing_seconds` | `order.pool.processing.duration` | `s` |
//! | `order_pool_size` | `order.pool.size` | `{order}` |
//! | `order_pool_capacity` | `order.pool.capacity` | `{order}` |
//! | `order_queue_length` | `order.queue.length` | `{order}` |
//! | `order_query_seconds` | `order.query.duration` | `s` |
//! | `order_query_failed_total` | `order.query.failed` | `{query}` |
//! | `order_redis_errors_total` | `order.redis.errors` | `{error}` |
//! | `order_channel_concurrency` | `order.channel.concurrency` | `{order}` |
//! | `order_road_concurrency` | `order.road.concurrency` | `{order}` |
//! | `order_face_value_concurrency` | `order.face_value.concurrency` | `{order}` |
//! | `http_server_request_duration_seconds` | `http.server.request.duration` | `s` |
//! | `http_server_active_requests` | `http.server.active_requests` | `{request}` |
//! | `http_server_request_body_size_bytes` | `http.server.request.body.size` | `By` |
//! | `http_server_response_body_size_bytes` | `http.server.response.body.size` | `By` |
//! | `http_server_slow_requests_total` | `paytrace.http.server.slow_requests` | `{request}` |
//! | `rpc_server_call_duration_seconds` | `rpc.server.call.duration` | `s` |
//! | `rpc_client_call_duration_seconds` | `rpc.client.call.duration` | `s` |
//! | `rpc_server_slow_calls_total` | `paytrace.rpc.server.slow_calls` | `{call}` |
//! | `rpc_client_slow_calls_total` | `paytrace.rpc.client.slow_calls` | `{call}` |
//! | `process_cpu_seconds_total` | `process.cpu.time` | `s` |
//! | `process_resident_memory_bytes` | `process.memory.usage` | `By` |
//! | `process_open_fds` | `process.open_file_descriptor.count` | `{file_descriptor}` |
//! | `process_threads` | `process.thread.count` | `{thread}` |
//! | `tokio_workers` | `tokio.workers` | `1` |
//! | `tokio_alive_tasks` | `tokio.alive_tasks` | `1` |
//! | `tokio_global_queue_depth` | `tokio.global_queue_depth` | `1` |
//! | `paytrace_exporter_items_exported_total` | `paytrace.exporter.items_exported` | `1` |
//! | `paytrace_exporter_items_rejected_total` | `paytrace.exporter.items_rejected` | `1` |
//! | `paytrace_exporter_items_failed_total` | `paytrace.exporter.items_failed` | `1` |
//! | `paytrace_exporter_items_dropped_total` | `paytrace.exporter.items_dropped` | `1` |
//! | `paytrace_exporter_queue_bytes` | `paytrace.exporter.queue_bytes` | `By` |
//! | `paytrace_exporter_queue_bytes_peak` | `paytrace.exporter.queue_bytes_peak` | `By` |
//! | `paytrace_exporter_exports_total` | `paytrace.exporter.exports` | `1` |
//! | `paytrace_exporter_export_failures_total` | `paytrace.exporter.export_failures` | `1` |
//! | `paytrace_exporter_state` | `paytrace.exporter.state` | `1` |
//! | `paytrace_exporter_last_success_timestamp_seconds` | `paytrace.exporter.last_success_timestamp_seconds` | `s` |
//! | `paytrace_sampling_traces_kept_total` | `paytrace.sampling.traces_kept` | `1` |
//! | `paytrace_sampling_traces_dropped_total` | `paytrace.sampling.traces_dropped` | `1` |
//! | `paytrace_sampling_traces_thinned_total` | `paytrace.sampling.traces_thinned` | `1` |
//! | `paytrace_sampling_late_spans_total` | `paytrace.sampling.late_spans` | `1` |
//! | `paytrace_sampling_traces_evicted_total` | `paytrace.sampling.traces_evicted` | `1` |
//! | `paytrace_sampling_buffered_bytes` | `paytrace.sampling.buffered_bytes` | `By` |
//! | `paytrace_log_records_dropped_total` | `paytrace.log.records_dropped` | `1` |
//! | `paytrace_control_changes_total` | `paytrace.control.changes` | `1` |
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), paytrace::Error> {
//! let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
//! let pool = paytrace::metrics::OrderPoolMetrics::new(&telemetry)?;
//! pool.set_queue_length(3);
//! let app: axum::Router = axum::Router::new().route_service("/metrics", telemetry.metrics_service());
//! assert!(telemetry.prometheus_text().contains("order_queue_length 3"));
//! # let _ = app; Ok(()) }
//! ```

mod dropped;
#[cfg(feature = "metrics-endpoint")]
mod endpoint;
#[cfg(feature = "metrics-endpoint")]
mod openmetrics;
mod order_pool;
pub(crate) mod process;
mod registration;

use std::time::{Duration, SystemTime};

pub(crate) use dropped::DroppedCollector;
#[cfg(feature = "metrics-endpoint")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics-endpoint")))]
pub use endpoint::MetricsEndpoint;
#[cfg(feature = "metrics-endpoint")]
pub use openmetrics::OPENMETRICS_CONTENT_TYPE;
pub use order_pool::{
    OrderPoolMetrics, OrderPoolMetricsBuilder, ProcessingTimer, ABANDONED, DEFAULT_FAILURE_REASONS,
    OTHER, PROCESSING_BUCKETS, QUERY_BUCKETS,
};
pub(crate) use registration::Registration;

use crate::error::Error;
use crate::export::batch::DrainError;

/// The content type of Prometheus text exposition 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every family of `registry` as Prometheus text 0.0.4.
pub(crate) fn render(registry: &prometheus::Registry) -> String {
    // Encoding gathered families into a String cannot fail for families the registry produced.
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}

/// Register the process collector; called once per Telemetry.
pub(crate) fn register_defaults(registry: &prometheus::Registry) -> Result<(), Error> {
    let err = |e: prometheus::Error| Error::invalid("metrics registry", "process_*", e);
    registry
        .register(Box::new(process::ProcessCollector::new().map_err(err)?))
        .map_err(err)
}

/// Pushes the registry over OTLP: what the periodic task and the final flush share.
#[derive(Debug, Clone)]
pub(crate) struct Bridge {
    registry: prometheus::Registry,
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    sender: crate::export::processor::MetricSender,
    start: SystemTime,
    exemplars: std::sync::Arc<crate::exemplars::ExemplarStore>,
    /// Previous values, when the exporter asks for delta temporality.
    deltas: Option<std::sync::Arc<std::sync::Mutex<crate::export::otlp::delta::Deltas>>>,
}

impl Bridge {
    pub(crate) fn new(
        registry: prometheus::Registry,
        resource: &opentelemetry_sdk::Resource,
        sender: crate::export::processor::MetricSender,
        exemplars: std::sync::Arc<crate::exemplars::ExemplarStore>,
    ) -> Self {
        use opentelemetry_sdk::metrics::Temporality;
        let deltas = match sender.temporality {
            Temporality::Delta => Some(false),
            Temporality::LowMemory => Some(true),
            _ => None,
        }
        .map(|low_memory| {
            std::sync::Arc::new(std::sync::Mutex::new(
                crate::export::otlp::delta::Deltas::new(low_memory),
            ))
        });
        Bridge {
            registry,
            resource: crate::export::otlp::proto_resource(resource),
            sender,
            start: SystemTime::now(),
            exemplars,
            deltas,
        }
    }

    async fn push(&self) -> Result<(), String> {
        let mut request = crate::export::otlp::metrics::to_request(
            &self.registry.gather(),
            &self.resource,
            self.start,
            SystemTime::now(),
            Some(&self.exemplars),
        );
        if let Some(deltas) = &self.deltas {
            deltas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .apply(&mut request);
        }
        self.sender.send(request).await
    }

    /// Push every `interval` on `rt` until the runtime stops.
    pub(crate) fn spawn(&self, rt: &tokio::runtime::Handle, interval: Duration) {
        let bridge = self.clone();
        rt.spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let _ = bridge.push().await;
            }
        });
    }

    /// Push once now on `rt` and wait at most `timeout` (flush and shutdown).
    pub(crate) fn push_now(
        &self,
        rt: &tokio::runtime::Handle,
        timeout: Duration,
    ) -> Result<(), DrainError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let bridge = self.clone();
        rt.spawn(async move {
            let _ = tx.send(bridge.push().await);
        });
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DrainError::Failed(e)),
            Err(_) => Err(DrainError::Timeout),
        }
    }
}
