//! The client side of TLS (feature `tls`) for the OTLP transports and for diagnosis: rustls with
//! the system roots, the configured CA and, for mutual TLS, the client certificate.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_rustls::TlsConnector;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::target::Target;
use crate::error::Error;

/// tonic's channel to `target` over TLS: the system roots, the configured CA and identity.
pub(crate) fn grpc_endpoint(endpoint: Endpoint, target: &Target) -> Result<Endpoint, Error> {
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(host) = target.endpoint.host() {
        tls = tls.domain_name(host);
    }
    if let Some(pem) = &target.ca_pem {
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    if let Some((cert, key)) = &target.client_identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    endpoint
        .tls_config(tls)
        .map_err(|e| Error::invalid("OTEL_EXPORTER_OTLP_CERTIFICATE", "<pem>", e))
}

/// A TLS client for one endpoint.
pub(crate) struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    pub(crate) fn new(target: &Target, alpn: &[u8]) -> Result<ClientTls, Error> {
        let (connector, name) = connector(target, alpn)?;
        Ok(ClientTls { connector, name })
    }

    /// The handshake over an open connection.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }
}

/// The client TLS configuration: system roots plus the configured CA, and the client
/// certificate for mutual TLS.
fn connector(target: &Target, alpn: &[u8]) -> Result<(TlsConnector, ServerName<'static>), Error> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad =
        |var: &'static str, e: &dyn std::fmt::Display| Error::invalid(var, "<pem>", e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = &target.ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad("OTEL_EXPORTER_OTLP_CERTIFICATE", &e))?;
            roots
                .add(cert)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CERTIFICATE", &e))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("OTEL_EXPORTER_OTLP_CERTIFICATE", &e))?
    .with_root_certificates(roots);
    let mut config = match &target.client_identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &e))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_KEY", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_KEY", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let host = target.endpoint.host().unwrap_or("localhost");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::invalid(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            host.to_owned(),
            e.to_string(),
        )
    })?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// A TLS client for one endpoint, to ask the collector whether it wants a client certificate.
#[derive(Debug)]
pub(crate) struct TlsProbe(ClientTls);

impl TlsProbe {
    pub(crate) fn new(target: &Target, alpn: &[u8]) -> Option<TlsProbe> {
        ClientTls::new(target, alpn).ok().map(TlsProbe)
    }

    /// Whether the collector at `endpoint` refuses a handshake without a client certificate:
    /// the handshake completes (TLS 1.3), then its first answer is the `certificate_required`
    /// alert.
    pub(crate) async fn needs_client_certificate(&self, endpoint: &http::Uri) -> bool {
        needs_client_certificate(&self.0, endpoint).await
    }
}

async fn needs_client_certificate(tls: &ClientTls, endpoint: &http::Uri) -> bool {
    use tokio::io::AsyncReadExt as _;
    let Some(host) = endpoint.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = endpoint.port_u16().unwrap_or(443);
    let probe = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let text = match tls.connect(tcp).await {
            Err(e) => e.to_string(),
            Ok(mut tls) => {
                let mut byte = [0u8; 1];
                match tls.read(&mut byte).await {
                    Err(e) => e.to_string(),
                    Ok(_) => return Some(false),
                }
            }
        };
        let text = text.to_ascii_lowercase().replace(' ', "");
        Some(text.contains("certificaterequired") || text.contains("handshakefailure"))
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), probe).await,
        Ok(Some(true))
    )
}
