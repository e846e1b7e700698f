//! Explaining "signalled, no counters written".
//!
//! The likely causes are always the same few; when the container's meta-data
//! file is readable, its header says which counter mode the binary was built
//! with, which settles the most common one: `runtime/coverage.WriteCountersDir`
//! and `ClearCounters` return an error unless the mode is `atomic`.

/// Bytes of a meta-data file's header we need (the counter mode is at offset 48).
pub const META_HEADER_LEN: usize = 56;
const META_MAGIC: [u8; 4] = [0x00, 0x63, 0x76, 0x6d];

/// The counter mode in a meta-data file header (`set`, `count`, `atomic`, …).
pub fn counter_mode(header: &[u8]) -> Option<&'static str> {
    if header.len() < 50 || header[..4] != META_MAGIC {
        return None;
    }
    // Layout: magic, u32 version, u64 length, u64 package count, 16-byte hash,
    // u32 string table offset, u32 string table length, then the mode byte.
    match header[48] {
        1 => Some("set"),
        2 => Some("count"),
        3 => Some("atomic"),
        4 => Some("regonly"),
        5 => Some("testmain"),
        _ => None,
    }
}

/// The message for a container where the signal produced no counter file;
/// `shared_pid` when the pod sets `shareProcessNamespace: true`.
pub fn no_counters(
    pid: &str,
    signal: &str,
    meta_files: usize,
    mode: Option<&str>,
    shared_pid: bool,
) -> String {
    let mut causes = Vec::new();
    if shared_pid && pid == "1" {
        causes.push(
            "the pod sets shareProcessNamespace: true, so PID 1 is the pause process: leave out --pid and the service is found".to_string(),
        );
    }
    match mode {
        Some(m) if m != "atomic" => causes.push(format!(
            "the binary was built with -covermode={m}: WriteCountersDir and ClearCounters fail in every mode but atomic; rebuild with -cover -covermode=atomic"
        )),
        _ => {}
    }
    if meta_files == 0 {
        causes.push(
            "there is no covmeta.* file in GOCOVERDIR: the binary was not built with -cover, or writes elsewhere".into(),
        );
    }
    causes.push(format!(
        "no SIG{signal} handler calling runtime/coverage.WriteCountersDir (PID 1 ignores signals it has no handler for)"
    ));
    causes.push(format!("PID {pid} is not the Go service (pass --pid)"));
    if mode.is_none() && meta_files > 0 {
        causes.push("the binary was not built with -covermode=atomic".into());
    }
    if mode == Some("atomic") {
        causes.push("the handler failed to write (is GOCOVERDIR writable?)".into());
    }
    format!(
        "signalled, no counters written; likely causes: {}",
        causes.join("; ")
    )
}

/// The message when `kill` is not in the image.
pub fn kill_missing() -> String {
    "`kill` is not in the container image: use --via auto (or helper) so a helper container sends the signal, or a base image that carries it (busybox, alpine, debian or ubuntu, or a distroless :debug variant, which includes busybox)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(mode: u8) -> Vec<u8> {
        let mut h = vec![0u8; META_HEADER_LEN];
        h[..4].copy_from_slice(&META_MAGIC);
        h[48] = mode;
        h
    }

    #[test]
    fn modes() {
        assert_eq!(counter_mode(&header(1)), Some("set"));
        assert_eq!(counter_mode(&header(3)), Some("atomic"));
        assert_eq!(counter_mode(&header(9)), None);
        assert_eq!(counter_mode(b"short"), None);
    }

    #[test]
    fn set_mode_is_named_first() {
        let m = no_counters("1", "USR1", 1, Some("set"), false);
        assert!(m.starts_with("signalled, no counters written; likely causes: the binary was built with -covermode=set"));
    }

    #[test]
    fn busybox_and_distroless_are_named() {
        let m = kill_missing();
        assert!(m.contains("busybox") && m.contains("distroless :debug"));
    }
}
