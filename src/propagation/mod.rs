//! Context propagation that survives hostile input: W3C Trace Context and Baggage, and B3 and
//! Jaeger when `OTEL_PROPAGATORS` names them.
//!
//! The OpenTelemetry SDK's trace-context parser accepts ids shorter than 32/16 hex digits and
//! other non-conforming values. paytrace checks `traceparent`, `tracestate` and `baggage`
//! against the W3C rules (with size caps) before the global propagator sees them; an invalid
//! `traceparent` is ignored and the request starts a new trace, an invalid `tracestate` list
//! is dropped whole, an invalid `baggage` member alone. Several `tracestate` or `baggage`
//! fields are read as one list. paytrace's own [`TraceContextPropagator`] (Trace Context
//! Level 2) replaces the SDK's. Nothing here can panic.
//!
//! Trust boundaries: [`Trust`] says whose incoming context a server layer continues (the others
//! start new traces, linked to what they sent), [`PropagateTo`] which hosts a client layer sends
//! the context to (the others get no context header at all).
//!
//! ```
//! let mut headers = http::HeaderMap::new();
//! headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
//! assert!(paytrace::propagation::valid_traceparent(headers["traceparent"].as_bytes()));
//! headers.insert("traceparent", "00-af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
//! assert!(!paytrace::propagation::valid_traceparent(headers["traceparent"].as_bytes()));
//! ```

mod b3;
mod baggage;
mod foreign;
mod jaeger;
mod networks;
mod propagate_to;
mod tracestate;
mod trust;
mod w3c;

pub use b3::B3Propagator;
pub(crate) use foreign::enable as enable_foreign;
pub use jaeger::JaegerPropagator;
pub use networks::Networks;
pub(crate) use propagate_to::strip_context_headers;
pub use propagate_to::{Hosts, PropagateTo, PropagateToFn};
pub(crate) use trust::upstream;
#[cfg(feature = "grpc")]
pub(crate) use trust::Upstream;
pub use trust::{Trust, TrustFn};
pub(crate) use w3c::flags as w3c_flags;
pub use w3c::TraceContextPropagator;

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::Context;

use crate::util::parse_hex;

/// Longest `tracestate` propagated (W3C: at least 512 bytes); a longer valid list loses whole
/// entries, those over 128 characters first, then from the end.
pub const MAX_TRACESTATE_BYTES: usize = 8192;
/// Most `tracestate` list members (W3C).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `baggage` accepted (W3C Baggage limit).
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// Most `baggage` list members (W3C Baggage limit).
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// Longest `x-request-id` honoured.
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
        // A future version may carry more fields after a dash: header text, printable ASCII
        // (what extraction reads; `HeaderValue::to_str` refuses other bytes).
        (_, _) => value[55] == b'-' && value[56..].iter().all(|c| (0x20..=0x7e).contains(c)),
    }
}

/// Whether a `tracestate` value follows W3C Trace Context Level 2: at most 32 `key=value`
/// members (empty ones allowed), keys `[a-z0-9][a-z0-9_\-*/@]{0,255}`, values 1 to 256
/// printable ASCII characters without `,` and `=`, not ending in a space.
///
/// ```
/// use paytrace::propagation::valid_tracestate;
/// assert!(valid_tracestate(b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,foo@@bar=1"));
/// assert!(!valid_tracestate(b"Rojo=1"));
/// ```
pub fn valid_tracestate(value: &[u8]) -> bool {
    tracestate::for_each([value], |_| {})
}

/// Whether a `baggage` value is a W3C Baggage list within its limits: at most
/// [`MAX_BAGGAGE_BYTES`] and [`MAX_BAGGAGE_MEMBERS`] members, each `key=value` (properties
/// after `;` allowed), keys tokens, values without spaces, `"`, `,`, `;` and `\`. Extraction
/// keeps the valid members of an invalid list.
///
/// ```
/// use paytrace::propagation::valid_baggage;
/// assert!(valid_baggage(b"tenant=acme,region=eu;prop=1"));
/// assert!(!valid_baggage(b"no-equals-sign"));
/// ```
pub fn valid_baggage(value: &[u8]) -> bool {
    let mut count = 0;
    value.len() <= MAX_BAGGAGE_BYTES
        && value
            .split(|&b| b == b',')
            .map(baggage::trim_ows)
            .filter(|m| !m.is_empty())
            .all(|m| {
                count += 1;
                count <= MAX_BAGGAGE_MEMBERS && baggage::valid_member(m)
            })
}

/// Whether an incoming `x-request-id` is honoured: 1 to 128 bytes of `[A-Za-z0-9._:-]`.
///
/// ```
/// assert!(paytrace::propagation::valid_request_id(b"req-42.a:b_c"));
/// assert!(!paytrace::propagation::valid_request_id(b"<script>"));
/// ```
pub fn valid_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&value.len())
        && value
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// Exposes only the validated propagation headers to the propagator; several `tracestate` or
/// `baggage` fields are one value here, borrowed when there is one field.
struct Validated<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<Cow<'a, str>>,
    baggage: Option<Cow<'a, str>>,
    /// B3 and Jaeger headers, read only when such a propagator is installed.
    foreign: Option<foreign::Foreign<'a>>,
}

impl Extractor for Validated<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate.as_deref(),
            "baggage" => self.baggage.as_deref(),
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

// `HeaderName` constants: a lookup by `&str` parses the name on every request.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// The one value of a header that must appear at most once; `None` if absent, repeated or not
/// ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The `tracestate` fields as one valid list: the field itself when there is one, joined with
/// commas when there are several; `None` when absent or invalid.
fn combined_tracestate(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let all = headers.get_all(&TRACESTATE);
    if !tracestate::for_each(all.iter().map(HeaderValue::as_bytes), |_| {}) {
        return None;
    }
    let mut fields = all.iter().filter_map(|v| v.to_str().ok());
    let first = fields.next()?;
    let Some(second) = fields.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut joined = [first, second].join(",");
    for field in fields {
        joined.push(',');
        joined.push_str(field);
    }
    Some(Cow::Owned(joined))
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
    let baggage = baggage::combine(|| headers.get_all(&BAGGAGE).iter().map(HeaderValue::as_bytes));
    let foreign = foreign::Foreign::read(headers);
    // A new trace, or one sent random, continues in the shared random-marked context.
    let sent_random = |tp: &str| {
        let flags = tp.get(53..55).and_then(|f| parse_hex(f.as_bytes()));
        flags.unwrap_or(0) & u128::from(w3c::RANDOM) != 0
    };
    let base = match traceparent {
        Some(tp) if !sent_random(tp) => Context::new(),
        _ => w3c::random_base(),
    };
    if traceparent.is_none() && baggage.is_none() && foreign.is_none() {
        return base;
    }
    let tracestate = traceparent.and_then(|_| combined_tracestate(headers));
    let view = Validated {
        traceparent,
        tracestate,
        baggage,
        foreign,
    };
    opentelemetry::global::get_text_map_propagator(|p| p.extract_with_context(&base, &view))
}

/// The span context of a request's `traceparent` (or B3/Jaeger headers when such a propagator
/// is installed), validated as [`extract_context`] does, without its `tracestate` and
/// `baggage`: what an untrusted request is linked to. `None` when it sent no valid one.
pub(crate) fn extract_span_context(headers: &HeaderMap) -> Option<SpanContext> {
    let traceparent = single(headers, &TRACEPARENT).filter(|v| valid_traceparent(v.as_bytes()));
    let foreign = foreign::Foreign::read(headers);
    if traceparent.is_none() && foreign.is_none() {
        return None;
    }
    let view = Validated {
        traceparent,
        tracestate: None,
        baggage: None,
        foreign,
    };
    let cx = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), &view)
    });
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.clone())
}

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_tracestate(fields: &[&[u8]]) -> Option<Vec<(String, String)>> {
    let members = tracestate::parse(fields.iter().copied())?;
    Some(
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_baggage(fields: &[&[u8]]) -> Option<String> {
    baggage::combine(|| fields.iter().copied()).map(Cow::into_owned)
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty value (a `tracestate` with no members) clears the header rather than send it
        // empty, which W3C asks senders to avoid.
        if value.is_empty() {
            if let Ok(name) = HeaderName::from_bytes(key.as_bytes()) {
                self.0.remove(name);
            }
            return;
        }
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

/// `cx`, holding the span just started under `parent`, marked when its trace id is random
/// but the span's flags cannot say so: a new root (the SDK's trace ids are random, its root
/// flags 0, and its tracer has no hook for them), or a span the sampler dropped under a random
/// parent (the SDK resets a dropped span's flags). Injection then sends the random flag.
pub(crate) fn mark_random(parent: &Context, cx: Context) -> Context {
    let random = |c: &Context| c.span().span_context().trace_flags().to_u8() & w3c::RANDOM != 0;
    let (parent_valid, sc_valid) = (
        parent.span().span_context().is_valid(),
        cx.span().span_context().is_valid(),
    );
    let unsaid = sc_valid && (!parent_valid || (random(parent) && !random(&cx)));
    // Requests start from a context marked already: the common case allocates nothing.
    if !unsaid || w3c::marked(&cx) {
        return cx;
    }
    cx.with_value(w3c::RandomTrace(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry_sdk::propagation::BaggagePropagator;
    use proptest::prelude::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    pub(super) fn install() {
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
        // Found by fuzzing (fuzz target `traceparent`): a future version's extra fields with
        // bytes that are not ASCII were called valid, but extraction ignored the value.
        let mut odd = format!("01{}-", &GOOD[2..]).into_bytes();
        odd.extend_from_slice(b"\xff\xfe-ever");
        assert!(!valid_traceparent(&odd));
        let cx = extract_context(&headers(&[("traceparent", &odd)]));
        assert!(!cx.span().span_context().is_valid());
    }

    #[test]
    fn random_marks_new_roots_and_dropped_children_only() {
        // The second context stands for the one holding the span just started.
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let remote = |flags: u8| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([1; 8]),
                TraceFlags::new(flags),
                true,
                TraceState::NONE,
            ))
        };
        let marked = w3c::marked;
        assert!(marked(&mark_random(&Context::new(), remote(1))));
        assert!(marked(&mark_random(&remote(3), remote(0))));
        assert!(!marked(&mark_random(&remote(3), remote(3))));
        assert!(!marked(&mark_random(&remote(1), remote(1))));
        assert!(!marked(&mark_random(&Context::new(), Context::new())));
    }

    #[test]
    fn requests_start_marked_when_their_trace_is_new_or_sent_random() {
        install();
        let tp =
            |flags: &str| format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        assert!(w3c::marked(&extract_context(&HeaderMap::new())));
        for (flags, random) in [("03", true), ("02", true), ("01", false), ("00", false)] {
            let cx = extract_context(&headers(&[("traceparent", tp(flags).as_bytes())]));
            assert_eq!(w3c::marked(&cx), random, "{flags}");
        }
        let baggage_only = extract_context(&headers(&[("baggage", b"a=1")]));
        assert!(w3c::marked(&baggage_only), "a new trace with baggage");
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
