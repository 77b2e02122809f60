//! gRPC status codes: their names, where a response carries them, and what a failure means.

use std::any::Any;
use std::error::Error as StdError;

use http::{HeaderMap, StatusCode};
use tonic::Code;

/// `grpc-status` and `grpc-message`, in response headers (trailers-only) or trailers.
pub(crate) const GRPC_STATUS: &str = "grpc-status";
pub(crate) const GRPC_MESSAGE: &str = "grpc-message";

/// How many canonical codes there are: `Code`'s discriminants run from 0 to `CODES - 1`, so a
/// table of one entry per code is indexed by `code as usize`.
pub(crate) const CODES: usize = 17;

/// The canonical name of a code, as `rpc.response.status_code` and the metric label spell it.
pub(crate) fn name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a server span with this status is an error (semantic conventions: the codes that
/// say the server, not the caller, failed).
pub(crate) fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// A `grpc-status` value: a decimal code, unknown values read as `UNKNOWN`.
pub(crate) fn parse(value: &[u8]) -> Code {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32)
}

/// The status a header map (response headers or trailers) carries, if any.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Code> {
    headers.get(GRPC_STATUS).map(|v| parse(v.as_bytes()))
}

/// The status of a non-200 HTTP response without `grpc-status` (gRPC's HTTP to status
/// mapping: what a proxy or load balancer answering for the server means).
pub(crate) fn from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// The status a failure stands for, when the error says it: a `tonic::Status` (anywhere in
/// the source chain), an expired `grpc-timeout`, a refused connection.
pub(crate) fn from_error(error: &(dyn Any + 'static)) -> Option<Code> {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        return Some(status.code());
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
            return Some(status.code());
        }
        if e.is::<tonic::TimeoutExpired>() {
            return Some(Code::DeadlineExceeded);
        }
        if e.is::<tonic::ConnectError>() {
            return Some(Code::Unavailable);
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

    /// Every code, in discriminant order.
    fn all_codes() -> impl Iterator<Item = Code> {
        (0..CODES as i32).map(Code::from_i32)
    }

    #[test]
    fn codes_and_names() {
        assert_eq!(parse(b"0"), Code::Ok);
        assert_eq!(parse(b"14"), Code::Unavailable);
        assert_eq!(parse(b" 4 "), Code::DeadlineExceeded);
        assert_eq!(parse(b"17"), Code::Unknown);
        assert_eq!(parse(b"-1"), Code::Unknown);
        assert_eq!(parse(b"x"), Code::Unknown);
        assert_eq!(name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(name(Code::Unauthenticated), "UNAUTHENTICATED");
        for (i, code) in all_codes().enumerate() {
            assert_eq!(code as usize, i, "tables are indexed by discriminant");
            // tonic's variant, in the spec's spelling.
            let tonic = format!("{code:?}");
            assert_eq!(
                name(code).replace('_', "").to_lowercase(),
                tonic.to_lowercase()
            );
        }
        assert_eq!(
            Code::from_i32(CODES as i32),
            Code::Unknown,
            "CODES counts them all"
        );
    }

    #[test]
    fn server_errors_follow_semconv() {
        let errors: Vec<&str> = all_codes()
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
        assert_eq!(from_error(&status), Some(Code::PermissionDenied));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(tonic::TimeoutExpired(()));
        assert_eq!(from_error(&boxed), Some(Code::DeadlineExceeded));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(tonic::Status::data_loss("x"));
        assert_eq!(from_error(&boxed), Some(Code::DataLoss));
        assert_eq!(from_error(&std::io::Error::other("x")), None);
    }

    #[test]
    fn http_statuses_map_like_grpc() {
        assert_eq!(from_http(StatusCode::NOT_FOUND), Code::Unimplemented);
        assert_eq!(from_http(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
        assert_eq!(from_http(StatusCode::FORBIDDEN), Code::PermissionDenied);
        assert_eq!(from_http(StatusCode::BAD_GATEWAY), Code::Unavailable);
        assert_eq!(from_http(StatusCode::IM_A_TEAPOT), Code::Unknown);
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
