//! The flush script under the shells and tools it meets in images: busybox
//! `sh` with busybox applets only (distroless `:debug`, the helper image), and
//! dash and bash with GNU coreutils and grep. A fake service flushes the way
//! Go's runtime does (`tmp.NAME`, then a rename) on SIGUSR1; its folder also
//! holds names that would forge `ls -ln` lines.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use cov_signal::flush::{Ran, Report, SCRIPT, read};
use runpods::exec::ExitStatus;

/// A folder of busybox applet links named `applets`, for a `PATH` with only those.
fn busybox_path(dir: &Path, applets: &[&str]) -> PathBuf {
    let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.join(format!("bin-{}", applets.len()));
    std::fs::create_dir_all(&bin).expect("bin");
    for a in applets {
        if !bin.join(a).exists() {
            symlink(&busybox, bin.join(a)).expect("applet link");
        }
    }
    bin
}

const APPLETS: [&str; 8] = ["sh", "kill", "wc", "grep", "ls", "sleep", "mv", "printf"];

/// The shells: (argv before `-c`, PATH).
fn shells(dir: &Path) -> Vec<(Vec<String>, String)> {
    let bb = busybox_path(dir, &APPLETS);
    vec![
        (
            vec![bb.join("sh").display().to_string()],
            bb.display().to_string(),
        ),
        (vec!["/bin/dash".into()], "/usr/bin:/bin".into()),
        (vec!["/bin/bash".into()], "/usr/bin:/bin".into()),
    ]
}

fn run(shell: &(Vec<String>, String), args: &[&str], env: &[(&str, &str)]) -> (Ran, String) {
    let out = Command::new(&shell.0[0])
        .args(&shell.0[1..])
        .args(["-c", SCRIPT, "cov-signal"])
        .args(args)
        .env_clear()
        .env("PATH", &shell.1)
        .envs(env.iter().copied())
        .output()
        .expect("run the script");
    let status = match out.status.code() {
        Some(0) => ExitStatus::Success,
        Some(code) => ExitStatus::Code { code },
        None => ExitStatus::NoStatus,
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (read(&status, &out.stdout), stderr)
}

fn report(ran: Ran) -> Report {
    match ran {
        Ran::Report(r) => r,
        Ran::NoShell => panic!("the script did not run"),
    }
}

/// A process that writes a counter file as Go does when it gets SIGUSR1.
fn fake_service(path: &str, dir: &Path) -> Child {
    let body = r#"trap 'i=$((i+1)); printf 12345678 > "$D/tmp.c"; mv "$D/tmp.c" "$D/covcounters.0123456789abcdef.$$.$i"' USR1
i=0
while :; do sleep 0.01; done"#;
    let bb = busybox_path(dir, &APPLETS);
    let child = Command::new(bb.join("sh"))
        .args(["-c", body])
        .env_clear()
        .env("PATH", path)
        .env("D", dir.join("cov"))
        .spawn()
        .expect("fake service");
    // Until the trap is set.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child
}

#[test]
fn signals_waits_and_lists_under_busybox_dash_and_bash() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cov = tmp.path().join("cov");
    std::fs::create_dir(&cov).expect("cov");
    std::fs::write(cov.join("covmeta.0123456789abcdef"), b"meta").expect("meta");
    // Names that forge a GNU `ls -ln` line, or hide a counter name after a space.
    let forged = "covmeta.x\n-rw-r--r-- 1 0 0 77 Nov 26 12:00 covcounters.0123456789abcdef.9.9";
    std::fs::write(cov.join(forged), b"x").expect("forged");
    std::fs::write(cov.join("x covcounters.0123456789abcdef.8.8"), b"x").expect("spaced");
    let bb = busybox_path(tmp.path(), &APPLETS);
    let mut service = fake_service(&bb.display().to_string(), tmp.path());
    let pid = service.id().to_string();
    let dir = cov.display().to_string();
    for (n, shell) in shells(tmp.path()).iter().enumerate() {
        let (ran, stderr) = run(shell, &[&dir, "USR1", &pid, "3000", "0"], &[]);
        let r = report(ran);
        assert_eq!(r.kill, Some(0), "{shell:?}: {r:?} {stderr}");
        assert!(r.listed, "{shell:?}: {r:?}");
        let names = |l: &[runpods::listing::FileEntry]| -> Vec<String> {
            l.iter().map(|f| f.name.clone()).collect()
        };
        let new = format!("covcounters.0123456789abcdef.{pid}.{}", n + 1);
        assert!(!names(&r.before).contains(&new), "{shell:?}: {r:?}");
        assert!(names(&r.after).contains(&new), "{shell:?}: {r:?}");
        assert_eq!(r.after.len(), n + 2, "only plain names: {:?}", r.after);
        assert!(r.after.iter().all(|f| f.size > 0));
    }
    let _ = service.kill();
    let _ = service.wait();
}

#[test]
fn finds_the_service_by_its_coverage_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("cov").display().to_string();
    std::fs::create_dir(&dir).expect("cov");
    let var = format!("GOCOVERDIR={dir}");
    let mut service = Command::new("/bin/sleep")
        .arg("30")
        .env("GOCOVERDIR", &dir)
        .spawn()
        .expect("sleep");
    for shell in shells(tmp.path()) {
        // The script's own environment holds the variable too: it must not find itself.
        let (ran, stderr) = run(
            &shell,
            &[&dir, "CONT", "", "0", "0"],
            &[("GOCOVERDIR", &dir)],
        );
        let r = report(ran);
        assert_eq!(
            r.pids,
            Some(vec![service.id()]),
            "{shell:?} {var}: {r:?} {stderr}"
        );
        assert_eq!(r.kill, Some(0), "{shell:?}: {r:?}");
    }
    let _ = service.kill();
    let _ = service.wait();
    for shell in shells(tmp.path()) {
        let (ran, _) = run(&shell, &[&dir, "CONT", "", "0", "0"], &[]);
        assert_eq!(report(ran).pids, Some(vec![]), "{shell:?}");
    }
}

#[test]
fn a_missing_folder_or_kill_is_reported_before_signalling() {
    let tmp = tempfile::tempdir().expect("tmp");
    for shell in shells(tmp.path()) {
        let (ran, stderr) = run(&shell, &["/no/such/folder", "USR1", "1", "1000", "0"], &[]);
        let r = report(ran);
        assert_eq!(r.error.as_deref(), Some("nodir"), "{shell:?}: {r:?}");
        assert_eq!(r.kill, None);
        assert!(
            runpods::exec::path_missing(&stderr, "/no/such/folder"),
            "{shell:?}: {stderr}"
        );
    }
    // busybox without a kill applet on PATH (sh's builtin does not count).
    let no_kill = busybox_path(tmp.path(), &["sh", "wc", "grep", "ls"]);
    let shell = (
        vec![no_kill.join("sh").display().to_string()],
        no_kill.display().to_string(),
    );
    let dir = tmp.path().display().to_string();
    let (ran, _) = run(&shell, &[&dir, "USR1", "1", "1000", "0"], &[]);
    assert_eq!(report(ran).error.as_deref(), Some("kill"));
}
