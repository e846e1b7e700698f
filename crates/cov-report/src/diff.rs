//! `cov-report diff BASE_DIR NEW_DIR`: the packages and functions whose
//! statement coverage differs between two runs, and the totals.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use covdata::ModeClash;
use covdata::model::{Profile, Statements};

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Coverage data of the base run (searched recursively).
    #[arg(value_name = "BASE_DIR")]
    pub base: PathBuf,
    /// Coverage data of the new run.
    #[arg(value_name = "NEW_DIR")]
    pub new: PathBuf,
    /// Only packages whose import path matches (as --pkg elsewhere).
    #[arg(long = "pkg", value_name = "PATTERNS")]
    pub pkg: Vec<String>,
    /// `text` (aligned tables) or `json` (for machines).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

fn load(dir: &Path, pkg: &[String]) -> Result<Profile> {
    let inputs = Inputs {
        dirs: vec![dir.to_path_buf()],
        input: Vec::new(),
        pkg: pkg.to_vec(),
    };
    Ok(inputs.load(ModeClash::Upgrade)?.profile.into_profile()?)
}

type Table = BTreeMap<String, Statements>;

fn add(t: &mut Table, key: String, s: Statements) {
    let e = t.entry(key).or_default();
    e.covered += s.covered;
    e.total += s.total;
}

/// Per package, and per function keyed `file:line name` (line of the
/// function's first block; literals carry their position in their name).
fn tables(p: &Profile) -> (Table, Table) {
    let mut pkgs = Table::new();
    let mut funcs = Table::new();
    for pkg in &p.packages {
        add(&mut pkgs, pkg.path.clone(), pkg.statements());
        for f in &pkg.functions {
            add(
                &mut funcs,
                format!("{}\t{}", f.file, f.name),
                f.statements(),
            );
        }
    }
    (pkgs, funcs)
}

fn cell(s: Option<&Statements>) -> String {
    match s {
        Some(s) => format!("{:.1}%", s.percent()),
        None => "-".into(),
    }
}

fn change(a: Option<&Statements>, b: Option<&Statements>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.1}", b.percent() - a.percent()),
        (None, Some(_)) => "added".into(),
        (Some(_), None) => "removed".into(),
        (None, None) => String::new(),
    }
}

/// Rows of keys whose (covered, total) differ.
fn changed(a: &Table, b: &Table) -> Vec<[String; 4]> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let (x, y) = (a.get(k), b.get(k));
            // Names come from pods.
            let name = hostile_text::escape(&k.replace('\t', " ")).into_owned();
            [name, cell(x), cell(y), change(x, y)]
        })
        .collect()
}

pub fn run(args: &Args) -> Result<()> {
    let base = load(&args.base, &args.pkg)?;
    let new = load(&args.new, &args.pkg)?;
    let (bp, bf) = tables(&base);
    let (np, nf) = tables(&new);
    let (bt, nt) = (base.statements(), new.statements());
    if args.output == "json" {
        let doc = serde_json::json!({
            "base": { "covered": bt.covered, "total": bt.total, "percent": bt.percent() },
            "new": { "covered": nt.covered, "total": nt.total, "percent": nt.percent() },
            "packages": json_rows(&bp, &np),
            "functions": json_rows(&bf, &nf),
        });
        return crate::output::stdout(|w| {
            // Names come from pods: their control characters escaped too.
            hostile_text::to_json_pretty(&mut *w, &doc)?;
            writeln!(w)
        });
    }
    crate::output::stdout(|w| {
        let pkgs = changed(&bp, &np);
        let funcs = changed(&bf, &nf);
        write_table(w, "package", &pkgs)?;
        writeln!(w)?;
        write_table(w, "function", &funcs)?;
        writeln!(w)?;
        writeln!(
            w,
            "total: {} -> {} ({}), {} packages and {} functions changed",
            cell(Some(&bt)),
            cell(Some(&nt)),
            change(Some(&bt), Some(&nt)),
            pkgs.len(),
            funcs.len()
        )
    })
}

/// Changed keys as JSON objects: name, then base/new `{covered, total,
/// percent}` or null where the key is absent on that side.
fn json_rows(a: &Table, b: &Table) -> Vec<serde_json::Value> {
    let side = |s: Option<&Statements>| {
        s.map(|s| serde_json::json!({ "covered": s.covered, "total": s.total, "percent": s.percent() }))
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let name = k.replace('\t', " ");
            serde_json::json!({ "name": name, "base": side(a.get(k)), "new": side(b.get(k)) })
        })
        .collect()
}

fn write_table(w: &mut dyn Write, what: &str, rows: &[[String; 4]]) -> std::io::Result<()> {
    let header = [
        what.to_string(),
        "base".into(),
        "new".into(),
        "change".into(),
    ];
    let mut width = [0usize; 4];
    for r in std::iter::once(&header).chain(rows) {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows) {
        writeln!(
            w,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        )?;
    }
    if rows.is_empty() {
        writeln!(w, "(no {what} changed)")?;
    }
    Ok(())
}
