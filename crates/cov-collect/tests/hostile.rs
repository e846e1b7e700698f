//! A pod whose `tar` is replaced by a script emitting a hostile archive:
//! nothing is written outside the output folder, and every bad member is reported.

mod common;

use common::*;
use localkube::Fault;
use std::path::Path;

/// One raw tar member (names written byte for byte, so `..` and `/` survive).
fn member(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8], link: &str, size: Option<u64>) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    let size = size.unwrap_or(data.len() as u64);
    // 11 octal digits and a NUL, or all 12 digits for sizes of 8 GiB and up.
    let field = if size < 1 << 33 {
        format!("{size:011o}\0")
    } else {
        format!("{size:012o}")
    };
    h[124..136].copy_from_slice(field.as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("readable").flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).expect("under").display().to_string());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_archives_write_nothing_outside_and_are_reported() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    let base = cluster.dir.path().join("victim-area");
    std::fs::create_dir_all(&base).expect("area");
    let victim = base.join("victim");
    std::fs::write(&victim, b"untouched").expect("victim");
    let out = base.join("out");

    let mut tar = Vec::new();
    let v = victim.display().to_string();
    let area = base.display().to_string();
    member(&mut tar, "./", b'5', b"", "", None);
    member(&mut tar, "./covmeta.0123", b'0', b"meta", "", None);
    member(&mut tar, "../victim", b'0', b"owned", "", None);
    member(&mut tar, "./../../victim", b'0', b"owned", "", None);
    member(&mut tar, &v, b'0', b"owned", "", None);
    // A symlink, then a regular file of the same name trying to write through it.
    member(&mut tar, "./covmeta.link", b'2', b"", &v, None);
    member(&mut tar, "./covmeta.link", b'0', b"through", "", None);
    // A symlinked folder, then a file inside it.
    member(&mut tar, "./dir-link", b'2', b"", &area, None);
    member(&mut tar, "./dir-link/victim", b'0', b"owned", "", None);
    member(&mut tar, "./covcounters.0123.9.9", b'1', b"", &v, None);
    member(&mut tar, "./covmeta.dev", b'3', b"", "", None);
    member(&mut tar, "./notes.txt", b'0', b"not coverage", "", None);
    // Finally a 10 GB "sparse" file: the header, then zeros streamed for real.
    member(
        &mut tar,
        "./covcounters.0123.2.2",
        b'0',
        b"",
        "",
        Some(10 << 30),
    );
    // The script runs inside the pod: the archive goes where it can see it.
    let hidden = pod
        .volumes
        .values()
        .next()
        .expect("a volume")
        .join(".hostile");
    std::fs::create_dir(&hidden).expect("hidden dir");
    std::fs::write(hidden.join("hostile.tar"), &tar).expect("archive");
    let mount = "/coverage-data/.hostile/hostile.tar";
    let script = cluster.dir.path().join("hostile-tar");
    std::fs::write(
        &script,
        format!("#!/busybox/sh\ncat '{mount}'\nexec head -c 10737418240 /dev/zero\n"),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    cluster
        .kube
        .set_fault(
            &pod.namespace,
            &pod.name,
            Fault::ReplaceProgram {
                name: "tar".into(),
                with: script,
            },
        )
        .expect("fault");

    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "--out",
            out.to_str().expect("utf8"),
            "--max-bytes",
            "1048576",
        ],
    );
    assert_eq!(code, 1, "{json}");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"untouched");
    let dest = format!("out/{}/{}/app", pod.namespace, pod.name);
    let mut expected = vec![
        "out".to_string(),
        format!("out/{}", pod.namespace),
        format!("out/{}/{}", pod.namespace, pod.name),
        dest.clone(),
        format!("{dest}/covmeta.0123"),
        format!("{dest}/covmeta.link"),
        "victim".to_string(),
    ];
    expected.sort();
    assert_eq!(tree(&base), expected);
    assert!(
        std::fs::symlink_metadata(base.join(&dest).join("covmeta.link"))
            .expect("file")
            .is_file()
    );

    let line = &json["results"][0];
    assert!(
        line["message"]
            .as_str()
            .unwrap_or("")
            .contains("--max-bytes"),
        "{line}"
    );
    let refused = line["details"]["refused"].to_string();
    for (name, why) in [
        ("../victim", ".."),
        ("./../../victim", ".."),
        (v.as_str(), "absolute"),
        ("./covmeta.link", "symbolic link"),
        ("./dir-link", "symbolic link"),
        ("./dir-link/victim", "top level"),
        ("./covcounters.0123.9.9", "hard link"),
        ("./covmeta.dev", "device"),
        ("./notes.txt", "not a Go coverage file"),
        ("./covcounters.0123.2.2", "--max-bytes"),
    ] {
        assert!(
            refused.contains(name) && refused.contains(why),
            "{name} ({why}) not reported: {refused}"
        );
    }
}

/// Text a CI log or terminal could act on: a control character other than
/// the line ends, a line that starts a GitHub Actions command, or an Azure
/// Pipelines / GitHub `##[`/`##vso[` command anywhere.
fn assert_printable(what: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        let bad = line.chars().find(|&c| c.is_control() && c != '\t');
        assert!(bad.is_none(), "{what} line {i} has {bad:?}: {line:?}");
        assert!(
            !line.trim_start().starts_with("::"),
            "{what} line {i} starts a workflow command: {line:?}"
        );
        assert!(
            !line.contains("##vso[") && !line.contains("##["),
            "{what} line {i} holds a workflow command: {line:?}"
        );
    }
}

/// A script run inside the service's `:debug` image, whose shell is busybox's.
fn hostile_script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/busybox/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

/// A coverage folder holding names and link targets made of ANSI escapes,
/// newlines and CI workflow commands, plus many stray files; then `kill` and
/// `tar` that print the same on stderr. Every line the tools print is safe,
/// repeated refusals are capped, and JSON carries the raw names.
#[test]
fn hostile_names_links_and_stderr_are_escaped_and_capped() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    let folder = pod.volumes["coverage-data"].clone();
    let hostile_names = [
        "covmeta.\u{1b}[31mred",
        "x\n::error::owned",
        "y\n##vso[task.setvariable variable=TOKEN]owned",
        "\u{1b}]0;title\u{7}z",
    ];
    for name in hostile_names {
        std::fs::write(folder.join(name), b"x").expect("hostile name");
    }
    std::os::unix::fs::symlink(
        "/etc/passwd\n::error::link\u{1b}[2J",
        folder.join("covmeta.link"),
    )
    .expect("link");
    for i in 0..30 {
        std::fs::write(folder.join(format!("stray-{i:02}")), b"x").expect("stray");
    }
    let out = cluster.dir.path().join("out");
    let out_arg = out.to_str().expect("utf8");

    let human = cluster.run("cov-collect", &["--run-id", RUN_ID, "--out", out_arg], &[]);
    assert_eq!(
        human.status.code(),
        Some(1),
        "a symlink is an unsafe member"
    );
    let stdout = String::from_utf8_lossy(&human.stdout);
    assert_printable("stdout", &stdout);
    assert_printable("stderr", &String::from_utf8_lossy(&human.stderr));
    // 4 hostile names + 1 link + 30 strays refused; 10 shown.
    let refusals = stdout
        .lines()
        .filter(|l| l.contains("warning: refused"))
        .count();
    assert_eq!(refusals, 10, "{stdout}");
    assert!(
        stdout.contains("… and 25 more refused archive member(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("covmeta.\\x1b[31mred"), "{stdout}");
    assert!(
        stdout.contains("/etc/passwd\\n::error::link\\x1b[2J"),
        "{stdout}"
    );

    let (code, json) = cluster.run_json("cov-collect", &["--run-id", RUN_ID, "--out", out_arg]);
    assert_eq!(code, 1);
    let refused = json["results"][0]["details"]["refused"]
        .as_array()
        .expect("refused list");
    assert_eq!(refused.len(), 35, "JSON lists every refusal: {refused:?}");
    for name in hostile_names {
        assert!(
            refused.iter().any(|r| r["name"] == format!("./{name}")),
            "{name:?} raw in JSON: {refused:?}"
        );
    }
    let raw = cluster.run(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out_arg, "--output", "json"],
        &[],
    );
    assert_printable("JSON", &String::from_utf8_lossy(&raw.stdout));

    let noise =
        "printf '\\033[2J\\n::error::owned\\n##vso[task.complete result=Succeeded]\\n' >&2; exit 2";
    for program in ["kill", "tar"] {
        let with = hostile_script(cluster.dir.path(), &format!("hostile-{program}"), noise);
        cluster
            .kube
            .set_fault(
                &pod.namespace,
                &pod.name,
                Fault::ReplaceProgram {
                    name: program.into(),
                    with,
                },
            )
            .expect("fault");
    }
    for tool in ["cov-signal", "cov-collect"] {
        let run = cluster.run(
            tool,
            &["--run-id", RUN_ID, "-v"],
            &[("SKAFFOLD_WORK_DIR", out_arg)],
        );
        assert_eq!(run.status.code(), Some(1), "{tool}");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            stdout.contains("\\x1b[2J"),
            "{tool} shows the escaped stderr: {stdout:?}"
        );
        assert_printable(&format!("{tool} stdout"), &stdout);
        assert_printable(
            &format!("{tool} stderr"),
            &String::from_utf8_lossy(&run.stderr),
        );
    }
}
