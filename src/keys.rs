//! Attribute keys more than one module writes or reads, each defined once: at the bottom, so
//! the protocol layers that write them and the export and tail-keep code that read them can
//! all import them.

use opentelemetry::Key;
use opentelemetry_semantic_conventions::attribute as sc;

// Static keys: building a `Key` from a `&'static str` neither allocates nor counts references.

/// `paytrace.slow`: present (and `true`) when a request or call took longer than its layer's
/// slow threshold; export weighs such spans as priority and tail keep keeps their traces.
pub(crate) const SLOW: Key = Key::from_static_str("paytrace.slow");
/// `paytrace.request.cancelled`: present (and `true`) when a request or call was dropped
/// before it completed.
pub(crate) const CANCELLED: Key = Key::from_static_str("paytrace.request.cancelled");
/// `paytrace.request_id`: the request id returned in `x-request-id`.
pub(crate) const REQUEST_ID: Key = Key::from_static_str("paytrace.request_id");

/// `error.type` (semantic conventions): why a request or call failed.
pub(crate) const ERROR_TYPE: Key = Key::from_static_str(sc::ERROR_TYPE);
/// `server.address` (semantic conventions).
pub(crate) const SERVER_ADDRESS: Key = Key::from_static_str(sc::SERVER_ADDRESS);
/// `server.port` (semantic conventions).
pub(crate) const SERVER_PORT: Key = Key::from_static_str(sc::SERVER_PORT);
