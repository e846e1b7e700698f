//! `cov-report` report files, gate, diff, subtract and intersect, checked
//! against `go tool covdata` on real coverage of a small Go module
//! (`crates/covformats/tests/data/goapp`, built once per test binary).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

struct Fixture {
    tmp: tempfile::TempDir,
    module: PathBuf,
    /// d0: three runs; d1: one run; d2: another run.
    dirs: [PathBuf; 3],
    /// Two different binaries; the first group (by meta path) only in m0.
    multi: [PathBuf; 2],
}

fn go() -> Command {
    toolchain::go_command().unwrap_or_else(|e| panic!("{e}"))
}

fn cov_report() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cov-report"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run `cargo xtask tools`)"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn build(module: &Path, bin: &Path) {
    run_ok(
        go().args(["build", "-cover", "-covermode=count", "-o"])
            .arg(bin)
            .arg(".")
            .current_dir(module),
    );
}

fn exercise(bin: &Path, dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    run_ok(Command::new(bin).args(args).env("GOCOVERDIR", dir));
}

/// `covmeta.<hash>` name in a coverage folder.
fn meta_name(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("covmeta."))
        .expect("a meta file")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tmp");
        let module = toolchain::workspace_root().join("crates/covformats/tests/data/goapp");
        let bin = tmp.path().join("goapp");
        build(&module, &bin);
        let dirs = ["d0", "d1", "d2"].map(|d| tmp.path().join(d));
        exercise(&bin, &dirs[0], &["square", "max", "hello"]);
        exercise(&bin, &dirs[0], &["circle", ""]);
        exercise(&bin, &dirs[0], &[]);
        exercise(&bin, &dirs[1], &["square", "hello"]);
        exercise(&bin, &dirs[2], &["square", "circle"]);

        // A second, different build of the module (one more function).
        let variant = tmp.path().join("variant");
        copy_dir(&module, &variant);
        let main = variant.join("main.go");
        let mut text = std::fs::read_to_string(&main).expect("main.go");
        text.push_str("\nfunc variantOnly() int { return 7 }\n");
        std::fs::write(&main, text).expect("write variant");
        let bin2 = tmp.path().join("goapp2");
        build(&variant, &bin2);
        let probe = tmp.path().join("probe");
        exercise(&bin, &probe.join("a"), &[]);
        exercise(&bin2, &probe.join("b"), &[]);
        // Go carries its folder index across binaries and panics when a
        // later binary has files of an earlier folder: give the first
        // binary (smallest meta name) data in m0 only.
        let (first, second) = if meta_name(&probe.join("a")) < meta_name(&probe.join("b")) {
            (&bin, &bin2)
        } else {
            (&bin2, &bin)
        };
        let multi = ["m0", "m1"].map(|d| tmp.path().join(d));
        exercise(first, &multi[0], &["square", "max"]);
        exercise(second, &multi[0], &["circle", "hello", "max"]);
        exercise(second, &multi[1], &["circle"]);
        Fixture {
            tmp,
            module,
            dirs,
            multi,
        }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

fn go_covdata(sub: &str, dir: &Path) -> String {
    let out = run_ok(
        go().args(["tool", "covdata", sub])
            .arg(format!("-i={}", dir.display())),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fresh(name: &str) -> PathBuf {
    let f = fixture();
    let p = f.tmp.path().join(name);
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Runs Go's and our `op` over `inputs` and compares what `go tool covdata`
/// reports for the two output folders.
fn same_as_go(op: &str, inputs: &[&PathBuf], tag: &str) {
    let go_out = fresh(&format!("go-{tag}"));
    let our_out = fresh(&format!("ours-{tag}"));
    std::fs::create_dir_all(&go_out).expect("mkdir");
    let list = inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    run_ok(
        go().args(["tool", "covdata", op])
            .arg(format!("-i={list}"))
            .arg(format!("-o={}", go_out.display())),
    );
    run_ok(cov_report().arg(op).arg("-o").arg(&our_out).args(inputs));
    for sub in ["percent", "func"] {
        let (theirs, ours) = (go_covdata(sub, &go_out), go_covdata(sub, &our_out));
        assert!(!theirs.is_empty());
        assert_eq!(ours, theirs, "{op} {tag}: `go tool covdata {sub}` differs");
    }
    let count = |d: &Path| std::fs::read_dir(d).map_or(0, |r| r.count());
    assert_eq!(count(&our_out), count(&go_out), "{op} {tag}: file count");
}

#[test]
fn subtract_and_intersect_match_go() {
    let f = fixture();
    let [d0, d1, d2] = &f.dirs;
    same_as_go("subtract", &[d0, d1], "sub01");
    same_as_go("subtract", &[d1, d0], "sub10");
    same_as_go("intersect", &[d0, d1], "int01");
    same_as_go("intersect", &[d0, d1, d2], "int012");
    same_as_go("subtract", &[&f.multi[0], &f.multi[1]], "sub-multi");
    // The subtraction really removed something.
    assert_ne!(
        go_covdata("percent", d0),
        go_covdata("percent", &fresh_out("sub01"))
    );
}

fn fresh_out(tag: &str) -> PathBuf {
    fixture().tmp.path().join(format!("ours-{tag}"))
}

#[test]
fn subtract_wants_two_folders() {
    let f = fixture();
    let out = run(cov_report()
        .arg("subtract")
        .arg("-o")
        .arg(fresh("bad-sub"))
        .args(&f.dirs));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly two"));
}

#[test]
fn formats_are_written_then_the_gate_fails_listing_each_shortfall() {
    let f = fixture();
    let out_dir = fresh("reports-gate");
    let out = run(cov_report()
        .args([
            "--format",
            "html,lcov",
            "--format",
            "cobertura",
            "--format=json",
            "--format",
            "markdown",
            "--format",
            "textfmt",
            "--fail-under",
            "99",
            "--fail-under-pkg",
            "example.com/goapp/shapes=95",
            "--fail-under-pkg",
            "example.com/goapp/...=1",
            "--source-root",
        ])
        .arg(&f.module)
        .arg("-o")
        .arg(&out_dir)
        .arg(&f.dirs[0]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("total:") && stderr.contains("--fail-under 99"),
        "{stderr}"
    );
    assert!(stderr.contains("example.com/goapp/shapes:"), "{stderr}");
    assert!(!stderr.contains("example.com/goapp/...="), "{stderr}");
    // stdout is still `percent`, byte for byte.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        go_covdata("percent", &f.dirs[0])
    );
    for name in [
        "coverage.html",
        "lcov.info",
        "cobertura.xml",
        "coverage.json",
        "coverage.md",
        "coverage.txt",
    ] {
        let p = out_dir.join(name);
        assert!(
            p.is_file() && std::fs::metadata(&p).map_or(0, |m| m.len()) > 0,
            "{name}"
        );
    }
    let go_txt = f.tmp.path().join("go-textfmt.txt");
    run_ok(
        go().args(["tool", "covdata", "textfmt"])
            .arg(format!("-i={}", f.dirs[0].display()))
            .arg(format!("-o={}", go_txt.display())),
    );
    assert_eq!(
        std::fs::read(out_dir.join("coverage.txt")).expect("ours"),
        std::fs::read(go_txt).expect("go's")
    );
    // The same gate with reachable thresholds passes.
    run_ok(
        cov_report()
            .args([
                "--fail-under",
                "1",
                "--fail-under-pkg",
                "example.com/goapp/...=1",
            ])
            .arg(&f.dirs[0]),
    );
    // A bad threshold is a usage error.
    let bad = run(cov_report().args(["--fail-under", "120"]).arg(&f.dirs[0]));
    assert_eq!(bad.status.code(), Some(2));
}

/// Two different builds of one program (the profile is built whole, not
/// read lazily): the text profile written beside the other formats is Go's.
#[test]
fn textfmt_beside_other_formats_of_two_programs_is_gos() {
    let f = fixture();
    let out_dir = fresh("reports-two-programs");
    let inputs = format!("{},{}", f.multi[0].display(), f.multi[1].display());
    let out = run_ok(
        cov_report()
            .args(["--format", "textfmt,lcov", "--source-root"])
            .arg(&f.module)
            .arg("-o")
            .arg(&out_dir)
            .args(["-i", &inputs]),
    );
    let go_txt = f.tmp.path().join("go-textfmt-multi.txt");
    run_ok(
        go().args(["tool", "covdata", "textfmt"])
            .arg(format!("-i={inputs}"))
            .arg(format!("-o={}", go_txt.display())),
    );
    assert_eq!(
        std::fs::read(out_dir.join("coverage.txt")).expect("ours"),
        std::fs::read(go_txt).expect("go's")
    );
    assert!(out_dir.join("lcov.info").is_file());
    let percent = go()
        .args(["tool", "covdata", "percent"])
        .arg(format!("-i={inputs}"))
        .output()
        .expect("go");
    assert_eq!(out.stdout, percent.stdout);
}

#[test]
fn diff_lists_exactly_the_packages_whose_percent_changed() {
    let f = fixture();
    let out = run_ok(cov_report().arg("diff").arg(&f.dirs[1]).arg(&f.dirs[0]));
    let text = String::from_utf8_lossy(&out.stdout);
    let base = go_covdata("percent", &f.dirs[1]);
    let new = go_covdata("percent", &f.dirs[0]);
    let pkgs = |s: &str| -> Vec<(String, String)> {
        s.lines()
            .filter_map(|l| {
                let mut it = l.split('\t').filter(|x| !x.is_empty());
                Some((it.next()?.to_string(), it.next()?.to_string()))
            })
            .collect()
    };
    let (b, n) = (pkgs(&base), pkgs(&new));
    let package_section = text.split("\n\n").next().expect("package table");
    for (pkg, cov) in &n {
        let changed = b.iter().find(|(p, _)| p == pkg).map(|(_, c)| c) != Some(cov);
        let listed = package_section
            .lines()
            .any(|l| l.split_whitespace().next() == Some(pkg.as_str()));
        assert_eq!(listed, changed, "{pkg}: {text}");
    }
    assert!(text.contains("total:"), "{text}");
    assert!(text.contains("function"), "{text}");

    // --output json lists the same packages.
    let out = run_ok(
        cov_report()
            .args(["diff", "--output", "json"])
            .arg(&f.dirs[1])
            .arg(&f.dirs[0]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let json_pkgs: Vec<&str> = v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let text_pkgs: Vec<&str> = package_section
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !n.starts_with('('))
        .collect();
    assert_eq!(json_pkgs, text_pkgs);
}
