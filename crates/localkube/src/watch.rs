//! Watches on pods (`?watch=true`), as the API server's watch cache serves them.
//!
//! Every change to the cluster's pods is recorded as an event with its own
//! `resourceVersion` (one per changed object, as etcd gives each write its own
//! revision). A watch streams the events after the version it asks for, one
//! JSON object per line (`{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
//! "object":…}`), over a chunked response. Behaviour follows
//! `staging/src/k8s.io/apiserver/pkg/storage/cacher/` (watch_cache.go,
//! cache_watcher.go) and the API concepts page
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>):
//!
//! * no `resourceVersion`, or `"0"`: first a synthetic `ADDED` for every
//!   matching pod, then the changes ("get state and start at most recent");
//! * a version older than the oldest kept event: one `ERROR` event whose object
//!   is a `410 Expired` Status (`too old resource version: X (Y)`), then the
//!   stream ends; clients re-list. [`History::compact`] forgets the history, as
//!   etcd compaction does;
//! * a version newer than the newest: `504 Too large resource version`;
//! * `allowWatchBookmarks=true`: periodic `BOOKMARK` events carrying only the
//!   latest `resourceVersion`; `sendInitialEvents=true` (with
//!   `resourceVersionMatch=NotOlderThan`) ends the initial `ADDED`s with a
//!   bookmark annotated `k8s.io/initial-events-end: "true"`;
//! * selectors apply to both the old and the new object: a pod that stops
//!   matching arrives as `DELETED`, one that starts matching as `ADDED`
//!   (cache_watcher.go `convertToWatchEvent`);
//! * `timeoutSeconds` ends the stream; [`History::drop_watches`] ends every open
//!   stream, as a restarted API server or an idle proxy does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use kube_selector::{FieldSelector, Selector, SelectorExt};
use serde_json::{Value, json};

use crate::state::{Cluster, PodState};
use crate::status::{error, failure_body};

/// Events kept for watches to resume from; older versions get 410 Gone.
const KEPT_EVENTS: usize = 4096;

/// How often the API server sends a bookmark when asked: the watch cache
/// dispatches them about once a minute (cacher.go `bookmarkFrequency`).
pub(crate) const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    kind: Kind,
    /// The object before this change (for selector transitions).
    prev: Option<Arc<Pod>>,
    /// The object after it (for `DELETED`, its last state at the deletion's version).
    object: Arc<Pod>,
}

type Key = (String, String, String);

/// The pods' change history and the signals open watches wait on.
#[derive(Debug)]
pub(crate) struct History {
    /// Each pod's latest version and object (with that version set), by namespace, name, uid.
    current: HashMap<Key, (u64, Value, Arc<Pod>)>,
    events: VecDeque<Event>,
    /// A watch must start at or after this version (events up to it are forgotten).
    compacted: u64,
    changed: tokio::sync::watch::Sender<u64>,
    /// (times dropped, whether the last drop expires the watches with 410).
    dropped: tokio::sync::watch::Sender<(u64, bool)>,
    pub bookmark_interval: Duration,
}

impl Default for History {
    fn default() -> Self {
        History {
            current: HashMap::new(),
            events: VecDeque::new(),
            compacted: 0,
            changed: tokio::sync::watch::Sender::new(0),
            dropped: tokio::sync::watch::Sender::new((0, false)),
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
        }
    }
}

impl History {
    /// Compare every pod with its last recorded state and record an event per
    /// change, each with its own version after `rv`. Returns the new latest version.
    pub(crate) fn record(&mut self, mut rv: u64, pods: &[PodState]) -> u64 {
        let mut seen = HashSet::new();
        for p in pods {
            let key = (p.namespace.clone(), p.name.clone(), p.uid.clone());
            let mut pod = p.to_pod(0);
            let snapshot = serde_json::to_value(&pod).unwrap_or(Value::Null);
            seen.insert(key.clone());
            let prev = match self.current.get(&key) {
                Some((_, old, _)) if *old == snapshot => continue,
                Some((_, _, obj)) => Some(Arc::clone(obj)),
                None => None,
            };
            rv += 1;
            pod.metadata.resource_version = Some(rv.to_string());
            let object = Arc::new(pod);
            let kind = if prev.is_some() {
                Kind::Modified
            } else {
                Kind::Added
            };
            self.push(Event {
                rv,
                kind,
                prev,
                object: Arc::clone(&object),
            });
            self.current.insert(key, (rv, snapshot, object));
        }
        let gone: Vec<Key> = self
            .current
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some((_, _, last)) = self.current.remove(&key) {
                rv += 1;
                let mut pod = (*last).clone();
                pod.metadata.resource_version = Some(rv.to_string());
                self.push(Event {
                    rv,
                    kind: Kind::Deleted,
                    prev: Some(last),
                    object: Arc::new(pod),
                });
            }
        }
        self.changed.send_replace(rv);
        rv
    }

    fn push(&mut self, e: Event) {
        self.events.push_back(e);
        while self.events.len() > KEPT_EVENTS {
            if let Some(old) = self.events.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// The version of a pod's latest recorded state (0 before the first record).
    pub(crate) fn version(&self, p: &PodState) -> u64 {
        self.current
            .get(&(p.namespace.clone(), p.name.clone(), p.uid.clone()))
            .map_or(0, |(rv, _, _)| *rv)
    }

    /// Forget every event up to `rv`: watches from older versions get 410 Gone.
    pub(crate) fn compact(&mut self, rv: u64) {
        self.events.retain(|e| e.rv > rv);
        self.compacted = self.compacted.max(rv);
    }

    /// Wakes up whenever a change is recorded.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// End every open watch stream; with `expire`, each first gets an ERROR
    /// event with `410 Gone`, as the watch cache sends a watcher that fell out
    /// of its window.
    pub(crate) fn drop_watches(&self, expire: bool) {
        self.dropped.send_modify(|(n, e)| {
            *n += 1;
            *e = expire;
        });
    }

    fn since(&self, rv: u64) -> Vec<Event> {
        let start = self.events.partition_point(|e| e.rv <= rv);
        self.events.range(start..).cloned().collect()
    }
}

/// Which pods a watch sees.
pub(crate) struct Filter {
    pub namespace: Option<String>,
    /// Set when watching a single pod (`GET pods/{name}?watch=true`).
    pub name: Option<String>,
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl Filter {
    fn matches(&self, p: &Pod) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| p.metadata.namespace.as_deref() == Some(ns))
            && self
                .name
                .as_deref()
                .is_none_or(|n| p.metadata.name.as_deref() == Some(n))
            && self
                .labels
                .matches(&p.metadata.labels.clone().unwrap_or_default())
            && self.fields.matches(p)
    }

    /// The event a watcher with this filter sees, if any (cache_watcher.go
    /// `convertToWatchEvent`).
    fn convert(&self, e: &Event) -> Option<(&'static str, Arc<Pod>)> {
        let now = self.matches(&e.object);
        let before = e.prev.as_ref().is_some_and(|p| self.matches(p));
        match e.kind {
            Kind::Added if now => Some(("ADDED", Arc::clone(&e.object))),
            Kind::Deleted if before => Some(("DELETED", Arc::clone(&e.object))),
            Kind::Modified if now && before => Some(("MODIFIED", Arc::clone(&e.object))),
            Kind::Modified if now => Some(("ADDED", Arc::clone(&e.object))),
            Kind::Modified if before => Some(("DELETED", Arc::clone(&e.object))),
            _ => None,
        }
    }
}

/// How objects are shaped in the stream: plain pods, or one-row tables for
/// `kubectl get -w` (`Accept: …;as=Table`).
pub(crate) type Render = Box<dyn Fn(&Pod) -> Value + Send + Sync>;

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn flag(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("true" | "1" | "True"))
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": {"containers": null}, "status": {}}),
    )
}

/// Serve a watch request on pods.
pub(crate) fn serve(
    c: &Arc<Cluster>,
    filter: Filter,
    q: &[(String, String)],
    render: Option<Render>,
) -> Response {
    let bookmarks = flag(q, "allowWatchBookmarks");
    let send_initial = match param(q, "sendInitialEvents") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return error(
                400,
                format!("sendInitialEvents: invalid value {other:?}, must be true or false"),
                None,
            );
        }
    };
    // validation.go ValidateListOptions: sendInitialEvents needs bookmarks and NotOlderThan.
    if send_initial.is_some() {
        if !bookmarks {
            return error(
                422,
                "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is specified",
                None,
            );
        }
        if param(q, "resourceVersionMatch") != Some("NotOlderThan") {
            return error(
                422,
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                None,
            );
        }
    }
    let timeout = match param(q, "timeoutSeconds").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match t.parse::<u64>() {
            Ok(s) => Some(Duration::from_secs(s)),
            Err(_) => {
                return error(400, format!("timeoutSeconds: invalid value {t:?}"), None);
            }
        },
    };
    let asked = param(q, "resourceVersion").filter(|v| !v.is_empty() && *v != "0");
    let inner = c.lock();
    let current = inner.resource_version;
    let (start, initial) = match asked {
        None => (current, true),
        Some(v) => {
            let Ok(rv) = v.parse::<u64>() else {
                return error(400, format!("invalid resource version {v:?}"), None);
            };
            if rv > current {
                return error(
                    504,
                    format!("Too large resource version: {rv}, current: {current}"),
                    Some(
                        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                    ),
                );
            }
            (rv, send_initial == Some(true))
        }
    };
    let mut first: Vec<Bytes> = Vec::new();
    if initial {
        for pod in inner.pods.iter().map(|p| p.to_pod(inner.watch.version(p))) {
            if filter.matches(&pod) {
                let object = render.as_ref().map_or_else(
                    || serde_json::to_value(&pod).unwrap_or(Value::Null),
                    |r| r(&pod),
                );
                first.push(line("ADDED", object));
            }
        }
        if send_initial == Some(true) {
            first.push(bookmark(start, true));
        }
    }
    let mut changed = inner.watch.changed.subscribe();
    let mut dropped = inner.watch.dropped.subscribe();
    let interval = inner.watch.bookmark_interval;
    drop(inner);

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let cluster = Arc::clone(c);
    c.runtime.spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut at = start;
        loop {
            changed.mark_unchanged();
            let batch = {
                let inner = cluster.lock();
                if at < inner.watch.compacted {
                    Err(inner.watch.compacted)
                } else {
                    let events = inner.watch.since(at);
                    Ok((events, inner.resource_version))
                }
            };
            match batch {
                Err(oldest) => {
                    let status = failure_body(
                        410,
                        &format!("too old resource version: {at} ({oldest})"),
                        None,
                    );
                    let _ = tx.send(line("ERROR", status)).await;
                    return;
                }
                Ok((events, latest)) => {
                    for e in &events {
                        if let Some((kind, pod)) = filter.convert(e) {
                            let object = render.as_ref().map_or_else(
                                || serde_json::to_value(&*pod).unwrap_or(Value::Null),
                                |r| r(&pod),
                            );
                            if tx.send(line(kind, object)).await.is_err() {
                                return;
                            }
                        }
                    }
                    at = latest.max(at);
                }
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = ticks.tick(), if bookmarks => {
                    if tx.send(bookmark(at, false)).await.is_err() {
                        return;
                    }
                }
                () = until_deadline => return,
                _ = dropped.changed() => {
                    if dropped.borrow().1 {
                        let status = failure_body(
                            410,
                            &format!("too old resource version: {at} ({})", at + 1),
                            None,
                        );
                        let _ = tx.send(line("ERROR", status)).await;
                    }
                    return;
                }
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
