//! What is secret: the one list of sensitive names and the one card-number mask, used alike by
//! the HTTP layer (headers, query strings, paths), the logger (fields, messages) and the export
//! path (every span, event and log attribute).
//!
//! Rules follow PCI DSS v4.0.1 as it applies to logs and traces: verification codes, PIN blocks
//! and track data are removed by name (and track data also by shape); a primary account number
//! (13–19 digits, Luhn-valid) is truncated to its first 6 and last 4 digits, always in the same
//! format (`411111******1111`), so that differently masked copies cannot be combined.
//!
//! ```
//! use paytrace::redact::Redactor;
//! let r = Redactor::default();
//! assert!(r.is_sensitive_name("card_number"));
//! assert!(r.is_sensitive_name("paySign"));
//! assert!(!r.is_sensitive_name("design"));
//! assert_eq!(r.mask_pan("paid with 4111 1111 1111 1111"), "paid with 411111******1111");
//! assert_eq!(r.redact_query("order=7&cvv=123"), "order=7&cvv=REDACTED");
//! ```

mod card;
mod decode;
mod ids;
mod names;
#[cfg(test)]
mod tests;
mod text;
mod track;

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderName;

use card::{has_long_stretch, mask_cards, may_hold_card, Census};
use decode::Splice;
pub(crate) use ids::OwnIds;
pub use names::{DEFAULT_SENSITIVE_HEADERS, DEFAULT_SENSITIVE_WORDS};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// What whole track data (magnetic stripe) is replaced with.
pub const REDACTED_TRACK: &str = "[REDACTED-TRACK]";

/// The redaction policy: cheap to clone (the lists are shared).
///
/// Defaults: [`DEFAULT_SENSITIVE_WORDS`], [`DEFAULT_SENSITIVE_HEADERS`], PAN masking on.
///
/// ```
/// use paytrace::redact::Redactor;
/// let r = Redactor::default().add_sensitive_words(["merchant_secret_ref"]);
/// assert!(r.is_sensitive_name("merchant_secret_ref"));
/// ```
#[derive(Debug, Clone)]
pub struct Redactor {
    inner: Arc<Lists>,
}

#[derive(Debug)]
struct Lists {
    /// Process-unique: names the policy in [`Redactor::is_sensitive_field`]'s cache.
    id: u64,
    words: Vec<String>,
    headers: Vec<HeaderName>,
    mask_pan: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            inner: Arc::new(Lists {
                id: names::next_policy_id(),
                words: DEFAULT_SENSITIVE_WORDS
                    .iter()
                    .map(|w| (*w).to_owned())
                    .collect(),
                headers: DEFAULT_SENSITIVE_HEADERS
                    .iter()
                    .map(|h| HeaderName::from_static(h))
                    .collect(),
                mask_pan: true,
            }),
        }
    }
}

impl Redactor {
    fn edit(self, f: impl FnOnce(&mut Lists)) -> Self {
        let mut lists = Lists {
            id: names::next_policy_id(),
            words: self.inner.words.clone(),
            headers: self.inner.headers.clone(),
            mask_pan: self.inner.mask_pan,
        };
        f(&mut lists);
        Redactor {
            inner: Arc::new(lists),
        }
    }

    /// Replace the sensitive words (lowercase, matched word by word).
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default().with_sensitive_words(["nonce"]);
    /// assert!(r.is_sensitive_name("nonce") && !r.is_sensitive_name("card"));
    /// ```
    pub fn with_sensitive_words<I, S>(self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let words = words
            .into_iter()
            .map(|w| w.as_ref().to_ascii_lowercase())
            .collect();
        self.edit(|l| l.words = words)
    }

    /// Add sensitive words (or whole names) to the current list.
    pub fn add_sensitive_words<I, S>(self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let extra: Vec<String> = words
            .into_iter()
            .map(|w| w.as_ref().to_ascii_lowercase())
            .collect();
        self.edit(|l| l.words.extend(extra))
    }

    /// Add headers never to record (names are case-insensitive).
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default().add_sensitive_headers(["x-merchant-sig"]);
    /// assert!(r.is_sensitive_header(&http::HeaderName::from_static("x-merchant-sig")));
    /// ```
    pub fn add_sensitive_headers<I, S>(self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let extra: Vec<HeaderName> = headers
            .into_iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_ref().as_bytes()).ok())
            .collect();
        self.edit(|l| l.headers.extend(extra))
    }

    /// Turn card-number masking on or off. Defaults to on.
    pub fn with_pan_masking(self, on: bool) -> Self {
        self.edit(|l| l.mask_pan = on)
    }

    /// Whether a field, query-parameter or header name is sensitive: any of its words
    /// (split on `_ - . space` and camelCase, lowercased) is a sensitive word, or the whole name
    /// is a known compound such as `cardno` or `apikey`. `design` and `assign` are not `sign`.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// for name in ["cvv", "cardNo", "x-api-key", "client_secret", "access_token", "sign_type"] {
    ///     assert!(r.is_sensitive_name(name), "{name}");
    /// }
    /// for name in ["order_id", "amount", "design", "assign", "currency", "keyboard"] {
    ///     assert!(!r.is_sensitive_name(name), "{name}");
    /// }
    /// ```
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        names::is_sensitive(&self.inner.words, name)
    }

    /// Process-unique for this policy: a changed copy gets a new one. Caches of redacted values
    /// are keyed by it.
    pub(crate) fn policy_id(&self) -> u64 {
        self.inner.id
    }

    /// [`is_sensitive_name`](Self::is_sensitive_name) for a `tracing` field name, cached per
    /// thread: field names are `&'static str`, so their address names them for good, and a
    /// busy logger asks about the same few names on every record.
    pub(crate) fn is_sensitive_field(&self, name: &'static str) -> bool {
        thread_local! {
            static FIELDS: std::cell::RefCell<rustc_hash::FxHashMap<(u64, usize, usize), bool>> =
                std::cell::RefCell::default();
        }
        let key = (self.policy_id(), name.as_ptr() as usize, name.len());
        // `try_with`: a record logged while the thread is torn down gets an uncached answer,
        // not a panic.
        let cached = FIELDS.try_with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                return self.is_sensitive_name(name);
            };
            if let Some(&known) = cache.get(&key) {
                return known;
            }
            // Bounded: a process has finitely many field names, but many policies could come
            // and go (tests build one per case).
            if cache.len() >= 4096 {
                cache.clear();
            }
            let sensitive = self.is_sensitive_name(name);
            cache.insert(key, sensitive);
            sensitive
        });
        cached.unwrap_or_else(|_| self.is_sensitive_name(name))
    }

    /// Whether a header must never be recorded: the sensitive header list, or a sensitive name.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// assert!(r.is_sensitive_header(&http::header::AUTHORIZATION));
    /// assert!(!r.is_sensitive_header(&http::header::CONTENT_TYPE));
    /// ```
    pub fn is_sensitive_header(&self, name: &HeaderName) -> bool {
        self.inner.headers.iter().any(|h| h == name) || self.is_sensitive_name(name.as_str())
    }

    /// Mask card numbers and remove track data in free text. A card number is a run of 13–19
    /// digits, optionally grouped by single spaces, dashes or `+`, that passes the Luhn check;
    /// it becomes its first 6 and last 4 digits around `*`, without separators. Other digit runs
    /// (order ids, timestamps) are left alone. Borrowed, without allocating, when nothing
    /// matched.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// assert_eq!(r.mask_pan("card 4111-1111-1111-1111 ok"), "card 411111******1111 ok");
    /// assert_eq!(r.mask_pan("order 1234567890123"), "order 1234567890123"); // not Luhn-valid
    /// assert_eq!(r.mask_pan("%B4111111111111111^DOE/J^2512?"), "[REDACTED-TRACK]");
    /// ```
    pub fn mask_pan<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.mask_pan_after(text, &Census::of(text.as_bytes()))
    }

    /// Free text — a log message, a string value, a debug dump: card numbers masked as
    /// [`mask_pan`](Self::mask_pan) does, and the value after a sensitive name written
    /// `name=value`, `name: value` or `"name":"value"` replaced with [`REDACTED`] (with the
    /// credential after an auth scheme such as `Bearer`). Borrowed when unchanged.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// assert_eq!(r.redact_text("login failed: password=hunter2 user=bob"),
    ///            "login failed: password=REDACTED user=bob");
    /// assert_eq!(r.redact_text(r#"body {"cvv":"123","amount":5}"#),
    ///            r#"body {"cvv":"REDACTED","amount":5}"#);
    /// assert_eq!(r.redact_text("Login { user: \"bob\", password: \"hunter2\" }"),
    ///            "Login { user: \"bob\", password: \"REDACTED\" }");
    /// assert_eq!(r.redact_text("authorization: Bearer abc.def"), "authorization: REDACTED");
    /// assert!(matches!(r.redact_text("order 42 paid at 12:30"), std::borrow::Cow::Borrowed(_)));
    /// ```
    pub fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let census = Census::of(text.as_bytes());
        let masked = self.mask_pan_after(text, &census);
        // Masking writes digits, `*` and `[REDACTED-TRACK]`: no separator it did not see
        // (an escape may hide one: `%3D` is `=`).
        if !census.pair_separator && !census.escape {
            return masked;
        }
        match self.redact_pairs(&masked) {
            Cow::Owned(s) => Cow::Owned(s),
            Cow::Borrowed(_) => masked,
        }
    }

    /// [`mask_pan`](Self::mask_pan) with the text's census already taken.
    fn mask_pan_after<'a>(&self, text: &'a str, census: &Census) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        if !self.inner.mask_pan
            || census.cannot_hold_card()
            || (!census.track_sentinel && !census.escape && !has_long_stretch(bytes))
            || !may_hold_card(bytes)
        {
            return Cow::Borrowed(text);
        }
        mask_cards(text)
    }

    /// [`REDACTED`] when `name` is sensitive, else `value` as [`redact_text`](Self::redact_text)
    /// leaves it.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// assert_eq!(r.redact_value("password", "hunter2"), "REDACTED");
    /// assert_eq!(r.redact_value("note", "hello"), "hello");
    /// ```
    pub fn redact_value<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.is_sensitive_name(name) {
            Cow::Borrowed(REDACTED)
        } else {
            self.redact_text(value)
        }
    }

    /// Redact a URL query string: values of sensitive parameters become [`REDACTED`] (names are
    /// percent-decoded for the check); other values are read, decoded, as free text
    /// ([`redact_text`](Self::redact_text)), so a card number behind `%20` or inside encoded
    /// JSON is masked too. Borrowed when unchanged.
    ///
    /// ```
    /// let r = paytrace::redact::Redactor::default();
    /// assert_eq!(
    ///     r.redact_query("id=9&card%5Fnumber=4111111111111111&sign=abc&note=x"),
    ///     "id=9&card%5Fnumber=REDACTED&sign=REDACTED&note=x"
    /// );
    /// assert_eq!(r.redact_query("q=card%204111%201111%201111%201111%20ok"), "q=card%20411111******1111%20ok");
    /// assert!(matches!(r.redact_query("page=2"), std::borrow::Cow::Borrowed(_)));
    /// ```
    pub fn redact_query<'a>(&self, query: &'a str) -> Cow<'a, str> {
        let mut splice = Splice::new(query);
        let mut start = 0;
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                let from = start + name.len() + 1;
                let to = start + pair.len();
                if !value.is_empty() && self.is_sensitive_name(decode::decoded(name).as_ref()) {
                    splice.replace(from, to, REDACTED);
                } else if let Cow::Owned(masked) = self.redact_text(value) {
                    splice.replace(from, to, &masked);
                }
            }
            start += pair.len() + 1;
        }
        splice.finish()
    }
}
