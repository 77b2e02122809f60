//! Ids paytrace writes itself, which redaction never reads as card numbers.

use std::borrow::Cow;

use super::Redactor;

impl Redactor {
    /// [`redact_text`](Self::redact_text), except that a value which is one of `ids` (the ids
    /// of the span or record it is written on, or the request id made from them) is kept
    /// whole: paytrace's own hex ids are not card numbers, even when a run of their digits
    /// passes the Luhn check.
    pub(crate) fn redact_text_sparing<'a>(
        &self,
        text: &'a str,
        ids: Option<&OwnIds>,
    ) -> Cow<'a, str> {
        match self.redact_text(text) {
            // Checked only when redaction changed the value: the common path costs nothing.
            Cow::Owned(_) if ids.is_some_and(|ids| ids.holds(text)) => Cow::Borrowed(text),
            redacted => redacted,
        }
    }
}

/// The trace and span id of the span or log record a value is written on. A value equal to one
/// of them, or to a request id `{trace_id}-{span_id}` of the same trace, adds nothing the
/// record does not already carry in its id fields, so it is never masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnIds {
    trace: [u8; 16],
    span: [u8; 8],
}

impl OwnIds {
    pub(crate) fn new(trace: [u8; 16], span: [u8; 8]) -> Self {
        OwnIds { trace, span }
    }

    /// `value` is the lower-hex trace id, span id, or `{trace_id}-{16 lower-hex digits}`.
    fn holds(&self, value: &str) -> bool {
        let mut trace = [0u8; 32];
        let mut span = [0u8; 16];
        crate::util::hex_into(&self.trace, &mut trace);
        crate::util::hex_into(&self.span, &mut span);
        let v = value.as_bytes();
        let lower_hex = |b: &[u8]| b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        v == trace
            || v == span
            || (v.len() == 49 && v[..32] == trace && v[32] == b'-' && lower_hex(&v[33..]))
    }
}
