//! `discovery.k8s.io/v1` EndpointSlices, computed on every read from the same
//! pods as [`crate::endpoints`], the way the EndpointSlice controller shapes
//! them (`pkg/controller/endpointslice`, `staging/src/k8s.io/endpointslice`
//! `reconciler.go`, `utils.go`):
//! * one slice per set of resolved ports, `addressType: IPv4`, named
//!   `<service>-<5 characters>` (the controller's `generateName`), labelled
//!   `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`,
//!   owned by the Service;
//! * every pod is listed, `conditions.ready` and `serving` from its `Ready`
//!   condition (`publishNotReadyAddresses` makes them true), `terminating`
//!   false (pods being deleted are left out here);
//! * a selector Service with no pods keeps one empty placeholder slice.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use crate::api::{
    ComputedList, age, col, list_computed, method_not_allowed, param, row_object, table_of,
    wants_table,
};
use crate::endpoints::{Member, members};
use crate::state::{Cluster, Inner};
use crate::status::{error, json_ok};

const GROUP: &str = "discovery.k8s.io";

pub(crate) async fn v1() -> Response {
    json_ok(&json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "discovery.k8s.io/v1",
        "resources": [
            {"name": "endpointslices", "singularName": "endpointslice", "namespaced": true,
             "kind": "EndpointSlice", "verbs": ["get", "list"]},
        ],
    }))
}

/// Five characters from the alphabet of apimachinery `rand.String`, stable
/// for one Service and port set.
fn suffix(seed: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..5)
        .map(|i| char::from(ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize]))
        .collect()
}

fn slices_of(inner: &Inner, svc: &Service, rv: u64) -> Vec<EndpointSlice> {
    let Some(all) = members(inner, svc, rv) else {
        return Vec::new();
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let name = svc.metadata.name.clone().unwrap_or_default();
    let uid = svc.metadata.uid.clone().unwrap_or_default();
    let mut groups: BTreeMap<Vec<crate::endpoints::PortKey>, Vec<Member>> = BTreeMap::new();
    for m in all {
        groups.entry(m.ports.clone()).or_default().push(m);
    }
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert("kubernetes.io/service-name".into(), name.clone());
    labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        "endpointslice-controller.k8s.io".into(),
    );
    if spec.cluster_ip.as_deref() == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let meta = |key: &str| ObjectMeta {
        name: Some(format!("{name}-{}", suffix(&format!("{uid}/{key}")))),
        generate_name: Some(format!("{name}-")),
        namespace: svc.metadata.namespace.clone(),
        labels: Some(labels.clone()),
        creation_timestamp: svc.metadata.creation_timestamp.clone(),
        resource_version: Some(rv.to_string()),
        owner_references: Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            name: name.clone(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..Default::default()
    };
    if groups.is_empty() {
        return vec![EndpointSlice {
            metadata: meta(""),
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        }];
    }
    groups
        .into_iter()
        .map(|(ports, members)| {
            let key: Vec<String> = ports.iter().map(|p| format!("{}:{}", p.0, p.1)).collect();
            EndpointSlice {
                metadata: meta(&key.join(",")),
                address_type: "IPv4".into(),
                endpoints: members
                    .into_iter()
                    .map(|m| {
                        let ready = m.ready || publish_not_ready;
                        Endpoint {
                            addresses: vec![m.address.ip],
                            conditions: Some(EndpointConditions {
                                ready: Some(ready),
                                serving: Some(ready),
                                terminating: Some(false),
                            }),
                            node_name: m.address.node_name,
                            target_ref: m.address.target_ref,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: Some(name),
                            port: Some(port),
                            protocol: Some(protocol),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

fn compute(inner: &Inner, namespace: Option<&str>) -> Vec<EndpointSlice> {
    let rv = inner.resource_version;
    inner
        .services
        .iter()
        .filter(|s| namespace.is_none_or(|ns| s.metadata.namespace.as_deref() == Some(ns)))
        .flat_map(|s| slices_of(inner, s, rv))
        .collect()
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
        resource: "endpointslices",
        kind: "EndpointSliceList",
        api_version: "discovery.k8s.io/v1",
        items: compute,
        item: with_kind,
        table,
    };
    list_computed(c, namespace, method, headers, q, &list)
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
        Some(e) if wants_table(&headers) => json_ok(&table(&[e], rv, param(&q, "includeObject"))),
        Some(e) => json_ok(&with_kind(&e)),
        None => error(
            404,
            format!("endpointslices.discovery.k8s.io \"{name}\" not found"),
            Some(json!({"name": name, "group": GROUP, "kind": "endpointslices"})),
        ),
    }
}

fn with_kind(e: &EndpointSlice) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    v["kind"] = json!("EndpointSlice");
    v["apiVersion"] = json!("discovery.k8s.io/v1");
    v
}

/// The columns `kubectl get endpointslices` prints (printers.go
/// `printEndpointSlice`: ports, then at most three addresses and "+ N more...").
fn table(items: &[EndpointSlice], rv: u64, include: Option<&str>) -> Value {
    let rows = items
        .iter()
        .map(|e| {
            let ports: Vec<String> = e
                .ports
                .iter()
                .flatten()
                .filter_map(|p| p.port.map(|n| n.to_string()))
                .collect();
            let addresses: Vec<&str> = e
                .endpoints
                .iter()
                .flat_map(|ep| ep.addresses.iter().map(String::as_str))
                .collect();
            let endpoints = match addresses.len() {
                0 => "<unset>".to_string(),
                n if n > 3 => format!("{} + {} more...", addresses[..3].join(","), n - 3),
                _ => addresses.join(","),
            };
            json!({
                "cells": [
                    e.metadata.name,
                    e.address_type,
                    if ports.is_empty() { "<unset>".to_string() } else { ports.join(",") },
                    endpoints,
                    age(e.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                ],
                "object": row_object(&with_kind(e), &e.metadata, include),
            })
        })
        .collect();
    table_of(
        vec![
            col("Name", "name", 0, "Name of the slice"),
            col("AddressType", "", 0, "Type of the addresses"),
            col("Ports", "", 0, "Ports of the slice"),
            col("Endpoints", "", 0, "Addresses in the slice"),
            col("Age", "", 0, "Time since creation"),
        ],
        rows,
        rv,
    )
}
