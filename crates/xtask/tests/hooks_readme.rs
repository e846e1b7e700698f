//! hooks/README.md's flag table matches the tools: every flag each binary's
//! `--help` lists has a row with a mark in that tool's column, and every mark
//! names a flag the tool really has.

use std::collections::BTreeSet;
use std::process::Command;

/// Column of each tool in the table (cells after splitting a row on `|`).
const TOOLS: [(&str, usize); 3] = [("cov-signal", 2), ("cov-collect", 3), ("cov-report", 4)];

/// Long flags in a `--help` text, without `--help`/`--version`.
fn flags_in_help(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            // Option lines start with `-x, --name` or `--name`.
            if !line.starts_with('-') {
                return None;
            }
            let at = line.find("--")?;
            let name: String = line[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (at <= 4 && !name.is_empty()).then_some(name)
        })
        .filter(|f| f != "help" && f != "version")
        .collect()
}

/// The flags the table marks for the tool in column `col`.
fn flags_in_table(readme: &str, col: usize) -> BTreeSet<String> {
    readme
        .lines()
        .filter(|l| l.starts_with("| `-"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            if cells.get(col)?.trim() != "✓" {
                return None;
            }
            let first = cells.get(1)?;
            let at = first.find("--")?;
            let name: String = first[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(name)
        })
        .collect()
}

/// The tool's binary, built once per test run with a plain `cargo build`
/// (without this test's per-crate CARGO_* variables, which would make cargo
/// rebuild dependencies).
fn built(tool: &'static str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet"])
            .current_dir(toolchain::workspace_root());
        for (name, _) in TOOLS {
            cmd.args(["-p", name]);
        }
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let keep = matches!(k.as_ref(), "CARGO_HOME" | "CARGO_TARGET_DIR");
            if !keep && (k.starts_with("CARGO_") || k == "OUT_DIR") {
                cmd.env_remove(&key);
            }
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build of the three tools failed");
    });
    toolchain::workspace_binary(tool).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn flag_table_matches_every_tools_help() {
    let readme_path = toolchain::workspace_root().join("hooks/README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("reading hooks/README.md");
    for (tool, col) in TOOLS {
        let binary = built(tool);
        let out = Command::new(&binary)
            .arg("--help")
            .output()
            .expect("running --help");
        assert!(out.status.success(), "{tool} --help failed");
        let help = flags_in_help(&String::from_utf8_lossy(&out.stdout));
        assert!(
            help.len() >= 3,
            "{tool} --help lists too few flags: {help:?}"
        );
        let table = flags_in_table(&readme, col);
        let missing: Vec<_> = help.difference(&table).collect();
        let stale: Vec<_> = table.difference(&help).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "hooks/README.md flag table, column {tool}: missing {missing:?}, not a flag of the tool {stale:?}"
        );
    }
}
