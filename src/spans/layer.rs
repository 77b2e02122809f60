//! [`SpanLayer`]: each `tracing` span becomes an OpenTelemetry span of paytrace's tracer, so it
//! goes through the same sampler, tail keep, redaction and export queue as the request span.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::Tracer as _;
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Tracer;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use super::active;
use super::fields::Fields;
use crate::export::processor::is_internal_target;

/// Records `tracing` spans straight into paytrace's span pipeline: no span builder kept per
/// span beyond its first entry, no code location, thread or busy/idle attributes.
#[derive(Debug, Clone)]
pub(crate) struct SpanLayer {
    tracer: Tracer,
    /// Copy each event inside a span onto it as a span event (the log record has its ids).
    span_events: bool,
}

/// A `tracing` span's OpenTelemetry side, kept in the span's extensions.
#[derive(Debug)]
pub(crate) enum OtelSpan {
    /// Created, not entered yet: its parent can still be set
    /// ([`SpanExt::set_parent`](super::SpanExt::set_parent)).
    Pending(Pending),
    /// Started: its context (parent's entries plus the span) is what entering attaches.
    Started(Context),
}

/// What a span is started with; smaller than an SDK `SpanBuilder`, which is moved once, at start.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start: SystemTime,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) links: Vec<Link>,
    pub(crate) status: Status,
    pub(crate) parent: Context,
}

impl SpanLayer {
    pub(crate) fn new(tracer: Tracer, span_events: bool) -> SpanLayer {
        SpanLayer {
            tracer,
            span_events,
        }
    }

    /// The context of the span `span`, starting it if it was pending; `None` when this layer
    /// does not record it.
    pub(crate) fn context<S>(&self, span: &SpanRef<'_, S>) -> Option<Context>
    where
        S: for<'a> LookupSpan<'a>,
    {
        // The SDK's span processors run outside the extensions' lock.
        let pending = {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<OtelSpan>()? {
                OtelSpan::Started(cx) => return Some(cx.clone()),
                pending => std::mem::replace(pending, OtelSpan::Started(Context::new())),
            }
        };
        let OtelSpan::Pending(pending) = pending else {
            return None;
        };
        let cx = self.start(pending);
        if let Some(state) = span.extensions_mut().get_mut::<OtelSpan>() {
            *state = OtelSpan::Started(cx.clone());
        }
        Some(cx)
    }

    /// Starts the SDK span: the sampler decides now, with the parent known.
    fn start(&self, pending: Pending) -> Context {
        let mut builder = SpanBuilder::from_name(pending.name)
            .with_kind(pending.kind)
            .with_start_time(pending.start);
        if !pending.attributes.is_empty() {
            builder.attributes = Some(pending.attributes);
        }
        if !pending.links.is_empty() {
            builder.links = Some(pending.links);
        }
        let mut span = self.tracer.build_with_context(builder, &pending.parent);
        if pending.status != Status::Unset {
            opentelemetry::trace::Span::set_status(&mut span, pending.status);
        }
        crate::propagation::mark_random(&pending.parent, pending.parent.with_span(span))
    }

    /// The parent a new span gets: its explicit parent's context, none for an explicit root,
    /// else the current context (the innermost entered span, or the request's context).
    fn parent<S>(&self, attrs: &Attributes<'_>, ctx: &layer::Context<'_, S>) -> Context
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(parent) = attrs.parent().and_then(|id| ctx.span(id)) {
            if let Some(cx) = self.context(&parent) {
                return cx;
            }
        }
        if attrs.is_root() {
            Context::new()
        } else {
            Context::current()
        }
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: layer::Context<'_, S>) {
        let meta = attrs.metadata();
        // The transport crates and paytrace's own export must not trace themselves.
        if is_internal_target(meta.target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::with_capacity(meta.fields().len());
        attrs.record(&mut fields);
        let name = match fields.name {
            Some(name) => Cow::Owned(name),
            None => Cow::Borrowed(meta.name()),
        };
        let pending = Pending {
            name,
            kind: fields.kind.unwrap_or(SpanKind::Internal),
            start: SystemTime::now(),
            attributes: fields.attributes,
            links: Vec::new(),
            status: fields.status.unwrap_or(Status::Unset),
            parent: self.parent(attrs, &ctx),
        };
        span.extensions_mut().insert(OtelSpan::Pending(pending));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<OtelSpan>() {
            Some(OtelSpan::Pending(pending)) => update_pending(pending, fields),
            Some(OtelSpan::Started(cx)) => update_span(cx, fields),
            None => {}
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: layer::Context<'_, S>) {
        let Some(followed) = ctx.span(follows).and_then(|s| self.context(&s)) else {
            return;
        };
        let link = followed.span().span_context().clone();
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<OtelSpan>() {
            Some(OtelSpan::Pending(pending)) => pending.links.push(Link::with_context(link)),
            Some(OtelSpan::Started(cx)) => cx.span().add_link(link, Vec::new()),
            None => {}
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
        let error = *event.metadata().level() == Level::ERROR;
        // The common case, an INFO line with no span-event copy, costs this one branch.
        if !error && !self.span_events {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let Some(cx) = self.context(&span) else {
            return;
        };
        let otel = cx.span();
        if error {
            otel.set_status(Status::error(""));
        }
        if self.span_events {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let mut attributes = fields.attributes;
            // The message names the event; the other fields are its attributes.
            let name = match attributes
                .iter()
                .position(|kv| kv.key.as_str() == "message")
            {
                Some(at) => attributes.swap_remove(at).value.as_str().into_owned(),
                None => event.metadata().name().to_owned(),
            };
            otel.add_event(name, attributes);
        }
    }

    fn on_close(&self, id: Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let state = span.extensions_mut().remove::<OtelSpan>();
        match state {
            Some(OtelSpan::Started(cx)) => cx.span().end(),
            Some(OtelSpan::Pending(pending)) => self.start(pending).span().end(),
            None => {}
        }
    }
}

fn update_pending(pending: &mut Pending, fields: Fields) {
    if let Some(name) = fields.name {
        pending.name = Cow::Owned(name);
    }
    if let Some(kind) = fields.kind {
        pending.kind = kind;
    }
    if let Some(status) = fields.status {
        pending.status = status;
    }
    pending.attributes.extend(fields.attributes);
}

/// A started span's kind is fixed: only name, status and attributes change.
fn update_span(cx: &Context, fields: Fields) {
    let span = cx.span();
    if let Some(name) = fields.name {
        span.update_name(name);
    }
    if let Some(status) = fields.status {
        span.set_status(status);
    }
    if !fields.attributes.is_empty() {
        span.set_attributes(fields.attributes);
    }
}
