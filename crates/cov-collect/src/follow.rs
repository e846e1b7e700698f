//! `cov-collect --follow`: watch the run's pods and collect each one as it goes.
//!
//! A Kubernetes watch (list, then watch from the list's `resourceVersion` with
//! bookmarks; a dropped stream resumes from the last version seen, a `410 Gone`
//! re-lists) reports every change to the selected pods. Then:
//!
//! * a pod that gets a `deletionTimestamp` (rollout, `skaffold dev` redeploy,
//!   scale-down, `kubectl delete`) is signalled and collected at once, while its
//!   `preStop` hook holds it, in parallel with any other;
//! * a container that restarted is collected (the counters its earlier
//!   instances flushed are still in the `emptyDir`);
//! * with an interval, every running pod is signalled and collected that often,
//!   so a crash loses at most one interval;
//! * at the end (SIGINT/SIGTERM, `--until-file`, `--duration`), every pod still
//!   running is signalled and collected a last time.
//!
//! Collections add up: Go names each counter file by process id and time, and
//! every flush clears the counters, so a later collection only adds new files
//! and never rewrites or double counts one. A pod that went before a final
//! collection succeeded is *lost*, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cov_signal::signal::{SignalOptions, signal_one};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use runpods::outcome::State;
use runpods::targets::{ContainerChoice, plan};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use crate::collect::{CollectOptions, collect_one};

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub collect: CollectOptions,
    pub signal: SignalOptions,
    pub choice: ContainerChoice,
    /// Label selector text (the run id and `--selector`).
    pub selector: String,
    /// Empty: all namespaces.
    pub namespaces: Vec<String>,
    pub interval: Option<Duration>,
    pub parallel: usize,
}

/// One pod in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct PodSummary {
    pub namespace: String,
    pub pod: String,
    /// Successful collections (each adds only new files).
    pub collections: u32,
    /// Coverage files this pod added to the output folder.
    pub files: usize,
    /// `collected`: its last collection succeeded; `lost`: it went before that.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `--follow` reports at the end.
#[derive(Debug, Clone, Serialize)]
pub struct FollowSummary {
    pub pods: Vec<PodSummary>,
    pub collected: usize,
    pub lost: usize,
    pub files: usize,
    pub out: PathBuf,
    /// What ended the follow (`SIGTERM`, `--until-file`, …).
    pub stopped_by: String,
    /// Watches resumed from their last resourceVersion after a dropped stream.
    pub watch_resumes: u32,
    /// Re-lists after a `410 Gone` (or a failed resume).
    pub relists: u32,
}

impl FollowSummary {
    /// Exit 1 when any pod was lost.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.lost > 0)
    }

    /// Human lines: one per lost pod, then the totals.
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for p in self.pods.iter().filter(|p| p.state == "lost") {
            writeln!(
                out,
                "LOST {}/{}: {}",
                hostile_text::Shown(&p.namespace),
                hostile_text::Shown(&p.pod),
                hostile_text::Shown(p.reason.as_deref().unwrap_or(""))
            )?;
        }
        writeln!(
            out,
            "cov-collect --follow: {} pod(s) collected, {} lost, {} file(s) in {} (stopped by {}; {} watch resume(s), {} re-list(s))",
            self.collected,
            self.lost,
            self.files,
            self.out.display(),
            self.stopped_by,
            self.watch_resumes,
            self.relists
        )
    }
}

#[derive(Debug, Default)]
struct Track {
    namespace: String,
    name: String,
    pod: Option<Pod>,
    deleting: bool,
    gone: bool,
    /// A collection is running; `again` asks for one more after it.
    busy: bool,
    again: Option<bool>,
    /// A successful collection after the pod started terminating (or at the end).
    final_done: bool,
    collections: u32,
    files: usize,
    restarts: i32,
    last_error: Option<String>,
    lost: Option<String>,
}

#[derive(Default)]
struct Shared {
    tracks: BTreeMap<String, Track>,
    watch_resumes: u32,
    relists: u32,
}

type Tracks = Arc<Mutex<Shared>>;

fn lock(s: &Tracks) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

enum Event {
    Upsert(Pod),
    Deleted(Pod),
    /// A fresh list of one scope (`None`: all namespaces).
    Listed(Option<String>, Vec<Pod>),
    Resumed,
    Relisted,
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// Follow until `stop` resolves; returns the summary.
pub async fn follow(
    client: kube::Client,
    opts: FollowOptions,
    stop: impl std::future::Future<Output = String>,
    ready: impl FnOnce(),
) -> FollowSummary {
    let shared: Tracks = Arc::default();
    let opts = Arc::new(opts);
    let limit = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let scopes: Vec<Option<String>> = if opts.namespaces.is_empty() {
        vec![None]
    } else {
        opts.namespaces.iter().cloned().map(Some).collect()
    };
    let mut watchers = Vec::new();
    for scope in scopes.clone() {
        let api: Api<Pod> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        watchers.push(tokio::spawn(watch_scope(
            api,
            scope,
            opts.selector.clone(),
            tx.clone(),
        )));
    }
    drop(tx);
    let mut tasks = tokio::task::JoinSet::new();
    // The first list of every scope, before saying we are ready.
    let mut listed = BTreeSet::new();
    while listed.len() < scopes.len() {
        match rx.recv().await {
            Some(e) => {
                if let Event::Listed(scope, _) = &e {
                    listed.insert(scope.clone());
                }
                handle(&shared, &client, &opts, &limit, &mut tasks, e);
            }
            None => break,
        }
    }
    tracing::info!("following");
    eprintln!(
        "cov-collect: following {} pod(s) (selector {:?})",
        lock(&shared).tracks.len(),
        opts.selector
    );
    ready();
    let mut tick = opts
        .interval
        .map(|i| tokio::time::interval_at(tokio::time::Instant::now() + i, i));
    tokio::pin!(stop);
    let stopped_by = loop {
        let interval = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            why = &mut stop => break why,
            e = rx.recv() => match e {
                Some(e) => handle(&shared, &client, &opts, &limit, &mut tasks, e),
                None => break "the watches ended".to_string(),
            },
            () = interval => {
                let running: Vec<String> = lock(&shared)
                    .tracks
                    .iter()
                    .filter(|(_, t)| !t.deleting && !t.gone)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in running {
                    request(&shared, &client, &opts, &limit, &mut tasks, &key, false);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    eprintln!("cov-collect: stopping ({stopped_by}): a last collection of every running pod");
    let running: Vec<String> = lock(&shared)
        .tracks
        .iter()
        .filter(|(_, t)| !t.gone && !t.final_done)
        .map(|(k, _)| k.clone())
        .collect();
    for key in running {
        request(&shared, &client, &opts, &limit, &mut tasks, &key, true);
    }
    // Keep handling events (deletions) while the last collections run.
    loop {
        tokio::select! {
            done = tasks.join_next() => if done.is_none() { break },
            Some(e) = rx.recv() => handle(&shared, &client, &opts, &limit, &mut tasks, e),
        }
    }
    for w in watchers {
        w.abort();
    }
    summarize(&shared, &opts, stopped_by)
}

fn summarize(shared: &Tracks, opts: &FollowOptions, stopped_by: String) -> FollowSummary {
    let s = lock(shared);
    let pods: Vec<PodSummary> = s
        .tracks
        .values()
        .map(|t| {
            let lost = t.lost.clone().or_else(|| {
                (!t.final_done).then(|| {
                    t.last_error
                        .clone()
                        .unwrap_or_else(|| "never collected".into())
                })
            });
            PodSummary {
                namespace: t.namespace.clone(),
                pod: t.name.clone(),
                collections: t.collections,
                files: t.files,
                state: if lost.is_some() { "lost" } else { "collected" },
                reason: lost,
            }
        })
        .collect();
    FollowSummary {
        collected: pods.iter().filter(|p| p.state == "collected").count(),
        lost: pods.iter().filter(|p| p.state == "lost").count(),
        files: pods.iter().map(|p| p.files).sum(),
        out: opts.collect.out.clone(),
        pods,
        stopped_by,
        watch_resumes: s.watch_resumes,
        relists: s.relists,
    }
}

fn handle(
    shared: &Tracks,
    client: &kube::Client,
    opts: &Arc<FollowOptions>,
    limit: &Arc<Semaphore>,
    tasks: &mut tokio::task::JoinSet<()>,
    e: Event,
) {
    let mut to_collect: Vec<(String, bool)> = Vec::new();
    {
        let mut s = lock(shared);
        match e {
            Event::Resumed => s.watch_resumes += 1,
            Event::Relisted => s.relists += 1,
            Event::Listed(scope, pods) => {
                let present: BTreeSet<String> = pods.iter().map(uid).collect();
                // Pods of this scope that went while nobody watched.
                for (key, t) in &mut s.tracks {
                    let in_scope = scope.as_ref().is_none_or(|ns| *ns == t.namespace);
                    if in_scope && !t.gone && !present.contains(key) {
                        gone(
                            t,
                            "deleted while the watch was down (found missing on a re-list)",
                        );
                    }
                }
                for p in pods {
                    if let Some(c) = upsert(&mut s, p) {
                        to_collect.push(c);
                    }
                }
            }
            Event::Upsert(p) => {
                if let Some(c) = upsert(&mut s, p) {
                    to_collect.push(c);
                }
            }
            Event::Deleted(p) => {
                if let Some(t) = s.tracks.get_mut(&uid(&p)) {
                    t.pod = Some(p);
                    let reason = if t.deleting {
                        "deleted before a collection succeeded"
                    } else {
                        "deleted at once, without a grace period"
                    };
                    gone(t, reason);
                }
            }
        }
    }
    for (key, final_) in to_collect {
        request(shared, client, opts, limit, tasks, &key, final_);
    }
}

/// The pod went: lost unless its last collection already succeeded (or one is running).
fn gone(t: &mut Track, reason: &str) {
    t.gone = true;
    if !t.busy && !t.final_done && t.lost.is_none() {
        let why = match &t.last_error {
            Some(e) => format!("{reason}: {e}"),
            None => reason.to_string(),
        };
        eprintln!(
            "cov-collect: LOST {}/{}: {}",
            hostile_text::Shown(&t.namespace),
            hostile_text::Shown(&t.name),
            hostile_text::Shown(&why)
        );
        t.lost = Some(why);
    }
}

/// Record a pod's new state; returns a collection to start, if one is due.
fn upsert(s: &mut Shared, p: Pod) -> Option<(String, bool)> {
    let key = uid(&p);
    let t = s.tracks.entry(key.clone()).or_insert_with(|| Track {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        restarts: restarts(&p),
        ..Default::default()
    });
    let deleting = p.metadata.deletion_timestamp.is_some();
    let r = restarts(&p);
    t.pod = Some(p);
    if deleting && !t.deleting {
        t.deleting = true;
        eprintln!(
            "cov-collect: {}/{} is being deleted: collecting it now",
            hostile_text::Shown(&t.namespace),
            hostile_text::Shown(&t.name)
        );
        return Some((key, true));
    }
    if r > t.restarts {
        t.restarts = r;
        eprintln!(
            "cov-collect: {}/{} restarted a container: collecting what its earlier instances wrote",
            hostile_text::Shown(&t.namespace),
            hostile_text::Shown(&t.name)
        );
        return Some((key, false));
    }
    None
}

/// Start a collection of one pod, or queue one after the running one.
fn request(
    shared: &Tracks,
    client: &kube::Client,
    opts: &Arc<FollowOptions>,
    limit: &Arc<Semaphore>,
    tasks: &mut tokio::task::JoinSet<()>,
    key: &str,
    final_: bool,
) {
    let pod = {
        let mut s = lock(shared);
        let Some(t) = s.tracks.get_mut(key) else {
            return;
        };
        if t.gone {
            return;
        }
        if t.busy {
            t.again = Some(t.again.unwrap_or(false) || final_);
            return;
        }
        t.busy = true;
        t.pod.clone()
    };
    let Some(pod) = pod else {
        return;
    };
    let (shared, client, opts, limit, key) = (
        Arc::clone(shared),
        client.clone(),
        Arc::clone(opts),
        Arc::clone(limit),
        key.to_string(),
    );
    tasks.spawn(async move {
        let mut pod = pod;
        let mut final_ = final_;
        loop {
            let result = {
                let _permit = limit.acquire().await;
                collect_pod(&client, &opts, &pod).await
            };
            let next = {
                let mut s = lock(&shared);
                let Some(t) = s.tracks.get_mut(&key) else {
                    return;
                };
                match result {
                    Ok(files) => {
                        t.collections += 1;
                        t.files += files;
                        t.last_error = None;
                        if final_ || t.deleting {
                            t.final_done = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(pod = %t.name, "collection failed: {e}");
                        t.last_error = Some(e);
                    }
                }
                t.busy = false;
                if t.gone && !t.final_done && t.lost.is_none() {
                    let why = format!(
                        "deleted before a collection succeeded: {}",
                        t.last_error.clone().unwrap_or_default()
                    );
                    t.lost = Some(why);
                }
                match t.again.take() {
                    Some(f) if !t.gone => {
                        t.busy = true;
                        t.pod.clone().map(|p| (p, f))
                    }
                    _ => None,
                }
            };
            match next {
                Some((p, f)) => {
                    pod = p;
                    final_ = f;
                }
                None => return,
            }
        }
    });
}

/// Signal, then collect, every coverage container of one pod. Returns the new files.
async fn collect_pod(
    client: &kube::Client,
    opts: &FollowOptions,
    pod: &Pod,
) -> Result<usize, String> {
    // plan() leaves terminating pods alone; here collecting them is the point.
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Pending") {
        return Ok(0); // never ran: nothing to collect, nothing lost
    }
    let mut p = pod.clone();
    p.metadata.deletion_timestamp = None;
    let plan = plan(std::slice::from_ref(&p), &opts.choice);
    if plan.targets.is_empty() {
        let why: Vec<String> = plan.skipped.iter().map(|s| s.reason.clone()).collect();
        return Err(format!("nothing to collect: {}", why.join("; ")));
    }
    let mut files = 0;
    for t in &plan.targets {
        let signalled = signal_one(client, t, &opts.signal).await.outcome;
        if signalled.state == State::Failed {
            // What earlier flushes (or an exit) wrote is still worth taking.
            tracing::warn!(target = %t.label(), "signal failed: {}", signalled.message);
        }
        let got = collect_one(client, t, &opts.collect, BTreeSet::new())
            .await
            .outcome;
        if got.state == State::Failed {
            return Err(format!("{}: {}", t.container, got.message));
        }
        files += got.details.as_ref().map_or(0, |d| d.written.len());
    }
    Ok(files)
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 410)
}

/// List, then watch from the list's version; resume a dropped watch from the
/// last version seen; re-list after 410 Gone.
async fn watch_scope(
    api: Api<Pod>,
    scope: Option<String>,
    selector: String,
    tx: mpsc::Sender<Event>,
) {
    let lp = ListParams::default().labels(&selector);
    let mut backoff = Duration::from_millis(200);
    let mut first = true;
    loop {
        let list = match api.list(&lp).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("listing pods: {e}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut rv = list.metadata.resource_version.clone().unwrap_or_default();
        if !first && tx.send(Event::Relisted).await.is_err() {
            return;
        }
        first = false;
        if tx
            .send(Event::Listed(scope.clone(), list.items))
            .await
            .is_err()
        {
            return;
        }
        'watch: loop {
            let wp = WatchParams::default().labels(&selector).timeout(290);
            let stream = match api.watch(&wp, &rv).await {
                Ok(s) => s,
                Err(e) if is_gone(&e) => break 'watch,
                Err(e) => {
                    tracing::warn!("watching pods: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut stream = stream.boxed();
            let started = Instant::now();
            while let Some(ev) = stream.next().await {
                let send = match ev {
                    Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) => {
                        rv = p.metadata.resource_version.clone().unwrap_or(rv);
                        Event::Upsert(p)
                    }
                    Ok(WatchEvent::Deleted(p)) => {
                        rv = p.metadata.resource_version.clone().unwrap_or(rv);
                        Event::Deleted(p)
                    }
                    Ok(WatchEvent::Bookmark(b)) => {
                        rv = b.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(e)) if e.code == 410 => break 'watch,
                    Ok(WatchEvent::Error(e)) => {
                        tracing::warn!("watch error: {}", e.message);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("watch stream: {e}");
                        break;
                    }
                };
                if tx.send(send).await.is_err() {
                    return;
                }
            }
            tracing::info!(resource_version = %rv, "watch ended; resuming");
            if tx.send(Event::Resumed).await.is_err() {
                return;
            }
            if started.elapsed() < Duration::from_millis(100) {
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
