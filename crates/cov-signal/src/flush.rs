//! The one-exec flush: a POSIX `sh` script ([`SCRIPT`], `flush.sh`) that
//! finds the service when needed, sends the signal, waits for the counter
//! files and lists the coverage folder, all in one exec, instead of one exec
//! per step and one `ls` per 50 ms poll (each a round trip API server →
//! kubelet → runtime on a real cluster).
//!
//! The script runs under busybox `sh` (distroless `:debug`, the helper image)
//! and dash/bash with GNU tools. Its inputs are argv words, never spliced into
//! its text. Its output is one record a line, and it prints only file names
//! made of `[0-9A-Za-z._-]` (Go's coverage names are), so a hostile name
//! (with a newline, say) can never forge a listing line. Images without a
//! shell make the exec fail as a missing program: the caller then takes the
//! step-by-step path.

use runpods::exec::ExitStatus;
use runpods::listing::{FileEntry, is_plain_name};

/// The script; see the comment at its top for its arguments and records.
pub const SCRIPT: &str = include_str!("flush.sh");

/// The argv that runs [`SCRIPT`]: `sh -c SCRIPT cov-signal ARGS…`.
pub fn argv(
    dir: &str,
    signal: &str,
    pid: Option<&str>,
    wait_ms: u128,
    proc_root: bool,
) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        // $0: what `sh` names itself in its messages.
        "cov-signal".into(),
        dir.into(),
        signal.into(),
        pid.unwrap_or("").into(),
        wait_ms.to_string(),
        if proc_root { "1" } else { "0" }.into(),
    ]
}

/// What the script reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The processes found with this container's `GOCOVERDIR` (when searched).
    pub pids: Option<Vec<u32>>,
    /// A step that could not run: `grep`, `wc` or `kill` missing, `nodir`.
    pub error: Option<String>,
    /// `kill`'s exit code.
    pub kill: Option<i32>,
    /// The listings before the signal, one poll before the last, and the last.
    pub before: Vec<FileEntry>,
    pub previous: Option<Vec<FileEntry>>,
    pub after: Vec<FileEntry>,
    /// The listings arrived complete (`@end`).
    pub listed: bool,
}

/// How the exec ended, for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran {
    /// The image has no `sh`: nothing ran.
    NoShell,
    /// The script ran and said this.
    Report(Report),
}

/// Read the script's output. A status that means "no such program" with no
/// record printed is a missing shell.
pub fn read(status: &ExitStatus, stdout: &[u8]) -> Ran {
    let text = String::from_utf8_lossy(stdout);
    let report = parse(&text);
    let said_anything = text.lines().any(|l| l.starts_with('@'));
    if !said_anything && runpods::exec::program_missing(status, "") {
        return Ran::NoShell;
    }
    Ran::Report(report)
}

fn parse(text: &str) -> Report {
    let mut r = Report::default();
    // Which listing the "F" lines belong to.
    let mut section: Option<&str> = None;
    let mut previous = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("@pids") {
            r.pids = Some(
                rest.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect(),
            );
        } else if let Some(what) = line.strip_prefix("@error ") {
            r.error = Some(what.trim().to_string());
        } else if let Some(code) = line.strip_prefix("@kill ") {
            r.kill = code.trim().parse().ok();
        } else if let Some(name) = line.strip_prefix('@') {
            match name {
                "before" | "previous" | "after" => section = Some(name),
                "end" => {
                    r.listed = true;
                    section = None;
                }
                _ => section = None,
            }
        } else if let Some(entry) = parse_entry(line) {
            match section {
                Some("before") => r.before.push(entry),
                Some("previous") => previous.push(entry),
                Some("after") => r.after.push(entry),
                _ => {}
            }
        }
    }
    // An empty "previous" listing means there was no earlier poll.
    if !previous.is_empty() {
        r.previous = Some(previous);
    }
    r
}

/// One `F SIZE NAME` line; anything else is ignored.
fn parse_entry(line: &str) -> Option<FileEntry> {
    let mut fields = line.split(' ');
    let (Some("F"), Some(size), Some(name), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if !size.bytes().all(|b| b.is_ascii_digit()) || !is_plain_name(name) {
        return None;
    }
    Some(FileEntry {
        name: name.to_string(),
        size: size.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_listings() {
        let out = "@pids 12\n@kill 0\n@before\nF 10 covmeta.ab\n@previous\n\n@after\nF 10 covmeta.ab\nF 40 covcounters.ab.12.3\n@end\n";
        let Ran::Report(r) = read(&ExitStatus::Success, out.as_bytes()) else {
            panic!("report");
        };
        assert_eq!(r.pids, Some(vec![12]));
        assert_eq!(r.kill, Some(0));
        assert_eq!(r.before.len(), 1);
        assert_eq!(r.previous, None);
        assert_eq!(r.after[1].name, "covcounters.ab.12.3");
        assert!(r.listed);
    }

    #[test]
    fn forged_lines_are_ignored() {
        let out = "@before\nF 1 covmeta.a b\nF x covmeta.b\nF 2 covmeta.\u{1b}[31m\n@after\n@end\n";
        let Ran::Report(r) = read(&ExitStatus::Success, out.as_bytes()) else {
            panic!("report");
        };
        assert!(r.before.is_empty(), "{:?}", r.before);
    }

    #[test]
    fn a_missing_shell_is_told_apart_from_a_failing_step() {
        let missing = ExitStatus::Failure {
            reason: "InternalError".into(),
            message: "exec: \"sh\": executable file not found in $PATH".into(),
        };
        assert_eq!(read(&missing, b""), Ran::NoShell);
        assert_eq!(read(&ExitStatus::Code { code: 127 }, b""), Ran::NoShell);
        let Ran::Report(r) = read(&ExitStatus::Code { code: 6 }, b"@error kill\n") else {
            panic!("report");
        };
        assert_eq!(r.error.as_deref(), Some("kill"));
    }
}
