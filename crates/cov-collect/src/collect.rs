//! Collecting one container's coverage folder.
//!
//! The stream is `tar -czf - -C DIR .` run by exec (argv, no shell). When the
//! image's tar cannot compress (busybox builds without gzip, tar without `-z`),
//! tar exits nonzero without output and we run `tar -cf - -C DIR .` instead.
//!
//! **GNU tar's exit code 1.** GNU tar exits 1 when a file "changed as we read
//! it" or was "removed before we read it". Go's runtime writes coverage files
//! under a `tmp.` name and renames them when complete, so the only files that
//! can change under tar are those in-progress `tmp.*` files, which extraction
//! ignores; every `covmeta.*`/`covcounters.*` file in the archive is whole.
//! So exit 1 is accepted when every stderr line is one of those two warnings
//! *and* the archive itself was read cleanly to its end (the gzip checksum
//! included). Any other stderr, or a damaged archive, is a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use covdata::names::is_counter_file;
use hostile_text::{DEFAULT_CAP, cap};
use runpods::exec::{ExecError, ExecSpec, ExitStatus, exec_with, path_missing, program_missing};
use runpods::outcome::{Outcome, State};
use runpods::retry::RetryPolicy;
use runpods::targets::{CoverDir, Target};
use runpods_cli::via::Attempt;
use safe_untar::{ExtractOptions, Extracted, Refused, extract};
use serde::Serialize;
use tokio::io::AsyncReadExt;

/// How to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The output root (already resolved against SKAFFOLD_WORK_DIR).
    pub out: PathBuf,
    pub snapshot: Option<String>,
    /// Overrides GOCOVERDIR from the spec.
    pub remote_dir: Option<String>,
    pub max_bytes: u64,
    pub exec_timeout: Duration,
    pub retry: RetryPolicy,
}

/// Facts about one container's collection, for JSON output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectDetails {
    pub remote_dir: String,
    pub local_dir: PathBuf,
    /// Coverage files now in place (written or already identical).
    pub files: usize,
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub taken_by_earlier_snapshots: usize,
    pub refused: Vec<Refused>,
    pub bytes_transferred: u64,
    pub bytes_written: u64,
    pub gzip: bool,
    /// Counter files of this snapshot (for the record).
    #[serde(skip)]
    pub snapshot_counters: Vec<String>,
}

/// Totals over all containers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectTotals {
    pub files: usize,
    pub bytes_transferred: u64,
    pub bytes_written: u64,
    pub out: PathBuf,
}

/// Whether a refusal means the pod sent something unsafe (not merely a stray file).
fn is_unsafe_refusal(r: &Refused) -> bool {
    !r.reason.starts_with("not a Go coverage file") && r.reason != "directory"
}

/// Whether a tar exit 1 is only GNU tar's "file changed/removed" warning.
pub fn only_changed_warnings(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            l.ends_with("file changed as we read it")
                || l.ends_with("File removed before we read it")
                || l.ends_with("Exiting with failure status due to previous errors")
        })
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

async fn stream_tar(
    client: &kube::Client,
    base: &ExecSpec,
    argv: &[&str],
    dest: &Path,
    options: &ExtractOptions,
) -> Result<runpods::exec::Finished<Extracted>, ExecError> {
    let spec = ExecSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..base.clone()
    };
    let dest = dest.to_path_buf();
    let options = options.clone();
    exec_with(client, &spec, move |mut stdout| async move {
        // The extractor is synchronous (tar, flate2) and runs on a blocking
        // thread, fed through a channel: if this future is dropped (timeout),
        // the sender goes with it and the extractor sees the end of its input.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(32);
        let extractor = tokio::task::spawn_blocking(move || {
            extract(
                ChannelReader {
                    rx,
                    chunk: Vec::new(),
                    at: 0,
                },
                &dest,
                &options,
            )
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        break; // the extractor stopped (cap, hostile member, error)
                    }
                }
            }
        }
        drop(tx);
        extractor.await.unwrap_or_else(|e| Extracted {
            error: Some(format!("extraction task failed: {e}")),
            ..Default::default()
        })
    })
    .await
}

/// A blocking reader over chunks sent from the async side.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Collect one container's coverage folder. The attempt says whether it
/// stopped, before anything was copied, because the image has no `tar`
/// (`--via auto` then uses a helper).
pub async fn collect_one(
    client: &kube::Client,
    target: &Target,
    opts: &CollectOptions,
    taken: std::collections::BTreeSet<String>,
) -> Attempt<CollectDetails> {
    let mut program_missing = false;
    let outcome = collect(client, target, opts, taken, &mut program_missing).await;
    Attempt {
        outcome,
        program_missing,
    }
}

async fn collect(
    client: &kube::Client,
    target: &Target,
    opts: &CollectOptions,
    taken: std::collections::BTreeSet<String>,
    tar_missing: &mut bool,
) -> Outcome<CollectDetails> {
    let start = Instant::now();
    let fail = |msg: String, details: Option<CollectDetails>| {
        let mut o = Outcome::for_target(target, State::Failed, msg, start.elapsed());
        o.details = details;
        o
    };
    let dir = match remote_dir(target, opts) {
        Ok(d) => d,
        Err(msg) => return fail(msg, None),
    };
    let dir = match &target.helper {
        Some(h) if h.proc_root && target.share_process_namespace => {
            return fail(
                format!(
                    "{dir} is mounted with subPath (which a helper container cannot mount) and the pod shares its process namespace, so the service's PID is not 1: pass --remote-dir /proc/<pid>/root{dir} with the PID cov-signal reported"
                ),
                None,
            );
        }
        // The helper reads the folder through the service's root (PID 1 of the
        // namespace it shares with the coverage container).
        Some(h) if h.proc_root => runpods::helper::proc_root_dir("1", &dir),
        _ => dir,
    };
    let local = match crate::outdir::container_dir(
        &opts.out,
        opts.snapshot.as_deref(),
        &target.namespace,
        &target.pod,
        &target.container,
    ) {
        Ok(p) => p,
        Err(msg) => return fail(msg, None),
    };
    let mut details = CollectDetails {
        remote_dir: dir.clone(),
        local_dir: local.clone(),
        ..Default::default()
    };
    let extract_opts = ExtractOptions {
        max_bytes: opts.max_bytes,
        only_needed_meta: opts.snapshot.is_some(),
        taken,
    };
    let streamed = match stream_archive(client, target, opts, &dir, &local, &extract_opts).await {
        Ok(s) => s,
        Err(Failed::TarMissing) => {
            *tar_missing = true;
            return fail(
                "`tar` is not in the container image: use --via auto (or helper) so a helper container copies the files, or a base image that carries it (busybox, alpine, debian, ubuntu, or a distroless :debug variant)".into(),
                Some(details),
            );
        }
        Err(Failed::Other(msg)) => return fail(msg, Some(details)),
    };
    record(&mut details, &streamed);
    let mut warnings = warnings(target, &dir, &streamed);
    let status_ok = tar_status_ok(&streamed, &mut warnings);
    let (state, message) = verdict(&streamed, status_ok, start.elapsed());
    let mut o = Outcome::for_target(target, state, message, start.elapsed()).with_details(details);
    o.warnings = warnings;
    o
}

/// The coverage folder in the container: `--remote-dir`, else GOCOVERDIR from the spec.
fn remote_dir(target: &Target, opts: &CollectOptions) -> Result<String, String> {
    match (&opts.remote_dir, &target.cover_dir) {
        (Some(d), _) => Ok(d.clone()),
        (None, CoverDir::Path(p)) => Ok(p.clone()),
        (None, CoverDir::Indirect) => Err(
            "GOCOVERDIR comes from valueFrom, so its value is not in the spec: pass --remote-dir"
                .into(),
        ),
        (None, CoverDir::Unset) => {
            Err("the container's env has no GOCOVERDIR: pass --remote-dir".into())
        }
    }
}

/// What streaming the archive gave: tar's end, extraction's report, how.
struct Streamed {
    finished: runpods::exec::Finished<Extracted>,
    /// Bytes received over both attempts.
    transferred: u64,
    /// The image's tar could not compress; the second attempt was plain tar.
    fell_back: bool,
}

enum Failed {
    TarMissing,
    Other(String),
}

/// `tar -czf -` extracted as it arrives; plain `tar -cf -` when `-z` failed
/// before sending anything.
async fn stream_archive(
    client: &kube::Client,
    target: &Target,
    opts: &CollectOptions,
    dir: &str,
    local: &Path,
    extract_opts: &ExtractOptions,
) -> Result<Streamed, Failed> {
    let base = ExecSpec {
        timeout: opts.exec_timeout,
        retry: opts.retry,
        ..ExecSpec::new(&target.namespace, &target.pod, target.exec_container(), &[])
    };
    let gz = ["tar", "-czf", "-", "-C", dir, "."];
    let plain = ["tar", "-cf", "-", "-C", dir, "."];
    let finished = stream_tar(client, &base, &gz, local, extract_opts)
        .await
        .map_err(|e| Failed::Other(format!("tar: {e}")))?;
    let received = finished.output.bytes_received;
    if program_missing(&finished.status, &finished.stderr) && received == 0 {
        return Err(Failed::TarMissing);
    }
    if received == 0 && path_missing(&finished.stderr, dir) {
        return Err(Failed::Other(folder_missing(dir)));
    }
    if !(matches!(finished.status, ExitStatus::Code { code } if code != 0) && received == 0) {
        return Ok(Streamed {
            finished,
            transferred: received,
            fell_back: false,
        });
    }
    tracing::info!(
        "{}: tar -z failed ({}), retrying uncompressed",
        target.label(),
        first_line(&finished.stderr)
    );
    let finished = stream_tar(client, &base, &plain, local, extract_opts)
        .await
        .map_err(|e| Failed::Other(format!("tar (uncompressed): {e}")))?;
    Ok(Streamed {
        transferred: received + finished.output.bytes_received,
        finished,
        fell_back: true,
    })
}

/// The message for a coverage folder that is not in the container.
pub fn folder_missing(dir: &str) -> String {
    format!(
        "the coverage folder {dir} does not exist in the container: GOCOVERDIR must name a folder the service can write, usually an emptyDir volume mounted there (check the pod's volumeMounts), or pass --remote-dir"
    )
}

/// Copy extraction's facts into the JSON details.
fn record(details: &mut CollectDetails, streamed: &Streamed) {
    let x = &streamed.finished.output;
    details.files = x.files();
    details.written = x.written.clone();
    details.unchanged = x.unchanged.clone();
    details.taken_by_earlier_snapshots = x.taken_earlier.len();
    details.refused = x.refused.clone();
    details.bytes_transferred = streamed.transferred;
    details.bytes_written = x.bytes_written;
    details.gzip = x.gzip;
    details.snapshot_counters = x
        .written
        .iter()
        .chain(&x.unchanged)
        .filter(|n| is_counter_file(n))
        .cloned()
        .collect();
}

/// Warnings worth a human's attention, also when collection succeeded.
fn warnings(target: &Target, dir: &str, streamed: &Streamed) -> Vec<String> {
    let x = &streamed.finished.output;
    let mut warnings = Vec::new();
    if streamed.fell_back {
        warnings.push("the image's tar cannot compress (-z); collected uncompressed".into());
    }
    if target.restart_count > 0 {
        warnings.push(format!(
            "container restarted {} time(s); counters of earlier instances are here only if they were flushed before",
            target.restart_count
        ));
    }
    // One line per refused member, unsafe ones first, capped: a pod can hold
    // thousands. The text is raw here (JSON carries it as is) and escaped
    // when printed.
    let (unsafe_first, stray): (Vec<&Refused>, Vec<&Refused>) =
        x.refused.iter().partition(|r| is_unsafe_refusal(r));
    let refused = unsafe_first
        .into_iter()
        .chain(stray)
        .map(|r| format!("refused \"{}\": {}", r.name, r.reason))
        .collect();
    warnings.extend(cap(refused, DEFAULT_CAP, "refused archive member(s)"));
    if !x.counters_without_meta.is_empty() {
        let names = cap(x.counters_without_meta.clone(), DEFAULT_CAP, "file(s)");
        warnings.push(format!(
            "{} counter file(s) without their meta file (covmeta.*), which coverage tools will skip: {}",
            x.counters_without_meta.len(),
            names.join(", ")
        ));
    }
    if x.files() == 0 && x.error.is_none() && x.taken_earlier.is_empty() {
        warnings.push(format!(
            "{dir} holds no coverage files: was the binary built with -cover, and was cov-signal run?"
        ));
    }
    warnings
}

/// Whether tar's exit status is acceptable (see the module doc on exit 1).
fn tar_status_ok(streamed: &Streamed, warnings: &mut Vec<String>) -> bool {
    let finished = &streamed.finished;
    match &finished.status {
        ExitStatus::Success => true,
        ExitStatus::Code { code: 1 }
            if only_changed_warnings(&finished.stderr) && finished.output.error.is_none() =>
        {
            warnings.push("tar reported files changing while read (Go's in-progress tmp.* files); the archive was complete".into());
            true
        }
        _ => false,
    }
}

/// The container's state and line: extraction's error, tar's, unsafe members, or the summary.
fn verdict(streamed: &Streamed, status_ok: bool, elapsed: Duration) -> (State, String) {
    let finished = &streamed.finished;
    let x = &finished.output;
    let summary = format!(
        "{} file(s), {} transferred, {} written, {:.2}s",
        x.files(),
        human_bytes(streamed.transferred),
        human_bytes(x.bytes_written),
        elapsed.as_secs_f64()
    );
    let tar_failure = || format!("{}{}", finished.status, stderr_suffix(&finished.stderr));
    let unsafe_members = x.refused.iter().filter(|r| is_unsafe_refusal(r)).count();
    if let Some(err) = &x.error {
        let status = if status_ok {
            String::new()
        } else {
            format!("; tar: {}", tar_failure())
        };
        (State::Failed, format!("{err}{status} (kept: {summary})"))
    } else if !status_ok {
        (
            State::Failed,
            format!("tar failed: {} (kept: {summary})", tar_failure()),
        )
    } else if unsafe_members > 0 {
        (
            State::Failed,
            format!("refused {unsafe_members} unsafe archive member(s) (see warnings); {summary}"),
        )
    } else if x.taken_earlier.is_empty() {
        (State::Ok, summary)
    } else {
        (
            State::Ok,
            format!(
                "{summary} ({} counter file(s) left to earlier snapshots)",
                x.taken_earlier.len()
            ),
        )
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let l = first_line(stderr);
    if l.is_empty() {
        String::new()
    } else {
        format!(": {l}")
    }
}

/// `1.2 MiB`-style sizes for human output.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_warnings() {
        assert!(only_changed_warnings(
            "tar: ./tmp.covcounters.x: file changed as we read it\ntar: Exiting with failure status due to previous errors\n"
        ));
        assert!(!only_changed_warnings(
            "tar: ./x: Cannot open: Permission denied\n"
        ));
        assert!(!only_changed_warnings(""));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
