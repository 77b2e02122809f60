//! The outcome of one export attempt, whatever the transport: what failed and how to retry,
//! or what a collector rejected although it accepted the request.

use std::time::Duration;

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
