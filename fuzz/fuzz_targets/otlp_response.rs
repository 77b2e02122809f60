//! OTLP response readers: a partial-success report always says something, the gRPC frame of a
//! message reads as the message does (plain or gzip), gunzip stops at its limit; an HTTP status
//! is a success only when 2xx, retried only when 429/502/503/504, never for more than 300 s,
//! and a collector's message (HTTP body or `grpc-message`) is kept short.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::otlp_response(data));
