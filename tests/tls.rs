//! `https://` endpoints: exports reach a TLS collector whose certificate is signed by a custom
//! CA given with `with_certificate` (or `OTEL_EXPORTER_OTLP_CERTIFICATE`), and fail without it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use paytrace::{Config, LogFormat, Telemetry};
use support::ledger::Incoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.0.fetch_add(spans, Ordering::SeqCst);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Accepts metrics and logs (the pipeline pushes them at shutdown) without counting them.
#[derive(Clone, Default)]
struct Sink;

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// End one span, then shut down off the runtime (the final flush blocks).
async fn one_span_then_shutdown(
    telemetry: paytrace::Telemetry,
    name: &'static str,
) -> Result<(), paytrace::Error> {
    telemetry.tracer().start(name).end();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
}

/// A CA, and a `localhost` server certificate and a client certificate it signed:
/// (ca_pem, (server cert, key), (client cert, key)).
#[allow(clippy::type_complexity)]
fn mtls_certificates() -> (String, (String, String), (String, String)) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let signed = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    (ca.pem(), signed("localhost"), signed("payment-service"))
}

/// A CA, and a `localhost` server certificate it signed: (ca_pem, cert_pem, key_pem).
fn certificates() -> (String, String, String) {
    let (ca, (cert, key), _) = mtls_certificates();
    (ca, cert, key)
}

/// An OTLP/gRPC receiver over TLS on a free port, counting trace spans: (port, counter, task).
async fn serve_tls(tls: ServerTlsConfig) -> (u16, Counter, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = Counter::default();
    let gzip = tonic::codec::CompressionEncoding::Gzip;
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(TraceServiceServer::new(counter.clone()).accept_compressed(gzip))
        .add_service(MetricsServiceServer::new(Sink).accept_compressed(gzip))
        .add_service(LogsServiceServer::new(Sink).accept_compressed(gzip))
        .serve_with_incoming(Incoming(listener));
    let task = tokio::spawn(async move {
        let _ = server.await;
    });
    (port, counter, task)
}

fn config(endpoint: &str) -> Config {
    Config::new()
        .with_endpoint(endpoint)
        .with_install_subscriber(false)
        .with_log_format(LogFormat::Off)
        .with_export_timeout(Duration::from_secs(2))
        .with_shutdown_timeout(Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_tls_with_a_custom_ca() {
    let (ca_pem, cert_pem, key_pem) = certificates();
    let (port, counter, server) =
        serve_tls(ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem))).await;
    let endpoint = format!("https://localhost:{port}");

    let ca_file =
        std::env::temp_dir().join(format!("paytrace-tls-ca-{}-{port}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca_pem).unwrap();

    // Trusted through the custom CA: the span arrives.
    let telemetry = Telemetry::start(config(&endpoint).with_certificate(&ca_file)).unwrap();
    telemetry.tracer().start("over-tls").end();
    telemetry.shutdown().unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);

    // The same through the environment variable.
    let env =
        Config::from_env_vars([("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.to_str().unwrap())]);
    let telemetry = Telemetry::start(
        env.with_endpoint(&endpoint)
            .with_install_subscriber(false)
            .with_log_format(LogFormat::Off),
    )
    .unwrap();
    telemetry.tracer().start("over-tls-env").end();
    telemetry.shutdown().unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 2);

    // Without the CA the server is not trusted: the export fails, and shutdown says so.
    let telemetry = Telemetry::start(config(&endpoint)).unwrap();
    telemetry.tracer().start("untrusted").end();
    assert!(telemetry.shutdown().is_err());
    assert_eq!(counter.0.load(Ordering::SeqCst), 2);

    server.abort();
    let _ = std::fs::remove_file(ca_file);
}

/// Write `pems` to temporary files named after `tag`; the paths, in order.
fn files(tag: &str, pems: &[&str]) -> Vec<std::path::PathBuf> {
    pems.iter()
        .enumerate()
        .map(|(i, pem)| {
            let path = std::env::temp_dir().join(format!(
                "paytrace-mtls-{tag}-{}-{i}.pem",
                std::process::id()
            ));
            std::fs::write(&path, pem).unwrap();
            path
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mutual_tls_needs_the_client_certificate() {
    let (ca, (cert, key), (client_cert, client_key)) = mtls_certificates();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(tonic::transport::Certificate::from_pem(&ca));
    let (port, counter, server) = serve_tls(tls).await;
    let endpoint = format!("https://localhost:{port}");
    let paths = files("grpc", &[&ca, &client_cert, &client_key]);
    let vars = |with_client: bool| {
        let mut v = vec![(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            paths[0].to_str().unwrap().to_owned(),
        )];
        if with_client {
            v.push((
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                paths[1].to_str().unwrap().to_owned(),
            ));
            v.push((
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                paths[2].to_str().unwrap().to_owned(),
            ));
        }
        v
    };
    let start = |with_client: bool| {
        Telemetry::start(
            Config::from_env_vars(vars(with_client))
                .with_endpoint(&endpoint)
                .with_install_subscriber(false)
                .with_log_format(LogFormat::Off)
                .with_export_timeout(Duration::from_secs(2))
                .with_shutdown_timeout(Duration::from_secs(3)),
        )
        .unwrap()
    };

    let telemetry = start(true);
    one_span_then_shutdown(telemetry, "mtls").await.unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);

    // Without the client certificate the collector refuses, and the error says what to set.
    let telemetry = start(false);
    let err = one_span_then_shutdown(telemetry, "no-client-cert")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
            && err.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        "{err}"
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    server.abort();
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_mutual_tls_needs_the_client_certificate() {
    use tokio_rustls::rustls;
    let (ca, (cert, key), (client_cert, client_key)) = mtls_certificates();
    // An OTLP/HTTP receiver over TLS that requires a client certificate signed by the CA.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let server_key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, server_key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        if req.uri().path() == "/v1/traces" {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        async {
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::new()),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let paths = files("http", &[&ca, &client_cert, &client_key]);
    let start = |with_client: bool| {
        let mut config = Config::new()
            .with_protocol(paytrace::Protocol::HttpProtobuf)
            .with_endpoint(format!("https://localhost:{port}"))
            .with_certificate(&paths[0])
            .with_install_subscriber(false)
            .with_log_format(LogFormat::Off)
            .with_export_timeout(Duration::from_secs(2))
            .with_shutdown_timeout(Duration::from_secs(3));
        if with_client {
            config = config.with_client_certificate(&paths[1], &paths[2]);
        }
        Telemetry::start(config).unwrap()
    };
    let telemetry = start(true);
    one_span_then_shutdown(telemetry, "mtls-http")
        .await
        .unwrap();
    assert_eq!(posts.load(Ordering::SeqCst), 1);

    let telemetry = start(false);
    let err = one_span_then_shutdown(telemetry, "no-client-cert")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        "{err}"
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    server.abort();
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}
