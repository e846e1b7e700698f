//! Shared fixtures of the golden tests: Go programs built once per test
//! binary with the project's Go, runs with GOCOVERDIR, and the two tools
//! (`go tool covdata`, `cov-report`) run side by side.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// A folder that lives as long as the test binary (built programs).
fn build_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("cov-report-golden")
            .tempdir()
            .expect("temp dir")
    })
    .path()
}

fn goprogs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goprogs")
}

fn go() -> Command {
    toolchain::go_command().unwrap_or_else(|e| panic!("{e}"))
}

/// Build `tests/goprogs/<prog>` with `-cover -covermode=<mode>` (plus
/// `-coverpkg=all` if asked), once per test binary; returns the binary.
pub fn build(prog: &str, mode: &str, coverpkg_all: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static OnceLock<PathBuf>>>> = OnceLock::new();
    let key = format!("{prog}-{mode}-{}", if coverpkg_all { "all" } else { "own" });
    let cell: &'static OnceLock<PathBuf> = {
        let mut map = BUILT
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
    };
    cell.get_or_init(|| {
        let out = build_root().join(&key);
        let mut cmd = go();
        cmd.current_dir(goprogs().join(prog)).args([
            "build",
            "-cover",
            &format!("-covermode={mode}"),
        ]);
        if coverpkg_all {
            cmd.arg("-coverpkg=all");
        }
        cmd.arg("-o").arg(&out).arg(".");
        let o = cmd.output().expect("run go build");
        assert!(
            o.status.success(),
            "go build {key} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
    .clone()
}

/// Run a built program with GOCOVERDIR=`dir`; panics unless it succeeds.
pub fn run(bin: &Path, dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).expect("create GOCOVERDIR");
    let o = Command::new(bin)
        .args(args)
        .env("GOCOVERDIR", dir)
        .output()
        .expect("run program");
    assert!(
        o.status.success(),
        "{} {args:?} failed: {}",
        bin.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run the HTTP service, send it real requests, stop it with /quit.
pub fn run_http_service(bin: &Path, dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).expect("create GOCOVERDIR");
    let mut child = Command::new(bin)
        .env("GOCOVERDIR", dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start http service");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut addr)
        .expect("read address");
    let addr = addr.trim().to_string();
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect to service");
        write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("send request");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read response");
        resp
    };
    for n in names {
        let r = get(&format!("/hello?name={n}"));
        assert!(r.starts_with("HTTP/1.0 200"), "unexpected response {r}");
    }
    get("/shout?s=hey");
    get("/quit");
    let status = child.wait().expect("wait for service");
    assert!(status.success(), "service exited with {status}");
}

/// `go tool covdata <cmd> -i=<dirs> <extra>`.
pub fn go_covdata(cmd: &str, dirs: &[&Path], extra: &[&str]) -> Output {
    let list = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    go().args(["tool", "covdata", cmd, &format!("-i={list}")])
        .args(extra)
        .output()
        .expect("run go tool covdata")
}

/// `cov-report <args>`.
pub fn cov_report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cov-report"))
        .args(args)
        .output()
        .expect("run cov-report")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn ok(o: &Output, what: &str) -> Vec<u8> {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout.clone()
}

/// Assert cov-report prints exactly what go tool covdata prints for the
/// stdout subcommands, and writes the same textfmt file. `ours` are
/// cov-report's input arguments, `go_dirs` Go's `-i` folders.
pub fn assert_same_all(ours: &[&str], go_dirs: &[&Path], pkg: Option<&str>) {
    for cmd in ["percent", "func", "pkglist"] {
        assert_same(cmd, ours, go_dirs, pkg);
    }
    assert_same_textfmt(ours, go_dirs, pkg);
}

pub fn assert_same(cmd: &str, ours: &[&str], go_dirs: &[&Path], pkg: Option<&str>) {
    let mut go_extra = Vec::new();
    let mut args = vec![cmd];
    args.extend_from_slice(ours);
    let pkg_flag;
    if let Some(p) = pkg {
        pkg_flag = format!("-pkg={p}");
        go_extra.push(pkg_flag.as_str());
        args.extend(["--pkg", p]);
    }
    let expected = ok(
        &go_covdata(cmd, go_dirs, &go_extra),
        &format!("go tool covdata {cmd}"),
    );
    let actual = ok(&cov_report(&args), &format!("cov-report {args:?}"));
    assert!(
        !expected.is_empty() || pkg == Some("no/such/pkg"),
        "go printed nothing for {cmd}"
    );
    if expected != actual {
        panic!(
            "cov-report {args:?} differs from go tool covdata {cmd}:\n--- go\n{}\n--- cov-report\n{}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&actual)
        );
    }
}

pub fn assert_same_textfmt(ours: &[&str], go_dirs: &[&Path], pkg: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let go_out = tmp.path().join("go.txt");
    let our_out = tmp.path().join("ours.txt");
    let o_flag = format!("-o={}", go_out.display());
    let mut go_extra = vec![o_flag.as_str()];
    let pkg_flag;
    let mut args = vec!["textfmt", "-o", s(&our_out)];
    args.extend_from_slice(ours);
    if let Some(p) = pkg {
        pkg_flag = format!("-pkg={p}");
        go_extra.push(pkg_flag.as_str());
        args.extend(["--pkg", p]);
    }
    ok(
        &go_covdata("textfmt", go_dirs, &go_extra),
        "go tool covdata textfmt",
    );
    ok(&cov_report(&args), "cov-report textfmt");
    let expected = std::fs::read(&go_out).expect("go textfmt output");
    let actual = std::fs::read(&our_out).expect("cov-report textfmt output");
    assert!(expected.len() > 10, "go wrote an empty profile");
    assert!(
        expected == actual,
        "textfmt differs:\n--- go\n{}\n--- ours\n{}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(&actual)
    );
}

/// Names of files in `dir` starting with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}
