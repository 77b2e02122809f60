//! `OTEL_*` values: every parser returns a value or a reason, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        let results = paytrace::fuzzing::otel_values(value);
        // parse_ratio: an accepted ratio lies within [0, 1].
        if let Some(r) = results[3].strip_prefix("Ok(").and_then(|r| r.strip_suffix(')')) {
            let r: f64 = r.parse().unwrap();
            assert!((0.0..=1.0).contains(&r), "{value:?} -> {r}");
        }
    }
});
