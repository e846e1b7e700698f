//! Which process to signal.
//!
//! Normally the service is PID 1 of its container. With
//! `shareProcessNamespace: true` every container of the pod sees one process
//! tree whose PID 1 is the pause process, so `kill 1` would hit the wrong
//! process. Then the service is found from inside the container: the
//! processes whose environment holds this container's `GOCOVERDIR=<dir>`
//! (other containers' processes don't have it, and the pause process has no
//! environment). Exactly one match is used; none or several stop with a
//! message asking for `--pid`.

use runpods::exec::{ExecSpec, ExitStatus, exec_capture, program_missing};

use crate::signal::StepError;

/// How the PID was chosen, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub pid: String,
    /// Found inside the container because the pod shares its process namespace.
    pub detected: bool,
}

/// Why the service must be searched for.
pub const SHARE_MSG: &str =
    "the pod sets shareProcessNamespace: true, so PID 1 is the pause process, not the service";

/// PIDs in a `/proc` listing (numeric names only).
pub fn parse_proc_listing(text: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// PIDs from `grep -l` output lines `/proc/<pid>/environ`.
pub fn parse_grep_matches(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("/proc/")?
                .strip_suffix("/environ")?
                .parse()
                .ok()
        })
        .collect()
}

/// Find the service's PID in a pod that shares its process namespace.
pub async fn find_service_pid(
    client: &kube::Client,
    dir: Option<&str>,
    base: &ExecSpec,
) -> Result<Chosen, StepError> {
    let share_msg = SHARE_MSG;
    let Some(dir) = dir else {
        return Err(format!(
            "{share_msg}, and without GOCOVERDIR in the spec the service cannot be found: pass --pid"
        )
        .into());
    };
    let list = ExecSpec {
        argv: vec!["ls".into(), "/proc".into()],
        ..base.clone()
    };
    let listing = exec_capture(client, &list, 1 << 20).await.map_err(|e| {
        StepError::from(format!(
            "{share_msg}; listing /proc failed: {e}; pass --pid"
        ))
    })?;
    if listing.status != ExitStatus::Success {
        return Err(StepError {
            message: format!(
                "{share_msg}; listing /proc failed ({}); pass --pid",
                listing.status
            ),
            program_missing: program_missing(&listing.status, &listing.stderr),
        });
    }
    let pids: Vec<u32> = parse_proc_listing(&String::from_utf8_lossy(&listing.output))
        .into_iter()
        .filter(|&p| p != 1)
        .collect();
    if pids.is_empty() {
        return Err(format!("{share_msg}; no other process is visible; pass --pid").into());
    }
    // environ is NUL-separated: -z makes each variable a record, so busybox's
    // grep (which stops a line at the first NUL) finds it as GNU grep does,
    // and -x matches the whole variable, not a longer directory.
    let mut argv: Vec<String> = ["grep", "-l", "-s", "-z", "-x", "-F", "-e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(format!("GOCOVERDIR={dir}"));
    argv.extend(pids.iter().map(|p| format!("/proc/{p}/environ")));
    let grep = ExecSpec {
        argv,
        ..base.clone()
    };
    let found = exec_capture(client, &grep, 1 << 20).await.map_err(|e| {
        StepError::from(format!(
            "{share_msg}; searching /proc failed: {e}; pass --pid"
        ))
    })?;
    // grep exits 1 for "no match" and 2 when some file was unreadable; both still list matches.
    if found.status.code().is_none() {
        return Err(StepError {
            message: format!(
                "{share_msg}; searching /proc failed ({}); pass --pid",
                found.status
            ),
            program_missing: program_missing(&found.status, &found.stderr),
        });
    }
    let matches: Vec<u32> = parse_grep_matches(&String::from_utf8_lossy(&found.output))
        .into_iter()
        .filter(|p| pids.contains(p))
        .collect();
    choose(dir, &matches)
}

/// The one process in `matches` (the PIDs whose environment holds
/// `GOCOVERDIR=<dir>`); none or several stop with a message asking for `--pid`.
pub fn choose(dir: &str, matches: &[u32]) -> Result<Chosen, StepError> {
    match matches {
        [one] => Ok(Chosen {
            pid: one.to_string(),
            detected: true,
        }),
        [] => Err(format!(
            "{SHARE_MSG}; no process with GOCOVERDIR={dir} found in the container; pass --pid"
        )
        .into()),
        many => Err(format!(
            "{SHARE_MSG}; several processes have GOCOVERDIR={dir} (PIDs {}); pass --pid",
            many.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_listing() {
        assert_eq!(parse_proc_listing("1\n23\nacpi\nself\n7\n"), [1, 7, 23]);
    }

    #[test]
    fn grep_lines() {
        assert_eq!(
            parse_grep_matches("/proc/12/environ\n/proc/x/environ\n/proc/40/environ\n"),
            [12, 40]
        );
    }
}
