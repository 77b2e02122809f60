//! Redaction: no Luhn-valid 13–19 digit run of the input survives `mask_pan` or `redact_text`,
//! masking lengthens text only by a byte per track sentinel, and `redact_query` never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paytrace::redact::Redactor;

fuzz_target!(|data: &[u8]| {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    let r = R.get_or_init(Redactor::default);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let masked = r.mask_pan(text);
    let redacted = r.redact_text(text);
    paytrace_fuzz::check_redaction(text, &masked, &redacted);
    let _ = r.redact_query(text);
    let _ = r.redact_value("note", text);
});
