//! HTTP instrumentation for axum 0.8 and hyper 1: a tower layer that traces every server
//! request ([`TraceLayer`]), another for outgoing calls ([`ClientLayer`]), and
//! [`inject_context`] for clients that are not tower services.
//!
//! Per request, [`TraceLayer`] records:
//! - one `SpanKind::Server` span named `"{METHOD} {route}"` (`HTTP` for non-standard methods),
//!   child of the W3C `traceparent`/`tracestate`/`baggage` context in the request headers
//!   (invalid or oversized values are ignored: the span is a new root; so is every request
//!   whose context [`TraceLayer::with_trust`] does not trust, linked to what it sent), with
//!   the stable OpenTelemetry HTTP attributes: `http.request.method` (`_OTHER` plus
//!   `http.request.method_original` for others), `url.scheme`, `url.path` (card numbers
//!   masked), `url.query` (sensitive parameters `REDACTED`), `http.route`,
//!   `http.response.status_code`, `server.address`, `server.port`, `client.address` (axum
//!   `ConnectInfo`), `user_agent.original`, `network.protocol.version`,
//!   `http.request.body.size` (from `Content-Length`), `http.response.body.size` (counted as
//!   the body streams), `error.type`; plus `paytrace.request_id`, and when relevant
//!   `paytrace.slow` and `paytrace.request.cancelled`;
//! - the RED metrics into the telemetry's Prometheus registry ([`HttpMetrics`]);
//! - for requests slower than the threshold (5 s by default), `paytrace.slow=true`, one WARN
//!   event under target `paytrace::http`, inside the request's context so it carries the
//!   request's trace id (fields `request_id`, `method`, `route`, `status`, `cancelled`,
//!   `duration_ms`, `threshold_ms`), and a count in
//!   `http_server_slow_requests_total`;
//! - a request id: a valid incoming `x-request-id` is kept, otherwise one is generated
//!   (`{trace_id}-{span_id}`); handlers see it in the request headers, clients in the
//!   response.
//!
//! `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` are never recorded; the
//! request headers recorded at all are an opt-in allow-list
//! ([`TraceLayer::with_request_headers`]), redacted.
//!
//! # Example
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{routing::get, Router};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = paytrace::init_tracer(paytrace::Config::from_env().with_service_name("checkout"))?;
//!     let app = Router::new()
//!         .route("/orders/{id}", get(|| async { "ok" }))
//!         // `Router::layer`: the layer runs after routing and sees the route template.
//!         .layer(telemetry.http_layer());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     // `ConnectInfo` gives the layer `client.address`.
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//!     telemetry.shutdown()?;
//!     Ok(())
//! }
//! ```
//!
//! Outgoing calls, with a hyper-util client:
//!
//! ```no_run
//! # async fn run(telemetry: &paytrace::Telemetry) -> Result<(), Box<dyn std::error::Error>> {
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::{Service as _, ServiceBuilder, ServiceExt as _};
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<String>();
//! let mut client = ServiceBuilder::new().layer(telemetry.http_client_layer()).service(client);
//! let mut req = http::Request::post("http://ledger.internal/entries/42").body(String::new())?;
//! req.extensions_mut().insert(paytrace::http::UrlTemplate("/entries/{id}"));
//! let res = client.ready().await?.call(req).await?; // span "POST /entries/{id}"
//! # let _ = res; Ok(()) }
//! ```
//!
//! Any other client: `paytrace::http::inject_context(request.headers_mut())` inside the
//! handler (or any code running in a traced context).
//!
//! # Customization
//!
//! ```
//! use std::time::Duration;
//! use http::HeaderName;
//! use paytrace::http::is_default_skip_path;
//!
//! let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
//! let layer = telemetry
//!     .http_layer()
//!     .with_slow_threshold(Duration::from_secs(2)) // default 5 s
//!     .with_skip(|req| is_default_skip_path(req.uri.path()) || req.uri.path() == "/ping")
//!     .with_fallback_route("other") // default "unmatched"
//!     .with_request_id(true) // default true
//!     .with_trace_id_header(Some(HeaderName::from_static("x-trace-id"))) // default off
//!     .with_request_headers([HeaderName::from_static("x-merchant-id")]); // default none
//! # let _ = layer;
//! # Ok::<(), paytrace::Error>(())
//! ```
//!
//! Handlers add their own attributes to the request's span through the OpenTelemetry API (the
//! span is the active one while the handler runs):
//!
//! ```
//! async fn charge() -> &'static str {
//!     opentelemetry::trace::get_active_span(|span| {
//!         span.set_attribute(opentelemetry::KeyValue::new("payment.order_id", 42));
//!     });
//!     "charged"
//! }
//! ```
//!
//! For plain hyper services, give the route template with [`TraceLayer::with_route`]
//! (otherwise every request records the fallback route). For tests, build the layer from any
//! SDK tracer with [`TraceLayer::from_tracer`] (an `InMemorySpanExporter` provider, say) and
//! add metrics with [`TraceLayer::with_metrics`].
//!
//! # Ordering
//!
//! - **Route template.** axum inserts `MatchedPath` only after routing, so apply the layer
//!   with `Router::layer` (or `route_layer`), which wraps each route: the layer then sees the
//!   template (`/orders/{id}`). Wrapped around the whole router from outside (for example
//!   `ServiceBuilder::new().layer(..).service(router)`) it runs before routing and records the
//!   fallback route for everything. With `Router::layer` the fallback (404) service is
//!   wrapped too and records the fallback route; `route_layer` leaves 404s untraced. Layers
//!   added to the router after this one run outside it: their time is not in the span.
//! - **Request id.** The layer sets `x-request-id` on the request before the handler runs,
//!   and on the response only if the handler did not set one. A request-id layer placed
//!   inside (after) this one sees the id already set.
//! - **Sensitive headers.** The layer reads only the headers it needs and the allow-list;
//!   a `SetSensitiveHeaders` layer is not needed for it, and is harmless either way.
//! - **Context.** The request's context is attached around `call`, every poll of the response
//!   future and every poll of the body: `tracing` events, OTel log records and spans the
//!   handler creates (also through [`ClientLayer`]) belong to the request's trace. Work the
//!   handler spawns onto other tasks must carry the context itself (`Context::current()`
//!   captured before spawning).
//!
//! # When callbacks fire
//!
//! - **Start** (in `call`, before the inner service is called): the upstream context is
//!   extracted, the route resolved, the span started with the request attributes, the request
//!   id chosen, `http_server_active_requests` incremented. Skipped requests
//!   ([`TraceLayer::with_skip`]) stop before this: no span, no metrics, no request id.
//! - **Response headers** (the inner future resolves `Ok`): the status is noted, the
//!   `x-request-id` (and trace id) response headers are added. If the body is already at its
//!   end (`HEAD`, `204`, empty), the request ends here.
//! - **End**, exactly once, at the first of: the body's last frame (`is_end_stream`) or
//!   `None`; an error from the inner service (`error.type` = the error's type name, span
//!   status Error) or from the body; the response future or body being dropped first (client
//!   gone, timeout: `paytrace.request.cancelled=true`, `error.type="cancelled"`, span status
//!   Error; dropped while a panic unwinds: `error.type="panic"`). The duration runs from start to end (measured with `tokio::time::Instant`, so a
//!   paused test clock applies), the span ends with that duration, the status code and
//!   response body size are recorded, 5xx sets `error.type` to the code and the status to
//!   Error (4xx does not: the client erred), the metrics are recorded, and if the duration
//!   exceeds the slow threshold the WARN event is emitted (with the request's context
//!   attached).
//! - Metrics of requests that produced no response (inner error, cancelled before the
//!   headers) carry an empty `http_response_status_code`.

mod client;
mod semconv;
mod server;

pub use crate::exchange::DEFAULT_SLOW_THRESHOLD;
pub use client::{ClientFuture, ClientLayer, ClientService, UrlTemplate};
pub use server::{
    is_default_skip_path, HttpMetrics, ResponseBody, ResponseFuture, TraceLayer, TracedService,
    DEFAULT_FALLBACK_ROUTE, DEFAULT_SKIP_PATHS, REQUEST_ID_HEADER,
};

/// Inject the current OpenTelemetry context ([`opentelemetry::Context::current`]) into
/// outgoing request headers (`traceparent`, `tracestate`, `baggage`, per the global
/// propagator), for HTTP clients that are not tower services. Inside a handler traced by
/// [`TraceLayer`] the current context is the request's, so the callee's spans join its trace.
///
/// Prefer [`ClientLayer`] where possible: it also records a client span, whose id the callee
/// then sees as its parent.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// paytrace::http::inject_context(&mut headers);
/// // Without an active span there is nothing to propagate.
/// assert!(headers.get("traceparent").is_none());
/// ```
pub fn inject_context(headers: &mut ::http::HeaderMap) {
    crate::propagation::inject_context(&opentelemetry::Context::current(), headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>() {}

    type Inner = tower_service_fn::Svc;

    mod tower_service_fn {
        use std::convert::Infallible;
        use std::future::Ready;
        use std::task::{Context, Poll};

        #[derive(Clone)]
        pub(crate) struct Svc;
        impl tower_service::Service<http::Request<String>> for Svc {
            type Response = http::Response<String>;
            type Error = Infallible;
            type Future = Ready<Result<Self::Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: http::Request<String>) -> Self::Future {
                std::future::ready(Ok(http::Response::new(String::new())))
            }
        }
    }

    #[test]
    fn types_are_send_sync_clone() {
        assert_send_sync_clone::<TraceLayer>();
        assert_send_sync_clone::<TracedService<Inner>>();
        assert_send_sync_clone::<ClientLayer>();
        assert_send_sync_clone::<ClientService<Inner>>();
        assert_send_sync_clone::<HttpMetrics>();
        assert_send::<ResponseFuture<std::future::Ready<Result<http::Response<String>, ()>>>>();
        assert_send::<ResponseBody<String>>();
        assert_send::<ClientFuture<std::future::Ready<Result<http::Response<String>, ()>>>>();
    }
}
