//! Signalling one container and confirming the flush.

use std::time::{Duration, Instant};

use runpods::exec::{ExecError, ExecSpec, ExitStatus, exec_capture, program_missing};
use runpods::listing::{FileEntry, is_meta_file, new_or_grown, parse_ls};
use runpods::outcome::{Outcome, State};
use runpods::retry::RetryPolicy;
use runpods::targets::{CoverDir, Target};
use serde::Serialize;

use crate::diagnose;
use crate::pid::{Chosen, find_service_pid};

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

async fn list_dir(
    client: &kube::Client,
    base: &ExecSpec,
    dir: &str,
) -> Result<Vec<FileEntry>, String> {
    let spec = ExecSpec {
        argv: vec!["ls".into(), "-ln".into(), dir.into()],
        ..base.clone()
    };
    let out = exec_capture(client, &spec, 4 << 20)
        .await
        .map_err(|e| e.to_string())?;
    match out.status {
        ExitStatus::Success => Ok(parse_ls(&String::from_utf8_lossy(&out.output))),
        other if program_missing(&other, &out.stderr) => Err(
            "`ls` is not in the container image, so the flush cannot be confirmed (use --no-wait)"
                .into(),
        ),
        other => Err(format!(
            "listing {dir} failed ({other}): {}",
            first_line(&out.stderr)
        )),
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

/// Signal one container and (unless `no_wait`) wait for its counters.
pub async fn signal_one(
    client: &kube::Client,
    target: &Target,
    opts: &SignalOptions,
) -> Outcome<SignalDetails> {
    let start = Instant::now();
    let base = ExecSpec {
        timeout: opts.exec_timeout,
        retry: opts.retry,
        ..ExecSpec::new(&target.namespace, &target.pod, &target.container, &[])
    };
    let dir = opts.remote_dir.clone().or(match &target.cover_dir {
        CoverDir::Path(p) => Some(p.clone()),
        _ => None,
    });
    let mut details = SignalDetails {
        signal: opts.signal.clone(),
        dir: dir.clone(),
        ..Default::default()
    };
    let done = |state, msg: String, details: SignalDetails, warnings: Vec<String>| {
        let mut o = Outcome::for_target(target, state, msg, start.elapsed()).with_details(details);
        o.warnings = warnings;
        o
    };
    let mut warnings = Vec::new();
    if target.restart_count > 0 {
        warnings.push(format!(
            "container restarted {} time(s); counters of earlier instances exist only if they were flushed before",
            target.restart_count
        ));
    }

    let chosen = match (&opts.pid, target.share_process_namespace) {
        (Some(p), _) => Chosen {
            pid: p.clone(),
            detected: false,
        },
        (None, false) => Chosen {
            pid: "1".into(),
            detected: false,
        },
        (None, true) => match find_service_pid(client, dir.as_deref(), &base).await {
            Ok(c) => c,
            Err(msg) => return done(State::Failed, msg, details, warnings),
        },
    };
    details.pid = chosen.pid.clone();
    details.pid_detected = chosen.detected;

    let confirm_dir = if opts.no_wait { None } else { dir.clone() };
    if !opts.no_wait && confirm_dir.is_none() {
        warnings.push(
            "GOCOVERDIR is not set literally in the spec: flush not confirmed (pass --remote-dir)"
                .into(),
        );
    }
    let before = match &confirm_dir {
        Some(d) => match list_dir(client, &base, d).await {
            Ok(files) => Some(files),
            Err(msg) => {
                return done(
                    State::Failed,
                    format!("before signalling: {msg}"),
                    details,
                    warnings,
                );
            }
        },
        None => None,
    };

    let kill = ExecSpec {
        argv: vec![
            "kill".into(),
            format!("-{}", opts.signal),
            chosen.pid.clone(),
        ],
        ..base.clone()
    };
    match exec_capture(client, &kill, 64 * 1024).await {
        Ok(out) => match out.status {
            ExitStatus::Success => {}
            ref st if program_missing(st, &out.stderr) => {
                return done(State::Failed, diagnose::kill_missing(), details, warnings);
            }
            ExitStatus::Code { code } => {
                return done(
                    State::Failed,
                    format!(
                        "kill -{} {} exited with code {code}: {} (wrong PID? pass --pid)",
                        opts.signal,
                        chosen.pid,
                        first_line(&out.stderr)
                    ),
                    details,
                    warnings,
                );
            }
            other => {
                return done(
                    State::Failed,
                    format!("kill failed: {other}"),
                    details,
                    warnings,
                );
            }
        },
        Err(e) => return done(State::Failed, exec_failure("kill", &e), details, warnings),
    }
    details.signalled = true;
    let pid_note = if chosen.detected {
        format!(
            " (the service's PID {}, found because the pod shares its process namespace)",
            chosen.pid
        )
    } else {
        String::new()
    };
    let (Some(d), Some(before)) = (confirm_dir, before) else {
        return done(
            State::Ok,
            format!(
                "sent SIG{} to PID {}{pid_note}; flush not confirmed",
                opts.signal, chosen.pid
            ),
            details,
            warnings,
        );
    };

    // Wait for a new or grown counter file whose size holds still. Go's runtime
    // writes counters to `tmp.<name>` and renames the finished file into place,
    // so a new file under its final name is already complete; only a file that
    // grew in place (another writer) must keep its size across two listings.
    let deadline = Instant::now() + opts.wait;
    let mut previous: Option<Vec<FileEntry>> = None;
    let mut last = before.clone();
    let mut pause = Duration::from_millis(20);
    loop {
        tokio::time::sleep(pause).await;
        pause = Duration::from_millis(50);
        match list_dir(client, &base, &d).await {
            Ok(now) => {
                let grown: Vec<FileEntry> =
                    new_or_grown(&before, &now).into_iter().cloned().collect();
                let stable = settled(&before, previous.as_deref(), &grown);
                if !grown.is_empty() && stable {
                    details.confirmed = true;
                    let total: u64 = grown.iter().map(|f| f.size).sum();
                    let names: Vec<String> = grown.iter().map(|f| f.name.clone()).collect();
                    details.counters_written = grown;
                    return done(
                        State::Ok,
                        format!(
                            "sent SIG{} to PID {}{pid_note}; counters written: {} ({total} bytes)",
                            opts.signal,
                            chosen.pid,
                            names.join(", ")
                        ),
                        details,
                        warnings,
                    );
                }
                previous = Some(now.clone());
                last = now;
            }
            Err(msg) => warnings.push(format!("after signalling: {msg}")),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let metas: Vec<&FileEntry> = last.iter().filter(|f| is_meta_file(&f.name)).collect();
    let mut modes = Vec::new();
    for m in &metas {
        if let Some(mode) = read_mode(client, &base, &d, &m.name).await
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
    details.counter_mode = mode.clone();
    done(
        State::Failed,
        diagnose::no_counters(
            &chosen.pid,
            &opts.signal,
            metas.len(),
            mode.as_deref(),
            target.share_process_namespace,
        ),
        details,
        warnings,
    )
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
