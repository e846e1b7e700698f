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
    // textfmt reads every package again (percent needs only what was
    // checked, for packages whose blocks do not collapse).
    let err = covdata::format::textfmt::write(&lazy.profile, &mut Vec::new()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("changed while it was being read") && msg.contains("covmeta."),
        "{msg}"
    );
}

/// Blocks that collapse (a function listed twice with the same block, and
/// a function with one block twice): `percent`'s shortcut for plain
/// packages must not apply, and every report agrees with the general path.
/// So do `textfmt`'s plain packages it cannot sort by packed keys alone
/// (blocks of two functions at one place, very long files).
#[test]
fn collapsing_blocks_are_reported_as_the_general_path_does() {
    use covdata::model::{CounterMode, Function, Granularity, Package, Profile, Unit};
    let unit = |line, count| Unit {
        start_line: line,
        start_col: 2,
        end_line: line + 1,
        end_col: 3,
        statements: 2,
        count,
    };
    let function = |name: &str, units| Function {
        name: name.into(),
        file: "example.com/p/p.go".into(),
        literal: false,
        units,
    };
    let profile = Profile {
        mode: CounterMode::Count,
        granularity: Granularity::PerBlock,
        packages: vec![
            Package {
                path: "example.com/p".into(),
                name: "p".into(),
                module_path: "example.com/p".into(),
                functions: vec![
                    function("init", vec![unit(3, 0)]),
                    function("init", vec![unit(3, 4), unit(9, 0)]),
                    function("F", vec![unit(20, 0), unit(20, 1), unit(30, 0)]),
                ],
            },
            Package {
                path: "example.com/q".into(),
                name: "q".into(),
                module_path: "example.com/p".into(),
                functions: vec![function("G", vec![unit(5, 1), unit(7, 0)])],
            },
            // Two functions with a block at one place: the order of the
            // tie comes from their names.
            Package {
                path: "example.com/r".into(),
                name: "r".into(),
                module_path: "example.com/p".into(),
                functions: vec![
                    function("B", vec![unit(5, 7)]),
                    function("A", vec![unit(8, 1), unit(5, 0)]),
                ],
            },
            // Lines too long for one packed sort key.
            Package {
                path: "example.com/s".into(),
                name: "s".into(),
                module_path: "example.com/p".into(),
                functions: vec![function("W", vec![unit(1 << 30, 1), unit(3, 0)])],
            },
        ],
    };
    let tmp = tempfile::tempdir().unwrap();
    covdata::encode::write_dir(&profile, tmp.path()).unwrap();
    let inputs = [tmp.path().to_path_buf()];
    let lazy = load_lazily(&inputs, &LoadOptions::default()).unwrap();
    assert!(matches!(lazy.profile, Coverage::OneBinary(_)));
    let general = load(&inputs, &LoadOptions::default()).unwrap().profile;
    type Writer = fn(&dyn covdata::model::Packages, &mut dyn std::io::Write) -> std::io::Result<()>;
    for write in [
        covdata::format::percent::write as Writer,
        covdata::format::textfmt::write,
        covdata::format::func::write,
    ] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&lazy.profile, &mut a).unwrap();
        write(&general, &mut b).unwrap();
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    }
    // The collapsed blocks count once: p has 4 distinct blocks of 2
    // statements, 2 of them run.
    let mut percent = Vec::new();
    covdata::format::percent::write(&lazy.profile, &mut percent).unwrap();
    assert!(
        String::from_utf8_lossy(&percent)
            .contains("example.com/p\t\tcoverage: 50.0% of statements"),
        "{}",
        String::from_utf8_lossy(&percent)
    );
}
