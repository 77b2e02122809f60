//! `traceparent`: extraction agrees with `valid_traceparent`, and a valid value injected back
//! carries the same trace id, span id and known flags (sampled, random).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::traceparent(data));
