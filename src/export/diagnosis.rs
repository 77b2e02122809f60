//! [`Diagnosis`]: an endpoint that speaks the other OTLP protocol is named, not left as a
//! stream of transport errors. A failure whose signature says so (an HTTP status only a
//! non-gRPC server sends, an HTTP/2 frame error) is enough; a plain "connection closed" is
//! checked once with a probe: does the endpoint answer HTTP/1.1, or the HTTP/2 preface?

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

use super::answer::{Failed, Partial, REFUSED};
use super::target::Target;
use super::tls::TlsProbe;
use super::Signal;
use crate::exporter::Protocol;

const TO_HTTP: &str = "the endpoint does not answer OTLP/gRPC (an HTTP/1.1 or OTLP/HTTP receiver, port 4318?): set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or point OTEL_EXPORTER_OTLP_ENDPOINT at the gRPC port (4317)";
const TO_GRPC: &str = "the endpoint does not answer OTLP/HTTP (a gRPC-only receiver, port 4317?): set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or point OTEL_EXPORTER_OTLP_ENDPOINT at the OTLP/HTTP port (4318)";
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared by the clients of one telemetry: each finding is said once.
#[derive(Debug, Default)]
pub(crate) struct Diagnosis {
    warned: AtomicBool,
    partial: AtomicBool,
}

impl Diagnosis {
    /// The fix when `failed` comes from an endpoint of the other protocol; WARN the first
    /// time. `probed` is the client's own flag: an endpoint is probed at most once.
    pub(crate) async fn wrong_protocol(
        &self,
        protocol: Protocol,
        endpoint: &http::Uri,
        failed: &Failed,
        probed: &AtomicBool,
    ) -> Option<&'static str> {
        let mut hint = signature(protocol, failed);
        let transport = failed.http_status.is_none()
            && matches!(failed.status.code(), Code::Unavailable | Code::Unknown)
            && failed.status.message() != REFUSED;
        if hint.is_none() && transport && !probed.swap(true, Ordering::Relaxed) {
            hint = probe(protocol, endpoint).await;
        }
        let hint = hint?;
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "paytrace::config",
                endpoint = %endpoint,
                protocol = protocol.as_str(),
                error = %failed.status.message(),
                "wrong OTLP protocol? {hint}"
            );
        }
        Some(hint)
    }

    /// Say once that a collector rejects part of what it accepts.
    pub(crate) fn partial(&self, signal: Signal, partial: &Partial) {
        if !self.partial.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "paytrace::config",
                signal = signal.as_str(),
                rejected = partial.rejected,
                message = %crate::util::truncate(&partial.message, 256),
                "the collector accepted an export but rejected part of it (partial success); said once"
            );
        }
    }
}

/// What one client has learnt about its endpoint from its failures: the hint its errors carry
/// until an export succeeds (the first failure has the telling signature, the next ones only
/// "connection closed"), and whether each probe has run (at most once each).
#[derive(Debug)]
pub(crate) struct EndpointCheck {
    shared: Arc<Diagnosis>,
    protocol: Protocol,
    endpoint: http::Uri,
    has_identity: bool,
    /// For an `https` endpoint without a client certificate: asks once whether it wants one.
    tls_probe: Option<TlsProbe>,
    tls_probed: AtomicBool,
    wants_certificate: AtomicBool,
    probed: AtomicBool,
    suspect: Mutex<Option<&'static str>>,
}

impl EndpointCheck {
    pub(crate) fn new(target: &Target, shared: Arc<Diagnosis>) -> Self {
        let tls_probe = match (target.endpoint.scheme_str(), &target.client_identity) {
            (Some("https"), None) => {
                let alpn: &[u8] = match target.protocol {
                    Protocol::Grpc => b"h2",
                    Protocol::HttpProtobuf => b"http/1.1",
                };
                TlsProbe::new(target, alpn)
            }
            _ => None,
        };
        EndpointCheck {
            shared,
            protocol: target.protocol,
            endpoint: target.endpoint.clone(),
            has_identity: target.client_identity.is_some(),
            tls_probe,
            tls_probed: AtomicBool::new(false),
            wants_certificate: AtomicBool::new(false),
            probed: AtomicBool::new(false),
            suspect: Mutex::new(None),
        }
    }

    /// An export succeeded: what was suspected no longer holds.
    pub(crate) fn succeeded(&self, signal: Signal, partial: Option<&Partial>) {
        if let Some(partial) = partial {
            self.shared.partial(signal, partial);
        }
        *self.suspect.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// An attempt failed: probe what its signature does not say (once each).
    pub(crate) async fn failed(&self, failed: &Failed) {
        if let Some(probe) = &self.tls_probe {
            // Asked once, after a transport failure (no HTTP answer at all).
            if failed.http_status.is_none()
                && !self.tls_probed.swap(true, Ordering::Relaxed)
                && probe.needs_client_certificate(&self.endpoint).await
            {
                self.wants_certificate.store(true, Ordering::Relaxed);
            }
        }
        if let Some(hint) = self
            .shared
            .wrong_protocol(self.protocol, &self.endpoint, failed, &self.probed)
            .await
        {
            *self.suspect.lock().unwrap_or_else(PoisonError::into_inner) = Some(hint);
        }
    }

    /// The fix to add to the error `text`, when one is known.
    pub(crate) fn hint(&self, text: &str) -> Option<String> {
        let wants = self.wants_certificate.load(Ordering::Relaxed);
        if let Some(hint) = client_certificate_hint(text, self.has_identity, wants) {
            return Some(hint.to_owned());
        }
        (*self.suspect.lock().unwrap_or_else(PoisonError::into_inner))
            .map(|hint| format!("wrong protocol? {hint}"))
    }
}

/// The fix for a TLS handshake a collector refused for want of a client certificate.
fn client_certificate_hint(
    message: &str,
    have_identity: bool,
    probed_wants_one: bool,
) -> Option<&'static str> {
    let text = message.to_ascii_lowercase().replace(' ', "");
    (!have_identity
        && (probed_wants_one
            || text.contains("certificaterequired")
            || text.contains("handshakefailure")))
        .then_some("the collector requires a client certificate (mutual TLS): set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY, or Config::with_client_certificate")
}

/// The fix a failure's own signature points to.
fn signature(protocol: Protocol, failed: &Failed) -> Option<&'static str> {
    let text = failed.status.message().to_ascii_lowercase();
    match protocol {
        // An HTTP/1.1 server or load balancer in front of a gRPC exporter.
        Protocol::Grpc => (matches!(failed.http_status, Some(404 | 415 | 464 | 502))
            || failed.status.code() == Code::Unimplemented
            || [
                "frame with invalid size",
                "http2 error",
                "invalid http version",
                "frame_size_error",
            ]
            .iter()
            .any(|s| text.contains(s)))
        .then_some(TO_HTTP),
        // HTTP/2 bytes back to an OTLP/HTTP exporter.
        Protocol::HttpProtobuf => (matches!(failed.http_status, Some(415 | 505))
            || text.contains("invalid http version"))
        .then_some(TO_GRPC),
    }
}

/// Ask the endpoint which protocol it speaks (plain-text endpoints only): an OTLP/HTTP
/// exporter sends the HTTP/2 preface and looks for a SETTINGS frame; a gRPC exporter sends an
/// HTTP/1.1 request and looks for an HTTP/1 status line.
async fn probe(protocol: Protocol, endpoint: &http::Uri) -> Option<&'static str> {
    if endpoint.scheme_str() != Some("http") {
        return None;
    }
    let host = endpoint
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = endpoint.port_u16().unwrap_or(80);
    let (hello, hint): (&[u8], _) = match protocol {
        Protocol::HttpProtobuf => (
            // The preface, then an empty SETTINGS frame.
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
            TO_GRPC,
        ),
        Protocol::Grpc => (
            b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n",
            TO_HTTP,
        ),
    };
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(hello).await.ok()?;
        let mut buf = [0u8; 9];
        let mut read = 0;
        while read < buf.len() {
            match stream.read(&mut buf[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        Some((buf, read))
    })
    .await
    .ok()??;
    let (buf, read) = answer;
    let other = match protocol {
        // A frame header whose type (byte 3) is SETTINGS (4).
        Protocol::HttpProtobuf => read == 9 && buf[3] == 0x04,
        Protocol::Grpc => buf[..read].starts_with(b"HTTP/1."),
    };
    other.then_some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let f = |status: tonic::Status, http: Option<u16>| Failed {
            status,
            retry_after: None,
            http_status: http,
        };
        let h2 = f(
            tonic::Status::unavailable("h2 protocol error: http2 error: frame with invalid size"),
            None,
        );
        assert_eq!(signature(Protocol::Grpc, &h2), Some(TO_HTTP));
        assert_eq!(
            signature(Protocol::Grpc, &f(tonic::Status::unknown("x"), Some(415))),
            Some(TO_HTTP)
        );
        assert_eq!(
            signature(
                Protocol::Grpc,
                &f(tonic::Status::unavailable(REFUSED), None)
            ),
            None
        );
        let parse = f(
            tonic::Status::unavailable("transport error: invalid HTTP version parsed"),
            None,
        );
        assert_eq!(signature(Protocol::HttpProtobuf, &parse), Some(TO_GRPC));
        assert_eq!(
            signature(
                Protocol::HttpProtobuf,
                &f(tonic::Status::unavailable("x"), Some(503))
            ),
            None
        );
    }
}
