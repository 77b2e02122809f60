//! Sampling: a head ratio consistent across services, and tail keep — every error, slow and
//! forced trace kept whole at any ratio.
//!
//! With [`Sampler::ParentBasedRatio`](crate::Sampler::ParentBasedRatio) (or
//! `OTEL_TRACES_SAMPLER=parentbased_traceidratio`), a trace is kept by the ratio when its
//! randomness clears the ratio's threshold (OpenTelemetry consistent probability sampling; kept
//! spans carry `ot=th:…` in their `tracestate`). The other traces are recorded and wait, per
//! trace, for their local roots to end: a trace that failed (HTTP 5xx), was slow (the HTTP
//! layer's slow flag, or a root open past the slow threshold) or that the application asked
//! for ([`keep_current_trace`]) is exported whole, with `paytrace.sampling.reason`; the rest is
//! dropped. Metrics still count every request; log records keep their trace ids, so the records
//! of a dropped trace point at a trace that was not exported.
//!
//! ```
//! let config = paytrace::Config::new()
//!     .with_sampler(paytrace::Sampler::ParentBasedRatio(0.1)) // tail keep is on
//!     .with_tail_keep_budget(16 * 1024 * 1024);
//! assert!(config.validate().is_ok());
//! ```

mod exemplar;
mod head;
pub(crate) mod keep;
pub(crate) mod processor;
mod reason;
pub(crate) mod stats;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::KeyValue;

pub(crate) use exemplar::{ExemplarClaim, Thinned};
pub(crate) use head::{ConsistentSampler, HeadControl};
pub(crate) use keep::{KeepSettings, TailKeeper};
pub(crate) use processor::TailKeepQueue;
pub(crate) use stats::KeepStats;
pub use stats::TailKeepHealth;

/// Keep the current trace whatever the sampling ratio: its spans are exported with
/// `paytrace.sampling.reason = "forced"` and `paytrace.sampling.forced = reason`. For outcomes
/// the layers cannot see — a declined payment answered with 200, a fraud flag.
///
/// Needs a current OpenTelemetry context (inside a request traced by paytrace's layers, or
/// under [`Logger::with_context`](crate::log::Logger::with_context)); without one it does
/// nothing.
///
/// ```
/// paytrace::keep_current_trace("card declined");
/// ```
pub fn keep_current_trace(reason: &'static str) {
    opentelemetry::Context::map_current(|cx| {
        cx.span()
            .set_attribute(KeyValue::new(reason::FORCED, reason));
    });
}
