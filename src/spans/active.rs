//! The OpenTelemetry context of each entered `tracing` span, attached on this thread while the
//! span is entered, so `Context::current()` and `tracing::Span::current()` agree.

use std::cell::RefCell;

use opentelemetry::{Context, ContextGuard};
use tracing::span::Id;

thread_local! {
    /// Entered spans on this thread, innermost last, each with the guard of its context.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// `id` was entered: its context is current until [`exit`].
pub(crate) fn enter(id: &Id, cx: Context) {
    let guard = cx.attach();
    ENTERED.with(|entered| {
        if let Ok(mut entered) = entered.try_borrow_mut() {
            entered.push((id.clone(), guard));
        }
    });
}

/// `id` was exited: the context attached when it was entered is detached (the innermost entry
/// of `id`: a span may be entered twice).
pub(crate) fn exit(id: &Id) {
    let guard = ENTERED.with(|entered| {
        let mut entered = entered.try_borrow_mut().ok()?;
        let at = entered.iter().rposition(|(entered, _)| entered == id)?;
        Some(entered.remove(at))
    });
    // Dropped outside the borrow: detaching runs no code of ours, but stays clear of it.
    drop(guard);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};
    use opentelemetry::trace::{SpanId, TraceId};

    fn cx(n: u64) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(u128::from(n)),
            SpanId::from(n),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        ))
    }

    fn current() -> u64 {
        Context::map_current(|cx| u64::from_be_bytes(cx.span().span_context().span_id().to_bytes()))
    }

    #[test]
    fn nested_spans_attach_and_detach_in_order() {
        enter(&Id::from_u64(1), cx(1));
        enter(&Id::from_u64(2), cx(2));
        assert_eq!(current(), 2);
        exit(&Id::from_u64(2));
        assert_eq!(current(), 1);
        exit(&Id::from_u64(1));
        assert_eq!(current(), 0);
    }

    #[test]
    fn an_exit_out_of_order_restores_the_right_context() {
        enter(&Id::from_u64(1), cx(1));
        enter(&Id::from_u64(2), cx(2));
        exit(&Id::from_u64(1));
        assert_eq!(current(), 2, "the inner span is still entered");
        exit(&Id::from_u64(2));
        assert_eq!(current(), 0);
    }

    #[test]
    fn an_unknown_exit_changes_nothing() {
        enter(&Id::from_u64(1), cx(1));
        exit(&Id::from_u64(9));
        assert_eq!(current(), 1);
        exit(&Id::from_u64(1));
        assert_eq!(current(), 0);
    }
}
