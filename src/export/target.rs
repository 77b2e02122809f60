//! [`Target`]: where one signal is exported, and how, as the configuration resolved it.

use std::fmt;
use std::time::Duration;

use super::Signal;

/// Where one signal is exported, and how.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) signal: Signal,
    pub(crate) endpoint: http::Uri,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key (PEM), for mutual TLS.
    pub(crate) client_identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) protocol: crate::exporter::Protocol,
    pub(crate) exporter: crate::exporter::Exporter,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.len())
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client_identity.is_some())
            .field("protocol", &self.protocol)
            .field("exporter", &self.exporter)
            .finish()
    }
}
