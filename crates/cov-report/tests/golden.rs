//! Golden tests: cov-report against `go tool covdata` on data written by
//! real Go programs, byte for byte.

mod common;

use common::*;

#[test]
fn http_service_single_package() {
    let bin = build("httpsvc", "count", false);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run_http_service(&bin, &d, &["gopher", "", "a-rather-long-name-indeed"]);
    assert_same_all(&[s(&d)], &[&d], None);
}

#[test]
fn multi_package_coverpkg_all_three_processes() {
    let bin = build("multipkg", "atomic", true);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    for args in [
        &["add", "mul"][..],
        &["div", "x"],
        &["loop", "add", "k1"],
        &[],
    ] {
        run(&bin, &d, args);
    }
    assert_eq!(files_with_prefix(&d, "covcounters.").len(), 4);
    assert_same_all(&[s(&d)], &[&d], None);
}

#[test]
fn every_counter_mode() {
    for mode in ["set", "count", "atomic"] {
        let bin = build("multipkg", mode, false);
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("cov");
        run(&bin, &d, &["loop", "add"]);
        run(&bin, &d, &["loop", "div", "k3"]);
        let out = cov_report(&["textfmt", "-o", s(&tmp.path().join("p.txt")), s(&d)]);
        assert!(out.status.success());
        let text = std::fs::read_to_string(tmp.path().join("p.txt")).unwrap();
        assert!(text.starts_with(&format!("mode: {mode}\n")), "{text}");
        assert_same_all(&[s(&d)], &[&d], None);
    }
}

#[test]
fn several_flushes_with_write_counters_dir() {
    let bin = build("flusher", "atomic", false);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run(&bin, &d, &[]);
    // Three explicit flushes plus the one at exit.
    assert!(files_with_prefix(&d, "covcounters.").len() >= 4);
    assert_same_all(&[s(&d)], &[&d], None);
}

#[test]
fn two_binaries_in_one_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run_http_service(&build("httpsvc", "count", false), &d, &["x"]);
    run(&build("multipkg", "count", false), &d, &["add", "loop"]);
    assert_eq!(files_with_prefix(&d, "covmeta.").len(), 2);
    assert_same_all(&[s(&d)], &[&d], None);
}

#[test]
fn nested_per_pod_folders() {
    // reports/coverage/<namespace>/<pod>/<container>/ as cov-collect lays it out.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("coverage");
    let leaves = [
        root.join("default/web-7d9f-abcde/app"),
        root.join("default/web-7d9f-fghij/app"),
        root.join("jobs/batch-x1/worker"),
    ];
    let multi = build("multipkg", "count", false);
    run(&multi, &leaves[0], &["add"]);
    run(&multi, &leaves[1], &["mul", "loop"]);
    run_http_service(&build("httpsvc", "count", false), &leaves[2], &["pod"]);
    let go_dirs: Vec<&std::path::Path> = leaves.iter().map(|p| p.as_path()).collect();
    assert_same_all(&[s(&root)], &go_dirs, None);
    // The same folder given twice (and a parent of it) is read once.
    assert_same(
        "percent",
        &[s(&root), s(&leaves[0]), "-i", s(&root)],
        &go_dirs,
        None,
    );
}

#[test]
fn mode_clash_textfmt_refuses_percent_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run(&build("multipkg", "set", false), &d, &["add"]);
    run(&build("multipkg", "count", false), &d, &["loop", "mul"]);
    for cmd in ["percent", "func", "pkglist"] {
        assert_same(cmd, &[s(&d)], &[&d], None);
    }
    let out_file = tmp.path().join("p.txt");
    let go = go_covdata(
        "textfmt",
        &[&d],
        &[&format!("-o={}", tmp.path().join("go.txt").display())],
    );
    assert!(
        !go.status.success(),
        "go tool covdata textfmt accepted a mode clash"
    );
    let ours = cov_report(&["textfmt", "-o", s(&out_file), s(&d)]);
    assert_eq!(ours.status.code(), Some(2));
    let err = String::from_utf8_lossy(&ours.stderr);
    assert!(
        err.contains("counter mode clash") && err.contains("covmeta."),
        "{err}"
    );
    assert!(
        !out_file.exists(),
        "a refused textfmt must not leave a file"
    );
}

#[test]
fn pkg_filter_matches_go() {
    let bin = build("multipkg", "atomic", true);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run(&bin, &d, &["add", "loop", "k2"]);
    for pat in [
        "example.com/multipkg/...",
        "fmt,strconv",
        "...store",
        "internal/...",
        "example.com/multipkg",
    ] {
        assert_same_all(&[s(&d)], &[&d], Some(pat));
    }
    // Matching nothing: Go prints nothing for percent and pkglist.
    for cmd in ["percent", "pkglist", "func"] {
        assert_same(cmd, &[s(&d)], &[&d], Some("no/such/pkg"));
    }
}

#[test]
fn merge_output_reads_like_the_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run_http_service(&build("httpsvc", "count", false), &d, &["m"]);
    let multi = build("multipkg", "count", false);
    run(&multi, &d, &["add"]);
    run(&multi, &d, &["div", "loop"]);
    let merged = tmp.path().join("merged");
    let out = cov_report(&["merge", "-o", s(&merged), s(&d)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As Go's merge: one pair per binary; --pcombine makes it one pair.
    assert_eq!(files_with_prefix(&merged, "covmeta.").len(), 2);
    assert_eq!(files_with_prefix(&merged, "covcounters.").len(), 2);
    let combined = tmp.path().join("combined");
    let out = cov_report(&["merge", "--pcombine", "-o", s(&combined), s(&d)]);
    assert!(out.status.success());
    assert_eq!(files_with_prefix(&combined, "covmeta.").len(), 1);
    assert_eq!(files_with_prefix(&combined, "covcounters.").len(), 1);
    assert_eq!(
        go_covdata("func", &[&combined], &[]).stdout,
        go_covdata("func", &[&d], &[]).stdout
    );
    for cmd in ["percent", "func", "pkglist"] {
        let original = go_covdata(cmd, &[&d], &[]);
        let ours = go_covdata(cmd, &[&merged], &[]);
        assert!(
            ours.status.success(),
            "{}",
            String::from_utf8_lossy(&ours.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&original.stdout),
            String::from_utf8_lossy(&ours.stdout),
            "go tool covdata {cmd} on merged output"
        );
    }
    let t1 = tmp.path().join("t1");
    let t2 = tmp.path().join("t2");
    go_covdata("textfmt", &[&d], &[&format!("-o={}", t1.display())]);
    go_covdata("textfmt", &[&merged], &[&format!("-o={}", t2.display())]);
    assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());

    // Merging with --pkg keeps only those packages.
    let filtered = tmp.path().join("filtered");
    let out = cov_report(&[
        "merge",
        "-o",
        s(&filtered),
        "--pkg",
        "example.com/multipkg/...",
        s(&d),
    ]);
    assert!(out.status.success());
    let go_filtered = go_covdata("percent", &[&d], &["-pkg=example.com/multipkg/..."]);
    assert_eq!(
        go_covdata("percent", &[&filtered], &[]).stdout,
        go_filtered.stdout
    );
}

#[test]
fn foreign_file_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run(&build("multipkg", "count", false), &d, &["add"]);
    std::fs::write(d.join("NOTES.txt"), "not coverage").unwrap();
    assert_same_all(&[s(&d)], &[&d], None);
    let out = cov_report(&["percent", s(&d)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NOTES.txt") && err.contains("not Go coverage data"),
        "{err}"
    );
}

#[test]
fn corrupt_counter_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cov");
    run(&build("multipkg", "count", false), &d, &["add"]);
    let cf = files_with_prefix(&d, "covcounters.").remove(0);
    let bytes = std::fs::read(&cf).unwrap();
    std::fs::write(&cf, &bytes[..bytes.len() / 2]).unwrap();
    let out = cov_report(&["percent", s(&d)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = cf.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name) && err.contains("byte "), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn no_data_is_exit_2_naming_the_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("ns/pod")).unwrap();
    let out = cov_report(&["percent", s(&empty)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(s(&empty)));
    let missing = tmp.path().join("missing");
    let out = cov_report(&["func", "-i", s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(s(&missing)));
}
