//! Without the `otlp-http` feature: no OTLP/HTTP transport exists. `http/protobuf` is refused
//! when the configuration is resolved, so this uninhabited type is never built.

use std::time::Duration;

use bytes::Bytes;

use super::answer::{Failed, Partial};
use super::target::Target;
use crate::error::Error;

#[derive(Debug)]
pub(crate) enum HttpTransport {}

impl HttpTransport {
    pub(crate) fn new(target: &Target, _: Duration) -> Result<Self, Error> {
        let protocol = target.protocol.as_str();
        Err(Error::invalid(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            protocol,
            super::NO_OTLP_HTTP,
        ))
    }

    pub(crate) async fn attempt(&self, _: &Bytes) -> Result<Option<Partial>, Failed> {
        match *self {}
    }
}
