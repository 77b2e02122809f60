//! The gRPC side of an export: one lazily connected tonic channel per signal, requests encoded
//! once and resent as the same bytes on retry, gzip, headers, TLS, and retry with exponential
//! backoff and jitter bounded by the export timeout.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tokio::time::Instant;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::Signal;
use crate::config::Target;
use crate::Error;

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sends pre-encoded OTLP export requests for one signal.
#[derive(Debug, Clone)]
pub(crate) struct OtlpClient {
    channel: Channel,
    path: http::uri::PathAndQuery,
    metadata: MetadataMap,
    gzip: bool,
    timeout: Duration,
    retry: bool,
}

impl OtlpClient {
    /// Build the client. Must be called inside the export runtime (the channel's worker task is
    /// spawned there); connecting is lazy, so a missing collector is not an error here.
    pub(crate) fn new(target: &Target, timeout: Duration, retry: bool) -> Result<Self, Error> {
        let mut endpoint = Endpoint::from(target.endpoint.clone())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        if target.endpoint.scheme_str() == Some("https") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(host) = target.endpoint.host() {
                tls = tls.domain_name(host);
            }
            if let Some(pem) = &target.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::invalid("OTEL_EXPORTER_OTLP_CERTIFICATE", "<pem>", e))?;
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &target.headers {
            // Checked in Config::resolve; skipping here keeps this infallible.
            if let (Ok(k), Ok(v)) = (
                MetadataKey::<Ascii>::from_bytes(k.to_ascii_lowercase().as_bytes()),
                MetadataValue::try_from(v.as_str()),
            ) {
                metadata.insert(k, v);
            }
        }
        let path = match target.signal {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        };
        Ok(OtlpClient {
            channel: endpoint.connect_lazy(),
            path: http::uri::PathAndQuery::from_static(path),
            metadata,
            gzip: target.gzip,
            timeout,
            retry,
        })
    }

    /// Send one encoded request, retrying within the export timeout.
    ///
    /// Retried: UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, CANCELLED, DEADLINE_EXCEEDED, DATA_LOSS
    /// (the OTLP specification's list) and UNKNOWN, which is how tonic reports a connection
    /// broken mid-request (a collector restart) — the stock exporter drops those batches.
    pub(crate) async fn send(&self, body: Bytes) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt =
                tokio::time::timeout(remaining, self.attempt(body.clone(), remaining)).await;
            let status = match attempt {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(status)) => status,
                Err(_) => return Err(format!("export timed out after {:?}", self.timeout)),
            };
            if !self.retry || !retryable(status.code()) {
                return Err(describe(&status));
            }
            let wait = jitter(backoff);
            if Instant::now() + wait >= deadline {
                return Err(describe(&status));
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self, body: Bytes, timeout: Duration) -> Result<(), Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if self.gzip {
            grpc = grpc
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("collector not reachable: {e}")))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(timeout);
        grpc.unary(request, self.path.clone(), RawCodec)
            .await
            .map(drop)
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

fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        // tonic nests the same message at several levels: keep each distinct part once.
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
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

// === impl RawCodec ===

/// Sends already-encoded protobuf bytes; ignores the response body (an
/// `Export*ServiceResponse`, whose partial-success details paytrace does not act on).
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        let n = src.remaining();
        src.advance(n);
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
