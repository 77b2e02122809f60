//! `OTEL_*` values: every parser returns a value or a reason, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::otel_env(data));
