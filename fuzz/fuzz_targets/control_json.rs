//! Runtime-control JSON: any body is applied or refused with a reason, never a panic, and the
//! keep ratio in force stays within [0, 1].
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let (result, ratio, _filter) = paytrace::fuzzing::control_apply(body);
    if let Err(reason) = result {
        assert!(!reason.is_empty());
    }
    if let Some(r) = ratio {
        assert!((0.0..=1.0).contains(&r), "{body:?} -> {r}");
    }
});
