//! Encoding round trips: what the encoder writes, in every counter flavor
//! and with extra segments, loads back to the same profile.

use std::path::{Path, PathBuf};

use covdata::decode_counters::Flavor;
use covdata::encode::{self, EncodeOptions, Segment};
use covdata::model::Granularity;
use covdata::{LoadOptions, load};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn fixture_loads_and_round_trips_in_every_flavor() {
    let original = load(&[fixtures()], &LoadOptions::default()).expect("load fixtures");
    assert!(original.warnings.is_empty(), "{:?}", original.warnings);
    assert_eq!(original.profile.packages.len(), 3);
    for flavor in [
        Flavor::Uleb128,
        Flavor::RawLittleEndian,
        Flavor::RawBigEndian,
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let opts = EncodeOptions {
            flavor,
            args: original.args.clone(),
            pid: 42,
        };
        encode::write_dir_with(&original.profile, tmp.path(), &opts).expect("encode");
        let again = load(&[tmp.path().to_path_buf()], &LoadOptions::default()).expect("reload");
        assert_eq!(again.profile, original.profile, "{flavor:?}");
        assert_eq!(again.args, original.args);
    }
}

#[test]
fn only_the_first_segment_is_read() {
    let original = load(&[fixtures()], &LoadOptions::default()).expect("load fixtures");
    let tmp = tempfile::tempdir().expect("temp dir");
    let meta = encode::encode_meta(&original.profile);
    let hex: String = meta.hash.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(tmp.path().join(format!("covmeta.{hex}")), &meta.bytes).expect("write meta");
    let first = Segment {
        entries: encode::counter_entries(&original.profile),
        ..Segment::default()
    };
    let mut second = first.clone();
    for e in &mut second.entries {
        e.counters.iter_mut().for_each(|c| *c += 1000);
    }
    let bytes = encode::encode_counters(meta.hash, Flavor::Uleb128, &[first, second]);
    std::fs::write(tmp.path().join(format!("covcounters.{hex}.1.2")), bytes)
        .expect("write counters");
    let again = load(&[tmp.path().to_path_buf()], &LoadOptions::default()).expect("reload");
    assert_eq!(again.profile, original.profile);
}

#[test]
fn per_function_granularity_round_trips() {
    let mut profile = load(&[fixtures()], &LoadOptions::default())
        .expect("load")
        .profile;
    profile.granularity = Granularity::PerFunc;
    let tmp = tempfile::tempdir().expect("temp dir");
    encode::write_dir(&profile, tmp.path()).expect("encode");
    let again = load(&[tmp.path().to_path_buf()], &LoadOptions::default()).expect("reload");
    assert_eq!(again.profile, profile);
}
