//! An in-process OTLP/gRPC receiver for tests: [`TestCollector`].
//!
//! The collector serves the three official OTLP services (traces, metrics, logs) on a local port,
//! accepts gzip-compressed requests, and records every request it receives together with the
//! `grpc-encoding` it arrived with and the time of arrival. Tests point an exporter at
//! [`TestCollector::endpoint`], then read what arrived with [`TestCollector::spans`],
//! [`TestCollector::log_records`] and [`TestCollector::metrics`], or wait for it with the
//! `wait_for_*` helpers.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use opentelemetry::trace::{Tracer, TracerProvider};
//! use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
//! use paytrace::testing::TestCollector;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let collector = TestCollector::start().await?;
//!
//!     let exporter = opentelemetry_otlp::SpanExporter::builder()
//!         .with_tonic()
//!         .with_endpoint(collector.endpoint())
//!         .with_compression(opentelemetry_otlp::Compression::Gzip)
//!         .build()?;
//!     let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!         .with_batch_exporter(exporter)
//!         .build();
//!     provider.tracer("checkout").in_span("charge card", |_cx| {});
//!     provider.force_flush()?;
//!
//!     let span = collector
//!         .wait_for_span("charge card", Duration::from_secs(5))
//!         .await
//!         .expect("the span reaches the collector");
//!     assert_eq!(span.scope, "checkout");
//!     assert_eq!(span.trace_id_hex().len(), 32);
//!     assert_eq!(collector.encodings(), [Some("gzip".to_owned())]);
//!
//!     provider.shutdown()?;
//!     collector.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! # Customization
//!
//! [`TestCollector::set_fault`] makes the collector misbehave from the next request on, to test
//! retries, timeouts and the exporter-health watchdog: refuse with `UNAVAILABLE`
//! ([`Fault::Refuse`]), answer with any other status ([`Fault::Reject`]), answer late
//! ([`Fault::Delay`]) or never ([`Fault::Hang`]). [`TestCollector::stop`] followed by
//! [`TestCollector::start_on`] with the same address simulates a collector restart.
//!
//! # What is recorded, and when
//!
//! A request is recorded as soon as it has been received and decoded, *before* the fault is
//! applied: refused, rejected, delayed and hanging requests are all recorded, and
//! [`Received::fault`] says how each was answered. The flattened views ([`TestCollector::spans`]
//! and friends) include the data of every recorded request, whatever its fault, in order of
//! arrival.
//!
//! The `wait_for_*` helpers and [`TestCollector::wait_until`] measure their timeout on Tokio's
//! clock. Under a paused clock (`start_paused`) Tokio advances time whenever the runtime is idle,
//! including while it waits for the network, so use real time in tests that wait for exports.
//!
//! The proto types needed to read what arrived are re-exported here (and all of them under
//! [`proto`]), so tests need no direct `opentelemetry-proto` dependency.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    self, LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    self, MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::codegen::tokio_stream::Stream;
use tonic::transport::server::Connected;
use tonic::Status;

pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
pub use opentelemetry_proto::tonic::logs::v1::LogRecord;
pub use opentelemetry_proto::tonic::metrics::v1::Metric;
pub use opentelemetry_proto::tonic::trace::v1::Span;
pub use tonic::Code;

/// Largest request the collector decodes. tonic's default (4 MiB) is smaller than a full batch
/// of large spans, and a test collector should never be the reason an export fails.
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

// === impl TestCollector ===

/// An in-process OTLP/gRPC collector that records what it receives.
///
/// It serves the trace, metrics and logs services on a local TCP port, in the Tokio runtime it
/// was started from, accepting and sending gzip. See the [module docs](self) for a complete
/// example with an OTLP exporter.
///
/// Dropping the collector stops it like [`TestCollector::stop`] does, except that the listening
/// socket is closed by the runtime shortly after rather than before `drop` returns.
///
/// # Example
///
/// ```
/// use paytrace::testing::TestCollector;
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let collector = TestCollector::start().await?;
///     assert!(collector.endpoint().starts_with("http://127.0.0.1:"));
///     assert_eq!(collector.request_count(), 0);
///     Ok(())
/// }
/// ```
pub struct TestCollector {
    addr: SocketAddr,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
    server: JoinHandle<()>,
}

impl TestCollector {
    /// Starts a collector on `127.0.0.1` with a port chosen by the OS.
    ///
    /// The server runs as a task of the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when called outside a Tokio runtime or when the socket cannot be bound.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// assert_ne!(collector.addr().port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start() -> io::Result<TestCollector> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a collector on `addr`.
    ///
    /// Use it with the address of a stopped collector to simulate a collector restart: clients
    /// keep their endpoint and reconnect. Port `0` lets the OS choose a free port.
    ///
    /// # Errors
    ///
    /// Fails when called outside a Tokio runtime or when `addr` cannot be bound (for instance
    /// because another collector still listens on it).
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::TestCollector;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let first = TestCollector::start().await?;
    /// let addr = first.addr();
    /// first.stop().await;
    ///
    /// let restarted = TestCollector::start_on(addr).await?;
    /// assert_eq!(restarted.addr(), addr);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_on(addr: SocketAddr) -> io::Result<TestCollector> {
        // Binding and spawning both panic outside a runtime; report that as an error instead.
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;

        let shared = Arc::new(Shared::new());
        let connections = Arc::new(Connections::default());
        let router = Router::new(Recorder {
            shared: Arc::clone(&shared),
        });
        let incoming = Incoming {
            listener,
            connections: Arc::clone(&connections),
        };
        let server = runtime.spawn(async move {
            // tonic only fails here if building a per-connection service fails, which ours cannot;
            // and a test fixture has no one to report to but the test, which will see no data.
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming(router, incoming)
                .await;
        });

        Ok(TestCollector {
            addr,
            shared,
            connections,
            server,
        })
    }

    /// The address the collector listens on.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// assert!(collector.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to give an OTLP/gRPC exporter, such as `http://127.0.0.1:4317`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// assert_eq!(collector.endpoint(), format!("http://{}", collector.addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets how the collector answers, from the next request on.
    ///
    /// Defaults to [`Fault::None`]. Requests already being answered keep their fault. The fault
    /// survives [`TestCollector::clear`].
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{Code, Fault, TestCollector};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = TestCollector::start().await?;
    /// collector.set_fault(Fault::Refuse);
    /// // ... the exporter sees UNAVAILABLE and retries ...
    /// collector.set_fault(Fault::Reject(Code::ResourceExhausted));
    /// // ... and now RESOURCE_EXHAUSTED ...
    /// collector.set_fault(Fault::None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }

    /// Stops serving, closes the listening socket and drops every open connection.
    ///
    /// When this returns the port is free for [`TestCollector::start_on`], and clients see the
    /// collector go away: their in-flight calls (including ones held by [`Fault::Hang`]) fail
    /// and their next calls must reconnect.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// let addr = collector.addr();
    /// collector.stop().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(mut self) {
        self.server.abort();
        // Awaiting the aborted task means its future, and with it the listener, has been dropped.
        // The result is the cancellation we asked for.
        let _ = (&mut self.server).await;
        // tonic serves each connection in a task of its own, which the abort does not reach.
        self.connections.close_all();
    }

    /// Every trace export request received so far, in order of arrival.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportTraceServiceRequest, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = TraceServiceClient::connect(collector.endpoint()).await?;
    /// client.export(ExportTraceServiceRequest::default()).await?;
    ///
    /// let requests = collector.trace_requests();
    /// assert_eq!(requests.len(), 1);
    /// assert_eq!(requests[0].encoding, None); // this client does not compress
    /// # Ok(())
    /// # }
    /// ```
    pub fn trace_requests(&self) -> Vec<Received<ExportTraceServiceRequest>> {
        self.shared.lock().traces.clone()
    }

    /// Every metrics export request received so far, in order of arrival.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportMetricsServiceRequest, TestCollector};
    /// use proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = MetricsServiceClient::connect(collector.endpoint()).await?;
    /// client.export(ExportMetricsServiceRequest::default()).await?;
    ///
    /// assert_eq!(collector.metric_requests().len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn metric_requests(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        self.shared.lock().metrics.clone()
    }

    /// Every logs export request received so far, in order of arrival.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportLogsServiceRequest, TestCollector};
    /// use proto::collector::logs::v1::logs_service_client::LogsServiceClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = LogsServiceClient::connect(collector.endpoint()).await?;
    /// client.export(ExportLogsServiceRequest::default()).await?;
    ///
    /// assert_eq!(collector.log_requests().len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn log_requests(&self) -> Vec<Received<ExportLogsServiceRequest>> {
        self.shared.lock().logs.clone()
    }

    /// Every span received so far, in order of arrival, each with its resource and scope.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportTraceServiceRequest, Span, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    /// use proto::trace::v1::{ResourceSpans, ScopeSpans};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let span = Span { name: "charge card".into(), ..Default::default() };
    /// let request = ExportTraceServiceRequest {
    ///     resource_spans: vec![ResourceSpans {
    ///         scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
    ///         ..Default::default()
    ///     }],
    /// };
    /// TraceServiceClient::connect(collector.endpoint()).await?.export(request).await?;
    ///
    /// let spans = collector.spans();
    /// assert_eq!(spans.len(), 1);
    /// assert_eq!(spans[0].name(), "charge card");
    /// # Ok(())
    /// # }
    /// ```
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let state = self.shared.lock();
        let mut spans = Vec::new();
        for received in &state.traces {
            for resource_spans in &received.message.resource_spans {
                let resource = resource_attributes(&resource_spans.resource);
                for scope_spans in &resource_spans.scope_spans {
                    let scope = scope_name(&scope_spans.scope);
                    spans.extend(scope_spans.spans.iter().map(|span| ReceivedSpan {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span: span.clone(),
                    }));
                }
            }
        }
        spans
    }

    /// Every log record received so far, in order of arrival, each with its resource and scope.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportLogsServiceRequest, LogRecord, TestCollector};
    /// use proto::collector::logs::v1::logs_service_client::LogsServiceClient;
    /// use proto::logs::v1::{ResourceLogs, ScopeLogs};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let record = LogRecord { severity_text: "WARN".into(), ..Default::default() };
    /// let request = ExportLogsServiceRequest {
    ///     resource_logs: vec![ResourceLogs {
    ///         scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
    ///         ..Default::default()
    ///     }],
    /// };
    /// LogsServiceClient::connect(collector.endpoint()).await?.export(request).await?;
    ///
    /// let logs = collector.log_records();
    /// assert_eq!(logs.len(), 1);
    /// assert_eq!(logs[0].severity_text(), "WARN");
    /// # Ok(())
    /// # }
    /// ```
    pub fn log_records(&self) -> Vec<ReceivedLog> {
        let state = self.shared.lock();
        let mut logs = Vec::new();
        for received in &state.logs {
            for resource_logs in &received.message.resource_logs {
                let resource = resource_attributes(&resource_logs.resource);
                for scope_logs in &resource_logs.scope_logs {
                    let scope = scope_name(&scope_logs.scope);
                    logs.extend(scope_logs.log_records.iter().map(|record| ReceivedLog {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        record: record.clone(),
                    }));
                }
            }
        }
        logs
    }

    /// Every metric received so far, in order of arrival, each with its resource and scope.
    ///
    /// Exporters resend each metric on every collection, so a metric name usually appears many
    /// times; [`TestCollector::wait_for_metric`] returns the newest.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportMetricsServiceRequest, Metric, TestCollector};
    /// use proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    /// use proto::metrics::v1::{ResourceMetrics, ScopeMetrics};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let metric = Metric { name: "orders.pending".into(), ..Default::default() };
    /// let request = ExportMetricsServiceRequest {
    ///     resource_metrics: vec![ResourceMetrics {
    ///         scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
    ///         ..Default::default()
    ///     }],
    /// };
    /// MetricsServiceClient::connect(collector.endpoint()).await?.export(request).await?;
    ///
    /// assert_eq!(collector.metrics()[0].name(), "orders.pending");
    /// # Ok(())
    /// # }
    /// ```
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        let state = self.shared.lock();
        let mut metrics = Vec::new();
        for received in &state.metrics {
            for resource_metrics in &received.message.resource_metrics {
                let resource = resource_attributes(&resource_metrics.resource);
                for scope_metrics in &resource_metrics.scope_metrics {
                    let scope = scope_name(&scope_metrics.scope);
                    metrics.extend(scope_metrics.metrics.iter().map(|metric| ReceivedMetric {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        metric: metric.clone(),
                    }));
                }
            }
        }
        metrics
    }

    /// The `grpc-encoding` of every request of every signal, in order of arrival.
    ///
    /// `Some("gzip")` for a gzip-compressed request, `None` for a request sent without the header
    /// (uncompressed).
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportTraceServiceRequest, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    /// use tonic::codec::CompressionEncoding;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = TraceServiceClient::connect(collector.endpoint())
    ///     .await?
    ///     .send_compressed(CompressionEncoding::Gzip);
    /// client.export(ExportTraceServiceRequest::default()).await?;
    ///
    /// assert_eq!(collector.encodings(), [Some("gzip".to_owned())]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn encodings(&self) -> Vec<Option<String>> {
        self.shared.lock().encodings.clone()
    }

    /// How many requests of all signals have been received, including those answered with a
    /// [`Fault`].
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, Code, ExportTraceServiceRequest, Fault, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// collector.set_fault(Fault::Refuse);
    /// let mut client = TraceServiceClient::connect(collector.endpoint()).await?;
    /// let refused = client.export(ExportTraceServiceRequest::default()).await.unwrap_err();
    ///
    /// assert_eq!(refused.code(), Code::Unavailable);
    /// assert_eq!(collector.request_count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn request_count(&self) -> usize {
        self.shared.lock().encodings.len()
    }

    /// Forgets everything received so far. The current [`Fault`] is kept.
    ///
    /// # Example
    ///
    /// ```
    /// use paytrace::testing::{proto, ExportTraceServiceRequest, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = TraceServiceClient::connect(collector.endpoint()).await?;
    /// client.export(ExportTraceServiceRequest::default()).await?;
    ///
    /// collector.clear();
    /// assert_eq!(collector.request_count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.traces.clear();
        state.metrics.clear();
        state.logs.clear();
        state.encodings.clear();
    }

    /// Waits until at least `n` spans have arrived or `timeout` has passed, and returns every
    /// span received by then (fewer than `n` on timeout).
    ///
    /// Returns as soon as the `n`th span arrives; it sleeps between requests rather than polling.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// // Nothing exports to this collector, so the wait times out.
    /// let spans = collector.wait_for_spans(1, Duration::from_millis(10)).await;
    /// assert!(spans.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        self.wait_for(timeout, |collector| {
            (collector.shared.lock().span_count() >= n).then_some(())
        })
        .await;
        self.spans()
    }

    /// Waits until a span named `name` has arrived, and returns the first such span; `None` if
    /// none arrived within `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use paytrace::testing::{proto, ExportTraceServiceRequest, Span, TestCollector};
    /// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    /// use proto::trace::v1::{ResourceSpans, ScopeSpans};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let collector = TestCollector::start().await?;
    /// let mut client = TraceServiceClient::connect(collector.endpoint()).await?;
    /// tokio::spawn(async move {
    ///     let span = Span { name: "refund".into(), ..Default::default() };
    ///     let request = ExportTraceServiceRequest {
    ///         resource_spans: vec![ResourceSpans {
    ///             scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
    ///             ..Default::default()
    ///         }],
    ///     };
    ///     client.export(request).await
    /// });
    ///
    /// let span = collector.wait_for_span("refund", Duration::from_secs(5)).await;
    /// assert!(span.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_span(&self, name: &str, timeout: Duration) -> Option<ReceivedSpan> {
        self.wait_for(timeout, |collector| {
            collector
                .spans()
                .into_iter()
                .find(|span| span.name() == name)
        })
        .await
    }

    /// Waits until at least `n` log records have arrived or `timeout` has passed, and returns
    /// every log record received by then (fewer than `n` on timeout).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// // Waiting for zero records returns at once.
    /// let logs = collector.wait_for_logs(0, Duration::from_secs(60)).await;
    /// assert!(logs.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_logs(&self, n: usize, timeout: Duration) -> Vec<ReceivedLog> {
        self.wait_for(timeout, |collector| {
            (collector.shared.lock().log_count() >= n).then_some(())
        })
        .await;
        self.log_records()
    }

    /// Waits until a metric named `name` has arrived, and returns the newest one received (the
    /// exporter's latest view of that metric); `None` if none arrived within `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// let metric = collector.wait_for_metric("orders.pending", Duration::from_millis(10)).await;
    /// assert!(metric.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_metric(&self, name: &str, timeout: Duration) -> Option<ReceivedMetric> {
        self.wait_for(timeout, |collector| {
            let mut metrics = collector.metrics();
            metrics.reverse();
            metrics.into_iter().find(|metric| metric.name() == name)
        })
        .await
    }

    /// Waits until `pred` holds or `timeout` has passed; returns whether `pred` held.
    ///
    /// `pred` is checked at once and again after each request received.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start().await?;
    /// let two_requests = collector
    ///     .wait_until(Duration::from_millis(10), |c| c.request_count() >= 2)
    ///     .await;
    /// assert!(!two_requests);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&TestCollector) -> bool,
    ) -> bool {
        self.wait_for(timeout, |collector| pred(collector).then_some(()))
            .await
            .is_some()
    }

    /// Runs `probe` now and after every recorded request until it finds something or `timeout`
    /// passes; then runs it one last time.
    async fn wait_for<R>(
        &self,
        timeout: Duration,
        mut probe: impl FnMut(&Self) -> Option<R>,
    ) -> Option<R> {
        // `None` when the deadline overflows the clock: wait without one.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        // Subscribing before probing means no request recorded after the probe goes unnoticed.
        let mut changes = self.shared.changes.subscribe();
        loop {
            if let Some(found) = probe(self) {
                return Some(found);
            }
            let changed = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .is_ok_and(|changed| changed.is_ok()),
                None => changes.changed().await.is_ok(),
            };
            if !changed {
                // Timed out. (The sender lives in `self.shared`, so it cannot have been dropped.)
                return probe(self);
            }
        }
    }
}

impl fmt::Debug for TestCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("TestCollector")
            .field("addr", &self.addr)
            .field("fault", &state.fault)
            .field("requests", &state.encodings.len())
            .finish_non_exhaustive()
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        // Neither call can panic or block: `abort` only flags the task, and closing connections
        // only shuts sockets down. After `stop` both are no-ops.
        self.server.abort();
        self.connections.close_all();
    }
}

// === impl Fault ===

/// How the collector answers requests; set with [`TestCollector::set_fault`].
///
/// Every request is recorded before its fault is applied, whatever the fault.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// use paytrace::testing::{Code, Fault};
///
/// let faults = [
///     Fault::None,
///     Fault::Refuse,
///     Fault::Delay(Duration::from_millis(500)),
///     Fault::Hang,
///     Fault::Reject(Code::InvalidArgument),
/// ];
/// assert_eq!(Fault::default(), Fault::None);
/// # let _ = faults;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer every request `OK` at once (the default).
    #[default]
    None,
    /// Answer every request with `UNAVAILABLE`, as a collector shedding load does. OTLP exporters
    /// retry this code.
    Refuse,
    /// Wait this long, then answer `OK`.
    Delay(Duration),
    /// Accept the request and never answer, until the client gives up or the collector stops.
    Hang,
    /// Answer every request with this status code.
    Reject(Code),
}

// === impl Received ===

/// One export request as the collector received it.
///
/// # Example
///
/// ```
/// use paytrace::testing::{proto, ExportTraceServiceRequest, Fault, TestCollector};
/// use proto::collector::trace::v1::trace_service_client::TraceServiceClient;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let collector = TestCollector::start().await?;
/// let mut client = TraceServiceClient::connect(collector.endpoint()).await?;
/// client.export(ExportTraceServiceRequest::default()).await?;
///
/// let received = &collector.trace_requests()[0];
/// assert_eq!(received.message, ExportTraceServiceRequest::default());
/// assert_eq!(received.encoding, None);
/// assert_eq!(received.fault, Fault::None);
/// assert!(received.at.elapsed().as_secs() < 60);
/// # Ok(())
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Received<T> {
    /// The decoded request.
    pub message: T,
    /// The request's `grpc-encoding` header: `Some("gzip")` when gzip-compressed, `None` when
    /// the header was absent.
    pub encoding: Option<String>,
    /// When the request had been received and decoded.
    pub at: Instant,
    /// How the collector answered it; [`Fault::None`] means `OK`.
    pub fault: Fault,
    /// The request's ASCII metadata (gRPC headers), names lowercase, e.g. an auth header the
    /// exporter was configured to send.
    pub headers: Vec<(String, String)>,
}

// === impl ReceivedSpan ===

/// A span as received, with the attributes of its resource and the name of its
/// instrumentation scope.
///
/// # Example
///
/// ```
/// use paytrace::testing::{proto, ReceivedSpan, Span};
///
/// let span = ReceivedSpan {
///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
///     scope: "checkout".to_owned(),
///     span: Span {
///         name: "charge card".into(),
///         trace_id: vec![0xab; 16],
///         span_id: vec![0x01; 8],
///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("retries", 2)]).0,
///         ..Default::default()
///     },
/// };
/// assert_eq!(span.name(), "charge card");
/// assert_eq!(span.attr_str("retries").as_deref(), Some("2"));
/// assert_eq!(span.resource_attr_str("service.name").as_deref(), Some("pay"));
/// assert_eq!(span.span_id_hex(), "0101010101010101");
/// assert_eq!(span.parent_span_id_hex(), ""); // a root span
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The attributes of the resource the span was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the span's instrumentation scope (the tracer name); empty if it had none.
    pub scope: String,
    /// The span itself.
    pub span: Span,
}

impl ReceivedSpan {
    /// The span's name.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { name: "capture".into(), ..Default::default() },
    /// };
    /// assert_eq!(span.name(), "capture");
    /// ```
    pub fn name(&self) -> &str {
        &self.span.name
    }

    /// The value of the span attribute `key`, if the span has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("amount", 12.5)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// let amount = span.attr("amount").and_then(|v| v.value.clone());
    /// assert_eq!(amount, Some(Value::DoubleValue(12.5)));
    /// assert!(span.attr("currency").is_none());
    /// ```
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find_attr(&self.span.attributes, key)
    }

    /// The value of the span attribute `key` rendered as text.
    ///
    /// Strings as they are, integers, booleans and doubles in their usual form (`42`, `true`,
    /// `12.5`), bytes in lowercase hex, arrays as `[a, b]` and key-value lists as `{k: v}`.
    /// `None` if the span lacks the attribute or its value is empty.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span {
    ///         attributes: proto::Attributes::from([
    ///             opentelemetry::KeyValue::new("http.response.status_code", 402),
    ///             opentelemetry::KeyValue::new("retried", true),
    ///         ])
    ///         .0,
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(span.attr_str("http.response.status_code").as_deref(), Some("402"));
    /// assert_eq!(span.attr_str("retried").as_deref(), Some("true"));
    /// ```
    pub fn attr_str(&self, key: &str) -> Option<String> {
        self.attr(key).and_then(render)
    }

    /// The trace id as 32 lowercase hex digits.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { trace_id: vec![0x0a; 16], ..Default::default() },
    /// };
    /// assert_eq!(span.trace_id_hex(), "0a".repeat(16));
    /// ```
    pub fn trace_id_hex(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { span_id: vec![0xff; 8], ..Default::default() },
    /// };
    /// assert_eq!(span.span_id_hex(), "ffffffffffffffff");
    /// ```
    pub fn span_id_hex(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id as 16 lowercase hex digits; empty for a root span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let child = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { parent_span_id: vec![0x12; 8], ..Default::default() },
    /// };
    /// assert_eq!(child.parent_span_id_hex(), "1212121212121212");
    /// ```
    pub fn parent_span_id_hex(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     span: Span::default(),
    /// };
    /// assert_eq!(span.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }
}

// === impl ReceivedLog ===

/// A log record as received, with the attributes of its resource and the name of its
/// instrumentation scope.
///
/// # Example
///
/// ```
/// use paytrace::testing::{any_value::Value, AnyValue, LogRecord, ReceivedLog};
///
/// let log = ReceivedLog {
///     resource: vec![],
///     scope: "paytrace".to_owned(),
///     record: LogRecord {
///         severity_text: "ERROR".into(),
///         body: Some(AnyValue { value: Some(Value::StringValue("card declined".into())) }),
///         trace_id: vec![0x01; 16],
///         ..Default::default()
///     },
/// };
/// assert_eq!(log.body_str().as_deref(), Some("card declined"));
/// assert_eq!(log.severity_text(), "ERROR");
/// assert_eq!(log.trace_id_hex(), "01".repeat(16));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLog {
    /// The attributes of the resource the record was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the record's instrumentation scope; empty if it had none.
    pub scope: String,
    /// The log record itself.
    pub record: LogRecord,
}

impl ReceivedLog {
    /// The body rendered as text, like [`ReceivedSpan::attr_str`]; `None` without a body.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, AnyValue, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         body: Some(AnyValue { value: Some(Value::StringValue("refund issued".into())) }),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(log.body_str().as_deref(), Some("refund issued"));
    /// ```
    pub fn body_str(&self) -> Option<String> {
        self.record.body.as_ref().and_then(render)
    }

    /// The value of the record attribute `key`, if the record has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("order_id", 42)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// let order_id = log.attr("order_id").and_then(|v| v.value.clone());
    /// assert_eq!(order_id, Some(Value::IntValue(42)));
    /// ```
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find_attr(&self.record.attributes, key)
    }

    /// The value of the record attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("order_id", 42)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(log.attr_str("order_id").as_deref(), Some("42"));
    /// ```
    pub fn attr_str(&self, key: &str) -> Option<String> {
        self.attr(key).and_then(render)
    }

    /// The trace id as 32 lowercase hex digits; empty for a record logged outside any span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog { resource: vec![], scope: String::new(), record: LogRecord::default() };
    /// assert_eq!(log.trace_id_hex(), "");
    /// ```
    pub fn trace_id_hex(&self) -> String {
        hex(&self.record.trace_id)
    }

    /// The span id as 16 lowercase hex digits; empty for a record logged outside any span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord { span_id: vec![0xbe, 0xef, 0, 0, 0, 0, 0, 1], ..Default::default() },
    /// };
    /// assert_eq!(log.span_id_hex(), "beef000000000001");
    /// ```
    pub fn span_id_hex(&self) -> String {
        hex(&self.record.span_id)
    }

    /// The severity text, such as `INFO` or `ERROR`; empty if the record has none.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord { severity_text: "INFO".into(), ..Default::default() },
    /// };
    /// assert_eq!(log.severity_text(), "INFO");
    /// ```
    pub fn severity_text(&self) -> &str {
        &self.record.severity_text
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     record: LogRecord::default(),
    /// };
    /// assert_eq!(log.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }
}

// === impl ReceivedMetric ===

/// A metric as received, with the attributes of its resource and the name of its
/// instrumentation scope (the meter name).
///
/// The helpers read the metric's data points: [`ReceivedMetric::points`] lists them all, and
/// [`ReceivedMetric::point`], [`ReceivedMetric::sum_value`], [`ReceivedMetric::gauge_value`] and
/// the `histogram_*` helpers pick the newest point whose attributes include a given subset.
///
/// # Example
///
/// ```
/// use paytrace::testing::{proto, Metric, ReceivedMetric};
/// use proto::metrics::v1::{metric::Data, number_data_point::Value, NumberDataPoint, Sum};
///
/// let point = |status: &str, value: i64| NumberDataPoint {
///     attributes: proto::Attributes::from([opentelemetry::KeyValue::new("status", status.to_owned())]).0,
///     value: Some(Value::AsInt(value)),
///     ..Default::default()
/// };
/// let metric = ReceivedMetric {
///     resource: vec![],
///     scope: "paytrace".to_owned(),
///     metric: Metric {
///         name: "payments".into(),
///         data: Some(Data::Sum(Sum {
///             data_points: vec![point("approved", 7), point("declined", 2)],
///             ..Default::default()
///         })),
///         ..Default::default()
///     },
/// };
/// assert_eq!(metric.sum_value(&[("status", "declined")]), Some(2.0));
/// assert_eq!(metric.gauge_value(&[]), None); // a sum, not a gauge
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMetric {
    /// The attributes of the resource the metric was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the metric's instrumentation scope (the meter name); empty if it had none.
    pub scope: String,
    /// The metric itself.
    pub metric: Metric,
}

impl ReceivedMetric {
    /// The metric's name.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{Metric, ReceivedMetric};
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric { name: "orders.pending".into(), ..Default::default() },
    /// };
    /// assert_eq!(metric.name(), "orders.pending");
    /// ```
    pub fn name(&self) -> &str {
        &self.metric.name
    }

    /// Every data point of the metric, in the order the exporter sent them.
    ///
    /// Sums and gauges give [`PointValue::Number`] (integers converted to `f64`), histograms
    /// [`PointValue::Histogram`]. Exponential histograms, summaries and number points without a
    /// value are left out; read those from [`ReceivedMetric::metric`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, MetricPoint, PointValue, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         name: "payment.duration".into(),
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint {
    ///                 count: 3,
    ///                 sum: Some(0.6),
    ///                 explicit_bounds: vec![0.1, 0.5],
    ///                 bucket_counts: vec![1, 1, 1],
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// let expected = MetricPoint {
    ///     attributes: vec![],
    ///     value: PointValue::Histogram {
    ///         count: 3,
    ///         sum: 0.6,
    ///         bounds: vec![0.1, 0.5],
    ///         bucket_counts: vec![1, 1, 1],
    ///     },
    /// };
    /// assert_eq!(metric.points(), [expected]);
    /// ```
    pub fn points(&self) -> Vec<MetricPoint> {
        self.timed_points()
            .into_iter()
            .map(|(_, point)| point)
            .collect()
    }

    /// The newest data point (by timestamp; the last one on a tie) whose attributes include
    /// every `(key, value)` pair of `attrs`, compared as rendered text. `&[]` matches any point.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, PointValue, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, Gauge, NumberDataPoint};
    ///
    /// let point = |time: u64, value: f64| NumberDataPoint {
    ///     attributes: proto::Attributes::from([opentelemetry::KeyValue::new("pool", "orders")]).0,
    ///     time_unix_nano: time,
    ///     value: Some(Value::AsDouble(value)),
    ///     ..Default::default()
    /// };
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Gauge(Gauge { data_points: vec![point(2, 0.75), point(1, 0.5)] })),
    ///         ..Default::default()
    ///     },
    /// };
    /// let newest = metric.point(&[("pool", "orders")]).unwrap();
    /// assert_eq!(newest.value, PointValue::Number(0.75));
    /// assert!(metric.point(&[("pool", "refunds")]).is_none());
    /// ```
    pub fn point(&self, attrs: &[(&str, &str)]) -> Option<MetricPoint> {
        self.timed_points()
            .into_iter()
            .filter(|(_, point)| point.matches(attrs))
            // `max_by_key` keeps the last of equal maxima: the point sent last wins a tie.
            .max_by_key(|(time, _)| *time)
            .map(|(_, point)| point)
    }

    /// The value of the newest point matching `attrs` (see [`ReceivedMetric::point`]), if this
    /// metric is a sum (a counter or up-down counter).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, NumberDataPoint, Sum};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Sum(Sum {
    ///             data_points: vec![NumberDataPoint {
    ///                 value: Some(Value::AsInt(5)),
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.sum_value(&[]), Some(5.0));
    /// ```
    pub fn sum_value(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.metric.data {
            Some(metric::Data::Sum(_)) => self.point(attrs)?.value.as_number(),
            _ => None,
        }
    }

    /// The value of the newest point matching `attrs` (see [`ReceivedMetric::point`]), if this
    /// metric is a gauge.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, Gauge, NumberDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Gauge(Gauge {
    ///             data_points: vec![NumberDataPoint {
    ///                 value: Some(Value::AsDouble(0.25)),
    ///                 ..Default::default()
    ///             }],
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.gauge_value(&[]), Some(0.25));
    /// assert_eq!(metric.sum_value(&[]), None);
    /// ```
    pub fn gauge_value(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.metric.data {
            Some(metric::Data::Gauge(_)) => self.point(attrs)?.value.as_number(),
            _ => None,
        }
    }

    /// The count of the newest histogram point matching `attrs` (see [`ReceivedMetric::point`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint { count: 4, ..Default::default() }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_count(&[]), Some(4));
    /// ```
    pub fn histogram_count(&self, attrs: &[(&str, &str)]) -> Option<u64> {
        match self.point(attrs)?.value {
            PointValue::Histogram { count, .. } => Some(count),
            PointValue::Number(_) => None,
        }
    }

    /// The sum of the newest histogram point matching `attrs` (see [`ReceivedMetric::point`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint { sum: Some(1.5), ..Default::default() }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_sum(&[]), Some(1.5));
    /// ```
    pub fn histogram_sum(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.point(attrs)?.value {
            PointValue::Histogram { sum, .. } => Some(sum),
            PointValue::Number(_) => None,
        }
    }

    /// The bucket counts of the newest histogram point matching `attrs` (see
    /// [`ReceivedMetric::point`]); one more than there are bounds.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint {
    ///                 explicit_bounds: vec![0.1],
    ///                 bucket_counts: vec![2, 1],
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_bucket_counts(&[]), Some(vec![2, 1]));
    /// ```
    pub fn histogram_bucket_counts(&self, attrs: &[(&str, &str)]) -> Option<Vec<u64>> {
        match self.point(attrs)?.value {
            PointValue::Histogram { bucket_counts, .. } => Some(bucket_counts),
            PointValue::Number(_) => None,
        }
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// let metric = ReceivedMetric {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     metric: Metric::default(),
    /// };
    /// assert_eq!(metric.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }

    /// The supported data points with their `time_unix_nano`.
    fn timed_points(&self) -> Vec<(u64, MetricPoint)> {
        let numbers = |points: &[NumberDataPoint]| -> Vec<(u64, MetricPoint)> {
            points
                .iter()
                .filter_map(|point| {
                    let value = match point.value? {
                        number_data_point::Value::AsDouble(value) => value,
                        // Lossy beyond 2^53, far above what a test counts.
                        number_data_point::Value::AsInt(value) => value as f64,
                    };
                    let point_value = MetricPoint {
                        attributes: render_attributes(&point.attributes),
                        value: PointValue::Number(value),
                    };
                    Some((point.time_unix_nano, point_value))
                })
                .collect()
        };
        match &self.metric.data {
            Some(metric::Data::Sum(sum)) => numbers(&sum.data_points),
            Some(metric::Data::Gauge(gauge)) => numbers(&gauge.data_points),
            Some(metric::Data::Histogram(histogram)) => histogram
                .data_points
                .iter()
                .map(|point| {
                    let value = PointValue::Histogram {
                        count: point.count,
                        sum: point.sum.unwrap_or_default(),
                        bounds: point.explicit_bounds.clone(),
                        bucket_counts: point.bucket_counts.clone(),
                    };
                    let point_value = MetricPoint {
                        attributes: render_attributes(&point.attributes),
                        value,
                    };
                    (point.time_unix_nano, point_value)
                })
                .collect(),
            Some(metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_)) | None => {
                Vec::new()
            }
        }
    }
}

// === impl MetricPoint ===

/// One data point of a [`ReceivedMetric`]: its attributes rendered as text, and its value.
///
/// # Example
///
/// ```
/// use paytrace::testing::{MetricPoint, PointValue};
///
/// let point = MetricPoint {
///     attributes: vec![("status".to_owned(), "approved".to_owned())],
///     value: PointValue::Number(7.0),
/// };
/// assert_eq!(point.attr("status"), Some("approved"));
/// assert_eq!(point.value.as_number(), Some(7.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The point's attributes as `(key, value)` pairs, values rendered like
    /// [`ReceivedSpan::attr_str`], in the order the exporter sent them.
    pub attributes: Vec<(String, String)>,
    /// The point's value.
    pub value: PointValue,
}

impl MetricPoint {
    /// The rendered value of the attribute `key`, if the point has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{MetricPoint, PointValue};
    /// let point = MetricPoint {
    ///     attributes: vec![("method".to_owned(), "card".to_owned())],
    ///     value: PointValue::Number(1.0),
    /// };
    /// assert_eq!(point.attr("method"), Some("card"));
    /// assert_eq!(point.attr("currency"), None);
    /// ```
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, attrs: &[(&str, &str)]) -> bool {
        attrs
            .iter()
            .all(|(key, value)| self.attr(key) == Some(*value))
    }
}

/// The value of a [`MetricPoint`].
///
/// # Example
///
/// ```
/// use paytrace::testing::PointValue;
///
/// let value = PointValue::Histogram { count: 2, sum: 0.3, bounds: vec![0.1], bucket_counts: vec![1, 1] };
/// match value {
///     PointValue::Histogram { count, .. } => assert_eq!(count, 2),
///     _ => unreachable!(),
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// The value of a sum or gauge point.
    Number(f64),
    /// The aggregate of a histogram point.
    Histogram {
        /// How many values were recorded.
        count: u64,
        /// Their sum; `0.0` when the point carries none.
        sum: f64,
        /// The explicit bucket boundaries.
        bounds: Vec<f64>,
        /// The count of each bucket; one more than there are bounds.
        bucket_counts: Vec<u64>,
    },
}

impl PointValue {
    /// The number, if this is a [`PointValue::Number`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::PointValue;
    /// assert_eq!(PointValue::Number(3.0).as_number(), Some(3.0));
    /// ```
    pub fn as_number(&self) -> Option<f64> {
        match self {
            PointValue::Number(value) => Some(*value),
            PointValue::Histogram { .. } => None,
        }
    }
}

// === helpers for reading protos ===

fn resource_attributes(resource: &Option<Resource>) -> Vec<KeyValue> {
    resource
        .as_ref()
        .map(|resource| resource.attributes.clone())
        .unwrap_or_default()
}

fn scope_name(scope: &Option<InstrumentationScope>) -> String {
    scope
        .as_ref()
        .map(|scope| scope.name.clone())
        .unwrap_or_default()
}

fn find_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn render_attributes(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().and_then(render).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Renders a value as text; `None` for an empty value (and for string-table references, which
/// only the profiling signal uses).
fn render(value: &AnyValue) -> Option<String> {
    use any_value::Value;

    let rendered = match value.value.as_ref()? {
        Value::StringValue(text) => text.clone(),
        Value::BoolValue(flag) => flag.to_string(),
        Value::IntValue(number) => number.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        Value::BytesValue(bytes) => hex(bytes),
        Value::ArrayValue(array) => {
            let items: Vec<String> = array
                .values
                .iter()
                .map(|item| render(item).unwrap_or_default())
                .collect();
            format!("[{}]", items.join(", "))
        }
        Value::KvlistValue(list) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().and_then(render).unwrap_or_default();
                    format!("{}: {value}", kv.key)
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::StringValueStrindex(_) => return None,
    };
    Some(rendered)
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;

    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

// === recording ===

/// What the collector has received, and how it answers.
#[derive(Debug, Default)]
struct State {
    fault: Fault,
    traces: Vec<Received<ExportTraceServiceRequest>>,
    metrics: Vec<Received<ExportMetricsServiceRequest>>,
    logs: Vec<Received<ExportLogsServiceRequest>>,
    /// One entry per request of any signal, in order of arrival; its length is the request count.
    encodings: Vec<Option<String>>,
}

impl State {
    fn span_count(&self) -> usize {
        self.traces
            .iter()
            .flat_map(|received| &received.message.resource_spans)
            .flat_map(|resource_spans| &resource_spans.scope_spans)
            .map(|scope_spans| scope_spans.spans.len())
            .sum()
    }

    fn log_count(&self) -> usize {
        self.logs
            .iter()
            .flat_map(|received| &received.message.resource_logs)
            .flat_map(|resource_logs| &resource_logs.scope_logs)
            .map(|scope_logs| scope_logs.log_records.len())
            .sum()
    }
}

/// The state shared by the collector handle and the gRPC services.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped after every recorded request, to wake the `wait_for_*` helpers.
    changes: watch::Sender<u64>,
}

impl Shared {
    fn new() -> Self {
        Self {
            state: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a test panicked while reading; every update of `State` leaves it
        // consistent, so keep serving the data rather than cascade the panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `request` and returns the fault to answer it with.
    fn record<T: Signal>(&self, request: tonic::Request<T>) -> Fault {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let headers = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )),
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let at = Instant::now();
        let message = request.into_inner();
        let fault = {
            let mut state = self.lock();
            let fault = state.fault.clone();
            state.encodings.push(encoding.clone());
            T::received(&mut state).push(Received {
                message,
                encoding,
                at,
                fault: fault.clone(),
                headers,
            });
            fault
        };
        // `send_modify` notifies even when no one is subscribed, unlike `send`.
        self.changes
            .send_modify(|count| *count = count.wrapping_add(1));
        fault
    }
}

/// An export request type and where [`State`] keeps it.
trait Signal: Sized {
    fn received(state: &mut State) -> &mut Vec<Received<Self>>;
}

impl Signal for ExportTraceServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.traces
    }
}

impl Signal for ExportMetricsServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.metrics
    }
}

impl Signal for ExportLogsServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.logs
    }
}

/// The implementation of the three OTLP services: record, then answer as the fault says.
#[derive(Debug, Clone)]
struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    async fn answer<T: Signal, R: Default>(
        &self,
        request: tonic::Request<T>,
    ) -> Result<tonic::Response<R>, Status> {
        match self.shared.record(request) {
            Fault::None => {}
            Fault::Refuse => return Err(Status::unavailable("TestCollector: Fault::Refuse")),
            Fault::Delay(delay) => tokio::time::sleep(delay).await,
            Fault::Hang => std::future::pending::<()>().await,
            Fault::Reject(code) => return Err(Status::new(code, "TestCollector: Fault::Reject")),
        }
        // The default response has no `partial_success`: everything was accepted.
        Ok(tonic::Response::new(R::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.answer(request).await
    }
}

#[tonic::async_trait]
impl MetricsService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        self.answer(request).await
    }
}

#[tonic::async_trait]
impl LogsService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        self.answer(request).await
    }
}

// === serving ===

type HttpRequest = http::Request<tonic::body::Body>;
type TraceServer = TraceServiceServer<Recorder>;

/// Routes each gRPC call to the service it names.
///
/// tonic's own router needs its `router` feature, which the crate does not enable; with three
/// services a match on the path is all routing takes.
#[derive(Debug, Clone)]
struct Router {
    traces: TraceServer,
    metrics: MetricsServiceServer<Recorder>,
    logs: LogsServiceServer<Recorder>,
}

impl Router {
    fn new(recorder: Recorder) -> Self {
        Self {
            traces: TraceServiceServer::new(recorder.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
            metrics: MetricsServiceServer::new(recorder.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
            logs: LogsServiceServer::new(recorder)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
        }
    }
}

impl tower_service::Service<HttpRequest> for Router {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    // The three generated services share this boxed future type.
    type Future = <TraceServer as tower_service::Service<HttpRequest>>::Future;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The generated services are always ready, so there is nothing to wait for.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        // gRPC paths are `/{package}.{Service}/{Method}`.
        let path = request.uri().path();
        let service = path.trim_start_matches('/').split('/').next();
        match service {
            Some(metrics_service_server::SERVICE_NAME) => self.metrics.call(request),
            Some(logs_service_server::SERVICE_NAME) => self.logs.call(request),
            // The trace service answers its own calls, and `UNIMPLEMENTED` to anything else.
            _ => self.traces.call(request),
        }
    }
}

/// The listening socket as a stream of tracked connections, for tonic to serve.
#[derive(Debug)]
struct Incoming {
    listener: TcpListener,
    connections: Arc<Connections>,
}

impl Stream for Incoming {
    type Item = io::Result<TrackedConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // tonic logs accept errors and keeps accepting, so the stream never ends.
        self.listener
            .poll_accept(cx)
            .map(|accepted| Some(accepted.and_then(|(stream, _)| self.connections.track(stream))))
    }
}

/// The open connections, so that stopping the collector can drop them.
///
/// tonic serves each connection in a task of its own that outlives the server task, and the
/// collector cannot reach those tasks. It keeps a duplicate handle of each socket instead and
/// shuts the sockets down: the connection tasks then see the connection end, and finish.
#[derive(Debug, Default)]
struct Connections {
    inner: Mutex<ConnectionsInner>,
}

#[derive(Debug, Default)]
struct ConnectionsInner {
    next_id: u64,
    open: HashMap<u64, std::net::TcpStream>,
    closed: bool,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, ConnectionsInner> {
        // Every update leaves the map consistent; see `Shared::lock`.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a newly accepted connection.
    fn track(self: &Arc<Self>, stream: TcpStream) -> io::Result<TrackedConnection> {
        // Small unary RPCs should not wait for Nagle; failing to set it only costs latency.
        let _ = stream.set_nodelay(true);
        let stream = stream.into_std()?;
        let handle = stream.try_clone()?;
        // Called from `Incoming::poll_next`, so inside the runtime that `from_std` requires.
        let io = TcpStream::from_std(stream)?;

        let mut inner = self.lock();
        if inner.closed {
            // Accepted while `stop` ran: close it too.
            let _ = handle.shutdown(Shutdown::Both);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TestCollector stopped",
            ));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.open.insert(id, handle);
        Ok(TrackedConnection {
            io,
            _registration: Registration {
                id,
                connections: Arc::clone(self),
            },
        })
    }

    /// Shuts down every open connection, and any accepted later.
    fn close_all(&self) {
        let handles: Vec<std::net::TcpStream> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.open.drain().map(|(_, handle)| handle).collect()
        };
        for handle in handles {
            // Fails only if the peer is already gone, which is the goal.
            let _ = handle.shutdown(Shutdown::Both);
        }
    }
}

/// Removes a connection's duplicate handle when tonic drops the connection, so that a
/// connection that ends normally is really closed rather than held open by the duplicate.
#[derive(Debug)]
struct Registration {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// An accepted connection, registered in [`Connections`] while it is open.
#[derive(Debug)]
struct TrackedConnection {
    io: TcpStream,
    _registration: Registration,
}

impl Connected for TrackedConnection {
    type ConnectInfo = <TcpStream as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for TrackedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    use tonic::transport::Channel;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn string(value: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }
    }

    fn kv(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(value),
            ..Default::default()
        }
    }

    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: vec![kv("service.name", string("payments"))],
            ..Default::default()
        })
    }

    fn scope(name: &str) -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: name.to_owned(),
            ..Default::default()
        })
    }

    fn trace_request(names: &[&str]) -> ExportTraceServiceRequest {
        let spans = names
            .iter()
            .map(|name| Span {
                name: (*name).to_owned(),
                trace_id: (1..=16).collect(),
                span_id: vec![0xab; 8],
                parent_span_id: vec![0x0c; 8],
                attributes: vec![kv("order.id", string("o-1"))],
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    scope: scope("checkout"),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn log_request(bodies: &[&str]) -> ExportLogsServiceRequest {
        let log_records = bodies
            .iter()
            .map(|body| LogRecord {
                severity_text: "WARN".to_owned(),
                body: Some(string(body)),
                trace_id: vec![0xff; 16],
                span_id: vec![0x01; 8],
                attributes: vec![kv(
                    "attempt",
                    AnyValue {
                        value: Some(any_value::Value::IntValue(3)),
                    },
                )],
                ..Default::default()
            })
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    scope: scope("paytrace.log"),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn number(time: u64, status: &str, value: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![kv("status", string(status)), kv("pool", string("orders"))],
            time_unix_nano: time,
            value: Some(value),
            ..Default::default()
        }
    }

    fn metric_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope("paytrace.metrics"),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn counter(name: &str, approved: i64) -> Metric {
        Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    number(10, "approved", number_data_point::Value::AsInt(approved)),
                    number(10, "declined", number_data_point::Value::AsInt(2)),
                ],
                is_monotonic: true,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    async fn trace_client(collector: &TestCollector, gzip: bool) -> TraceServiceClient<Channel> {
        let client = TraceServiceClient::connect(collector.endpoint())
            .await
            .expect("connect to the collector");
        if gzip {
            client.send_compressed(CompressionEncoding::Gzip)
        } else {
            client
        }
    }

    #[test]
    fn collector_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TestCollector>();
        assert_send_sync::<Received<ExportTraceServiceRequest>>();
    }

    #[tokio::test]
    async fn records_trace_requests_with_their_encoding() {
        let collector = TestCollector::start().await.unwrap();

        let mut gzip = trace_client(&collector, true).await;
        gzip.export(trace_request(&["authorize", "capture"]))
            .await
            .unwrap();
        let mut plain = trace_client(&collector, false).await;
        plain.export(trace_request(&["refund"])).await.unwrap();

        assert_eq!(collector.encodings(), [Some("gzip".to_owned()), None]);
        let requests = collector.trace_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].encoding.as_deref(), Some("gzip"));
        assert_eq!(
            requests[0].message,
            trace_request(&["authorize", "capture"])
        );
        assert_eq!(requests[1].encoding, None);
        assert_eq!(requests[1].fault, Fault::None);
        assert!(requests[0].at <= requests[1].at);
        assert_eq!(collector.request_count(), 2);

        let spans = collector.spans();
        let names: Vec<&str> = spans.iter().map(ReceivedSpan::name).collect();
        assert_eq!(names, ["authorize", "capture", "refund"]);
        let span = &spans[0];
        assert_eq!(span.scope, "checkout");
        assert_eq!(
            span.resource_attr_str("service.name").as_deref(),
            Some("payments")
        );
        assert_eq!(span.attr_str("order.id").as_deref(), Some("o-1"));
        assert_eq!(span.attr("order.id"), Some(&string("o-1")));
        assert_eq!(span.attr_str("missing"), None);
        assert_eq!(span.trace_id_hex(), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(span.span_id_hex(), "abababababababab");
        assert_eq!(span.parent_span_id_hex(), "0c0c0c0c0c0c0c0c");
        assert!(collector.log_records().is_empty());
        assert!(collector.metrics().is_empty());
    }

    #[tokio::test]
    async fn records_and_flattens_logs() {
        let collector = TestCollector::start().await.unwrap();
        let mut client = LogsServiceClient::connect(collector.endpoint())
            .await
            .unwrap()
            .send_compressed(CompressionEncoding::Gzip);
        client
            .export(log_request(&["card declined", "retrying"]))
            .await
            .unwrap();

        assert_eq!(collector.log_requests().len(), 1);
        assert_eq!(collector.encodings(), [Some("gzip".to_owned())]);
        let logs = collector.log_records();
        assert_eq!(logs.len(), 2);
        let log = &logs[0];
        assert_eq!(log.body_str().as_deref(), Some("card declined"));
        assert_eq!(logs[1].body_str().as_deref(), Some("retrying"));
        assert_eq!(log.scope, "paytrace.log");
        assert_eq!(log.severity_text(), "WARN");
        assert_eq!(log.attr_str("attempt").as_deref(), Some("3"));
        assert_eq!(log.trace_id_hex(), "f".repeat(32));
        assert_eq!(log.span_id_hex(), "0101010101010101");
        assert_eq!(
            log.resource_attr_str("service.name").as_deref(),
            Some("payments")
        );
        assert!(collector.spans().is_empty());
    }

    #[tokio::test]
    async fn records_and_flattens_metrics() {
        let collector = TestCollector::start().await.unwrap();
        let mut client = MetricsServiceClient::connect(collector.endpoint())
            .await
            .unwrap()
            .send_compressed(CompressionEncoding::Gzip);
        let gauge = Metric {
            name: "pool.utilization".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    number(20, "open", number_data_point::Value::AsDouble(0.75)),
                    number(10, "open", number_data_point::Value::AsDouble(0.5)),
                ],
            })),
            ..Default::default()
        };
        let histogram = Metric {
            name: "payment.duration".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("method", string("card"))],
                    count: 3,
                    sum: Some(0.7),
                    explicit_bounds: vec![0.1, 0.5],
                    bucket_counts: vec![1, 1, 1],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        client
            .export(metric_request(vec![
                counter("payments", 7),
                gauge,
                histogram,
            ]))
            .await
            .unwrap();
        client
            .export(metric_request(vec![counter("payments", 9)]))
            .await
            .unwrap();

        assert_eq!(collector.metric_requests().len(), 2);
        let metrics = collector.metrics();
        let names: Vec<&str> = metrics.iter().map(ReceivedMetric::name).collect();
        assert_eq!(
            names,
            [
                "payments",
                "pool.utilization",
                "payment.duration",
                "payments"
            ]
        );
        assert_eq!(metrics[0].scope, "paytrace.metrics");
        assert_eq!(
            metrics[0].resource_attr_str("service.name").as_deref(),
            Some("payments")
        );

        let payments = &metrics[0];
        assert_eq!(payments.sum_value(&[("status", "approved")]), Some(7.0));
        assert_eq!(
            payments.sum_value(&[("status", "declined"), ("pool", "orders")]),
            Some(2.0)
        );
        assert_eq!(payments.sum_value(&[("status", "refunded")]), None);
        assert_eq!(payments.gauge_value(&[]), None);
        assert_eq!(payments.histogram_count(&[]), None);
        assert_eq!(payments.points().len(), 2);
        assert_eq!(payments.points()[0].attr("pool"), Some("orders"));

        let utilization = &metrics[1];
        // Newest by timestamp, not by position.
        assert_eq!(utilization.gauge_value(&[("pool", "orders")]), Some(0.75));
        assert_eq!(utilization.sum_value(&[]), None);

        let duration = &metrics[2];
        assert_eq!(duration.histogram_count(&[("method", "card")]), Some(3));
        assert_eq!(duration.histogram_sum(&[]), Some(0.7));
        assert_eq!(duration.histogram_bucket_counts(&[]), Some(vec![1, 1, 1]));
        assert_eq!(duration.histogram_count(&[("method", "wire")]), None);
        assert_eq!(
            duration.points(),
            [MetricPoint {
                attributes: vec![("method".to_owned(), "card".to_owned())],
                value: PointValue::Histogram {
                    count: 3,
                    sum: 0.7,
                    bounds: vec![0.1, 0.5],
                    bucket_counts: vec![1, 1, 1],
                },
            }]
        );

        // The newest view of a metric is the one sent last.
        let newest = collector
            .wait_for_metric("payments", Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(newest.sum_value(&[("status", "approved")]), Some(9.0));
    }

    #[tokio::test]
    async fn refuse_answers_unavailable_and_still_records() {
        let collector = TestCollector::start().await.unwrap();
        let mut client = trace_client(&collector, true).await;

        collector.set_fault(Fault::Refuse);
        let status = client.export(trace_request(&["a"])).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(collector.request_count(), 1);
        assert_eq!(collector.trace_requests()[0].fault, Fault::Refuse);
        assert_eq!(collector.spans().len(), 1);

        collector.set_fault(Fault::None);
        client.export(trace_request(&["b"])).await.unwrap();
        assert_eq!(collector.request_count(), 2);
        assert_eq!(collector.trace_requests()[1].fault, Fault::None);
    }

    #[tokio::test]
    async fn reject_answers_with_the_given_code() {
        let collector = TestCollector::start().await.unwrap();
        collector.set_fault(Fault::Reject(Code::InvalidArgument));
        let mut client = LogsServiceClient::connect(collector.endpoint())
            .await
            .unwrap();
        let status = client.export(log_request(&["x"])).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(collector.request_count(), 1);
    }

    #[tokio::test]
    async fn hang_never_answers() {
        let collector = TestCollector::start().await.unwrap();
        collector.set_fault(Fault::Hang);
        let mut client = trace_client(&collector, true).await;

        let mut request = tonic::Request::new(trace_request(&["stuck"]));
        request.set_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let status = client.export(request).await.unwrap_err();

        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "unexpected status {status:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(collector.request_count(), 1);
        assert_eq!(collector.trace_requests()[0].fault, Fault::Hang);
    }

    #[tokio::test]
    async fn delay_answers_ok_late() {
        let collector = TestCollector::start().await.unwrap();
        let delay = Duration::from_millis(300);
        collector.set_fault(Fault::Delay(delay));
        let mut client = trace_client(&collector, false).await;

        let started = std::time::Instant::now();
        client.export(trace_request(&["slow"])).await.unwrap();
        assert!(
            started.elapsed() >= delay,
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(collector.trace_requests()[0].fault, Fault::Delay(delay));
    }

    #[tokio::test]
    async fn unknown_services_are_unimplemented_and_not_recorded() {
        use tower_service::Service as _;

        let shared = Arc::new(Shared::new());
        let mut router = Router::new(Recorder {
            shared: Arc::clone(&shared),
        });
        let request = http::Request::builder()
            .uri("/example.Unknown/Export")
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::empty())
            .unwrap();
        let response = router.call(request).await.unwrap();
        let code = response.headers().get("grpc-status").unwrap();
        assert_eq!(
            code.to_str().unwrap(),
            (Code::Unimplemented as i32).to_string()
        );
        assert_eq!(shared.lock().encodings.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_drops_connections_and_start_on_reuses_the_port() {
        let collector = TestCollector::start().await.unwrap();
        let addr = collector.addr();
        let mut client = trace_client(&collector, true).await;
        client.export(trace_request(&["before"])).await.unwrap();

        // A call held by `Hang` must fail when the collector stops, not wait forever.
        collector.set_fault(Fault::Hang);
        let mut hanging_client = client.clone();
        let hanging =
            tokio::spawn(async move { hanging_client.export(trace_request(&["held"])).await });
        assert!(collector.wait_until(WAIT, |c| c.request_count() == 2).await);
        collector.stop().await;

        let outcome = tokio::time::timeout(WAIT, hanging)
            .await
            .expect("stop ends in-flight calls")
            .unwrap();
        assert!(outcome.is_err(), "a held call cannot succeed: {outcome:?}");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the port is closed"
        );

        let restarted = TestCollector::start_on(addr).await.unwrap();
        assert_eq!(restarted.addr(), addr);
        assert_eq!(restarted.request_count(), 0);
        let mut client = trace_client(&restarted, true).await;
        client.export(trace_request(&["after"])).await.unwrap();
        let spans = restarted.wait_for_spans(1, WAIT).await;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name(), "after");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drop_stops_the_server() {
        let collector = TestCollector::start().await.unwrap();
        let addr = collector.addr();
        drop(collector);

        // Drop only flags the server task; the runtime closes the socket soon after.
        let deadline = tokio::time::Instant::now() + WAIT;
        while TcpStream::connect(addr).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "still listening");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_helpers_return_as_soon_as_data_arrives() {
        let collector = TestCollector::start().await.unwrap();
        let endpoint = collector.endpoint();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut traces = TraceServiceClient::connect(endpoint.clone()).await.unwrap();
            traces.export(trace_request(&["first"])).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            traces.export(trace_request(&["second"])).await.unwrap();
            let mut logs = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
            logs.export(log_request(&["one", "two"])).await.unwrap();
            let mut metrics = MetricsServiceClient::connect(endpoint).await.unwrap();
            metrics
                .export(metric_request(vec![counter("payments", 1)]))
                .await
                .unwrap();
        });

        let started = std::time::Instant::now();
        let spans = collector.wait_for_spans(2, WAIT).await;
        assert_eq!(spans.len(), 2);
        let span = collector.wait_for_span("second", WAIT).await.unwrap();
        assert_eq!(span.name(), "second");
        let logs = collector.wait_for_logs(2, WAIT).await;
        assert_eq!(logs.len(), 2);
        let metric = collector.wait_for_metric("payments", WAIT).await.unwrap();
        assert_eq!(metric.sum_value(&[("status", "approved")]), Some(1.0));
        assert!(collector.wait_until(WAIT, |c| c.request_count() == 4).await);
        // Far below any of the timeouts: the helpers woke up on arrival.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        sender.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_helpers_give_up_at_the_timeout() {
        let collector = TestCollector::start().await.unwrap();
        let timeout = Duration::from_millis(150);

        let started = std::time::Instant::now();
        assert!(collector.wait_for_spans(1, timeout).await.is_empty());
        assert!(started.elapsed() >= timeout);
        assert!(collector.wait_for_span("x", timeout).await.is_none());
        assert!(collector.wait_for_logs(1, timeout).await.is_empty());
        assert!(collector.wait_for_metric("x", timeout).await.is_none());
        assert!(
            !collector
                .wait_until(timeout, |c| c.request_count() > 0)
                .await
        );
        assert!(started.elapsed() >= timeout * 5);

        // Data that does not satisfy the wait does not end it early.
        let mut client = trace_client(&collector, false).await;
        client.export(trace_request(&["other"])).await.unwrap();
        let started = std::time::Instant::now();
        assert!(collector.wait_for_span("wanted", timeout).await.is_none());
        assert!(started.elapsed() >= timeout);
        // Returns what was found so far.
        assert_eq!(collector.wait_for_spans(2, timeout).await.len(), 1);
        // An overflowing timeout means no deadline; a satisfied wait still returns at once.
        assert!(
            collector
                .wait_until(Duration::MAX, |c| c.request_count() == 1)
                .await
        );
    }

    #[tokio::test]
    async fn clear_forgets_data_but_keeps_the_fault() {
        let collector = TestCollector::start().await.unwrap();
        let mut client = trace_client(&collector, true).await;
        client.export(trace_request(&["a"])).await.unwrap();
        collector.set_fault(Fault::Refuse);

        collector.clear();
        assert_eq!(collector.request_count(), 0);
        assert!(collector.spans().is_empty());
        assert!(collector.encodings().is_empty());

        let status = client.export(trace_request(&["b"])).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(collector.request_count(), 1);
        let debug = format!("{collector:?}");
        assert!(
            debug.contains("Refuse") && debug.contains("requests: 1"),
            "{debug}"
        );
    }

    #[test]
    fn renders_every_value_kind() {
        let int = |value| AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        };
        let cases = [
            (string("text"), Some("text")),
            (int(-42), Some("-42")),
            (
                AnyValue {
                    value: Some(any_value::Value::BoolValue(true)),
                },
                Some("true"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::DoubleValue(12.5)),
                },
                Some("12.5"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0x0f, 0xa0])),
                },
                Some("0fa0"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![int(1), string("b")],
                    })),
                },
                Some("[1, b]"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", int(1))],
                    })),
                },
                Some("{k: 1}"),
            ),
            (AnyValue { value: None }, None),
        ];
        for (value, expected) in cases {
            assert_eq!(render(&value).as_deref(), expected, "{value:?}");
        }
    }

    #[test]
    fn newest_point_wins_ties_by_order() {
        let metric = ReceivedMetric {
            resource: vec![],
            scope: String::new(),
            metric: Metric {
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![
                        number(5, "approved", number_data_point::Value::AsInt(1)),
                        number(5, "approved", number_data_point::Value::AsInt(2)),
                        number(4, "approved", number_data_point::Value::AsInt(3)),
                    ],
                    ..Default::default()
                })),
                ..Default::default()
            },
        };
        assert_eq!(metric.sum_value(&[]), Some(2.0));
    }
}
