//! Each format checked by the program that consumes it, on real Go coverage:
//! `tests/data/goapp` built with `go build -cover -covermode=count`, run a
//! few times with GOCOVERDIR, loaded with covdata.
//!
//! Consumers: genhtml and `lcov --summary` (LCOV), xmllint against
//! Cobertura's DTD and pycobertura (Cobertura), `go tool cover -html` and
//! headless Chromium (HTML), `go tool cover -func/-html` (textfmt), `go tool
//! covdata percent` (Markdown totals). All are installed by `cargo xtask tools`.

use covdata::model::Profile;
use covformats::{Format, Options, Report, SourceMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

struct Fixture {
    _tmp: tempfile::TempDir,
    module: PathBuf,
    covdir: PathBuf,
    goroot: PathBuf,
    profile: Profile,
    out: PathBuf,
}

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/goapp")
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e} (run `cargo xtask tools`)"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn go() -> Command {
    toolchain::go_command().unwrap_or_else(|e| panic!("{e}"))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let bin = tmp.path().join("goapp");
        let module = module_dir();
        run_ok(
            go().args(["build", "-cover", "-covermode=count", "-o"])
                .arg(&bin)
                .arg(".")
                .current_dir(&module),
            "go build -cover",
        );
        let covdir = tmp.path().join("cov");
        std::fs::create_dir_all(&covdir).expect("cov dir");
        for args in [
            &["square", "circle", "max", "hello", ""][..],
            &["square", "square"][..],
            &[][..],
        ] {
            run_ok(
                Command::new(&bin).args(args).env("GOCOVERDIR", &covdir),
                "running the covered program",
            );
        }
        let goroot = run_ok(go().args(["env", "GOROOT"]), "go env GOROOT");
        let goroot = PathBuf::from(String::from_utf8_lossy(&goroot.stdout).trim());
        let profile = covdata::load(
            std::slice::from_ref(&covdir),
            &covdata::LoadOptions::default(),
        )
        .expect("loading the program's coverage")
        .profile;
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).expect("out dir");
        Fixture {
            _tmp: tmp,
            module,
            covdir,
            goroot,
            profile,
            out,
        }
    })
}

fn report(f: &Fixture) -> Report<'_> {
    Report::new(
        &f.profile,
        &SourceMap::discover(&f.module, Some(f.goroot.clone())),
    )
}

fn options(f: &Fixture) -> Options {
    Options {
        source_root: Some(f.module.clone()),
        ..Options::default()
    }
}

/// Writes one format and returns its path.
fn written(f: &Fixture, format: Format) -> PathBuf {
    let r = report(f);
    assert!(r.unmapped.is_empty(), "unmapped: {:?}", r.unmapped);
    let paths = covformats::write_files(&r, &[format], &options(f), &f.out).expect("write");
    paths[0].clone()
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| toolchain::workspace_root().join("target"));
    let dir = target.join("test-artifacts/covformats");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `(hit, total)` from a `lcov --summary` line like `lines......: 75.0% (3 of 4 lines)`.
fn summary_numbers(summary: &str, what: &str) -> (u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no {what} line in:\n{summary}"));
    let inner = line
        .split('(')
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no counts in {line:?}"));
    let mut it = inner.split_whitespace();
    let hit = it.next().and_then(|s| s.parse().ok()).expect("hit count");
    it.next();
    let total = it.next().and_then(|s| s.parse().ok()).expect("total count");
    (hit, total)
}

#[test]
fn lcov_is_read_by_lcov_and_genhtml_with_our_totals() {
    let f = fixture();
    let r = report(f);
    let path = written(f, Format::Lcov);
    let lcov = toolchain::lcov().unwrap_or_else(|e| panic!("{e}"));
    let out = run_ok(
        Command::new(lcov).arg("--summary").arg(&path),
        "lcov --summary",
    );
    let all = text(&out);
    assert!(!all.to_lowercase().contains("warning"), "{all}");
    assert_eq!(summary_numbers(&all, "lines"), (r.lines.hit, r.lines.total));
    assert_eq!(
        summary_numbers(&all, "functions"),
        (r.functions.hit, r.functions.total)
    );

    let genhtml = toolchain::genhtml().unwrap_or_else(|e| panic!("{e}"));
    let html_dir = artifacts().join("genhtml");
    let out = run_ok(
        Command::new(genhtml).arg("-o").arg(&html_dir).arg(&path),
        "genhtml",
    );
    let all = text(&out);
    assert!(!all.to_lowercase().contains("warning"), "{all}");
    assert_eq!(summary_numbers(&all, "lines"), (r.lines.hit, r.lines.total));
    assert!(html_dir.join("index.html").is_file());
}

#[test]
fn cobertura_validates_against_the_dtd_and_pycobertura_agrees() {
    let f = fixture();
    let r = report(f);
    let path = written(f, Format::Cobertura);
    let dtd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/coverage-04.dtd");
    let xmllint = toolchain::xmllint().unwrap_or_else(|e| panic!("{e}"));
    let out = run_ok(
        Command::new(xmllint)
            .args(["--noout", "--nonet", "--dtdvalid"])
            .arg(&dtd)
            .arg(&path),
        "xmllint --dtdvalid coverage-04.dtd",
    );
    assert!(text(&out).trim().is_empty(), "{}", text(&out));

    let py = toolchain::pycobertura().unwrap_or_else(|e| panic!("{e}"));
    let out = run_ok(
        Command::new(py)
            .args(["show", "--format", "json"])
            .arg(&path),
        "pycobertura show",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pycobertura json");
    let files = v["files"].as_array().expect("files");
    let ours: Vec<(String, String)> = r
        .files()
        .map(|(_, file)| {
            let name = file
                .source
                .as_ref()
                .and_then(|p| p.strip_prefix(&f.module).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.name.to_string());
            (name, format!("{:.2}%", file.line_tally.rate() * 100.0))
        })
        .collect();
    assert_eq!(files.len(), ours.len(), "{v}");
    for (name, rate) in &ours {
        let theirs = files
            .iter()
            .find(|x| x["Filename"] == name.as_str())
            .unwrap_or_else(|| panic!("pycobertura does not list {name}: {v}"));
        assert_eq!(theirs["Cover"], rate.as_str(), "line rate of {name}");
    }
    assert_eq!(
        v["total"]["Cover"],
        format!("{:.2}%", r.lines.rate() * 100.0).as_str()
    );
}

/// `(class, title, text)` of each coverage span inside `html[start..end]`,
/// with entities decoded and tabs expanded (Go writes tabs as 8 spaces).
fn spans(html: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<span class=\"cov") {
        rest = &rest[i + "<span class=\"".len()..];
        let class_end = rest.find('"').expect("class end");
        let class = rest[..class_end].to_string();
        let t = rest.find("title=\"").expect("title") + "title=\"".len();
        let title_end = t + rest[t..].find('"').expect("title end");
        let title = rest[t..title_end].to_string();
        let body_start = title_end + rest[title_end..].find('>').expect(">") + 1;
        let body_end = body_start + rest[body_start..].find("</span>").expect("</span>");
        let body = rest[body_start..body_end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#34;", "\"")
            .replace("&amp;", "&")
            .replace('\t', "        ");
        out.push((class, title, body));
        rest = &rest[body_end..];
    }
    out
}

#[test]
fn html_is_self_contained_coloured_like_go_and_renders_in_chromium() {
    let f = fixture();
    let r = report(f);
    let path = written(f, Format::Html);
    let html = std::fs::read_to_string(&path).expect("read html");
    for bad in ["http://", "https://", "src=", "@import", "url("] {
        assert!(!html.contains(bad), "HTML refers outside itself: {bad}");
    }

    // Go's own rendering of the same coverage, from the text profile.
    let textfmt = f.out.join("go-html-input.txt");
    let mut buf = Vec::new();
    covdata::format::textfmt::write(&f.profile, &mut buf).expect("textfmt");
    std::fs::write(&textfmt, &buf).expect("write textfmt");
    let go_html = f.out.join("go.html");
    run_ok(
        go().args(["tool", "cover"])
            .arg(format!("-html={}", textfmt.display()))
            .arg("-o")
            .arg(&go_html)
            .current_dir(&f.module),
        "go tool cover -html",
    );
    let go_html = std::fs::read_to_string(&go_html).expect("read go html");
    // Go: <option value="fileN">NAME (x%)</option> … <pre class="file" id="fileN" …>BODY</pre>
    for (i, (_, file)) in r.files().enumerate() {
        let opt = go_html
            .split("<option value=\"file")
            .skip(1)
            .find(|o| {
                o.split_once('>')
                    .is_some_and(|(_, t)| t.starts_with(&format!("{} (", file.name)))
            })
            .unwrap_or_else(|| panic!("go tool cover -html has no {}", file.name));
        let n: usize = opt
            .split('"')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("file index");
        let go_body = go_html
            .split(&format!("id=\"file{n}\""))
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .expect("go file body");
        let ours = html
            .split(&format!("<section class=\"src\" id=\"f{i}\">"))
            .nth(1)
            .and_then(|s| s.split("<pre class=\"body\">").nth(1))
            .and_then(|s| s.split("</pre>").next())
            .unwrap_or_else(|| panic!("our HTML has no source for {}", file.name));
        let (go_spans, our_spans) = (spans(go_body), spans(ours));
        assert!(!go_spans.is_empty());
        assert_eq!(our_spans, go_spans, "colouring of {}", file.name);
    }

    // Headless Chromium: loads without JavaScript errors; screenshots kept.
    let chromium = toolchain::chromium().unwrap_or_else(|e| panic!("{e}"));
    let art = artifacts();
    std::fs::copy(&path, art.join("coverage.html")).expect("copy html");
    let url = format!("file://{}", path.display());
    for (shot, target) in [
        ("coverage-tree.png", url.clone()),
        ("coverage-file.png", format!("{url}#f0")),
    ] {
        let arg = format!("--screenshot={}", art.join(shot).display());
        chromium_headless(&chromium, &arg, &target);
        let png = std::fs::read(art.join(shot)).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "{shot} is not a PNG");
    }
    // The sorting script runs: `#sort=pct` puts the least covered package first.
    let dom = chromium_headless(&chromium, "--dump-dom", &format!("{url}#sort=pct"));
    let pcts: Vec<f64> = dom
        .split("<tr class=\"pkg\"")
        .skip(1)
        .map(|row| {
            let v = row
                .split("data-pct=\"")
                .nth(1)
                .and_then(|s| s.split('"').next());
            v.and_then(|v| v.parse().ok()).expect("data-pct")
        })
        .collect();
    assert_eq!(pcts.len(), r.packages.len());
    assert!(
        pcts.windows(2).all(|w| w[0] <= w[1]),
        "not sorted: {pcts:?}"
    );
    let by_name: Vec<f64> = r.packages.iter().map(|p| p.statements.percent()).collect();
    assert_ne!(pcts, by_name, "the fixture should need reordering");
}

/// Runs headless Chromium on `url` with one extra argument; fails on any
/// console message (JavaScript errors are logged there). Returns stdout.
fn chromium_headless(chromium: &Path, extra: &str, url: &str) -> String {
    let profile_dir = tempfile::tempdir().expect("chromium profile");
    let out = run_ok(
        Command::new("timeout")
            .arg("120")
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile_dir.path().display()))
            .arg(extra)
            .arg(url),
        "chromium --headless",
    );
    let log = String::from_utf8_lossy(&out.stderr);
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") || line.contains("Uncaught")),
            "JavaScript error in the report: {line}"
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn textfmt_is_accepted_by_go_tool_cover() {
    let f = fixture();
    let path = f.out.join("coverage.txt");
    let mut buf = Vec::new();
    covdata::format::textfmt::write(&f.profile, &mut buf).expect("textfmt");
    std::fs::write(&path, &buf).expect("write");
    let go_txt = f.out.join("go-textfmt.txt");
    run_ok(
        go().args(["tool", "covdata", "textfmt"])
            .arg(format!("-i={}", f.covdir.display()))
            .arg(format!("-o={}", go_txt.display())),
        "go tool covdata textfmt",
    );
    assert_eq!(std::fs::read(&go_txt).expect("go textfmt"), buf);
    let func = run_ok(
        go().args(["tool", "cover"])
            .arg(format!("-func={}", path.display()))
            .current_dir(&f.module),
        "go tool cover -func",
    );
    // cover -func totals only statements inside function declarations
    // (not package-level literals), so it is compared with itself on Go's
    // own text profile rather than with `covdata percent`.
    let go_func = run_ok(
        go().args(["tool", "cover"])
            .arg(format!("-func={}", go_txt.display()))
            .current_dir(&f.module),
        "go tool cover -func (Go's textfmt)",
    );
    assert_eq!(func.stdout, go_func.stdout);
    assert!(String::from_utf8_lossy(&func.stdout).contains("total:"));
    run_ok(
        go().args(["tool", "cover"])
            .arg(format!("-html={}", path.display()))
            .arg("-o")
            .arg(f.out.join("textfmt.html"))
            .current_dir(&f.module),
        "go tool cover -html",
    );
}

#[test]
fn json_follows_the_schema_and_agrees_with_lcov_lines() {
    let f = fixture();
    let r = report(f);
    let path = written(f, Format::Json);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("valid JSON");
    assert_eq!(v["schema"], covformats::json::SCHEMA_NAME);
    assert_eq!(v["version"], covformats::json::SCHEMA_VERSION);
    assert_eq!(v["mode"], "count");
    let total = f.profile.statements();
    assert_eq!(v["totals"]["statements"]["covered"], total.covered);
    assert_eq!(v["totals"]["statements"]["total"], total.total);
    // Per-line hits equal the LCOV DA records genhtml/lcov accepted.
    let lcov = std::fs::read_to_string(written(f, Format::Lcov)).expect("lcov");
    let mut da: Vec<(u64, u64)> = Vec::new();
    for l in lcov.lines().filter_map(|l| l.strip_prefix("DA:")) {
        let (a, b) = l.split_once(',').expect("DA pair");
        da.push((a.parse().expect("line"), b.parse().expect("hits")));
    }
    let mut from_json = Vec::new();
    for p in v["packages"].as_array().expect("packages") {
        for file in p["files"].as_array().expect("files") {
            assert!(file["source"].is_string(), "mapped: {file}");
            for pair in file["lines"].as_array().expect("lines") {
                from_json.push((pair[0].as_u64().expect("n"), pair[1].as_u64().expect("h")));
            }
        }
    }
    assert_eq!(from_json, da);
    assert_eq!(
        r.packages.len(),
        v["packages"].as_array().map_or(0, |a| a.len())
    );
}

#[test]
fn markdown_rows_match_go_tool_covdata_percent() {
    let f = fixture();
    let path = written(f, Format::Markdown);
    let md = std::fs::read_to_string(&path).expect("read");
    let percent = run_ok(
        go().args(["tool", "covdata", "percent"])
            .arg(format!("-i={}", f.covdir.display())),
        "go tool covdata percent",
    );
    let percent = String::from_utf8_lossy(&percent.stdout);
    let mut rows = 0;
    for line in percent.lines() {
        // "\t<pkg>\t\tcoverage: 12.3% of statements"
        let mut parts = line.split('\t').filter(|s| !s.is_empty());
        let (Some(pkg), Some(cov)) = (parts.next(), parts.next()) else {
            continue;
        };
        let pct = cov
            .trim_start_matches("coverage: ")
            .trim_end_matches(" of statements");
        assert!(
            md.contains(&format!("| `{pkg}` |"))
                && md.lines().any(|l| l.contains(pkg) && l.contains(pct)),
            "markdown lacks {pkg} at {pct}:\n{md}"
        );
        rows += 1;
    }
    assert!(rows >= 2, "{percent}");
    std::fs::copy(&path, artifacts().join("coverage.md")).expect("copy md");
}
