//! The service's own spans: `#[tracing::instrument]` functions, `tracing` spans and
//! OpenTelemetry-API spans inside a request, recorded as children of the request span at the
//! price of paytrace's own span.
//!
//! paytrace's subscriber records each `tracing` span (one the log filter lets through) as an
//! OpenTelemetry span of paytrace's tracer: the same sampler, tail keep, redaction and export
//! queue as the request span. The installed subscriber keeps spans in a store of its own; a
//! subscriber composed with `Telemetry::layers` keeps them in `tracing_subscriber`'s registry.
//! Both record the same way. Entering a `tracing` span makes its context current, so
//! OpenTelemetry-API spans made inside it are its children, `tracing` spans made inside an
//! OpenTelemetry-API span are that span's children, and log records carry the innermost span's
//! ids.
//!
//! ```
//! #[tracing::instrument]
//! async fn authorize(order_id: u64) -> bool {
//!     tracing::info!(order_id, "authorized"); // a log record with this span's ids
//!     true
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), paytrace::Error> {
//! let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
//! let _default = tracing::subscriber::set_default(telemetry.subscriber());
//! assert!(authorize(42).await);
//! # Ok(()) }
//! ```
//!
//! Fields become attributes; `otel.name`, `otel.kind` and `otel.status_code` set the span's
//! name, kind and status, and so do a field recorded as an error and an ERROR event inside the
//! span. A remote parent, links and the context to inject are on [`SpanExt`].
//!
//! Events inside a span are log records carrying the span's ids; a copy on the span as a span
//! event is off by default ([`Config::with_span_events`](crate::Config::with_span_events)).

mod active;
mod ext;
mod fields;
mod layer;
mod record;
mod store;

pub use ext::{SpanError, SpanExt};
pub(crate) use layer::SpanLayer;
pub(crate) use record::Recorder;
pub(crate) use store::SpanStore;
