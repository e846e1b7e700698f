//! The example service behaves as its README says: built with
//! `-cover -covermode=atomic` and run with GOCOVERDIR, SIGUSR1 writes a new
//! counter file and resets the counters; built with another mode, the
//! handler logs why it cannot flush. The example's integration test passes
//! against the real service and fails against a wrong one. Coverage is
//! read with Go's own `go tool covdata`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    toolchain::workspace_root().join("examples/go-integration-coverage")
}

fn go() -> Command {
    toolchain::go_command().unwrap_or_else(|e| panic!("{e}"))
}

/// Builds the example once per test binary with the given cover mode.
fn build(mode: &'static str) -> PathBuf {
    static ATOMIC: OnceLock<PathBuf> = OnceLock::new();
    static COUNT: OnceLock<PathBuf> = OnceLock::new();
    let cell = if mode == "atomic" { &ATOMIC } else { &COUNT };
    cell.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("greeter-{mode}"));
        let status = go()
            .args(["build", "-cover", &format!("-covermode={mode}"), "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(example())
            .status()
            .expect("running go build");
        assert!(
            status.success(),
            "go build -covermode={mode} of the example failed"
        );
        out
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running service; killed when dropped.
struct Service {
    child: Child,
    addr: String,
    coverdir: tempfile::TempDir,
}

impl Service {
    fn start(binary: &Path) -> Service {
        let coverdir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new(binary)
            .env("GOCOVERDIR", coverdir.path())
            .env("PORT", port.to_string())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the service");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the service never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Service {
            child,
            addr,
            coverdir,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    fn counter_files(&self) -> Vec<PathBuf> {
        files_starting_with(self.coverdir.path(), "covcounters.")
    }

    /// Sends SIGUSR1 and waits for counter file number `n` to appear.
    fn flush(&self, n: usize) -> Vec<PathBuf> {
        self.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let files = self.counter_files();
            if files.len() >= n {
                return files;
            }
            assert!(
                Instant::now() < deadline,
                "no counter file {n} after SIGUSR1"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn files_starting_with(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("reading the coverage dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

/// The example's integration test against `addrs`; returns (passed, output).
fn integration_test(addrs: &str) -> (bool, String) {
    let out = go()
        .args(["test", "-tags", "integration", "-count=1", "./integration/"])
        .env("GREETER_ADDRS", addrs)
        .current_dir(example())
        .output()
        .expect("running go test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `go tool covdata percent` per package for the given folders.
fn covdata_percent(dirs: &[&Path]) -> Vec<(String, f64)> {
    let joined = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = go()
        .args(["tool", "covdata", "percent", "-i", &joined])
        .output()
        .expect("running go tool covdata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let package = words.next()?.to_owned();
            let percent = words.nth(1)?.trim_end_matches('%').parse().ok()?;
            Some((package, percent))
        })
        .collect()
}

fn percent_of(report: &[(String, f64)], package: &str) -> f64 {
    report
        .iter()
        .find(|(p, _)| p == package)
        .unwrap_or_else(|| panic!("{package} not in {report:?}"))
        .1
}

const HANDLERS: &str = "example.com/greeter/internal/handlers";

#[test]
fn sigusr1_writes_counters_then_clears_them() {
    let service = Service::start(&build("atomic"));
    let (ok, output) = integration_test(&service.addr);
    assert!(
        ok,
        "the integration test fails against the service:\n{output}"
    );

    let first = service.flush(1);
    let meta = files_starting_with(service.coverdir.path(), "covmeta.");
    assert_eq!(meta.len(), 1, "one meta-data file");
    let after_traffic = covdata_percent(&[service.coverdir.path()]);
    let handlers = percent_of(&after_traffic, HANDLERS);
    assert!(
        handlers > 0.0 && handlers < 100.0,
        "the integration test covers part of the handlers, not {handlers}%"
    );

    // A second flush with no traffic in between: its counter file alone
    // must show no handler ran, because the first flush cleared them.
    let second = service.flush(2);
    let new: Vec<&PathBuf> = second.iter().filter(|f| !first.contains(f)).collect();
    assert_eq!(new.len(), 1, "one new counter file: {second:?}");
    let alone = tempfile::tempdir().expect("temp dir");
    for file in [&meta[0], new[0]] {
        std::fs::copy(file, alone.path().join(file.file_name().expect("name"))).expect("copy");
    }
    assert_eq!(percent_of(&covdata_percent(&[alone.path()]), HANDLERS), 0.0);
}

#[test]
fn non_atomic_build_logs_why_it_cannot_flush() {
    let mut service = Service::start(&build("count"));
    // Read the log on a thread, so a silent service fails the test, not hangs it.
    let stderr = BufReader::new(service.child.stderr.take().expect("stderr piped"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    service.signal(libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the service logs an error within 10s of SIGUSR1");
        if line.contains("coverage: writing counters") {
            break line;
        }
    };
    assert!(
        line.contains("covermode=atomic"),
        "the log says why: {line}"
    );
    assert!(
        service.counter_files().is_empty(),
        "nothing written in count mode"
    );
}

/// A server that answers every request with the same wrong JSON.
fn wrong_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"status":"ok","greeting":"Hi","sum":1,"answer":"x","error":"x"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn integration_test_fails_on_wrong_answers() {
    let (ok, output) = integration_test(&wrong_server());
    assert!(
        !ok,
        "the integration test passed against a wrong server:\n{output}"
    );
    assert!(
        output.contains("/greet"),
        "the failure names the request:\n{output}"
    );
}

#[test]
fn sigterm_in_the_example_drains_then_flushes_and_exits_cleanly() {
    let mut service = Service::start(&build("atomic"));
    let (ok, output) = integration_test(&service.addr);
    assert!(ok, "{output}");
    // No SIGUSR1: only the SIGTERM path (graceful shutdown, then flushCoverage) writes.
    assert!(service.counter_files().is_empty());
    service.signal(libc::SIGTERM);
    let status = service.child.wait().expect("waiting for the service");
    assert_eq!(
        status.code(),
        Some(0),
        "main.go shuts down gracefully: {status}"
    );
    assert!(!service.counter_files().is_empty(), "counters were written");
    let report = covdata_percent(&[service.coverdir.path()]);
    assert!(
        percent_of(&report, HANDLERS) > 0.0,
        "the test's requests are in the counters: {report:?}"
    );
}

/// A service without its own SIGTERM handling: coverage.go as users copy it,
/// with `startCoverageFlusher(true)`.
fn bare_service() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bare-service");
        std::fs::create_dir_all(&src).expect("creating the module folder");
        std::fs::copy(example().join("coverage.go"), src.join("coverage.go"))
            .expect("copying coverage.go");
        std::fs::write(src.join("go.mod"), "module example.com/bare\n\ngo 1.22\n")
            .expect("writing go.mod");
        std::fs::write(
            src.join("main.go"),
            r#"package main

import (
	"fmt"
	"os"
)

func work(n int) int {
	if n%2 == 0 {
		return n / 2
	}
	return 3*n + 1
}

func main() {
	startCoverageFlusher(true)
	fmt.Fprintln(os.Stderr, "ready", work(7))
	select {}
}
"#,
        )
        .expect("writing main.go");
        let out = src.join("bare");
        let status = go()
            .args(["build", "-cover", "-covermode=atomic", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .status()
            .expect("running go build");
        assert!(status.success(), "go build of the bare service failed");
        out
    })
    .clone()
}

#[test]
fn sigterm_without_a_handler_of_its_own_flushes_then_exits_like_the_default() {
    use std::os::unix::process::ExitStatusExt;
    let coverdir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(bare_service())
        .env("GOCOVERDIR", coverdir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the bare service");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut line = String::new();
    while !line.starts_with("ready") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("reading stderr") > 0,
            "the service ended before it was ready"
        );
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().expect("waiting");
    // The default action: killed by SIGTERM (a shell shows 143); as PID 1 of a
    // container, where that is ignored, it exits with 143 itself.
    assert!(
        status.signal() == Some(libc::SIGTERM) || status.code() == Some(143),
        "{status}"
    );
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(rest.contains("coverage: counters written"), "{rest}");
    assert_eq!(
        files_starting_with(coverdir.path(), "covcounters.").len(),
        1
    );
    let report = covdata_percent(&[coverdir.path()]);
    assert!(percent_of(&report, "example.com/bare") > 0.0, "{report:?}");
}
