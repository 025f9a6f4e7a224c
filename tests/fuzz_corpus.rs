//! Replays every fuzz corpus file in `fuzz/corpus/<target>/` through the same entry point the
//! cargo-fuzz target calls, so stable CI exercises the fuzzers' findings and seeds.

use std::path::Path;

#[path = "../fuzz/targets.rs"]
mod targets;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    count
}

#[test]
fn decode_validate_corpus_replays_cleanly() {
    let replayed = replay("decode_validate", targets::decode_validate);
    assert!(replayed >= 10, "corpus has only {replayed} files");
}

#[cfg(feature = "net")]
#[test]
fn wire_messages_corpus_replays_cleanly() {
    let replayed = replay("wire_messages", targets::wire_messages);
    assert!(replayed >= 5, "corpus has only {replayed} files");
}

#[test]
fn pool_ops_corpus_replays_cleanly() {
    let replayed = replay("pool_ops", targets::pool_ops);
    assert!(replayed >= 5, "corpus has only {replayed} files");
}
