//! `cargo xtask bench report`: cov-report against `go tool covdata`.
//!
//! A Go program touching a wide slice of the standard library is built
//! with `-cover -covermode=atomic -coverpkg=all` (about 250 instrumented
//! packages) and run 2000 times into one GOCOVERDIR; the first 200 counter
//! files form a second data set to show how time scales. The data is cached
//! under `.tools/bench/report/` (keyed by the workload source and Go
//! version), so reruns start measuring at once.
//!
//! Then, per data set and subcommand (`percent`, `textfmt`): check both
//! tools produce identical output, run them alternately (median of at least
//! five runs each), and print wall time, peak RSS (from GNU time; see
//! `peak_rss` for why not `wait4`'s rusage)
//! and the ratios, against both `go tool covdata` (what users type) and
//! Go's covdata binary run directly (`go tool -n covdata`), so the `go`
//! command's start-up does not flatter us. Then cov-report's own time per
//! stage (listing, reading, meta decode, counter decode and merge,
//! formatting), from its `-v` log, shows where the rest goes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// The workload: a `main` exercising encoders, compression, crypto,
/// go/parser, templates, an HTTP round trip and more.
const WORKLOAD: &str = include_str!("report/workload.go");
const FULL_RUNS: usize = 2000;
const SMALL_RUNS: usize = 200;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed runs per tool and case (median reported; at least 5).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Rebuild the Go program and regenerate the cached coverage data.
    #[arg(long)]
    pub regenerate: bool,
}

pub fn run(args: &Args) -> Result<()> {
    ensure!(
        args.runs >= 5,
        "--runs must be at least 5 for a meaningful median"
    );
    let go = toolchain::go().map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = ensure_data(args.regenerate)?;
    let ours = build_cov_report()?;
    let theirs = covdata_binary()?;
    println!("cov-report: {}", ours.display());
    println!("go covdata: {} ({})", theirs.display(), go.display());
    println!();

    let mut medians = Vec::new();
    let wrapper = GoTool;
    for (runs, dir) in [(SMALL_RUNS, &data.small), (FULL_RUNS, &data.full)] {
        let (files, bytes) = dir_stats(dir)?;
        println!(
            "data set: {runs} runs, {files} files, {:.1} MB in {}",
            bytes as f64 / 1e6,
            dir.display()
        );
        for cmd in ["percent", "textfmt"] {
            let case = Case::new(cmd, dir)?;
            case.verify(&ours, &theirs)?;
            let (go, ours_m, tool) = case.measure(&ours, &theirs, &wrapper, args.runs)?;
            println!(
                "  {cmd:<8} covdata binary {:>7.3} s wall {:>7.3} s cpu {:>6.1} MB | cov-report {:>7.3} s wall {:>7.3} s cpu {:>6.1} MB",
                go.wall.as_secs_f64(),
                go.cpu.as_secs_f64(),
                go.rss as f64 / 1e6,
                ours_m.wall.as_secs_f64(),
                ours_m.cpu.as_secs_f64(),
                ours_m.rss as f64 / 1e6,
            );
            println!(
                "  {:<8} go tool covdata {:>6.3} s wall (with the go command's start-up)",
                "",
                tool.wall.as_secs_f64(),
            );
            println!(
                "  {:<8} ratio: {:.1}x faster than go tool covdata, {:.1}x than the covdata binary (wall), {:.1}x less cpu, {:.2}x the peak RSS",
                "",
                tool.wall.as_secs_f64() / ours_m.wall.as_secs_f64(),
                go.wall.as_secs_f64() / ours_m.wall.as_secs_f64(),
                go.cpu.as_secs_f64() / ours_m.cpu.as_secs_f64(),
                ours_m.rss as f64 / go.rss as f64,
            );
            println!("  {:<8} {}", "", case.stage_times(&ours)?);
            medians.push((runs, cmd, go, ours_m));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "load average while measuring: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("scaling from {SMALL_RUNS} to {FULL_RUNS} counter files (10x the data):");
    for cmd in ["percent", "textfmt"] {
        let get = |runs| {
            medians
                .iter()
                .find(|m| m.0 == runs && m.1 == cmd)
                .map(|m| (m.2, m.3))
        };
        let (Some((g1, o1)), Some((g2, o2))) = (get(SMALL_RUNS), get(FULL_RUNS)) else {
            continue;
        };
        let x = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "  {cmd:<8} go tool covdata {:>5.2}x wall {:>5.2}x cpu | cov-report {:>5.2}x wall {:>5.2}x cpu",
            x(g1.wall, g2.wall),
            x(g1.cpu, g2.cpu),
            x(o1.wall, o2.wall),
            x(o1.cpu, o2.cpu),
        );
    }
    println!();
    let src = data
        .full
        .parent()
        .map(|r| r.join("src"))
        .unwrap_or_default();
    let goroot = std::fs::canonicalize(&go)
        .ok()
        .and_then(|g| Some(g.parent()?.parent()?.to_path_buf()));
    super::formats::run(&ours, &data.full, &src, goroot.as_deref(), args.runs)?;
    Ok(())
}

/// `go tool covdata`, as users run it (with the bench's Go environment).
struct GoTool;

impl GoTool {
    fn command(&self) -> Result<Command> {
        go_cmd()
    }
}

struct Data {
    full: PathBuf,
    small: PathBuf,
}

/// Build the workload and fill the two data sets, unless cached.
fn ensure_data(regenerate: bool) -> Result<Data> {
    let key = fnv64(format!("{WORKLOAD}{}", toolchain::GO_VERSION).as_bytes());
    let root = toolchain::tools_dir()
        .join("bench/report")
        .join(format!("{key:016x}"));
    let data = Data {
        full: root.join(format!("runs-{FULL_RUNS}")),
        small: root.join(format!("runs-{SMALL_RUNS}")),
    };
    let done = root.join("complete");
    if done.exists() && !regenerate {
        return Ok(data);
    }
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let src = root.join("src");
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join("main.go"), WORKLOAD)?;
    std::fs::write(
        src.join("go.mod"),
        "module example.com/benchreport\n\ngo 1.22\n",
    )?;
    let prog = root.join("workload");
    eprintln!("building the workload with -coverpkg=all (first time: a minute or two)…");
    let status = go_cmd()?
        .current_dir(&src)
        .args([
            "build",
            "-cover",
            "-covermode=atomic",
            "-coverpkg=all",
            "-o",
        ])
        .arg(&prog)
        .arg(".")
        .status()
        .context("running go build")?;
    ensure!(
        status.success(),
        "go build of the benchmark workload failed"
    );

    std::fs::create_dir_all(&data.full)?;
    eprintln!("running it {FULL_RUNS} times into {}…", data.full.display());
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= FULL_RUNS {
                            return Ok(());
                        }
                        let st = Command::new(&prog)
                            .arg(i.to_string())
                            .env("GOCOVERDIR", &data.full)
                            .status()
                            .context("running the workload")?;
                        ensure!(st.success(), "workload run {i} failed: {st}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    eprintln!("  took {:.0} s", started.elapsed().as_secs_f64());

    // The small set: the meta file and the first 200 counter files.
    std::fs::create_dir_all(&data.small)?;
    let mut counters = Vec::new();
    for e in std::fs::read_dir(&data.full)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("covmeta.") {
            std::fs::hard_link(e.path(), data.small.join(&name))?;
        } else if name.starts_with("covcounters.") {
            counters.push(name);
        }
    }
    ensure!(
        counters.len() == FULL_RUNS,
        "expected {FULL_RUNS} counter files, found {}",
        counters.len()
    );
    counters.sort();
    for name in &counters[..SMALL_RUNS] {
        std::fs::hard_link(data.full.join(name), data.small.join(name))?;
    }
    std::fs::write(&done, "")?;
    Ok(data)
}

fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}

fn go_cmd() -> Result<Command> {
    toolchain::go_command().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `cargo build --release -p cov-report`, into the same target dir.
fn build_cov_report() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(toolchain::workspace_root())
        .args(["build", "--release", "--quiet", "-p", "cov-report"])
        .status()
        .context("running cargo build --release")?;
    ensure!(status.success(), "building cov-report (release) failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| toolchain::workspace_root().join("target"));
    Ok(target.join("release/cov-report"))
}

/// The covdata tool binary `go tool covdata` runs.
fn covdata_binary() -> Result<PathBuf> {
    let out = go_cmd()?
        .args(["tool", "-n", "covdata"])
        .output()
        .context("go tool -n covdata")?;
    ensure!(
        out.status.success(),
        "go tool -n covdata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    ensure!(
        path.is_file(),
        "go tool -n covdata named {}, which does not exist",
        path.display()
    );
    Ok(path)
}

fn dir_stats(dir: &Path) -> Result<(usize, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        n += 1;
        bytes += e.metadata()?.len();
    }
    Ok((n, bytes))
}

struct Case {
    cmd: &'static str,
    dir: PathBuf,
    out: tempfile_dir::Dir,
}

impl Case {
    fn new(cmd: &'static str, dir: &Path) -> Result<Self> {
        Ok(Case {
            cmd,
            dir: dir.to_path_buf(),
            out: tempfile_dir::Dir::new()?,
        })
    }

    fn go_args(&self, out: &Path) -> Vec<String> {
        let mut v = vec![self.cmd.to_string(), format!("-i={}", self.dir.display())];
        if self.cmd == "textfmt" {
            v.push(format!("-o={}", out.display()));
        }
        v
    }

    fn our_args(&self, out: &Path) -> Vec<String> {
        let mut v = vec![self.cmd.to_string()];
        if self.cmd == "textfmt" {
            v.push("-o".into());
            v.push(out.display().to_string());
        }
        v.push(self.dir.display().to_string());
        v
    }

    /// Both tools must produce the same bytes before timing means anything.
    fn verify(&self, ours: &Path, theirs: &Path) -> Result<()> {
        let go_out = self.out.path().join("go.out");
        let our_out = self.out.path().join("ours.out");
        let g = Command::new(theirs).args(self.go_args(&go_out)).output()?;
        let o = Command::new(ours).args(self.our_args(&our_out)).output()?;
        ensure!(
            g.status.success(),
            "go tool covdata {} failed: {}",
            self.cmd,
            String::from_utf8_lossy(&g.stderr)
        );
        ensure!(
            o.status.success(),
            "cov-report {} failed: {}",
            self.cmd,
            String::from_utf8_lossy(&o.stderr)
        );
        let (g, o) = if self.cmd == "textfmt" {
            (std::fs::read(&go_out)?, std::fs::read(&our_out)?)
        } else {
            (g.stdout, o.stdout)
        };
        if g != o {
            bail!(
                "outputs of {} differ between go tool covdata and cov-report",
                self.cmd
            );
        }
        ensure!(!g.is_empty(), "{} printed nothing", self.cmd);
        Ok(())
    }

    /// Alternate the tools; per tool the medians of wall time, CPU time
    /// and peak RSS: the covdata binary, cov-report, `go tool covdata`.
    fn measure(
        &self,
        ours: &Path,
        theirs: &Path,
        wrapper: &GoTool,
        runs: usize,
    ) -> Result<(Measured, Measured, Measured)> {
        let go_out = self.out.path().join("go.out");
        let our_out = self.out.path().join("ours.out");
        let (mut go, mut us, mut tool) = (Vec::new(), Vec::new(), Vec::new());
        // The three commands, timed alternately, then measured for memory.
        let mut go_bin = Command::new(theirs);
        go_bin.args(self.go_args(&go_out));
        let mut ours_cmd = Command::new(ours);
        ours_cmd.args(self.our_args(&our_out));
        let mut go_tool = wrapper.command()?;
        go_tool
            .args(["tool", "covdata"])
            .args(self.go_args(&go_out));
        for _ in 0..runs {
            go.push(timed(&mut go_bin)?);
            us.push(timed(&mut ours_cmd)?);
            tool.push(timed(&mut go_tool)?);
        }
        let (mut go, mut us, mut tool) = (
            Measured::median(&go),
            Measured::median(&us),
            Measured::median(&tool),
        );
        go.rss = peak_rss(&go_bin, runs)?;
        us.rss = peak_rss(&ours_cmd, runs)?;
        tool.rss = peak_rss(&go_tool, runs)?;
        Ok((go, us, tool))
    }

    /// cov-report's own account of one run (its `-v` stage-times line).
    fn stage_times(&self, ours: &Path) -> Result<String> {
        let our_out = self.out.path().join("ours.out");
        let mut args = self.our_args(&our_out);
        // Go syntax (`-v` alone would take the next argument as its level).
        args.push("-v=1".into());
        let o = Command::new(ours).args(&args).output()?;
        ensure!(o.status.success(), "cov-report {args:?} failed");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let line = stderr
            .lines()
            .find_map(|l| l.split_once("stage times").map(|(_, rest)| rest))
            .context("cov-report -v printed no stage times")?;
        Ok(format!("cov-report stage times{line}"))
    }
}

/// One run (or the medians of several).
#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    /// User + system CPU time: steadier than wall time on a busy machine.
    cpu: Duration,
    /// Peak resident set size in bytes (from [`peak_rss`]).
    rss: u64,
}

impl Measured {
    fn median(v: &[Measured]) -> Measured {
        Measured {
            wall: median(v.iter().map(|m| m.wall).collect()),
            cpu: median(v.iter().map(|m| m.cpu).collect()),
            rss: median(v.iter().map(|m| m.rss).collect()),
        }
    }
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The median peak RSS of `runs` runs of `cmd`, as GNU time reports it.
///
/// Not from `wait4` here: Linux folds the high-water mark of the memory a
/// process had before `exec` into its own, and a child spawned from this
/// (vfork, as Rust spawns) starts with this process's, tens of MB after the
/// outputs compared above. GNU time is a ~1 MB process that forks.
fn peak_rss(cmd: &Command, runs: usize) -> Result<u64> {
    let time = Path::new("/usr/bin/time");
    ensure!(
        time.is_file(),
        "{} is missing (Debian package `time`): run `cargo xtask tools`",
        time.display()
    );
    let report = tempfile_dir::Dir::new()?;
    let out = report.path().join("rss");
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let status = Command::new(time)
            .args(["-f", "%M", "-o"])
            .arg(&out)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running {} {cmd:?}", time.display()))?;
        ensure!(status.success(), "{cmd:?} under {} failed", time.display());
        let kib: u64 = std::fs::read_to_string(&out)?
            .trim()
            .parse()
            .with_context(|| format!("{} printed no peak RSS", time.display()))?;
        v.push(kib * 1024);
    }
    Ok(median(v))
}

/// Run to completion with stdout discarded; wall time, CPU time (its peak
/// RSS is not this child's own: see [`peak_rss`]).
fn timed(cmd: &mut Command) -> Result<Measured> {
    let start = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, zero-initialised and filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: we own this child and reap it exactly once, here.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    ensure!(
        r == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed (status {status})"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Filled in by `peak_rss`.
        rss: 0,
    })
}

/// A scratch folder removed on drop (xtask has no tempfile dependency).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let p =
                std::env::temp_dir().join(format!("xtask-bench-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
