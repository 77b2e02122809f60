//! gRPC instrumentation for tonic 0.14: [`ServerLayer`] for servers, [`ClientLayer`] for
//! channels, sharing the HTTP layer's machinery (propagation rules, redaction, slow flag, tail
//! keep).
//!
//! Per call, each layer records one span (`SpanKind::Server` or `SpanKind::Client`) named after
//! the fully qualified method (`ledger.v1.Ledger/Post`, or `grpc` for `_OTHER`) with the
//! OpenTelemetry RPC conventions (schema 1.42): `rpc.system.name=grpc`, `rpc.method`
//! (`_OTHER` plus `rpc.method_original` for methods the layer does not know),
//! `rpc.response.status_code` (the status name: `OK`, `DEADLINE_EXCEEDED`, …), `error.type`,
//! `server.address` and `server.port`; and one observation of `rpc.server.call.duration` or
//! `rpc.client.call.duration` (Prometheus `rpc_server_call_duration_seconds`, …, see
//! [`GrpcMetrics`]).
//!
//! **The status is the one the call really ended with**, in every response shape:
//! - a trailers-only response (a handler's `Err`, an unknown method): the `tonic::Status`
//!   extension or the `grpc-status` header;
//! - a streamed response: the `grpc-status` trailer at the end of the stream, so an error
//!   after three messages is an error, and the span and duration cover the whole stream;
//! - a response body dropped before its trailers: `CANCELLED` (the client went away), or
//!   `DEADLINE_EXCEEDED` when the call's `grpc-timeout` has passed (on the client, that is the
//!   deadline firing; tonic itself reports it to the caller as `CANCELLED`, "Timeout
//!   expired");
//! - a failed channel call: the status the error carries (`UNAVAILABLE` for a refused
//!   connection, `DEADLINE_EXCEEDED` for an expired timeout);
//! - `CANCELLED` once the call's `grpc-timeout` has passed: `DEADLINE_EXCEEDED` (tonic's
//!   server answers its own expired timer with `CANCELLED`, so the client sees either);
//! - a 200 response that ends without trailers: `UNKNOWN`, with one WARN per process.
//!
//! Span status is Error on the server for `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`,
//! `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS` (the server failed), on the client for every
//! status but `OK`; its description is the status name and the redacted `grpc-message`. So
//! tail keep keeps every trace whose server call failed, at any sampling ratio.
//!
//! Calls longer than the slow threshold (5 s by default) get `paytrace.slow=true`, one WARN
//! (target `paytrace::grpc`) and a count in `rpc_server_slow_calls_total` /
//! `rpc_client_slow_calls_total`.
//!
//! The W3C context (`traceparent`, `tracestate`, `baggage`) is read from the request metadata
//! on the server with the HTTP layer's rules for hostile values, and written into it on the
//! client — only for trusted callers ([`GrpcLayer::with_trust`]) and to allowed hosts
//! ([`GrpcLayer::with_propagation`]). No metadata is recorded unless allow-listed
//! ([`GrpcLayer::with_request_metadata`]), and then redacted; sensitive keys never are, and
//! messages never are.
//!
//! # Example
//!
//! ```no_run
//! # #[derive(Clone)] struct Ledger;
//! # impl tonic::server::NamedService for Ledger { const NAME: &'static str = "ledger.v1.Ledger"; }
//! # impl tower_service::Service<http::Request<tonic::body::Body>> for Ledger {
//! #     type Response = http::Response<tonic::body::Body>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future { std::future::ready(Ok(tonic::Status::unimplemented("").into_http())) }
//! # }
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = paytrace::init_tracer(paytrace::Config::from_env().with_service_name("ledger"))?;
//!     tonic::transport::Server::builder()
//!         .layer(telemetry.grpc_server_layer())
//!         .add_service(Ledger) // a tonic-generated `LedgerServer::new(...)`
//!         .serve("127.0.0.1:50051".parse()?)
//!         .await?;
//!
//!     // The client side: wrap the channel, then build the generated client on it.
//!     let channel = tonic::transport::Endpoint::from_static("http://ledger.internal:50051").connect_lazy();
//!     let channel = tower::ServiceBuilder::new()
//!         .layer(telemetry.grpc_client_layer().with_authority(http::uri::Authority::from_static("ledger.internal:50051")))
//!         .service(channel);
//!     let _grpc = tonic::client::Grpc::new(channel); // or `LedgerClient::new(channel)`
//!     telemetry.shutdown()?;
//!     Ok(())
//! }
//! ```

mod body;
mod call;
mod future;
mod layer;
mod methods;
mod metrics;
mod service;
mod side;
mod status;

#[cfg(feature = "fuzzing")]
pub(crate) use status::timeout as fuzz_timeout;

pub use body::GrpcBody;
pub use future::GrpcFuture;
pub use layer::{ClientLayer, GrpcLayer, ServerLayer};
pub use metrics::GrpcMetrics;
pub use service::{ClientService, ServerService, Traced};
pub use side::{ClientSide, Kind, ServerSide};
