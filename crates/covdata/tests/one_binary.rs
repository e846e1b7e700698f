//! The one-binary view (`load_lazily`, packages decoded as reported) gives
//! what the general path builds, and notices a meta-data file that changes
//! under it.

use std::path::{Path, PathBuf};

use covdata::merge::counters::{Layout, Tally};
use covdata::merge::groups::ProfileBuilder;
use covdata::{Coverage, LoadOptions, PkgFilter, decode_counters, load, load_lazily, read_meta};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The profile the multi-binary path (ProfileBuilder) makes of the fixture.
fn built_by_hand(filter: Option<&PkgFilter>) -> covdata::model::Profile {
    let mut metas = Vec::new();
    let mut counters = Vec::new();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("covmeta.") {
            metas.push(p);
        } else if name.starts_with("covcounters.") {
            counters.push(p);
        }
    }
    assert_eq!(metas.len(), 1, "the fixture is one binary");
    let meta = read_meta(&metas[0]).unwrap();
    let layout = Layout::new(&meta);
    let mut tally = Tally::new(&layout, meta.mode);
    for c in &counters {
        let bytes = std::fs::read(c).unwrap();
        let mut file = decode_counters::open(&bytes).unwrap();
        tally.add_file(&layout, &mut file).unwrap();
    }
    let merged = tally.finish();
    let mut builder = ProfileBuilder::new();
    builder.add_group(&meta, &layout, &merged.counts, filter);
    builder.finish().unwrap()
}

#[test]
fn one_binary_gives_what_the_general_path_builds() {
    for filter in [
        None,
        Some(PkgFilter::parse(
            "example.com/multipkg/calc,example.com/multipkg/internal/...",
        )),
    ] {
        let options = LoadOptions {
            packages: filter.clone(),
            ..LoadOptions::default()
        };
        let lazy = load_lazily(&[fixtures()], &options).unwrap();
        assert!(matches!(lazy.profile, Coverage::OneBinary(_)));
        let expected = built_by_hand(filter.as_ref());
        let mut text = (Vec::new(), Vec::new());
        covdata::format::textfmt::write(&lazy.profile, &mut text.0).unwrap();
        covdata::format::textfmt::write(&expected, &mut text.1).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text.0),
            String::from_utf8_lossy(&text.1)
        );
        assert_eq!(load(&[fixtures()], &options).unwrap().profile, expected);
    }
}

#[test]
fn a_meta_file_changed_while_reporting_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut meta = PathBuf::new();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        let to = tmp.path().join(p.file_name().unwrap());
        std::fs::copy(&p, &to).unwrap();
        if to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("covmeta.")
        {
            meta = to;
        }
    }
    let lazy = load_lazily(&[tmp.path().to_path_buf()], &LoadOptions::default()).unwrap();
    // Rewritten in place (same inode, as a second writer would): the last
    // byte belongs to the last package.
    let mut bytes = std::fs::read(&meta).unwrap();
    *bytes.last_mut().unwrap() ^= 0x55;
    std::fs::write(&meta, &bytes).unwrap();
    let err = covdata::format::percent::write(&lazy.profile, &mut Vec::new()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("changed while it was being read") && msg.contains("covmeta."),
        "{msg}"
    );
}
