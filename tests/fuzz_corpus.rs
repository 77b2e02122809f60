//! Replays the committed fuzz corpora (`fuzz/corpus/`) on stable through the public API the
//! layers use, with the invariants the fuzz targets check, so a regression fails `cargo test`.
//! (A short copy of `fuzz/src/lib.rs`: the fuzz crate is not a dependency of this one.)

use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TraceContextExt as _;
use paytrace::propagation::*;
use paytrace::redact::Redactor;

const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn install() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
    ]));
}

fn headers(name: &'static str, values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values
        .iter()
        .filter_map(|v| HeaderValue::from_bytes(v).ok())
    {
        h.append(HeaderName::from_static(name), v);
    }
    h
}

fn luhn(digits: &[u8]) -> bool {
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

fn card_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|r| (13..=19).contains(&r.len()) && luhn(r.as_bytes()))
        .collect()
}

#[test]
fn traceparent_corpus_round_trips() {
    install();
    for data in corpus("traceparent") {
        let h = headers("traceparent", &[&data]);
        let cx = extract_context(&h);
        let valid = h.contains_key("traceparent") && valid_traceparent(&data);
        assert_eq!(cx.span().span_context().is_valid(), valid, "{data:?}");
        if valid {
            let mut out = HeaderMap::new();
            inject_context(&cx, &mut out);
            let (sent, s) = (
                out["traceparent"].to_str().unwrap(),
                std::str::from_utf8(&data).unwrap(),
            );
            assert_eq!(sent[3..52], s[3..52]);
            let flags = |v: &str| u8::from_str_radix(&v[53..55], 16).unwrap();
            assert_eq!(flags(sent), flags(s) & 0x03, "{s} -> {sent}");
        }
    }
}

#[test]
fn tracestate_corpus_obeys_the_limits() {
    install();
    let key = |k: &str| {
        let b = k.as_bytes();
        (1..=256).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(c))
    };
    for data in corpus("tracestate") {
        let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let mut h = headers("tracestate", &fields);
        h.insert("traceparent", HeaderValue::from_static(GOOD));
        let mut out = HeaderMap::new();
        inject_context(&extract_context(&h), &mut out);
        let sent = out.get("tracestate").map_or("", |v| v.to_str().unwrap());
        assert!(sent.len() <= MAX_TRACESTATE_BYTES);
        let members: Vec<&str> = sent.split(',').filter(|m| !m.is_empty()).collect();
        assert!(members.len() <= MAX_TRACESTATE_MEMBERS);
        assert!(
            members
                .iter()
                .all(|m| m.split_once('=').is_some_and(|(k, _)| key(k))),
            "{sent}"
        );
    }
}

#[test]
fn baggage_corpus_obeys_the_limits() {
    install();
    for data in corpus("baggage") {
        let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let cx = extract_context(&headers("baggage", &fields));
        assert!(cx.baggage().len() <= MAX_BAGGAGE_MEMBERS);
    }
}

#[test]
fn redaction_corpus_keeps_no_card_number() {
    let r = Redactor::default();
    for data in corpus("redact") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let (masked, redacted) = (r.mask_pan(text), r.redact_text(text));
        for card in card_runs(text) {
            assert!(
                !card_runs(&masked).contains(&card),
                "{text:?} -> {masked:?}"
            );
            assert!(
                !card_runs(&redacted).contains(&card),
                "{text:?} -> {redacted:?}"
            );
        }
        let sentinels = text.bytes().filter(|b| matches!(b, b'%' | b';')).count();
        assert!(
            masked.len() <= text.len() + sentinels,
            "{text:?} -> {masked:?}"
        );
        let _ = r.redact_query(text);
    }
}
