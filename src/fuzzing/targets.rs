//! One body per fuzz target (`fuzz/fuzz_targets/NAME.rs` calls `targets::NAME`), each asserting
//! its parser's invariants. [`ALL`] names them for the corpus replay.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use http::HeaderMap;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt as _;

use super::checks::{check_redaction, headers, install, tracestate_key, tracestate_round_trip};
use crate::propagation::{
    extract_context, inject_context, valid_baggage, valid_traceparent, valid_tracestate,
    B3Propagator, JaegerPropagator, MAX_BAGGAGE_MEMBERS, MAX_TRACESTATE_BYTES,
    MAX_TRACESTATE_MEMBERS,
};
use crate::redact::Redactor;

/// A target's body: panics when an invariant breaks.
pub type Body = fn(&[u8]);

/// Every target by name: the name is its corpus folder under `fuzz/corpus/`.
pub const ALL: &[(&str, Body)] = &[
    ("traceparent", traceparent),
    ("tracestate", tracestate),
    ("baggage", baggage),
    ("b3_jaeger", b3_jaeger),
    #[cfg(feature = "grpc")]
    ("grpc_timeout", grpc_timeout),
    ("redact", redact),
    ("otlp_response", otlp_response),
    ("otel_env", otel_env),
    ("control_json", control_json),
];

/// `traceparent`: extracted when valid; injected back with the same ids and flags.
pub fn traceparent(data: &[u8]) {
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
    assert_eq!(
        u8::from_str_radix(&sent[53..], 16).unwrap(),
        flags & 0x03,
        "{s} -> {sent}"
    );
}

/// `tracestate` fields (split at `\n`): parsed within the W3C limits, sent within them.
pub fn tracestate(data: &[u8]) {
    let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let parsed = super::tracestate(&fields);
    assert_eq!(parsed.is_some(), valid_tracestate(&fields.join(&b',')));
    if let Some(members) = &parsed {
        assert!(members.len() <= MAX_TRACESTATE_MEMBERS);
        let len: usize = members.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        assert!(len.saturating_sub(1) <= MAX_TRACESTATE_BYTES);
        for (i, (k, v)) in members.iter().enumerate() {
            assert!(tracestate_key(k), "{k:?}");
            assert!(
                (1..=256).contains(&v.len()) && !v.contains([',', '=']),
                "{v:?}"
            );
            assert!(members[..i].iter().all(|(k2, _)| k2 != k), "duplicate {k}");
        }
    }
    tracestate_round_trip(&fields);
}

/// `baggage` fields (split at `\n`): at most 64 valid members, handed on and extracted.
pub fn baggage(data: &[u8]) {
    install();
    let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Some(list) = super::baggage(&fields) {
        let members: Vec<&str> = list.split(',').collect();
        assert!(
            members.len() <= MAX_BAGGAGE_MEMBERS,
            "{} members",
            members.len()
        );
        for m in members {
            assert!(valid_baggage(m.as_bytes()), "{m:?} in {list:?}");
        }
    }
    let cx = extract_context(&headers("baggage", &fields));
    assert!(cx.baggage().len() <= MAX_BAGGAGE_MEMBERS);
}

/// B3 single, B3 multiple or Jaeger (first byte) headers (lines): a valid context round-trips.
pub fn b3_jaeger(data: &[u8]) {
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
}

/// `grpc-timeout`: taken only as 1–8 digits and a unit, and then exactly.
#[cfg(feature = "grpc")]
pub fn grpc_timeout(data: &[u8]) {
    let Some(d) = super::grpc_timeout(&headers("grpc-timeout", &[data])) else {
        return;
    };
    assert!((2..=9).contains(&data.len()), "{data:?}");
    let (digits, unit) = data.split_at(data.len() - 1);
    assert!(digits.iter().all(u8::is_ascii_digit));
    let n: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap();
    let want = match unit[0] {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        u => panic!("unit {u}"),
    };
    assert_eq!(d, want);
}

/// Free text through every redaction entry point: no card number of the input survives.
pub fn redact(data: &[u8]) {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    let r = R.get_or_init(Redactor::default);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let masked = r.mask_pan(text);
    let redacted = r.redact_text(text);
    check_redaction(text, &masked, &redacted);
    let _ = r.redact_query(text);
    let _ = r.redact_value("note", text);
}

/// An OTLP response: the same report plain, framed or gzipped, gunzip within its bound; and, the
/// input read as status, header values and body, what either transport makes of the response.
pub fn otlp_response(data: &[u8]) {
    response_body(data);
    response_status(data);
}

fn response_body(data: &[u8]) {
    let plain = super::partial_success(data);
    if let Some((rejected, message)) = &plain {
        assert!(*rejected > 0 || !message.is_empty());
    }
    let _ = super::partial_success_grpc(data);
    assert_eq!(super::partial_success_grpc(&frame(0, data)), plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(super::partial_success_grpc(&frame(1, &gz)), plain);
    if let Some(out) = super::gunzip(data) {
        assert!(out.len() <= super::MAX_RESPONSE);
    }
}

/// `data` as `STATUS\nVALUE\nVALUE\nBODY`: an HTTP status (two bytes) and gzip flag (a third),
/// `Retry-After` or `grpc-status`, `grpc-message`, the body.
fn response_status(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let head = parts.next().unwrap_or_default();
    let (first, second) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let body = parts.next().unwrap_or_default();
    let mut grpc = headers("grpc-status", &[first]);
    grpc.extend(headers("grpc-message", &[second]));
    if let Some(Err((code, message))) = super::grpc_status(&grpc) {
        assert_ne!(code, 0);
        assert!(
            message.len() <= super::MAX_MESSAGE,
            "{} bytes",
            message.len()
        );
    }
    #[cfg(feature = "otlp-http")]
    http_response(head, first, body);
    #[cfg(not(feature = "otlp-http"))]
    let _ = (head, body);
}

#[cfg(feature = "otlp-http")]
fn http_response(head: &[u8], retry_after: &[u8], body: &[u8]) {
    let code = u16::from_be_bytes([
        head.first().copied().unwrap_or(0),
        head.get(1).copied().unwrap_or(0),
    ]);
    let status = http::StatusCode::from_u16(100 + code % 500).expect("100..600");
    let mut h = headers("retry-after", &[retry_after]);
    let gzip = head.get(2).is_some_and(|f| f & 1 == 1);
    if gzip {
        h.insert("content-encoding", http::HeaderValue::from_static("gzip"));
    }
    match super::http_response(status, &h, body) {
        Ok(partial) => {
            assert!(status.is_success(), "{status} taken as a success");
            if !gzip {
                assert_eq!(partial, super::partial_success(body));
            }
        }
        Err((retry, message)) => {
            assert!(!status.is_success());
            let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            assert!(retry.is_none() || retryable, "{status} retried");
            assert!(
                retry.is_none_or(|d| d <= Duration::from_secs(300)),
                "{retry:?}"
            );
            assert!(message.len() <= 80 + 256, "{} bytes", message.len());
        }
    }
}

/// A gRPC message frame: compressed flag, length, message.
fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut f = vec![flag];
    f.extend_from_slice(&(message.len() as u32).to_be_bytes());
    f.extend_from_slice(message);
    f
}

/// Every `OTEL_*` value parser: an accepted ratio lies within [0, 1].
pub fn otel_env(data: &[u8]) {
    if let Ok(value) = std::str::from_utf8(data) {
        let results = super::otel_values(value);
        if let Some(r) = results[3]
            .strip_prefix("Ok(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let r: f64 = r.parse().unwrap();
            assert!((0.0..=1.0).contains(&r), "{value:?} -> {r}");
        }
    }
}

/// A runtime-control body: refused with a reason, or applied with a ratio within [0, 1].
pub fn control_json(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let (result, ratio, _filter) = super::control_apply(body);
    if let Err(reason) = result {
        assert!(!reason.is_empty());
    }
    if let Some(r) = ratio {
        assert!((0.0..=1.0).contains(&r), "{body:?} -> {r}");
    }
}
