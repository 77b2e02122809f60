//! The OTLP/HTTP side of an export (`http/protobuf`): `POST` of the same encoded request the
//! gRPC side frames, on one kept-alive HTTP/1.1 connection per signal.
//!
//! hyper's connection API rather than a pooled client: a signal's exports take turns, so one
//! connection is all a signal uses, and hyper and rustls are already in the tree through tonic.

use std::time::Duration;

use super::answer::{gunzip, Failed, Partial, RpcStatus, MAX_RESPONSE};
use super::target::Target;
use super::tls::ClientTls;
use crate::error::Error;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use prost::Message as _;

/// One signal's OTLP/HTTP endpoint and its connection.
pub(crate) struct HttpTransport {
    uri: http::Uri,
    /// The request target (path and query), parsed once.
    path: http::uri::PathAndQuery,
    headers: HeaderMap,
    tls: Option<ClientTls>,
    connect_timeout: Duration,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub(crate) fn new(target: &Target, timeout: Duration) -> Result<Self, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("paytrace/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(authority) = target.endpoint.authority() {
            if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                headers.insert(http::header::HOST, v);
            }
        }
        for (k, v) in &target.headers {
            // Checked in Config::resolve; skipping here keeps this infallible.
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        let tls = match target.endpoint.scheme_str() {
            Some("https") => Some(ClientTls::new(target, b"http/1.1")?),
            _ => None,
        };
        let path = target
            .endpoint
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        Ok(HttpTransport {
            path,
            uri: target.endpoint.clone(),
            headers,
            tls,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// One `POST` of a framed request (the gRPC frame's payload is the body: gzip or plain).
    pub(crate) async fn attempt(&self, framed: &Bytes) -> Result<Option<Partial>, Failed> {
        let compressed = framed.first() == Some(&1);
        let body = framed.slice(5.min(framed.len())..);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from(self.path.clone());
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        if compressed {
            headers.insert(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }

        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = Some(self.connect().await?);
        }
        let Some(sender) = conn.as_mut() else {
            return Err(Failed::transport("no connection"));
        };
        let sent = async {
            sender.ready().await?;
            sender.send_request(request).await
        }
        .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                *conn = None;
                return Err(Failed::from_http_error(&e));
            }
        };
        drop(conn);
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        read_response(parts.status, &parts.headers, body)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failed> {
        let host = self.uri.host().unwrap_or("localhost");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self
            .uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| {
            Failed::transport(format!(
                "connect timed out after {:?}",
                self.connect_timeout
            ))
        })?
        .map_err(|e| Failed::from_io(&e))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(tls) => {
                let stream = tls
                    .connect(tcp)
                    .await
                    .map_err(|e| Failed::transport(format!("TLS handshake failed: {e}")))?;
                handshake(TokioIo::new(stream)).await
            }
            None => handshake(TokioIo::new(tcp)).await,
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failed>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failed::from_http_error(&e))?;
    // The connection is driven on the export runtime; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A collector's response, its body at most [`MAX_RESPONSE`] bytes as received.
pub(super) fn read_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Option<Partial>, Failed> {
    verdict(status, headers, &decoded(headers, body))
}

/// What a response says: success (with its partial-success report), a retryable failure
/// (429, 502, 503, 504, honouring `Retry-After`), or a final one.
fn verdict(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Partial>, Failed> {
    if status.is_success() {
        return Ok(Partial::decode(body));
    }
    let message = RpcStatus::decode(body)
        .ok()
        .map(|s| s.message)
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", crate::util::truncate(&m, 256)))
        .unwrap_or_default();
    let text = format!("collector answered HTTP {status}{message}");
    let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
    Err(Failed {
        status: if retryable {
            tonic::Status::unavailable(text)
        } else {
            tonic::Status::failed_precondition(text)
        },
        retry_after: retryable.then(|| retry_after(headers)).flatten(),
        http_status: Some(status.as_u16()),
    })
}

/// The response body, gunzipped when the collector compressed it (paytrace asks for no
/// encoding, but a collector may compress anyway); empty when that is not valid gzip.
fn decoded(headers: &HeaderMap, body: Bytes) -> Bytes {
    let gzip = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return body;
    }
    gunzip(&body).map(Bytes::from).unwrap_or_default()
}

/// `Retry-After` in seconds (the HTTP-date form is rare from collectors and read as absent).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(300)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::answer::{ExportResponse, PartialSuccess};

    #[test]
    fn retryable_statuses_and_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        for code in [429, 502, 503, 504] {
            let f = verdict(StatusCode::from_u16(code).unwrap(), &h, b"").unwrap_err();
            assert_eq!(f.status.code(), tonic::Code::Unavailable, "{code}");
            assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
        }
        let body = RpcStatus {
            code: 3,
            message: "bad spans".into(),
        }
        .encode_to_vec();
        let f = verdict(StatusCode::BAD_REQUEST, &h, &body).unwrap_err();
        assert_ne!(f.status.code(), tonic::Code::Unavailable);
        assert!(f.status.message().contains("bad spans"));
        assert_eq!(f.retry_after, None);
    }

    #[test]
    fn a_gzip_response_is_unzipped_and_bad_gzip_reads_as_empty() {
        use std::io::Write as _;
        let mut gzip = HeaderMap::new();
        gzip.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"report").unwrap();
        let zipped = Bytes::from(encoder.finish().unwrap());
        assert_eq!(&decoded(&gzip, zipped.clone())[..], b"report");
        assert_eq!(&decoded(&HeaderMap::new(), zipped.clone())[..], &zipped[..]);
        assert!(decoded(&gzip, Bytes::from_static(b"not gzip")).is_empty());
    }

    #[test]
    fn partial_success_is_read() {
        assert_eq!(
            verdict(StatusCode::OK, &HeaderMap::new(), b"").unwrap(),
            None
        );
        let body = ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 4,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        let p = verdict(StatusCode::OK, &HeaderMap::new(), &body)
            .unwrap()
            .unwrap();
        assert_eq!((p.rejected, p.message.as_str()), (4, "too old"));
    }
}
