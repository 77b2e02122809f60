//! Card numbers and track data: a one-pass census that rules most values out, the digit-run
//! scan with its Luhn check, and the one masking format (first 6 and last 4 digits).

use std::borrow::Cow;

use super::decode::{each_reading, Splice};
use super::track::track_at;
use super::REDACTED_TRACK;

/// One branch-free pass over a text: most values are short and plain, and this answers for
/// them in a few nanoseconds what the byte-by-byte scans would. Text with no `=`/`:` and that
/// [`Census::cannot_hold_card`] is text [`Redactor::redact_text`](super::Redactor::redact_text) cannot change, whatever the
/// policy.
pub(super) struct Census {
    pub(super) digits: usize,
    /// `=` or `:`: a `name=value` pair may follow.
    pub(super) pair_separator: bool,
    /// `%` or `;`: track data may start here.
    pub(super) track_sentinel: bool,
    /// `%` or `\\`: an escape may hide a digit, a separator or a quote ([`Decoded`](super::decode::Decoded)).
    pub(super) escape: bool,
}

pub(super) const DIGIT: u8 = 1;
pub(super) const PAIR_SEPARATOR: u8 = 2;
pub(super) const TRACK_SENTINEL: u8 = 4;
/// A space, dash or `+`: may sit between two digits of a card number.
pub(super) const RUN_SEPARATOR: u8 = 8;
/// `%` or `\\`: may start an escape.
pub(super) const ESCAPE: u8 = 16;

/// What [`Census::of`] notes about each byte value.
pub(super) static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = DIGIT;
        b += 1;
    }
    table[b'=' as usize] = PAIR_SEPARATOR;
    table[b':' as usize] = PAIR_SEPARATOR;
    table[b'%' as usize] = TRACK_SENTINEL | ESCAPE;
    table[b'\\' as usize] = ESCAPE;
    table[b';' as usize] = TRACK_SENTINEL;
    table[b' ' as usize] = RUN_SEPARATOR;
    table[b'-' as usize] = RUN_SEPARATOR;
    table[b'+' as usize] = RUN_SEPARATOR;
    table
};

impl Census {
    pub(super) fn of(bytes: &[u8]) -> Census {
        // One table lookup per byte, no branch: most values are a dozen bytes, too short for
        // vector code to pay off.
        let (digits, classes) = bytes.iter().fold((0, 0u8), |(digits, classes), &b| {
            let class = BYTE_CLASS[usize::from(b)];
            (digits + usize::from(class & DIGIT), classes | class)
        });
        Census {
            digits,
            pair_separator: classes & PAIR_SEPARATOR != 0,
            track_sentinel: classes & TRACK_SENTINEL != 0,
            escape: classes & ESCAPE != 0,
        }
    }

    /// Fewer than 13 digits in all, no track sentinel and no escape: no card number, no track
    /// data.
    pub(super) fn cannot_hold_card(&self) -> bool {
        self.digits < 13 && !self.track_sentinel && !self.escape
    }
}

/// 13 or more digits and separators in a row: what any run [`may_hold_card`] looks for spans.
/// Without a branch per byte, unlike `may_hold_card`: hex ids (request ids) have a dozen or more
/// digits in all but no such stretch, and this rules them out at a quarter of its cost.
pub(super) fn has_long_stretch(bytes: &[u8]) -> bool {
    let mut stretch = 0u32;
    let mut long = false;
    for &b in bytes {
        let in_run = BYTE_CLASS[usize::from(b)] & (DIGIT | RUN_SEPARATOR) != 0;
        stretch = if in_run { stretch + 1 } else { 0 };
        long |= stretch >= 13;
    }
    long
}

/// The exact test behind [`Redactor::mask_pan`](super::Redactor::mask_pan)'s fast path, one pass without allocation: false
/// unless `bytes` has a digit run (as [`scan_run`] reads one) of 13 or more digits, a `%` or
/// `;` that may open track data, or a `%` or `\\` that may open an escape. Ids, amounts, timestamps and hex strings (request ids) stay on
/// it.
pub(super) fn may_hold_card(bytes: &[u8]) -> bool {
    let mut digits = 0;
    let mut after_separator = false;
    for &b in bytes {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= 13 {
                return true;
            }
            after_separator = false;
        } else if matches!(b, b' ' | b'-' | b'+') && digits > 0 && !after_separator {
            after_separator = true;
        } else if matches!(b, b'%' | b';' | b'\\') {
            return true;
        } else {
            digits = 0;
            after_separator = false;
        }
    }
    false
}

/// Every card number and track in `text` masked: the full scan behind [`may_hold_card`]. It
/// reads the text decoded ([`Decoded`](super::decode::Decoded)) and masks the original, so the `20` of an encoded space
/// cannot glue onto a card number and hide it from the Luhn check. Each depth of decoding is
/// read in turn (`%2541…` is `%41…` once decoded and `A…` twice), and what any reading finds is
/// masked.
pub(super) fn mask_cards(text: &str) -> Cow<'_, str> {
    each_reading(text, |text, decoded| {
        let plain = decoded.text(text);
        let bytes = plain.as_bytes();
        let mut splice = Splice::new(text);
        let mut i = 0;
        while i < bytes.len() {
            if let Some(end) = track_at(bytes, i) {
                splice.replace(decoded.origin(i), decoded.origin(end), REDACTED_TRACK);
                i = end;
                continue;
            }
            if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
                i += 1;
                continue;
            }
            // Counted first: most runs (ids, amounts, hex) are too short to hold a card, and
            // collecting one allocates.
            let mut count = 0;
            let end = scan_run(bytes, i, |_, _| count += 1);
            if count >= 13 {
                if let Some(masked) = mask_run(&DigitRun::at(bytes, i)) {
                    splice.replace(decoded.origin(i), decoded.origin(end), &masked);
                }
            }
            i = end.max(i + 1);
        }
        splice.finish()
    })
}

/// A run of digits as written: its digits, and where each group after the first begins, with
/// the separator written before it.
#[derive(Debug, Default)]
pub(super) struct DigitRun {
    digits: Vec<u8>,
    breaks: Vec<(usize, u8)>,
}

impl DigitRun {
    /// The run starting at `i` (see [`scan_run`]).
    pub(super) fn at(bytes: &[u8], i: usize) -> DigitRun {
        let mut run = DigitRun {
            digits: Vec::with_capacity(24),
            breaks: Vec::new(),
        };
        scan_run(bytes, i, |digit, separator| {
            if let Some(separator) = separator {
                run.breaks.push((run.digits.len(), separator));
            }
            run.digits.push(digit);
        });
        run
    }

    /// Digit indices where a candidate card number may start: the run's start and each break.
    fn starts(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        std::iter::once(0).chain(self.breaks.iter().map(|&(at, _)| at))
    }

    /// Digit indices where a candidate may stop: each break and the run's end.
    fn stops(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        let breaks = self.breaks.iter().map(|&(at, _)| at);
        breaks.chain(std::iter::once(self.digits.len()))
    }
}

/// Walk the digit run starting at `i` — digits, with single spaces, dashes or `+` between
/// them — calling `visit(digit, separator_before)` for each digit, the separator given for the
/// first digit of each group after the first; returns the run's end.
pub(super) fn scan_run(bytes: &[u8], i: usize, mut visit: impl FnMut(u8, Option<u8>)) -> usize {
    let mut j = i;
    let mut end = i;
    let mut separator = None;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            visit(b, separator.take());
            j += 1;
            end = j;
        } else if matches!(b, b' ' | b'-' | b'+')
            && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
            && j > i
        {
            separator = Some(b);
            j += 1;
        } else {
            break;
        }
    }
    end
}

/// Mask every card number in one digit run. Candidates start and end at group boundaries (the
/// whole run is one group when written without separators), so `6 4111 1111 1111 1111` masks
/// the card after the stray digit. Each valid candidate keeps at most its first 6 and last 4
/// digits and loses its separators (the one masking format); separators outside a card stay,
/// so what a card kept never joins the digits beside it into a new number. `None` when nothing
/// matched.
pub(super) fn mask_run(run: &DigitRun) -> Option<String> {
    let digits = &run.digits;
    if digits.len() < 13 {
        return None;
    }
    let mut hidden = vec![false; digits.len()];
    let mut joined = vec![false; run.breaks.len()];
    let mut found = false;
    for start in run.starts() {
        for stop in run.stops() {
            if stop > start && (13..=19).contains(&(stop - start)) && luhn(&digits[start..stop]) {
                found = true;
                hidden[start + 6..stop - 4].fill(true);
                for (joined, &(at, _)) in joined.iter_mut().zip(&run.breaks) {
                    *joined |= start < at && at < stop;
                }
            }
        }
    }
    found.then(|| written(run, &hidden, &joined))
}

/// The run with `hidden` digits as `*` and the separators of `joined` breaks left out.
fn written(run: &DigitRun, hidden: &[bool], joined: &[bool]) -> String {
    let mut out = String::with_capacity(run.digits.len() + run.breaks.len());
    let mut breaks = run.breaks.iter().zip(joined).peekable();
    for (k, (&digit, &hide)) in run.digits.iter().zip(hidden).enumerate() {
        if let Some((&(_, separator), &joined)) = breaks.next_if(|((at, _), _)| *at == k) {
            if !joined {
                out.push(char::from(separator));
            }
        }
        out.push(if hide { '*' } else { char::from(digit) });
    }
    out
}

pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 {
                    d - 9
                } else {
                    d
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
