//! The gRPC services, which record each request and answer as the fault says, and their router.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    self, LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    self, MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::Status;

use super::record::{ExportRequest, Recording};
use super::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Fault,
};

/// Largest request the collector decodes. tonic's default (4 MiB) is smaller than a full batch
/// of large spans, and a test collector should never be the reason an export fails.
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The implementation of the three OTLP services: record, then answer as the fault says.
#[derive(Debug, Clone)]
pub(super) struct Recorder {
    pub(super) shared: Arc<Recording>,
}

impl Recorder {
    async fn answer<T: ExportRequest, R: Response>(
        &self,
        request: tonic::Request<T>,
    ) -> Result<tonic::Response<R>, Status> {
        match self.shared.record(request) {
            Fault::None => {}
            Fault::Refuse => return Err(Status::unavailable("TestCollector: Fault::Refuse")),
            Fault::Delay(delay) => tokio::time::sleep(delay).await,
            Fault::Hang => std::future::pending::<()>().await,
            Fault::Reject(code) => return Err(Status::new(code, "TestCollector: Fault::Reject")),
            Fault::PartialSuccess(rejected) => {
                return Ok(tonic::Response::new(R::partial(rejected)));
            }
        }
        // The default response has no `partial_success`: everything was accepted.
        Ok(tonic::Response::new(R::default()))
    }
}

/// The message of a [`Fault::PartialSuccess`] report.
pub(super) const PARTIAL_MESSAGE: &str = "TestCollector: Fault::PartialSuccess";

/// An export response, empty or reporting a partial success.
pub(super) trait Response: Default {
    fn partial(rejected: u64) -> Self;
}

/// `Response` for each signal's response type, given its partial-success type and count field.
macro_rules! partial_response {
    ($($response:ident, $partial:ident, $count:ident;)*) => {$(
        impl Response for $response {
            fn partial(rejected: u64) -> Self {
                $response {
                    partial_success: Some($partial {
                        $count: i64::try_from(rejected).unwrap_or(i64::MAX),
                        error_message: PARTIAL_MESSAGE.into(),
                    }),
                }
            }
        }
    )*};
}

partial_response! {
    ExportTraceServiceResponse, ExportTracePartialSuccess, rejected_spans;
    ExportMetricsServiceResponse, ExportMetricsPartialSuccess, rejected_data_points;
    ExportLogsServiceResponse, ExportLogsPartialSuccess, rejected_log_records;
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

type HttpRequest = http::Request<tonic::body::Body>;
type TraceServer = TraceServiceServer<Recorder>;

/// Routes each gRPC call to the service it names.
///
/// tonic's own router needs its `router` feature, which the crate does not enable; with three
/// services a match on the path is all routing takes.
#[derive(Debug, Clone)]
pub(super) struct Router {
    traces: TraceServer,
    metrics: MetricsServiceServer<Recorder>,
    logs: LogsServiceServer<Recorder>,
}

impl Router {
    pub(super) fn new(recorder: Recorder) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Code;

    #[tokio::test]
    async fn unknown_services_are_unimplemented_and_not_recorded() {
        use tower_service::Service as _;

        let shared = Arc::new(Recording::new());
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
}
