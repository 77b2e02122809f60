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

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderName;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// What whole track data (magnetic stripe) is replaced with.
pub const REDACTED_TRACK: &str = "[REDACTED-TRACK]";

/// Words that make a field, parameter or header name sensitive. A name matches when one of its
/// words (split on `_ - . space` and camelCase) is in this list.
pub const DEFAULT_SENSITIVE_WORDS: &[&str] = &[
    // card data (PCI DSS)
    "card",
    "pan",
    "cvv",
    "cvv2",
    "cvc",
    "cvc2",
    "cid",
    "pin",
    "track",
    "expiry",
    "iban",
    // request signing and credentials
    "sign",
    "signature",
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "otp",
    "authorization",
    "auth",
    "cookie",
    "session",
    "credential",
    "credentials",
];

/// Names that are sensitive only as a whole (written without separators).
const COMPOUNDS: &[&str] = &[
    "cardno",
    "cardnum",
    "cardnumber",
    "accountnumber",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "secretkey",
    "privatekey",
    "paysign",
    "clientsecret",
    "setcookie",
    "xapikey",
];

/// Headers never recorded.
pub const DEFAULT_SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

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
                id: next_lists_id(),
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
            id: next_lists_id(),
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
        let words = &self.inner.words;
        let mut compound = [0u8; 32];
        let mut compound_len = 0;
        let mut sensitive = false;
        for_each_word(name, |word| {
            if !sensitive && words.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                sensitive = true;
            }
            for b in word.bytes() {
                if compound_len < compound.len() {
                    compound[compound_len] = b.to_ascii_lowercase();
                }
                compound_len += 1;
            }
        });
        if sensitive {
            return true;
        }
        compound_len <= compound.len()
            && std::str::from_utf8(&compound[..compound_len])
                .is_ok_and(|whole| COMPOUNDS.contains(&whole) || words.iter().any(|w| w == whole))
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

    /// The `name=value` / `name: value` part of [`redact_text`](Self::redact_text), read on the
    /// decoded text so that `%22password%22%3A%22…` is seen as `"password":"…"`.
    fn redact_pairs<'a>(&self, text: &'a str) -> Cow<'a, str> {
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
                if !value.is_empty() && self.is_sensitive_name(&percent_decode_lossy(name)) {
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
        crate::propagation::hex_into(&self.trace, &mut trace);
        crate::propagation::hex_into(&self.span, &mut span);
        let v = value.as_bytes();
        let lower_hex = |b: &[u8]| b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        v == trace
            || v == span
            || (v.len() == 49 && v[..32] == trace && v[32] == b'-' && lower_hex(&v[33..]))
    }
}

/// A new policy's [`Redactor::policy_id`].
fn next_lists_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Call `f` with each word of `name`: split on non-alphanumerics, lower→upper camelCase and
/// letter→digit boundaries (`track2` is `track`, `2`).
fn for_each_word(name: &str, mut f: impl FnMut(&str)) {
    let bytes = name.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let alnum = b.is_ascii_alphanumeric();
        let boundary = i > 0
            && ((b.is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase())
                || (b.is_ascii_digit() && bytes[i - 1].is_ascii_alphabetic()));
        match (start, alnum) {
            (Some(s), true) if boundary => {
                f(&name[s..i]);
                start = Some(i);
            }
            (Some(_), true) => {}
            (Some(s), false) => {
                f(&name[s..i]);
                start = None;
            }
            (None, true) => start = Some(i),
            (None, false) => {}
        }
    }
    if let Some(s) = start {
        f(&name[s..]);
    }
}

/// Every card number and track in `text` masked: the full scan behind [`may_hold_card`]. It
/// reads the text decoded ([`Decoded`]) and masks the original, so the `20` of an encoded space
/// cannot glue onto a card number and hide it from the Luhn check. Each depth of decoding is
/// read in turn (`%2541…` is `%41…` once decoded and `A…` twice), and what any reading finds is
/// masked.
fn mask_cards(text: &str) -> Cow<'_, str> {
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
                let (digits, groups) = digit_run(bytes, i);
                if let Some(masked) = mask_run(&digits, &groups) {
                    splice.replace(decoded.origin(i), decoded.origin(end), &masked);
                }
            }
            i = end.max(i + 1);
        }
        splice.finish()
    })
}

/// `redact` applied to `text` read at each depth of decoding, each on the previous result: once
/// when the text holds no escape.
fn each_reading<'a>(
    text: &'a str,
    redact: impl for<'t> Fn(&'t str, &Decoded) -> Cow<'t, str>,
) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
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

/// How deep escapes are decoded: `%2520` is a space encoded twice.
const DECODE_DEPTH: usize = 3;

/// A text with its escapes of ASCII characters decoded — percent (`%20`) and JSON (`\u0020`,
/// `\"`, `\\`, `\/`), nested up to [`DECODE_DEPTH`] times — and where each decoded byte came
/// from, so that scans read the decoded text and replace ranges of the original. Only ASCII is
/// decoded (into one byte each), so the decoded text is UTF-8 whenever the original is.
struct Decoded {
    /// `None` when the text holds no escape: the original is its own decoded text.
    decoded: Option<(String, Vec<usize>)>,
    /// How many levels of escapes were decoded (fewer than asked when no escape was left).
    depth: usize,
}

impl Decoded {
    /// `text` decoded up to `depth` times.
    fn of(text: &str, depth: usize) -> Decoded {
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
    fn text<'a>(&'a self, original: &'a str) -> &'a str {
        self.decoded.as_ref().map_or(original, |(t, _)| t.as_str())
    }

    /// Where decoded offset `i` (or the end, `len`) starts in the original.
    fn origin(&self, i: usize) -> usize {
        self.decoded.as_ref().map_or(i, |(_, origin)| origin[i])
    }
}

/// One level of decoding: the decoded text and, for each of its bytes and its end, the offset in
/// `text` it came from. `None` when `text` has no escape.
fn decode_once(text: &str) -> Option<(String, Vec<usize>)> {
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
const NOT_ASCII: u8 = 0x1A;

/// The character an escape at `i` stands for (ASCII, or [`NOT_ASCII`]), and the escape's length.
fn escape_at(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let hex = |from: usize, len: usize| -> Option<u32> {
        let digits = bytes.get(from..from + len)?;
        digits
            .iter()
            .try_fold(0u32, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
    };
    let (value, len) = match (bytes[i], bytes.get(i + 1)) {
        (b'%', _) => (hex(i + 1, 2)?, 3),
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

/// A text with ranges replaced, left to right; copied only once something is replaced.
struct Splice<'a> {
    text: &'a str,
    out: Option<String>,
    /// Where the text not yet copied starts: the end of the last replaced range.
    copied: usize,
}

impl<'a> Splice<'a> {
    fn new(text: &'a str) -> Self {
        Splice {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Replace `text[from..to]`; `from` is not before the end of the previous range.
    fn replace(&mut self, from: usize, to: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.text.len()));
        out.push_str(&self.text[self.copied..from]);
        out.push_str(with);
        self.copied = to;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.text),
            Some(mut out) => {
                out.push_str(&self.text[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}

/// Words that precede a credential in an `Authorization` value.
const AUTH_SCHEMES: &[&str] = &["Bearer", "Basic", "Digest", "Token", "Negotiate"];

/// Characters of a name in `name=value` free text.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Where an unquoted value in free text ends.
fn value_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&c| {
            c.is_ascii_whitespace()
                || matches!(c, b',' | b';' | b'&' | b'"' | b'\'' | b'}' | b')' | b']')
        })
        .map_or(bytes.len(), |i| from + i)
}

/// One branch-free pass over a text: most values are short and plain, and this answers for
/// them in a few nanoseconds what the byte-by-byte scans would. Text with no `=`/`:` and that
/// [`Census::cannot_hold_card`] is text [`Redactor::redact_text`] cannot change, whatever the
/// policy.
struct Census {
    digits: usize,
    /// `=` or `:`: a `name=value` pair may follow.
    pair_separator: bool,
    /// `%` or `;`: track data may start here.
    track_sentinel: bool,
    /// `%` or `\\`: an escape may hide a digit, a separator or a quote ([`Decoded`]).
    escape: bool,
}

const DIGIT: u8 = 1;
const PAIR_SEPARATOR: u8 = 2;
const TRACK_SENTINEL: u8 = 4;
/// A space, dash or `+`: may sit between two digits of a card number.
const RUN_SEPARATOR: u8 = 8;
/// `%` or `\\`: may start an escape.
const ESCAPE: u8 = 16;

/// What [`Census::of`] notes about each byte value.
static BYTE_CLASS: [u8; 256] = {
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
    fn of(bytes: &[u8]) -> Census {
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
    fn cannot_hold_card(&self) -> bool {
        self.digits < 13 && !self.track_sentinel && !self.escape
    }
}

/// 13 or more digits and separators in a row: what any run [`may_hold_card`] looks for spans.
/// Without a branch per byte, unlike `may_hold_card`: hex ids (request ids) have a dozen or more
/// digits in all but no such stretch, and this rules them out at a quarter of its cost.
fn has_long_stretch(bytes: &[u8]) -> bool {
    let mut stretch = 0u32;
    let mut long = false;
    for &b in bytes {
        let in_run = BYTE_CLASS[usize::from(b)] & (DIGIT | RUN_SEPARATOR) != 0;
        stretch = if in_run { stretch + 1 } else { 0 };
        long |= stretch >= 13;
    }
    long
}

/// The exact test behind [`Redactor::mask_pan`]'s fast path, one pass without allocation: false
/// unless `bytes` has a digit run (as [`scan_run`] reads one) of 13 or more digits, a `%` or
/// `;` that may open track data, or a `%` or `\\` that may open an escape. Ids, amounts, timestamps and hex strings (request ids) stay on
/// it.
fn may_hold_card(bytes: &[u8]) -> bool {
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

/// The digits of the run starting at `i` (see [`scan_run`]) and the digit index where each of
/// its groups begins.
fn digit_run(bytes: &[u8], i: usize) -> (Vec<u8>, Vec<usize>) {
    let mut digits = Vec::with_capacity(24);
    let mut groups = vec![0];
    scan_run(bytes, i, |digit, new_group| {
        if new_group {
            groups.push(digits.len());
        }
        digits.push(digit);
    });
    (digits, groups)
}

/// Walk the digit run starting at `i` — digits, with single spaces, dashes or `+` between
/// them — calling `visit(digit, starts_a_new_group)` for each digit; returns the run's end.
fn scan_run(bytes: &[u8], i: usize, mut visit: impl FnMut(u8, bool)) -> usize {
    let mut j = i;
    let mut end = i;
    let mut new_group = false;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            visit(b, new_group);
            new_group = false;
            j += 1;
            end = j;
        } else if matches!(b, b' ' | b'-' | b'+')
            && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
            && j > i
        {
            new_group = true;
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
/// digits; overlapping candidates are masked as one. `None` when nothing matched.
fn mask_run(digits: &[u8], groups: &[usize]) -> Option<String> {
    if digits.len() < 13 {
        return None;
    }
    let mut bounds: Vec<usize> = groups.to_vec();
    bounds.push(digits.len());
    let mut hidden = vec![false; digits.len()];
    let mut found = false;
    for &start in groups {
        for &stop in &bounds {
            if stop > start && (13..=19).contains(&(stop - start)) && luhn(&digits[start..stop]) {
                found = true;
                hidden[start + 6..stop - 4]
                    .iter_mut()
                    .for_each(|h| *h = true);
            }
        }
    }
    found.then(|| {
        digits
            .iter()
            .zip(&hidden)
            .map(|(&d, &h)| if h { '*' } else { d as char })
            .collect()
    })
}

fn luhn(digits: &[u8]) -> bool {
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
    sum % 10 == 0
}

/// Track 1 (`%B<pan>^...?`) or track 2 (`;<pan>=...?`) data starting at `i`: its end.
fn track_at(bytes: &[u8], i: usize) -> Option<usize> {
    let (pan_start, separator) = match bytes.get(i..i + 2)? {
        [b'%', b'B'] => (i + 2, b'^'),
        [b';', d] if d.is_ascii_digit() => (i + 1, b'='),
        _ => return None,
    };
    let digits = bytes[pan_start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(13..=19).contains(&digits) || bytes.get(pan_start + digits) != Some(&separator) {
        return None;
    }
    let rest = pan_start + digits;
    // Up to and including the end sentinel, or a bounded length when it is missing.
    let end = bytes[rest..]
        .iter()
        .position(|&b| b == b'?')
        .map_or((rest + 80).min(bytes.len()), |p| rest + p + 1);
    let end = (end..=bytes.len()).find(|&e| e == bytes.len() || (bytes[e] & 0xC0) != 0x80)?;
    Some(end)
}

/// Percent-decode for name matching only (invalid sequences are kept as they are).
fn percent_decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains('%') && !s.contains('+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn sensitive_names() {
        let yes = [
            "card",
            "CARD_NUMBER",
            "cardNo",
            "cardno",
            "card-number",
            "pan",
            "cvv",
            "CVV2",
            "cvc",
            "cid",
            "pin",
            "track2",
            "track",
            "expiry",
            "sign",
            "signature",
            "paySign",
            "paysign",
            "sign_type",
            "token",
            "access_token",
            "accessToken",
            "refresh-token",
            "password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "api_key",
            "apiKey",
            "x-api-key",
            "apikey",
            "authorization",
            "Authorization",
            "proxy-authorization",
            "cookie",
            "Set-Cookie",
            "session_id",
            "credentials",
            "otp",
            "iban",
        ];
        for name in yes {
            assert!(r().is_sensitive_name(name), "{name} must be sensitive");
        }
        let no = [
            "order_id",
            "amount",
            "currency",
            "design",
            "assign",
            "designer",
            "keyboard",
            "monkey",
            "panel",
            "company",
            "pinned_at",
            "user_agent",
            "status",
            "",
            "_",
            "route",
            "http.route",
        ];
        for name in no {
            assert!(!r().is_sensitive_name(name), "{name} must not be sensitive");
        }
    }

    #[test]
    fn pans_are_masked_in_one_format() {
        let cases = [
            ("4111111111111111", "411111******1111"),
            ("4111 1111 1111 1111", "411111******1111"),
            ("4111-1111-1111-1111", "411111******1111"),
            ("pay 5500005555555559 now", "pay 550000******5559 now"),
            ("amex 378282246310005.", "amex 378282*****0005."),
            (
                "19 digits 4000000000000000006",
                "19 digits 400000*********0006",
            ),
            (
                "a=4111111111111111&b=5500005555555559",
                "a=411111******1111&b=550000******5559",
            ),
            (
                "订单 4111111111111111 已支付",
                "订单 411111******1111 已支付",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r().mask_pan(input), want, "{input}");
        }
    }

    #[test]
    fn other_digit_runs_are_untouched() {
        for input in [
            "order 1234567890123",       // 13 digits, not Luhn-valid
            "ts 1700000000000000000000", // 22 digits: too long
            "411111111111",              // 12 digits
            "41111111111111111111",      // 20 digits, even if a prefix is valid
            "2026-11-22 12:00:00",
            "phone +1 555 0100",
            "",
        ] {
            assert!(matches!(r().mask_pan(input), Cow::Borrowed(_)), "{input}");
        }
    }

    #[test]
    fn digit_runs_are_read_as_the_card_scan_reads_them() {
        // 13 digits with single separators between them: a run the card scan reads.
        assert!(may_hold_card(b"x 4111 1111 1111 1 y"));
        assert!(may_hold_card(b"5500-0000-0000-0"));
        assert!(may_hold_card(b"ab;cd") && may_hold_card(b"50%"));
        // Two separators in a row or a letter end the run.
        assert!(!may_hold_card(b"4111  1111 1111 1111"));
        assert!(!may_hold_card(b"411111a1111111"));
        // A generated request id: hex digits and letters, with no stretch of 13 digits and
        // separators for the exact scan to read.
        let request_id = b"4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
        assert!(!may_hold_card(request_id) && !has_long_stretch(request_id));
        assert!(has_long_stretch(b"x 4111 1111 1111 1 y"));
        assert!(!may_hold_card(b"2026-11-22 12:00:00"));
    }

    #[test]
    fn card_numbers_behind_encodings_are_masked_in_the_original() {
        let cases = [
            ("/pay/4111%201111%201111%201111", "/pay/411111******1111"),
            ("/pay/5169%202369%206920%204326", "/pay/516923******4326"),
            (
                "card%204111111111111111%20now",
                "card%20411111******1111%20now",
            ),
            ("%224111111111111111%22", "%22411111******1111%22"),
            ("4111%2D1111%2d1111%2D1111", "411111******1111"),
            ("x%254111111111111111", "x%25411111******1111"),
            ("4111%25201111%25201111%25201111", "411111******1111"),
            ("%E84111111111111111", "%E8411111******1111"),
            ("%34111111111111111", "411111******1111"),
            (
                r"n \u00224111\u00201111\u00201111\u00201111",
                r"n \u0022411111******1111",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r().mask_pan(input), want, "{input}");
            assert_eq!(r().redact_text(input), want, "{input}");
        }
    }

    #[test]
    fn queries_are_read_decoded() {
        let cases = [
            (
                "q=card%204111111111111111%20now",
                "q=card%20411111******1111%20now",
            ),
            ("q=card+4111111111111111+now", "q=card+411111******1111+now"),
            (
                "data=%7B%22card%22%3A%224111111111111111%22%7D",
                "data=%7B%22card%22%3A%22REDACTED%22%7D",
            ),
            (
                "data=%7B%22password%22%3A%22hunter2%22%7D",
                "data=%7B%22password%22%3A%22REDACTED%22%7D",
            ),
            (
                "pan=4111111111111111&note=card%204111111111111111",
                "pan=REDACTED&note=card%20411111******1111",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(r().redact_query(q), want, "{q}");
        }
    }

    #[test]
    fn escaped_json_pairs_are_read_decoded() {
        assert_eq!(
            r().redact_text(r#"body {\"password\":\"hunter2\"}"#),
            r#"body {\"password\":\"REDACTED\"}"#
        );
        // A lone backslash or percent sign is text, not an escape.
        for text in [r"C:\users\bob", "100% sure", "50%2", r"\u12"] {
            assert!(matches!(r().redact_text(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn own_ids_are_spared_and_nothing_else() {
        // A span id whose digits hold a Luhn-valid run of 16.
        let span = [0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11];
        let trace = [0xab; 16];
        let ids = OwnIds::new(trace, span);
        let span_hex = "4111111111111111";
        let request_id = format!("{}-{span_hex}", "ab".repeat(16));
        for own in [span_hex, request_id.as_str()] {
            assert_ne!(r().redact_text(own), own, "the plain scan masks {own}");
            assert_eq!(r().redact_text_sparing(own, Some(&ids)), own);
        }
        // Another value, or the same id inside free text, is still masked.
        let other = OwnIds::new(trace, [0; 8]);
        assert_ne!(r().redact_text_sparing(span_hex, Some(&other)), span_hex);
        let text = format!("card {span_hex}");
        assert_ne!(r().redact_text_sparing(&text, Some(&ids)), text);
        assert_ne!(r().redact_text_sparing(span_hex, None), span_hex);
    }

    #[test]
    fn a_million_generated_ids_are_never_masked() {
        // xorshift64*: ids as random as the SDK's, without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let (mut masked, mut luhn_runs) = (0, 0);
        for _ in 0..1_000_000 {
            let trace = (u128::from(next()) << 64 | u128::from(next())).to_be_bytes();
            let span = next().to_be_bytes();
            let ids = OwnIds::new(trace, span);
            let mut text = [b'-'; 49];
            crate::propagation::hex_into(&trace, &mut text[..32]);
            crate::propagation::hex_into(&span, &mut text[33..]);
            let request_id = std::str::from_utf8(&text).unwrap();
            for id in [&request_id[..32], &request_id[33..], request_id] {
                if matches!(r().redact_text(id), Cow::Owned(_)) {
                    luhn_runs += 1;
                }
                if r().redact_text_sparing(id, Some(&ids)) != id {
                    masked += 1;
                }
            }
        }
        assert_eq!(masked, 0);
        // Without the exemption some would be: the test reads ids that matter.
        assert!(luhn_runs > 100, "{luhn_runs}");
    }

    #[test]
    fn track_data_is_removed_whole() {
        assert_eq!(
            r().mask_pan("x %B4111111111111111^DOE/JOHN^25121010000?y"),
            "x [REDACTED-TRACK]y"
        );
        assert_eq!(
            r().mask_pan(";4111111111111111=25121010000? tail"),
            "[REDACTED-TRACK] tail"
        );
    }

    #[test]
    fn masking_can_be_turned_off() {
        let r = Redactor::default().with_pan_masking(false);
        assert_eq!(r.mask_pan("4111111111111111"), "4111111111111111");
    }

    #[test]
    fn queries() {
        let cases = [
            ("a=1&b=2", "a=1&b=2"),
            ("card_number=4111111111111111", "card_number=REDACTED"),
            ("note=4111111111111111&x=1", "note=411111******1111&x=1"),
            (
                "sign=abc&token=t&password=&ok",
                "sign=REDACTED&token=REDACTED&password=&ok",
            ),
            ("&&cvv=1&", "&&cvv=REDACTED&"),
            ("card+number=1", "card+number=REDACTED"),
        ];
        for (q, want) in cases {
            assert_eq!(r().redact_query(q), want, "{q}");
        }
    }

    #[test]
    fn headers() {
        for h in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
            "x-api-key",
            "x-auth-token",
            "x-signature",
        ] {
            assert!(r().is_sensitive_header(&HeaderName::from_static(h)), "{h}");
        }
        assert!(!r().is_sensitive_header(&HeaderName::from_static("x-request-id")));
    }

    #[test]
    fn field_names_are_cached_per_policy() {
        let default = Redactor::default();
        let custom = Redactor::default().with_sensitive_words(["order"]);
        for _ in 0..2 {
            assert!(default.is_sensitive_field("cvv"));
            assert!(!default.is_sensitive_field("order_id"));
            // Same static name, other policy: its own answer, not the cached one.
            assert!(custom.is_sensitive_field("order_id"));
            assert!(!custom.is_sensitive_field("cvv"));
        }
    }

    fn with_check_digit(body: &[u8]) -> Vec<u8> {
        (b'0'..=b'9')
            .map(|c| {
                let mut v = body.to_vec();
                v.push(c);
                v
            })
            .find(|v| luhn(v))
            .unwrap()
    }

    /// `text`, or `inner` between two copies of it.
    fn around(text: String, inner: Option<&str>) -> String {
        match inner {
            Some(inner) => format!("{text}{inner}{text}"),
            None => text,
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_only_skips_text_the_full_scan_leaves_alone(
            text in "[0-9 +\\-a-f%;B^=?]{0,60}",
            card in proptest::option::of(prop_oneof![
                Just("4222222222222"),
                Just("4111111111111111"),
                Just("4111 1111 1111 1111"),
                Just("5500-0000-0000-0004"),
                Just(";4111111111111111=2512?"),
            ]),
        ) {
            let text = around(text, card);
            prop_assert!(
                may_hold_card(text.as_bytes()) || matches!(mask_cards(&text), Cow::Borrowed(_)),
                "the fast path would leave {text:?} unmasked"
            );
        }

        #[test]
        fn the_census_shortcuts_agree_with_the_full_scans(
            text in "[0-9 +\\-a-zA-Z%;=:\"_]{0,60}",
            card in proptest::option::of(prop_oneof![
                Just("4111111111111111"),
                Just("4111 1111 1111 1111"),
                Just("password=hunter2"),
                Just("token: abc"),
            ]),
        ) {
            let text = around(text, card);
            let r = Redactor::default();
            // Both full scans, no census in front of either.
            let full = r.redact_pairs(&mask_cards(&text)).into_owned();
            prop_assert_eq!(&r.redact_text(&text), &full);
            prop_assert!(
                {
                    let c = Census::of(text.as_bytes());
                    c.pair_separator || !c.cannot_hold_card() || full == text
                },
                "the shortcut would leave {text:?} as is, the scans give {full:?}"
            );
        }

        #[test]
        fn free_text_redaction_never_panics_and_hides_the_value(
            prefix in ".{0,20}",
            name in prop_oneof![Just("password"), Just("api_key"), Just("cvv"), Just("token")],
            separator in prop_oneof![Just("="), Just(": "), Just("\":\"")],
            secret in "[a-zA-Z0-9]{6,20}",
            suffix in ".{0,20}",
        ) {
            let r = Redactor::default();
            let text = format!("{prefix} {name}{separator}{secret} {suffix}");
            let redacted = r.redact_text(&text);
            prop_assert!(!redacted.contains(&format!("{name}{separator}{secret}")), "{redacted}");
        }

        #[test]
        fn encoded_pans_never_survive(
            prefix in "[a-z ]{0,12}",
            body in proptest::collection::vec(b'0'..=b'9', 12..=18),
            form in 0usize..6,
            suffix in "[a-z ]{0,12}",
        ) {
            let pan = String::from_utf8(with_check_digit(&body)).unwrap();
            let grouped = |sep: &str| {
                pan.as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            let written = match form {
                0 => format!("%20{}%20", grouped("%20")),
                1 => format!("+{}+", grouped("+")),
                2 => format!("%22{}%22", grouped("-")),
                3 => format!("\\u0022{}\\u0022", grouped("\\u0020")),
                4 => pan.bytes().map(|b| format!("%{b:02X}")).collect(),
                _ => format!("%2520{}", grouped("%2520")),
            };
            let text = format!("{prefix}{written}{suffix}");
            for out in [r().redact_text(&text), r().mask_pan(&text), r().redact_query(&format!("q={text}"))] {
                let decoded = Decoded::of(&out, DECODE_DEPTH);
                let digits: String = decoded.text(&out).chars().filter(char::is_ascii_digit).collect();
                prop_assert!(!digits.contains(&pan), "{text} -> {out}");
            }
        }

        #[test]
        fn masking_is_idempotent(text in "[0-9 +\\-a-z%;=:\"\\\\uB^?]{0,60}") {
            let once = r().redact_text(&text).into_owned();
            prop_assert_eq!(r().redact_text(&once), once.clone());
        }

        #[test]
        fn ids_and_timestamps_the_layer_writes_are_untouched(
            trace in any::<[u8; 16]>(),
            span in any::<[u8; 8]>(),
            nanos in 0u64..4_102_444_800_000_000_000,
        ) {
            let ids = OwnIds::new(trace, span);
            let mut t = [0u8; 32];
            let mut s = [0u8; 16];
            crate::propagation::hex_into(&trace, &mut t);
            crate::propagation::hex_into(&span, &mut s);
            let (t, s) = (std::str::from_utf8(&t).unwrap(), std::str::from_utf8(&s).unwrap());
            let request_id = format!("{t}-{s}");
            for id in [t, s, request_id.as_str()] {
                prop_assert_eq!(r().redact_text_sparing(id, Some(&ids)), id);
            }
            let secs = nanos / 1_000_000_000;
            let stamp = format!("2026-12-06T21:38:{:02}.{:09}Z", secs % 60, nanos % 1_000_000_000);
            prop_assert_eq!(r().redact_text(&stamp), stamp.as_str());
        }

        #[test]
        fn never_panics(text in ".*") {
            let _ = Redactor::default().redact_text(&text);
            let _ = r().mask_pan(&text);
            let _ = r().redact_query(&text);
            let _ = r().is_sensitive_name(&text);
        }

        #[test]
        fn embedded_pans_never_survive(
            prefix in "[a-z ]{0,20}( [0-9]{1,3} )?",
            body in proptest::collection::vec(b'0'..=b'9', 12..=18),
            suffix in "[a-z ]{0,20}",
        ) {
            let pan = String::from_utf8(with_check_digit(&body)).unwrap();
            let text = format!("{prefix}{pan}{suffix}");
            let masked = r().mask_pan(&text);
            prop_assert!(!masked.contains(&pan), "{masked}");
            // Overlapping candidates (a stray number before the card) may hide more, never less.
            if !prefix.bytes().any(|b| b.is_ascii_digit()) {
                prop_assert!(masked.contains(&pan[..6]) && masked.contains(&pan[pan.len() - 4..]));
            }
        }
    }
}
