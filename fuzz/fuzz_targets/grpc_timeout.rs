//! `grpc-timeout`: accepted only as 1–8 digits and a unit, and then exactly that duration.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use paytrace_fuzz::headers;

fuzz_target!(|data: &[u8]| {
    let h = headers("grpc-timeout", &[data]);
    let Some(d) = paytrace::fuzzing::grpc_timeout(&h) else {
        return;
    };
    assert!((2..=9).contains(&data.len()), "{data:?}");
    let (digits, unit) = data.split_at(data.len() - 1);
    assert!(digits.iter().all(u8::is_ascii_digit));
    let n: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap();
    let want = match unit[0] {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        u => panic!("unit {u}"),
    };
    assert_eq!(d, want);
});
