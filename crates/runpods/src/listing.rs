//! Reading a coverage folder's listing from a container.
//!
//! `ls -ln DIR` is the one listing every image with a shell toolbox prints
//! alike (GNU coreutils and busybox): mode, links, uid, gid, size, date, name.
//! Only regular files matter, and only names made of `[0-9A-Za-z._-]`, as
//! Go's coverage names are ([`is_plain_name`]). A name is the last of exactly
//! 8 or 9 fields (the date is 2 or 3 fields by locale), so a name with spaces
//! is never taken for part of another. GNU `ls` prints a newline in a name as
//! is, which would let the name forge a whole line: ask it for `-q` (`?` for
//! non-printable characters); busybox `ls` has no `-q` and always prints `?`.

use covdata::names::is_counter_file;

/// A regular file in the listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
}

/// Whether `name` is made only of `[0-9A-Za-z._-]` (every Go coverage file
/// name is): such a name prints as itself and cannot span or forge a line.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parse `ls -ln` (GNU: `ls -lnq`) output into its regular files with plain names.
pub fn parse_ls(output: &str) -> Vec<FileEntry> {
    output
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            if !(8..=9).contains(&fields.len()) {
                return None;
            }
            let size = fields[4].parse::<u64>().ok()?;
            let name = fields.last()?;
            is_plain_name(name).then(|| FileEntry {
                name: name.to_string(),
                size,
            })
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
    fn names_that_could_forge_lines_are_dropped() {
        // GNU `ls -lnq` and busybox print a newline as `?`; spaces split fields.
        let out = "-rw-r--r-- 1 0 0 5 Nov 26 12:00 x?-rw-r--r--\n-rw-r--r-- 1 0 0 5 Nov 26 12:00 x covcounters.a.1.1\n-rw-r--r-- 1 0 0 7 2026-11-26 12:00 covmeta.a\n";
        assert_eq!(
            parse_ls(out),
            [FileEntry {
                name: "covmeta.a".into(),
                size: 7
            }]
        );
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
