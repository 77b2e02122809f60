//! OTLP export over gRPC or HTTP: paytrace's own exporters on the official OTLP protobuf
//! definitions, tonic and hyper, running on a dedicated background thread.
//!
//! Why not the stock `opentelemetry-otlp` exporter: it treats a broken connection (a collector
//! restart) as final and drops the batch, has no request size cap, can report success when the
//! final export failed, and runs on the host's runtime, so a current-thread runtime stalls its
//! shutdown. Here:
//! - every export runs on paytrace's own single-thread runtime ([`ExportRuntime`](runtime::ExportRuntime)), so nothing
//!   depends on the host runtime's flavour or on being called from async code;
//! - spans and log records go through bounded queues ([`batch`]): the caller never waits, a full
//!   queue drops and counts;
//! - each request is gzip-compressed, capped in size (larger batches are split), and retried with
//!   exponential backoff and jitter on retryable codes *and* transport failures, within the
//!   export timeout ([`client`]);
//! - every outcome is counted per [`Signal`] ([`stats`]), which feeds the watchdog and the
//!   `paytrace_exporter_*` metrics; each signal's health ([`health`]) is set by the watchdog and
//!   the export path, and shown by a gauge.

mod answer;
pub(crate) mod batch;
pub(crate) mod client;
pub(crate) mod console;
pub(crate) mod diagnosis;
mod frame;
pub(crate) mod health;
#[cfg(feature = "otlp-http")]
mod http;
#[cfg(not(feature = "otlp-http"))]
#[path = "no_http.rs"]
mod http;
pub(crate) mod log_record;
pub(crate) mod otlp;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod runtime;
pub(crate) mod stats;
mod target;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
mod weigh;

#[cfg(feature = "testing")]
pub(crate) use answer::RpcStatus;
#[cfg(feature = "fuzzing")]
pub(crate) use answer::{gunzip as fuzz_gunzip, MAX_RESPONSE as FUZZ_MAX_RESPONSE};
pub(crate) use batch::BatchSettings;

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_partial(body: &[u8], grpc: bool) -> Option<(u64, String)> {
    let partial = if grpc {
        answer::Partial::decode_grpc(body)
    } else {
        answer::Partial::decode(body)
    };
    partial.map(|p| (p.rejected, p.message))
}
pub(crate) use target::Target;

/// Why `http/protobuf` is refused by a build without the `otlp-http` feature.
pub(crate) const NO_OTLP_HTTP: &str =
    "OTLP/HTTP is not built in: enable paytrace's `otlp-http` feature";
/// Why an `https` endpoint is refused by a build without the `tls` feature.
pub(crate) const NO_TLS: &str =
    "https is not built in: enable paytrace's `tls` feature, or use http://";

/// What the gRPC transport reads of a response's status: `(code, message)` of a failure.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_grpc_status(headers: &::http::HeaderMap) -> Option<Result<(), (i32, String)>> {
    let status = client::status_from(headers)?;
    Some(status.map_err(|s| (s.code() as i32, s.message().to_owned())))
}

/// A failed response as the exporter takes it: the retry delay asked for, the message kept.
#[cfg(feature = "fuzzing")]
pub(crate) type FuzzRefusal = (Option<std::time::Duration>, String);

/// What the OTLP/HTTP transport reads of a response: the partial-success report (rejected,
/// message) of a success; the retry delay and message of a failure.
#[cfg(all(feature = "fuzzing", feature = "otlp-http"))]
pub(crate) fn fuzz_http_response(
    status: ::http::StatusCode,
    headers: &::http::HeaderMap,
    body: &[u8],
) -> Result<Option<(u64, String)>, FuzzRefusal> {
    let body = bytes::Bytes::copy_from_slice(body);
    match http::read_response(status, headers, body) {
        Ok(partial) => Ok(partial.map(|p| (p.rejected, p.message))),
        Err(failed) => Err((failed.retry_after, failed.status.message().to_owned())),
    }
}

/// The longest `grpc-message` the gRPC transport keeps.
#[cfg(feature = "fuzzing")]
pub(crate) const FUZZ_MAX_MESSAGE: usize = client::MAX_MESSAGE;

pub(crate) use crate::signal::Signal;
