//! `traceparent`: extraction agrees with `valid_traceparent`, and a valid value injected back
//! carries the same trace id, span id and known flags (sampled, random).
#![no_main]
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use opentelemetry::trace::TraceContextExt as _;
use paytrace::propagation::{extract_context, inject_context, valid_traceparent};
use paytrace_fuzz::{headers, install};

fuzz_target!(|data: &[u8]| {
    install();
    let h = headers("traceparent", &[data]);
    let cx = extract_context(&h);
    let sc = cx.span().span_context().clone();
    let valid = h.contains_key("traceparent") && valid_traceparent(data);
    assert_eq!(sc.is_valid(), valid, "{:?}", String::from_utf8_lossy(data));
    if !valid {
        return;
    }
    let s = std::str::from_utf8(data).unwrap();
    assert_eq!(sc.trace_id().to_string(), s[3..35]);
    assert_eq!(sc.span_id().to_string(), s[36..52]);
    let flags = u8::from_str_radix(&s[53..55], 16).unwrap();
    assert_eq!(sc.is_sampled(), flags & 1 == 1);
    let mut out = HeaderMap::new();
    inject_context(&cx, &mut out);
    let sent = out["traceparent"].to_str().unwrap();
    assert!(valid_traceparent(sent.as_bytes()), "{sent}");
    assert_eq!(sent.len(), 55);
    assert_eq!(&sent[..53], format!("00-{}-", &s[3..52]), "{s} -> {sent}");
    assert_eq!(u8::from_str_radix(&sent[53..], 16).unwrap(), flags & 0x03, "{s} -> {sent}");
});
