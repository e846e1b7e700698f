//! Encoding round trips: what the encoder writes, in every counter flavor
//! and with extra segments, loads back to the same profile.

use std::path::{Path, PathBuf};

use covdata::decode_counters::Flavor;
use covdata::encode::{self, CounterEntry, EncodeOptions, Segment};
use covdata::model::{CounterMode, Granularity};
use covdata::{LoadOptions, Warning, load};

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

/// Counter sums saturate at `u32::MAX` with a warning, as Go's `cmerge`
/// does (the reader keeps wider sums and clamps at the end), for one-byte
/// and longer values alike, and a file too big for the reader's fast path
/// (over 16 MB) merges like any other.
#[test]
fn counter_sums_saturate_as_gos_and_huge_files_merge_alike() {
    let mut profile = load(&[fixtures()], &LoadOptions::default())
        .expect("load fixtures")
        .profile;
    profile.mode = CounterMode::Atomic;
    let meta = encode::encode_meta(&profile);
    let hex: String = meta.hash.iter().map(|b| format!("{b:02x}")).collect();
    // Every function, every block set to `value` (meta numbering).
    let all = |value: u32| -> Vec<CounterEntry> {
        let mut v = Vec::new();
        for (pi, pkg) in profile.packages.iter().enumerate() {
            for (fi, f) in pkg.functions.iter().enumerate() {
                v.push(CounterEntry {
                    package: pi as u32,
                    function: fi as u32,
                    counters: vec![value; f.units.len()],
                });
            }
        }
        v
    };
    let run = |files: Vec<Vec<CounterEntry>>| {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::write(tmp.path().join(format!("covmeta.{hex}")), &meta.bytes).expect("write meta");
        for (i, entries) in files.into_iter().enumerate() {
            let seg = Segment {
                entries,
                ..Segment::default()
            };
            let bytes = encode::encode_counters(meta.hash, Flavor::Uleb128, &[seg]);
            std::fs::write(tmp.path().join(format!("covcounters.{hex}.{i}.1")), bytes)
                .expect("write counters");
        }
        load(&[tmp.path().to_path_buf()], &LoadOptions::default()).expect("load")
    };
    let counts = |l: &covdata::Loaded| -> Vec<u32> {
        l.profile
            .packages
            .iter()
            .flat_map(|p| &p.functions)
            .flat_map(|f| &f.units)
            .map(|u| u.count)
            .collect()
    };
    let overflowed = |l: &covdata::Loaded| {
        l.warnings
            .iter()
            .any(|w| matches!(w, Warning::CounterOverflow { .. }))
    };

    // Go's rule: a running sum saturating at u32::MAX.
    let go = |values: &[u32]| values.iter().fold(0u32, |a, &v| a.saturating_add(v));
    for values in [
        vec![100, 4_000_000_000],
        vec![100, 3_000_000_000, 2_000_000_000],
        vec![127; 40],
    ] {
        let loaded = run(values.iter().map(|&v| all(v)).collect());
        let want = go(&values);
        assert!(counts(&loaded).iter().all(|&c| c == want), "{values:?}");
        let total: u64 = values.iter().map(|&v| u64::from(v)).sum();
        assert_eq!(
            overflowed(&loaded),
            total > u64::from(u32::MAX),
            "{values:?}"
        );
    }

    // Over 16 MB: one function listed with 17 million one-byte values (all
    // but its blocks' skipped), next to an ordinary file.
    let first = &profile.packages[0].functions[0];
    let huge = vec![CounterEntry {
        package: 0,
        function: 0,
        counters: vec![3; 17_000_000],
    }];
    let loaded = run(vec![huge, all(5)]);
    let got = &loaded.profile.packages[0];
    let f = got
        .functions
        .iter()
        .find(|f| f.name == first.name && f.file == first.file)
        .expect("the function");
    assert!(!f.units.is_empty());
    assert!(f.units.iter().all(|u| u.count == 8), "{:?}", f.units);
    assert!(!overflowed(&loaded));
}
