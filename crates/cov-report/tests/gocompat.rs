//! cov-report as a drop-in `go tool covdata`: the same argv, in Go's flag
//! syntax, run against both tools on data written by real Go programs.
//! Compared: exit status, stdout, output files (read back by Go), and the
//! first line of stderr where both fail. Where cov-report deliberately
//! differs (README, "Differences from go tool covdata"), the test states
//! the difference it expects.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{build, run};

struct Data {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

/// d1, d2: two runs each of multipkg (count mode); d3: the flusher, a
/// different program (atomic); d4: multipkg in set mode (a mode clash
/// with d1 for textfmt). Built and run once per test binary.
fn data() -> &'static Data {
    static D: OnceLock<Data> = OnceLock::new();
    D.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().to_path_buf();
        let multi = build("multipkg", "count", false);
        run(&multi, &root.join("d1"), &["add", "loop", "x"]);
        run(&multi, &root.join("d1"), &["k1"]);
        run(&multi, &root.join("d2"), &["mul", "div"]);
        run(&multi, &root.join("d2"), &[]);
        run(&build("flusher", "atomic", false), &root.join("d3"), &[]);
        run(&build("multipkg", "set", false), &root.join("d4"), &["add"]);
        Data { _tmp: tmp, root }
    })
}

/// The covdata binary itself (`go tool -n covdata`), so each call does not
/// pay for the go command's start-up.
fn go_covdata_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = toolchain::go_command()
            .unwrap_or_else(|e| panic!("{e}"))
            .args(["tool", "-n", "covdata"])
            .output()
            .expect("run go tool -n covdata (run `cargo xtask tools`)");
        assert!(out.status.success(), "go tool -n covdata failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
}

/// Run both tools with `args` in the data folder (relative paths as a user
/// would type them).
fn both(args: &[&str]) -> (Output, Output) {
    let dir = &data().root;
    let go = Command::new(go_covdata_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run covdata");
    let ours = Command::new(env!("CARGO_BIN_EXE_cov-report"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run cov-report");
    (go, ours)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn first_line(b: &[u8]) -> String {
    text(b).lines().next().unwrap_or("").to_string()
}

/// debugdump's header names the program (argv[0]); counter files written
/// by a merge carry a timestamp and the output folder. Neither is data.
fn normalise_dump(s: &str, out_dirs: &[&str]) -> String {
    s.lines()
        .map(|l| {
            let mut l = l.to_string();
            for d in out_dirs {
                l = l.replace(d, "OUT");
            }
            if let Some(rest) = l.strip_prefix(" *\t")
                && let Some(i) = rest.find(" debugdump")
            {
                return format!(" *\tPROG{}", &rest[i..]);
            }
            if let Some(i) = l.find(".0.")
                && l.starts_with("data file OUT/")
            {
                let end = l[i + 3..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(l.len(), |e| i + 3 + e);
                l.replace_range(i + 3..end, "NANOS");
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same_success(args: &[&str]) {
    let (go, ours) = both(args);
    assert!(
        go.status.success(),
        "go tool covdata {args:?} failed: {}",
        text(&go.stderr)
    );
    assert_eq!(
        ours.status.code(),
        go.status.code(),
        "exit status of {args:?}: {}",
        text(&ours.stderr)
    );
    let (g, o) = if args.first() == Some(&"debugdump") {
        (
            normalise_dump(&text(&go.stdout), &[]),
            normalise_dump(&text(&ours.stdout), &[]),
        )
    } else {
        (text(&go.stdout), text(&ours.stdout))
    };
    assert_eq!(o, g, "stdout of {args:?}");
}

#[test]
fn report_subcommands_in_every_flag_spelling() {
    let pkg = "example.com/multipkg/...";
    for cmd in ["percent", "func", "pkglist"] {
        for args in [
            vec![cmd, "-i=d1"],
            vec![cmd, "-i", "d1,d2"],
            vec![cmd, "--i=d1,d2,d3"],
            vec![cmd, "--i", "d2"],
            vec![cmd, "-pkg=example.com/multipkg/calc", "-i=d1,d2"],
            vec![cmd, "-pkg", pkg, "-i", "d1"],
            vec![cmd, "--pkg=example.com/multipkg/internal/...", "-i=d1"],
            vec![cmd, "-i=d1", "-pkg=no/such/pkg"],
            vec![cmd, "-i=d3", "-pkg=main,example.com/multipkg"],
            // The last value wins, as with Go's flag package.
            vec![cmd, "-i=d3", "-i=d1", "-pkg=x", "-pkg="],
            vec![cmd, "-v=0", "-i=d1"],
            vec![cmd, "-v", "0", "-i=d1"],
            vec![cmd, "-hw", "-i=d1"],
            vec![cmd, "-hw=false", "-h=true", "-i=d1"],
            vec![cmd, "-h", "-i", "d1", "--hw=0"],
            // Mixed counter modes are accepted by these three.
            vec![cmd, "-i=d1,d4"],
        ] {
            assert_same_success(&args);
        }
    }
}

#[test]
fn text_profiles_from_textfmt_and_percent_o() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = |name: &str| tmp.path().join(name).display().to_string();
    for (i, spelling) in [
        &["textfmt", "-i=d1,d2", "-o=OUT"][..],
        &["textfmt", "-o", "OUT", "-i", "d1"],
        &[
            "textfmt",
            "--o=OUT",
            "--i=d2",
            "-pkg=example.com/multipkg/calc",
        ],
        &["percent", "-i=d1,d4", "-o", "OUT"],
        &["percent", "-o=OUT", "-i=d3"],
    ]
    .iter()
    .enumerate()
    {
        let go_out = t(&format!("go{i}.txt"));
        let our_out = t(&format!("ours{i}.txt"));
        let with = |out: &str| -> Vec<String> {
            spelling
                .iter()
                .map(|a| a.replace("OUT", out))
                .collect::<Vec<_>>()
        };
        let go_args = with(&go_out);
        let our_args = with(&our_out);
        let dir = &data().root;
        let go = Command::new(go_covdata_bin())
            .args(&go_args)
            .current_dir(dir)
            .output()
            .expect("run covdata");
        let ours = Command::new(env!("CARGO_BIN_EXE_cov-report"))
            .args(&our_args)
            .current_dir(dir)
            .output()
            .expect("run cov-report");
        assert!(go.status.success(), "{go_args:?}: {}", text(&go.stderr));
        assert!(
            ours.status.success(),
            "{our_args:?}: {}",
            text(&ours.stderr)
        );
        assert_eq!(
            text(&ours.stdout),
            text(&go.stdout),
            "stdout of {spelling:?}"
        );
        let g = std::fs::read(&go_out).expect("go's text profile");
        let o = std::fs::read(&our_out).expect("our text profile");
        assert!(g.len() > 10);
        assert_eq!(text(&o), text(&g), "text profile of {spelling:?}");
    }
}

#[test]
fn debugdump_byte_for_byte() {
    for args in [
        &["debugdump", "-i=d1"][..],
        &["debugdump", "-i=d1,d2,d3"],
        &["debugdump", "-live", "-i=d1"],
        &["debugdump", "-live=true", "-i", "d2,d3"],
        &["debugdump", "--live=false", "-i=d1"],
        &[
            "debugdump",
            "-i=d1,d2",
            "-live",
            "-pkg=example.com/multipkg/calc",
        ],
        &["debugdump", "-i=d1,d4"],
    ] {
        assert_same_success(args);
    }
}

/// Read a folder back with Go: every report, and the dump.
fn go_reports(dir: &str) -> Vec<String> {
    let root = &data().root;
    let mut out = Vec::new();
    for cmd in ["percent", "func", "pkglist", "debugdump"] {
        let o = Command::new(go_covdata_bin())
            .args([cmd, &format!("-i={dir}")])
            .current_dir(root)
            .output()
            .expect("run covdata");
        assert!(o.status.success(), "go {cmd} -i={dir}: {}", text(&o.stderr));
        out.push(normalise_dump(&text(&o.stdout), &[dir]));
    }
    let profile = root.join(format!("{dir}.txt"));
    let o = Command::new(go_covdata_bin())
        .args(["textfmt", &format!("-i={dir}"), "-o"])
        .arg(&profile)
        .current_dir(root)
        .output()
        .expect("run covdata");
    // Two programs of different modes are a clash for textfmt (one pair
    // per program without -pcombine): then Go's refusal is compared.
    out.push(if o.status.success() {
        std::fs::read_to_string(&profile).expect("text profile")
    } else {
        first_line(&o.stderr).replace(dir, "OUT")
    });
    out
}

fn meta_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read merged folder")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("covmeta."))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read meta file"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn merge_pcombine_and_pkg_read_back_identically_in_go() {
    let root = &data().root;
    for (tag, flags) in [
        ("plain", &["-i=d1,d2"][..]),
        ("twoprogs", &["-i", "d1,d3"]),
        ("pcombine", &["-pcombine", "-i=d1,d2,d3"]),
        ("pcombine-true", &["-pcombine=true", "--i=d3,d2"]),
        ("pcombine-false", &["-pcombine=false", "-i=d1,d3"]),
        ("pkg", &["-i=d1,d3", "-pkg=example.com/multipkg/..."]),
        (
            "pcombine-pkg",
            &[
                "-pcombine",
                "-i=d1,d2,d3",
                "-pkg",
                "example.com/multipkg/calc",
            ],
        ),
    ] {
        let go_dir = format!("merge-go-{tag}");
        let our_dir = format!("merge-ours-{tag}");
        // Go's merge wants the folder to exist.
        std::fs::create_dir_all(root.join(&go_dir)).expect("mkdir");
        let go_o = format!("-o={go_dir}");
        let our_o = format!("-o={our_dir}");
        let go = Command::new(go_covdata_bin())
            .arg("merge")
            .args(flags)
            .arg(&go_o)
            .current_dir(root)
            .output()
            .expect("run covdata merge");
        let ours = Command::new(env!("CARGO_BIN_EXE_cov-report"))
            .arg("merge")
            .args(flags)
            .arg(&our_o)
            .current_dir(root)
            .output()
            .expect("run cov-report merge");
        assert!(
            go.status.success(),
            "go merge {flags:?}: {}",
            text(&go.stderr)
        );
        assert!(
            ours.status.success(),
            "merge {flags:?}: {}",
            text(&ours.stderr)
        );
        assert_eq!(text(&ours.stdout), text(&go.stdout));
        // Same meta-data files, byte for byte and by name; the counter
        // files differ only in their argument tables' string order (Go
        // takes it from a map) and timestamps, so they are compared by
        // what Go reads back.
        assert_eq!(
            meta_files(&root.join(&our_dir)),
            meta_files(&root.join(&go_dir)),
            "meta-data files of merge {flags:?}"
        );
        let g = go_reports(&go_dir);
        let o = go_reports(&our_dir);
        for (g, o) in g.iter().zip(&o) {
            assert_eq!(o, g, "go reads merge {flags:?} differently");
        }
    }
}

#[test]
fn subtract_and_intersect_in_go_syntax() {
    let root = &data().root;
    for (op, inputs, pkg) in [
        ("subtract", "d1,d2", "-pkg="),
        ("intersect", "d1,d2", "-v=0"),
        ("intersect", "d2,d1,d3", "-hw"),
        (
            "subtract",
            "d1,d2",
            "-pkg=example.com/multipkg/calc,example.com/multipkg",
        ),
        (
            "intersect",
            "d1,d2",
            "-pkg=example.com/multipkg/internal/...",
        ),
    ] {
        let tag = format!("{op}-{}-{}", inputs.replace(',', "-"), pkg.len());
        let go_dir = format!("go-{tag}");
        let our_dir = format!("ours-{tag}");
        std::fs::create_dir_all(root.join(&go_dir)).expect("mkdir");
        let (go, ours) = (
            Command::new(go_covdata_bin())
                .args([op, &format!("-i={inputs}"), pkg, "-o", &go_dir])
                .current_dir(root)
                .output()
                .expect("run covdata"),
            Command::new(env!("CARGO_BIN_EXE_cov-report"))
                .args([op, &format!("-i={inputs}"), pkg, "-o", &our_dir])
                .current_dir(root)
                .output()
                .expect("run cov-report"),
        );
        assert!(go.status.success(), "go {op}: {}", text(&go.stderr));
        assert!(ours.status.success(), "{op}: {}", text(&ours.stderr));
        assert_eq!(
            meta_files(&root.join(&our_dir)),
            meta_files(&root.join(&go_dir)),
            "meta-data files of {op} {inputs} {pkg}"
        );
        assert_eq!(
            go_reports(&our_dir),
            go_reports(&go_dir),
            "{op} {inputs} {pkg}"
        );
    }
}

/// Both refuse; our first line starts with Go's. `codes` = (Go's, ours):
/// they differ only where the README's table says so.
#[test]
fn errors_start_with_gos_first_line() {
    let cases: &[(&[&str], (i32, i32))] = &[
        (&["percent", "-i=d1", "-x"], (2, 2)),
        (
            &["merge", "-i=d1", "-o=m", "-modpaths=github.com/x/y"],
            (2, 2),
        ),
        (&["percent", "-i=d1", "-live"], (2, 2)),
        (&["func", "-i=d1", "-o=x"], (2, 2)),
        (&["debugdump", "-i=d1", "-live=maybe"], (2, 2)),
        (&["percent", "-i=d1", "-v"], (2, 2)),
        (&["percent", "-i=d1", "-v", "lots"], (2, 2)),
        (&["percent", "-v=99999999999999999999", "-i=d1"], (2, 2)),
        (&["pkglist", "---i=d1"], (2, 2)),
        (&["pkglist", "-=d1"], (2, 2)),
        (&["textfmt", "-i=d1"], (2, 2)),
        (&["textfmt", "-i=d1", "-o="], (2, 2)),
        (&["merge", "-i=d1"], (2, 2)),
        (&["subtract", "-i=d1", "-o=s"], (2, 2)),
        (&["subtract", "-i=d1,d2,d3", "-o=s"], (2, 2)),
        (&["intersect", "-i=d1,d2"], (2, 2)),
        // Deliberate: bad input exits 2 here, 1 in Go.
        (&["percent", "-i=no-such-folder"], (1, 2)),
        (&["func", "-i=d1,no-such-folder"], (1, 2)),
        (&["textfmt", "-i=d1,d4", "-o=clash.txt"], (1, 2)),
        (&["merge", "-i=no-such-folder", "-o=m"], (1, 2)),
        (&["subtract", "-i=d1,no-such-folder", "-o=s"], (1, 2)),
        (&["debugdump", "-i=no-such-folder"], (1, 2)),
    ];
    for (args, (go_code, our_code)) in cases {
        let (go, ours) = both(args);
        assert_eq!(
            go.status.code(),
            Some(*go_code),
            "go {args:?}: {}",
            text(&go.stderr)
        );
        assert_eq!(
            ours.status.code(),
            Some(*our_code),
            "{args:?}: {}",
            text(&ours.stderr)
        );
        let g = first_line(&go.stderr);
        // Go names the OS error its own way after this point.
        let g = match g.find("open ") {
            Some(i) if g.starts_with("error: reading inputs: ") => g[..i].to_string(),
            _ => g,
        };
        let o = first_line(&ours.stderr);
        assert!(!g.is_empty(), "go printed no error for {args:?}");
        assert!(
            o.starts_with(&g),
            "{args:?}: our first line {o:?} does not start with Go's {g:?}"
        );
    }
}

/// `-o` naming a named pipe or a symbolic link writes through it, as Go
/// does: the pipe gets Go's bytes and stays a pipe, the link stays a link
/// and its target gets the profile. (Renaming a temporary file over them,
/// as for a regular file, replaced `/dev/null` with a file once.)
#[test]
fn text_profile_through_a_pipe_or_a_link() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &data().root;
    let textfmt = |tool: &Path, out: &Path| {
        let o = Command::new(tool)
            .args(["textfmt", "-i=d1"])
            .arg(format!("-o={}", out.display()))
            .current_dir(dir)
            .output()
            .expect("run the tool");
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    let go_out = tmp.path().join("go.txt");
    textfmt(go_covdata_bin(), &go_out);
    let expected = std::fs::read(&go_out).expect("go's profile");
    let ours = |out: &Path| textfmt(Path::new(env!("CARGO_BIN_EXE_cov-report")), out);

    let fifo = tmp.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // Held open for writing too, so the reader's open does not wait for
    // cov-report, and ends (at this handle's close) even if cov-report
    // never opens the pipe.
    let keep = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the pipe");
    let mut read_end = std::fs::File::open(&fifo).expect("open the pipe to read");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut read_end, &mut v).expect("read the pipe");
        v
    });
    ours(&fifo);
    drop(keep);
    assert_eq!(text(&reader.join().expect("reader")), text(&expected));
    let kind = std::fs::symlink_metadata(&fifo).expect("pipe").file_type();
    assert!(kind.is_fifo(), "the pipe was replaced: {kind:?}");

    let target = tmp.path().join("target.txt");
    std::fs::write(&target, "old").expect("target");
    let link = tmp.path().join("link.txt");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    ours(&link);
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert_eq!(
        text(&std::fs::read(&target).expect("target")),
        text(&expected)
    );
}
