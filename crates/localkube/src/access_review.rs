//! `kubectl auth can-i`: `SelfSubjectAccessReview` (authorization.k8s.io/v1),
//! answered by the RBAC module for the caller, and user impersonation
//! (`--as`, the `Impersonate-*` headers) so an admin can ask for someone else.
//!
//! Sources: `pkg/registry/authorization/selfsubjectaccessreview/rest.go` (the
//! review is evaluated for the requesting user; the reply is the object with
//! `status.allowed`, HTTP 201), the default `system:basic-user` ClusterRole
//! (every authenticated user may create self reviews) and
//! `staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`
//! (the impersonator needs `impersonate` on `users`, `serviceaccounts` or
//! `groups`; an impersonated service account without `Impersonate-Group` gets
//! `system:serviceaccounts` and `system:serviceaccounts:<ns>`; everyone gets
//! `system:authenticated`; groups without a user are a 400).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, http::StatusCode};
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::rbac::Attributes;
use crate::state::Cluster;

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub(crate) async fn create(
    State(cluster): State<Arc<Cluster>>,
    Extension(user): Extension<UserInfo>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return crate::status::error(
            405,
            format!("the server does not allow this method on the requested resource ({method})"),
            None,
        );
    }
    // client-go's typed clients (so kubectl) send built-in types as protobuf
    // (kubernetes#125314) and accept JSON back.
    let protobuf = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/vnd.kubernetes.protobuf"));
    let parsed = if protobuf {
        review_from_protobuf(&body)
    } else {
        serde_json::from_slice::<Value>(&body).ok()
    };
    let Some(mut review) = parsed else {
        return crate::status::error(400, "the body is not a SelfSubjectAccessReview", None);
    };
    review["kind"] = json!("SelfSubjectAccessReview");
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    let spec = &review["spec"];
    let allowed = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let text = |k: &str| ra[k].as_str().unwrap_or_default().to_string();
        let optional = |k: &str| Some(text(k)).filter(|s| !s.is_empty());
        let attrs = Attributes {
            verb: text("verb"),
            group: text("group"),
            resource: text("resource"),
            subresource: optional("subresource"),
            namespace: optional("namespace"),
            name: optional("name"),
        };
        cluster.rbac.permits(&user, &attrs)
    } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        cluster
            .rbac
            .permits_path(&user, nra["path"].as_str().unwrap_or_default())
    } else {
        return crate::status::error(
            422,
            "SelfSubjectAccessReview.authorization.k8s.io is invalid: spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            None,
        );
    };
    review["status"] = json!({ "allowed": allowed });
    if review["metadata"].is_null() {
        review["metadata"] = json!({});
    }
    (
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        review.to_string(),
    )
        .into_response()
}

/// The fields of one protobuf message: (field number, bytes) for the
/// length-delimited ones, the only kind a review's strings and messages use.
fn protobuf_fields(mut b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut b)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                let (value, rest) = (b.get(..len)?, b.get(len..)?);
                out.push((key >> 3, value));
                b = rest;
                0
            }
            _ => return None,
        };
        b = b.get(skip..)?;
    }
    Some(out)
}

/// A `SelfSubjectAccessReview` in Kubernetes' protobuf envelope (`k8s\0`,
/// then `runtime.Unknown` whose field 2 is the object; field numbers from
/// `authorization/v1/generated.proto`) as the JSON the handler reads.
fn review_from_protobuf(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = protobuf_fields(unknown)?.into_iter().find(|f| f.0 == 2)?.1;
    let field = |msg: &[u8], n: u64| -> Option<Vec<u8>> {
        protobuf_fields(msg)?
            .into_iter()
            .find(|f| f.0 == n)
            .map(|f| f.1.to_vec())
    };
    let strings = |msg: &[u8], names: &[(u64, &str)]| -> Value {
        let mut v = json!({});
        for (n, name) in names {
            if let Some(s) = field(msg, *n) {
                v[*name] = json!(String::from_utf8_lossy(&s));
            }
        }
        v
    };
    let spec = field(raw, 2)?;
    let mut out = json!({"metadata": {}, "spec": {}});
    if let Some(ra) = field(&spec, 1) {
        out["spec"]["resourceAttributes"] = strings(
            &ra,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        );
    }
    if let Some(nra) = field(&spec, 2) {
        out["spec"]["nonResourceAttributes"] = strings(&nra, &[(1, "path"), (2, "verb")]);
    }
    Some(out)
}

/// The user a request acts as: `user`, or whom its `Impersonate-*` headers
/// name when `user` may impersonate them (else the API server's 403).
pub(crate) fn acting_user(
    cluster: &Cluster,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, Box<Response>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let groups = values("impersonate-group");
    let Some(name) = values("impersonate-user").into_iter().next() else {
        if groups.is_empty() {
            return Ok(user);
        }
        return Err(Box::new(crate::status::error(
            400,
            format!("requested {groups:?} without impersonating a user"),
            None,
        )));
    };
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let target = match service_account {
        Some((ns, sa)) => Attributes {
            verb: "impersonate".into(),
            group: String::new(),
            resource: "serviceaccounts".into(),
            subresource: None,
            namespace: Some(ns.to_string()),
            name: Some(sa.to_string()),
        },
        None => Attributes {
            verb: "impersonate".into(),
            group: String::new(),
            resource: "users".into(),
            subresource: None,
            namespace: None,
            name: Some(name.clone()),
        },
    };
    let mut checks = vec![target];
    checks.extend(groups.iter().map(|g| Attributes {
        verb: "impersonate".into(),
        group: String::new(),
        resource: "groups".into(),
        subresource: None,
        namespace: None,
        name: Some(g.clone()),
    }));
    if let Some(denied) = checks.iter().find(|a| !cluster.rbac.permits(&user, a)) {
        return Err(Box::new(crate::rbac::forbidden(&user, denied)));
    }
    let mut as_groups = groups;
    if as_groups.is_empty()
        && let Some((ns, _)) = service_account
    {
        as_groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    let refs: Vec<&str> = as_groups.iter().map(String::as_str).collect();
    Ok(UserInfo::new(name, &refs))
}
