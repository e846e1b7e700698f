//! Parse Kubernetes selector strings the way the API server does.
//!
//! kube-core has [`Selector`] and [`Expression`] (with matching) but no parser
//! from text; this crate supplies one, following the grammar of
//! `k8s.io/apimachinery/pkg/labels` (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`; a comma means "and"), and the field selector
//! grammar of `k8s.io/apimachinery/pkg/fields` for the pod fields that the API
//! server lets clients select on.
//!
//! ```
//! use kube::core::SelectorExt;
//! let sel = kube_selector::parse_label_selector("app=web, tier notin (db)").unwrap();
//! let labels = [("app".to_string(), "web".to_string())].into_iter().collect();
//! assert!(sel.matches(&labels));
//! let fields = kube_selector::parse_field_selector("status.phase=Running").unwrap();
//! assert_eq!(fields.to_string(), "status.phase=Running");
//! ```

mod field;
mod label;
mod validate;

pub use field::{FieldOp, FieldRequirement, FieldSelector, POD_FIELDS};
pub use kube::core::{Expression, Selector, SelectorExt};
pub use label::parse_label_selector;

/// Parse a field selector such as `status.phase=Running,metadata.name!=x`.
///
/// Only the pod fields the API server supports are accepted (see [`POD_FIELDS`]).
pub fn parse_field_selector(s: &str) -> Result<FieldSelector, SelectorError> {
    field::parse(s)
}

/// Why a selector string was rejected. The message follows the API server's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector does not follow the grammar, or a key/value is invalid.
    #[error("unable to parse requirement: {0}")]
    Label(String),
    /// The field selector is malformed.
    #[error("invalid field selector: {0}")]
    Field(String),
    /// The field selector names a field that cannot be selected on for pods.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}
