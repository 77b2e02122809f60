//! `tracestate`: fields split on `\n`; the parsed list obeys the W3C limits and grammar, agrees
//! with `valid_tracestate`, and the header injected after extraction does too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paytrace::propagation::{valid_tracestate, MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS};
use paytrace_fuzz::{tracestate_key, tracestate_round_trip};

fuzz_target!(|data: &[u8]| {
    let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let parsed = paytrace::fuzzing::tracestate(&fields);
    assert_eq!(parsed.is_some(), valid_tracestate(&fields.join(&b',')));
    if let Some(members) = &parsed {
        assert!(members.len() <= MAX_TRACESTATE_MEMBERS);
        let len: usize = members.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        assert!(len.saturating_sub(1) <= MAX_TRACESTATE_BYTES);
        for (i, (k, v)) in members.iter().enumerate() {
            assert!(tracestate_key(k), "{k:?}");
            assert!((1..=256).contains(&v.len()) && !v.contains([',', '=']), "{v:?}");
            assert!(members[..i].iter().all(|(k2, _)| k2 != k), "duplicate {k}");
        }
    }
    tracestate_round_trip(&fields);
});
