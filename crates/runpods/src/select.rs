//! Which pods: the run's label (`skaffold.dev/run-id`), an optional label
//! selector, and the namespaces to search.
//!
//! With neither a run id nor a selector, the run id is detected: if every pod
//! carrying the label shares one id it is used (and reported); several ids are
//! a usage error that lists them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::core::{Expression, Selector};

use crate::Error;
use crate::cluster::Cluster;
use crate::retry::{RetryPolicy, is_transient, with_retries};

/// The label Skaffold puts on every resource it deploys.
pub const RUN_ID_LABEL: &str = "skaffold.dev/run-id";

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct PodQuery {
    pub run_id: Option<String>,
    /// Label selector text (`k=v,k2 in (a,b),!k3`); added to the run id when both are given.
    pub selector: Option<String>,
    /// Empty means all namespaces.
    pub namespaces: Vec<String>,
    pub retry: RetryPolicy,
}

/// The pods found and a description of the search, for messages.
#[derive(Debug, Clone)]
pub struct Selection {
    pub pods: Vec<Pod>,
    /// The selector actually used, as text.
    pub selector: String,
    /// `namespaces a, b` or `all namespaces`.
    pub scope: String,
    /// Set when the run id was detected rather than given.
    pub detected_run_id: Option<String>,
}

impl Selection {
    /// "context X, all namespaces, selector Y": what a "nothing matched" message names.
    pub fn searched(&self, cluster: &Cluster) -> String {
        format!(
            "context {:?}, {}, selector {:?}",
            cluster.context, self.scope, self.selector
        )
    }
}

fn scope(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "all namespaces".to_string()
    } else if namespaces.len() == 1 {
        format!("namespace {}", namespaces[0])
    } else {
        format!("namespaces {}", namespaces.join(", "))
    }
}

/// Build the selector from the run id and `--selector`.
pub fn build_selector(run_id: Option<&str>, selector: Option<&str>) -> Result<Selector, Error> {
    let mut sel = match selector {
        Some(text) => kube_selector::parse_label_selector(text).map_err(|e| Error::Selector {
            selector: text.to_string(),
            message: e.to_string(),
        })?,
        None => Selector::default(),
    };
    if let Some(id) = run_id {
        sel.extend([Expression::Equal(RUN_ID_LABEL.to_string(), id.to_string())]);
    }
    Ok(sel)
}

/// List pods matching `selector` in every namespace of the query (or all).
pub async fn list_pods(
    cluster: &Cluster,
    namespaces: &[String],
    selector: &Selector,
    retry: RetryPolicy,
) -> Result<Vec<Pod>, Error> {
    let params = ListParams::default().labels_from(selector);
    let apis: Vec<(String, Option<&str>, Api<Pod>)> = if namespaces.is_empty() {
        vec![(
            "all namespaces".into(),
            None,
            Api::all(cluster.client.clone()),
        )]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    format!("namespace {ns}"),
                    Some(ns.as_str()),
                    Api::namespaced(cluster.client.clone(), ns),
                )
            })
            .collect()
    };
    let mut pods = Vec::new();
    for (scope, ns, api) in apis {
        let what = format!("list pods in {scope}");
        // The whole call, retries included, within the user's deadline.
        let attempt = with_retries(retry, &what, is_transient, || api.list(&params));
        let (res, _) = tokio::time::timeout(cluster.timeout, attempt)
            .await
            .map_err(|_| cluster.stalled(&what))?;
        let list = res.map_err(|source| match &source {
            kube::Error::Api(s) if s.code == 403 => cluster.denied("list", "pods", ns, &s.message),
            _ => Error::List {
                scope,
                context: cluster.context.clone(),
                source,
            },
        })?;
        pods.extend(list.items);
    }
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    pods.dedup_by(|a, b| {
        a.metadata.namespace == b.metadata.namespace && a.metadata.name == b.metadata.name
    });
    Ok(pods)
}

/// Find the run's pods (detecting the run id when neither it nor a selector is given).
pub async fn select_pods(cluster: &Cluster, query: &PodQuery) -> Result<Selection, Error> {
    let query = &within_reach(cluster, query).await?;
    let scope = scope(&query.namespaces);
    let mut detected = None;
    let run_id = match (&query.run_id, &query.selector) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(_)) => None,
        (None, None) => {
            let labelled = Selector::from(Expression::Exists(RUN_ID_LABEL.to_string()));
            let pods = list_pods(cluster, &query.namespaces, &labelled, query.retry).await?;
            let id = detect_run_id(&pods).map_err(|ids| {
                if ids.is_empty() {
                    Error::NoRun {
                        scope: scope.clone(),
                        context: cluster.context.clone(),
                    }
                } else {
                    Error::SeveralRuns {
                        scope: scope.clone(),
                        ids,
                    }
                }
            })?;
            detected = Some(id.clone());
            Some(id)
        }
    };
    let selector = build_selector(run_id.as_deref(), query.selector.as_deref())?;
    let pods = list_pods(cluster, &query.namespaces, &selector, query.retry).await?;
    tracing::info!("{} pod(s) match {selector} in {scope}", pods.len());
    Ok(Selection {
        pods,
        selector: selector.to_string(),
        scope,
        detected_run_id: detected,
    })
}

/// With no namespace asked for, all namespaces are searched; when the user may
/// not list pods cluster-wide (a namespaced `Role`, typical of a CI service
/// account), the search falls back to the namespace kubectl would use: the
/// context's, or the pod's own in-cluster.
async fn within_reach(cluster: &Cluster, query: &PodQuery) -> Result<PodQuery, Error> {
    if !query.namespaces.is_empty() {
        return Ok(query.clone());
    }
    let probe = ListParams::default().limit(1);
    let api: Api<Pod> = Api::all(cluster.client.clone());
    let what = "list pods in all namespaces";
    let (res, _) = tokio::time::timeout(
        cluster.timeout,
        with_retries(query.retry, what, is_transient, || api.list(&probe)),
    )
    .await
    .map_err(|_| cluster.stalled(what))?;
    match res {
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let ns = cluster.default_namespace.clone();
            tracing::warn!(
                "may not list pods in all namespaces ({}); searching namespace {ns}, the default namespace of context {:?}",
                crate::cluster::one_line(&s.message),
                cluster.context
            );
            Ok(PodQuery {
                namespaces: vec![ns],
                ..query.clone()
            })
        }
        _ => Ok(query.clone()),
    }
}

/// The one run id the pods share, or every id found (empty when none).
pub fn detect_run_id(pods: &[Pod]) -> Result<String, Vec<String>> {
    let ids: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(RUN_ID_LABEL).cloned())
        .collect();
    if ids.len() == 1 {
        Ok(ids.into_iter().next().unwrap_or_default())
    } else {
        Err(ids.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

    fn pod(run: Option<&str>) -> Pod {
        let mut p = Pod::default();
        if let Some(r) = run {
            p.metadata.labels = Some(BTreeMap::from([(RUN_ID_LABEL.to_string(), r.to_string())]));
        }
        p
    }

    #[test]
    fn one_run_is_detected() {
        assert_eq!(
            detect_run_id(&[pod(Some("a")), pod(Some("a")), pod(None)]),
            Ok("a".to_string())
        );
    }

    #[test]
    fn several_runs_are_listed() {
        assert_eq!(
            detect_run_id(&[pod(Some("b")), pod(Some("a"))]),
            Err(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(detect_run_id(&[pod(None)]), Err(vec![]));
    }

    #[test]
    fn selector_adds_to_run_id() {
        let sel = build_selector(Some("abc"), Some("app=web")).expect("valid");
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(sel.matches(&labels(&[(RUN_ID_LABEL, "abc"), ("app", "web")])));
        assert!(!sel.matches(&labels(&[(RUN_ID_LABEL, "other"), ("app", "web")])));
        assert!(!sel.matches(&labels(&[(RUN_ID_LABEL, "abc")])));
    }

    #[test]
    fn bad_selector_is_a_usage_error() {
        let err = build_selector(None, Some("a in (")).expect_err("invalid");
        assert!(err.is_usage());
        assert!(err.to_string().contains("--selector"));
    }
}
