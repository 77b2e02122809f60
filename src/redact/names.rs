//! Sensitive names: the word lists, and how a field, parameter or header name is split into
//! words to be matched against them.

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

/// Whether `name` is sensitive under `words`: any of its words (see [`for_each_word`]) is one
/// of them, or the whole name is one of them or a known compound.
pub(super) fn is_sensitive(words: &[String], name: &str) -> bool {
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

/// A new policy's [`Redactor::policy_id`](super::Redactor::policy_id).
pub(super) fn next_policy_id() -> u64 {
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
