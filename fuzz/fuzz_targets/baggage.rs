//! `baggage`: fields split on `\n`; what goes to the SDK holds at most 64 valid members, and the
//! extracted baggage at most 64 entries.
#![no_main]
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use opentelemetry::baggage::BaggageExt as _;
use paytrace::propagation::{extract_context, valid_baggage, MAX_BAGGAGE_MEMBERS};
use paytrace_fuzz::{headers, install};

fuzz_target!(|data: &[u8]| {
    install();
    let fields: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Some(list) = paytrace::fuzzing::baggage(&fields) {
        let members: Vec<&str> = list.split(',').collect();
        assert!(members.len() <= MAX_BAGGAGE_MEMBERS, "{} members", members.len());
        for m in members {
            assert!(valid_baggage(m.as_bytes()), "{m:?} in {list:?}");
        }
    }
    let h: HeaderMap = headers("baggage", &fields);
    let cx = extract_context(&h);
    assert!(cx.baggage().len() <= MAX_BAGGAGE_MEMBERS);
});
