//! `plexus devnet` end to end: a small network (8 nodes, 6 slots) with every scripted
//! event, run as the binary; the report's figures are asserted.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plexus");

#[test]
fn a_small_devnet_delivers_everything_and_the_events_go_as_they_should() {
    let dir = std::env::temp_dir().join(format!("plexus-devnet-test-{}", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "devnet",
            "--nodes",
            "8",
            "--slots",
            "6",
            "--slot-ms",
            "1000",
            "--json",
        ])
        .arg("--report")
        .arg(&dir)
        .output()
        .expect("run plexus devnet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "report")
        .unwrap_or_else(|| {
            panic!(
                "no report line in:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let pretty = serde_json::to_string_pretty(&report).unwrap();
    assert!(out.status.success(), "exit {:?}:\n{pretty}", out.status);
    assert_eq!(report["ok"], true, "{pretty}");
    assert_eq!(report["nodes"], 8);

    // Every honest node received every message of every topic.
    let topics = report["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 5);
    for t in topics {
        assert!(t["published"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["delivered"], t["expected"], "{t}");
        let p99 = t["latency_ms"]["p99"].as_f64().unwrap();
        assert!(p99 > 0.0 && p99.is_finite(), "{t}");
    }

    // The events.
    let ev = |name: &str| -> Value {
        report["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} event:\n{pretty}"))
    };
    for name in [
        "late_joiner",
        "misbehaving",
        "wrong_fork",
        "leave_and_rejoin",
    ] {
        assert_eq!(ev(name)["ok"], true, "{name}: {}", ev(name)["outcome"]);
    }
    let pm = &report["peer_manager"];
    assert!(
        pm["bans"].as_u64().unwrap() >= 1,
        "the misbehaving node was banned"
    );
    assert_eq!(
        pm["handshakes_after_ban"], 0,
        "no handshake for it after its ban"
    );
    assert!(pm["reconnects_refused"].as_u64().unwrap() >= 1);
    assert!(
        pm["goodbyes_sent"]["irrelevant_network"]
            .as_u64()
            .unwrap_or(0)
            + pm["goodbyes_received"]["irrelevant_network"]
                .as_u64()
                .unwrap_or(0)
            >= 1
    );
    assert!(
        report["reqresp"]["blocks"].as_u64().unwrap() >= 3,
        "the late joiner synced by range"
    );
    assert!(report["cpu_seconds_per_node"].as_f64().unwrap() > 0.0);
    assert!(report["rss_mib_per_node"].as_f64().unwrap() > 0.0);

    // The files.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["ok"], true);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for plot in ["latency-cdf", "per-slot", "bytes-per-node"] {
        assert!(
            html.contains(&format!("data-plot=\"{plot}\"")),
            "{plot} missing"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
