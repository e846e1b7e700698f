//! `--via exec|helper|auto`: how a tool reaches a container's coverage folder.
//!
//! * `exec` runs `kill`, `ls` and `tar` in the coverage container itself.
//! * `helper` always goes through a helper container ([`runpods::helper`]).
//! * `auto` (the default) tries exec first and switches to a helper only when
//!   that first attempt shows the image lacks a program the exec path needs,
//!   so images that have them cost no extra round trip. The switch is told
//!   once per pod on stderr. A pod whose listing already shows a running
//!   helper for the container (added by an earlier run) goes straight to it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use runpods::helper::{DirAccess, HelperConfig, ensure};
use runpods::outcome::{Outcome, State};
use runpods::targets::{CoverDir, HelperRoute, Target};

/// How to reach the coverage folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// Exec in the coverage container (needs kill, ls and tar in its image).
    Exec,
    /// Always use a helper (ephemeral) container.
    Helper,
    /// Exec, or a helper when the image lacks what exec needs.
    Auto,
}

/// What a tool's work on one container reports besides its outcome: whether
/// it stopped, before doing anything, because the image lacks a program.
pub struct Attempt<D> {
    pub outcome: Outcome<D>,
    pub program_missing: bool,
}

/// Routes each container's work through exec or a helper.
pub struct Router<'a> {
    pub tool: &'static str,
    pub via: Via,
    pub client: &'a kube::Client,
    /// The selected pods (their specs and statuses).
    pub pods: &'a [Pod],
    pub helper: HelperConfig,
    /// `--remote-dir`, which beats `GOCOVERDIR` from the spec.
    pub remote_dir: Option<String>,
    told: Mutex<HashSet<(String, String)>>,
}

impl<'a> Router<'a> {
    pub fn new(
        tool: &'static str,
        via: Via,
        client: &'a kube::Client,
        pods: &'a [Pod],
        helper: HelperConfig,
        remote_dir: Option<String>,
    ) -> Self {
        Router {
            tool,
            via,
            client,
            pods,
            helper,
            remote_dir,
            told: Mutex::new(HashSet::new()),
        }
    }

    /// Run `work` for `target` the way `--via` says.
    pub async fn run<D, F, Fut>(&self, target: Target, work: F) -> Outcome<D>
    where
        F: Fn(Target) -> Fut,
        Fut: Future<Output = Attempt<D>>,
    {
        match self.via {
            Via::Exec => work(target).await.outcome,
            Via::Helper => self.through_helper(target, &work).await,
            Via::Auto => {
                if self.helper_running(&target) {
                    return self.through_helper(target, &work).await;
                }
                let first = work(target.clone()).await;
                if !first.program_missing {
                    return first.outcome;
                }
                self.tell_once(&target);
                self.through_helper(target, &work).await
            }
        }
    }

    /// The coverage folder a helper reads for `target`, if known.
    fn dir(&self, target: &Target) -> Option<String> {
        match (&self.remote_dir, &target.cover_dir) {
            (Some(d), _) | (None, CoverDir::Path(d)) => Some(d.clone()),
            _ => None,
        }
    }

    /// The listed pod of `target`.
    fn pod(&self, target: &Target) -> Option<&Pod> {
        self.pods.iter().find(|p| {
            p.metadata.name.as_deref() == Some(target.pod.as_str())
                && p.metadata.namespace.as_deref().unwrap_or("default") == target.namespace
        })
    }

    /// A helper an earlier run added is running for `target` (seen in the
    /// listing, so it costs no request).
    fn helper_running(&self, target: &Target) -> bool {
        match (self.pod(target), self.dir(target)) {
            (Some(pod), Some(dir)) => {
                runpods::helper::running(pod, &target.container, &dir, &self.helper.image)
            }
            _ => false,
        }
    }

    fn tell_once(&self, t: &Target) {
        let key = (t.namespace.clone(), t.pod.clone());
        let first = self
            .told
            .lock()
            .map(|mut told| told.insert(key))
            .unwrap_or(true);
        if first {
            eprintln!(
                "{}: pod {}: container {} lacks the programs exec needs (kill, ls, tar); using a helper container",
                self.tool,
                hostile_text::Shown(&format!("{}/{}", t.namespace, t.pod)),
                hostile_text::Shown(&t.container)
            );
        }
    }

    async fn through_helper<D, F, Fut>(&self, mut target: Target, work: &F) -> Outcome<D>
    where
        F: Fn(Target) -> Fut,
        Fut: Future<Output = Attempt<D>>,
    {
        let start = Instant::now();
        let fail =
            |t: &Target, msg: String| Outcome::for_target(t, State::Failed, msg, start.elapsed());
        let Some(dir) = self.dir(&target) else {
            return fail(
                &target,
                "GOCOVERDIR is not set literally in the spec, so the helper cannot mount it: pass --remote-dir".into(),
            );
        };
        let Some(pod) = self.pod(&target) else {
            return fail(&target, "the pod is no longer in the selection".into());
        };
        let helper = match ensure(self.client, pod, &target.container, &dir, &self.helper).await {
            Ok(h) => h,
            Err(e) => return fail(&target, e.to_string()),
        };
        target.helper = Some(HelperRoute {
            container: helper.name.clone(),
            proc_root: helper.access == DirAccess::ProcRoot,
        });
        let mut outcome = work(target).await.outcome;
        outcome.message = format!(
            "{} (via helper container {}{})",
            outcome.message,
            helper.name,
            if helper.added { ", added" } else { "" }
        );
        outcome
    }
}
