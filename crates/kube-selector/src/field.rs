//! Field selectors (`k8s.io/apimachinery/pkg/fields`) over the pod fields the
//! API server accepts, evaluated against k8s-openapi [`Pod`]s.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use crate::SelectorError;

/// The pod fields the API server lets clients select on.
pub const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

/// `=`/`==` (equal) or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    Equal,
    NotEqual,
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

/// A parsed field selector: every requirement must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Whether the pod satisfies every requirement.
    pub fn matches(&self, pod: &Pod) -> bool {
        self.requirements.iter().all(|r| {
            let actual = pod_field(pod, &r.field);
            let equal = match r.field.as_str() {
                // A pod matches a podIPs term if any of its addresses does.
                "status.podIPs" => actual.split(',').any(|ip| ip == r.value),
                _ => actual == r.value,
            };
            match r.op {
                FieldOp::Equal => equal,
                FieldOp::NotEqual => !equal,
            }
        })
    }

    /// True when there are no requirements.
    pub fn selects_all(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.op {
                FieldOp::Equal => "=",
                FieldOp::NotEqual => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape(&r.value))?;
        }
        Ok(())
    }
}

/// The value of a selectable field, as the API server renders it for matching.
fn pod_field(pod: &Pod, field: &str) -> String {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    match field {
        "metadata.name" => s(pod.metadata.name.as_ref()),
        "metadata.namespace" => s(pod.metadata.namespace.as_ref()),
        "spec.nodeName" => s(spec.and_then(|x| x.node_name.as_ref())),
        "spec.restartPolicy" => s(spec.and_then(|x| x.restart_policy.as_ref())),
        "spec.schedulerName" => s(spec.and_then(|x| x.scheduler_name.as_ref())),
        "spec.serviceAccountName" => s(spec.and_then(|x| x.service_account_name.as_ref())),
        "spec.hostNetwork" => spec
            .and_then(|x| x.host_network)
            .unwrap_or(false)
            .to_string(),
        "status.phase" => s(status.and_then(|x| x.phase.as_ref())),
        "status.podIP" => s(status.and_then(|x| x.pod_ip.as_ref())),
        "status.podIPs" => status
            .and_then(|x| x.pod_ips.as_ref())
            .map(|ips| {
                ips.iter()
                    .map(|ip| ip.ip.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        "status.nominatedNodeName" => s(status.and_then(|x| x.nominated_node_name.as_ref())),
        _ => String::new(),
    }
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Split on commas that are not escaped with a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Find the first unescaped operator; `!=` and `==` win over `=` at the same place.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        for (sym, op) in [
            ("!=", FieldOp::NotEqual),
            ("==", FieldOp::Equal),
            ("=", FieldOp::Equal),
        ] {
            if rest.starts_with(sym) {
                return Some((&term[..i], op, &term[i + sym.len()..]));
            }
        }
    }
    None
}

fn unescape(v: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == ',' || c == '=' {
                return Err(SelectorError::Field(format!(
                    "invalid value {v:?}: '{c}' must be escaped with a backslash"
                )));
            }
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=')) => out.push(e),
            Some(e) => {
                return Err(SelectorError::Field(format!(
                    "invalid escape sequence \\{e} in value {v:?}"
                )));
            }
            None => {
                return Err(SelectorError::Field(format!(
                    "unterminated escape sequence at the end of value {v:?}"
                )));
            }
        }
    }
    Ok(out)
}

pub(crate) fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
    let mut requirements = Vec::new();
    if s.trim().is_empty() {
        return Ok(FieldSelector { requirements });
    }
    for term in split_terms(s) {
        if term.is_empty() {
            continue;
        }
        let Some((field, op, value)) = split_term(term) else {
            return Err(SelectorError::Field(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            )));
        };
        let field = field.trim();
        if !POD_FIELDS.contains(&field) {
            return Err(SelectorError::UnsupportedField(field.to_string()));
        }
        requirements.push(FieldRequirement {
            field: field.to_string(),
            op,
            value: unescape(value)?,
        });
    }
    Ok(FieldSelector { requirements })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::parse_field_selector;

    fn pod(name: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("localkube".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn parses_operators() {
        let f =
            parse_field_selector("status.phase=Running,metadata.name!=a,spec.nodeName==n").unwrap();
        assert_eq!(
            f.requirements,
            [
                FieldRequirement {
                    field: "status.phase".into(),
                    op: FieldOp::Equal,
                    value: "Running".into()
                },
                FieldRequirement {
                    field: "metadata.name".into(),
                    op: FieldOp::NotEqual,
                    value: "a".into()
                },
                FieldRequirement {
                    field: "spec.nodeName".into(),
                    op: FieldOp::Equal,
                    value: "n".into()
                },
            ]
        );
        assert_eq!(
            f.to_string(),
            "status.phase=Running,metadata.name!=a,spec.nodeName=n"
        );
    }

    #[test]
    fn matches_pods() {
        let running = pod("a", "Running");
        let pending = pod("b", "Pending");
        let f = parse_field_selector("status.phase=Running").unwrap();
        assert!(f.matches(&running) && !f.matches(&pending));
        let f = parse_field_selector("status.phase!=Running").unwrap();
        assert!(!f.matches(&running) && f.matches(&pending));
        let f = parse_field_selector("metadata.name=b,metadata.namespace=default").unwrap();
        assert!(!f.matches(&running) && f.matches(&pending));
        assert!(parse_field_selector("").unwrap().matches(&running));
    }

    #[test]
    fn escapes() {
        let f = parse_field_selector(r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(f.requirements[0].value, r"a,b=c\d");
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d");
        assert!(parse_field_selector(r"metadata.name=a\x").is_err());
        assert!(parse_field_selector(r"metadata.name=a\").is_err());
        assert!(parse_field_selector("metadata.name=a=b").is_err());
    }

    #[test]
    fn rejects_unknown_fields_and_garbage() {
        assert_eq!(
            parse_field_selector("status.foo=x").unwrap_err(),
            SelectorError::UnsupportedField("status.foo".into())
        );
        assert_eq!(
            parse_field_selector("status.foo=x")
                .unwrap_err()
                .to_string(),
            "field label not supported: status.foo"
        );
        assert!(matches!(
            parse_field_selector("status.phase"),
            Err(SelectorError::Field(_))
        ));
    }
}
