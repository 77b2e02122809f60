//! Shared pieces of the benchmarks: the trivial router, a discarding span exporter for the stock
//! SDK pipeline every in-process row shares, and a sink writer.
#![allow(dead_code, unreachable_pub)] // each bench binary uses a subset

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt as _;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tower::ServiceExt as _;

/// Accepts every batch and drops it: the cost left is the SDK's and the layer's.
#[derive(Debug, Default)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// The stock SDK with its batch processor feeding [`Discard`], sampling everything.
pub fn stock_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build()
}

/// The trivial handler every row wraps.
pub fn router() -> Router {
    Router::new().route("/orders/{id}", get(|| async { "ok" }))
}

pub fn request() -> http::Request<Body> {
    http::Request::get("/orders/42")
        .body(Body::empty())
        .expect("static request")
}

/// One request through `app` to the end of its body (so spans that end with the body end).
pub async fn drive(app: Router) {
    let response = app.oneshot(request()).await.expect("infallible");
    let _ = response.into_body().collect().await;
}

/// A `MakeWriter` that discards.
pub fn sink() -> fn() -> std::io::Sink {
    std::io::sink
}

// === the floor: one OpenTelemetry span per request, nothing else ===

#[derive(Clone)]
pub struct FloorLayer(pub opentelemetry_sdk::trace::Tracer);

impl<S> tower::Layer<S> for FloorLayer {
    type Service = Floor<S>;
    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            tracer: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Floor<S> {
    inner: S,
    tracer: opentelemetry_sdk::trace::Tracer,
}

impl<S, B> tower::Service<http::Request<B>> for Floor<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        FloorFuture {
            inner: self.inner.call(req),
            span: Some(self.tracer.start("request")),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct FloorFuture<F> {
        #[pin]
        inner: F,
        span: Option<opentelemetry_sdk::trace::Span>,
    }
}

impl<F: Future> Future for FloorFuture<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Some(mut span) = this.span.take() {
            span.end();
        }
        Poll::Ready(out)
    }
}

/// CPU seconds used so far by this process's threads whose name passes `name` (Linux; 0
/// elsewhere). From `schedstat`, which counts nanoseconds; `stat` counts 10 ms ticks, too
/// coarse for a run of a few hundred milliseconds. Threads that already exited are not counted.
pub fn thread_cpu(name: impl Fn(&str) -> bool) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|comm| name(comm.trim()))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .sum()
}
