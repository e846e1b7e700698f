//! Coverage data comes from pods: a meta-data file can name any path. These
//! tests build such files with the project's own encoder (`covdata::encode`)
//! and check that `cov-report` reads sources only from `--source-root` and
//! GOROOT, and finds its default folders under `SKAFFOLD_WORK_DIR`.

use std::path::Path;
use std::process::{Command, Output};

use covdata::model::{CounterMode, Function, Granularity, Package, Profile, Unit};

fn function(name: &str, file: &str, count: u32) -> Function {
    Function {
        name: name.into(),
        file: file.into(),
        literal: false,
        units: vec![Unit {
            start_line: 1,
            start_col: 1,
            end_line: 2,
            end_col: 2,
            statements: 1,
            count,
        }],
    }
}

/// One package whose functions live in `files`.
fn profile(files: &[&str]) -> Profile {
    Profile {
        mode: CounterMode::Set,
        granularity: Granularity::PerBlock,
        packages: vec![Package {
            path: "example.com/app".into(),
            name: "main".into(),
            module_path: "example.com/app".into(),
            functions: files
                .iter()
                .enumerate()
                .map(|(i, f)| function(&format!("f{i}"), f, 1))
                .collect(),
        }],
    }
}

fn cov_report(args: &[&str], cwd: &Path, work_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cov-report"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("SKAFFOLD_WORK_DIR");
    if let Some(w) = work_dir {
        cmd.env("SKAFFOLD_WORK_DIR", w);
    }
    let out = cmd.output().expect("run cov-report");
    eprintln!(
        "$ cov-report {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cov-report DATA --format FORMATS -o OUT`, run beside them.
fn write_reports(data: &Path, formats: &str, out: &Path) -> Output {
    let (data, out_dir) = (data.to_str().expect("utf8"), out.to_str().expect("utf8"));
    let cwd = out.parent().expect("a folder");
    cov_report(&[data, "--format", formats, "-o", out_dir], cwd, None)
}

#[test]
fn sources_are_read_only_from_the_source_root_and_goroot() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("project");
    let app = root.join("app");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(app.join("go.mod"), "module example.com/app\n").expect("go.mod");
    std::fs::write(app.join("main.go"), "package main // LEGIT-SOURCE\n").expect("main.go");
    std::fs::write(app.join("notes.txt"), "NOT-GO-SOURCE\n").expect("notes");
    // Outside the source root: a .go file and a passwd-like file.
    std::fs::write(tmp.path().join("secret.go"), "SECRET-GO-CONTENT\n").expect("secret");
    std::fs::write(tmp.path().join("passwd"), "root:x:0:0:SECRET-PASSWD\n").expect("passwd");
    std::os::unix::fs::symlink(tmp.path().join("secret.go"), app.join("link.go")).expect("link");
    let secret = tmp.path().join("secret.go");
    let passwd = tmp.path().join("passwd");
    let hostile = [
        "/etc/passwd",
        passwd.to_str().expect("utf8"),
        secret.to_str().expect("utf8"),
        "example.com/app/../../secret.go",
        "example.com/app/../../passwd",
        "example.com/app/link.go",
        "example.com/app/notes.txt",
    ];
    let mut files = vec!["example.com/app/main.go"];
    files.extend(hostile);
    let data = tmp.path().join("data");
    covdata::encode::write_dir(&profile(&files), &data).expect("encode");
    let out_dir = tmp.path().join("out");

    let out = cov_report(
        &[
            data.to_str().expect("utf8"),
            "--format",
            "html,json",
            "--source-root",
            root.to_str().expect("utf8"),
            "--goroot",
            tmp.path().join("no-goroot").to_str().expect("utf8"),
            "-o",
            out_dir.to_str().expect("utf8"),
        ],
        tmp.path(),
        None,
    );
    assert!(out.status.success(), "cov-report failed");
    let html = std::fs::read_to_string(out_dir.join("coverage.html")).expect("coverage.html");
    assert!(html.contains("LEGIT-SOURCE"), "the real source is shown");
    let real_passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let first_passwd_line = real_passwd.lines().next().unwrap_or("root:x:0:0");
    for leaked in [
        "SECRET-GO-CONTENT",
        "SECRET-PASSWD",
        "NOT-GO-SOURCE",
        first_passwd_line,
    ] {
        assert!(!html.contains(leaked), "coverage.html holds {leaked:?}");
    }
    let json = std::fs::read_to_string(out_dir.join("coverage.json")).expect("coverage.json");
    assert!(
        !json.contains("SECRET"),
        "coverage.json points at no refused file"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in hostile {
        let warned = stderr
            .lines()
            .filter(|l| l.contains(&format!("source \"{name}\" not read")))
            .count();
        assert_eq!(warned, 1, "one warning naming {name}:\n{stderr}");
    }
}

#[test]
fn default_input_and_out_dir_are_under_skaffold_work_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tmp.path().join("project");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    covdata::encode::write_dir(
        &profile(&["example.com/app/main.go"]),
        &work.join("reports/coverage/ns/pod/app"),
    )
    .expect("encode");

    let out = cov_report(&["--format", "lcov"], &elsewhere, Some(&work));
    assert!(
        out.status.success(),
        "the default input is found under SKAFFOLD_WORK_DIR"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("example.com/app"),
        "percent of the data"
    );
    assert!(
        work.join("reports/lcov.info").is_file(),
        "--out-dir under SKAFFOLD_WORK_DIR"
    );
    assert!(
        !elsewhere.join("reports").exists(),
        "nothing in the current folder"
    );

    // An absolute --out-dir is used as is.
    let abs = tmp.path().join("abs");
    let out = cov_report(
        &["--format", "lcov", "-o", abs.to_str().expect("utf8")],
        &elsewhere,
        Some(&work),
    );
    assert!(out.status.success());
    assert!(abs.join("lcov.info").is_file());
}

/// A meta-data file claiming blocks four billion lines long: every format
/// is written, the line lists stop at the report's bound with a warning,
/// and the other files' lines are listed in full.
#[test]
fn blocks_claiming_billions_of_lines_are_bounded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = profile(&["example.com/app/huge.go", "example.com/app/small.go"]);
    p.packages[0].functions[0].units[0].end_line = 4_000_000_000;
    p.packages[0].functions[1].units[0].start_line = 7;
    p.packages[0].functions[1].units[0].end_line = 8;
    let data = tmp.path().join("data");
    covdata::encode::write_dir(&p, &data).expect("encode");
    let out_dir = tmp.path().join("out");
    let out = write_reports(&data, "html,lcov,cobertura,json,markdown,textfmt", &out_dir);
    assert!(out.status.success(), "cov-report failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("claims more lines than a report lists")
            && stderr.contains("example.com/app/huge.go"),
        "{stderr}"
    );
    let lcov = std::fs::read_to_string(out_dir.join("lcov.info")).expect("lcov.info");
    let listed = lcov.lines().filter(|l| l.starts_with("DA:")).count();
    assert!(listed <= 4_000_000, "{listed} lines listed");
    assert!(
        lcov.contains("SF:example.com/app/small.go\n"),
        "small.go has its record"
    );
    assert!(
        lcov.contains("DA:7,1\nDA:8,1\nLF:2\nLH:2\n"),
        "small.go's lines in full"
    );
}

/// Names from a pod carrying a newline, an ANSI sequence, an OSC title and
/// GitHub/Azure workflow commands: what cov-report prints on stdout holds
/// no control character but tab and newline, no line a CI runner acts on,
/// and the names escaped.
#[test]
fn names_with_controls_and_ci_commands_are_printed_escaped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = profile(&["evil\n::warning::x/main.go"]);
    p.packages[0].path = "evil\n::error::pwned\u{1b}[31m##vso[task.setvariable]".into();
    p.packages[0].functions[0].name = "f\u{1b}]0;title\u{7}".into();
    let data = tmp.path().join("data");
    covdata::encode::write_dir(&p, &data).expect("encode");
    let other = tmp.path().join("other");
    covdata::encode::write_dir(&profile(&["example.com/app/main.go"]), &other).expect("encode");
    let input = format!("-i={}", data.display());
    let (data, other) = (data.to_str().expect("utf8"), other.to_str().expect("utf8"));
    for args in [
        vec!["percent", input.as_str()],
        vec!["func", input.as_str()],
        vec!["pkglist", input.as_str()],
        vec!["debugdump", input.as_str()],
        vec!["diff", data, other],
        vec!["diff", "--output", "json", data, other],
    ] {
        let out = cov_report(&args, tmp.path(), None);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).expect("utf8");
        for line in text.lines() {
            assert!(
                !line.chars().any(|c| c.is_control() && c != '\t'),
                "{args:?}: {line:?}"
            );
            assert!(!line.trim_start().starts_with("::"), "{args:?}: {line:?}");
            assert!(
                !line.contains("##vso[") && !line.contains("##["),
                "{args:?}: {line:?}"
            );
        }
        let shown = if args[0] == "func" {
            "f\\x1b]0;title\\x07"
        } else if args.contains(&"json") {
            "pwned\\u001b[31m\\u0023#vso["
        } else {
            "evil\\n::error::pwned\\x1b[31m\\x23#vso["
        };
        assert!(text.contains(shown), "{args:?} shows {shown}:\n{text}");
    }
    // Reports read by CI services: no forged LCOV record, no Markdown
    // outside the path's code span.
    let mut q = profile(&["evil.go\nDA:999,1000\nend_of_record\nSF:forged.go"]);
    q.packages[0].path = "evil`![x](https://example.invalid/p.png)`".into();
    q.packages[0].functions[0].name = "f\nDA:5,5".into();
    let forged = tmp.path().join("forged");
    covdata::encode::write_dir(&q, &forged).expect("encode");
    let out_dir = tmp.path().join("reports");
    let out = write_reports(&forged, "lcov,markdown", &out_dir);
    assert!(out.status.success());
    let lcov = std::fs::read_to_string(out_dir.join("lcov.info")).expect("lcov.info");
    let tags = [
        "TN:",
        "SF:",
        "FN:",
        "FNDA:",
        "FNF:",
        "FNH:",
        "DA:",
        "LF:",
        "LH:",
        "end_of_record",
    ];
    for line in lcov.lines() {
        assert!(
            tags.iter().any(|t| line.starts_with(t)),
            "{line:?} in\n{lcov}"
        );
    }
    let records = |tag: &str| lcov.lines().filter(|l| l.starts_with(tag)).count();
    assert_eq!((records("SF:"), records("end_of_record")), (1, 1), "{lcov}");
    assert!(
        !lcov
            .lines()
            .any(|l| l.starts_with("DA:999") || l.starts_with("DA:5,5")),
        "{lcov}"
    );
    let md = std::fs::read_to_string(out_dir.join("coverage.md")).expect("coverage.md");
    let row = md
        .lines()
        .find(|l| l.contains("evil"))
        .expect("the package's row");
    assert_eq!(row.matches('`').count(), 2, "one code span: {row}");
}
