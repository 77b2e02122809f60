//! Escapes undone for reading: scans run on the percent- and JSON-decoded text and replace
//! ranges of the original ([`Splice`]), so an encoded space (`%20`, `\u0020`) cannot hide a
//! card number.

use std::borrow::Cow;

use super::track::track_at;

/// How deep escapes are decoded: `%2520` is a space encoded twice.
pub(super) const DECODE_DEPTH: usize = 3;

/// `redact` applied to `text` read at each depth of decoding, each on the previous result: once
/// when the text holds no escape. A text with an escape is read as written first too: decoding
/// can break up what is plain in it (`%4111111111111111` decodes to `A111111111111111`).
pub(super) fn each_reading<'a>(
    text: &'a str,
    redact: impl for<'t> Fn(&'t str, &Decoded) -> Cow<'t, str>,
) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    if text.bytes().any(|b| b == b'%' || b == b'\\') {
        let as_written = Decoded {
            decoded: None,
            depth: 0,
        };
        if let Cow::Owned(next) = redact(text, &as_written) {
            out = Cow::Owned(next);
        }
    }
    for depth in 1..=DECODE_DEPTH {
        let decoded = Decoded::of(&out, depth);
        let last = decoded.depth < depth;
        if let Cow::Owned(next) = redact(&out, &decoded) {
            out = Cow::Owned(next);
        }
        if last {
            break;
        }
    }
    out
}

/// A text with its escapes of ASCII characters decoded — percent (`%20`) and JSON (`\u0020`,
/// `\"`, `\\`, `\/`), nested up to [`DECODE_DEPTH`] times — and where each decoded byte came
/// from, so that scans read the decoded text and replace ranges of the original. Only ASCII is
/// decoded (into one byte each), so the decoded text is UTF-8 whenever the original is.
pub(super) struct Decoded {
    /// `None` when the text holds no escape: the original is its own decoded text.
    pub(super) decoded: Option<(String, Vec<usize>)>,
    /// How many levels of escapes were decoded (fewer than asked when no escape was left).
    pub(super) depth: usize,
}

impl Decoded {
    /// `text` decoded up to `depth` times.
    pub(super) fn of(text: &str, depth: usize) -> Decoded {
        let mut decoded: Option<(String, Vec<usize>)> = None;
        let mut done = 0;
        while done < depth {
            let current = decoded.as_ref().map_or(text, |(t, _)| t.as_str());
            let Some((next, origin)) = decode_once(current) else {
                break;
            };
            // Compose: a byte of `next` came from `origin[i]` of `current`, which came from…
            let origin = match &decoded {
                None => origin,
                Some((_, outer)) => origin.iter().map(|&o| outer[o]).collect(),
            };
            decoded = Some((next, origin));
            done += 1;
        }
        Decoded {
            decoded,
            depth: done,
        }
    }

    /// The decoded text.
    pub(super) fn text<'a>(&'a self, original: &'a str) -> &'a str {
        self.decoded.as_ref().map_or(original, |(t, _)| t.as_str())
    }

    /// Where decoded offset `i` (or the end, `len`) starts in the original.
    pub(super) fn origin(&self, i: usize) -> usize {
        self.decoded.as_ref().map_or(i, |(_, origin)| origin[i])
    }
}

/// One level of decoding: the decoded text and, for each of its bytes and its end, the offset in
/// `text` it came from. `None` when `text` has no escape.
pub(super) fn decode_once(text: &str) -> Option<(String, Vec<usize>)> {
    let bytes = text.as_bytes();
    let first = bytes.iter().position(|&b| b == b'%' || b == b'\\')?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut origin = Vec::with_capacity(bytes.len() + 1);
    out.extend_from_slice(&bytes[..first]);
    origin.extend(0..first);
    let mut changed = false;
    let mut i = first;
    while i < bytes.len() {
        // Track data (`%B4111…^`) is read as written: its `%B4` is not an escape.
        let verbatim = track_at(bytes, i).map_or(1, |end| end - i);
        let (byte, len) = match escape_at(bytes, i) {
            Some(escape) if verbatim == 1 => escape,
            _ => {
                out.extend_from_slice(&bytes[i..i + verbatim]);
                origin.extend(i..i + verbatim);
                i += verbatim;
                continue;
            }
        };
        changed = true;
        out.push(byte);
        origin.push(i);
        i += len;
    }
    origin.push(bytes.len());
    // Each escape became one ASCII byte and the rest was copied whole: still UTF-8.
    let out = String::from_utf8(out).ok()?;
    changed.then_some((out, origin))
}

/// What a scan reads in place of an escaped character that is not ASCII: no digit, separator
/// or name character, so the hex digits of `%E8` cannot glue onto a card number.
pub(super) const NOT_ASCII: u8 = 0x1A;

/// The character an escape at `i` stands for (ASCII, or [`NOT_ASCII`]), and the escape's length.
pub(super) fn escape_at(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let hex = |from: usize, len: usize| -> Option<u32> {
        let digits = bytes.get(from..from + len)?;
        digits
            .iter()
            .try_fold(0u32, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
    };
    let (value, len) = match (bytes[i], bytes.get(i + 1)) {
        (b'%', _) => (u32::from(crate::util::percent_escape_at(bytes, i)?), 3),
        (b'\\', Some(b'u')) => (hex(i + 2, 4)?, 6),
        (b'\\', Some(&c @ (b'"' | b'\\' | b'/'))) => (u32::from(c), 2),
        _ => return None,
    };
    let byte = u8::try_from(value)
        .ok()
        .filter(u8::is_ascii)
        .unwrap_or(NOT_ASCII);
    Some((byte, len))
}

/// `text` with its escapes decoded, for matching a name: borrowed when it has none.
pub(super) fn decoded(text: &str) -> Cow<'_, str> {
    match Decoded::of(text, DECODE_DEPTH).decoded {
        Some((plain, _)) => Cow::Owned(plain),
        None => Cow::Borrowed(text),
    }
}

/// A text with ranges replaced, left to right; copied only once something is replaced.
pub(super) struct Splice<'a> {
    text: &'a str,
    out: Option<String>,
    /// Where the text not yet copied starts: the end of the last replaced range.
    pub(super) copied: usize,
}

impl<'a> Splice<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Splice {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Replace `text[from..to]`; `from` is not before the end of the previous range.
    pub(super) fn replace(&mut self, from: usize, to: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.text.len()));
        out.push_str(&self.text[self.copied..from]);
        out.push_str(with);
        self.copied = to;
    }

    pub(super) fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.text),
            Some(mut out) => {
                out.push_str(&self.text[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}
