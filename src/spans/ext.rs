//! [`SpanExt`]: the OpenTelemetry side of a `tracing` span, for what `tracing`'s own API cannot
//! say (a remote parent, links, the context to inject).

use opentelemetry::trace::{Link, SpanContext, Status, TraceContextExt as _};
use opentelemetry::{Context, Key, KeyValue, Value};
use tracing::span::Id;
use tracing::Dispatch;
use tracing_subscriber::registry::LookupSpan as _;
use tracing_subscriber::Registry;

use super::layer::SpanLayer;
use super::record::{SpanState, State};
use super::store::SpanStore;

/// Why [`SpanExt::set_parent`] changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpanError {
    /// The span is not recorded by paytrace: disabled by the log filter, or no paytrace
    /// subscriber is current.
    #[error("the span is not recorded by paytrace (filtered out, or no paytrace subscriber)")]
    NotRecorded,
    /// The span was entered (or its context read) already: its parent is fixed.
    #[error("the span has started: its parent can only be set before it is first entered")]
    AlreadyStarted,
}

/// OpenTelemetry operations on a `tracing::Span` recorded by paytrace's subscriber: what
/// `tracing_opentelemetry::OpenTelemetrySpanExt` offered, for paytrace's own span layer.
///
/// ```
/// use paytrace::SpanExt as _;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// tracing::subscriber::with_default(telemetry.subscriber(), || {
///     let span = tracing::info_span!("consume");
///     let _ = span.set_parent(opentelemetry::Context::new()); // e.g. extracted from a message
///     let cx = span.context(); // to inject into an outgoing call
///     # let _ = cx;
/// });
/// # Ok::<(), paytrace::Error>(())
/// ```
pub trait SpanExt {
    /// Make `cx`'s span (a remote parent extracted from a message or a request) this span's
    /// parent. Only before the span is first entered: the sampler decides when it starts.
    ///
    /// # Errors
    /// [`SpanError::AlreadyStarted`] once the span was entered, [`SpanError::NotRecorded`] when
    /// paytrace does not record it.
    fn set_parent(&self, cx: Context) -> Result<(), SpanError>;

    /// The span's OpenTelemetry context (the current context when paytrace does not record
    /// the span), for `inject_context` or OpenTelemetry-API children. Starts the span.
    fn context(&self) -> Context;

    /// Link this span to another span's context (a batch job to the requests it serves).
    fn add_link(&self, span_context: SpanContext);

    /// Set an attribute; it goes through the same redaction as every other attribute.
    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);

    /// Set the span's status (an `Error` makes tail keep keep the trace when the span is its
    /// root).
    fn set_status(&self, status: Status);
}

impl SpanExt for tracing::Span {
    fn set_parent(&self, cx: Context) -> Result<(), SpanError> {
        with_otel_span(self, |state| match state {
            State::Pending(pending) => {
                pending.parent = cx;
                Ok(())
            }
            State::Started(_) => Err(SpanError::AlreadyStarted),
        })
        .unwrap_or(Err(SpanError::NotRecorded))
    }

    fn context(&self) -> Context {
        self.with_subscriber(|(id, dispatch)| {
            if let Some(store) = dispatch.downcast_ref::<SpanStore>() {
                return store.context(id);
            }
            let layer = dispatch.downcast_ref::<SpanLayer>()?;
            let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
            layer.context(&span)
        })
        .flatten()
        .unwrap_or_else(Context::current)
    }

    fn add_link(&self, span_context: SpanContext) {
        if !span_context.is_valid() {
            return;
        }
        let _ = with_otel_span(self, |state| match state {
            State::Pending(pending) => pending.links.push(Link::with_context(span_context)),
            State::Started(cx) => cx.span().add_link(span_context, Vec::new()),
        });
    }

    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        let attribute = KeyValue::new(key, value);
        let _ = with_otel_span(self, |state| match state {
            State::Pending(pending) => pending.attributes.push(attribute),
            State::Started(cx) => cx.span().set_attribute(attribute),
        });
    }

    fn set_status(&self, status: Status) {
        let _ = with_otel_span(self, |state| match state {
            // As the SDK's span does: `Ok` is final, `Unset` changes nothing.
            State::Pending(pending) => {
                if status != Status::Unset && pending.status != Status::Ok {
                    pending.status = status;
                }
            }
            State::Started(cx) => cx.span().set_status(status),
        });
    }
}

/// Runs `f` on the span's OpenTelemetry side; `None` when paytrace does not record it.
fn with_otel_span<R>(span: &tracing::Span, f: impl FnOnce(State<'_>) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| with_state(dispatch, id, f))
        .flatten()
}

/// The span's state in paytrace's span store, or in the registry under paytrace's span layer.
fn with_state<R>(dispatch: &Dispatch, id: &Id, f: impl FnOnce(State<'_>) -> R) -> Option<R> {
    if let Some(store) = dispatch.downcast_ref::<SpanStore>() {
        return store.with_state(id, f);
    }
    dispatch.downcast_ref::<Registry>()?.span(id)?.with(f)
}
