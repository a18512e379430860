//! Replays every seed corpus through its target body, so the targets never rot and every
//! seed is checked on the stable toolchain in the ordinary test suite.
use std::path::Path;

#[test]
fn every_target_has_a_seed_corpus_and_replays_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, run) in plexus_fuzz::TARGETS {
        let dir = root.join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_file() {
                run(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "target {name} has an empty seed corpus");
    }
}
