//! `baggage`: fields split on `\n`; what goes to the SDK holds at most 64 valid members, and the
//! extracted baggage at most 64 entries.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::baggage(data));
