//! Context propagation that survives hostile input: W3C Trace Context and Baggage, and B3 and
//! Jaeger when `OTEL_PROPAGATORS` names them.
//!
//! The OpenTelemetry SDK's trace-context parser accepts ids shorter than 32/16 hex digits and
//! other non-conforming values. paytrace checks `traceparent`, `tracestate` and `baggage`
//! against the W3C rules (with size caps) before the global propagator sees them; anything
//! invalid is ignored and the request starts a new trace. Nothing here can panic.
//!
//! ```
//! let mut headers = http::HeaderMap::new();
//! headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
//! assert!(paytrace::propagation::valid_traceparent(headers["traceparent"].as_bytes()));
//! headers.insert("traceparent", "00-af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
//! assert!(!paytrace::propagation::valid_traceparent(headers["traceparent"].as_bytes()));
//! ```

mod b3;
mod foreign;
mod jaeger;

pub use b3::B3Propagator;
pub(crate) use foreign::enable as enable_foreign;
pub use jaeger::JaegerPropagator;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::Context;

/// Longest `tracestate` accepted (W3C: propagate at least 512 bytes; larger ones are dropped).
#[doc(hidden)]
pub const MAX_TRACESTATE_BYTES: usize = 8192;
/// Most `tracestate` list members (W3C).
#[doc(hidden)]
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `baggage` accepted (W3C Baggage limit).
#[doc(hidden)]
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// Most `baggage` list members (W3C Baggage limit).
#[doc(hidden)]
pub const MAX_BAGGAGE_MEMBERS: usize = 180;
/// Longest `x-request-id` honoured.
#[doc(hidden)]
pub const MAX_REQUEST_ID_BYTES: usize = 128;

fn lower_hex(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Whether a `traceparent` value follows W3C Trace Context: `vv-<32 hex>-<16 hex>-<2 hex>`,
/// lowercase hex, version not `ff`, ids not all zero; version `00` is exactly 55 bytes, a later
/// version may append `-…` after those 55 bytes.
///
/// ```
/// use paytrace::propagation::valid_traceparent;
/// assert!(valid_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// assert!(!valid_traceparent(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
/// assert!(!valid_traceparent(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
/// ```
#[doc(hidden)]
pub fn valid_traceparent(value: &[u8]) -> bool {
    if value.len() < 55 || value.len() > 512 {
        return false;
    }
    let v = &value[..2];
    if !lower_hex(v) || v == b"ff" {
        return false;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return false;
    }
    let (trace_id, span_id, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !lower_hex(trace_id) || !lower_hex(span_id) || !lower_hex(flags) {
        return false;
    }
    if trace_id.iter().all(|&c| c == b'0') || span_id.iter().all(|&c| c == b'0') {
        return false;
    }
    match (v, value.len()) {
        (b"00", 55) => true,
        (b"00", _) => false,
        (_, 55) => true,
        // A future version may carry more fields after a dash.
        (_, _) => value[55] == b'-',
    }
}

/// Whether a `tracestate` value follows W3C Trace Context: at most 32 `key=value` members,
/// keys `[a-z0-9_\-*/]` (optionally `tenant@system`), values printable ASCII without `,` and
/// `=`, no trailing space; at most [`MAX_TRACESTATE_BYTES`].
///
/// ```
/// use paytrace::propagation::valid_tracestate;
/// assert!(valid_tracestate(b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
/// assert!(!valid_tracestate(b"Rojo=1"));
/// ```
#[doc(hidden)]
pub fn valid_tracestate(value: &[u8]) -> bool {
    if value.len() > MAX_TRACESTATE_BYTES {
        return false;
    }
    let mut members = 0;
    for member in value.split(|&b| b == b',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue; // empty list members are allowed
        }
        members += 1;
        if members > MAX_TRACESTATE_MEMBERS {
            return false;
        }
        let Some(eq) = member.iter().position(|&b| b == b'=') else {
            return false;
        };
        let (key, val) = (&member[..eq], &member[eq + 1..]);
        if !valid_tracestate_key(key) || !valid_tracestate_value(val) {
            return false;
        }
    }
    true
}

fn valid_tracestate_key(key: &[u8]) -> bool {
    let ok = |c: &u8| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
    };
    let starts_well = |k: &[u8]| {
        k.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match key.iter().position(|&b| b == b'@') {
        None => key.len() <= 256 && starts_well(key) && key.iter().all(ok),
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            tenant.len() <= 241
                && system.len() <= 14
                && starts_well(tenant)
                && system.first().is_some_and(u8::is_ascii_lowercase)
                && tenant.iter().all(ok)
                && system.iter().all(ok)
        }
    }
}

fn valid_tracestate_value(v: &[u8]) -> bool {
    (1..=256).contains(&v.len())
        && v.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && v.last() != Some(&b' ')
}

/// Whether a `baggage` value respects the W3C Baggage limits: at most [`MAX_BAGGAGE_BYTES`] and
/// [`MAX_BAGGAGE_MEMBERS`] members, each `key=value` (properties after `;` allowed), keys
/// tokens, no control characters. An invalid header is dropped whole.
///
/// ```
/// use paytrace::propagation::valid_baggage;
/// assert!(valid_baggage(b"tenant=acme,region=eu;prop=1"));
/// assert!(!valid_baggage(b"no-equals-sign"));
/// ```
#[doc(hidden)]
pub fn valid_baggage(value: &[u8]) -> bool {
    if value.len() > MAX_BAGGAGE_BYTES || value.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return false;
    }
    let mut members = 0;
    for member in value.split(|&b| b == b',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        members += 1;
        if members > MAX_BAGGAGE_MEMBERS {
            return false;
        }
        let pair = member.split(|&b| b == b';').next().unwrap_or_default();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return false;
        };
        let key = trim_ows(&pair[..eq]);
        if key.is_empty() || !key.iter().all(is_token_char) {
            return false;
        }
    }
    true
}

fn is_token_char(c: &u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether an incoming `x-request-id` is honoured: 1 to 128 bytes of `[A-Za-z0-9._:-]`.
///
/// ```
/// assert!(paytrace::propagation::valid_request_id(b"req-42.a:b_c"));
/// assert!(!paytrace::propagation::valid_request_id(b"<script>"));
/// ```
#[doc(hidden)]
pub fn valid_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&value.len())
        && value
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// Exposes only the validated propagation headers to the propagator.
struct Validated<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
    baggage: Option<&'a str>,
    /// B3 and Jaeger headers, read only when such a propagator is installed.
    foreign: Option<foreign::Foreign<'a>>,
}

impl Extractor for Validated<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            "baggage" => self.baggage,
            _ => self.foreign.as_ref().and_then(|f| f.get(key)),
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::with_capacity(3);
        if self.traceparent.is_some() {
            keys.push("traceparent");
        }
        if self.tracestate.is_some() {
            keys.push("tracestate");
        }
        if self.baggage.is_some() {
            keys.push("baggage");
        }
        if let Some(f) = &self.foreign {
            keys.extend(f.keys());
        }
        keys
    }
}

/// The one value of a header that must appear at most once; `None` if absent, repeated or not
/// ASCII.
// `HeaderName` constants: a lookup by `&str` parses the name on every request.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The upstream context of a request: `traceparent`, `tracestate` and `baggage`, validated
/// (see the module docs), then read by the global propagator. Invalid or absent values yield a
/// root context, never the caller's current one. When `traceparent` is invalid, `tracestate` is
/// ignored too (W3C).
///
/// ```
/// use opentelemetry::trace::TraceContextExt as _;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-abc-def-01".parse().unwrap());
/// let cx = paytrace::propagation::extract_context(&headers);
/// assert!(!cx.span().span_context().is_valid());
/// ```
pub fn extract_context(headers: &HeaderMap) -> Context {
    let traceparent = single(headers, &TRACEPARENT).filter(|v| valid_traceparent(v.as_bytes()));
    let baggage = {
        let mut all = headers.get_all(&BAGGAGE).iter();
        match (all.next(), all.next()) {
            // Several baggage headers are legal but rare; keep it simple and safe: use the first.
            (Some(v), _) => v.to_str().ok().filter(|v| valid_baggage(v.as_bytes())),
            _ => None,
        }
    };
    let foreign = foreign::Foreign::read(headers);
    if traceparent.is_none() && baggage.is_none() && foreign.is_none() {
        return Context::new();
    }
    let tracestate = traceparent
        .and(single(headers, &TRACESTATE))
        .filter(|v| valid_tracestate(v.as_bytes()));
    let view = Validated {
        traceparent,
        tracestate,
        baggage,
        foreign,
    };
    opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), &view)
    })
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Write `cx` into outgoing headers with the global propagator (`traceparent`, `tracestate`,
/// `baggage` by default). Values that are not valid header values are skipped.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// paytrace::propagation::inject_context(&opentelemetry::Context::new(), &mut headers);
/// ```
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut HeaderInjector(headers))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
    use proptest::prelude::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn install() {
        // Every test installs the same value, so parallel tests do not disturb each other.
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v);
            }
        }
        h
    }

    #[test]
    fn hostile_traceparents_are_not_trusted() {
        install();
        let long = format!("{GOOD}-{}", "a".repeat(64 * 1024));
        let bad: Vec<Vec<u8>> = vec![
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01".to_vec(), // short trace id
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01".to_vec(), // short span id
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_vec(), // uppercase
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_vec(),
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".to_vec(),
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
            format!("{GOOD}-extra").into_bytes(), // version 00 must be exactly 55 bytes
            long.into_bytes(),
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g".to_vec(),
            b"\xff\xfe".to_vec(),
            b"".to_vec(),
            b"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01".to_vec(),
        ];
        for value in bad {
            let cx = extract_context(&headers(&[("traceparent", &value), ("tracestate", b"a=b")]));
            assert!(
                !cx.span().span_context().is_valid(),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
        // Two traceparent headers: ambiguous, ignored.
        let cx = extract_context(&headers(&[
            ("traceparent", GOOD.as_bytes()),
            ("traceparent", GOOD.as_bytes()),
        ]));
        assert!(!cx.span().span_context().is_valid());
        // A future version with extra fields is accepted.
        assert!(valid_traceparent(
            format!("01{}-what-ever", &GOOD[2..]).as_bytes()
        ));
    }

    #[test]
    fn valid_context_round_trips_with_baggage() {
        install();
        let cx = extract_context(&headers(&[
            ("traceparent", GOOD.as_bytes()),
            ("tracestate", b"rojo=00f067aa0ba902b7"),
            ("baggage", b"tenant=acme"),
        ]));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(
            cx.baggage().get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );

        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], GOOD);
        assert!(out["baggage"].to_str().unwrap().contains("tenant=acme"));
    }

    #[test]
    fn bad_tracestate_and_baggage_are_dropped_alone() {
        install();
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        for state in [
            members.join(",").into_bytes(),
            b"UPPER=1".to_vec(),
            b"k=v=w".to_vec(),
            vec![b'a'; 9000],
        ] {
            let cx = extract_context(&headers(&[
                ("traceparent", GOOD.as_bytes()),
                ("tracestate", &state),
            ]));
            assert!(cx.span().span_context().is_valid());
            assert_eq!(cx.span().span_context().trace_state().header(), "");
        }
        let big = format!("k={}", "v".repeat(MAX_BAGGAGE_BYTES));
        for baggage in [big.as_bytes(), b"novalue", b"=v"] {
            let cx = extract_context(&headers(&[("baggage", baggage)]));
            assert_eq!(cx.baggage().len(), 0);
        }
        assert!(valid_tracestate(b"tenant@sys=1,a-b_c*/d=x y"));
        assert!(!valid_tracestate(b"a=x\x7f"));
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id(b"0af7651916cd43dd"));
        for bad in [&b""[..], b"a b", b"a\r\nb", &[b'a'; 129], b"\xff"] {
            assert!(!valid_request_id(bad));
        }
    }

    /// A direct restatement of the version-00 rule, to check the validator against.
    fn reference(v: &[u8]) -> bool {
        let Ok(s) = std::str::from_utf8(v) else {
            return false;
        };
        let parts: Vec<&str> = s.split('-').collect();
        parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3].len() == 2
            && parts[1..].iter().all(|p| {
                p.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            })
            && parts[1] != "0".repeat(32)
            && parts[2] != "0".repeat(16)
    }

    proptest! {
        #[test]
        fn validators_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = valid_traceparent(&bytes);
            let _ = valid_tracestate(&bytes);
            let _ = valid_baggage(&bytes);
            let _ = valid_request_id(&bytes);
        }

        #[test]
        fn traceparent_agrees_with_reference(
            trace in "[0-9a-fA-F]{30,33}", span in "[0-9a-f]{15,17}", flags in "[0-9a-f]{2}",
        ) {
            let v = format!("00-{trace}-{span}-{flags}");
            prop_assert_eq!(valid_traceparent(v.as_bytes()), reference(v.as_bytes()), "{}", v);
        }

        #[test]
        fn extraction_never_panics(tp in proptest::collection::vec(any::<u8>(), 0..200),
                                   ts in proptest::collection::vec(any::<u8>(), 0..200),
                                   bg in proptest::collection::vec(any::<u8>(), 0..200)) {
            install();
            let _ = extract_context(&headers(&[("traceparent", &tp), ("tracestate", &ts), ("baggage", &bg)]));
        }
    }
}
