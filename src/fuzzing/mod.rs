//! Entry points of the parsers that read bytes a client or a collector controls, and the fuzz
//! targets' bodies: `fuzz/` runs them under libFuzzer, `cargo test` (`tests/fuzz_corpus.rs`, in
//! a process of its own: runtime control rebuilds `tracing`'s global interest cache) replays the
//! committed corpora through the same bodies. Not a stable API (feature `fuzzing`).

mod checks;
pub mod targets;

use std::time::Duration;

/// The `tracestate` list several fields form: duplicates reduced, truncated to the limits;
/// `None` when the list is invalid (what extraction keeps).
pub fn tracestate(fields: &[&[u8]]) -> Option<Vec<(String, String)>> {
    crate::propagation::fuzz_tracestate(fields)
}

/// The `baggage` list several fields form, as handed to the SDK's propagator.
pub fn baggage(fields: &[&[u8]]) -> Option<String> {
    crate::propagation::fuzz_baggage(fields)
}

/// The `grpc-timeout` of a request's headers.
#[cfg(feature = "grpc")]
pub fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    crate::grpc::fuzz_timeout(headers)
}

/// The partial-success report of an OTLP/HTTP response body: rejected count and message.
pub fn partial_success(body: &[u8]) -> Option<(u64, String)> {
    crate::export::fuzz_partial(body, false)
}

/// The partial-success report of a gRPC response body (length-prefixed, maybe gzip).
pub fn partial_success_grpc(body: &[u8]) -> Option<(u64, String)> {
    crate::export::fuzz_partial(body, true)
}

/// A gzip response body, at most the bytes paytrace reads of one.
pub fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    crate::export::fuzz_gunzip(data)
}

/// A gRPC response's status headers as the exporter reads them: `(code, message)` of a failure.
pub fn grpc_status(headers: &http::HeaderMap) -> Option<Result<(), (i32, String)>> {
    crate::export::fuzz_grpc_status(headers)
}

/// The longest `grpc-message` [`grpc_status`] keeps.
pub const MAX_MESSAGE: usize = crate::export::FUZZ_MAX_MESSAGE;

/// A failed response as the exporter takes it: the retry delay asked for, the message kept.
pub type Refusal = crate::export::FuzzRefusal;

/// An OTLP/HTTP response as the exporter reads it: the partial-success report of a success, the
/// retry delay and message of a failure.
#[cfg(feature = "otlp-http")]
pub fn http_response(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Option<(u64, String)>, Refusal> {
    crate::export::fuzz_http_response(status, headers, body)
}

/// The most [`gunzip`] returns.
pub const MAX_RESPONSE: usize = crate::export::FUZZ_MAX_RESPONSE;

/// A runtime-control request body (JSON) applied to a control of its own: the outcome,
/// and the keep ratio and log filter in force after it.
pub fn control_apply(body: &str) -> (Result<(), String>, Option<f64>, String) {
    let (result, state) = crate::control::fuzz_apply(body);
    (result, state.keep_ratio, state.log_filter)
}

/// Every `OTEL_*` value parser run on `value`; each result rendered with `{:?}`.
pub fn otel_values(value: &str) -> Vec<String> {
    crate::config::fuzz_parse(value)
}
