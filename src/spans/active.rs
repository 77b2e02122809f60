//! The OpenTelemetry context of each entered `tracing` span, attached on this thread while the
//! span is entered, so `Context::current()` and `tracing::Span::current()` agree.

use std::cell::RefCell;

use opentelemetry::{Context, ContextGuard};
use tracing::span::Id;
use tracing::Metadata;

/// Whose span an entry is: the registry's layer, or one of paytrace's span stores (each keeps
/// its own current span, so two subscribers used on one thread never see each other's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner(pub(crate) usize);

impl Owner {
    /// The span layer over `tracing_subscriber`'s registry, which tracks the current span itself.
    pub(crate) const LAYER: Owner = Owner(0);
}

/// One entered span.
struct Entered {
    owner: Owner,
    id: Id,
    /// For `tracing::Span::current()`: the store answers it from here.
    meta: Option<&'static Metadata<'static>>,
    /// Detaches the span's context when dropped; `None` for a span paytrace does not record.
    _guard: Option<ContextGuard>,
}

/// Entered spans on one thread, innermost last.
struct Stack(Vec<Entered>);

impl Drop for Stack {
    /// A thread may end with spans still entered (a leaked guard). Their contexts are not
    /// detached: OpenTelemetry's own thread-local may be gone already, and touching it then
    /// would abort the process.
    fn drop(&mut self) {
        for entered in self.0.drain(..) {
            std::mem::forget(entered._guard);
        }
    }
}

thread_local! {
    static ENTERED: RefCell<Stack> = const { RefCell::new(Stack(Vec::new())) };
}

/// `id` was entered: its context is current until [`exit`].
pub(crate) fn enter(id: &Id, cx: Context) {
    push(Owner::LAYER, id, None, Some(cx));
}

/// `id` of `owner` was entered: `cx`, when there is one, is current until [`pop`].
pub(crate) fn push(
    owner: Owner,
    id: &Id,
    meta: Option<&'static Metadata<'static>>,
    cx: Option<Context>,
) {
    let entered = Entered {
        owner,
        id: id.clone(),
        meta,
        _guard: cx.map(Context::attach),
    };
    ENTERED.with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            stack.0.push(entered);
        }
    });
}

/// `id` was exited: the context attached when it was entered is detached (the innermost entry
/// of `id`: a span may be entered twice).
pub(crate) fn exit(id: &Id) {
    pop(Owner::LAYER, id);
}

/// `id` of `owner` was exited (its innermost entry).
pub(crate) fn pop(owner: Owner, id: &Id) {
    let entered = ENTERED.with(|stack| {
        let mut stack = stack.try_borrow_mut().ok()?;
        let stack = &mut stack.0;
        let is_it = |entered: &Entered| entered.owner == owner && entered.id == *id;
        // Spans are almost always exited innermost first.
        if stack.last().is_some_and(is_it) {
            return stack.pop();
        }
        let at = stack.iter().rposition(is_it)?;
        Some(stack.remove(at))
    });
    // Dropped outside the borrow: detaching runs no code of ours, but stays clear of it.
    drop(entered);
}

/// The innermost span of `owner` entered on this thread.
pub(crate) fn current(owner: Owner) -> Option<(Id, &'static Metadata<'static>)> {
    ENTERED.with(|stack| {
        let stack = stack.try_borrow().ok()?;
        let entered = stack
            .0
            .iter()
            .rev()
            .find(|entered| entered.owner == owner)?;
        Some((entered.id.clone(), entered.meta?))
    })
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

    #[test]
    fn a_thread_may_end_with_spans_entered() {
        let ended = std::thread::spawn(|| {
            // This thread's stack first, OpenTelemetry's after: destroyed in the other order.
            exit(&Id::from_u64(9));
            enter(&Id::from_u64(1), cx(1));
            enter(&Id::from_u64(2), cx(2));
            // A leaked guard: the thread ends with both entered.
        })
        .join();
        assert!(ended.is_ok());
    }
}
