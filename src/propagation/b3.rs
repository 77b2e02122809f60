//! [`B3Propagator`]: Zipkin's B3, single header (`b3`) or multiple (`x-b3-*`), written here
//! because the official `opentelemetry-zipkin` crate, propagator included, is deprecated.

use std::sync::OnceLock;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::Context;

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Zipkin B3 propagation. Extraction reads the single `b3` header first, then the multiple
/// `x-b3-*` headers, whatever the encoding; injection writes the encoding it was built with.
/// A debug flag (`d`, `x-b3-flags: 1`) reads as sampled; a sampling-only `b3: 0` carries no
/// ids and starts a new trace.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator as _;
/// use opentelemetry::trace::TraceContextExt as _;
/// let mut carrier = std::collections::HashMap::new();
/// carrier.insert("b3".to_owned(), "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1".to_owned());
/// let cx = paytrace::propagation::B3Propagator::single().extract(&carrier);
/// assert!(cx.span().span_context().is_sampled());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct B3Propagator {
    multiple: bool,
}

impl B3Propagator {
    /// Injects the single `b3` header (`OTEL_PROPAGATORS=b3`).
    pub fn single() -> Self {
        B3Propagator { multiple: false }
    }

    /// Injects `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled` (`OTEL_PROPAGATORS=b3multi`).
    pub fn multiple() -> Self {
        B3Propagator { multiple: true }
    }
}

/// A trace id of 16 or 32 hex digits (a 64-bit id is padded to 128).
fn trace_id(s: &str) -> Option<TraceId> {
    if !(s.len() == 16 || s.len() == 32) {
        return None;
    }
    TraceId::from_hex(s).ok().filter(|t| *t != TraceId::INVALID)
}

fn span_id(s: &str) -> Option<SpanId> {
    if s.len() != 16 {
        return None;
    }
    SpanId::from_hex(s).ok().filter(|s| *s != SpanId::INVALID)
}

/// The remote parent a B3 header names.
fn remote(trace: TraceId, span: SpanId, sampled: bool) -> SpanContext {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace, span, flags, true, TraceState::NONE)
}

/// `{trace}-{span}[-{1|0|d}[-{parent}]]`.
fn parse_single(value: &str) -> Option<SpanContext> {
    let mut parts = value.split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => false,
        Some("1" | "d") => true,
        Some("0") => false,
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(remote(trace, span, sampled))
}

fn parse_multiple(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get(TRACE_ID)?)?;
    let span = span_id(extractor.get(SPAN_ID)?)?;
    let debug = extractor.get(FLAGS) == Some("1");
    let sampled = debug || matches!(extractor.get(SAMPLED), Some("1" | "true"));
    Some(remote(trace, span, sampled))
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        if self.multiple {
            injector.set(TRACE_ID, sc.trace_id().to_string());
            injector.set(SPAN_ID, sc.span_id().to_string());
            injector.set(SAMPLED, sampled.to_owned());
        } else {
            injector.set(B3, format!("{}-{}-{sampled}", sc.trace_id(), sc.span_id()));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get(B3) {
            Some(v) => parse_single(v),
            None => parse_multiple(extractor),
        };
        match found {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static SINGLE: OnceLock<[String; 1]> = OnceLock::new();
        static MULTIPLE: OnceLock<[String; 3]> = OnceLock::new();
        if self.multiple {
            FieldIter::new(
                MULTIPLE.get_or_init(|| [TRACE_ID.into(), SPAN_ID.into(), SAMPLED.into()]),
            )
        } else {
            FieldIter::new(SINGLE.get_or_init(|| [B3.into()]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(pairs: &[(&str, &str)]) -> SpanContext {
        let carrier: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        B3Propagator::single()
            .extract(&carrier)
            .span()
            .span_context()
            .clone()
    }

    const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const S: &str = "e457b5a2e4d86bd1";

    #[test]
    fn single_header_forms() {
        let sc = extract(&[("b3", &format!("{T}-{S}-1-05e3ac9a4f6e3b90"))]);
        assert!(sc.is_valid() && sc.is_sampled() && sc.is_remote());
        assert_eq!(sc.trace_id().to_string(), T);
        assert!(extract(&[("b3", &format!("{T}-{S}-d"))]).is_sampled());
        assert!(!extract(&[("b3", &format!("{T}-{S}-0"))]).is_sampled());
        assert!(extract(&[("b3", &format!("{T}-{S}"))]).is_valid());
        let short = extract(&[("b3", &format!("a3ce929d0e0e4736-{S}-1"))]);
        assert_eq!(
            short.trace_id().to_string(),
            "0000000000000000a3ce929d0e0e4736"
        );
        for bad in [
            "0",
            "1",
            "d",
            "",
            &format!("{T}-{S}-x"),
            &format!("{T}-abc-1"),
            &format!("{T}-{S}-1-{S}-9"),
        ] {
            assert!(!extract(&[("b3", bad)]).is_valid(), "{bad}");
        }
    }

    #[test]
    fn multiple_headers() {
        let sc = extract(&[(TRACE_ID, T), (SPAN_ID, S), (SAMPLED, "1")]);
        assert!(sc.is_valid() && sc.is_sampled());
        assert!(extract(&[(TRACE_ID, T), (SPAN_ID, S), (FLAGS, "1")]).is_sampled());
        assert!(!extract(&[(TRACE_ID, T), (SPAN_ID, S), (SAMPLED, "0")]).is_sampled());
        assert!(!extract(&[(TRACE_ID, T)]).is_valid());
    }

    #[test]
    fn inject_round_trips() {
        let sc = extract(&[("b3", &format!("{T}-{S}-1"))]);
        let cx = Context::new().with_remote_span_context(sc);
        let mut single = HashMap::new();
        B3Propagator::single().inject_context(&cx, &mut single);
        assert_eq!(single["b3"], format!("{T}-{S}-1"));
        let mut multi = HashMap::new();
        B3Propagator::multiple().inject_context(&cx, &mut multi);
        assert_eq!(multi[TRACE_ID], T);
        assert_eq!(multi[SPAN_ID], S);
        assert_eq!(multi[SAMPLED], "1");
        assert!(B3Propagator::multiple()
            .extract(&multi)
            .span()
            .span_context()
            .is_sampled());
    }
}
