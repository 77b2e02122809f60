//! The invariants the fuzz targets check, beyond "no panic".

use crate::propagation::{
    extract_context, inject_context, TraceContextPropagator, MAX_TRACESTATE_BYTES,
    MAX_TRACESTATE_MEMBERS,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TraceContextExt as _;

/// A valid `traceparent` to put beside fuzzed `tracestate` values.
pub(super) const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The propagators a service gets by default: W3C Trace Context and Baggage.
pub(super) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
        ]));
    });
}

/// `name: value` for every value that is a valid header value.
pub(super) fn headers(name: &'static str, values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.append(HeaderName::from_static(name), v);
        }
    }
    h
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )` (W3C Trace Context Level 2).
pub(super) fn tracestate_key(k: &str) -> bool {
    let b = k.as_bytes();
    (1..=256).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(c))
}

/// A `tracestate` header paytrace sends: within the W3C limits, every key in the grammar.
pub(super) fn check_tracestate_header(out: &str) {
    assert!(out.len() <= MAX_TRACESTATE_BYTES, "{} bytes", out.len());
    if out.is_empty() {
        return;
    }
    let members: Vec<&str> = out.split(',').collect();
    assert!(
        members.len() <= MAX_TRACESTATE_MEMBERS,
        "{} members",
        members.len()
    );
    for m in members {
        let (k, v) = m.split_once('=').expect("member without =");
        assert!(tracestate_key(k), "bad key {k:?}");
        assert!(
            (1..=256).contains(&v.len()) && !v.contains('='),
            "bad value {v:?}"
        );
    }
}

/// Extract `tracestate` fields beside a valid `traceparent`, inject, check what goes out.
pub(super) fn tracestate_round_trip(fields: &[&[u8]]) {
    install();
    let mut h = headers("tracestate", fields);
    h.insert("traceparent", HeaderValue::from_static(GOOD));
    let cx = extract_context(&h);
    assert!(cx.span().span_context().is_valid());
    let mut out = HeaderMap::new();
    inject_context(&cx, &mut out);
    if let Some(v) = out.get("tracestate") {
        check_tracestate_header(v.to_str().expect("ASCII"));
    }
}

/// Luhn check of ASCII digits, written apart from `redact`'s so the oracle is not the code it checks.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
            if d > 9 {
                d - 9
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The maximal runs of ASCII digits in `text` that are 13–19 long and pass Luhn.
pub(super) fn card_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|r| (13..=19).contains(&r.len()) && luhn(r.as_bytes()))
        .collect()
}

/// Redaction kept no card number the input's text had, and masking lengthened the text by at
/// most one byte per track sentinel (`[REDACTED-TRACK]` is 16 bytes, the shortest track 15).
pub(super) fn check_redaction(input: &str, masked: &str, redacted: &str) {
    let kept = card_runs(masked);
    for card in card_runs(input) {
        assert!(
            !kept.contains(&card),
            "mask_pan kept {card} of {input:?}: {masked:?}"
        );
        assert!(
            !card_runs(redacted).contains(&card),
            "redact_text kept {card} of {input:?}: {redacted:?}"
        );
    }
    let sentinels = input.bytes().filter(|b| matches!(b, b'%' | b';')).count();
    assert!(
        masked.len() <= input.len() + sentinels,
        "mask_pan lengthened {input:?} to {masked:?}"
    );
}
