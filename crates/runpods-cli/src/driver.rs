//! The shape both tools share: connect, select pods, plan containers, work on
//! them in parallel, print the report, choose the exit code. Text from the
//! cluster (errors, run ids) is escaped before it reaches stderr.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use hostile_text::Shown;
use serde::Serialize;

use runpods::cluster::Cluster;
use runpods::outcome::{Outcome, Report, State, Summary};
use runpods::select::{Selection, select_pods};
use runpods::targets::{Plan, Target, plan};

use crate::{CommonArgs, EXIT_USAGE, OutputFormat};

/// Everything known before the work starts.
pub struct Prepared {
    pub cluster: Cluster,
    pub selection: Selection,
    pub plan: Plan,
    pub started: Instant,
}

/// Connect, select, plan. On failure prints the error and returns the exit code.
pub async fn prepare(tool: &str, common: &CommonArgs) -> Result<Prepared, i32> {
    let started = Instant::now();
    let fail = |e: runpods::Error| {
        eprintln!("{tool}: error: {}", Shown(&e.to_string()));
        if e.is_usage() { EXIT_USAGE } else { 1 }
    };
    let choice = common.container_choice().map_err(fail)?;
    let cluster = Cluster::connect(&common.cluster()).await.map_err(fail)?;
    let selection = select_pods(&cluster, &common.query()).await.map_err(fail)?;
    if let Some(id) = &selection.detected_run_id {
        eprintln!(
            "{tool}: using run id {}, the only skaffold.dev/run-id found ({})",
            Shown(id),
            Shown(&selection.scope)
        );
    }
    if selection.pods.is_empty() {
        eprintln!(
            "{tool}: error: no pods matched ({})",
            Shown(&selection.searched(&cluster))
        );
        return Err(EXIT_USAGE);
    }
    let plan = plan(&selection.pods, &choice);
    Ok(Prepared {
        cluster,
        selection,
        plan,
        started,
    })
}

impl Prepared {
    /// Run `work` on every target (in parallel, each under `timeout`) and add
    /// the skipped pods/containers; results sorted by namespace/pod/container.
    pub async fn run<D, F, Fut>(
        &self,
        common: &CommonArgs,
        timeout: Duration,
        work: F,
    ) -> Vec<Outcome<D>>
    where
        F: Fn(Target) -> Fut,
        Fut: Future<Output = Outcome<D>>,
    {
        let mut results: Vec<Outcome<D>> = self.plan.skipped.iter().map(Outcome::skipped).collect();
        results.extend(
            runpods::parallel::for_each(
                self.plan.targets.clone(),
                common.parallel.into(),
                timeout,
                work,
                |t| {
                    Outcome::for_target(
                        t,
                        State::Failed,
                        format!("timed out after {timeout:?}"),
                        timeout,
                    )
                },
            )
            .await,
        );
        results.sort_by_key(|o| o.where_());
        results
    }

    /// Build the report for `results`.
    pub fn report<D: Serialize, S: Serialize>(
        &self,
        tool: &'static str,
        snapshot: Option<String>,
        results: Vec<Outcome<D>>,
        totals: S,
    ) -> Report<D, S> {
        let mut report = Report {
            tool,
            context: self.cluster.context.clone(),
            scope: self.selection.scope.clone(),
            selector: self.selection.selector.clone(),
            detected_run_id: self.selection.detected_run_id.clone(),
            snapshot,
            results,
            summary: Summary::default(),
            totals,
        };
        report.summarize(self.started.elapsed());
        report
    }

    /// Print the report and choose the exit code (2 when there was no container to work on).
    pub fn finish<D: Serialize, S: Serialize>(
        &self,
        report: &Report<D, S>,
        common: &CommonArgs,
        totals_line: &str,
    ) -> i32 {
        let mut out = std::io::stdout().lock();
        let written = match common.output {
            OutputFormat::Json => report.write_json(&mut out),
            OutputFormat::Text => report.write_human(&mut out, totals_line),
        };
        let _ = out.flush();
        if let Err(e) = written {
            eprintln!("{}: error: cannot write the report: {e}", report.tool);
            return 1;
        }
        if self.plan.targets.is_empty() {
            eprintln!(
                "{}: error: none of the {} matched pod(s) has a running container to work on ({}); see the lines above, or pass --container",
                report.tool,
                self.selection.pods.len(),
                Shown(&self.selection.searched(&self.cluster))
            );
            return EXIT_USAGE;
        }
        report.exit_code(common.strict)
    }
}
