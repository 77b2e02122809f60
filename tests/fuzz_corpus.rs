//! The committed corpora (`fuzz/corpus/TARGET/`) through every target's body, on stable: a
//! parser regression fails `cargo test`, not only a fuzz campaign.

use std::path::Path;

use paytrace::fuzzing::targets::ALL;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect()
}

#[test]
fn every_target_has_a_corpus_and_passes_it() {
    for &(target, body) in ALL {
        let inputs = corpus(target);
        assert!(inputs.len() >= 5, "{target}: {} inputs", inputs.len());
        for (file, data) in inputs {
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(run.is_ok(), "{target} failed on {file}");
        }
    }
}

#[test]
fn every_target_directory_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "grpc_timeout" && !cfg!(feature = "grpc") {
            continue;
        }
        assert!(
            ALL.iter().any(|(t, _)| *t == name),
            "{name} is not replayed"
        );
    }
}
