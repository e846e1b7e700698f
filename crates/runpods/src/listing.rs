//! Reading a coverage folder's listing from a container.
//!
//! `ls -ln DIR` is the one listing every image with a shell toolbox prints
//! alike (GNU coreutils and busybox): mode, links, uid, gid, size, date, name.
//! Only regular files matter; Go's coverage file names never contain spaces.

use covdata::names::is_counter_file;

/// A regular file in the listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
}

/// Parse `ls -ln` output into its regular files.
pub fn parse_ls(output: &str) -> Vec<FileEntry> {
    output
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            if fields.len() < 6 {
                return None;
            }
            let size = fields[4].parse::<u64>().ok()?;
            let name = fields.last()?.to_string();
            Some(FileEntry { name, size })
        })
        .collect()
}

/// Counter files in `files` that are new or have grown compared to `before`.
pub fn new_or_grown<'a>(before: &[FileEntry], after: &'a [FileEntry]) -> Vec<&'a FileEntry> {
    after
        .iter()
        .filter(|f| is_counter_file(&f.name))
        .filter(|f| match before.iter().find(|b| b.name == f.name) {
            Some(b) => f.size > b.size,
            None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_and_busybox_listings() {
        let gnu = "total 8\n-rw-r--r-- 1 0 0 1234 Nov 26 12:00 covmeta.abc\n-rw-r--r-- 1 0 0 56 Nov 26 12:00 covcounters.abc.7.1700\ndrwxr-xr-x 2 0 0 4096 Nov 26 12:00 sub\n";
        let busybox = "-rw-r--r--    1 0        0             1234 Nov 26 12:00 covmeta.abc\n";
        let files = parse_ls(gnu);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[1],
            FileEntry {
                name: "covcounters.abc.7.1700".into(),
                size: 56
            }
        );
        assert_eq!(parse_ls(busybox)[0].size, 1234);
    }

    #[test]
    fn growth() {
        let before = vec![FileEntry {
            name: "covcounters.a.1.1".into(),
            size: 10,
        }];
        let after = vec![
            FileEntry {
                name: "covcounters.a.1.1".into(),
                size: 10,
            },
            FileEntry {
                name: "covcounters.a.1.2".into(),
                size: 5,
            },
            FileEntry {
                name: "covmeta.a".into(),
                size: 5,
            },
        ];
        let grown = new_or_grown(&before, &after);
        assert_eq!(grown.len(), 1);
        assert_eq!(grown[0].name, "covcounters.a.1.2");
    }
}
