//! OTLP protobuf: spans and log records encoded straight to bytes (`encoder`) after the
//! sanitizer (`sanitize`) applied limits and redaction, with a small protobuf writer (`wire`) and
//! the OTLP field numbers by name (`fields`); paytrace's Prometheus registry converted to an OTLP
//! metrics request (`metrics`), as deltas when asked (`delta`).

pub(crate) mod delta;
mod encoder;
mod fields;
pub(crate) mod metrics;
mod sanitize;
mod wire;

pub(crate) use encoder::{proto_resource, Encoded, Encoder};
pub(crate) use sanitize::Sanitizer;
