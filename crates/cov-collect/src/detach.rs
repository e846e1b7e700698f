//! A follower in the background: `--follow --detach --pid-file F` starts one
//! and returns once its watch is up; `--stop --pid-file F` ends it (SIGTERM),
//! waits for its last collection, prints its summary and exits with its status.
//!
//! Beside the pid file `F`: `F.log` (its stderr), `F.out` (its summary, as
//! `--output` asks), `F.exit` (its exit status), `F.ready` (its watch is up).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the follower's environment: the pid file whose companions it writes.
pub const DETACHED_ENV: &str = "COV_COLLECT_DETACHED_PID_FILE";

/// A companion file of the pid file (`F.log`, `F.out`, …).
pub fn companion(pid_file: &Path, ext: &str) -> PathBuf {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Whether `pid` is a live `cov-collect` (not a recycled pid of something else).
fn is_follower(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .next()
                .is_some_and(|argv0| argv0.ends_with(b"cov-collect"))
        })
        .unwrap_or_else(|_| {
            // No /proc (macOS): signal 0 says whether it exists.
            // SAFETY: kill(2) with signal 0 only checks.
            unsafe { libc::kill(pid, 0) == 0 }
        })
        && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn read_pid(pid_file: &Path) -> Result<Option<i32>, String> {
    match std::fs::read_to_string(pid_file) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{} does not hold a process id", pid_file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", pid_file.display())),
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let tmp = companion(path, "tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Start the follower in the background: this program again, without
/// `--detach`, in the same process group (so a Ctrl-C that stops Skaffold also
/// makes it finish with a last collection). Returns the exit code.
pub fn start(pid_file: &Path, ready_timeout: Duration) -> i32 {
    match read_pid(pid_file) {
        Ok(Some(pid)) if is_follower(pid) => {
            eprintln!(
                "cov-collect: already following (pid {pid}, {}); nothing to start",
                pid_file.display()
            );
            return 0;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("cov-collect: error: --pid-file: {e}");
            return 2;
        }
    }
    for ext in ["ready", "exit", "out"] {
        let _ = std::fs::remove_file(companion(pid_file, ext));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cov-collect: error: cannot find this program to start it again: {e}");
            return 1;
        }
    };
    let open = |ext: &str| std::fs::File::create(companion(pid_file, ext));
    let (log, out) = match (open("log"), open("out")) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!(
                "cov-collect: error: creating files beside {}: {e}",
                pid_file.display()
            );
            return 1;
        }
    };
    let args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    let mut child = match Command::new(exe)
        .args(args)
        .env(DETACHED_ENV, pid_file)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(log)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cov-collect: error: starting the follower: {e}");
            return 1;
        }
    };
    let pid = child.id();
    if let Err(e) = write_atomic(pid_file, &format!("{pid}\n")) {
        eprintln!("cov-collect: error: {e}");
        let _ = child.kill();
        return 1;
    }
    let deadline = Instant::now() + ready_timeout;
    loop {
        if companion(pid_file, "ready").exists() {
            eprintln!(
                "cov-collect: following in the background (pid {pid}; log {}); stop it with cov-collect --stop --pid-file {}",
                companion(pid_file, "log").display(),
                pid_file.display()
            );
            return 0;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "cov-collect: error: the follower ended before its watch was up ({status}); its log:"
            );
            if let Ok(mut f) = std::fs::File::open(companion(pid_file, "log")) {
                let _ = std::io::copy(&mut f, &mut std::io::stderr());
            }
            let _ = std::fs::remove_file(pid_file);
            return status.code().unwrap_or(1).max(1);
        }
        if Instant::now() >= deadline {
            eprintln!(
                "cov-collect: error: the follower's watch was not up after {ready_timeout:?}; see {}",
                companion(pid_file, "log").display()
            );
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Called by the follower once its watch is up.
pub fn mark_ready() {
    if let Some(pid_file) = std::env::var_os(DETACHED_ENV) {
        let _ = std::fs::write(companion(Path::new(&pid_file), "ready"), b"");
    }
}

/// Called by the follower at the end, after printing its summary.
pub fn record_exit(code: i32) {
    if let Some(pid_file) = std::env::var_os(DETACHED_ENV) {
        let _ = write_atomic(
            &companion(Path::new(&pid_file), "exit"),
            &format!("{code}\n"),
        );
    }
}

/// Stop the follower of `pid_file`, wait (up to `wait`) for its last
/// collection, print its summary; its exit status is returned.
pub fn stop(pid_file: &Path, wait: Duration) -> i32 {
    let pid = match read_pid(pid_file) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            eprintln!(
                "cov-collect: error: no follower: {} does not exist (start one with --follow --detach --pid-file)",
                pid_file.display()
            );
            return 2;
        }
        Err(e) => {
            eprintln!("cov-collect: error: --pid-file: {e}");
            return 2;
        }
    };
    if is_follower(pid) {
        // SAFETY: kill(2) on a pid we checked is a cov-collect.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + wait;
        while is_follower(pid) {
            if Instant::now() >= deadline {
                eprintln!(
                    "cov-collect: error: the follower (pid {pid}) is still collecting after {wait:?}; see {}",
                    companion(pid_file, "log").display()
                );
                return 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let code = std::fs::read_to_string(companion(pid_file, "exit"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let Some(code) = code else {
        eprintln!(
            "cov-collect: error: the follower (pid {pid}) ended without a summary (killed?); files it collected are kept; see {}",
            companion(pid_file, "log").display()
        );
        let _ = std::fs::remove_file(pid_file);
        return 1;
    };
    if let Ok(mut out) = std::fs::File::open(companion(pid_file, "out")) {
        let _ = std::io::copy(&mut out, &mut std::io::stdout());
    }
    for ext in ["ready", "exit"] {
        let _ = std::fs::remove_file(companion(pid_file, ext));
    }
    let _ = std::fs::remove_file(pid_file);
    code
}
