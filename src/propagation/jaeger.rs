//! [`JaegerPropagator`]: Jaeger's `uber-trace-id`, written here because the official
//! `opentelemetry-jaeger-propagator` stopped at OpenTelemetry 0.32, whose traits are not this
//! crate's.

use std::sync::OnceLock;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::Context;

/// Jaeger's `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}` (hex; a 64-bit trace
/// id is padded to 128; flag 1 is sampled, 2 debug). Baggage (`uberctx-*`) is not carried.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator as _;
/// use opentelemetry::trace::TraceContextExt as _;
/// let mut carrier = std::collections::HashMap::new();
/// carrier.insert("uber-trace-id".to_owned(), "4bf92f3577b34da6:00f067aa0ba902b7:0:1".to_owned());
/// let cx = paytrace::propagation::JaegerPropagator::new().extract(&carrier);
/// let sc = cx.span().span_context().clone();
/// assert_eq!(sc.trace_id().to_string(), "00000000000000004bf92f3577b34da6");
/// assert!(sc.is_sampled() && sc.is_remote());
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct JaegerPropagator {
    _private: (),
}

const UBER_TRACE_ID: &str = "uber-trace-id";

impl JaegerPropagator {
    /// The propagator.
    pub fn new() -> Self {
        JaegerPropagator::default()
    }
}

/// The span context of an `uber-trace-id` value, when it is well formed.
fn parse_uber(value: &str) -> Option<SpanContext> {
    let decoded;
    let value = if value.contains('%') {
        decoded = value.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        value
    };
    let mut parts = value.split(':');
    let (trace, span, _parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || trace.len() > 32 || span.len() > 16 || flags.len() > 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace == TraceId::INVALID || span == SpanId::INVALID {
        return None;
    }
    let sampled = if flags & 0x03 != 0 {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Some(SpanContext::new(
        trace,
        span,
        sampled,
        true,
        TraceState::NONE,
    ))
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flag = if sc.is_sampled() { 1 } else { 0 };
            injector.set(
                UBER_TRACE_ID,
                format!("{}:{}:0:{flag}", sc.trace_id(), sc.span_id()),
            );
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get(UBER_TRACE_ID).and_then(parse_uber) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static NAMES: OnceLock<[String; 1]> = OnceLock::new();
        FieldIter::new(NAMES.get_or_init(|| [UBER_TRACE_ID.to_owned()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(value: &str) -> SpanContext {
        let mut carrier = HashMap::new();
        carrier.insert(UBER_TRACE_ID.to_owned(), value.to_owned());
        JaegerPropagator::new()
            .extract(&carrier)
            .span()
            .span_context()
            .clone()
    }

    #[test]
    fn jaeger_round_trip() {
        let sc = extract("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1");
        assert!(sc.is_valid() && sc.is_sampled() && sc.is_remote());
        let cx = Context::new().with_remote_span_context(sc);
        let mut out = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(
            out[UBER_TRACE_ID],
            "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"
        );
    }

    #[test]
    fn jaeger_variants_and_garbage() {
        assert!(extract("4bf92f3577b34da6%3A00f067aa0ba902b7%3A0%3A1").is_valid());
        assert!(!extract("4bf92f3577b34da6:00f067aa0ba902b7:0:0").is_sampled());
        assert!(extract("abc:def:0:3").is_sampled(), "debug implies sampled");
        for bad in [
            "",
            "x:y:0:1",
            "0:00f067aa0ba902b7:0:1",
            "4bf9:0:0:1",
            "4bf9:1:0",
            "4bf9:1:0:1:9",
            "4bf92f3577b34da6a3ce929d0e0e47361:1:0:1",
            "4bf9:1:0:100",
        ] {
            assert!(!extract(bad).is_valid(), "{bad}");
        }
    }
}
