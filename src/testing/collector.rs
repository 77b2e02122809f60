//! [`TestCollector`]: start and stop it, read what it received, wait for more.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::connections::{Connections, Incoming};
use super::received::{resource_attributes, scope_name};
use super::record::Recording;
use super::server::{Recorder, Router};
use super::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Fault,
    Received, ReceivedLog, ReceivedMetric, ReceivedSpan,
};

/// An in-process OTLP/gRPC collector that records what it receives.
///
/// It serves the trace, metrics and logs services on a local TCP port, in the Tokio runtime it
/// was started from, accepting and sending gzip. See the [module docs](super) for a complete
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
    shared: Arc<Recording>,
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
        Self::serve(addr, false).await
    }

    /// Starts a collector that speaks OTLP/HTTP (`http/protobuf`, HTTP/1.1) instead of gRPC, on
    /// `127.0.0.1` with a port chosen by the OS. Its [`endpoint`](Self::endpoint) is the base
    /// URL an exporter appends `/v1/traces`, `/v1/metrics` and `/v1/logs` to; everything it
    /// receives is read back with the same methods.
    ///
    /// # Errors
    ///
    /// As [`TestCollector::start`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let collector = paytrace::testing::TestCollector::start_http().await?;
    /// let config = paytrace::Config::new()
    ///     .with_protocol(paytrace::Protocol::HttpProtobuf)
    ///     .with_endpoint(collector.endpoint());
    /// # let _ = config;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_http() -> io::Result<TestCollector> {
        Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), true).await
    }

    async fn serve(addr: SocketAddr, http: bool) -> io::Result<TestCollector> {
        // Binding and spawning both panic outside a runtime; report that as an error instead.
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;

        let shared = Arc::new(Recording::new());
        let connections = Arc::new(Connections::default());
        let router = Router::new(Recorder {
            shared: Arc::clone(&shared),
        });
        let incoming = Incoming {
            listener,
            connections: Arc::clone(&connections),
        };
        let server = if http {
            runtime.spawn(super::http::serve(incoming, Arc::clone(&shared)))
        } else {
            runtime.spawn(async move {
                // tonic only fails here if building a per-connection service fails, which ours
                // cannot; and a test fixture has no one to report to but the test, which will see
                // no data.
                let _ = tonic::transport::Server::builder()
                    .serve_with_incoming(router, incoming)
                    .await;
            })
        };

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, Gauge, Histogram, HistogramDataPoint,
    };
    use tokio::net::TcpStream;
    use tonic::codec::CompressionEncoding;

    use super::*;
    use crate::testing::test_helpers::{
        counter, kv, log_request, metric_request, number, string, trace_client, trace_request,
    };
    use crate::testing::{Code, Metric, MetricPoint, PointValue};

    const WAIT: Duration = Duration::from_secs(10);

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
}
