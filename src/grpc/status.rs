//! gRPC status codes: their names, where a response carries them, and what a failure means.

use std::any::Any;
use std::error::Error as StdError;

use http::{HeaderMap, StatusCode};

/// `grpc-status` and `grpc-message`, in response headers (trailers-only) or trailers.
pub(crate) const GRPC_STATUS: &str = "grpc-status";
pub(crate) const GRPC_MESSAGE: &str = "grpc-message";

/// The canonical status names, indexed by code: the values of `rpc.response.status_code`.
pub(crate) const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub(crate) const OK: u8 = 0;
pub(crate) const CANCELLED: u8 = 1;
pub(crate) const UNKNOWN: u8 = 2;
pub(crate) const DEADLINE_EXCEEDED: u8 = 4;
pub(crate) const UNIMPLEMENTED: u8 = 12;
pub(crate) const INTERNAL: u8 = 13;
pub(crate) const UNAVAILABLE: u8 = 14;

/// The name of a code; codes outside the canonical 17 are `UNKNOWN`, as gRPC reads them.
pub(crate) fn name(code: u8) -> &'static str {
    NAMES.get(usize::from(code)).copied().unwrap_or("UNKNOWN")
}

/// Whether a server span with this status is an error (semantic conventions: the codes that
/// say the server, not the caller, failed).
pub(crate) fn is_server_error(code: u8) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// A `grpc-status` value: a decimal code, unknown values read as `UNKNOWN`.
pub(crate) fn parse(value: &[u8]) -> u8 {
    let code = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match code {
        Some(c) if c < 17 => c as u8,
        _ => UNKNOWN,
    }
}

/// The status a header map (response headers or trailers) carries, if any.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<u8> {
    headers.get(GRPC_STATUS).map(|v| parse(v.as_bytes()))
}

/// The status of a non-200 HTTP response without `grpc-status` (gRPC's HTTP to status
/// mapping: what a proxy or load balancer answering for the server means).
pub(crate) fn from_http(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => INTERNAL,
        401 => 16,
        403 => 7,
        404 => UNIMPLEMENTED,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => UNKNOWN,
    }
}

/// The status a failure stands for, when the error says it: a `tonic::Status` (anywhere in
/// the source chain), an expired `grpc-timeout`, a refused connection.
pub(crate) fn from_error(error: &(dyn Any + 'static)) -> Option<u8> {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        return Some(status.code() as u8);
    }
    let chain: &(dyn StdError + 'static) =
        if let Some(e) = error.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
            e.as_ref()
        } else if let Some(e) = error.downcast_ref::<tonic::transport::Error>() {
            e
        } else {
            error.downcast_ref::<tonic::TimeoutExpired>()?
        };
    let mut next = Some(chain);
    while let Some(e) = next {
        if let Some(status) = e.downcast_ref::<tonic::Status>() {
            return Some(status.code() as u8);
        }
        if e.is::<tonic::TimeoutExpired>() {
            return Some(DEADLINE_EXCEEDED);
        }
        if e.is::<tonic::ConnectError>() {
            return Some(UNAVAILABLE);
        }
        next = e.source();
    }
    None
}

/// A `grpc-message` as text: gRPC percent-encodes it on the wire.
pub(crate) fn message(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match crate::util::percent_escape_at(value, i) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(value[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `grpc-timeout` of a request (gRPC over HTTP/2: at most 8 digits and a unit).
pub(crate) fn timeout(headers: &HeaderMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let v = headers.get("grpc-timeout")?.as_bytes();
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit[0] {
        b'H' => Duration::from_secs(n.saturating_mul(3600)),
        b'M' => Duration::from_secs(n.saturating_mul(60)),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn codes_and_names() {
        assert_eq!(parse(b"0"), OK);
        assert_eq!(parse(b"14"), UNAVAILABLE);
        assert_eq!(parse(b"17"), UNKNOWN);
        assert_eq!(parse(b"x"), UNKNOWN);
        assert_eq!(name(4), "DEADLINE_EXCEEDED");
        assert_eq!(name(16), "UNAUTHENTICATED");
        assert_eq!(name(99), "UNKNOWN");
        for (code, n) in NAMES.iter().enumerate() {
            // The same codes as tonic's, in the spec's spelling.
            let tonic = format!("{:?}", tonic::Code::from_i32(code as i32));
            assert_eq!(n.replace('_', "").to_lowercase(), tonic.to_lowercase());
        }
    }

    #[test]
    fn server_errors_follow_semconv() {
        let errors: Vec<&str> = (0..17u8)
            .filter(|c| is_server_error(*c))
            .map(name)
            .collect();
        assert_eq!(
            errors,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
    }

    #[test]
    fn errors_map_to_their_status() {
        let status = tonic::Status::permission_denied("no");
        assert_eq!(from_error(&status), Some(7));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(tonic::TimeoutExpired(()));
        assert_eq!(from_error(&boxed), Some(DEADLINE_EXCEEDED));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(tonic::Status::data_loss("x"));
        assert_eq!(from_error(&boxed), Some(15));
        assert_eq!(from_error(&std::io::Error::other("x")), None);
    }

    #[test]
    fn http_statuses_map_like_grpc() {
        assert_eq!(from_http(StatusCode::NOT_FOUND), UNIMPLEMENTED);
        assert_eq!(from_http(StatusCode::BAD_GATEWAY), UNAVAILABLE);
        assert_eq!(from_http(StatusCode::IM_A_TEAPOT), UNKNOWN);
    }

    #[test]
    fn messages_are_percent_decoded() {
        assert_eq!(message(b"ledger%20write%20failed"), "ledger write failed");
        assert_eq!(message(b"100%"), "100%");
        assert_eq!(message(b"caf%C3%A9"), "café");
    }

    #[test]
    fn grpc_timeout() {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", "200m".parse().unwrap());
        assert_eq!(timeout(&h), Some(Duration::from_millis(200)));
        h.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(timeout(&h), Some(Duration::from_secs(3)));
        h.insert("grpc-timeout", "123456789m".parse().unwrap());
        assert_eq!(timeout(&h), None, "more than 8 digits");
        h.insert("grpc-timeout", "5x".parse().unwrap());
        assert_eq!(timeout(&h), None);
    }
}
