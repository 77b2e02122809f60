//! `tracestate`: fields split on `\n`; the parsed list obeys the W3C limits and grammar, agrees
//! with `valid_tracestate`, and the header injected after extraction does too.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::tracestate(data));
