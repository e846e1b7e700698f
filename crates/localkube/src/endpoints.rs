//! v1 Endpoints, computed on every read from the Services' selectors over the
//! pods, as the endpoints controller keeps them
//! (`pkg/controller/endpoint/endpoints_controller.go` `syncService`):
//! * a Service without a selector gets no managed Endpoints;
//! * a pod counts when it has an IP, is not terminal (Succeeded/Failed) and
//!   is not being deleted (`endpointsliceutil.ShouldPodBeInEndpoints`);
//! * each Service port maps to the pod's port through `targetPort`: a number
//!   as is, a name through the container port of that name and protocol
//!   (`podutil.FindPort`); a pod without the named port is left out for it;
//! * a pod whose `Ready` condition is true is in `addresses`, any other in
//!   `notReadyAddresses` (unless `publishNotReadyAddresses`);
//! * subsets group the addresses that share the same ports
//!   (`endpoints.RepackSubsets`).
//!
//! Since 1.33 the API server warns on every use of v1 Endpoints
//! (KEP-4974); the same `Warning` header is sent here.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::api::{
    ComputedList, age, col, list_computed, method_not_allowed, param, row_object, table_of,
    wants_table,
};
use crate::state::{Cluster, Inner};
use crate::status::{error, json_ok};

/// k8s.io/apiserver `warning.AddWarning` text for v1 Endpoints since 1.33.
const DEPRECATION: &str =
    "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";

/// A resolved port: name, number, protocol.
pub(crate) type PortKey = (String, i32, String);
/// Ready and not-ready addresses.
type Addresses = (Vec<EndpointAddress>, Vec<EndpointAddress>);

fn warn(r: Response) -> Response {
    ([("warning", DEPRECATION)], r).into_response()
}

/// The Endpoints of every selector Service in `namespace` (all if `None`).
fn compute(inner: &Inner, namespace: Option<&str>) -> Vec<Endpoints> {
    let rv = inner.resource_version;
    inner
        .services
        .iter()
        .filter(|s| namespace.is_none_or(|ns| s.metadata.namespace.as_deref() == Some(ns)))
        .filter_map(|s| endpoints_of(inner, s, rv))
        .collect()
}

/// One pod behind a Service: its address, readiness and resolved ports.
pub(crate) struct Member {
    pub address: EndpointAddress,
    pub ready: bool,
    pub ports: Vec<PortKey>,
}

/// The pods a selector Service points at (`None` without a selector), as the
/// endpoints and EndpointSlice controllers choose them.
pub(crate) fn members(inner: &Inner, svc: &Service, rv: u64) -> Option<Vec<Member>> {
    let spec = svc.spec.as_ref()?;
    let selector = spec.selector.as_ref()?;
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    for state in inner.pods.iter().filter(|p| p.namespace == ns) {
        if state.deletion.is_some() {
            continue;
        }
        if !selector.iter().all(|(k, v)| state.labels.get(k) == Some(v)) {
            continue;
        }
        let pod = state.to_pod(rv);
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.as_deref().unwrap_or("");
        let Some(ip) = status.pod_ip.clone() else {
            continue;
        };
        if phase == "Succeeded" || phase == "Failed" || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ports: Vec<PortKey> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|sp| {
                let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
                let number = find_port(&pod, sp.target_port.as_ref(), sp.port, &protocol)?;
                Some((sp.name.clone().unwrap_or_default(), number, protocol))
            })
            .collect();
        if ports.is_empty() && !spec.ports.as_ref().is_none_or(Vec::is_empty) {
            continue;
        }
        out.push(Member {
            address,
            ready,
            ports,
        });
    }
    out.sort_by(|a, b| a.address.ip.cmp(&b.address.ip));
    Some(out)
}

fn endpoints_of(inner: &Inner, svc: &Service, rv: u64) -> Option<Endpoints> {
    let spec = svc.spec.as_ref()?;
    let ns = svc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    // Port list → (ready, not ready) addresses: RepackSubsets' grouping.
    let mut groups: BTreeMap<Vec<PortKey>, Addresses> = BTreeMap::new();
    for m in members(inner, svc, rv)? {
        let group = groups.entry(m.ports).or_default();
        if m.ready || publish_not_ready {
            group.0.push(m.address);
        } else {
            group.1.push(m.address);
        }
    }
    let subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            ..Default::default()
                        })
                        .collect()
                }),
            }
        })
        .collect();
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if spec.cluster_ip.as_deref() == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    Some(Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: Some(ns),
            labels: (!labels.is_empty()).then_some(labels),
            creation_timestamp: svc.metadata.creation_timestamp.clone(),
            resource_version: Some(rv.to_string()),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

/// `podutil.FindPort`: a named target port is the container port of that
/// name and protocol; a number is itself; an unset one is the Service port
/// (the API server defaults `targetPort` to `port`).
fn find_port(pod: &Pod, target: Option<&IntOrString>, port: i32, protocol: &str) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

pub(crate) async fn list_all(
    State(c): State<Arc<Cluster>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    list(&c, None, &method, &headers, &q)
}

pub(crate) async fn list_ns(
    State(c): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
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
    let list = ComputedList {
        resource: "endpoints",
        kind: "EndpointsList",
        api_version: "v1",
        items: compute,
        item: |e| json!(e),
        table,
    };
    let r = list_computed(c, namespace, method, headers, q, &list);
    // The deprecation warning goes with answers, not with refusals.
    if r.status().is_success() { warn(r) } else { r }
}

pub(crate) async fn get(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if method != Method::GET {
        return method_not_allowed(&method);
    }
    let inner = c.lock();
    let rv = inner.resource_version;
    let found = compute(&inner, Some(&ns))
        .into_iter()
        .find(|e| e.metadata.name.as_deref() == Some(name.as_str()));
    drop(inner);
    match found {
        Some(e) if wants_table(&headers) => {
            warn(json_ok(&table(&[e], rv, param(&q, "includeObject"))))
        }
        Some(e) => warn(json_ok(&with_kind(&e))),
        None => error(
            404,
            format!("endpoints \"{name}\" not found"),
            Some(json!({"name": name, "kind": "endpoints"})),
        ),
    }
}

fn with_kind(e: &Endpoints) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    v["kind"] = json!("Endpoints");
    v["apiVersion"] = json!("v1");
    v
}

/// The columns `kubectl get endpoints` prints (printers.go
/// `printEndpoints`, `formatEndpoints`: at most three, then "+ N more...").
fn table(items: &[Endpoints], rv: u64, include: Option<&str>) -> Value {
    let rows = items
        .iter()
        .map(|e| {
            let mut all = Vec::new();
            for s in e.subsets.iter().flatten() {
                for a in s.addresses.iter().flatten() {
                    match s.ports.as_deref() {
                        Some(ports) if !ports.is_empty() => {
                            all.extend(ports.iter().map(|p| format!("{}:{}", a.ip, p.port)))
                        }
                        _ => all.push(a.ip.clone()),
                    }
                }
            }
            let text = match all.len() {
                0 => "<none>".to_string(),
                n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
                _ => all.join(","),
            };
            json!({
                "cells": [e.metadata.name, text, age(e.metadata.creation_timestamp.as_ref().map(|t| t.0))],
                "object": row_object(&with_kind(e), &e.metadata, include),
            })
        })
        .collect();
    table_of(
        vec![
            col("Name", "name", 0, "Name of the endpoints"),
            col("Endpoints", "", 0, "Ready addresses and ports"),
            col("Age", "", 0, "Time since creation"),
        ],
        rows,
        rv,
    )
}
