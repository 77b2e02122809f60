//! Which ended spans may name their trace in an exemplar: only those whose trace is exported.

use opentelemetry::trace::{SpanId, TraceId};

use super::keep::just_thinned;

/// A span's claim to an exemplar, read before it ends and settled after: tail keep decides at
/// the span's end, on this thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExemplarClaim {
    sampled: bool,
    trace_id: TraceId,
    span_id: SpanId,
}

impl ExemplarClaim {
    /// Before `span` ends: a claim when its trace will be exported — sampled, or `outcome`
    /// (failed or slow, on its trace's local root) and recorded, which tail keep keeps (without
    /// tail keep an unsampled span is not recorded, and its trace is not exported).
    pub(crate) fn before_end(
        span: &opentelemetry::trace::SpanRef<'_>,
        outcome: bool,
    ) -> Option<Self> {
        let sc = span.span_context();
        let sampled = sc.is_sampled();
        (sampled || (outcome && span.is_recording())).then(|| ExemplarClaim {
            sampled,
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
        })
    }

    /// After the span ended: its trace and span ids, unless an error storm thinned its outcome
    /// keep away.
    pub(crate) fn after_end(self) -> Option<([u8; 16], [u8; 8])> {
        (self.sampled || !just_thinned(self.trace_id))
            .then(|| (self.trace_id.to_bytes(), self.span_id.to_bytes()))
    }
}
