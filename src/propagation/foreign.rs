//! The headers of the non-W3C formats ([`B3Propagator`](super::B3Propagator),
//! [`JaegerPropagator`](super::JaegerPropagator)): they reach a propagator only when one is
//! installed, and only after a shape check (bounded length, the format's characters), like the
//! W3C ones.

use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName};

/// The headers of the foreign formats, in the order [`Foreign`] keeps them.
pub(super) const NAMES: [HeaderName; 6] = [
    HeaderName::from_static("b3"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("uber-trace-id"),
];
const NAME_STRS: [&str; 6] = [
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
];
/// Longest value of any of them: a single `b3` header is at most 68 bytes, `uber-trace-id` 70
/// (more when percent-encoded).
const MAX_VALUE: usize = 128;

/// Whether a B3 or Jaeger propagator is installed: until one is, requests pay nothing for them.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The foreign headers of a request that have a plausible shape.
#[derive(Default)]
pub(super) struct Foreign<'a>(pub(super) [Option<&'a str>; 6]);

impl<'a> Foreign<'a> {
    pub(super) fn read(headers: &'a HeaderMap) -> Option<Foreign<'a>> {
        if !ENABLED.load(Ordering::Relaxed) {
            return None;
        }
        let mut out = Foreign::default();
        let mut any = false;
        for (slot, name) in out.0.iter_mut().zip(NAMES.iter()) {
            *slot = super::single(headers, name).filter(|v| plausible(v.as_bytes()));
            any |= slot.is_some();
        }
        any.then_some(out)
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        let i = NAME_STRS.iter().position(|n| n.eq_ignore_ascii_case(key))?;
        self.0[i]
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        NAME_STRS
            .iter()
            .zip(self.0.iter())
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
    }
}

/// Hex digits, `-` (B3), `:` and `%` (Jaeger, possibly percent-encoded), bounded.
fn plausible(v: &[u8]) -> bool {
    (1..=MAX_VALUE).contains(&v.len())
        && v.iter()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, b'-' | b':' | b'%'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(plausible(
            b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
        ));
        assert!(!plausible(b"abc def"));
        assert!(!plausible(&[b'a'; 200]));
    }
}
