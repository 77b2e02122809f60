//! tmp
//!
//! TEMPORARY SHIM (wt-http): the three functions the http module calls, with exactly the
//! signatures of the real `propagation` module (replaced at merge). Validation here is a
//! minimal strict check of `traceparent` plus size caps; the real module owns the rules.
#![allow(missing_docs)]

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::Context;

const MAX_TRACESTATE: usize = 512;
const MAX_BAGGAGE: usize = 8192;

struct Valid<'a>(&'a HeaderMap);

impl Extractor for Valid<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut values = self.0.get_all(key).iter();
        let value = values.next()?.to_str().ok()?;
        match key {
            // A repeated traceparent is invalid per W3C.
            "traceparent" if values.next().is_none() && valid_traceparent(value) => Some(value),
            "traceparent" => None,
            "tracestate" if value.len() <= MAX_TRACESTATE => Some(value),
            "baggage" if value.len() <= MAX_BAGGAGE => Some(value),
            "tracestate" | "baggage" => None,
            _ => Some(value),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

fn valid_traceparent(v: &str) -> bool {
    let b = v.as_bytes();
    let hex = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    b.len() == 55
        && b[2] == b'-'
        && b[35] == b'-'
        && b[52] == b'-'
        && &b[..2] == b"00"
        && hex(&b[3..35])
        && hex(&b[36..52])
        && hex(&b[53..55])
        && b[3..35].iter().any(|&c| c != b'0')
        && b[36..52].iter().any(|&c| c != b'0')
}

pub fn extract_context(headers: &HeaderMap) -> Context {
    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    if !headers.contains_key(TRACEPARENT) && !headers.contains_key(BAGGAGE) {
        return Context::new();
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&Valid(headers)))
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, &mut Inject(headers)));
}

pub fn valid_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value.iter().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        })
}
