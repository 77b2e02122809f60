//! What the collector received: each request as it arrived, and its spans, log records and metrics.

mod log;
mod metric;
mod read;
mod span;

use std::time::Instant;

use super::Fault;

pub use self::log::ReceivedLog;
pub use self::metric::{MetricPoint, PointValue, ReceivedMetric};
pub use self::span::ReceivedSpan;

pub(super) use self::read::{resource_attributes, scope_name};

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
