//! [`Recorder`]: what a `tracing` span's callbacks do to its OpenTelemetry span, wherever the
//! span's state is kept (the registry's extensions or paytrace's own span store).

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::trace::Tracer as _;
use opentelemetry::trace::{Link, SpanBuilder, SpanContext, SpanKind, Status};
use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Tracer;
use tracing::span::{Attributes, Record};
use tracing::{Event, Level};

use super::fields::Fields;
use crate::export::processor::is_internal_target;

/// A `tracing` span's OpenTelemetry side, as its callbacks and [`SpanExt`](super::SpanExt)
/// change it.
#[derive(Debug)]
pub(crate) enum State<'a> {
    /// Created, not entered yet: its parent can still be set
    /// ([`SpanExt::set_parent`](super::SpanExt::set_parent)).
    Pending(&'a mut Pending),
    /// Started: its context (parent's entries plus the span) is what entering attaches.
    Started(&'a Context),
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

/// Where a span's [`State`] is kept, reached under that place's lock.
pub(crate) trait SpanState {
    /// Runs `f` on the span's state; `None` when the span is not recorded.
    fn with<R>(&self, f: impl FnOnce(State<'_>) -> R) -> Option<R>;
}

/// Records `tracing` spans straight into paytrace's span pipeline: no span builder kept per
/// span beyond its first entry, no code location, thread or busy/idle attributes.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    tracer: Tracer,
    /// Copy each event inside a span onto it as a span event (the log record has its ids).
    span_events: bool,
}

impl Recorder {
    pub(crate) fn new(tracer: Tracer, span_events: bool) -> Recorder {
        Recorder {
            tracer,
            span_events,
        }
    }

    /// The state of a new span under `parent`; `None` for the transport crates and paytrace's
    /// own export, which must not trace themselves.
    pub(crate) fn pending(&self, attrs: &Attributes<'_>, parent: Context) -> Option<Pending> {
        let meta = attrs.metadata();
        if is_internal_target(meta.target()) {
            return None;
        }
        let mut fields = Fields::with_capacity(meta.fields().len());
        attrs.record(&mut fields);
        let name = match fields.name {
            Some(name) => Cow::Owned(name),
            None => Cow::Borrowed(meta.name()),
        };
        Some(Pending {
            name,
            kind: fields.kind.unwrap_or(SpanKind::Internal),
            start: SystemTime::now(),
            attributes: fields.attributes,
            links: Vec::new(),
            status: fields.status.unwrap_or(Status::Unset),
            parent,
        })
    }

    /// Starts the SDK span: the sampler decides now, with the parent known.
    pub(crate) fn start(&self, pending: Pending) -> Context {
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

    /// Ends a closing span, which starts as it ends when it was never entered (still pending).
    pub(crate) fn end(&self, pending: Option<Pending>, started: Option<Context>) {
        match (pending, started) {
            (Some(pending), _) => self.start(pending).span().end(),
            (None, Some(cx)) => cx.span().end(),
            (None, None) => {}
        }
    }

    /// Whether an event needs its span: an ERROR sets the span's status, and span events copy it.
    pub(crate) fn wants_event(&self, event: &Event<'_>) -> bool {
        self.span_events || *event.metadata().level() == Level::ERROR
    }

    /// What `event` does to the span of context `cx`.
    pub(crate) fn event(&self, cx: &Context, event: &Event<'_>) {
        let otel = cx.span();
        if *event.metadata().level() == Level::ERROR {
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
}

/// Fields recorded on a span after it was created.
pub(crate) fn record(state: State<'_>, values: &Record<'_>) {
    let mut fields = Fields::default();
    values.record(&mut fields);
    match state {
        State::Pending(pending) => update_pending(pending, fields),
        State::Started(cx) => update_span(cx, fields),
    }
}

/// A link to the span of `followed`.
pub(crate) fn link(state: State<'_>, followed: SpanContext) {
    match state {
        State::Pending(pending) => pending.links.push(Link::with_context(followed)),
        State::Started(cx) => cx.span().add_link(followed, Vec::new()),
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

/// The parent a new span gets: its explicit parent's context (`explicit`, when recorded), none
/// for an explicit root, else the current context (the innermost entered span, or the
/// request's context).
pub(crate) fn parent(attrs: &Attributes<'_>, explicit: Option<Context>) -> Context {
    match explicit {
        Some(cx) => cx,
        None if attrs.is_root() => Context::new(),
        None => Context::current(),
    }
}
