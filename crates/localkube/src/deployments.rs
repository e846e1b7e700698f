//! Deployments as API objects, and the controllers that keep their pods.
//!
//! A Deployment from a manifest is stored (defaults filled in as the API server
//! does) and served under `apis/apps/v1` (get, list, and PATCH with a strategic
//! merge or JSON merge patch, which is what `kubectl apply` and `kubectl rollout
//! restart` send). Its pods carry `pod-template-hash`, computed from the pod
//! template like pkg/controller/controller_utils.go `ComputeHash` (FNV-32a,
//! `rand.SafeEncodeString`), so a changed template means a new ReplicaSet.
//!
//! A control loop does what the ReplicaSet and Deployment controllers do
//! (pkg/controller/replicaset, pkg/controller/deployment):
//!
//! * pods being deleted do not count as active (controller_utils.go
//!   `FilterActivePods`): a deleted pod is replaced at once while it terminates;
//! * a changed template rolls: `RollingUpdate` (default `maxSurge` 25% rounded
//!   up, `maxUnavailable` 25% rounded down; rolling.go) creates new pods up to
//!   replicas + maxSurge and deletes old ones (gracefully) while at least
//!   replicas − maxUnavailable are ready; `Recreate` deletes every old pod and
//!   creates the new ones once they are gone (recreate.go);
//! * `deployment.kubernetes.io/revision` counts the templates rolled out.
//!
//! A pod is ready when it is Running with every container running (no probes).

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube_selector::SelectorExt;
use serde_json::{Value, json};

use crate::manifest::{PodDraft, random_suffix, random_uid};
use crate::state::{Cluster, Inner, PodState, Run};
use crate::status::{error, json_ok};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// What the controllers need to create pods at run time.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub dir: PathBuf,
    pub images: BTreeMap<String, crate::image::Image>,
    pub api_port: u16,
    /// [`crate::LocalKubeBuilder::publish_ports`]: publish new pods' ports too.
    pub publish_ports: bool,
}

#[derive(Debug)]
pub(crate) struct Managed {
    /// The manifest it came from (named in errors about its pods).
    pub file: PathBuf,
    pub object: Deployment,
}

/// The Deployments and what their controllers need.
#[derive(Debug, Default)]
pub(crate) struct Apps {
    pub deployments: Vec<Managed>,
    pub context: Option<Context>,
    /// Set at shutdown: the controllers stop acting.
    pub stopped: bool,
}

/// The API server's defaults for a new Deployment (apps/v1 defaults.go), its
/// metadata, and the extra labels stamped on its pod template.
pub(crate) fn normalize(mut d: Deployment, namespace: &str) -> Deployment {
    d.metadata.namespace = Some(namespace.to_string());
    d.metadata.uid = Some(random_uid());
    d.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    d.metadata.generation = Some(1);
    d.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION.into(), "1".into());
    if let Some(spec) = d.spec.as_mut() {
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let kind = strategy
            .type_
            .get_or_insert_with(|| "RollingUpdate".into())
            .clone();
        if kind == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_surge
                .get_or_insert(IntOrString::String("25%".into()));
            ru.max_unavailable
                .get_or_insert(IntOrString::String("25%".into()));
        }
    }
    d
}

/// controller_utils.go `ComputeHash`: FNV-32a of the template, as safe characters.
pub(crate) fn template_hash(d: &Deployment) -> String {
    let template = d.spec.as_ref().map(|s| &s.template);
    let text = serde_json::to_string(&template).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // rand.SafeEncodeString: each character picks from the suffix alphabet.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|c| ALPHABET[usize::from(c) % ALPHABET.len()] as char)
        .collect()
}

/// `count` new pods from the Deployment's current template.
pub(crate) fn drafts(file: &FsPath, d: &Deployment, count: usize) -> Vec<PodDraft> {
    let Some(spec) = d.spec.as_ref() else {
        return Vec::new();
    };
    let name = d.metadata.name.clone().unwrap_or_default();
    let hash = template_hash(d);
    let tmeta = spec.template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    (0..count)
        .map(|_| PodDraft {
            file: file.to_path_buf(),
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: format!("{name}-{hash}-{}", random_suffix(5)),
            labels: labels.clone(),
            annotations: tmeta.annotations.clone().unwrap_or_default(),
            owner: Some(name.clone()),
            spec: spec.template.spec.clone().unwrap_or_default(),
        })
        .collect()
}

fn owned<'a>(inner: &'a Inner, d: &Deployment) -> impl Iterator<Item = &'a PodState> {
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    inner
        .pods
        .iter()
        .filter(move |p| p.namespace == ns && p.owner.as_ref().is_some_and(|(o, _)| *o == name))
}

fn ready(p: &PodState) -> bool {
    p.deletion.is_none()
        && p.phase() == "Running"
        && p.containers
            .iter()
            .all(|c| matches!(c.run, Run::Running { .. }))
}

/// `maxSurge`/`maxUnavailable` as pod counts (intstr.GetScaledValueFromIntOrPercent).
fn scaled(v: Option<&IntOrString>, replicas: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = i64::from(replicas) * pct;
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).unwrap_or(i32::MAX)
        }
        None => 0,
    }
}

enum Action {
    Create(Box<PodDraft>),
    Delete(String, String),
}

/// One pass of the controllers over every Deployment.
fn plan(inner: &Inner) -> Vec<Action> {
    let mut actions = Vec::new();
    for m in &inner.apps.deployments {
        let d = &m.object;
        let Some(spec) = d.spec.as_ref() else {
            continue;
        };
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let hash = template_hash(d);
        let is_new = |p: &PodState| p.labels.get(HASH_LABEL) == Some(&hash);
        let pods: Vec<&PodState> = owned(inner, d).collect();
        let active = |new: bool| {
            pods.iter()
                .filter(move |p| p.deletion.is_none() && is_new(p) == new)
                .copied()
                .collect::<Vec<_>>()
        };
        let (new_active, old_active) = (active(true), active(false));
        let count = |v: &[&PodState]| i32::try_from(v.len()).unwrap_or(i32::MAX);
        let delete = |p: &PodState| Action::Delete(p.namespace.clone(), p.name.clone());
        let create = |n: i32, actions: &mut Vec<Action>| {
            let n = usize::try_from(n.max(0)).unwrap_or(0);
            actions.extend(
                drafts(&m.file, d, n)
                    .into_iter()
                    .map(|p| Action::Create(Box::new(p))),
            );
        };
        let strategy = spec.strategy.as_ref();
        if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
            if !old_active.is_empty() {
                actions.extend(old_active.iter().map(|p| delete(p)));
            } else if pods.iter().all(|p| is_new(p)) {
                create(replicas - count(&new_active), &mut actions);
            }
        } else {
            let ru = strategy.and_then(|s| s.rolling_update.as_ref());
            let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), replicas, true);
            let mut unavailable =
                scaled(ru.and_then(|r| r.max_unavailable.as_ref()), replicas, false);
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            let total = count(&new_active) + count(&old_active);
            let room = (replicas + surge - total).min(replicas - count(&new_active));
            create(room, &mut actions);
            if count(&new_active) > replicas {
                let extra = usize::try_from(count(&new_active) - replicas).unwrap_or(0);
                actions.extend(new_active.iter().rev().take(extra).map(|p| delete(p)));
            }
            let ready_now = new_active
                .iter()
                .chain(&old_active)
                .filter(|p| ready(p))
                .count();
            let min_available = usize::try_from(replicas - unavailable).unwrap_or(0);
            let mut removable = ready_now.saturating_sub(min_available);
            // Old pods that are not ready go first: they cost no availability.
            for p in old_active.iter().filter(|p| !ready(p)) {
                actions.push(delete(p));
            }
            for p in old_active.iter().filter(|p| ready(p)) {
                if removable == 0 {
                    break;
                }
                removable -= 1;
                actions.push(delete(p));
            }
        }
    }
    actions
}

/// Run the controllers until the cluster stops: on every change, and every 200 ms.
pub(crate) fn spawn_controller(cluster: &Arc<Cluster>) {
    let c = Arc::clone(cluster);
    let mut changed = cluster.lock().watch.subscribe();
    cluster.runtime.spawn(async move {
        loop {
            let actions = {
                let inner = c.lock();
                if inner.apps.stopped {
                    return;
                }
                plan(&inner)
            };
            for a in actions {
                let c2 = Arc::clone(&c);
                let done = tokio::task::spawn_blocking(move || act(&c2, a)).await;
                if let Err(e) = done {
                    tracing::warn!("deployment controller: {e}");
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed.changed()).await;
        }
    });
}

fn act(c: &Arc<Cluster>, a: Action) {
    match a {
        Action::Delete(ns, name) => {
            tracing::info!(namespace = %ns, pod = %name, "deployment controller: deleting pod");
            crate::lifecycle::delete(c, &ns, &name, None, false);
        }
        Action::Create(draft) => {
            let context = c.lock().apps.context.clone();
            let Some(ctx) = context else {
                return;
            };
            tracing::info!(namespace = %draft.namespace, pod = %draft.name, "deployment controller: creating pod");
            if let Err(e) = create_pod(c, &ctx, &draft) {
                tracing::warn!(pod = %draft.name, "deployment controller: {e}");
            }
        }
    }
}

fn create_pod(c: &Arc<Cluster>, ctx: &Context, draft: &PodDraft) -> Result<(), crate::Error> {
    let mut published = Vec::new();
    let publish = ctx.publish_ports.then_some(&mut published);
    let shared = draft.spec.share_process_namespace == Some(true);
    {
        // Prepared under the lock, so two new pods never get the same address.
        let mut inner = c.lock();
        if inner.apps.stopped {
            return Ok(());
        }
        let ip = crate::state::free_pod_ip(&inner)?;
        let pod = crate::pods::prepare(draft, &ctx.dir, &ctx.images, ip, publish)?;
        inner.pods.push(pod);
        inner.bump();
    }
    let containers: Vec<String> = draft
        .spec
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    crate::pods::start_network(c, &draft.namespace, &draft.name)?;
    crate::publish::spawn_all(c, published);
    if shared {
        crate::pods::start_pause(c, &draft.namespace, &draft.name)?;
    }
    for name in containers {
        crate::pods::start_container(c, &draft.namespace, &draft.name, &name)?;
    }
    Ok(())
}

/// The Deployment as the API serves it: stored object plus a fresh status.
fn shown(inner: &Inner, d: &Deployment) -> Deployment {
    let mut d = d.clone();
    let hash = template_hash(&d);
    let pods: Vec<&PodState> = owned(inner, &d).filter(|p| p.deletion.is_none()).collect();
    let n = |f: &dyn Fn(&PodState) -> bool| {
        i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = n(&|p| p.labels.get(HASH_LABEL) == Some(&hash));
    let ready_n = n(&ready);
    let total = n(&|_| true);
    let now = Some(Time(Timestamp::now()));
    let cond = |type_: &str, ok: bool, reason: &str| DeploymentCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        last_update_time: now.clone(),
        last_transition_time: now.clone(),
        message: None,
    };
    let available = ready_n >= replicas;
    let complete = updated == replicas && total == replicas && available;
    d.status = Some(DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(total),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready_n),
        available_replicas: Some(ready_n),
        unavailable_replicas: Some((replicas - ready_n).max(0)),
        conditions: Some(vec![
            cond(
                "Available",
                available,
                if available {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
            ),
            cond(
                "Progressing",
                true,
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
            ),
        ]),
        ..Default::default()
    });
    d.metadata.resource_version = Some(inner.resource_version.to_string());
    d
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn not_found(name: &str) -> Response {
    error(
        404,
        format!("deployments.apps \"{name}\" not found"),
        Some(json!({"name": name, "group": "apps", "kind": "deployments"})),
    )
}

pub(crate) async fn apps_v1() -> Response {
    json_ok(&json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true,
             "kind": "Deployment", "verbs": ["get", "list", "patch"],
             "shortNames": ["deploy"], "categories": ["all"]},
        ],
    }))
}

pub(crate) async fn list_all(
    State(c): State<Arc<Cluster>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list(&c, None, &method, &headers, &q)
}

pub(crate) async fn list_ns(
    State(c): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list(&c, Some(&ns), &method, &headers, &q)
}

fn list(
    c: &Cluster,
    namespace: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    q: &[(String, String)],
) -> Response {
    if method != Method::GET {
        return error(
            405,
            format!(
                "the server does not allow this method on the requested resource ({method}); localkube serves get, list and patch on deployments"
            ),
            Some(json!({})),
        );
    }
    if matches!(param(q, "watch"), Some("true" | "1")) {
        return error(
            405,
            "watch on deployments is not supported by localkube; list instead",
            Some(json!({})),
        );
    }
    let labels = match kube_selector::parse_label_selector(param(q, "labelSelector").unwrap_or(""))
    {
        Ok(l) => l,
        Err(e) => return error(400, e.to_string(), None),
    };
    let inner = c.lock();
    let rv = inner.resource_version;
    let items: Vec<Deployment> = inner
        .apps
        .deployments
        .iter()
        .map(|m| &m.object)
        .filter(|d| namespace.is_none_or(|ns| d.metadata.namespace.as_deref() == Some(ns)))
        .filter(|d| labels.matches(&d.metadata.labels.clone().unwrap_or_default()))
        .map(|d| shown(&inner, d))
        .collect();
    drop(inner);
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    if wants_table {
        return json_ok(&table(&items, rv));
    }
    json_ok(&json!({
        "kind": "DeploymentList",
        "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    }))
}

/// The columns `kubectl get deployments` prints.
fn table(items: &[Deployment], rv: u64) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|d| {
            let s = d.status.clone().unwrap_or_default();
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let age = d
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| Timestamp::now().as_second() - t.0.as_second())
                .unwrap_or(0);
            json!({
                "cells": [
                    d.metadata.name,
                    format!("{}/{want}", s.ready_replicas.unwrap_or(0)),
                    s.updated_replicas.unwrap_or(0),
                    s.available_replicas.unwrap_or(0),
                    format!("{age}s"),
                ],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": d.metadata},
            })
        })
        .collect();
    let col = |name: &str, ty: &str, format: &str| json!({"name": name, "type": ty, "format": format, "priority": 0, "description": name});
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            col("Name", "string", "name"),
            col("Ready", "string", ""),
            col("Up-to-date", "integer", ""),
            col("Available", "integer", ""),
            col("Age", "string", ""),
        ],
        "rows": rows,
    })
}

/// `GET` and `PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}`.
pub(crate) async fn one(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
    body: Bytes,
) -> Response {
    let find = |inner: &Inner| {
        inner.apps.deployments.iter().position(|m| {
            m.object.metadata.namespace.as_deref() == Some(ns.as_str())
                && m.object.metadata.name.as_deref() == Some(name.as_str())
        })
    };
    if method == Method::GET {
        let inner = c.lock();
        return match find(&inner) {
            Some(i) => json_ok(&shown(&inner, &inner.apps.deployments[i].object)),
            None => not_found(&name),
        };
    }
    if method != Method::PATCH {
        return error(
            405,
            format!(
                "the server does not allow this method on the requested resource ({method}); localkube serves get, list and patch on deployments"
            ),
            Some(json!({})),
        );
    }
    let content_type = crate::patch::media_type(&headers);
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(400, format!("the patch is not valid JSON: {e}"), None),
    };
    let dry_run = param(&q, "dryRun") == Some("All");
    let mut inner = c.lock();
    let Some(i) = find(&inner) else {
        return not_found(&name);
    };
    let before = inner.apps.deployments[i].object.clone();
    let mut value = serde_json::to_value(&before).unwrap_or(Value::Null);
    let applied = match content_type.as_str() {
        "application/strategic-merge-patch+json" => {
            crate::patch::strategic_merge(&mut value, &patch)
        }
        "application/merge-patch+json" => {
            crate::patch::merge_patch(&mut value, &patch);
            Ok(())
        }
        other => {
            return error(
                415,
                format!(
                    "the body of the request was in an unknown format ({other:?}); localkube accepts application/strategic-merge-patch+json and application/merge-patch+json"
                ),
                None,
            );
        }
    };
    if let Err(e) = applied {
        return error(
            422,
            format!("Deployment.apps \"{name}\" is invalid: {e}"),
            None,
        );
    }
    let mut after: Deployment = match serde_json::from_value(value) {
        Ok(d) => d,
        Err(e) => {
            return error(
                422,
                format!("Deployment.apps \"{name}\" is invalid: {e}"),
                None,
            );
        }
    };
    let file = inner.apps.deployments[i].file.clone();
    let images = inner
        .apps
        .context
        .as_ref()
        .map(|c| c.images.clone())
        .unwrap_or_default();
    if let Err(message) = validate_update(&before, &after, &file, &images) {
        // kubectl prints the causes after `The Deployment "x" is invalid`.
        let (field, detail) = message.split_once(": ").unwrap_or(("", message.as_str()));
        return error(
            422,
            format!("Deployment.apps \"{name}\" is invalid: {message}"),
            Some(json!({"name": name, "group": "apps", "kind": "Deployment",
                        "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": field}]})),
        );
    }
    // The server owns identity and status; a spec change is a new generation and,
    // for a new template, a new revision.
    after.metadata.uid = before.metadata.uid.clone();
    after.metadata.creation_timestamp = before.metadata.creation_timestamp.clone();
    after.metadata.resource_version = None;
    after.status = None;
    let generation = before.metadata.generation.unwrap_or(1);
    let spec_changed =
        serde_json::to_value(&before.spec).ok() != serde_json::to_value(&after.spec).ok();
    after.metadata.generation = Some(if spec_changed {
        generation + 1
    } else {
        generation
    });
    if template_hash(&before) != template_hash(&after) {
        let revision: u64 = before
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .and_then(|r| r.parse().ok())
            .unwrap_or(1);
        after
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION.into(), (revision + 1).to_string());
    }
    if dry_run {
        return json_ok(&shown(&inner, &after));
    }
    inner.apps.deployments[i].object = after;
    inner.bump();
    let answer = shown(&inner, &inner.apps.deployments[i].object);
    drop(inner);
    json_ok(&answer)
}

/// The checks the API server makes on an update (apps validation.go
/// `ValidateDeploymentUpdate`), plus what localkube can run.
fn validate_update(
    before: &Deployment,
    after: &Deployment,
    file: &FsPath,
    images: &BTreeMap<String, crate::image::Image>,
) -> Result<(), String> {
    if after.metadata.name != before.metadata.name
        || after.metadata.namespace != before.metadata.namespace
    {
        return Err("metadata.name and metadata.namespace cannot be changed".into());
    }
    let (Some(b), Some(a)) = (before.spec.as_ref(), after.spec.as_ref()) else {
        return Err("spec: Required value".into());
    };
    if serde_json::to_value(&a.selector).ok() != serde_json::to_value(&b.selector).ok() {
        return Err(format!(
            "spec.selector: Invalid value: {}: field is immutable",
            serde_json::to_string(&a.selector).unwrap_or_default()
        ));
    }
    if a.replicas.is_some_and(|r| r < 0) {
        return Err("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    let labels = a
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selects = a
        .selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selects {
        return Err("spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into());
    }
    let Some(pod_spec) = a.template.spec.as_ref() else {
        return Err("spec.template.spec: Required value".into());
    };
    crate::manifest::validate_spec(file, "spec.template.spec", pod_spec)
        .map_err(|e| e.to_string())?;
    for (i, c) in pod_spec.containers.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or_default();
        if crate::manifest::resolve_image(images, image).is_none() {
            return Err(format!(
                "spec.template.spec.containers[{i}].image: image {image:?} has no local executable in localkube (map it with --image)"
            ));
        }
    }
    Ok(())
}
