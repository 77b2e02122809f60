//! Redaction: no Luhn-valid 13–19 digit run of the input survives `mask_pan` or `redact_text`,
//! masking lengthens text only by a byte per track sentinel, and `redact_query` never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::redact(data));
