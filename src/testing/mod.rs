//! An in-process OTLP/gRPC receiver for tests: [`TestCollector`].
//!
//! The collector serves the three official OTLP services (traces, metrics, logs) on a local port,
//! accepts gzip-compressed requests, and records every request it receives together with the
//! `grpc-encoding` it arrived with and the time of arrival. Tests point an exporter at
//! [`TestCollector::endpoint`], then read what arrived with [`TestCollector::spans`],
//! [`TestCollector::log_records`] and [`TestCollector::metrics`], or wait for it with the
//! `wait_for_*` helpers.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use opentelemetry::trace::{Tracer, TracerProvider};
//! use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
//! use paytrace::testing::TestCollector;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let collector = TestCollector::start().await?;
//!
//!     let exporter = opentelemetry_otlp::SpanExporter::builder()
//!         .with_tonic()
//!         .with_endpoint(collector.endpoint())
//!         .with_compression(opentelemetry_otlp::Compression::Gzip)
//!         .build()?;
//!     let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!         .with_batch_exporter(exporter)
//!         .build();
//!     provider.tracer("checkout").in_span("charge card", |_cx| {});
//!     provider.force_flush()?;
//!
//!     let span = collector
//!         .wait_for_span("charge card", Duration::from_secs(5))
//!         .await
//!         .expect("the span reaches the collector");
//!     assert_eq!(span.scope, "checkout");
//!     assert_eq!(span.trace_id_hex().len(), 32);
//!     assert_eq!(collector.encodings(), [Some("gzip".to_owned())]);
//!
//!     provider.shutdown()?;
//!     collector.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! # Customization
//!
//! [`TestCollector::set_fault`] makes the collector misbehave from the next request on, to test
//! retries, timeouts and the exporter-health watchdog: refuse with `UNAVAILABLE`
//! ([`Fault::Refuse`]), answer with any other status ([`Fault::Reject`]), answer late
//! ([`Fault::Delay`]) or never ([`Fault::Hang`]). [`TestCollector::stop`] followed by
//! [`TestCollector::start_on`] with the same address simulates a collector restart.
//!
//! # What is recorded, and when
//!
//! A request is recorded as soon as it has been received and decoded, *before* the fault is
//! applied: refused, rejected, delayed and hanging requests are all recorded, and
//! [`Received::fault`] says how each was answered. The flattened views ([`TestCollector::spans`]
//! and friends) include the data of every recorded request, whatever its fault, in order of
//! arrival.
//!
//! The `wait_for_*` helpers and [`TestCollector::wait_until`] measure their timeout on Tokio's
//! clock. Under a paused clock (`start_paused`) Tokio advances time whenever the runtime is idle,
//! including while it waits for the network, so use real time in tests that wait for exports.
//!
//! The proto types needed to read what arrived are re-exported here (and all of them under
//! [`proto`]), so tests need no direct `opentelemetry-proto` dependency.

mod collector;
mod connections;
mod fault;
mod http;
mod received;
mod record;
mod server;
#[cfg(test)]
mod test_helpers;

pub use collector::TestCollector;
pub use fault::Fault;
pub use received::{MetricPoint, PointValue, Received, ReceivedLog, ReceivedMetric, ReceivedSpan};

pub use opentelemetry_proto::tonic as proto;
// The OTLP messages the collector hands back, at the top for short test imports.
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
pub use opentelemetry_proto::tonic::logs::v1::LogRecord;
pub use opentelemetry_proto::tonic::metrics::v1::Metric;
pub use opentelemetry_proto::tonic::trace::v1::Span;
pub use tonic::Code;
