//! OTLP response readers: a partial-success report always says something, the gRPC frame of a
//! message reads as the message does (plain or gzip), gunzip stops at its limit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::otlp_response(data));
