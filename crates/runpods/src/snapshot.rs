//! The record of which counter files each snapshot took.
//!
//! `cov-collect --snapshot NAME` writes into `OUT/NAME/<namespace>/<pod>/<container>/`
//! only the counter files no *other* snapshot has taken (plus the meta files
//! they need), so `cov-report OUT/NAME` is one suite's coverage and `cov-report
//! OUT` the union. The record lives next to the output, in
//! `OUT/cov-collect-snapshots.json`:
//!
//! ```json
//! {
//!   "format": "cov-collect snapshot record 1",
//!   "snapshots": ["a", "b"],
//!   "containers": {
//!     "<namespace>/<pod>/<container>": { "covcounters.<hash>.<pid>.<nanos>": "a" }
//!   }
//! }
//! ```
//!
//! `snapshots` is in the order they were first taken; `containers` maps every
//! counter file ever taken to the snapshot that took it. Collecting the same
//! snapshot again is idempotent. Deleting the file starts the bookkeeping over.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// The record's file name inside the output folder.
pub const RECORD_FILE: &str = "cov-collect-snapshots.json";
const FORMAT: &str = "cov-collect snapshot record 1";

/// See the module documentation for the file format.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub format: String,
    pub snapshots: Vec<String>,
    pub containers: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            format: FORMAT.into(),
            snapshots: Vec::new(),
            containers: BTreeMap::new(),
        }
    }
}

/// Check a snapshot name is one plain folder name.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::SnapshotName(name.into()))
    }
}

impl Record {
    pub fn path(out: &Path) -> PathBuf {
        out.join(RECORD_FILE)
    }

    /// Read the record in `out`, or an empty one when there is none yet.
    pub fn load(out: &Path) -> Result<Record, Error> {
        let path = Record::path(out);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot read snapshot record",
                    path,
                    source,
                });
            }
        };
        let record: Record = serde_json::from_str(&text).map_err(|e| Error::Record {
            path: path.clone(),
            message: format!("{e}; fix or delete the file to start the bookkeeping over"),
        })?;
        if record.format != FORMAT {
            return Err(Error::Record {
                path,
                message: format!("unknown format {:?} (expected {FORMAT:?})", record.format),
            });
        }
        Ok(record)
    }

    /// Counter files of `container` that a snapshot other than `snapshot` took.
    pub fn taken_by_others(&self, container: &str, snapshot: &str) -> BTreeSet<String> {
        self.containers
            .get(container)
            .map(|files| {
                files
                    .iter()
                    .filter(|(_, s)| s.as_str() != snapshot)
                    .map(|(f, _)| f.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Note that `snapshot` took `files` from `container`.
    pub fn add<'a>(
        &mut self,
        container: &str,
        snapshot: &str,
        files: impl IntoIterator<Item = &'a String>,
    ) {
        if !self.snapshots.iter().any(|s| s == snapshot) {
            self.snapshots.push(snapshot.to_string());
        }
        let entry = self.containers.entry(container.to_string()).or_default();
        for f in files {
            entry
                .entry(f.clone())
                .or_insert_with(|| snapshot.to_string());
        }
    }

    /// Write the record (temporary name, then rename).
    pub fn save(&self, out: &Path) -> Result<(), Error> {
        let path = Record::path(out);
        let io = |source| Error::Io {
            what: "cannot write snapshot record",
            path: path.clone(),
            source,
        };
        fs::create_dir_all(out).map_err(io)?;
        let temp = out.join(format!(".{RECORD_FILE}.{}.partial", std::process::id()));
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        fs::write(&temp, text + "\n").map_err(io)?;
        fs::rename(&temp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("suite-a").is_ok());
        for bad in ["", "..", ".hidden", "a/b", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trip_and_ownership() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Record::load(dir.path()).expect("empty");
        let files = ["c1".to_string(), "c2".to_string()];
        r.add("ns/p/c", "a", &files);
        r.add("ns/p/c", "b", &["c2".to_string(), "c3".to_string()]);
        r.save(dir.path()).expect("save");
        let r = Record::load(dir.path()).expect("load");
        assert_eq!(r.snapshots, ["a", "b"]);
        assert_eq!(
            r.taken_by_others("ns/p/c", "b"),
            BTreeSet::from(["c1".to_string(), "c2".to_string()])
        );
        assert_eq!(
            r.taken_by_others("ns/p/c", "a"),
            BTreeSet::from(["c3".to_string()])
        );
        assert!(r.taken_by_others("other", "a").is_empty());
    }

    #[test]
    fn corrupt_record_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(RECORD_FILE), "{").expect("write");
        let err = Record::load(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains(RECORD_FILE));
    }
}
