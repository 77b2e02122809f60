//! One signal's exporter: requests framed and gzip-compressed once ([`Framer`]) and resent as
//! the same bytes on retry, over OTLP/gRPC (a lazily connected tonic channel, here) or
//! OTLP/HTTP ([`super::http`]), with headers, TLS, retry with exponential backoff and jitter
//! bounded by the export timeout, and a diagnosis when the endpoint speaks the other protocol.
//!
//! The unary gRPC call is made here rather than through tonic's codec so that the gzip level is
//! paytrace's: level 1 compresses OTLP about as well for a fraction of level 6's CPU.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::answer::{chain, refused, with_sources, Failed, Partial, MAX_RESPONSE, REFUSED};
use super::diagnosis::{Diagnosis, EndpointCheck};
use super::frame::Framer;
use super::http::HttpTransport;
use super::stats::SignalStats;
use super::target::Target;
use super::Signal;
use crate::error::Error;
use crate::exporter::Protocol;

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sends pre-encoded OTLP export requests for one signal.
#[derive(Debug, Clone)]
pub(crate) struct OtlpClient {
    transport: Arc<Transport>,
    /// Shared by clones: sends of one signal take turns, so the lock is uncontended.
    framer: Arc<Mutex<Framer>>,
    timeout: Duration,
    retry: bool,
    /// For errors: where the collector was expected.
    endpoint: http::Uri,
    signal: Signal,
    /// What this client's failures taught about its endpoint.
    check: Arc<EndpointCheck>,
    /// Where the latest failed attempt is noted while it is retried.
    stats: Arc<SignalStats>,
}

#[derive(Debug)]
enum Transport {
    Grpc {
        channel: Channel,
        path: http::uri::PathAndQuery,
        headers: http::HeaderMap,
    },
    Http(HttpTransport),
}

impl OtlpClient {
    /// Build the client. Must be called inside the export runtime (the channel's worker task is
    /// spawned there); connecting is lazy, so a missing collector is not an error here.
    pub(crate) fn new(
        target: &Target,
        timeout: Duration,
        retry: bool,
        diagnosis: Arc<Diagnosis>,
        stats: Arc<SignalStats>,
    ) -> Result<Self, Error> {
        let transport = match target.protocol {
            Protocol::Grpc => grpc_transport(target, timeout)?,
            Protocol::HttpProtobuf => Transport::Http(HttpTransport::new(target, timeout)?),
        };
        Ok(OtlpClient {
            transport: Arc::new(transport),
            framer: Arc::new(Mutex::new(Framer::new(target.gzip))),
            timeout,
            retry,
            endpoint: target.endpoint.clone(),
            signal: target.signal,
            check: Arc::new(EndpointCheck::new(target, diagnosis)),
            stats,
        })
    }

    /// Frame one encoded request for [`send`](Self::send), gzip-compressed when configured.
    pub(crate) fn frame(&self, message: &[u8]) -> Bytes {
        self.framer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frame(message)
    }
}

/// The tonic channel of one signal, with its fixed headers and path.
fn grpc_transport(target: &Target, timeout: Duration) -> Result<Transport, Error> {
    let mut endpoint = Endpoint::from(target.endpoint.clone())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if target.endpoint.scheme_str() == Some("https") {
        endpoint = super::tls::grpc_endpoint(endpoint, target)?;
    }
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    if target.gzip {
        headers.insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
        headers.insert(
            "grpc-accept-encoding",
            http::HeaderValue::from_static("gzip"),
        );
    }
    for (k, v) in &target.headers {
        // Checked in Config::resolve; skipping here keeps this infallible.
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    let path = match target.signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    };
    Ok(Transport::Grpc {
        channel: endpoint.connect_lazy(),
        path: http::uri::PathAndQuery::from_static(path),
        headers,
    })
}

impl OtlpClient {
    /// Send one framed request, retrying within the export timeout; on success, the items
    /// the collector rejected nonetheless (OTLP partial success).
    ///
    /// Retried: UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, CANCELLED, DEADLINE_EXCEEDED, DATA_LOSS
    /// (the OTLP specification's list) and UNKNOWN, which is how tonic reports a connection
    /// broken mid-request (a collector restart) — the stock exporter drops those batches.
    pub(crate) async fn send(&self, body: Bytes) -> Result<u64, String> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(remaining, self.attempt(&body, remaining)).await;
            let failed = match attempt {
                Ok(Ok(partial)) => {
                    self.check.succeeded(self.signal, partial.as_ref());
                    return Ok(partial.map_or(0, |p| p.rejected));
                }
                Ok(Err(failed)) => failed,
                Err(_) => return Err(format!("export timed out after {:?}", self.timeout)),
            };
            self.check.failed(&failed).await;
            if !self.retry || !retryable(failed.status.code()) {
                return Err(self.describe(&failed));
            }
            self.stats.note_attempt_error(self.describe(&failed));
            let wait = failed.retry_after.unwrap_or_else(|| jitter(backoff));
            if Instant::now() + wait >= deadline {
                return Err(self.describe(&failed));
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// A failure as the health view and the shutdown error say it: a refused connection
    /// plainly (its usual cause is a wrong endpoint or a collector not started), the wrong
    /// protocol with its fix.
    fn describe(&self, failed: &Failed) -> String {
        if failed.status.message() == REFUSED {
            return format!("no collector at {}: connection refused", self.endpoint);
        }
        let text = describe(&failed.status);
        match self.check.hint(&text) {
            Some(hint) => format!("{text} ({hint})"),
            None => text,
        }
    }

    async fn attempt(&self, body: &Bytes, timeout: Duration) -> Result<Option<Partial>, Failed> {
        match &*self.transport {
            Transport::Grpc {
                channel,
                path,
                headers,
            } => grpc_attempt(channel, path, headers, body.clone(), timeout)
                .await
                .map_err(Failed::from),
            Transport::Http(http) => http.attempt(body).await,
        }
    }
}

/// A transport failure as a retryable status; a refused connection is marked so it is said
/// plainly.
fn transport_error(error: &(dyn std::error::Error + 'static), prefix: &str) -> Status {
    if refused(error) {
        Status::unavailable(REFUSED)
    } else {
        Status::unavailable(format!("{prefix}{}", chain(error)))
    }
}

/// One unary call, framed by hand so the gzip level is paytrace's choice (tonic's own codec
/// compresses at level 6, which costs more CPU per span than encoding does).
async fn grpc_attempt(
    channel: &Channel,
    path: &http::uri::PathAndQuery,
    headers: &http::HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Option<Partial>, Status> {
    use tower_service::Service as _;
    let mut request = http::Request::new(tonic::body::Body::new(OneShot(Some(body))));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from(path.clone());
    *request.version_mut() = http::Version::HTTP_2;
    let request_headers = request.headers_mut();
    request_headers.clone_from(headers);
    let millis = timeout.as_millis().clamp(1, 99_999_999);
    if let Ok(v) = http::HeaderValue::from_str(&format!("{millis}m")) {
        request_headers.insert("grpc-timeout", v);
    }
    let mut channel = channel.clone();
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| transport_error(&e, "collector not reachable: "))?;
    let response = channel
        .call(request)
        .await
        .map_err(|e| transport_error(&e, ""))?;
    read_grpc_response(response).await
}

/// Read the response to its end; the call's outcome is its `grpc-status` (headers for a
/// trailers-only answer, else trailers), and a success's partial-success report is in its
/// message.
async fn read_grpc_response(
    response: http::Response<tonic::body::Body>,
) -> Result<Option<Partial>, Status> {
    use http_body::Body as _;
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(Status::unavailable(format!(
            "collector answered HTTP {}",
            parts.status
        )));
    }
    if let Some(outcome) = status_from(&parts.headers) {
        return outcome.map(|()| None);
    }
    let mut message = Vec::new();
    let mut body = std::pin::Pin::new(&mut body);
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| Status::unavailable(format!("transport error: {e}")))?;
        let frame = match frame.into_data() {
            Ok(data) => {
                let room = MAX_RESPONSE.saturating_sub(message.len());
                message.extend_from_slice(&data[..data.len().min(room)]);
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            if let Some(outcome) = status_from(&trailers) {
                return outcome.map(|()| Partial::decode_grpc(&message));
            }
        }
    }
    Err(Status::unknown(
        "collector closed the stream without a grpc-status",
    ))
}

/// The longest `grpc-message` kept: it is quoted in warnings and the health view.
pub(super) const MAX_MESSAGE: usize = 256;

/// A response's `grpc-status` and `grpc-message`, when it has a status.
pub(super) fn status_from(headers: &http::HeaderMap) -> Option<Result<(), Status>> {
    let code: i32 = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if code == 0 {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| crate::util::truncate(m, MAX_MESSAGE).replace("%20", " "))
        .unwrap_or_default();
    Some(Err(Status::new(Code::from(code), message)))
}

/// A body of one data frame.
struct OneShot(Option<Bytes>);

impl http_body::Body for OneShot {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::DataLoss
            | Code::Unknown
    )
}

/// A status as `Code: message` plus its sources.
fn describe(status: &Status) -> String {
    with_sources(
        format!("{:?}: {}", status.code(), status.message()),
        std::error::Error::source(status),
    )
}

/// 50–100 % of the nominal backoff, so clients that failed together do not retry together.
fn jitter(backoff: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = u64::from(nanos) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let fraction = 0.5 + (x % 1000) as f64 / 2000.0;
    backoff.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collectors_grpc_message_is_kept_short() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        let long = "x".repeat(8 * 1024);
        headers.insert("grpc-message", http::HeaderValue::from_str(&long).unwrap());
        let status = status_from(&headers).unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message().len(), MAX_MESSAGE);
        headers.insert("grpc-status", http::HeaderValue::from_static("0"));
        assert!(status_from(&headers).unwrap().is_ok());
    }

    #[test]
    fn retry_policy() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            assert!(retryable(code), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::OutOfRange,
            Code::Unimplemented,
        ] {
            assert!(!retryable(code), "{code:?}");
        }
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(200));
            assert!(
                j >= Duration::from_millis(100) && j <= Duration::from_millis(200),
                "{j:?}"
            );
        }
    }
}
