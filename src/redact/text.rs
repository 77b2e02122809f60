//! Free text: the value after a sensitive name written `name=value`, `name: value` or
//! `"name":"value"` (and after an auth scheme), and the splice that rewrites ranges of a text.

use std::borrow::Cow;

use super::decode::{each_reading, Decoded, Splice};
use super::{Redactor, REDACTED};

impl Redactor {
    /// The `name=value` / `name: value` part of [`redact_text`](Self::redact_text), read on the
    /// decoded text so that `%22password%22%3A%22…` is seen as `"password":"…"`.
    pub(super) fn redact_pairs<'a>(&self, text: &'a str) -> Cow<'a, str> {
        each_reading(text, |text, decoded| self.redact_pairs_in(text, decoded))
    }

    /// [`redact_pairs`](Self::redact_pairs) on one reading of `text`.
    fn redact_pairs_in<'t>(&self, text: &'t str, decoded: &Decoded) -> Cow<'t, str> {
        let plain = decoded.text(text);
        let bytes = plain.as_bytes();
        let mut splice = Splice::new(text);
        let mut done = 0;
        for at in memchr::memchr2_iter(b'=', b':', bytes) {
            if at < done {
                continue;
            }
            // The name: word characters before the separator, past one closing quote.
            let mut end = at;
            if end > 0 && matches!(bytes[end - 1], b'"' | b'\'') {
                end -= 1;
            }
            let start = bytes[..end]
                .iter()
                .rposition(|&c| !is_name_byte(c))
                .map_or(0, |i| i + 1);
            if start == end || !self.is_sensitive_name(&plain[start..end]) {
                continue;
            }
            // The value: past spaces and one opening quote, to the closing quote or a delimiter.
            let mut from = at + 1;
            while bytes.get(from) == Some(&b' ') {
                from += 1;
            }
            let quote = bytes
                .get(from)
                .copied()
                .filter(|c| matches!(c, b'"' | b'\''));
            let to = match quote {
                Some(q) => {
                    from += 1;
                    bytes[from..]
                        .iter()
                        .position(|&c| c == q)
                        .map_or(bytes.len(), |i| from + i)
                }
                None => {
                    let to = value_end(bytes, from);
                    let scheme = &plain[from..to];
                    if AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme))
                        && bytes.get(to) == Some(&b' ')
                    {
                        value_end(bytes, to + 1)
                    } else {
                        to
                    }
                }
            };
            if to == from || &plain[from..to] == REDACTED {
                continue;
            }
            splice.replace(decoded.origin(from), decoded.origin(to), REDACTED);
            done = to;
        }
        splice.finish()
    }
}

/// Words that precede a credential in an `Authorization` value.
pub(super) const AUTH_SCHEMES: &[&str] = &["Bearer", "Basic", "Digest", "Token", "Negotiate"];

/// Characters of a name in `name=value` free text.
pub(super) fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Where an unquoted value in free text ends.
pub(super) fn value_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&c| {
            c.is_ascii_whitespace()
                || matches!(c, b',' | b';' | b'&' | b'"' | b'\'' | b'}' | b')' | b']')
        })
        .map_or(bytes.len(), |i| from + i)
}
