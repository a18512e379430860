//! Helpers shared by the tests that run the `plexus` binary against in-process stand-ins.
// Each test crate uses its own subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::Protocol as Ma;
use serde_json::Value;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_plexus");

/// The events named `name`.
pub(crate) fn of<'a>(evs: &'a [Value], name: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["event"] == name).collect()
}

/// The host's first listen address with its `/p2p/<id>`.
pub(crate) fn addr_of(h: &Host) -> String {
    h.listen_addrs()[0]
        .clone()
        .with(Ma::P2p(h.peer_id()))
        .to_string()
}

/// A host on 127.0.0.1 (TCP) with a fresh secp256k1 key and `muxers` (empty: the default).
pub(crate) async fn host(muxers: Vec<Arc<dyn plexus_core::MuxerUpgrade>>) -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    cfg.muxers = muxers;
    Host::new(cfg).await.unwrap()
}

/// What the reader thread collected.
#[derive(Default)]
struct Lines {
    events: Vec<Value>,
    eof: bool,
}

/// A running `plexus --json …` process whose JSON lines are collected as they come; killed
/// on drop.
pub(crate) struct Proc {
    child: Child,
    lines: Arc<(Mutex<Lines>, Condvar)>,
}

impl Proc {
    /// Start `plexus` with `args` (include `--json`).
    pub(crate) fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start plexus");
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<(Mutex<Lines>, Condvar)> = Arc::default();
        let shared = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // A line that is not JSON fails the test's checks, not this thread.
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "not_json", "line": line }));
                shared.0.lock().unwrap().events.push(v);
                shared.1.notify_all();
            }
            shared.0.lock().unwrap().eof = true;
            shared.1.notify_all();
        });
        Proc { child, lines }
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.lines.0.lock().unwrap().events.clone()
    }

    /// The first event (so far or within `limit`) that `pred` holds for; panics with every
    /// event seen when none came.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + limit;
        let (lock, cv) = &*self.lines;
        let mut l = lock.lock().unwrap();
        loop {
            if let Some(v) = l.events.iter().find(|v| pred(v)) {
                return v.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || l.eof {
                panic!(
                    "no {what} within {limit:?} (exited: {}); events:\n{}",
                    l.eof,
                    dump(&l.events)
                );
            }
            l = cv.wait_timeout(l, left).unwrap().0;
        }
    }

    /// Wait until the process closes its stdout (at most `limit`), then for its exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        {
            let (lock, cv) = &*self.lines;
            let mut l = lock.lock().unwrap();
            while !l.eof {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    panic!(
                        "plexus still running after {limit:?}; events:\n{}",
                        dump(&l.events)
                    );
                }
                l = cv.wait_timeout(l, left).unwrap().0;
            }
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Events one per line, for failure messages.
pub(crate) fn dump(evs: &[Value]) -> String {
    evs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
