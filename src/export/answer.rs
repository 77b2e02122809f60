//! A collector's answer to one export attempt, whatever the transport: what failed and how to
//! retry, or what it rejected although it accepted the request.

use std::io::Read as _;
use std::time::Duration;

use prost::Message as _;
use tonic::Status;

/// A failed attempt: its status (the retry policy reads the code), when the collector asked to
/// wait, and the HTTP status when there was one.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) status: Status,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) http_status: Option<u16>,
}

impl From<Status> for Failed {
    fn from(status: Status) -> Self {
        Failed {
            status,
            retry_after: None,
            http_status: None,
        }
    }
}

/// The OTLP/HTTP transport's failures as the statuses the gRPC side reports.
#[cfg(feature = "otlp-http")]
impl Failed {
    pub(crate) fn transport(message: impl Into<String>) -> Self {
        Status::unavailable(message.into()).into()
    }

    pub(crate) fn from_io(error: &std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::ConnectionRefused {
            Status::unavailable(REFUSED).into()
        } else {
            Failed::transport(error.to_string())
        }
    }

    pub(crate) fn from_http_error(error: &hyper::Error) -> Self {
        if refused(error) {
            return Status::unavailable(REFUSED).into();
        }
        Failed::transport(format!("transport error: {}", chain(error)))
    }
}

/// The marker a refused connection's status carries, turned into "no collector at …".
pub(crate) const REFUSED: &str = "connection refused";

/// What a collector reported it could not take although the request succeeded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Partial {
    pub(crate) rejected: u64,
    pub(crate) message: String,
}

/// The most of a success response read for its partial-success report: the report is a count
/// and a message, and a collector must not make the export thread buffer more.
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

impl Partial {
    /// The partial-success report of an OTLP export response (protobuf), when it reports
    /// anything.
    pub(crate) fn decode(response: &[u8]) -> Option<Partial> {
        ExportResponse::decode(response)
            .ok()?
            .partial_success
            .filter(|p| p.rejected > 0 || !p.error_message.is_empty())
            .map(|p| Partial {
                rejected: u64::try_from(p.rejected).unwrap_or(0),
                message: p.error_message,
            })
    }

    /// The report in a gRPC response body: one length-prefixed message, gzip-compressed when
    /// its flag says so. Anything malformed or too large reports nothing.
    pub(crate) fn decode_grpc(body: &[u8]) -> Option<Partial> {
        let (&compressed, rest) = body.split_first()?;
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let message = rest.get(4..)?.get(..len)?;
        if compressed == 0 {
            return Partial::decode(message);
        }
        Partial::decode(&gunzip(message)?)
    }
}

/// A gzip-compressed response body, at most [`MAX_RESPONSE`] bytes of it; `None` when it is
/// not valid gzip.
pub(crate) fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response.
#[cfg(any(feature = "otlp-http", feature = "testing"))]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

/// The partial-success part every OTLP export response shares (field 1 of each).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub(crate) partial_success: Option<PartialSuccess>,
}

/// `rejected_spans` / `rejected_data_points` / `rejected_log_records`, and the message.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PartialSuccess {
    #[prost(int64, tag = "1")]
    pub(crate) rejected: i64,
    #[prost(string, tag = "2")]
    pub(crate) error_message: String,
}

/// Whether `error` or one of its sources is a refused TCP connection.
pub(crate) fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its sources, each distinct part once.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    with_sources(error.to_string(), error.source())
}

/// Append each source's text unless already present (tonic nests the same message at several
/// levels).
pub(crate) fn with_sources(
    mut text: String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn report(rejected: i64) -> Vec<u8> {
        ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec()
    }

    fn grpc_frame(compressed: bool, message: &[u8]) -> Vec<u8> {
        let mut frame = vec![u8::from(compressed)];
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    #[test]
    fn a_partial_success_is_read_from_either_transport() {
        let expected = Some(Partial {
            rejected: 3,
            message: "too old".into(),
        });
        assert_eq!(Partial::decode(&report(3)), expected);
        assert_eq!(Partial::decode(b""), None, "an empty response accepts all");
        assert_eq!(
            Partial::decode_grpc(&grpc_frame(false, &report(3))),
            expected
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&report(3)).unwrap();
        let gzipped = gz.finish().unwrap();
        assert_eq!(Partial::decode_grpc(&grpc_frame(true, &gzipped)), expected);
    }

    #[test]
    fn a_malformed_report_says_nothing() {
        let frame = grpc_frame(false, &report(3));
        assert_eq!(
            Partial::decode_grpc(&frame[..frame.len() - 1]),
            None,
            "cut short"
        );
        assert_eq!(Partial::decode_grpc(&grpc_frame(true, b"not gzip")), None);
        assert_eq!(Partial::decode_grpc(&[]), None);
        assert_eq!(
            Partial::decode(&report(-5)).map(|p| p.rejected),
            Some(0),
            "a negative count is no count"
        );
    }
}
