//! Installing the js side once per test binary (shared by the js interop tests).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What to install when Node.js is missing.
pub(crate) const NEED_NODE: &str =
    "js-libp2p interop needs Node.js >= 20 and npm on PATH (Debian: apt-get install nodejs npm)";

/// The js package directory.
pub(crate) fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `npm ci` once per test binary, unless `node_modules` was installed from
/// this very lock file (a copy of it is kept as the stamp).
pub(crate) fn npm_ready() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(install).clone()
}

fn install() -> Result<(), String> {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("{NEED_NODE}: `node --version`: {e}"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("{NEED_NODE}: found node {version:?}"));
    }
    std::process::Command::new("npm")
        .arg("--version")
        .output()
        .map_err(|e| format!("{NEED_NODE}: `npm --version`: {e}"))?;

    let dir = js_dir();
    let lock = std::fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("reading js/package-lock.json: {e}"))?;
    let stamp = dir.join("node_modules").join(".plexus-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|s| s == lock) {
        return Ok(());
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("{NEED_NODE}: `npm ci`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`npm ci` in {} failed ({}):\n{}",
            dir.display(),
            out.status,
            tail.join("\n")
        ));
    }
    std::fs::write(&stamp, &lock).map_err(|e| format!("writing {}: {e}", stamp.display()))
}
