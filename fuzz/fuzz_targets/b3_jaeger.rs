//! B3 (single and multiple headers) and Jaeger: a context extracted from fuzzed headers, injected
//! and extracted again, is the same context.
#![no_main]
use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt as _;
use paytrace::propagation::{B3Propagator, JaegerPropagator};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (p, names): (Box<dyn TextMapPropagator>, &[&str]) = match which % 3 {
        0 => (Box::new(B3Propagator::single()), &["b3"]),
        1 => (
            Box::new(B3Propagator::multiple()),
            &["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"],
        ),
        _ => (Box::new(JaegerPropagator::new()), &["uber-trace-id"]),
    };
    let carrier: HashMap<String, String> = names
        .iter()
        .zip(text.split('\n'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cx = p.extract(&carrier);
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return;
    }
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    let again = p.extract(&out);
    let span = again.span();
    let sc2 = span.span_context();
    assert_eq!(sc.trace_id(), sc2.trace_id(), "{carrier:?} -> {out:?}");
    assert_eq!(sc.span_id(), sc2.span_id(), "{carrier:?} -> {out:?}");
    assert_eq!(sc.is_sampled(), sc2.is_sampled(), "{carrier:?} -> {out:?}");
});
