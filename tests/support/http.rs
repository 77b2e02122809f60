//! Shared helpers for the integration tests: an in-memory span pipeline, the HTTP layer built on
//! it, a slow streaming body.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Once;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Key, Value};
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use paytrace::http::{HttpMetrics, TraceLayer};

/// The global propagator every test installs: the same value everywhere, so tests running in
/// parallel in one binary never see a different one.
pub fn install_propagator() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(paytrace::propagation::TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    });
}

/// Send `GET /orders/{n}` for each `n` in `0..requests` through `app`, reading each body to
/// its end (so the layer's span and metrics are complete).
pub async fn get_orders(app: &axum::Router, requests: u32) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    for n in 0..requests {
        let request = http::Request::get(format!("/orders/{n}"))
            .body(axum::body::Body::empty())
            .expect("a valid request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        response.into_body().collect().await.expect("a body");
    }
}

/// An SDK tracer provider exporting synchronously into memory.
pub struct Spans {
    pub provider: SdkTracerProvider,
    pub exporter: InMemorySpanExporter,
}

impl Spans {
    /// The SDK's default sampler: parent-based, always on for roots.
    pub fn new() -> Self {
        Self::with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
    }

    pub fn with_sampler(sampler: opentelemetry_sdk::trace::Sampler) -> Self {
        install_propagator();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(exporter.clone())
            .build();
        Spans { provider, exporter }
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("paytrace-test")
    }

    /// A layer on this provider, with metrics in a fresh registry.
    pub fn layer(&self) -> (TraceLayer, prometheus::Registry) {
        let registry = prometheus::Registry::new();
        let metrics = HttpMetrics::new(&registry).expect("fresh registry");
        (
            TraceLayer::from_tracer(self.tracer()).with_metrics(Some(metrics)),
            registry,
        )
    }

    pub fn finished(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter")
    }

    /// The only finished span; panics with the list otherwise.
    pub fn only(&self) -> SpanData {
        let spans = self.finished();
        assert_eq!(
            spans.len(),
            1,
            "expected one span, got {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        spans.into_iter().next().unwrap()
    }
}

pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::new(key.to_owned()))
        .map(|kv| kv.value.clone())
}

pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub fn attr_i64(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key)? {
        Value::I64(v) => Some(v),
        other => panic!("{key} is not an i64: {other:?}"),
    }
}

pub fn attr_bool(span: &SpanData, key: &str) -> Option<bool> {
    match attr(span, key)? {
        Value::Bool(v) => Some(v),
        other => panic!("{key} is not a bool: {other:?}"),
    }
}

/// Everything a span would export, as text: name, attributes, status.
pub fn span_text(span: &SpanData) -> String {
    format!("{} {:?} {:?}", span.name, span.attributes, span.status)
}

/// The Prometheus text exposition of a registry.
pub fn metrics_text(registry: &prometheus::Registry) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode")
}

// === bodies ===

/// A body of `chunks` 10-byte chunks, each after `delay` (tokio time).
pub struct SlowBody {
    chunks: usize,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

pub const CHUNK: &[u8] = b"0123456789";

impl SlowBody {
    pub fn new(chunks: usize, delay: Duration) -> Self {
        SlowBody {
            chunks,
            delay,
            sleep: None,
        }
    }
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.chunks == 0 {
            return Poll::Ready(None);
        }
        let delay = self.delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.chunks -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(CHUNK)))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks == 0
    }
}

use std::future::Future as _;

// === a server that records what it received ===

/// The request headers a [`HeaderRecorder`] received, one map per request.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<http::HeaderMap>>>;

/// A small axum server on 127.0.0.1:0 that answers every request with 200 and keeps its
/// headers: what really left a client, read on the receiving side of a real socket.
pub async fn header_recorder() -> (std::net::SocketAddr, Received) {
    let received = Received::default();
    let keep = received.clone();
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap| {
        let keep = keep.clone();
        async move {
            keep.lock().expect("not poisoned").push(headers);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (addr, received)
}

/// A hyper-util client whose connections all go to `addr`, whatever the request's host: a
/// stand-in for DNS, so a layer above it sees `http://psp.example/…` while the request
/// reaches a local [`header_recorder`] (the `Host` header keeps the name).
pub fn client_to(
    addr: std::net::SocketAddr,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future = impl Send,
> + Clone {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    tower::ServiceBuilder::new()
        .map_request(move |mut req: http::Request<String>| {
            if let Some(host) = req.uri().host() {
                let host = http::HeaderValue::from_str(host).expect("a host");
                req.headers_mut().insert(http::header::HOST, host);
            }
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *req.uri_mut() = format!("http://{addr}{path}").parse().expect("a URI");
            req
        })
        .service(client)
}
