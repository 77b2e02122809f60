//! [`TraceContextPropagator`]: W3C Trace Context Level 2, in place of the SDK's propagator,
//! which zeroes the random flag both ways, reads one `tracestate` field only and applies an
//! older key grammar.

use std::sync::OnceLock;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::Context;

use super::tracestate::{self, Received};
use super::valid_traceparent;
use crate::util::parse_hex;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// The `random-trace-id` flag of Trace Context Level 2.
pub(crate) const RANDOM: u8 = 0x02;
/// The flags this version knows; the others are set to 0 on the way out (W3C).
const KNOWN: u8 = 0x01 | RANDOM;

/// Says whether the traces started or continued in a context have random ids although their
/// spans' flags may not say so: a root paytrace started (the SDK's ids are random but its root
/// flags are 0), or a span the sampler dropped under a random parent (the SDK resets a dropped
/// span's flags). A context extracted into a marked one without the flag is marked `false`.
#[derive(Debug)]
pub(crate) struct RandomTrace(pub(crate) bool);

/// An empty context marked random, shared: a request that starts a trace, or continues a
/// random one, takes it as its base instead of allocating a mark.
pub(crate) fn random_base() -> Context {
    static BASE: OnceLock<Context> = OnceLock::new();
    BASE.get_or_init(|| Context::new().with_value(RandomTrace(true)))
        .clone()
}

/// Whether `cx` is marked random.
pub(crate) fn marked(cx: &Context) -> bool {
    cx.get::<RandomTrace>().is_some_and(|r| r.0)
}

/// W3C Trace Context Level 2 (`traceparent`, `tracestate`): the random flag carried through
/// and set on the roots paytrace starts, several `tracestate` fields combined, the current
/// key grammar, invalid lists discarded, long ones truncated by whole entries.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator as _;
/// use opentelemetry::trace::TraceContextExt as _;
/// let mut carrier = std::collections::HashMap::new();
/// carrier.insert("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_owned());
/// let cx = paytrace::propagation::TraceContextPropagator::new().extract(&carrier);
/// assert_eq!(cx.span().span_context().trace_flags().to_u8(), 0x03);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextPropagator {
    _private: (),
}

impl TraceContextPropagator {
    /// The propagator.
    pub fn new() -> Self {
        TraceContextPropagator { _private: () }
    }
}

/// Trace id, parent id and known flags of a valid `traceparent`.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    if !valid_traceparent(value.as_bytes()) {
        return None;
    }
    let hex = |range: std::ops::Range<usize>| value.as_bytes().get(range).and_then(parse_hex);
    let trace_id = TraceId::from(hex(3..35)?);
    let span_id = SpanId::from(u64::try_from(hex(36..52)?).ok()?);
    let flags = u8::try_from(hex(53..55)?).ok()?;
    Some((trace_id, span_id, TraceFlags::new(flags & KNOWN)))
}

/// The span context of `extractor`'s headers, and the received `tracestate` when the SDK's
/// `TraceState` cannot hold all of it.
fn extract(extractor: &dyn Extractor) -> Option<(SpanContext, Option<Received>)> {
    let (trace_id, span_id, flags) = parse_traceparent(extractor.get(TRACEPARENT)?)?;
    let fields = extractor.get_all(TRACESTATE).unwrap_or_default();
    let members = tracestate::parse(fields.iter().map(|f| f.as_bytes())).unwrap_or_default();
    let (state, received) = if members.is_empty() {
        (TraceState::NONE, None)
    } else {
        tracestate::to_sdk(trace_id, &members)
    };
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    Some((sc, received))
}

/// The flags to send for `sc` in `cx`: sampled as the span says, random when its trace id is.
pub(crate) fn flags(cx: &Context, sc: &SpanContext) -> u8 {
    let own = sc.trace_flags().to_u8() & KNOWN;
    own | if marked(cx) { RANDOM } else { 0 }
}

/// `00-{trace id}-{span id}-{flags}`.
pub(crate) fn traceparent(sc: &SpanContext, flags: u8) -> String {
    format!("00-{}-{}-{flags:02x}", sc.trace_id(), sc.span_id())
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        injector.set(TRACEPARENT, traceparent(sc, flags(cx, sc)));
        injector.set(TRACESTATE, tracestate::header(sc, cx.get::<Received>()));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some((sc, received)) = extract(extractor) else {
            return cx.clone();
        };
        // A trace without the flag, extracted into a marked context, is not random.
        let unmarked = sc.trace_flags().to_u8() & RANDOM == 0 && marked(cx);
        let mut out = cx.with_remote_span_context(sc);
        if unmarked {
            out = out.with_value(RandomTrace(false));
        }
        match received {
            Some(received) => out.with_value(received),
            None => out,
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static FIELDS: OnceLock<[String; 2]> = OnceLock::new();
        FieldIter::new(FIELDS.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TRACE: &str = "12345678901234567890123456789012";

    fn carrier(flags: &str, state: Option<&str>) -> HashMap<String, String> {
        let mut c = HashMap::new();
        c.insert(
            TRACEPARENT.to_owned(),
            format!("00-{TRACE}-1234567890123456-{flags}"),
        );
        if let Some(s) = state {
            c.insert(TRACESTATE.to_owned(), s.to_owned());
        }
        c
    }

    fn round_trip(cx: &Context) -> HashMap<String, String> {
        let mut out = HashMap::new();
        TraceContextPropagator::new().inject_context(cx, &mut out);
        out
    }

    #[test]
    fn known_flags_pass_unknown_ones_are_zeroed() {
        let p = TraceContextPropagator::new();
        for (sent, kept) in [
            ("00", 0),
            ("01", 1),
            ("02", 2),
            ("03", 3),
            ("ff", 3),
            ("08", 0),
        ] {
            let cx = p.extract(&carrier(sent, None));
            assert_eq!(
                cx.span().span_context().trace_flags().to_u8(),
                kept,
                "{sent}"
            );
            let out = round_trip(&cx);
            assert!(
                out[TRACEPARENT].ends_with(&format!("-{kept:02x}")),
                "{sent}"
            );
        }
    }

    #[test]
    fn a_marked_trace_sends_the_random_flag() {
        let p = TraceContextPropagator::new();
        let cx = p.extract(&carrier("01", None));
        let marked = cx.with_value(RandomTrace(true));
        assert!(round_trip(&marked)[TRACEPARENT].ends_with("-03"));
        assert!(round_trip(&cx)[TRACEPARENT].ends_with("-01"));
        // A trace without the flag extracted into a marked context stays without it.
        let foreign = p.extract_with_context(&random_base(), &carrier("01", None));
        assert!(round_trip(&foreign)[TRACEPARENT].ends_with("-01"));
        let random = p.extract_with_context(&random_base(), &carrier("03", None));
        assert!(round_trip(&random)[TRACEPARENT].ends_with("-03"));
    }

    #[test]
    fn invalid_traceparents_extract_nothing() {
        let p = TraceContextPropagator::new();
        for tp in [
            "00-00000000000000000000000000000000-1234567890123456-01",
            "00-12345678901234567890123456789012-1234567890123456-01-",
            "00-12345678901234567890123456789012-123456789012345-01",
            "xx",
        ] {
            let mut c = HashMap::new();
            c.insert(TRACEPARENT.to_owned(), tp.to_owned());
            c.insert(TRACESTATE.to_owned(), "a=b".to_owned());
            assert!(!p.extract(&c).has_active_span(), "{tp}");
        }
        // A later version's extra fields are accepted and sent as version 00.
        let mut c = carrier("01", None);
        c.insert(
            TRACEPARENT.to_owned(),
            format!("cc-{TRACE}-1234567890123456-01-what-ever"),
        );
        let out = round_trip(&p.extract(&c));
        assert!(out[TRACEPARENT].starts_with(&format!("00-{TRACE}-")));
    }

    #[test]
    fn tracestate_passes_whole_even_keys_the_sdk_refuses() {
        let p = TraceContextPropagator::new();
        let state = "foo@@bar=1,t@vvvvvvvvvvvvvvvv=2,bar=3";
        let out = round_trip(&p.extract(&carrier("00", Some(state))));
        assert_eq!(out[TRACESTATE], state);
        let out = round_trip(&p.extract(&carrier("00", Some("@foo=1,bar=2"))));
        assert_eq!(out[TRACESTATE], "");
        let out = round_trip(&p.extract(&carrier("00", Some("foo=1,foo=2"))));
        assert_eq!(out[TRACESTATE], "foo=1");
    }
}
