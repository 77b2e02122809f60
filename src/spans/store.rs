//! [`SpanStore`]: the subscriber under paytrace's installed layers. It keeps each span's
//! OpenTelemetry state in a slab of its own, so a span costs one slot and its state, not the
//! registry's slot, extensions map and per-thread stack besides paytrace's own.
//!
//! Services composing their own subscriber keep `tracing_subscriber`'s registry and
//! [`SpanLayer`](super::layer::SpanLayer); both record through the same [`Recorder`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use sharded_slab::Slab;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

use super::active::{self, Owner};
use super::record::{self, OtelSpan, Recorder, SpanState};

/// The store's spans: each `tracing` span's handles and OpenTelemetry state.
#[derive(Debug)]
pub(crate) struct SpanStore {
    recorder: Recorder,
    spans: Slab<Slot>,
    /// Tells this store's entered spans from another subscriber's on the same thread.
    owner: Owner,
}

/// One span: how many handles point at it, and its state (`None` when not recorded).
#[derive(Debug)]
pub(crate) struct Slot {
    handles: AtomicUsize,
    meta: &'static Metadata<'static>,
    state: Mutex<Option<OtelSpan>>,
}

impl SpanState for Slot {
    fn with<R>(&self, f: impl FnOnce(&mut OtelSpan) -> R) -> Option<R> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.as_mut().map(f)
    }
}

/// The id of a span the slab had no room for: it is entered and closed as nothing.
const NO_SLOT: u64 = u64::MAX;

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
        let key = usize::try_from(id.into_u64().checked_sub(1)?).ok()?;
        self.spans.get(key)
    }

    /// The context of the span `id`, starting it if it was pending; `None` when not recorded.
    pub(crate) fn context(&self, id: &Id) -> Option<Context> {
        self.recorder.context(&*self.slot(id)?)
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
            state: Mutex::new(self.recorder.pending(attrs, parent)),
        };
        match self.spans.insert(slot) {
            Some(key) => Id::from_u64(key as u64 + 1),
            None => Id::from_u64(NO_SLOT),
        }
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(slot) = self.slot(span) {
            slot.with(|state| record::record(state, values));
        }
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        let Some(followed) = self.context(follows) else {
            return;
        };
        let link = followed.span().span_context().clone();
        if let Some(slot) = self.slot(span) {
            slot.with(|state| record::link(state, link));
        }
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
        let cx = self.recorder.context(&*slot);
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
        let state = slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(slot);
        if let Some(key) = id.into_u64().checked_sub(1) {
            self.spans.remove(key as usize);
        }
        if let Some(state) = state {
            self.recorder.end(state);
        }
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
    fn the_installed_subscriber_keeps_spans_in_the_store() {
        let telemetry = crate::Telemetry::start(
            crate::Config::new()
                .with_endpoint("http://127.0.0.1:9")
                .with_install_subscriber(false),
        )
        .unwrap();
        let dispatch = tracing::Dispatch::new(telemetry.subscriber());
        assert!(dispatch.downcast_ref::<SpanStore>().is_some());
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
}
