//! [`SpanLayer`]: the span recorder as a `tracing_subscriber` layer, keeping each span's state in
//! the registry's extensions, for the subscribers services compose with `Telemetry::layers`.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use super::active;
use super::record::{self, Pending, Recorder, SpanState, State};

/// Records `tracing` spans into paytrace's span pipeline through the registry.
#[derive(Debug, Clone)]
pub(crate) struct SpanLayer {
    recorder: Recorder,
}

/// A `tracing` span's OpenTelemetry side, kept in the span's extensions.
#[derive(Debug)]
enum OtelSpan {
    Pending(Pending),
    Started(Context),
}

impl<S> SpanState for SpanRef<'_, S>
where
    S: for<'a> LookupSpan<'a>,
{
    fn with<R>(&self, f: impl FnOnce(State<'_>) -> R) -> Option<R> {
        let mut extensions = self.extensions_mut();
        match extensions.get_mut::<OtelSpan>()? {
            OtelSpan::Pending(pending) => Some(f(State::Pending(pending))),
            OtelSpan::Started(cx) => Some(f(State::Started(cx))),
        }
    }
}

impl SpanLayer {
    pub(crate) fn new(recorder: Recorder) -> SpanLayer {
        SpanLayer { recorder }
    }

    /// The context of the span `span`, starting it if it was pending; `None` when this layer
    /// does not record it.
    pub(crate) fn context<S>(&self, span: &SpanRef<'_, S>) -> Option<Context>
    where
        S: for<'a> LookupSpan<'a>,
    {
        // The SDK's span processors run outside the extensions' lock: the registry has made
        // the span current already, and an event they log would look it up.
        let taken = {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<OtelSpan>()? {
                OtelSpan::Started(cx) => return Some(cx.clone()),
                pending => std::mem::replace(pending, OtelSpan::Started(Context::new())),
            }
        };
        let OtelSpan::Pending(pending) = taken else {
            return None;
        };
        let cx = self.recorder.start(pending);
        if let Some(state) = span.extensions_mut().get_mut::<OtelSpan>() {
            *state = OtelSpan::Started(cx.clone());
        }
        Some(cx)
    }

    /// The parent a new span gets: its explicit parent's context, none for an explicit root,
    /// else the current context (the innermost entered span, or the request's context).
    fn parent<S>(&self, attrs: &Attributes<'_>, ctx: &layer::Context<'_, S>) -> Context
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let explicit = attrs.parent().and_then(|id| ctx.span(id));
        record::parent(attrs, explicit.and_then(|parent| self.context(&parent)))
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(pending) = self.recorder.pending(attrs, self.parent(attrs, &ctx)) {
            span.extensions_mut().insert(OtelSpan::Pending(pending));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.with(|state| record::record(state, values));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: layer::Context<'_, S>) {
        let Some(followed) = ctx.span(follows).and_then(|s| self.context(&s)) else {
            return;
        };
        let link = followed.span().span_context().clone();
        if let Some(span) = ctx.span(id) {
            span.with(|state| record::link(state, link));
        }
    }

    fn on_enter(&self, id: &Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(cx) = self.context(&span) {
            active::enter(id, cx);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: layer::Context<'_, S>) {
        active::exit(id);
    }

    fn on_event(&self, event: &Event<'_>, ctx: layer::Context<'_, S>) {
        // The common case, an INFO line with no span-event copy, costs this one branch.
        if !self.recorder.wants_event(event) {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        if let Some(cx) = self.context(&span) {
            self.recorder.event(&cx, event);
        }
    }

    fn on_close(&self, id: Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let state = span.extensions_mut().remove::<OtelSpan>();
        match state {
            Some(OtelSpan::Started(cx)) => self.recorder.end(None, Some(cx)),
            Some(OtelSpan::Pending(pending)) => self.recorder.end(Some(pending), None),
            None => {}
        }
    }
}
