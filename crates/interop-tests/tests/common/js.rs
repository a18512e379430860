//! Installing the js side once per test binary (shared by the js interop tests).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

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

/// One line of a js script's stdout: the event, then tab-separated `key=value` fields.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) event: String,
    pub(crate) fields: Vec<(String, String)>,
}

impl Line {
    pub(crate) fn parse(s: &str) -> Line {
        let mut parts = s.split('\t');
        let event = parts.next().unwrap_or_default().to_owned();
        let fields = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        Line { event, fields }
    }

    pub(crate) fn get(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }
}

/// A running `node <script> <args>` in the js directory: commands go to its stdin, its stdout
/// lines arrive parsed, the last 16 KiB of its stderr are kept for failure messages.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) lines: mpsc::Receiver<Line>,
    pub(crate) stderr: Arc<Mutex<String>>,
}

pub(crate) fn spawn_node(script: &str, args: &[String], capacity: usize) -> Node {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(js_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{NEED_NODE}: spawning node: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel(capacity.max(1));
    tokio::spawn(async move {
        let mut r = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = r.next_line().await {
            if tx.send(Line::parse(&l)).await.is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let keep = stderr.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut s = keep.lock().unwrap();
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
            if s.len() > 16 * 1024 {
                let cut = s.len() - 16 * 1024;
                let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap();
                s.drain(..cut);
            }
        }
    });
    Node {
        child,
        stdin,
        lines,
        stderr,
    }
}
