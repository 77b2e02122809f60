//! Without the `tls` feature: no TLS client exists. `https` endpoints are refused when the
//! configuration is resolved, so these uninhabited types are never built.

use tokio::net::TcpStream;
use tonic::transport::Endpoint;

use super::target::Target;
use crate::error::Error;

pub(crate) fn grpc_endpoint(_: Endpoint, target: &Target) -> Result<Endpoint, Error> {
    Err(refused(target))
}

fn refused(target: &Target) -> Error {
    Error::invalid(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        target.endpoint.to_string(),
        super::NO_TLS,
    )
}

#[derive(Debug)]
pub(crate) enum ClientTls {}

impl ClientTls {
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) fn new(target: &Target, _alpn: &[u8]) -> Result<ClientTls, Error> {
        Err(refused(target))
    }

    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) async fn connect(&self, _: TcpStream) -> std::io::Result<TcpStream> {
        match *self {}
    }
}

#[derive(Debug)]
pub(crate) enum TlsProbe {}

impl TlsProbe {
    pub(crate) fn new(_: &Target, _: &[u8]) -> Option<TlsProbe> {
        None
    }

    pub(crate) async fn needs_client_certificate(&self, _: &http::Uri) -> bool {
        match *self {}
    }
}
