//! Per-identity permissions: RBAC as kube-apiserver evaluates it, from the
//! same `Role`/`ClusterRole`/`RoleBinding`/`ClusterRoleBinding` YAML a cluster
//! would be given (so tests can check the roles shipped in `hooks/rbac/`).
//!
//! Sources: `plugin/pkg/auth/authorizer/rbac/rbac.go` and `rbac/v1/evaluation_helpers.go`
//! (rule and subject matching), `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`
//! (verbs from methods: GET named → `get`, GET collection → `list`, `?watch` → `watch`,
//! POST → `create`, PUT → `update`, PATCH → `patch`, DELETE → `delete`), and
//! `pkg/endpoints/handlers/responsewriters/errors.go` `forbiddenMessage` with
//! `apierrors.NewForbidden` (the 403 body: reason `Forbidden`, details
//! `{name, group, kind: <resource>}`, message `pods "x" is forbidden: User "u"
//! cannot get resource "pods" in API group "" in the namespace "n"`).
//! Since 1.35 a WebSocket (GET) `pods/exec`, `pods/attach` or
//! `pods/portforward` also needs `create` (feature
//! `AuthorizePodWebsocketUpgradeCreatePermission`, kubernetes/kubernetes#134577).
//!
//! Without any RBAC objects every authenticated user may do everything (as
//! before); members of `system:masters` always may. Discovery and `/version`
//! are open to every authenticated user, as the default `system:discovery`
//! and `system:public-info-viewer` roles make them.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use serde_json::json;

use crate::Error;
use crate::auth::{MASTERS_GROUP, UserInfo};
use crate::state::Cluster;

/// The RBAC objects in force.
#[derive(Debug, Default, Clone)]
pub(crate) struct Policy {
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

impl Policy {
    /// Add the RBAC objects of a (multi-document) YAML file; other kinds are refused.
    pub(crate) fn load(&mut self, path: &Path) -> Result<(), Error> {
        let bad = |message: String| Error::Manifest {
            file: path.to_path_buf(),
            field: "kind".into(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        for doc in crate::yaml::documents(&text).map_err(bad)? {
            let kind = doc.value["kind"].as_str().unwrap_or_default().to_string();
            let parse_err = |e: String| bad(format!("{kind}: {e}"));
            match kind.as_str() {
                "Role" => self.roles.push(doc.to().map_err(parse_err)?),
                "ClusterRole" => self.cluster_roles.push(doc.to().map_err(parse_err)?),
                "RoleBinding" => self.role_bindings.push(doc.to().map_err(parse_err)?),
                "ClusterRoleBinding" => self
                    .cluster_role_bindings
                    .push(doc.to().map_err(parse_err)?),
                other => {
                    return Err(bad(format!(
                        "{other:?} is not an RBAC object (Role, ClusterRole, RoleBinding, ClusterRoleBinding)"
                    )));
                }
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.role_bindings.is_empty() && self.cluster_role_bindings.is_empty()
    }

    /// Whether `user` may do `attrs`, as the authorizer decides a request
    /// (no RBAC objects: everything; self reviews: every user, as the default
    /// `system:basic-user` ClusterRole grants).
    pub(crate) fn permits(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        let self_review = attrs.group == "authorization.k8s.io"
            && matches!(
                attrs.resource.as_str(),
                "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
            )
            && attrs.verb == "create";
        self.is_empty() || self_review || self.allows(user, attrs)
    }

    /// Whether `user` may `get` a non-resource `path`: discovery, version and
    /// health are open to every user (`system:discovery`,
    /// `system:public-info-viewer`), anything else only without RBAC objects
    /// or to `system:masters`.
    pub(crate) fn permits_path(&self, user: &UserInfo, path: &str) -> bool {
        let open = matches!(
            path,
            "/api"
                | "/apis"
                | "/version"
                | "/version/"
                | "/healthz"
                | "/livez"
                | "/readyz"
                | "/openapi"
        ) || ["/api/", "/apis/", "/openapi/"]
            .iter()
            .any(|p| path.starts_with(p));
        self.is_empty() || open || user.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// Whether `user` may do `attrs` (rbac.go `VisitRulesFor`: cluster role
    /// bindings everywhere, role bindings in their namespace only).
    fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return true;
        }
        let cluster_rules = |name: &str| -> Vec<PolicyRule> {
            self.cluster_roles
                .iter()
                .filter(|r| r.metadata.name.as_deref() == Some(name))
                .flat_map(|r| r.rules.clone().unwrap_or_default())
                .collect()
        };
        for b in &self.cluster_role_bindings {
            if applies(b.subjects.as_deref(), user, None)
                && b.role_ref.kind == "ClusterRole"
                && cluster_rules(&b.role_ref.name)
                    .iter()
                    .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
        let Some(ns) = attrs.namespace.as_deref() else {
            return false;
        };
        for b in &self.role_bindings {
            let bns = b.metadata.namespace.as_deref().unwrap_or("default");
            if bns != ns || !applies(b.subjects.as_deref(), user, Some(bns)) {
                continue;
            }
            let rules: Vec<PolicyRule> = match b.role_ref.kind.as_str() {
                "ClusterRole" => cluster_rules(&b.role_ref.name),
                "Role" => self
                    .roles
                    .iter()
                    .filter(|r| {
                        r.metadata.name.as_deref() == Some(b.role_ref.name.as_str())
                            && r.metadata.namespace.as_deref().unwrap_or("default") == bns
                    })
                    .flat_map(|r| r.rules.clone().unwrap_or_default())
                    .collect(),
                _ => Vec::new(),
            };
            if rules.iter().any(|r| rule_allows(r, attrs)) {
                return true;
            }
        }
        false
    }
}

/// evaluation_helpers.go `appliesToUser`.
fn applies(subjects: Option<&[Subject]>, user: &UserInfo, binding_ns: Option<&str>) -> bool {
    subjects
        .into_iter()
        .flatten()
        .any(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = s.namespace.as_deref().or(binding_ns).unwrap_or_default();
                user.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// evaluation_helpers.go `RuleAllows` (resource rules only).
fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    let resources = rule.resources.clone().unwrap_or_default();
    let combined = match &a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.clone(),
    };
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || a.subresource
                .as_ref()
                .is_some_and(|sub| *r == format!("*/{sub}"))
    });
    let names = rule.resource_names.clone().unwrap_or_default();
    has(&rule.verbs, &a.verb)
        && has(&rule.api_groups.clone().unwrap_or_default(), &a.group)
        && resource_ok
        && (names.is_empty() || a.name.as_ref().is_some_and(|n| names.contains(n)))
}

/// What a request does, in RBAC's terms.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// requestinfo.go for the paths localkube serves; `None` for non-resource paths.
fn attributes(method: &str, path: &str, watch: bool) -> Option<Attributes> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => rest,
        ["apis", _group, _version, rest @ ..] if !rest.is_empty() => rest,
        _ => return None,
    };
    let group = match parts.as_slice() {
        ["apis", g, ..] => g.to_string(),
        _ => String::new(),
    };
    // "namespaces/{ns}/{resource}..." is namespaced; "namespaces/{ns}" alone is the namespace object.
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        other => (None, other),
    };
    let resource = rest.first()?.to_string();
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    let verb = match method {
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if name.is_some() => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if name.is_some() => "delete",
        "DELETE" => "deletecollection",
        _ => "unknown",
    };
    Some(Attributes {
        verb: verb.into(),
        group,
        resource,
        subresource,
        namespace,
        name,
    })
}

/// The API server's 403 for `attrs`.
pub(crate) fn forbidden(user: &UserInfo, a: &Attributes) -> Response {
    let resource = match &a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.clone(),
    };
    let scope = match &a.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".into(),
    };
    let why = format!(
        "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, a.verb, a.group
    );
    let qualified = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let message = match &a.name {
        Some(n) => format!("{qualified} {n:?} is forbidden: {why}"),
        None => format!("{qualified} is forbidden: {why}"),
    };
    let mut details = json!({"kind": a.resource});
    if let Some(n) = &a.name {
        details["name"] = json!(n);
    }
    if !a.group.is_empty() {
        details["group"] = json!(a.group);
    }
    crate::status::error(403, message, Some(details))
}

/// Middleware after authentication: 403 unless RBAC allows the request.
pub(crate) async fn authorize(
    State(cluster): State<Arc<Cluster>>,
    req: Request,
    next: Next,
) -> Response {
    let policy = &cluster.rbac;
    if policy.is_empty() {
        return next.run(req).await;
    }
    let Some(user) = req.extensions().get::<UserInfo>().cloned() else {
        return next.run(req).await;
    };
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let Some(attrs) = attributes(req.method().as_str(), req.uri().path(), watch) else {
        return next.run(req).await;
    };
    if !policy.permits(&user, &attrs) {
        return forbidden(&user, &attrs);
    }
    let websocket_connect = matches!(
        attrs.subresource.as_deref(),
        Some("exec" | "attach" | "portforward")
    ) && attrs.verb == "get";
    if websocket_connect {
        let create = Attributes {
            verb: "create".into(),
            ..attrs
        };
        if !policy.allows(&user, &create) {
            return forbidden(&user, &create);
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_scopes_from_paths() {
        let a = attributes("GET", "/api/v1/namespaces/x/pods", false).unwrap();
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_deref()),
            ("list", Some("x"))
        );
        let a = attributes("GET", "/api/v1/pods", true).unwrap();
        assert_eq!((a.verb.as_str(), a.namespace), ("watch", None));
        let a = attributes("GET", "/api/v1/namespaces/x/pods/p/exec", false).unwrap();
        assert_eq!(
            (
                a.resource.as_str(),
                a.subresource.as_deref(),
                a.name.as_deref()
            ),
            ("pods", Some("exec"), Some("p"))
        );
        let a = attributes("GET", "/api/v1/namespaces/x", false).unwrap();
        assert_eq!(
            (a.resource.as_str(), a.name.as_deref()),
            ("namespaces", Some("x"))
        );
        let a = attributes("PATCH", "/apis/apps/v1/namespaces/x/deployments/d", false).unwrap();
        assert_eq!((a.verb.as_str(), a.group.as_str()), ("patch", "apps"));
        assert!(attributes("GET", "/api/v1", false).is_none());
    }
}
