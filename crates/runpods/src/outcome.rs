//! Per-container results, the summary, human and JSON output, exit codes.
//!
//! Names, messages and warnings carry raw text from the cluster and the pods
//! (file names, link targets, a program's stderr). Human output escapes them
//! as it prints ([`hostile_text::escape`]); JSON output carries them raw, with
//! every control character escaped ([`hostile_text::to_json_pretty`]).
//!
//! Exit codes (both tools): 0 every selected container succeeded; 1 any
//! failed (or, with `--strict`, any was skipped); 2 usage errors or nothing
//! matched (`runpods_cli::EXIT_USAGE`).

use std::io::Write;
use std::time::Duration;

use hostile_text::escape;
use serde::Serialize;

use crate::targets::{Skip, Target};

/// What happened to one pod or container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Skipped,
    Failed,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Skipped => "skipped",
            State::Failed => "FAILED",
        }
    }
}

/// One line of output.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome<D> {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub state: State,
    /// One human sentence: what happened, or why not.
    pub message: String,
    /// Warnings worth a human's attention even when the state is ok.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
    /// Tool-specific facts (files, bytes, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<D>,
}

impl<D> Outcome<D> {
    pub fn for_target(
        t: &Target,
        state: State,
        message: impl Into<String>,
        elapsed: Duration,
    ) -> Self {
        Outcome {
            namespace: t.namespace.clone(),
            pod: t.pod.clone(),
            container: Some(t.container.clone()),
            state,
            message: message.into(),
            warnings: Vec::new(),
            elapsed_ms: elapsed.as_millis() as u64,
            details: None,
        }
    }

    pub fn skipped(s: &Skip) -> Self {
        Outcome {
            namespace: s.namespace.clone(),
            pod: s.pod.clone(),
            container: s.container.clone(),
            state: State::Skipped,
            message: s.reason.clone(),
            warnings: Vec::new(),
            elapsed_ms: 0,
            details: None,
        }
    }

    pub fn with_details(mut self, d: D) -> Self {
        self.details = Some(d);
        self
    }

    pub fn where_(&self) -> String {
        match &self.container {
            Some(c) => format!("{}/{}/{}", self.namespace, self.pod, c),
            None => format!("{}/{}", self.namespace, self.pod),
        }
    }
}

/// Counts by state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub skipped: usize,
    pub failed: usize,
    pub elapsed_ms: u64,
}

/// The whole run, as printed or emitted as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report<D, S> {
    pub tool: &'static str,
    pub context: String,
    pub scope: String,
    pub selector: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    pub results: Vec<Outcome<D>>,
    pub summary: Summary,
    /// Tool-specific totals.
    pub totals: S,
}

impl<D: Serialize, S: Serialize> Report<D, S> {
    pub fn summarize(&mut self, elapsed: Duration) {
        let count = |st| self.results.iter().filter(|o| o.state == st).count();
        self.summary = Summary {
            ok: count(State::Ok),
            skipped: count(State::Skipped),
            failed: count(State::Failed),
            elapsed_ms: elapsed.as_millis() as u64,
        };
    }

    /// 0 all selected containers succeeded, 1 any failed (or was skipped, with `strict`).
    pub fn exit_code(&self, strict: bool) -> i32 {
        if self.summary.failed > 0 || (strict && self.summary.skipped > 0) {
            1
        } else {
            0
        }
    }

    /// One line per pod/container, then the summary line (`totals_line` adds the tool's totals).
    pub fn write_human(&self, out: &mut dyn Write, totals_line: &str) -> std::io::Result<()> {
        let wheres: Vec<String> = self
            .results
            .iter()
            .map(|o| escape(&o.where_()).into_owned())
            .collect();
        let width = wheres.iter().map(|w| w.chars().count()).max().unwrap_or(0);
        for (o, where_) in self.results.iter().zip(&wheres) {
            writeln!(
                out,
                "{:<7} {where_:<width$}  {}",
                o.state.word(),
                escape(&o.message)
            )?;
            for w in &o.warnings {
                writeln!(out, "{:<7} {:<width$}  warning: {}", "", "", escape(w))?;
            }
        }
        let s = &self.summary;
        writeln!(
            out,
            "{}: {} ok, {} skipped, {} failed in {:.1}s{}{}",
            self.tool,
            s.ok,
            s.skipped,
            s.failed,
            s.elapsed_ms as f64 / 1000.0,
            if totals_line.is_empty() { "" } else { "; " },
            totals_line
        )
    }

    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        hostile_text::to_json_pretty(&mut *out, self)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(states: &[State]) -> Report<(), ()> {
        let mut r = Report {
            tool: "t",
            context: "c".into(),
            scope: "all namespaces".into(),
            selector: "x=y".into(),
            detected_run_id: None,
            snapshot: None,
            results: states
                .iter()
                .map(|&state| Outcome {
                    namespace: "ns".into(),
                    pod: "p".into(),
                    container: None,
                    state,
                    message: "m".into(),
                    warnings: vec![],
                    elapsed_ms: 0,
                    details: None,
                })
                .collect(),
            summary: Summary::default(),
            totals: (),
        };
        r.summarize(Duration::ZERO);
        r
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(&[State::Ok, State::Skipped]).exit_code(false), 0);
        assert_eq!(report(&[State::Ok, State::Skipped]).exit_code(true), 1);
        assert_eq!(report(&[State::Ok, State::Failed]).exit_code(false), 1);
    }

    #[test]
    fn human_output_escapes_pod_text() {
        let mut r = report(&[State::Failed]);
        r.results[0].message = "tar: \u{1b}[2J\n::error::x".into();
        r.results[0].warnings = vec!["##vso[task.complete]".into()];
        let mut buf = Vec::new();
        r.write_human(&mut buf, "").expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        assert!(text.contains("tar: \\x1b[2J\\n::error::x"), "{text}");
        assert!(text.contains("warning: \\x23#vso[task.complete]"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn human_lines_then_summary() {
        let mut buf = Vec::new();
        report(&[State::Ok, State::Failed])
            .write_human(&mut buf, "3 files")
            .expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("FAILED  ns/p"));
        assert!(lines[2].contains("1 ok, 0 skipped, 1 failed"));
        assert!(lines[2].ends_with("; 3 files"));
    }
}
