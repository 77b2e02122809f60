//! [`SpanStore`]: the subscriber under paytrace's installed layers. It keeps each span's
//! OpenTelemetry state in a slab of its own, so a span costs one slot and its state, not the
//! registry's slot, extensions map and per-thread stack besides paytrace's own.
//!
//! Services composing their own subscriber keep `tracing_subscriber`'s registry and
//! [`SpanLayer`](super::layer::SpanLayer); both record through the same [`Recorder`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use sharded_slab::Slab;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

use super::active::{self, Owner};
use super::record::{self, Pending, Recorder, SpanState, State};

/// The store's spans: each `tracing` span's handles and OpenTelemetry state.
#[derive(Debug)]
pub(crate) struct SpanStore {
    recorder: Recorder,
    spans: Slab<Slot>,
    /// Tells this store's entered spans from another subscriber's on the same thread.
    owner: Owner,
}

/// One span: how many handles point at it, and its OpenTelemetry state.
#[derive(Debug)]
pub(crate) struct Slot {
    handles: AtomicUsize,
    meta: &'static Metadata<'static>,
    /// What the span starts with, until it starts; `None` after, or when it is not recorded.
    pending: Mutex<Option<Pending>>,
    /// The span's context once started: entering it again reads this without a lock.
    started: OnceLock<Context>,
}

impl Slot {
    fn pending(&self) -> MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SpanState for Slot {
    fn with<R>(&self, f: impl FnOnce(State<'_>) -> R) -> Option<R> {
        let mut pending = self.pending();
        match (pending.as_mut(), self.started.get()) {
            (Some(pending), _) => Some(f(State::Pending(pending))),
            (None, Some(cx)) => Some(f(State::Started(cx))),
            (None, None) => None,
        }
    }
}

/// The id of a span the slab had no room for: it is entered and closed as nothing.
const NO_SLOT: u64 = u64::MAX;

/// The slab key of the span `id`.
fn key(id: &Id) -> Option<usize> {
    usize::try_from(id.into_u64().checked_sub(1)?).ok()
}

impl SpanStore {
    pub(crate) fn new(recorder: Recorder) -> SpanStore {
        static STORES: AtomicUsize = AtomicUsize::new(1);
        SpanStore {
            recorder,
            spans: Slab::new(),
            owner: Owner(STORES.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The span `id`, while it is open.
    pub(crate) fn slot(&self, id: &Id) -> Option<sharded_slab::Entry<'_, Slot>> {
        self.spans.get(key(id)?)
    }

    /// Runs `f` on the state of the span `id`; `None` when it is closed or not recorded.
    pub(crate) fn with_state<R>(&self, id: &Id, f: impl FnOnce(State<'_>) -> R) -> Option<R> {
        self.slot(id)?.with(f)
    }

    /// The context of the span `id`, starting it if it was pending; `None` when not recorded.
    pub(crate) fn context(&self, id: &Id) -> Option<Context> {
        self.started(&*self.slot(id)?)
    }

    /// The slot's context, starting its span if it was pending.
    fn started(&self, slot: &Slot) -> Option<Context> {
        if let Some(cx) = slot.started.get() {
            return Some(cx.clone());
        }
        // Started under the lock, so a span first entered on two threads at once starts once.
        // The span is not current yet: nothing the SDK logs meanwhile looks it up.
        let mut pending = slot.pending();
        if let Some(pending) = pending.take() {
            let _ = slot.started.set(self.recorder.start(pending));
        }
        drop(pending);
        slot.started.get().cloned()
    }

    /// The span an event belongs to: its explicit parent, else the current span.
    fn event_span(&self, event: &Event<'_>) -> Option<Id> {
        if event.is_contextual() {
            active::current(self.owner).map(|(id, _)| id)
        } else {
            event.parent().cloned()
        }
    }
}

impl Subscriber for SpanStore {
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> Interest {
        // The log filter layered above decides.
        Interest::always()
    }

    fn enabled(&self, _meta: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let explicit = attrs.parent().and_then(|id| self.context(id));
        let parent = record::parent(attrs, explicit);
        let slot = Slot {
            handles: AtomicUsize::new(1),
            meta: attrs.metadata(),
            pending: Mutex::new(self.recorder.pending(attrs, parent)),
            started: OnceLock::new(),
        };
        // Ids start at 1; the slab's keys at 0.
        let id = self
            .spans
            .insert(slot)
            .and_then(|key| u64::try_from(key).ok()?.checked_add(1));
        Id::from_u64(id.unwrap_or(NO_SLOT))
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.with_state(span, |state| record::record(state, values));
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        let Some(followed) = self.context(follows) else {
            return;
        };
        let link = followed.span().span_context().clone();
        self.with_state(span, |state| record::link(state, link));
    }

    fn event(&self, event: &Event<'_>) {
        // The common case, an INFO line with no span-event copy, costs this one branch.
        if !self.recorder.wants_event(event) {
            return;
        }
        if let Some(cx) = self.event_span(event).and_then(|id| self.context(&id)) {
            self.recorder.event(&cx, event);
        }
    }

    fn enter(&self, id: &Id) {
        let Some(slot) = self.slot(id) else { return };
        let cx = self.started(&slot);
        active::push(self.owner, id, Some(slot.meta), cx);
    }

    fn exit(&self, id: &Id) {
        active::pop(self.owner, id);
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(slot) = self.slot(id) {
            slot.handles.fetch_add(1, Ordering::Relaxed);
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let Some(slot) = self.slot(&id) else {
            return false;
        };
        if slot.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        let pending = slot.pending().take();
        let started = slot.started.get().cloned();
        drop(slot);
        if let Some(key) = key(&id) {
            self.spans.remove(key);
        }
        self.recorder.end(pending, started);
        true
    }

    fn current_span(&self) -> Current {
        match active::current(self.owner) {
            Some((id, meta)) => Current::new(id, meta),
            None => Current::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    /// A store over an SDK tracer exporting to memory, as its own subscriber.
    fn store() -> (tracing::Dispatch, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let recorder = Recorder::new(provider.tracer("test"), false);
        (tracing::Dispatch::new(SpanStore::new(recorder)), exporter)
    }

    fn ended(exporter: &InMemorySpanExporter) -> Vec<String> {
        let spans = exporter.get_finished_spans().unwrap();
        spans.into_iter().map(|s| s.name.into_owned()).collect()
    }

    #[test]
    fn a_span_ends_when_its_last_handle_is_dropped() {
        let (dispatch, exporter) = store();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("pay");
            let copy = span.clone();
            drop(span);
            assert!(ended(&exporter).is_empty(), "a handle is left");
            drop(copy);
        });
        assert_eq!(ended(&exporter), ["pay"]);
    }

    #[test]
    fn the_current_span_is_the_innermost_entered_one() {
        let (dispatch, _exporter) = store();
        tracing::dispatcher::with_default(&dispatch, || {
            let outer = tracing::info_span!("outer");
            let _outer = outer.enter();
            tracing::info_span!("inner").in_scope(|| {
                assert_eq!(tracing::Span::current().metadata().unwrap().name(), "inner");
            });
            assert_eq!(tracing::Span::current().id(), outer.id());
        });
        tracing::dispatcher::with_default(&dispatch, || {
            assert!(tracing::Span::current().is_none(), "exited");
        });
    }

    #[test]
    fn two_stores_on_one_thread_keep_their_own_current_span() {
        let (first, _) = store();
        let (second, _) = store();
        tracing::dispatcher::with_default(&first, || {
            let span = tracing::info_span!("first");
            let _entered = span.enter();
            tracing::dispatcher::with_default(&second, || {
                assert!(
                    tracing::Span::current().is_none(),
                    "not the first store's span"
                );
                let inner = tracing::info_span!("second");
                let _inner = inner.enter();
                assert_eq!(tracing::Span::current().id(), inner.id());
            });
            assert_eq!(tracing::Span::current().id(), span.id());
        });
    }

    #[test]
    fn an_error_event_sets_its_explicit_parents_status() {
        let (dispatch, exporter) = store();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("capture");
            tracing::error!(parent: &span, "declined");
        });
        let spans = exporter.get_finished_spans().unwrap();
        assert!(matches!(
            spans[0].status,
            opentelemetry::trace::Status::Error { .. }
        ));
    }

    #[test]
    fn unknown_and_stale_ids_change_nothing() {
        let (dispatch, exporter) = store();
        let id = tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("gone");
            span.id().unwrap()
        });
        for id in [id, Id::from_u64(12_345), Id::from_u64(NO_SLOT)] {
            dispatch.enter(&id);
            dispatch.exit(&id);
            assert!(!dispatch.try_close(id));
        }
        assert_eq!(ended(&exporter), ["gone"], "ended once");
    }

    /// One step of a scripted use of spans, on the spans opened so far (indices wrap).
    #[derive(Debug, Clone)]
    enum Step {
        /// A span under the current one.
        Open,
        /// A span with an explicit parent.
        OpenUnder(usize),
        /// A root span.
        OpenRoot,
        Enter(usize),
        /// Exits the innermost entered span.
        Exit,
        Record(usize, i64),
        Error(usize),
        Link(usize, usize),
        Clone(usize),
        Drop(usize),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Step::Open),
            any::<usize>().prop_map(Step::OpenUnder),
            Just(Step::OpenRoot),
            any::<usize>().prop_map(Step::Enter),
            Just(Step::Exit),
            (any::<usize>(), any::<i64>()).prop_map(|(i, v)| Step::Record(i, v)),
            any::<usize>().prop_map(Step::Error),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Step::Link(a, b)),
            any::<usize>().prop_map(Step::Clone),
            any::<usize>().prop_map(Step::Drop),
        ]
    }

    /// Runs `steps` on `dispatch`, then exits and drops everything; with `agree`, checks after
    /// every step that `tracing`'s current span and OpenTelemetry's current context agree (the
    /// registry makes a span entered again below the top current only where it was first).
    fn run(dispatch: &tracing::Dispatch, steps: &[Step], agree: bool) {
        use opentelemetry::trace::TraceContextExt as _;
        tracing::dispatcher::with_default(dispatch, || {
            let mut spans: Vec<tracing::Span> = Vec::new();
            let mut entered: Vec<tracing::Span> = Vec::new();
            let pick =
                |spans: &Vec<tracing::Span>, i: usize| spans.get(i % spans.len().max(1)).cloned();
            for step in steps {
                let name = format!("s{}", spans.len());
                match step {
                    Step::Open => spans.push(tracing::info_span!("op", otel.name = %name, n = tracing::field::Empty)),
                    Step::OpenUnder(i) => {
                        let parent = pick(&spans, *i);
                        spans.push(tracing::info_span!(parent: parent.and_then(|p| p.id()), "op", otel.name = %name, n = tracing::field::Empty));
                    }
                    Step::OpenRoot => spans.push(tracing::info_span!(parent: None, "op", otel.name = %name, n = tracing::field::Empty)),
                    Step::Enter(i) => {
                        if let Some(span) = pick(&spans, *i) {
                            if let Some(id) = span.id() {
                                dispatch.enter(&id);
                            }
                            entered.push(span);
                        }
                    }
                    Step::Exit => {
                        if let Some(id) = entered.pop().and_then(|span| span.id()) {
                            dispatch.exit(&id);
                        }
                    }
                    Step::Record(i, v) => {
                        if let Some(span) = pick(&spans, *i) {
                            span.record("n", *v);
                        }
                    }
                    Step::Error(i) => {
                        if let Some(span) = pick(&spans, *i) {
                            tracing::error!(parent: &span, "failed");
                        }
                    }
                    Step::Link(a, b) => {
                        if let (Some(a), Some(b)) = (pick(&spans, *a), pick(&spans, *b)) {
                            a.follows_from(&b);
                        }
                    }
                    Step::Clone(i) => {
                        if let Some(span) = pick(&spans, *i) {
                            spans.push(span);
                        }
                    }
                    Step::Drop(i) => {
                        if !spans.is_empty() {
                            let at = i % spans.len();
                            drop(spans.swap_remove(at));
                        }
                    }
                }
                if !agree {
                    continue;
                }
                let of_tracing = super::super::SpanExt::context(&tracing::Span::current());
                let of_otel = Context::current();
                assert_eq!(
                    of_tracing.span().span_context().span_id(),
                    of_otel.span().span_context().span_id()
                );
            }
            while let Some(span) = entered.pop() {
                if let Some(id) = span.id() {
                    dispatch.exit(&id);
                }
            }
        });
    }

    /// What the exported spans say, by name: parent's name, links, status, attributes.
    fn tree(exporter: &InMemorySpanExporter) -> Vec<String> {
        let spans = exporter.get_finished_spans().unwrap();
        let name_of = |id: opentelemetry::trace::SpanId| {
            spans
                .iter()
                .find(|s| s.span_context.span_id() == id)
                .map(|s| s.name.to_string())
        };
        let mut tree: Vec<String> = spans
            .iter()
            .map(|s| {
                let links: Vec<_> = s
                    .links
                    .iter()
                    .map(|l| name_of(l.span_context.span_id()))
                    .collect();
                format!(
                    "{} under {:?} links {links:?} status {:?} attributes {:?}",
                    s.name,
                    name_of(s.parent_span_id),
                    s.status,
                    s.attributes
                )
            })
            .collect();
        tree.sort();
        tree
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn the_store_records_what_the_registry_layer_records(
            steps in proptest::collection::vec(step(), 0..40)
        ) {
            use tracing_subscriber::layer::SubscriberExt as _;
            let (store, by_store) = store();
            run(&store, &steps, true);
            let by_registry = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(by_registry.clone())
                .build();
            let layer = super::super::SpanLayer::new(Recorder::new(provider.tracer("test"), false));
            let registry = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
            run(&registry, &steps, false);
            proptest::prop_assert_eq!(tree(&by_store), tree(&by_registry));
        }
    }
}
