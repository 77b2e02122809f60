//! Which ended spans may name their trace in an exemplar: only those whose trace is exported.
//!
//! Tail keep decides an unsampled trace when its local root ends, and its storm cap may thin the
//! keep away. The keeper marks each thinned trace in a [`Thinned`] record it shares with whoever
//! makes exemplar claims; a claim reads the record's mark count before its span ends and asks
//! for its trace only when the count moved, so the common case takes no lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{SpanId, TraceId};

/// Thinned traces remembered: a claim that saw more marks than this during its span's end
/// assumes its trace was among them (an exemplar lost, never one naming a dropped trace).
const REMEMBERED: usize = 64;

/// The traces tail keep's storm cap thinned lately; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Thinned(Arc<Recent>);

#[derive(Debug, Default)]
struct Recent {
    /// Traces ever marked; only written under `last`'s lock.
    marks: AtomicU64,
    last: Mutex<VecDeque<TraceId>>,
}

impl Thinned {
    /// `trace_id` was thinned away: its spans are not exported.
    pub(crate) fn mark(&self, trace_id: TraceId) {
        let mut last = self.lock();
        if last.len() == REMEMBERED {
            last.pop_front();
        }
        last.push_back(trace_id);
        self.0.marks.fetch_add(1, Ordering::Release);
    }

    pub(super) fn marks(&self) -> u64 {
        self.0.marks.load(Ordering::Acquire)
    }

    /// Whether `trace_id` was marked after the first `since` marks.
    pub(super) fn marked_since(&self, since: u64, trace_id: TraceId) -> bool {
        if self.marks() == since {
            return false;
        }
        let last = self.lock();
        let fresh = self.marks() - since;
        fresh > last.len() as u64
            || last
                .iter()
                .rev()
                .take(fresh as usize)
                .any(|t| *t == trace_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<TraceId>> {
        self.0.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before `span` ends: a claim when its trace will be exported — sampled, or `outcome`
    /// (failed or slow, on its trace's local root) and recorded, which tail keep keeps unless
    /// its storm cap thins it (without tail keep an unsampled span is not recorded, and its
    /// trace is not exported).
    pub(crate) fn claim(
        &self,
        span: &opentelemetry::trace::SpanRef<'_>,
        outcome: bool,
    ) -> Option<ExemplarClaim<'_>> {
        let sc = span.span_context();
        let sampled = sc.is_sampled();
        (sampled || (outcome && span.is_recording())).then(|| ExemplarClaim {
            sampled,
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            since: self.marks(),
            thinned: self,
        })
    }
}

/// A span's claim to an exemplar, read before it ends and settled after.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExemplarClaim<'a> {
    sampled: bool,
    trace_id: TraceId,
    span_id: SpanId,
    /// The keeper's record, and its mark count before the span ended.
    thinned: &'a Thinned,
    since: u64,
}

impl ExemplarClaim<'_> {
    /// After the span ended: its trace and span ids, unless an error storm thinned its outcome
    /// keep away.
    pub(crate) fn after_end(self) -> Option<([u8; 16], [u8; 8])> {
        let thinned = !self.sampled && self.thinned.marked_since(self.since, self.trace_id);
        (!thinned).then(|| (self.trace_id.to_bytes(), self.span_id.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::head::{ConsistentSampler, HeadControl};
    use crate::sampling::keep::{KeepSettings, TailKeeper};
    use crate::sampling::KeepStats;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _};
    use opentelemetry::Context;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
    use std::time::Duration;

    /// The keeper as the span processor, noting the traces it kept.
    #[derive(Debug)]
    struct Keeping {
        keeper: TailKeeper,
        kept: Mutex<Vec<TraceId>>,
    }

    #[derive(Debug)]
    struct Processor(Arc<Keeping>);

    impl SpanProcessor for Processor {
        fn on_start(&self, span: &mut Span, _: &Context) {
            self.0.keeper.root_started(span.span_context().trace_id());
        }
        fn on_end(&self, span: SpanData) {
            let mut out = Vec::new();
            self.0.keeper.span_ended(span, &mut out);
            let mut kept = self.0.kept.lock().unwrap();
            kept.extend(out.iter().map(|s| s.span_context.trace_id()));
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn a_claim_names_its_trace_exactly_when_the_storm_cap_kept_it() {
        let thinned = Thinned::default();
        let settings = KeepSettings {
            max_keeps_per_second: 5,
            ..KeepSettings::default()
        };
        let stats = KeepStats::new(&prometheus::Registry::new()).unwrap();
        let keeping = Arc::new(Keeping {
            keeper: TailKeeper::new(settings, stats, thinned.clone()),
            kept: Mutex::default(),
        });
        // Ratio 0, the rest recorded: every trace waits for tail keep.
        let sampler = ConsistentSampler::new(Arc::new(HeadControl::new(0.0)), false, true);
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(Processor(keeping.clone()))
            .build();
        let tracer = provider.tracer("test");
        let mut named = 0;
        for _ in 0..200 {
            let cx = Context::current_with_span(tracer.start("POST /pay"));
            let span = cx.span();
            span.set_status(Status::error("declined"));
            let claim = thinned
                .claim(&span, true)
                .expect("a recorded failure claims");
            span.end();
            let trace_id = span.span_context().trace_id();
            let kept = keeping.kept.lock().unwrap().contains(&trace_id);
            assert_eq!(claim.after_end().is_some(), kept, "{trace_id}");
            named += usize::from(kept);
        }
        assert!((5..200).contains(&named), "{named} named");
    }

    #[test]
    fn a_record_nothing_was_marked_in_answers_without_its_lock() {
        let thinned = Thinned::default();
        let since = thinned.marks();
        let _held = thinned.lock();
        assert!(!thinned.marked_since(since, TraceId::from(1)));
    }

    #[test]
    fn only_traces_marked_since_the_claim_count() {
        let thinned = Thinned::default();
        thinned.mark(TraceId::from(1));
        let since = thinned.marks();
        thinned.mark(TraceId::from(2));
        assert!(thinned.marked_since(since, TraceId::from(2)));
        assert!(!thinned.marked_since(since, TraceId::from(1)));
        assert!(!thinned.marked_since(since, TraceId::from(3)));
    }

    #[test]
    fn more_marks_than_remembered_count_as_thinned() {
        let thinned = Thinned::default();
        let since = thinned.marks();
        for t in 0..=REMEMBERED as u128 {
            thinned.mark(TraceId::from(100 + t));
        }
        assert!(thinned.marked_since(since, TraceId::from(1)));
    }

    #[test]
    fn threads_thinning_different_traces_each_see_their_own() {
        let thinned = Thinned::default();
        std::thread::scope(|s| {
            for worker in 0..4u128 {
                let thinned = &thinned;
                s.spawn(move || {
                    for i in 0..2_000u128 {
                        let trace_id = TraceId::from(worker << 64 | i);
                        let since = thinned.marks();
                        thinned.mark(trace_id);
                        assert!(thinned.marked_since(since, trace_id), "{trace_id}");
                    }
                });
            }
        });
        assert_eq!(thinned.marks(), 8_000);
    }
}
