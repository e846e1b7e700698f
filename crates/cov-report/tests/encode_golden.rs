//! The encoder against the oracle: files covdata writes (every counter
//! flavor, extra segments, per-function granularity) are read by
//! `go tool covdata` exactly as cov-report reads them, and report like the
//! data they were made from.

mod common;

use std::path::Path;

use common::*;
use covdata::decode_counters::Flavor;
use covdata::encode::{self, EncodeOptions, Segment};
use covdata::model::Granularity;
use covdata::{LoadOptions, load};

fn real_data(tmp: &Path) -> std::path::PathBuf {
    let d = tmp.join("cov");
    let bin = build("multipkg", "count", false);
    run(&bin, &d, &["add", "loop"]);
    run(&bin, &d, &["div", "x"]);
    d
}

#[test]
fn every_flavor_reads_back_in_go() {
    let tmp = tempfile::tempdir().unwrap();
    let d = real_data(tmp.path());
    let loaded = load(std::slice::from_ref(&d), &LoadOptions::default()).unwrap();
    for flavor in [
        Flavor::Uleb128,
        Flavor::RawLittleEndian,
        Flavor::RawBigEndian,
    ] {
        let out = tmp.path().join(format!("{flavor:?}"));
        let opts = EncodeOptions {
            flavor,
            args: loaded.args.clone(),
            pid: 7,
        };
        encode::write_dir_with(&loaded.profile, &out, &opts).unwrap();
        assert_same_all(&[s(&out)], &[&out], None);
        for cmd in ["percent", "func"] {
            assert_eq!(
                go_covdata(cmd, &[&out], &[]).stdout,
                go_covdata(cmd, &[&d], &[]).stdout,
                "{flavor:?} {cmd}"
            );
        }
    }
}

#[test]
fn go_and_we_read_only_the_first_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let d = real_data(tmp.path());
    let profile = load(std::slice::from_ref(&d), &LoadOptions::default())
        .unwrap()
        .profile;
    let out = tmp.path().join("segments");
    std::fs::create_dir_all(&out).unwrap();
    let meta = encode::encode_meta(&profile);
    let hex: String = meta.hash.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(out.join(format!("covmeta.{hex}")), &meta.bytes).unwrap();
    // The second segment covers everything; it must be ignored.
    let first = Segment {
        entries: encode::counter_entries(&profile),
        ..Segment::default()
    };
    let mut all = profile.clone();
    all.packages
        .iter_mut()
        .flat_map(|p| &mut p.functions)
        .flat_map(|f| &mut f.units)
        .for_each(|u| u.count += 5);
    let second = Segment {
        entries: encode::counter_entries(&all),
        ..Segment::default()
    };
    let bytes = encode::encode_counters(meta.hash, Flavor::Uleb128, &[first, second]);
    std::fs::write(out.join(format!("covcounters.{hex}.1.1")), bytes).unwrap();
    assert_same_all(&[s(&out)], &[&out], None);
    assert_eq!(
        go_covdata("percent", &[&out], &[]).stdout,
        go_covdata("percent", &[&d], &[]).stdout
    );
}

#[test]
fn per_function_granularity_reads_back_in_go() {
    let tmp = tempfile::tempdir().unwrap();
    let d = real_data(tmp.path());
    let mut profile = load(std::slice::from_ref(&d), &LoadOptions::default())
        .unwrap()
        .profile;
    // One unit per function, as cmd/cover's perfunc mode emits.
    profile.granularity = Granularity::PerFunc;
    for f in profile.packages.iter_mut().flat_map(|p| &mut p.functions) {
        let mut u = f.units[0];
        u.statements = f.units.iter().map(|u| u.statements).sum();
        u.count = f.units.iter().map(|u| u.count).max().unwrap_or(0);
        f.units = vec![u];
    }
    let out = tmp.path().join("perfunc");
    encode::write_dir(&profile, &out).unwrap();
    assert_same_all(&[s(&out)], &[&out], None);
    // A perfunc group next to a perblock one: Go and we both refuse.
    let mixed = cov_report(&["percent", s(&out), s(&d)]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("granularity clash"));
    assert!(!go_covdata("percent", &[&out, &d], &[]).status.success());
}
