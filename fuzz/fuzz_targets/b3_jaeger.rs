//! B3 (single and multiple headers) and Jaeger: a context extracted from fuzzed headers, injected
//! and extracted again, is the same context.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::b3_jaeger(data));
