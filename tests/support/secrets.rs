//! A generated corpus of secrets and a leak finder that reads text the way a person searching a
//! backend would: every escape undone, separators ignored. Written independently of
//! `paytrace::redact`, so that a blind spot there is not repeated here.

/// A small deterministic generator (xorshift64*): the same corpus on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` characters from `alphabet`.
    pub fn word(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize]))
            .collect()
    }

    /// A Luhn-valid card number of 13 to 19 digits.
    pub fn card(&mut self) -> String {
        let len = 13 + self.below(7) as usize;
        let mut digits: Vec<u8> = (0..len - 1).map(|_| self.below(10) as u8).collect();
        digits[0] = 3 + self.below(4) as u8;
        let check = (0..10u8)
            .find(|&c| {
                let mut all = digits.clone();
                all.push(c);
                luhn(&all)
            })
            .expect("one check digit fits");
        digits.push(check);
        digits.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
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

/// `card` in groups of four joined by `sep`.
pub fn grouped(card: &str, sep: &str) -> String {
    card.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Every byte of `text` percent-encoded.
pub fn percent_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

pub const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// What must never be found in exported text.
#[derive(Debug, Clone)]
pub enum Secret {
    /// A card number: its digits, in any spelling.
    Card(String),
    /// An opaque credential (token, key, signature, cookie): the string itself.
    Opaque(String),
    /// A value secret only beside its name (a CVV, an expiry date): `name=value` or
    /// `"name":"value"`.
    Named(&'static str, String),
}

impl Secret {
    /// Where the secret is readable in one of the [`readings`] of a text.
    pub fn found_in(&self, normalized: &str, digits_only: &str) -> bool {
        match self {
            Secret::Card(card) => digits_only.contains(card.as_str()),
            Secret::Opaque(value) => normalized.contains(value.as_str()),
            Secret::Named(name, value) => [
                format!("{name}={value}"),
                format!("\"{name}\":\"{value}\""),
                format!("{name}: {value}"),
            ]
            .iter()
            .any(|form| normalized.contains(form.as_str())),
        }
    }
}

/// `bytes` as a person would read them, at each depth of unescaping: JSON and percent escapes
/// undone zero to four times (`%2541` is `%41` once and `A` twice), every other byte kept.
/// Binary protobuf framing stays as noise around the strings.
pub fn readings(bytes: &[u8]) -> Vec<String> {
    let mut text: Vec<u8> = bytes.to_vec();
    let mut out = vec![String::from_utf8_lossy(&text).into_owned()];
    for _ in 0..4 {
        let next = unescape_once(&text);
        if next == text {
            break;
        }
        text = next;
        out.push(String::from_utf8_lossy(&text).into_owned());
    }
    out
}

/// The runs of `text` made of digits and the separators a card number is written with, with the
/// separators removed: where a card number would be readable.
pub fn digits_only(normalized: &str) -> String {
    let mut out = String::with_capacity(normalized.len());
    let mut last_was_digit = false;
    for c in normalized.chars() {
        if c.is_ascii_digit() {
            out.push(c);
            last_was_digit = true;
        } else if matches!(c, ' ' | '-' | '+') && last_was_digit {
        } else {
            if last_was_digit {
                out.push('|');
            }
            last_was_digit = false;
        }
    }
    out
}

fn unescape_once(b: &[u8]) -> Vec<u8> {
    let hex = |s: &[u8]| -> Option<u32> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'%', _) if i + 3 <= b.len() && hex(&b[i + 1..i + 3]).is_some() => {
                out.push(hex(&b[i + 1..i + 3]).unwrap() as u8);
                i += 3;
            }
            (b'\\', Some(b'u'))
                if i + 6 <= b.len() && hex(&b[i + 2..i + 6]).is_some_and(|v| v < 0x80) =>
            {
                out.push(hex(&b[i + 2..i + 6]).unwrap() as u8);
                i += 6;
            }
            (b'\\', Some(&c @ (b'"' | b'\\' | b'/'))) => {
                out.push(c);
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Every secret of `secrets` readable in `bytes` at any depth of unescaping, with the place it
/// was found.
pub fn leaks<'s>(what: &str, bytes: &[u8], secrets: &'s [Secret]) -> Vec<(String, &'s Secret)> {
    let readings: Vec<(String, String)> = readings(bytes)
        .into_iter()
        .map(|text| {
            let digits = digits_only(&text);
            (text, digits)
        })
        .collect();
    secrets
        .iter()
        .filter(|s| {
            readings
                .iter()
                .any(|(text, digits)| s.found_in(text, digits))
        })
        .map(|s| (what.to_owned(), s))
        .collect()
}
