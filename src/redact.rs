//! tmp
//!
//! TEMPORARY SHIM (wt-http): minimal versions of the `Redactor` API the http module calls,
//! with exactly the signatures of the real module (replaced at merge).
#![allow(missing_docs)]
use std::borrow::Cow;
pub const REDACTED: &str = "REDACTED";
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    _private: (),
}

const SENSITIVE: &[&str] = &[
    "card",
    "cvv",
    "cvc",
    "pan",
    "pin",
    "sign",
    "signature",
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "authorization",
    "cookie",
    "session",
    "auth",
    "credential",
    "track",
];

impl Redactor {
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        name.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|token| {
                let mut buf = [0u8; 64];
                let n = token.len().min(64);
                for (d, c) in buf.iter_mut().zip(token.bytes()) {
                    *d = c.to_ascii_lowercase();
                }
                let lower = &buf[..n];
                SENSITIVE.iter().any(|s| {
                    lower == s.as_bytes()
                        || (s.len() > 4 && lower.windows(s.len()).any(|w| w == s.as_bytes()))
                })
            })
    }

    pub fn is_sensitive_header(&self, name: &http::HeaderName) -> bool {
        matches!(
            name.as_str(),
            "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key"
        ) || self.is_sensitive_name(name.as_str())
    }

    pub fn mask_pan<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &text[start..i];
            if (13..=19).contains(&run.len()) && luhn(run) {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push_str(&run[..6]);
                o.extend(std::iter::repeat_n('*', run.len() - 10));
                o.push_str(&run[run.len() - 4..]);
                copied = i;
            }
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut o) => {
                o.push_str(&text[copied..]);
                Cow::Owned(o)
            }
        }
    }

    pub fn redact_value<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.is_sensitive_name(name) {
            Cow::Borrowed(REDACTED)
        } else {
            self.mask_pan(value)
        }
    }

    pub fn redact_query<'a>(&self, query: &'a str) -> Cow<'a, str> {
        let needs = query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            (self.is_sensitive_name(name) && pair.contains('='))
                || matches!(self.mask_pan(pair), Cow::Owned(_))
        });
        if !needs {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len());
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) => {
                    out.push_str(&self.mask_pan(name));
                    out.push('=');
                    out.push_str(&self.redact_value(name, value));
                }
                None => out.push_str(&self.mask_pan(pair)),
            }
        }
        Cow::Owned(out)
    }
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}
