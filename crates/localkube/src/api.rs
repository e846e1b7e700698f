//! The REST endpoints: version, discovery, pods (list, get, watch, log), exec, and
//! services (list, get); Endpoints are in [`crate::endpoints`], port-forward in
//! [`crate::portforward`].

use std::os::fd::AsFd;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube_selector::SelectorExt;
use serde_json::{Value, json};

use crate::exec::{self, StreamFaults, V4, V5};
use crate::state::{Cluster, Inner, Run};
use crate::status::{error, json_ok, pod_not_found};
use crate::sys::nsexec::{self, ExecSpec};

type Params = Query<Vec<(String, String)>>;

pub(crate) fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub(crate) fn flag(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("true" | "1" | "True"))
}

pub(crate) async fn version() -> Response {
    json_ok(&json!({
        "major": "1",
        "minor": "35",
        "gitVersion": "v1.35.0-localkube",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z",
        "goVersion": "go1.25.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

pub(crate) async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_ok(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
}

/// The API groups served besides the core one, each in version `v1` only.
const GROUPS: [&str; 2] = ["apps", "discovery.k8s.io"];

/// An API group as discovery describes it.
fn api_group(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [version], "preferredVersion": version})
}

/// `GET /apis`.
pub(crate) async fn api_groups() -> Response {
    let groups: Vec<Value> = GROUPS.iter().map(|g| api_group(g)).collect();
    json_ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

/// `GET /apis/<name>`.
pub(crate) fn group(name: &str) -> Response {
    let mut g = api_group(name);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    json_ok(&g)
}

pub(crate) async fn api_v1(State(c): State<Arc<Cluster>>) -> Response {
    let mut list = json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["delete", "get", "list", "watch"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/exec", "singularName": "", "namespaced": true,
             "kind": "PodExecOptions", "verbs": ["create", "get"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
             "verbs": ["get"]},
            {"name": "pods/portforward", "singularName": "", "namespaced": true,
             "kind": "PodPortForwardOptions", "verbs": ["create", "get"]},
            {"name": "pods/attach", "singularName": "", "namespaced": true,
             "kind": "PodAttachOptions", "verbs": ["create", "get"]},
            {"name": "pods/ephemeralcontainers", "singularName": "", "namespaced": true,
             "kind": "Pod", "verbs": ["get", "patch", "update"]},
            {"name": "endpoints", "singularName": "endpoints", "namespaced": true,
             "kind": "Endpoints", "verbs": ["get", "list"], "shortNames": ["ep"]},
            {"name": "services", "singularName": "service", "namespaced": true,
             "kind": "Service", "verbs": ["get", "list"], "shortNames": ["svc"],
             "categories": ["all"]},
        ],
    });
    if !c.ephemeral_enabled
        && let Some(Value::Array(resources)) = list.get_mut("resources")
    {
        resources.retain(|r| r["name"] != "pods/ephemeralcontainers");
    }
    json_ok(&list)
}

pub(crate) async fn not_found() -> Response {
    error(
        404,
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub(crate) fn method_not_allowed(method: &Method) -> Response {
    error(
        405,
        format!(
            "the server does not allow this method on the requested resource ({method}); localkube serves get and list"
        ),
        Some(json!({})),
    )
}

pub(crate) async fn list_all_pods(
    State(c): State<Arc<Cluster>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list(&c, None, &method, &headers, &q)
}

pub(crate) async fn list_pods(
    State(c): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list(&c, Some(&ns), &method, &headers, &q)
}

/// The checks every list shares; the label selector it asks for.
pub(crate) fn list_query(
    method: &Method,
    q: &[(String, String)],
) -> Result<kube_selector::Selector, Box<Response>> {
    if method != Method::GET {
        return Err(Box::new(method_not_allowed(method)));
    }
    kube_selector::parse_label_selector(param(q, "labelSelector").unwrap_or(""))
        .map_err(|e| Box::new(error(400, e.to_string(), None)))
}

/// [`list_query`] for a resource served by list only: a watch is refused
/// (405, so clients fall back to listing) and so is a field selector.
pub(crate) fn list_only_query(
    method: &Method,
    q: &[(String, String)],
    resource: &str,
) -> Result<kube_selector::Selector, Box<Response>> {
    let labels = list_query(method, q)?;
    if flag(q, "watch") {
        return Err(Box::new(error(
            405,
            format!("watch on {resource} is not supported by localkube; list instead"),
            Some(json!({})),
        )));
    }
    if param(q, "fieldSelector").is_some_and(|f| !f.is_empty()) {
        return Err(Box::new(error(
            400,
            format!("field selectors on {resource} are not supported by localkube"),
            None,
        )));
    }
    Ok(labels)
}

/// A list computed from the cluster's state rather than stored (Services,
/// Endpoints, EndpointSlices): served by [`list_computed`].
pub(crate) struct ComputedList<T> {
    /// The resource's plural, for errors.
    pub resource: &'static str,
    pub kind: &'static str,
    pub api_version: &'static str,
    /// The objects of `namespace` (all if `None`).
    pub items: fn(&Inner, Option<&str>) -> Vec<T>,
    /// An object as a list item.
    pub item: fn(&T) -> Value,
    /// The table `kubectl get` asks for.
    pub table: fn(&[T], u64, Option<&str>) -> Value,
}

/// A GET of a computed list: [`list_only_query`]'s checks, the label
/// selector, then a table or the list object.
pub(crate) fn list_computed<
    T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    c: &Cluster,
    namespace: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    q: &[(String, String)],
    list: &ComputedList<T>,
) -> Response {
    let labels = match list_only_query(method, q, list.resource) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let inner = c.lock();
    let rv = inner.resource_version;
    let items: Vec<T> = (list.items)(&inner, namespace)
        .into_iter()
        .filter(|o| labels.matches(&o.metadata().labels.clone().unwrap_or_default()))
        .collect();
    drop(inner);
    if wants_table(headers) {
        return json_ok(&(list.table)(&items, rv, param(q, "includeObject")));
    }
    json_ok(&json!({
        "kind": list.kind,
        "apiVersion": list.api_version,
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items.iter().map(list.item).collect::<Vec<_>>(),
    }))
}

fn list(
    c: &Arc<Cluster>,
    namespace: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    q: &[(String, String)],
) -> Response {
    let labels = match list_query(method, q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let field_text = param(q, "fieldSelector").unwrap_or("");
    let fields = match kube_selector::parse_field_selector(field_text) {
        Ok(s) => s,
        Err(e) => {
            return error(
                400,
                format!(
                    "Unable to find \"/v1, Resource=pods\" that match label selector \"{}\", field selector \"{field_text}\": {e}",
                    param(q, "labelSelector").unwrap_or("")
                ),
                None,
            );
        }
    };
    if flag(q, "watch") {
        let filter = crate::watch::Filter {
            namespace: namespace.map(str::to_string),
            name: None,
            labels,
            fields,
        };
        return crate::watch::serve(c, filter, q, watch_render(headers, q));
    }
    let inner = c.lock();
    let rv = inner.resource_version;
    let pods: Vec<Pod> = inner
        .pods
        .iter()
        .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
        .filter(|p| labels.matches(&p.labels))
        .map(|p| p.to_pod(inner.watch.version(p)))
        .filter(|p| fields.matches(p))
        .collect();
    drop(inner);
    if wants_table(headers) {
        return json_ok(&table(&pods, rv, param(q, "includeObject")));
    }
    json_ok(&json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": pods,
    }))
}

/// Watch events carry one-row tables when `kubectl get -w` asks for them.
fn watch_render(headers: &HeaderMap, q: &[(String, String)]) -> Option<crate::watch::Render> {
    if !wants_table(headers) {
        return None;
    }
    let include = param(q, "includeObject").map(str::to_string);
    Some(Box::new(move |pod: &Pod| {
        let rv = pod
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        table(std::slice::from_ref(pod), rv, include.as_deref())
    }))
}

pub(crate) fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

pub(crate) fn age(created: Option<Timestamp>) -> String {
    let Some(t) = created else {
        return "<unknown>".into();
    };
    let secs = Timestamp::now().as_second() - t.as_second();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The server-side table `kubectl get` prints.
fn table(pods: &[Pod], rv: u64, include: Option<&str>) -> Value {
    let rows: Vec<Value> = pods
        .iter()
        .map(|p| {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            // As the API server's printPod (kubernetes pkg/printers/internalversion/
            // printers.go): the phase, overridden by the last container's waiting
            // or terminated reason; restarts with the age of the latest one.
            let mut shown = p
                .status
                .as_ref()
                .and_then(|s| s.reason.clone().or_else(|| s.phase.clone()))
                .unwrap_or_default();
            let mut ready = 0;
            let mut restarts = 0;
            let mut has_running = false;
            let mut last_restart: Option<Timestamp> = None;
            for s in statuses.iter().rev() {
                restarts += s.restart_count;
                if let Some(t) = s
                    .last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .and_then(|t| t.finished_at.as_ref())
                    && last_restart.is_none_or(|l| t.0 > l)
                {
                    last_restart = Some(t.0);
                }
                let state = s.state.clone().unwrap_or_default();
                if let Some(reason) = state.waiting.and_then(|w| w.reason).filter(|r| !r.is_empty()) {
                    shown = reason;
                } else if let Some(t) = state.terminated {
                    shown = match t.reason.filter(|r| !r.is_empty()) {
                        Some(r) => r,
                        None if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
                        None => format!("ExitCode:{}", t.exit_code),
                    };
                } else if s.ready && state.running.is_some() {
                    has_running = true;
                    ready += 1;
                }
            }
            if shown == "Completed" && has_running {
                shown = "Running".into();
            }
            if p.metadata.deletion_timestamp.is_some() {
                shown = "Terminating".into();
            }
            let restarts = match last_restart {
                Some(t) if restarts > 0 => format!("{restarts} ({} ago)", age(Some(t))),
                _ => restarts.to_string(),
            };
            let object = row_object(p, &p.metadata, include);
            json!({
                "cells": [
                    p.metadata.name,
                    format!("{ready}/{}", statuses.len()),
                    shown,
                    restarts,
                    age(p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_else(|| "<none>".into()),
                    p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "<none>".into()),
                ],
                "object": object,
            })
        })
        .collect();
    table_of(
        vec![
            col("Name", "name", 0, "Name of the pod"),
            col("Ready", "", 0, "Ready containers / all containers"),
            col(
                "Status",
                "",
                0,
                "The pod's phase or the reason it is not running",
            ),
            col("Restarts", "", 0, "Container restarts"),
            col("Age", "", 0, "Time since creation"),
            col("IP", "", 1, "Pod IP"),
            col("Node", "", 1, "Node name"),
        ],
        rows,
        rv,
    )
}

pub(crate) fn col(name: &str, format: &str, priority: i32, description: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "priority": priority, "description": description})
}

pub(crate) fn table_of(columns: Vec<Value>, rows: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// A table row's `object`, as `includeObject` asks.
pub(crate) fn row_object<T: serde::Serialize>(
    obj: &T,
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    include: Option<&str>,
) -> Value {
    match include {
        Some("None") => Value::Null,
        Some("Object") => serde_json::to_value(obj).unwrap_or(Value::Null),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
        }),
    }
}

pub(crate) async fn list_all_services(
    State(c): State<Arc<Cluster>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list_services(&c, None, &method, &headers, &q)
}

pub(crate) async fn list_ns_services(
    State(c): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    list_services(&c, Some(&ns), &method, &headers, &q)
}

fn list_services(
    c: &Cluster,
    namespace: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    q: &[(String, String)],
) -> Response {
    let list = ComputedList {
        resource: "services",
        kind: "ServiceList",
        api_version: "v1",
        items: |inner, namespace| {
            inner
                .services
                .iter()
                .filter(|s| namespace.is_none_or(|ns| s.metadata.namespace.as_deref() == Some(ns)))
                .map(|s| with_version(s, inner.resource_version))
                .collect()
        },
        item: |s| json!(s),
        table: service_table,
    };
    list_computed(c, namespace, method, headers, q, &list)
}

fn with_version(s: &Service, rv: u64) -> Service {
    let mut s = s.clone();
    s.metadata.resource_version = Some(rv.to_string());
    s
}

pub(crate) async fn get_service(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
) -> Response {
    if method != Method::GET {
        return method_not_allowed(&method);
    }
    let inner = c.lock();
    let found = inner.services.iter().find(|s| {
        s.metadata.namespace.as_deref() == Some(ns.as_str())
            && s.metadata.name.as_deref() == Some(name.as_str())
    });
    match found {
        Some(s) => json_ok(&with_version(s, inner.resource_version)),
        None => error(
            404,
            format!("services \"{name}\" not found"),
            Some(json!({"name": name, "kind": "services"})),
        ),
    }
}

/// The columns `kubectl get services` prints.
fn service_table(services: &[Service], rv: u64, include: Option<&str>) -> Value {
    let rows = services
        .iter()
        .map(|s| {
            let spec = s.spec.clone().unwrap_or_default();
            let ports: Vec<String> = spec
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    let proto = p.protocol.as_deref().unwrap_or("TCP");
                    match p.node_port {
                        Some(n) => format!("{}:{n}/{proto}", p.port),
                        None => format!("{}/{proto}", p.port),
                    }
                })
                .collect();
            json!({
                "cells": [
                    s.metadata.name,
                    spec.type_.unwrap_or_else(|| "ClusterIP".into()),
                    spec.cluster_ip.unwrap_or_else(|| "<none>".into()),
                    "<none>",
                    if ports.is_empty() { "<none>".to_string() } else { ports.join(",") },
                    age(s.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                ],
                "object": row_object(s, &s.metadata, include),
            })
        })
        .collect();
    table_of(
        vec![
            col("Name", "name", 0, "Name of the service"),
            col("Type", "", 0, "How the service is exposed"),
            col("Cluster-IP", "", 0, "Cluster IP (not routed by localkube)"),
            col("External-IP", "", 0, "External IPs"),
            col("Port(s)", "", 0, "Service ports"),
            col("Age", "", 0, "Time since creation"),
        ],
        rows,
        rv,
    )
}

pub(crate) async fn list_namespaces(State(c): State<Arc<Cluster>>) -> Response {
    let mut names = namespaces_in_use(&c);
    names.push("default".into());
    names.sort();
    names.dedup();
    let items: Vec<Value> = names.iter().map(|n| namespace_obj(n)).collect();
    json_ok(&json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items}))
}

/// Namespaces that hold a pod or a service.
fn namespaces_in_use(c: &Cluster) -> Vec<String> {
    let inner = c.lock();
    let pods = inner.pods.iter().map(|p| p.namespace.clone());
    let services = inner
        .services
        .iter()
        .filter_map(|s| s.metadata.namespace.clone());
    pods.chain(services).collect()
}

fn namespace_obj(name: &str) -> Value {
    json!({
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

pub(crate) async fn get_namespace(
    State(c): State<Arc<Cluster>>,
    Path(ns): Path<String>,
) -> Response {
    let known = ns == "default" || namespaces_in_use(&c).contains(&ns);
    if known {
        json_ok(&namespace_obj(&ns))
    } else {
        error(
            404,
            format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        )
    }
}

pub(crate) async fn get_pod(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if method != Method::GET {
        return method_not_allowed(&method);
    }
    if flag(&q, "watch") {
        // The deprecated single-object watch: a watch of this one name.
        let filter = crate::watch::Filter {
            namespace: Some(ns),
            name: Some(name),
            labels: kube_selector::Selector::default(),
            fields: kube_selector::FieldSelector::default(),
        };
        return crate::watch::serve(&c, filter, &q, watch_render(&headers, &q));
    }
    let inner = c.lock();
    match inner.pod(&ns, &name) {
        // `kubectl get pod NAME` asks for a one-row Table, as for a list.
        Some(p) if wants_table(&headers) => {
            let rv = inner.watch.version(p);
            json_ok(&table(&[p.to_pod(rv)], rv, param(&q, "includeObject")))
        }
        Some(p) => json_ok(&p.to_pod(inner.watch.version(p))),
        None => pod_not_found(&name),
    }
}

/// Pick the container a request means: the named one (ephemeral ones too, once
/// started), or the only one.
fn choose_container<'a>(
    pod: &'a crate::state::PodState,
    wanted: Option<&str>,
) -> Result<&'a crate::state::ContainerRun, Box<Response>> {
    let names = || {
        pod.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) => pod.container_run(w).ok_or_else(|| {
            Box::new(error(
                400,
                format!("container {w} is not valid for pod {}", pod.name),
                None,
            ))
        }),
        None if pod.containers.len() == 1 => Ok(&pod.containers[0]),
        None => Err(Box::new(error(
            400,
            format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                pod.name,
                names()
            ),
            None,
        ))),
    }
}

pub(crate) async fn pod_log(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let file = {
        let inner = c.lock();
        let Some(pod) = inner.pod(&ns, &name) else {
            return pod_not_found(&name);
        };
        match choose_container(pod, param(&q, "container")) {
            Ok(container) => match container.log_for(&pod.name, flag(&q, "previous")) {
                Ok(file) => file,
                Err(message) => return error(400, message, None),
            },
            Err(r) => return *r,
        }
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain")], bytes).into_response(),
        Err(e) => error(500, format!("reading log {}: {e}", file.display()), None),
    }
}

pub(crate) async fn exec(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Params,
    req: Request,
) -> Response {
    let argv: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let (stdin, stdout, stderr) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    // Find the target and apply faults before anything is upgraded, as the API
    // server does: these are plain HTTP errors with a Status body.
    let (spec, faults) = {
        let inner = c.lock();
        let Some(pod) = inner.pod(&ns, &name) else {
            return pod_not_found(&name);
        };
        if let Some(code) = pod.faults.exec_refused {
            let message = if code == 403 {
                format!(
                    "pods \"{name}\" is forbidden: User \"localkube\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"{ns}\""
                )
            } else {
                format!(
                    "error executing command in container: localkube fault: exec refused with {code}"
                )
            };
            return error(code, message, Some(json!({"name": name, "kind": "pods"})));
        }
        let phase = pod.phase();
        // The API server's checks (pkg/registry/core/pod/strategy.go): no node
        // yet (an unscheduled pod), or a finished pod. A scheduled Pending pod
        // (a container refused or not started) may be exec'd into.
        if pod.faults.phase.as_deref() == Some("Pending") {
            return error(
                400,
                format!("pod {name} does not have a host assigned"),
                None,
            );
        }
        let faulted = pod.faults.phase.is_some() && phase != "Running";
        if phase == "Succeeded" || phase == "Failed" || faulted {
            return error(
                400,
                format!(
                    "cannot exec into a container in a completed pod; current phase is {phase}"
                ),
                None,
            );
        }
        let container = match choose_container(pod, param(&q, "container")) {
            Ok(c) => c,
            Err(r) => return *r,
        };
        let Run::Running { process, .. } = &container.run else {
            let why = match &container.run {
                Run::Waiting { reason, .. } => format!("it is waiting: {reason}"),
                Run::BackOff { .. } => "it is waiting: CrashLoopBackOff".to_string(),
                _ => "it has terminated".to_string(),
            };
            return error(
                400,
                format!(
                    "container {} is not running in pod {name} ({why})",
                    container.name
                ),
                None,
            );
        };
        if argv.is_empty() {
            return error(400, "you must specify at least 1 command", None);
        }
        if !(stdin || stdout || stderr) {
            return error(
                400,
                "you must specify at least 1 of stdin, stdout, stderr",
                None,
            );
        }
        let target = match process.pidfd.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => return error(500, format!("cannot reach the container: {e}"), None),
        };
        (
            ExecSpec {
                target,
                mode: c.mode,
                argv: argv.clone(),
                env: container.spec.env.clone(),
                working_dir: container
                    .spec
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into()),
                stdin,
                user: container.spec.user.clone(),
            },
            StreamFaults {
                cut_after: pod.faults.cut_after,
                bytes_per_sec: pod.faults.bytes_per_sec,
            },
        )
    };
    let (mut parts, _body) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(_) => {
            return error(
                400,
                format!(
                    "upgrade request required: localkube serves exec over WebSocket ({V5}, {V4}), not SPDY"
                ),
                None,
            );
        }
    };
    let upgrade = upgrade.protocols([V5, V4]);
    let protocol = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(V5) => V5,
        Some(V4) => V4,
        _ => {
            return error(
                400,
                format!(
                    "none of the requested WebSocket subprotocols is supported; localkube speaks {V5} and {V4}"
                ),
                None,
            );
        }
    };
    let cluster = Arc::clone(&c);
    let process =
        match tokio::task::spawn_blocking(move || nsexec::spawn(&cluster.spawner, spec)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                return error(
                    500,
                    format!("error executing command in container: {e}"),
                    None,
                );
            }
            Err(e) => {
                return error(
                    500,
                    format!("error executing command in container: {e}"),
                    None,
                );
            }
        };
    upgrade
        .max_frame_size(1 << 20)
        .on_upgrade(move |socket| exec::session(socket, process, protocol, argv, faults))
}
