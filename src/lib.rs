//! # paytrace
//!
//! The observability SDK a Rust payment service adds as one dependency: OpenTelemetry traces,
//! logs and metrics over OTLP/gRPC with gzip, tower HTTP and gRPC trace layers, a context-aware logger,
//! order-pool metrics and an exporter-health watchdog — built so that telemetry never hurts the
//! payment: no panic, no unbounded memory, no blocking on the request path, no hang at shutdown.
//!
//! ## Quick start
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = paytrace::init_tracer(
//!         paytrace::Config::from_env()
//!             .with_service_name("payment-gateway")
//!             .with_endpoint("http://otel-collector:4317"),
//!     )?;
//!     tracing::info!(order_id = 42, "payment service started");
//!     // ... build the router, serve ...
//!     telemetry.shutdown()?;
//!     Ok(())
//! }
//! ```
//!
//! ## Data flow
//!
//! ```text
//!  request ─► http::TraceLayer ─► span ─────────────────► span queue ─┐
//!  gRPC call ─► grpc::ServerLayer ─► span (status from trailers) ─────┤
//!               │ RED metrics, slow flag ─► Prometheus registry ──────┼─► /metrics, bridge ─┐
//!  handler ─► tracing event ─► JSON line ─► stdout (lossy buffer)     │                     │
//!                      └─────► OTLP log record ─► log queue ──────────┤                     │
//!                                                                     ▼                     ▼
//!            export thread: batch ─► sanitize (limits, redaction) ─► encode ─► gzip OTLP ─► collector
//! ```
//!
//! Every queue is bounded: when full, telemetry is dropped and counted (ordinary items first),
//! never waited for. The modules follow the flow: [`http`], [`grpc`] and [`log`] record, [`sampling`]
//! decides which traces leave (a consistent ratio, and tail keep for every failed and slow
//! one), `export` ships, [`redact`] decides what is secret for every signal, [`control`]
//! changes the log filter and the ratio at run time, [`Telemetry`] wires them and is the only
//! thing that knows them all.
//!
//! ## Cargo features
//! All on by default but `testing`; a setting that needs a feature the build lacks is refused at
//! [`init_tracer`] with an error naming it.
//! - `axum`: the HTTP layer reads axum's `MatchedPath` (route templates) and `ConnectInfo`
//!   (client address); without it, give routes with [`http::TraceLayer::with_route`].
//! - `grpc`: the tonic server and client layers, [`grpc`].
//! - `metrics-endpoint`: `Telemetry::metrics_service`, the `/metrics` endpoint (Prometheus text
//!   or OpenMetrics with exemplars).
//! - `otlp-http`: OTLP/HTTP export (`http/protobuf`); without it, OTLP/gRPC only.
//! - `tls`: `https` collector endpoints (rustls, system roots, mutual TLS).
//! - `testing`: `testing::TestCollector`, an in-process OTLP receiver for tests.
//!
//! ## Minimum supported Rust version
//! 1.88 (`scripts/check_msrv.sh` checks every dependency's declared `rust-version` against it).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
pub mod control;
mod error;
mod exchange;
mod exemplars;
pub(crate) mod export;
mod exporter;
#[cfg(test)]
mod fixtures;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod http;
mod keys;
pub mod log;
pub mod metrics;
pub mod propagation;
pub mod redact;
pub mod sampling;
mod signal;
pub mod spans;
pub(crate) mod telemetry;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod util;
mod watchdog;

/// The fuzz targets' bodies and the parser entry points they call (feature `fuzzing`). Not a
/// stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// The OpenTelemetry API crate paytrace is built on (`opentelemetry` 0.33), re-exported so a
/// service names its types — [`KeyValue`](opentelemetry::KeyValue) for
/// [`Config::with_resource_attribute`], `Context`, the trace and metrics traits — without adding
/// a second, possibly mismatched, version to its `Cargo.toml`. Two versions of `opentelemetry`
/// in one build have distinct types that do not interoperate.
pub use opentelemetry;
/// The OpenTelemetry SDK crate paytrace is built on (`opentelemetry_sdk` 0.33), re-exported for
/// the types [`Telemetry`] hands out ([`Telemetry::tracer_provider`], [`Telemetry::meter_provider`],
/// [`Telemetry::logger_provider`]) at the version paytrace pins.
pub use opentelemetry_sdk;
/// The OpenTelemetry semantic conventions (`opentelemetry-semantic-conventions` 0.33, with
/// `semconv_experimental`), re-exported so attribute and metric names a service records itself
/// match the ones paytrace records.
pub use opentelemetry_semantic_conventions;
/// The Prometheus client crate paytrace's instruments and `/metrics` are built on (`prometheus`
/// 0.14), re-exported for the types in paytrace's signatures (the
/// [`HttpMetrics`](http::HttpMetrics) and [`GrpcMetrics`](grpc::GrpcMetrics) constructors take a
/// `Registry`) at the version paytrace pins.
pub use prometheus;

pub use config::{Config, Propagator, Sampler};
pub use error::Error;
pub use export::health::HealthState;
pub use exporter::{Exporter, Protocol};
pub use log::LogFormat;
pub use sampling::keep_current_trace;
pub use signal::Signal;
pub use spans::{SpanError, SpanExt};
pub use telemetry::global::init_tracer;
pub use telemetry::Telemetry;
pub use watchdog::{ExporterHealth, SignalHealth};

/// Every Rust block of `README.md`, compiled and run by `cargo test --doc`, so the README cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The `OTEL_*` environment variable names paytrace reads.
pub mod env {
    pub use crate::config::env::*;
}
