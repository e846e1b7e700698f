//! Signalling one container and confirming the flush.

use std::time::{Duration, Instant};

use covdata::names::is_meta_file;
use runpods::exec::{ExecError, ExecSpec, ExitStatus, exec_capture, path_missing, program_missing};
use runpods::listing::{FileEntry, new_or_grown, parse_ls};
use runpods::outcome::{Outcome, State};
use runpods::retry::RetryPolicy;
use runpods::targets::{CoverDir, Target};
use runpods_cli::via::Attempt;
use serde::Serialize;

use crate::pid::{Chosen, find_service_pid};
use crate::{diagnose, flush};

/// How to signal.
#[derive(Debug, Clone)]
pub struct SignalOptions {
    /// Signal name without `SIG` (`USR1`) or number.
    pub signal: String,
    /// PID to signal; `None` = 1, or the detected service with shareProcessNamespace.
    pub pid: Option<String>,
    /// How long to wait for the counters.
    pub wait: Duration,
    /// Don't confirm the flush.
    pub no_wait: bool,
    /// Overrides GOCOVERDIR from the spec.
    pub remote_dir: Option<String>,
    /// Time allowed for each exec.
    pub exec_timeout: Duration,
    pub retry: RetryPolicy,
}

/// Facts about one container's signal, for JSON output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalDetails {
    pub signal: String,
    pub pid: String,
    pub pid_detected: bool,
    /// `kill` ran and succeeded.
    pub signalled: bool,
    pub dir: Option<String>,
    /// Counter files the flush wrote (empty when not confirmed).
    pub counters_written: Vec<FileEntry>,
    pub confirmed: bool,
    /// The counter mode read from the meta file, when it was needed and readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter_mode: Option<String>,
}

/// Totals over all containers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalTotals {
    pub signalled: usize,
    pub confirmed: usize,
    pub counter_files: usize,
}

/// Validate a `--signal` value: a name like `USR1`/`SIGUSR1` or a number.
pub fn normalize_signal(s: &str) -> Result<String, String> {
    let t = s.trim();
    let t = t.strip_prefix("SIG").unwrap_or(t);
    let ok = !t.is_empty()
        && (t.bytes().all(|b| b.is_ascii_digit())
            || t.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!(
            "{s:?} is not a signal name (USR1, HUP, …) or number"
        ))
    }
}

/// Validate a `--pid` value: digits only (it becomes an argv word for `kill`).
pub fn validate_pid(s: &str) -> Result<String, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(format!("{s:?} is not a process id"))
    }
}

/// A step that failed; `program_missing` when the image lacks the program.
pub struct StepError {
    pub message: String,
    pub program_missing: bool,
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError {
            message,
            program_missing: false,
        }
    }
}

/// List `dir` with `ls -lnq` (GNU: a newline in a name prints as `?`), or
/// `ls -ln` where `ls` has no `-q` (busybox, which prints `?` anyway).
async fn list_dir(
    client: &kube::Client,
    base: &ExecSpec,
    dir: &str,
) -> Result<Vec<FileEntry>, StepError> {
    let mut out = None;
    for flags in ["-lnq", "-ln"] {
        let spec = ExecSpec {
            argv: vec!["ls".into(), flags.into(), dir.into()],
            ..base.clone()
        };
        let run = exec_capture(client, &spec, 4 << 20)
            .await
            .map_err(|e| e.to_string())?;
        let no_q = matches!(run.status, ExitStatus::Code { .. })
            && run.stderr.to_ascii_lowercase().contains("option");
        out = Some(run);
        if !no_q {
            break;
        }
    }
    let Some(out) = out else {
        return Err(format!("listing {dir} failed").into());
    };
    match out.status {
        ExitStatus::Success => Ok(parse_ls(&String::from_utf8_lossy(&out.output))),
        other if program_missing(&other, &out.stderr) => Err(StepError {
            message: "`ls` is not in the container image, so the flush cannot be confirmed (use --no-wait, or --via auto for a helper container)".into(),
            program_missing: true,
        }),
        _ if path_missing(&out.stderr, dir) => Err(folder_missing(dir).into()),
        other => Err(format!(
            "listing {dir} failed ({other}): {}",
            first_line(&out.stderr)
        )
        .into()),
    }
}

async fn read_mode(
    client: &kube::Client,
    base: &ExecSpec,
    dir: &str,
    meta: &str,
) -> Option<String> {
    let spec = ExecSpec {
        argv: vec![
            "head".into(),
            "-c".into(),
            diagnose::META_HEADER_LEN.to_string(),
            format!("{}/{meta}", dir.trim_end_matches('/')),
        ],
        ..base.clone()
    };
    let out = exec_capture(client, &spec, diagnose::META_HEADER_LEN)
        .await
        .ok()?;
    diagnose::counter_mode(&out.output).map(str::to_string)
}

fn folder_missing(dir: &str) -> String {
    format!(
        "the coverage folder {dir} does not exist in the container: GOCOVERDIR must name a folder the service can write, usually an emptyDir volume mounted there (check the pod's volumeMounts), or pass --remote-dir"
    )
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Whether the counter files in `grown` are finished: new ones are (Go renames
/// them into place when written); one that grew in place only when the
/// `previous` listing already showed it at this size.
fn settled(before: &[FileEntry], previous: Option<&[FileEntry]>, grown: &[FileEntry]) -> bool {
    grown.iter().all(|g| {
        !before.iter().any(|b| b.name == g.name)
            || previous
                .is_some_and(|prev| prev.iter().any(|p| p.name == g.name && p.size == g.size))
    })
}

/// Signal one container and (unless `no_wait`) wait for its counters. The
/// attempt says whether it stopped, before the signal was sent, because the
/// image lacks a program (`--via auto` then uses a helper).
pub async fn signal_one(
    client: &kube::Client,
    target: &Target,
    opts: &SignalOptions,
) -> Attempt<SignalDetails> {
    let start = Instant::now();
    let mut job = Job::new(client, target, opts);
    let (state, message, program_missing) = match job.run().await {
        Ok(message) => (State::Ok, message, false),
        Err(e) => (
            State::Failed,
            e.message,
            e.program_missing && !job.details.signalled,
        ),
    };
    let mut o =
        Outcome::for_target(target, state, message, start.elapsed()).with_details(job.details);
    o.warnings = job.warnings;
    Attempt {
        outcome: o,
        program_missing,
    }
}

/// One container's signal: what it needs, and what it found so far.
struct Job<'a> {
    client: &'a kube::Client,
    target: &'a Target,
    opts: &'a SignalOptions,
    /// The exec every step starts from (container, timeout, retries).
    base: ExecSpec,
    /// The coverage folder, when known.
    dir: Option<String>,
    details: SignalDetails,
    warnings: Vec<String>,
}

impl<'a> Job<'a> {
    fn new(client: &'a kube::Client, target: &'a Target, opts: &'a SignalOptions) -> Self {
        let base = ExecSpec {
            timeout: opts.exec_timeout,
            retry: opts.retry,
            ..ExecSpec::new(&target.namespace, &target.pod, target.exec_container(), &[])
        };
        let dir = opts.remote_dir.clone().or(match &target.cover_dir {
            CoverDir::Path(p) => Some(p.clone()),
            _ => None,
        });
        let mut warnings = Vec::new();
        if target.restart_count > 0 {
            warnings.push(format!(
                "container restarted {} time(s); counters of earlier instances exist only if they were flushed before",
                target.restart_count
            ));
        }
        let details = SignalDetails {
            signal: opts.signal.clone(),
            dir: dir.clone(),
            ..Default::default()
        };
        Job {
            client,
            target,
            opts,
            base,
            dir,
            details,
            warnings,
        }
    }

    /// One exec of the flush script where the image has a shell, else the
    /// steps one exec each; `Ok` and `Err` carry the line to print.
    async fn run(&mut self) -> Result<String, StepError> {
        if let Some(done) = self.run_in_one_exec().await {
            return done;
        }
        self.run_step_by_step().await
    }

    /// `--pid`, else 1; `None` when the service must be searched for.
    fn known_pid(&self) -> Option<Chosen> {
        match (&self.opts.pid, self.target.share_process_namespace) {
            (Some(p), _) => Some(Chosen {
                pid: p.clone(),
                detected: false,
            }),
            (None, false) => Some(Chosen {
                pid: "1".into(),
                detected: false,
            }),
            (None, true) => None,
        }
    }

    /// Signal (and confirm) with [`flush::SCRIPT`] in one exec. `None` when
    /// it does not apply or cannot run here (no folder to watch, a known PID
    /// and `--no-wait` which is one `kill` anyway, no `sh` or `wc` in the image).
    async fn run_in_one_exec(&mut self) -> Option<Result<String, StepError>> {
        let dir = self.dir.clone()?;
        let known = self.known_pid();
        if self.opts.no_wait && known.is_some() {
            return None;
        }
        let proc_root = self.target.helper.as_ref().is_some_and(|h| h.proc_root);
        let wait = if self.opts.no_wait {
            Duration::ZERO
        } else {
            self.opts.wait
        };
        let spec = ExecSpec {
            argv: flush::argv(
                &dir,
                &self.opts.signal,
                known.as_ref().map(|c| c.pid.as_str()),
                wait.as_millis().max(u128::from(!self.opts.no_wait)),
                proc_root,
            ),
            timeout: self.opts.exec_timeout + wait,
            ..self.base.clone()
        };
        let out = match exec_capture(self.client, &spec, 4 << 20).await {
            Ok(out) => out,
            Err(e) => return Some(Err(exec_failure("signal", &e).into())),
        };
        let report = match flush::read(&out.status, &out.output) {
            flush::Ran::NoShell => {
                tracing::debug!(
                    "{}/{}: no sh in the image, one exec per step",
                    self.target.pod,
                    self.target.container
                );
                return None;
            }
            flush::Ran::Report(r) if r.error.as_deref() == Some("wc") => return None,
            flush::Ran::Report(r) => r,
        };
        Some(
            self.follow(known, &dir, report, &out.status, &out.stderr)
                .await,
        )
    }

    /// What the script's report means, step by step as [`Job::run_step_by_step`] would say it.
    async fn follow(
        &mut self,
        known: Option<Chosen>,
        dir: &str,
        report: flush::Report,
        status: &ExitStatus,
        stderr: &str,
    ) -> Result<String, StepError> {
        if report.error.as_deref() == Some("grep") {
            return Err(StepError {
                message: format!(
                    "{}; searching /proc failed (`grep` is not in the container image); pass --pid",
                    crate::pid::SHARE_MSG
                ),
                program_missing: true,
            });
        }
        let chosen = match known {
            Some(c) => c,
            None => crate::pid::choose(dir, report.pids.as_deref().unwrap_or_default())?,
        };
        self.details.pid = chosen.pid.clone();
        self.details.pid_detected = chosen.detected;
        let mut dir = dir.to_string();
        if self.target.helper.as_ref().is_some_and(|h| h.proc_root) {
            dir = runpods::helper::proc_root_dir(&chosen.pid, &dir);
            self.details.dir = Some(dir.clone());
        }
        match report.error.as_deref() {
            Some("nodir") => {
                return Err(if path_missing(stderr, &dir) {
                    format!("before signalling: {}", folder_missing(&dir))
                } else {
                    format!(
                        "before signalling: listing {dir} failed: {}",
                        first_line(stderr)
                    )
                }
                .into());
            }
            Some("kill") => {
                return Err(StepError {
                    message: diagnose::kill_missing(),
                    program_missing: true,
                });
            }
            _ => {}
        }
        let Some(code) = report.kill else {
            return Err(format!(
                "the flush script stopped before signalling ({status}): {}",
                first_line(stderr)
            )
            .into());
        };
        let kill_status = if code == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Code { code }
        };
        self.kill_result(&chosen, &kill_status, stderr)?;
        if self.opts.no_wait {
            return Ok(format!(
                "{}; flush not confirmed",
                sent(&self.opts.signal, &chosen)
            ));
        }
        if !report.listed {
            return Err(format!(
                "{}, but the confirmation was cut off ({status})",
                sent(&self.opts.signal, &chosen)
            )
            .into());
        }
        let grown: Vec<FileEntry> = new_or_grown(&report.before, &report.after)
            .into_iter()
            .cloned()
            .collect();
        if !grown.is_empty() && settled(&report.before, report.previous.as_deref(), &grown) {
            return Ok(self.confirmed(&chosen, grown));
        }
        Err(self
            .explain_no_counters(&chosen, &dir, &report.after)
            .await
            .into())
    }

    /// The steps one exec each: PID search, listing, `kill`, a listing every 50 ms.
    async fn run_step_by_step(&mut self) -> Result<String, StepError> {
        let chosen = self.choose_pid().await?;
        if self.target.helper.as_ref().is_some_and(|h| h.proc_root) {
            // The helper reads the folder through the service's root.
            self.dir = self
                .dir
                .as_deref()
                .map(|d| runpods::helper::proc_root_dir(&chosen.pid, d));
            self.details.dir = self.dir.clone();
        }
        let before = self.list_before().await?;
        self.send_signal(&chosen).await?;
        let Some((dir, before)) = before else {
            return Ok(format!(
                "{}; flush not confirmed",
                sent(&self.opts.signal, &chosen)
            ));
        };
        match self.wait_for_counters(&dir, &before).await {
            Ok(grown) => Ok(self.confirmed(&chosen, grown)),
            Err(last) => Err(self.explain_no_counters(&chosen, &dir, &last).await.into()),
        }
    }

    /// `--pid`, else 1, else (shared process namespace) the service found inside.
    async fn choose_pid(&mut self) -> Result<Chosen, StepError> {
        let chosen = match self.known_pid() {
            Some(c) => c,
            None => find_service_pid(self.client, self.dir.as_deref(), &self.base).await?,
        };
        self.details.pid = chosen.pid.clone();
        self.details.pid_detected = chosen.detected;
        Ok(chosen)
    }

    /// The coverage folder's listing before the signal, when the flush is to be confirmed.
    async fn list_before(&mut self) -> Result<Option<(String, Vec<FileEntry>)>, StepError> {
        if self.opts.no_wait {
            return Ok(None);
        }
        let Some(dir) = self.dir.clone() else {
            self.warnings.push(
                "GOCOVERDIR is not set literally in the spec: flush not confirmed (pass --remote-dir)"
                    .into(),
            );
            return Ok(None);
        };
        let files = list_dir(self.client, &self.base, &dir)
            .await
            .map_err(|e| StepError {
                message: format!("before signalling: {}", e.message),
                ..e
            })?;
        Ok(Some((dir, files)))
    }

    /// `kill -SIGNAL PID` in the container.
    async fn send_signal(&mut self, chosen: &Chosen) -> Result<(), StepError> {
        let signal = &self.opts.signal;
        let kill = ExecSpec {
            argv: vec!["kill".into(), format!("-{signal}"), chosen.pid.clone()],
            ..self.base.clone()
        };
        let out = exec_capture(self.client, &kill, 64 * 1024)
            .await
            .map_err(|e| exec_failure("kill", &e))?;
        self.kill_result(chosen, &out.status, &out.stderr)
    }

    /// What `kill`'s exit says; marks the container signalled on success.
    fn kill_result(
        &mut self,
        chosen: &Chosen,
        status: &ExitStatus,
        stderr: &str,
    ) -> Result<(), StepError> {
        let signal = &self.opts.signal;
        match status {
            ExitStatus::Success => {}
            st if program_missing(st, stderr) => {
                return Err(StepError {
                    message: diagnose::kill_missing(),
                    program_missing: true,
                });
            }
            ExitStatus::Code { code } => {
                return Err(format!(
                    "kill -{signal} {} exited with code {code}: {} (wrong PID? pass --pid)",
                    chosen.pid,
                    first_line(stderr)
                )
                .into());
            }
            other => return Err(format!("kill failed: {other}").into()),
        }
        self.details.signalled = true;
        Ok(())
    }

    /// Wait for a new or grown counter file whose size holds still; on time
    /// out, the last listing. Go's runtime writes counters to `tmp.<name>` and
    /// renames the finished file into place, so a new file under its final
    /// name is already complete; only a file that grew in place (another
    /// writer) must keep its size across two listings.
    async fn wait_for_counters(
        &mut self,
        dir: &str,
        before: &[FileEntry],
    ) -> Result<Vec<FileEntry>, Vec<FileEntry>> {
        let deadline = Instant::now() + self.opts.wait;
        let mut previous: Option<Vec<FileEntry>> = None;
        let mut last = before.to_vec();
        let mut pause = Duration::from_millis(20);
        loop {
            tokio::time::sleep(pause).await;
            pause = Duration::from_millis(50);
            match list_dir(self.client, &self.base, dir).await {
                Ok(now) => {
                    let grown: Vec<FileEntry> =
                        new_or_grown(before, &now).into_iter().cloned().collect();
                    if !grown.is_empty() && settled(before, previous.as_deref(), &grown) {
                        return Ok(grown);
                    }
                    previous = Some(now.clone());
                    last = now;
                }
                Err(e) => self
                    .warnings
                    .push(format!("after signalling: {}", e.message)),
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
        }
    }

    /// The line for a confirmed flush.
    fn confirmed(&mut self, chosen: &Chosen, grown: Vec<FileEntry>) -> String {
        let total: u64 = grown.iter().map(|f| f.size).sum();
        let names: Vec<String> = grown.iter().map(|f| f.name.clone()).collect();
        self.details.confirmed = true;
        self.details.counters_written = grown;
        format!(
            "{}; counters written: {} ({total} bytes)",
            sent(&self.opts.signal, chosen),
            names.join(", ")
        )
    }

    /// Why no counters came: read the counter mode from the meta files in `last`.
    async fn explain_no_counters(
        &mut self,
        chosen: &Chosen,
        dir: &str,
        last: &[FileEntry],
    ) -> String {
        let metas: Vec<&FileEntry> = last.iter().filter(|f| is_meta_file(&f.name)).collect();
        let mut modes = Vec::new();
        for m in &metas {
            if let Some(mode) = read_mode(self.client, &self.base, dir, &m.name).await
                && !modes.contains(&mode)
            {
                modes.push(mode);
            }
        }
        let mode = modes
            .iter()
            .find(|m| *m != "atomic")
            .or(modes.first())
            .cloned();
        self.details.counter_mode = mode.clone();
        diagnose::no_counters(
            &chosen.pid,
            &self.opts.signal,
            metas.len(),
            mode.as_deref(),
            self.target.share_process_namespace,
        )
    }
}

/// "sent SIGUSR1 to PID 1", naming how a detected PID was found.
fn sent(signal: &str, chosen: &Chosen) -> String {
    let pid_note = if chosen.detected {
        format!(
            " (the service's PID {}, found because the pod shares its process namespace)",
            chosen.pid
        )
    } else {
        String::new()
    };
    format!("sent SIG{signal} to PID {}{pid_note}", chosen.pid)
}

/// A failed exec, in words.
pub fn exec_failure(what: &str, e: &ExecError) -> String {
    match e {
        ExecError::TimedOut(d) => format!("{what}: exec timed out after {d:?}"),
        other => format!("{what}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, size: u64) -> FileEntry {
        FileEntry {
            name: name.into(),
            size,
        }
    }

    #[test]
    fn new_files_are_finished_grown_ones_must_hold_their_size() {
        let before = [f("covcounters.a.1.1", 10)];
        assert!(settled(&before, None, &[f("covcounters.a.1.2", 40)]));
        let grown = [f("covcounters.a.1.1", 30)];
        assert!(!settled(&before, None, &grown));
        assert!(!settled(
            &before,
            Some(&[f("covcounters.a.1.1", 20)]),
            &grown
        ));
        assert!(settled(&before, Some(&grown), &grown));
    }

    #[test]
    fn signals() {
        assert_eq!(normalize_signal("SIGUSR1"), Ok("USR1".into()));
        assert_eq!(normalize_signal("10"), Ok("10".into()));
        assert!(normalize_signal("usr1; rm -rf /").is_err());
        assert!(validate_pid("1").is_ok());
        assert!(validate_pid("-1").is_err());
    }
}
