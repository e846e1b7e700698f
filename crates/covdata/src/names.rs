//! What a coverage file's base name says, checked loosely by prefix: the
//! checks the Kubernetes-side tools apply to names seen in a container's
//! listing or archive (which files to take, which meta file a counter file
//! needs). [`crate::scan`] applies Go's exact rules when reading.

/// Whether a name is a Go counter data file (`covcounters.…`).
pub fn is_counter_file(name: &str) -> bool {
    name.starts_with("covcounters.")
}

/// Whether a name is a Go meta-data file (`covmeta.…`).
pub fn is_meta_file(name: &str) -> bool {
    name.starts_with("covmeta.")
}

/// The meta-data hash a counter file refers to (`covcounters.<hash>.<pid>.<nanos>`).
pub fn counter_meta_hash(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("covcounters.")?;
    let mut parts = rest.rsplitn(3, '.');
    let nanos = parts.next()?;
    let pid = parts.next()?;
    let hash = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(nanos) && digits(pid) && !hash.is_empty()).then_some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_hash() {
        assert_eq!(counter_meta_hash("covcounters.0a1b.12.345"), Some("0a1b"));
        assert_eq!(counter_meta_hash("covcounters.x.y.12.345"), Some("x.y"));
        assert_eq!(counter_meta_hash("covcounters.0a1b.12"), None);
        assert_eq!(counter_meta_hash("covmeta.0a1b"), None);
    }

    #[test]
    fn kinds() {
        assert!(is_meta_file("covmeta.ab"));
        assert!(is_counter_file("covcounters.ab.1.2"));
        assert!(!is_counter_file("tmp.covcounters.ab.1.2"));
    }
}
