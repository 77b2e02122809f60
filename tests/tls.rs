//! `https://` endpoints: exports reach a TLS collector whose certificate is signed by a custom
//! CA given with `with_certificate` (or `OTEL_EXPORTER_OTLP_CERTIFICATE`), and fail without it.

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

/// A CA, and a `localhost` server certificate it signed: (ca_pem, cert_pem, key_pem).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = Counter::default();
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem)))
        .unwrap()
        .add_service(
            TraceServiceServer::new(counter.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(
            MetricsServiceServer::new(Sink)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(
            LogsServiceServer::new(Sink).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .serve_with_incoming(Incoming(listener));
    let server = tokio::spawn(server);
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

/// Accepted connections, as the stream tonic's `serve_with_incoming` takes.
struct Incoming(tokio::net::TcpListener);

impl tonic::codegen::tokio_stream::Stream for Incoming {
    type Item = std::io::Result<tokio::net::TcpStream>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0
            .poll_accept(cx)
            .map(|r| Some(r.map(|(stream, _)| stream)))
    }
}
