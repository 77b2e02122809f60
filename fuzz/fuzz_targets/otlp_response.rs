//! OTLP response readers: a partial-success report always says something, the gRPC frame of a
//! message reads as the message does (plain or gzip), gunzip stops at its limit.
#![no_main]
use std::io::Write as _;

use libfuzzer_sys::fuzz_target;
use paytrace::fuzzing::{gunzip, partial_success, partial_success_grpc, MAX_RESPONSE};

fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut f = vec![flag];
    f.extend_from_slice(&(message.len() as u32).to_be_bytes());
    f.extend_from_slice(message);
    f
}

fuzz_target!(|data: &[u8]| {
    let plain = partial_success(data);
    if let Some((rejected, message)) = &plain {
        assert!(*rejected > 0 || !message.is_empty());
    }
    let _ = partial_success_grpc(data);
    assert_eq!(partial_success_grpc(&frame(0, data)), plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(partial_success_grpc(&frame(1, &gz)), plain);
    if let Some(out) = gunzip(data) {
        assert!(out.len() <= MAX_RESPONSE);
    }
});
