//! Tail keep: the spans of traces the ratio did not keep wait here, per trace, until the
//! trace's outcome is known; the trace is then kept whole if it failed, was slow or was forced
//! ([`keep_current_trace`](crate::keep_current_trace)), and dropped when its last local root
//! ends without one.
//!
//! ```text
//!  span ends ─► sampled? ──yes──► export queue
//!                 │ no
//!                 ▼
//!        kept before? ──yes──► export queue (late, kept)
//!                 │ no
//!                 ▼
//!        buffer of its trace? ──no──► dropped (late: its trace was dropped and forgotten)
//!                 │ yes: buffered
//!                 ├─ an outcome (a root's error or slow flag, a forced span) ─► keep now
//!                 └─ the last local root ends with none ─► drop
//!        keep: the buffer to the export queue, the keep remembered (unless the storm cap
//!              thins it: then a drop, marked in the `Thinned` record the exemplar claims read);
//!        drop: the buffer freed, nothing remembered
//!        sweep: root open past the slow threshold ─► keep now; past the TTL ─► decide now
//! ```
//!
//! Everything is bounded: a byte budget for all buffers (estimated encoded size), a span cap per
//! trace, a TTL for roots that never end, a cap of outcome keeps per second (thinned by the
//! trace's randomness, so every service thins the same traces), a bounded cache of keeps. Each
//! bound, when hit, decides at once with what is known and is counted.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use rustc_hash::FxHashMap;

use super::exemplar::Thinned;
use super::head::{randomness, Threshold};
use super::reason::{Eviction, Reason, FORCED, KEEP_PROBABILITY, REASON};
use super::stats::KeepStats;
use crate::export::queue::Weigh;
use crate::keys::SLOW;

/// The keeper's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KeepSettings {
    /// Estimated encoded bytes all buffered spans may take.
    pub(crate) budget_bytes: usize,
    /// Spans one trace may buffer; past it the trace is decided at once.
    pub(crate) max_spans_per_trace: usize,
    /// How long a trace may wait for its local roots to end.
    pub(crate) ttl: Duration,
    /// A local root open this long makes its trace slow: kept and flushed before it ends.
    pub(crate) slow_after: Duration,
    /// Outcome keeps per second before thinning; 0 for no cap.
    pub(crate) max_keeps_per_second: u32,
    /// Keeps remembered for spans that end after their trace was kept.
    pub(crate) decisions: usize,
}

impl Default for KeepSettings {
    fn default() -> Self {
        KeepSettings {
            budget_bytes: 32 * 1024 * 1024,
            max_spans_per_trace: 1_000,
            ttl: Duration::from_secs(60),
            slow_after: Duration::from_secs(5),
            max_keeps_per_second: 1_000,
            decisions: 65_536,
        }
    }
}

/// A kept trace, remembered for its late spans; a dropped trace is forgotten, so its late
/// spans find no buffer and are dropped as late.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Kept {
    reason: Reason,
    probability: f64,
}

/// One trace's buffer.
#[derive(Debug)]
struct Pending {
    spans: Vec<SpanData>,
    bytes: usize,
    open_roots: u32,
    /// When its first local root started.
    root_started: Option<Instant>,
    created: Instant,
    reason: Option<Reason>,
}

impl Pending {
    fn new(now: Instant) -> Self {
        Pending {
            spans: Vec::new(),
            bytes: 0,
            open_roots: 0,
            root_started: None,
            created: now,
            reason: None,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    pending: FxHashMap<TraceId, Pending>,
    /// Traces in the order they were first seen: the oldest are evicted first.
    order: VecDeque<TraceId>,
    bytes: usize,
    decided: FxHashMap<TraceId, Kept>,
    decided_order: VecDeque<TraceId>,
    /// Outcome keeps in the current second, and when it started.
    window: Option<(Instant, u32)>,
}

/// The buffer of undecided traces and the keeps taken.
#[derive(Debug)]
pub(crate) struct TailKeeper {
    state: Mutex<State>,
    settings: KeepSettings,
    stats: KeepStats,
    /// Where thinned traces are marked, for the exemplar claims of the spans that end them.
    thinned: Thinned,
}

thread_local! {
    /// Emptied buffers of dropped traces, reused on this thread: at a low ratio most traces
    /// are dropped, and the next one then buffers without an allocation.
    static SPARE: std::cell::RefCell<Vec<Vec<SpanData>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers kept per thread, and the largest capacity worth keeping: room for 64 spans (about
/// 22 KiB) per thread at most, however many threads end spans; a thread mostly takes one buffer
/// and gives one back.
const SPARE_BUFFERS: usize = 8;
const SPARE_CAPACITY: usize = 8;

fn spare_buffer() -> Vec<SpanData> {
    SPARE
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Frees the spans of a dropped trace and keeps its buffer for the next trace.
fn recycle(mut spans: Vec<SpanData>) {
    spans.clear();
    if spans.capacity() == 0 || spans.capacity() > SPARE_CAPACITY {
        return;
    }
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_BUFFERS {
            s.push(spans);
        }
    });
}

/// What a trace needs once a span joined its buffer.
enum Next {
    /// Its outcome is not known yet.
    Wait,
    /// Kept or dropped now.
    Decide,
    /// Decided now because it holds the most spans a trace may.
    DecideOverCap,
}

/// Is this span the root of its trace in this process (no parent, or a remote one)?
pub(crate) fn is_local_root(parent: SpanId, parent_is_remote: bool) -> bool {
    parent == SpanId::INVALID || parent_is_remote
}

impl TailKeeper {
    pub(crate) fn new(settings: KeepSettings, stats: KeepStats, thinned: Thinned) -> Self {
        TailKeeper {
            state: Mutex::new(State::default()),
            settings,
            stats,
            thinned,
        }
    }

    pub(crate) fn stats(&self) -> &KeepStats {
        &self.stats
    }

    /// A local root of an unsampled trace started: its trace waits for it to end.
    pub(crate) fn root_started(&self, trace_id: TraceId) {
        let now = Instant::now();
        let mut state = self.lock();
        if state.decided.contains_key(&trace_id) {
            return;
        }
        let pending = state
            .pending
            .entry(trace_id)
            .or_insert_with(|| Pending::new(now));
        let new = pending.open_roots == 0 && pending.spans.is_empty();
        pending.open_roots += 1;
        pending.root_started.get_or_insert(now);
        if new {
            state.order.push_back(trace_id);
        }
    }

    /// An unsampled span ended: buffered, or decided with its trace. Returns the spans to
    /// export (kept, SAMPLED, with their reason).
    pub(crate) fn span_ended(&self, span: SpanData, out: &mut Vec<SpanData>) {
        let root = is_local_root(span.parent_span_id, span.parent_span_is_remote);
        let reason = keep_reason(&span, root);
        // A dropped trace's spans are freed after the lock is released.
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            self.buffer(&mut state, span, root, reason, out, &mut dropped);
            self.stats.buffered(state.bytes);
        }
        recycle(dropped);
    }

    fn buffer(
        &self,
        state: &mut State,
        span: SpanData,
        root: bool,
        reason: Option<Reason>,
        out: &mut Vec<SpanData>,
        dropped: &mut Vec<SpanData>,
    ) {
        let trace_id = span.span_context.trace_id();
        if let Some(&kept) = state.decided.get(&trace_id) {
            self.stats.late(true);
            out.push(mark_kept(span, kept.reason, kept.probability));
            return;
        }
        match self.add(state, span, root, reason) {
            Some(Next::Wait) => {}
            Some(Next::Decide) => *dropped = self.decide(state, trace_id, None, out),
            Some(Next::DecideOverCap) => {
                self.stats.evicted(Eviction::SpanCap);
                *dropped = self.decide(state, trace_id, None, out);
            }
            None => return,
        }
        self.evict_over_budget(state, out, dropped);
    }

    /// Adds an undecided span to its trace's buffer and says what the trace needs next; `None`
    /// when nothing was buffered.
    fn add(
        &self,
        state: &mut State,
        span: SpanData,
        root: bool,
        reason: Option<Reason>,
    ) -> Option<Next> {
        let trace_id = span.span_context.trace_id();
        let Some(p) = state.pending.get_mut(&trace_id) else {
            // No open root here and no decision: its trace was decided and forgotten, or it
            // outlived the TTL. Never passed through undecided.
            self.stats.late(false);
            return None;
        };
        // The common case at a low ratio: a plain root ends with nothing buffered and no other
        // root open. Dropped without buffering or weighing it.
        if root && reason.is_none() && p.spans.is_empty() && p.open_roots <= 1 && p.reason.is_none()
        {
            state.pending.remove(&trace_id);
            self.stats.dropped();
            return None;
        }
        let weight = span.weigh().bytes;
        p.reason = p.reason.or(reason);
        p.bytes += weight;
        if p.spans.capacity() == 0 {
            p.spans = spare_buffer();
        }
        p.spans.push(span);
        if root {
            p.open_roots = p.open_roots.saturating_sub(1);
        }
        state.bytes += weight;
        // A keep is final at once (its spans leave now); a drop waits for every root.
        Some(
            if (root && p.open_roots == 0) || (p.reason.is_some() && p.open_roots > 0) {
                Next::Decide
            } else if p.spans.len() >= self.settings.max_spans_per_trace {
                Next::DecideOverCap
            } else {
                Next::Wait
            },
        )
    }

    /// Decides the oldest traces until the buffers fit the byte budget again.
    fn evict_over_budget(
        &self,
        state: &mut State,
        out: &mut Vec<SpanData>,
        dropped: &mut Vec<SpanData>,
    ) {
        while state.bytes > self.settings.budget_bytes {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            if state.pending.contains_key(&oldest) {
                self.stats.evicted(Eviction::Budget);
                dropped.append(&mut self.decide(state, oldest, None, out));
            }
        }
    }

    /// Traces whose root is open past the slow threshold are kept now; traces past the TTL are
    /// decided with what is known.
    pub(crate) fn sweep(&self, now: Instant, out: &mut Vec<SpanData>) {
        let mut state = self.lock();
        let slow: Vec<TraceId> = state
            .pending
            .iter()
            .filter(|(_, p)| {
                p.reason.is_none()
                    && p.open_roots > 0
                    && p.root_started
                        .is_some_and(|t| now.duration_since(t) >= self.settings.slow_after)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in slow {
            if let Some(p) = state.pending.get_mut(&id) {
                p.reason = Some(Reason::Slow);
            }
            self.decide(&mut state, id, Some(now), out);
        }
        while let Some(&oldest) = state.order.front() {
            match state.pending.get(&oldest) {
                Some(p) if now.duration_since(p.created) < self.settings.ttl => break,
                Some(_) => {
                    state.order.pop_front();
                    self.stats.evicted(Eviction::Ttl);
                    self.decide(&mut state, oldest, Some(now), out);
                }
                None => {
                    state.order.pop_front();
                }
            }
        }
        self.stats.buffered(state.bytes);
    }

    /// Every pending trace decided with what is known (shutdown).
    pub(crate) fn decide_all(&self, out: &mut Vec<SpanData>) {
        let now = Instant::now();
        let mut state = self.lock();
        let ids: Vec<TraceId> = state.pending.keys().copied().collect();
        for id in ids {
            self.decide(&mut state, id, Some(now), out);
        }
        state.order.clear();
        self.stats.buffered(state.bytes);
    }

    /// Decide `trace_id` now: keep (and hand out its spans) if it has a reason, else drop;
    /// returns the dropped spans, for the caller to free outside the lock. `now` for the storm
    /// cap's window, read from the clock when not given.
    fn decide(
        &self,
        state: &mut State,
        trace_id: TraceId,
        now: Option<Instant>,
        out: &mut Vec<SpanData>,
    ) -> Vec<SpanData> {
        let Some(pending) = state.pending.remove(&trace_id) else {
            return Vec::new();
        };
        state.bytes = state.bytes.saturating_sub(pending.bytes);
        let kept = match pending.reason {
            Some(reason) => match self.thin(state, trace_id, &pending, now) {
                Some(probability) => Some(Kept {
                    reason,
                    probability,
                }),
                None => {
                    self.stats.thinned();
                    self.thinned.mark(trace_id);
                    None
                }
            },
            None => None,
        };
        let Some(kept) = kept else {
            self.stats.dropped();
            return pending.spans;
        };
        self.stats.kept(kept.reason);
        out.extend(
            pending
                .spans
                .into_iter()
                .map(|s| mark_kept(s, kept.reason, kept.probability)),
        );
        self.remember(state, trace_id, kept);
        Vec::new()
    }

    /// The storm cap: `Some(probability)` when this outcome keep survives it.
    fn thin(
        &self,
        state: &mut State,
        trace_id: TraceId,
        pending: &Pending,
        now: Option<Instant>,
    ) -> Option<f64> {
        let cap = self.settings.max_keeps_per_second;
        if cap == 0 || pending.reason == Some(Reason::Forced) {
            return Some(1.0);
        }
        let now = now.unwrap_or_else(Instant::now);
        let (start, count) = match state.window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => {
                (start, count + 1)
            }
            _ => (now, 1),
        };
        state.window = Some((start, count));
        if count <= cap {
            return Some(1.0);
        }
        // Thinned by the trace's randomness: services thinning at the same probability keep the
        // same traces.
        let probability = f64::from(cap) / f64::from(count);
        let state_of_trace = pending
            .spans
            .first()
            .map(|s| s.span_context.trace_state().clone())
            .unwrap_or_default();
        Threshold::of(probability)
            .filter(|t| t.keeps(randomness(trace_id, &state_of_trace)))
            .map(|_| probability)
    }

    fn remember(&self, state: &mut State, trace_id: TraceId, kept: Kept) {
        if state.decided.insert(trace_id, kept).is_none() {
            state.decided_order.push_back(trace_id);
        }
        while state.decided_order.len() > self.settings.decisions {
            if let Some(old) = state.decided_order.pop_front() {
                state.decided.remove(&old);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why this span's trace is kept, if it says: a local root's error status or slow flag (a
/// child's error the request recovered from is no reason), or a forced keep on any span.
fn keep_reason(span: &SpanData, root: bool) -> Option<Reason> {
    let mut reason = (root && matches!(span.status, Status::Error { .. })).then_some(Reason::Error);
    for kv in &span.attributes {
        match kv.key.as_str() {
            FORCED => return Some(Reason::Forced),
            _ if kv.key == SLOW && root && matches!(kv.value, Value::Bool(true)) => {
                reason = reason.or(Some(Reason::Slow));
            }
            _ => {}
        }
    }
    reason
}

/// A kept span: SAMPLED, its reason recorded (no `th`: the ratio did not keep it).
fn mark_kept(mut span: SpanData, reason: Reason, probability: f64) -> SpanData {
    let sc = &span.span_context;
    span.span_context = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags() | TraceFlags::SAMPLED,
        sc.is_remote(),
        sc.trace_state().clone(),
    );
    span.attributes.push(KeyValue::new(REASON, reason.as_str()));
    if probability < 1.0 {
        span.attributes
            .push(KeyValue::new(KEEP_PROBABILITY, probability));
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeper(settings: KeepSettings) -> TailKeeper {
        keeper_marking(settings, Thinned::default())
    }

    fn keeper_marking(settings: KeepSettings, thinned: Thinned) -> TailKeeper {
        TailKeeper::new(
            settings,
            KeepStats::new(&prometheus::Registry::new()).unwrap(),
            thinned,
        )
    }

    /// A span of trace `trace`: a local root when `parent` is 0.
    fn span(trace: u128, id: u64, parent: u64, status: Status, attrs: Vec<KeyValue>) -> SpanData {
        SpanData {
            status,
            attributes: attrs,
            ..crate::fixtures::span(trace, id, parent, TraceFlags::default())
        }
    }

    fn end(k: &TailKeeper, s: SpanData) -> Vec<SpanData> {
        let mut out = Vec::new();
        k.span_ended(s, &mut out);
        out
    }

    fn reason(s: &SpanData) -> Option<String> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == REASON)
            .map(|kv| kv.value.to_string())
    }

    #[test]
    fn the_buffer_pool_is_bounded_and_holds_only_empty_small_buffers() {
        for _ in 0..SPARE_BUFFERS + 8 {
            recycle(vec![span(9, 1, 0, Status::Unset, vec![])]);
        }
        recycle(Vec::with_capacity(SPARE_CAPACITY + 1));
        SPARE.with(|s| {
            let s = s.borrow();
            assert_eq!(s.len(), SPARE_BUFFERS);
            assert!(s
                .iter()
                .all(|v| v.is_empty() && v.capacity() <= SPARE_CAPACITY));
        });
        assert!(spare_buffer().capacity() > 0, "reused, not allocated");
    }

    #[test]
    fn an_error_trace_is_kept_whole_and_a_plain_one_dropped() {
        let k = keeper(KeepSettings::default());
        k.root_started(TraceId::from(1));
        assert!(
            end(&k, span(1, 2, 1, Status::Unset, vec![])).is_empty(),
            "waits for its root"
        );
        let kept = end(&k, span(1, 1, 0, Status::error("500"), vec![]));
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|s| s.span_context.is_sampled()));
        assert!(kept.iter().all(|s| reason(s).as_deref() == Some("error")));

        k.root_started(TraceId::from(2));
        assert!(end(&k, span(2, 2, 1, Status::Unset, vec![])).is_empty());
        assert!(end(&k, span(2, 1, 0, Status::Unset, vec![])).is_empty());
        let h = k.stats().snapshot();
        assert_eq!((h.kept_error, h.dropped, h.buffered_bytes), (1, 1, 0));
    }

    #[test]
    fn late_spans_follow_the_decision() {
        let k = keeper(KeepSettings::default());
        k.root_started(TraceId::from(1));
        end(&k, span(1, 1, 0, Status::error("x"), vec![]));
        let late = end(&k, span(1, 3, 1, Status::Unset, vec![]));
        assert_eq!(late.len(), 1);
        assert_eq!(reason(&late[0]).as_deref(), Some("error"));

        k.root_started(TraceId::from(2));
        end(&k, span(2, 1, 0, Status::Unset, vec![]));
        assert!(end(&k, span(2, 3, 1, Status::error("late"), vec![])).is_empty());
        // Never seen, no decision: dropped, never passed through.
        assert!(end(&k, span(3, 3, 1, Status::Unset, vec![])).is_empty());
        let h = k.stats().snapshot();
        assert_eq!((h.late_kept, h.late_dropped), (1, 2));
    }

    #[test]
    fn the_first_local_root_to_end_does_not_decide_for_the_others() {
        let k = keeper(KeepSettings::default());
        k.root_started(TraceId::from(1));
        k.root_started(TraceId::from(1));
        assert!(end(&k, span(1, 1, 0, Status::Unset, vec![])).is_empty());
        // The second root fails: the whole local trace is kept, the first root included.
        let kept = end(&k, span(1, 2, 0, Status::error("x"), vec![]));
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn slow_and_forced_traces_are_kept_with_their_reason() {
        let k = keeper(KeepSettings::default());
        k.root_started(TraceId::from(1));
        let slow = end(
            &k,
            span(1, 1, 0, Status::Unset, vec![KeyValue::new(SLOW, true)]),
        );
        assert_eq!(reason(&slow[0]).as_deref(), Some("slow"));
        k.root_started(TraceId::from(2));
        // A forced keep is final at once: the spans so far leave now, the rest follow.
        let mut forced = end(
            &k,
            span(
                2,
                2,
                1,
                Status::Unset,
                vec![KeyValue::new(FORCED, "fraud check")],
            ),
        );
        assert_eq!(forced.len(), 1);
        forced.extend(end(&k, span(2, 1, 0, Status::Unset, vec![])));
        assert_eq!(forced.len(), 2);
        assert!(forced
            .iter()
            .all(|s| reason(s).as_deref() == Some("forced")));
        // A child's error is not the trace's outcome.
        k.root_started(TraceId::from(3));
        assert!(end(&k, span(3, 2, 1, Status::error("retried"), vec![])).is_empty());
        assert!(end(&k, span(3, 1, 0, Status::Unset, vec![])).is_empty());
    }

    #[test]
    fn a_root_open_past_the_slow_threshold_is_kept_before_it_ends() {
        let k = keeper(KeepSettings {
            slow_after: Duration::from_millis(10),
            ..KeepSettings::default()
        });
        k.root_started(TraceId::from(1));
        end(&k, span(1, 2, 1, Status::Unset, vec![]));
        let mut out = Vec::new();
        k.sweep(Instant::now(), &mut out);
        assert!(out.is_empty(), "not yet slow");
        k.sweep(Instant::now() + Duration::from_millis(20), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(reason(&out[0]).as_deref(), Some("slow"));
        // The root follows when it ends.
        assert_eq!(end(&k, span(1, 1, 0, Status::Unset, vec![])).len(), 1);
    }

    #[test]
    fn bounds_decide_at_once_with_what_is_known() {
        // TTL: a root that never ends.
        let k = keeper(KeepSettings {
            ttl: Duration::from_millis(10),
            slow_after: Duration::from_secs(3600),
            ..KeepSettings::default()
        });
        k.root_started(TraceId::from(1));
        end(&k, span(1, 2, 1, Status::Unset, vec![]));
        k.root_started(TraceId::from(2));
        end(&k, span(2, 2, 1, Status::Unset, vec![]));
        let mut out = Vec::new();
        k.sweep(Instant::now() + Duration::from_millis(20), &mut out);
        assert!(out.is_empty(), "nothing known against them: dropped");
        let h = k.stats().snapshot();
        assert_eq!((h.evicted_ttl, h.dropped, h.buffered_bytes), (2, 2, 0));
        // Their late spans are dropped too, not passed through, and counted (a late root too).
        assert!(end(&k, span(1, 1, 0, Status::error("late"), vec![])).is_empty());
        assert!(end(&k, span(2, 3, 1, Status::Unset, vec![])).is_empty());
        assert_eq!(k.stats().snapshot().late_dropped, 2);

        // Budget: the oldest waiting traces are decided first; bytes never exceed the budget.
        let k = keeper(KeepSettings {
            budget_bytes: 2_000,
            ..KeepSettings::default()
        });
        for t in 1..=50u128 {
            k.root_started(TraceId::from(t));
            end(
                &k,
                span(
                    t,
                    2,
                    1,
                    Status::Unset,
                    vec![KeyValue::new("x", "y".repeat(100))],
                ),
            );
            assert!(k.stats().snapshot().buffered_bytes <= 2_000);
        }
        assert!(k.stats().snapshot().evicted_budget > 0);

        // Span cap.
        let k = keeper(KeepSettings {
            max_spans_per_trace: 3,
            ..KeepSettings::default()
        });
        k.root_started(TraceId::from(1));
        for id in 2..10 {
            end(&k, span(1, id, 1, Status::Unset, vec![]));
        }
        assert_eq!(k.stats().snapshot().evicted_span_cap, 1);
    }

    #[test]
    fn an_error_storm_is_thinned_by_trace_randomness() {
        let thinned = Thinned::default();
        let k = keeper_marking(
            KeepSettings {
                max_keeps_per_second: 10,
                ..KeepSettings::default()
            },
            thinned.clone(),
        );
        let mut kept = 0;
        for t in 1..=1_000u128 {
            // Random-looking trace ids: the low 56 bits are the randomness.
            let id = t.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            k.root_started(TraceId::from(id));
            let since = thinned.marks();
            let out = end(&k, span(id, 1, 0, Status::error("storm"), vec![]));
            assert_eq!(
                out.is_empty(),
                thinned.marked_since(since, TraceId::from(id)),
                "marked in the record"
            );
            if let Some(s) = out.first() {
                kept += 1;
                if kept > 10 {
                    assert!(s
                        .attributes
                        .iter()
                        .any(|kv| kv.key.as_str() == KEEP_PROBABILITY));
                }
            }
        }
        let h = k.stats().snapshot();
        assert!(kept < 200, "thinned: {kept} kept");
        assert_eq!(h.kept_error + h.thinned, 1_000);
    }

    #[test]
    fn shutdown_decides_every_waiting_trace() {
        let k = keeper(KeepSettings::default());
        // Two local roots: one failed, one still open at shutdown.
        k.root_started(TraceId::from(1));
        k.root_started(TraceId::from(1));
        let kept = end(&k, span(1, 2, 0, Status::error("x"), vec![]));
        assert_eq!(kept.len(), 1, "a failed root keeps its trace at once");
        k.root_started(TraceId::from(2));
        end(&k, span(2, 2, 1, Status::Unset, vec![]));
        let mut out = Vec::new();
        k.decide_all(&mut out);
        assert!(out.is_empty());
        let h = k.stats().snapshot();
        assert_eq!((h.kept_error, h.dropped, h.buffered_bytes), (1, 1, 0));
    }
}
