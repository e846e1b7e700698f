//! Extraction against crafted archives, including hostile ones.

use super::*;

/// A tar member built from raw parts, so hostile names survive (tar::Builder's
/// path setters refuse them).
struct Member<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    data: &'a [u8],
    link: &'a [u8],
    declared_size: Option<u64>,
}

fn member<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name: name.as_bytes(),
        kind: tar::EntryType::Regular,
        data,
        link: b"",
        declared_size: None,
    }
}

fn archive(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut h = tar::Header::new_gnu();
        {
            let bytes = h.as_mut_bytes();
            bytes[..m.name.len()].copy_from_slice(m.name);
            bytes[157..157 + m.link.len()].copy_from_slice(m.link);
        }
        h.set_entry_type(m.kind);
        h.set_mode(0o644);
        h.set_size(m.declared_size.unwrap_or(m.data.len() as u64));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(m.data);
        let pad = (512 - m.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("readable") {
            let e = e.expect("entry");
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string(),
            );
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

const META: &[u8] = b"\x00cvm meta bytes";
const COUNTERS: &[u8] = b"\x00cwm counter bytes";

#[test]
fn writes_coverage_files_and_second_run_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dest = root.path().join("out");
    let tar = gzip(&archive(&[
        Member {
            kind: tar::EntryType::Directory,
            ..member("./", b"")
        },
        member("./covmeta.abc", META),
        member("./covcounters.abc.12.34", COUNTERS),
    ]));
    let first = extract(&tar[..], &dest, &ExtractOptions::default());
    assert_eq!(first.error, None);
    assert!(first.gzip);
    assert_eq!(first.written, ["covmeta.abc", "covcounters.abc.12.34"]);
    assert_eq!(first.bytes_written, (META.len() + COUNTERS.len()) as u64);
    assert_eq!(first.bytes_received, tar.len() as u64);
    assert_eq!(fs::read(dest.join("covmeta.abc")).expect("meta"), META);
    let mtime = fs::metadata(dest.join("covmeta.abc"))
        .and_then(|m| m.modified())
        .expect("mtime");

    let second = extract(&tar[..], &dest, &ExtractOptions::default());
    assert_eq!(second.error, None);
    assert!(second.written.is_empty());
    assert_eq!(second.unchanged.len(), 2);
    assert_eq!(second.bytes_written, 0);
    let mtime2 = fs::metadata(dest.join("covmeta.abc"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(mtime, mtime2);
    assert_eq!(
        tree(root.path()),
        ["out", "out/covcounters.abc.12.34", "out/covmeta.abc"]
    );
}

#[test]
fn changed_content_is_replaced() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::write(root.path().join("covmeta.abc"), b"old").expect("write");
    let r = extract(
        &archive(&[member("covmeta.abc", META)])[..],
        root.path(),
        &ExtractOptions::default(),
    );
    assert!(!r.gzip);
    assert_eq!(r.written, ["covmeta.abc"]);
    assert_eq!(
        fs::read(root.path().join("covmeta.abc")).expect("meta"),
        META
    );
}

#[test]
fn hostile_members_are_refused_and_nothing_escapes() {
    let root = tempfile::tempdir().expect("tempdir");
    let dest = root.path().join("out");
    let outside = root.path().join("victim");
    fs::write(&outside, b"untouched").expect("victim");
    let victim_path = outside.display().to_string();
    let tar = archive(&[
        member("../covmeta.escape", META),
        member("./../../covcounters.a.1.1", COUNTERS),
        member(&victim_path, b"overwritten"),
        member("sub/covmeta.nested", META),
        Member {
            kind: tar::EntryType::Symlink,
            link: victim_path.as_bytes(),
            ..member("covmeta.link", b"")
        },
        // The classic write-through: a regular file of the symlink's name.
        member("covmeta.link", b"written through?"),
        Member {
            kind: tar::EntryType::Link,
            link: victim_path.as_bytes(),
            ..member("covcounters.hard.1.1", b"")
        },
        Member {
            kind: tar::EntryType::Char,
            ..member("covmeta.dev", b"")
        },
        Member {
            kind: tar::EntryType::Fifo,
            ..member("covmeta.fifo", b"")
        },
        Member {
            kind: tar::EntryType::Directory,
            ..member("./subdir/", b"")
        },
        member("./etc-passwd", b"root:x:0:0"),
        member("./covmeta.bad name", META),
        member("./tmp.covcounters.a.1.1", COUNTERS),
        member("./covcounters.ok.1.1", COUNTERS),
    ]);
    let r = extract(&tar[..], &dest, &ExtractOptions::default());
    assert_eq!(r.error, None);
    assert_eq!(fs::read(&outside).expect("victim"), b"untouched");
    let refused: Vec<(&str, &str)> = r
        .refused
        .iter()
        .map(|x| (x.name.as_str(), x.reason.as_str()))
        .collect();
    let expect = |name: &str, reason: &str| {
        assert!(
            refused
                .iter()
                .any(|(n, why)| *n == name && why.contains(reason)),
            "{name} should be refused for {reason}: {refused:?}"
        );
    };
    expect("../covmeta.escape", "..");
    expect("./../../covcounters.a.1.1", "..");
    expect(&victim_path, "absolute");
    expect("sub/covmeta.nested", "top level");
    expect("covmeta.link", "symbolic link");
    expect("covcounters.hard.1.1", "hard link");
    expect("covmeta.dev", "device");
    expect("covmeta.fifo", "FIFO");
    expect("./subdir/", "directory");
    expect("./etc-passwd", "not a Go coverage file");
    expect("./covmeta.bad name", "unexpected characters");
    assert_eq!(r.in_progress, ["tmp.covcounters.a.1.1"]);
    // The regular covmeta.link is an ordinary file in dest; the symlink never existed.
    assert!(
        fs::symlink_metadata(dest.join("covmeta.link"))
            .expect("written")
            .is_file()
    );
    assert_eq!(
        tree(root.path()),
        [
            "out",
            "out/covcounters.ok.1.1",
            "out/covmeta.link",
            "victim"
        ]
    );
    assert_eq!(r.counters_without_meta, ["covcounters.ok.1.1"]);
}

#[test]
fn existing_symlink_in_dest_is_replaced_not_followed() {
    let root = tempfile::tempdir().expect("tempdir");
    let dest = root.path().join("out");
    fs::create_dir(&dest).expect("dest");
    let victim = root.path().join("victim");
    fs::write(&victim, b"untouched").expect("victim");
    std::os::unix::fs::symlink(&victim, dest.join("covmeta.abc")).expect("symlink");
    let r = extract(
        &archive(&[member("covmeta.abc", META)])[..],
        &dest,
        &ExtractOptions::default(),
    );
    assert_eq!(r.written, ["covmeta.abc"]);
    assert_eq!(fs::read(&victim).expect("victim"), b"untouched");
    assert!(
        fs::symlink_metadata(dest.join("covmeta.abc"))
            .expect("file")
            .is_file()
    );
}

#[test]
fn huge_declared_size_is_refused_before_writing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dest = root.path().join("out");
    // 10 GB declared; the data never needs to exist because nothing reads it.
    let mut tar = archive(&[member("covmeta.abc", META)]);
    tar.truncate(tar.len() - 1024);
    tar.extend(archive(&[Member {
        declared_size: Some(10 << 30),
        ..member("covcounters.abc.1.1", b"")
    }]));
    let r = extract(&gzip(&tar)[..], &dest, &ExtractOptions::default());
    assert!(r.cap_exceeded, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("--max-bytes"))
    );
    assert!(r.refused.iter().any(|x| x.name == "covcounters.abc.1.1"));
    assert_eq!(tree(&dest), ["covmeta.abc"]);
}

#[test]
fn decompressed_bytes_count_against_the_cap() {
    let root = tempfile::tempdir().expect("tempdir");
    let zeros = vec![0u8; 64 * 1024];
    let names: Vec<String> = (0..40).map(|i| format!("covcounters.abc.1.{i}")).collect();
    let members: Vec<Member> = names.iter().map(|n| member(n, &zeros)).collect();
    let bomb = gzip(&archive(&members));
    assert!(bomb.len() < 100 * 1024, "compresses well: {}", bomb.len());
    let options = ExtractOptions {
        max_bytes: 1 << 20,
        ..Default::default()
    };
    let r = extract(&bomb[..], root.path(), &options);
    assert!(r.cap_exceeded);
    assert!(r.bytes_decompressed <= (1 << 20) + 64 * 1024);
    assert!(r.written.len() < 16, "stopped early: {}", r.written.len());
    let leftovers: Vec<String> = tree(root.path())
        .into_iter()
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[test]
fn truncated_stream_keeps_what_arrived() {
    let root = tempfile::tempdir().expect("tempdir");
    let big = vec![7u8; 4096];
    let tar = archive(&[
        member("covmeta.abc", META),
        member("covcounters.abc.1.1", &big),
    ]);
    let cut = &tar[..512 + 512 + 512 + 1000];
    let r = extract(cut, root.path(), &ExtractOptions::default());
    assert!(r.error.is_some());
    assert!(!r.cap_exceeded);
    assert_eq!(r.written, ["covmeta.abc"]);
    assert_eq!(tree(root.path()), ["covmeta.abc"]);
}

#[test]
fn empty_stream_is_an_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = extract(&b""[..], root.path(), &ExtractOptions::default());
    assert!(r.error.as_deref().is_some_and(|e| e.contains("empty")));
}

#[test]
fn snapshot_leaves_out_taken_counters_and_unneeded_meta() {
    let root = tempfile::tempdir().expect("tempdir");
    let tar = archive(&[
        member("covmeta.aaa", META),
        member("covmeta.bbb", META),
        member("covcounters.aaa.1.1", COUNTERS),
        member("covcounters.aaa.1.2", COUNTERS),
        member("covcounters.bbb.1.1", COUNTERS),
    ]);
    let options = ExtractOptions {
        taken: [
            "covcounters.aaa.1.1".to_string(),
            "covcounters.bbb.1.1".to_string(),
        ]
        .into(),
        only_needed_meta: true,
        ..Default::default()
    };
    let r = extract(&tar[..], root.path(), &options);
    assert_eq!(r.error, None);
    assert_eq!(
        r.taken_earlier,
        ["covcounters.aaa.1.1", "covcounters.bbb.1.1"]
    );
    assert_eq!(tree(root.path()), ["covcounters.aaa.1.2", "covmeta.aaa"]);
}
