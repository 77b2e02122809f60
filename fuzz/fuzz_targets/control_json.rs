//! Runtime-control JSON: any body is applied or refused with a reason, never a panic, and the
//! keep ratio in force stays within [0, 1].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| paytrace::fuzzing::targets::control_json(data));
