//! The SDK-facing ends of the pipeline: a [`SpanProcessor`], a [`LogProcessor`] and a
//! [`PushMetricExporter`], each feeding an [`OtlpClient`] on the export runtime.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::logs::{Logger as _, LoggerProvider as _};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use prost::Message;
use tokio::runtime::Handle;

use super::batch::{BatchExport, Batcher, DrainError};
use super::client::OtlpClient;
use super::log_record::QueuedLog;
use super::otlp::{Encoded, Encoder};
use super::stats::SignalStats;

const INTERNAL_PREFIXES: [&str; 7] = [
    "paytrace::export",
    "h2",
    "hyper",
    "tonic",
    "tower",
    "rustls",
    "opentelemetry",
];

/// Targets whose records never go to the collector: paytrace's own export diagnostics and the
/// transport crates below it. Exporting them would feed a loop (a failed log export logging a
/// record that is exported, fails, and logs again).
pub(crate) fn is_internal_target(target: &str) -> bool {
    // Most targets (the service's own crates) start with none of the prefixes' first letters.
    if !matches!(
        target.as_bytes().first(),
        Some(b'p' | b'h' | b't' | b'r' | b'o')
    ) {
        return false;
    }
    INTERNAL_PREFIXES.iter().any(|p| {
        target.starts_with(p)
            && matches!(
                target.as_bytes().get(p.len()),
                None | Some(b':') | Some(b'_')
            )
    })
}

/// Sends encoded requests one after the other and counts each outcome.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) client: OtlpClient,
    pub(crate) stats: Arc<SignalStats>,
    /// Batches of one signal are exported one after the other: never contended.
    pub(crate) encoder: Mutex<Encoder>,
}

impl Sender {
    /// Encode and frame a batch; the lock is released before anything is sent.
    fn encode(&self, batch: impl FnOnce(&mut Encoder, &mut dyn FnMut(&[u8], u64))) -> Vec<Encoded> {
        let mut requests = Vec::new();
        let mut encoder = self.encoder.lock().unwrap_or_else(PoisonError::into_inner);
        batch(&mut encoder, &mut |body, items| {
            requests.push(Encoded {
                body: self.client.frame(body),
                items,
            })
        });
        requests
    }

    async fn send_all(&self, requests: Vec<Encoded>) -> Result<(), String> {
        let mut result = Ok(());
        for request in requests {
            match self.client.send(request.body).await {
                Ok(rejected) => self.stats.record_success(request.items, rejected),
                Err(e) => {
                    self.stats.record_failure(request.items, e.clone());
                    result = Err(e);
                }
            }
        }
        result
    }
}

impl BatchExport<SpanData> for Sender {
    async fn export(&self, batch: Vec<SpanData>) -> Result<(), String> {
        let requests = self.encode(|encoder, emit| encoder.spans(&batch, emit));
        // Freed now, not after the network round trip.
        drop(batch);
        self.send_all(requests).await
    }
}

impl BatchExport<QueuedLog> for Sender {
    async fn export(&self, batch: Vec<QueuedLog>) -> Result<(), String> {
        let requests = self.encode(|encoder, emit| encoder.logs(&batch, emit));
        // Freed now, not after the network round trip.
        drop(batch);
        self.send_all(requests).await
    }
}

fn sdk_error(e: DrainError) -> OTelSdkError {
    match e {
        DrainError::Timeout => OTelSdkError::Timeout(Duration::ZERO),
        DrainError::Failed(m) => OTelSdkError::InternalFailure(m),
    }
}

// === impl SpanQueue ===

/// The span processor: sampled spans enter a bounded queue on `on_end`; nothing else happens on
/// the request path.
#[derive(Debug, Clone)]
pub(crate) struct SpanQueue {
    queue: Arc<Batcher<SpanData>>,
    /// The configured shutdown timeout, which also bounds the provider's `force_flush`.
    flush_timeout: Duration,
}

impl SpanQueue {
    pub(crate) fn new(queue: Arc<Batcher<SpanData>>, flush_timeout: Duration) -> Self {
        SpanQueue {
            queue,
            flush_timeout,
        }
    }
}

impl SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Recorded-but-unsampled spans must not be exported (the SDK's batch processor does).
        if span.span_context.is_sampled() {
            self.queue.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.queue.flush(self.flush_timeout).map_err(sdk_error)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.queue.shutdown(timeout).map_err(sdk_error)
    }
}

// === impl LogQueue ===

/// The log processor, for records made through the Logs API: records enter a bounded queue;
/// internal targets are skipped. `tracing` events reach the same queue from paytrace's log
/// layers, without an SDK record.
#[derive(Debug, Clone)]
pub(crate) struct LogQueue {
    queue: Arc<Batcher<QueuedLog>>,
    /// An empty record, swapped in for the one taken (see `emit`).
    blank: SdkLogRecord,
    /// The configured shutdown timeout, which also bounds the provider's `force_flush`.
    flush_timeout: Duration,
}

impl LogQueue {
    /// The queue this processor feeds.
    pub(crate) fn queue(&self) -> &Arc<Batcher<QueuedLog>> {
        &self.queue
    }

    /// The provider's only processor: `emit` takes the record instead of copying it, which
    /// would leave nothing for a processor after it.
    pub(crate) fn new(queue: Arc<Batcher<QueuedLog>>, flush_timeout: Duration) -> Self {
        // The SDK makes empty records only through a logger; this provider has no processor
        // and is dropped at once.
        let blank = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .build()
            .logger("paytrace")
            .create_log_record();
        LogQueue {
            queue,
            blank,
            flush_timeout,
        }
    }
}

impl LogProcessor for LogQueue {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if let Some(target) = record.target() {
            if is_internal_target(target) {
                return;
            }
        }
        // Taken, not cloned: the SDK drops the record right after its processors ran, and a
        // clone copies the message and every attribute again.
        let record = std::mem::replace(record, self.blank.clone());
        self.queue
            .push(QueuedLog::Sdk(Box::new((record, scope.clone()))));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.queue.flush(self.flush_timeout).map_err(sdk_error)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.queue.shutdown(timeout).map_err(sdk_error)
    }
}

// === impl MetricSender ===

/// Exports the SDK meter provider's metrics (cumulative) through the export runtime.
#[derive(Debug, Clone)]
pub(crate) struct MetricSender {
    pub(crate) client: OtlpClient,
    /// What the SDK's reader is asked for, and the bridge converts to.
    pub(crate) temporality: Temporality,
    pub(crate) stats: Arc<SignalStats>,
    pub(crate) rt: Handle,
}

impl MetricSender {
    /// Send one metrics request on the export runtime, counting its data points.
    pub(crate) async fn send(&self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        let points = count_points(&request);
        if points == 0 {
            return Ok(());
        }
        let body = self.client.frame(&request.encode_to_vec());
        let client = self.client.clone();
        // Spawned on the export runtime so the caller (the SDK's reader thread, any executor)
        // only waits on a join handle.
        let outcome = match self.rt.spawn(async move { client.send(body).await }).await {
            Ok(r) => r,
            Err(e) => Err(format!("export task failed: {e}")),
        };
        match &outcome {
            Ok(rejected) => self.stats.record_success(points, *rejected),
            Err(e) => self.stats.record_failure(points, e.clone()),
        }
        outcome.map(|_| ())
    }
}

pub(crate) fn count_points(request: &ExportMetricsServiceRequest) -> u64 {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

impl PushMetricExporter for MetricSender {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.send(ExportMetricsServiceRequest::from(metrics))
            .await
            .map_err(OTelSdkError::InternalFailure)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use opentelemetry::trace::TraceFlags;

    use super::*;
    use crate::export::batch::BatchSettings;
    use crate::export::runtime::ExportRuntime;
    use crate::export::stats::ExportStats;
    use crate::export::Signal;

    /// An export that never finishes: a collector that accepts and never answers.
    struct Hang;

    impl<T: Send + 'static> BatchExport<T> for Hang {
        async fn export(&self, _batch: Vec<T>) -> Result<(), String> {
            std::future::pending().await
        }
    }

    fn hanging<T: crate::export::queue::Weigh + Send + 'static>(
        rt: &ExportRuntime,
    ) -> Arc<Batcher<T>> {
        let settings = BatchSettings {
            queue: Some(16),
            queue_bytes: 1 << 20,
            batch: 16,
            delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
        };
        let stats = ExportStats::new(&prometheus::Registry::new()).unwrap();
        Arc::new(Batcher::start(
            rt.handle(),
            settings,
            stats.get(Signal::Traces).clone(),
            Hang,
        ))
    }

    /// `force_flush` gives up after the configured timeout, not after a fixed 5 s.
    fn gives_up_within(flush: impl FnOnce() -> OTelSdkResult, timeout: Duration) {
        let started = Instant::now();
        assert!(flush().is_err(), "a hanging export cannot flush");
        let took = started.elapsed();
        assert!(took >= timeout, "returned before the timeout: {took:?}");
        assert!(
            took < Duration::from_secs(2),
            "ignored the configured timeout: {took:?}"
        );
    }

    #[test]
    fn span_flush_is_bounded_by_the_configured_timeout() {
        let rt = ExportRuntime::start().unwrap();
        let batcher = hanging(&rt);
        let timeout = Duration::from_millis(100);
        let queue = SpanQueue::new(batcher, timeout);
        queue.on_end(crate::fixtures::span(1, 1, 0, TraceFlags::SAMPLED));
        gives_up_within(|| queue.force_flush(), timeout);
    }

    #[test]
    fn log_flush_is_bounded_by_the_configured_timeout() {
        let rt = ExportRuntime::start().unwrap();
        let batcher = hanging(&rt);
        let timeout = Duration::from_millis(100);
        let queue = LogQueue::new(batcher, timeout);
        let mut record = queue.blank.clone();
        queue.emit(&mut record, &InstrumentationScope::builder("test").build());
        gives_up_within(|| queue.force_flush(), timeout);
    }

    #[test]
    fn internal_targets() {
        for t in [
            "paytrace::export",
            "paytrace::export::client",
            "h2",
            "h2::codec",
            "hyper_util::client",
            "tonic::transport",
            "tower::buffer",
        ] {
            assert!(is_internal_target(t), "{t}");
        }
        for t in [
            "paytrace::http",
            "payment_service",
            "h2o_app",
            "towering",
            "paytrace::watchdog",
        ] {
            assert!(!is_internal_target(t), "{t}");
        }
        // The first-letter check lets every prefix through to the full one.
        for prefix in INTERNAL_PREFIXES {
            assert!(is_internal_target(prefix), "{prefix}");
        }
    }
}
