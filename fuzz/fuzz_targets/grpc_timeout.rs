//! `grpc-timeout`: accepted only as 1–8 digits and a unit, and then exactly that duration.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::grpc_timeout(data));
