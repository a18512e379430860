//! What both benches share: the child-process runner and its `RESULT` protocol, RSS, verdicts.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A child's `RESULT` values, or why there are none.
pub(crate) type Outcome = Result<HashMap<String, f64>, String>;

/// Report one value to the parent (`RESULT key value` on stdout).
pub(crate) fn emit(key: &str, value: f64) {
    println!("RESULT {key} {value}");
}

/// This process' resident set size in bytes (`VmRSS` of /proc/self/status).
pub(crate) fn rss_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or("bad VmRSS")?;
    Ok(kib * 1024)
}

/// Run one child, bounded by `cap`; its `RESULT` lines, or why there are none.
pub(crate) fn run_child(exe: &PathBuf, label: &str, args: &[&str], cap: Duration) -> Outcome {
    eprintln!("{label} …");
    let t = Instant::now();
    let mut child = Command::new(exe)
        .arg("--child")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start child: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t.elapsed() > cap => {
                let _ = child.kill();
                let _ = child.wait();
                killed = true;
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for child: {e}")),
        }
    };
    let lines = reader.join().unwrap_or_default();
    let mut values = HashMap::new();
    let mut error = None;
    let mut finished = false;
    for l in &lines {
        if let Some(rest) = l.strip_prefix("RESULT ") {
            let mut it = rest.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse().ok())) {
                values.insert(k.to_string(), v);
            }
        } else if let Some(e) = l.strip_prefix("ERROR ") {
            error = Some(e.to_string());
        } else if l == "DONE" {
            finished = true;
        }
    }
    let outcome = if killed {
        Err(format!(
            "not measured: killed at its {:.0} s cap",
            cap.as_secs_f64()
        ))
    } else if let Some(e) = error {
        Err(format!("failed: {e}"))
    } else if !finished {
        Err(format!("failed: child exited with {status:?}"))
    } else {
        Ok(values)
    };
    match &outcome {
        Ok(v) => {
            let mut kv: Vec<_> = v.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let s: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
            eprintln!("      {:.1} s: {}", t.elapsed().as_secs_f64(), s.join(" "));
        }
        Err(e) => eprintln!("      {:.1} s: {e}", t.elapsed().as_secs_f64()),
    }
    outcome
}

/// Verdict for a target "value ≥ want" (`at_least`) or "value ≤ want".
pub(crate) fn verdict(value: Option<f64>, want: f64, at_least: bool, unit: &str) -> String {
    let Some(v) = value else {
        return "not measured".into();
    };
    let ok = if at_least { v >= want } else { v <= want };
    let pct = |x: f64| {
        if x < 1.0 {
            format!("{x:.1} %")
        } else {
            format!("{x:.0} %")
        }
    };
    if ok {
        "**met**".into()
    } else if at_least {
        format!(
            "**missed** by {} ({v:.3}{unit} < {want}{unit})",
            pct((1.0 - v / want) * 100.0)
        )
    } else {
        format!(
            "**missed** by {} ({v:.3}{unit} > {want}{unit})",
            pct((v / want - 1.0) * 100.0)
        )
    }
}
