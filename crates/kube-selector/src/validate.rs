//! Syntax rules for label keys and values (apimachinery `validation.IsQualifiedName`
//! and `IsValidLabelValue`).

const NAME_MAX: usize = 63;
const PREFIX_MAX: usize = 253;

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_MAX
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= PREFIX_MAX
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// Check a label key (`[prefix/]name`); the error says what is wrong.
pub(crate) fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err(format!("key {key:?}: prefix part must be non-empty"));
        }
        if !is_dns_subdomain(p) {
            return Err(format!(
                "key {key:?}: prefix part must be a lowercase RFC 1123 subdomain of at most {PREFIX_MAX} characters"
            ));
        }
    }
    if !is_name_part(name) {
        return Err(format!(
            "key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', \
             start and end with an alphanumeric character and be at most {NAME_MAX} characters"
        ));
    }
    Ok(())
}

/// Check a label value (empty, or a name part).
pub(crate) fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "values[0][{value}]: Invalid value: {value:?}: a valid label must be an empty string or \
             consist of alphanumeric characters, '-', '_' or '.', start and end with an \
             alphanumeric character and be at most {NAME_MAX} characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(label_key("app").is_ok());
        assert!(label_key("skaffold.dev/run-id").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("a_b.c-d").is_ok());
        assert!(label_key("/x").is_err());
        assert!(label_key("Upper.Dev/x").is_err());
        assert!(label_key("-x").is_err());
        assert!(label_key("x-").is_err());
        assert!(label_key(&"a".repeat(64)).is_err());
        assert!(label_key(&"a".repeat(63)).is_ok());
        assert!(label_key("a/b/c").is_err());
    }

    #[test]
    fn values() {
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3-x").is_ok());
        assert!(label_value("-v").is_err());
        assert!(label_value("a b").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }
}
