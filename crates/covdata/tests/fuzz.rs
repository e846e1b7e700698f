//! Bounded fuzzing: mutated and truncated real coverage files (fixtures
//! written by a `go build -cover` binary) must never panic the decoders or
//! `load`, and every failure must be a typed error naming the bad file.

use std::path::{Path, PathBuf};

use covdata::{Error, LoadOptions, decode_counters, decode_meta};
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures folder")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..9)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = bytes.len().max(1);
        match m {
            Mutation::Set(p, b) => {
                if !bytes.is_empty() {
                    let i = p % bytes.len();
                    bytes[i] = *b;
                }
            }
            Mutation::Truncate(p) => bytes.truncate(p % len),
            Mutation::Insert(p, b) => {
                let i = p % (bytes.len() + 1);
                bytes.splice(i..i, b.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = p % len;
                let end = (i + n).min(bytes.len());
                if i < end {
                    bytes.drain(i..end);
                }
            }
        }
    }
    bytes
}

/// Decode as much as the file allows; only errors, never panics.
fn decode_any(bytes: &[u8]) {
    let _ = decode_meta::decode(bytes);
    if let Ok(mut cf) = decode_counters::open(bytes) {
        let mut out = Vec::new();
        while let Ok(Some(_)) = cf.next_function(&mut out) {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(file in 0usize..3, muts in proptest::collection::vec(mutation(), 1..6)) {
        let files = fixture_files();
        let bytes = std::fs::read(&files[file % files.len()]).expect("fixture");
        decode_any(&apply(bytes, &muts));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn load_fails_only_with_typed_errors_naming_the_file(file in 0usize..3, muts in proptest::collection::vec(mutation(), 1..4)) {
        let files = fixture_files();
        let tmp = tempfile::tempdir().expect("temp dir");
        let victim = file % files.len();
        for (i, f) in files.iter().enumerate() {
            let mut bytes = std::fs::read(f).expect("fixture");
            if i == victim {
                bytes = apply(bytes, &muts);
            }
            std::fs::write(tmp.path().join(f.file_name().expect("name")), bytes).expect("write");
        }
        let victim_path = tmp.path().join(files[victim].file_name().expect("name"));
        match covdata::load(&[tmp.path().to_path_buf()], &LoadOptions::default()) {
            Ok(loaded) => {
                // Whatever decoded must still format without panicking.
                let mut sink = Vec::new();
                covdata::format::func::write(&loaded.profile, &mut sink).expect("format");
                covdata::format::textfmt::write(&loaded.profile, &mut sink).expect("format");
            }
            Err(Error::Corrupt { path, corruption }) => {
                prop_assert_eq!(&path, &victim_path);
                prop_assert!(!corruption.to_string().is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}

#[test]
fn every_truncation_of_every_fixture_is_an_error_or_ok() {
    for f in fixture_files() {
        let bytes = std::fs::read(&f).expect("fixture");
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            if f.file_name()
                .is_some_and(|x| x.to_string_lossy().starts_with("covmeta"))
            {
                let err =
                    decode_meta::decode(cut).expect_err("a truncated meta file must not decode");
                assert!(err.offset <= n as u64, "offset {} beyond {n}", err.offset);
            } else {
                decode_any(cut);
            }
        }
    }
}
