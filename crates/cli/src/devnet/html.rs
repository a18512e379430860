//! The devnet report as a self-contained HTML page: a run summary with a verdict, the
//! scripted events, tables (topics, Req/Resp, peer managers, resources) and three plots
//! drawn here as inline SVG (latency CDF per topic, delivery and p99 per slot, bytes per
//! node). No scripts, fonts, stylesheets or images are fetched: the page renders offline.

use std::fmt::Write as _;

use super::report::{NodeReport, Report, SlotReport, TopicReport, share};

/// Series colours (Tableau 10), used in turn for topics.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The page's style sheet: light background, readable on a laptop screen.
const STYLE: &str = "
body{margin:0;background:#f7f7f5;color:#222;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:16px 24px 48px}
header{display:flex;gap:24px;align-items:center;padding:16px 0 8px;border-bottom:1px solid #ddd}
h1{margin:0;font-size:24px}
h2{margin:28px 0 8px;font-size:19px;border-bottom:1px solid #e3e3e3;padding-bottom:4px}
h3{margin:12px 0 4px;font-size:16px}
.verdict{font-size:40px;font-weight:700;letter-spacing:1px;padding:10px 26px;border-radius:10px;color:#fff}
.verdict.ok{background:#2e7d32}
.verdict.failed{background:#c62828}
.summary{margin:4px 0 0;color:#444}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:90px}
.card b{display:block;font-size:18px}
.card span{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#efefec}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c62828;font-weight:600}
.good{color:#2e7d32}
ul.events{list-style:none;padding:0;margin:6px 0}
ul.events li{background:#fff;border:1px solid #ddd;border-left-width:6px;border-radius:4px;padding:6px 10px;margin:6px 0}
ul.events li.ok{border-left-color:#2e7d32}
ul.events li.fail{border-left-color:#c62828}
.badge{display:inline-block;min-width:42px;text-align:center;font-size:12px;font-weight:700;border-radius:4px;padding:1px 6px;margin-right:8px;color:#fff}
li.ok .badge{background:#2e7d32}
li.fail .badge{background:#c62828}
.plot{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}
.plot svg{display:block;max-width:100%;height:auto}
.caption{color:#555;font-size:13px;margin:4px 0 0}
.muted{color:#777}
.grid{display:flex;flex-wrap:wrap;gap:24px}
details{margin:10px 0}
summary{cursor:pointer;font-weight:600}
footer{margin-top:32px;color:#777;font-size:12px}
";

/// The report as one HTML page, with everything inline.
pub(crate) fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let verdict = if r.ok { "OK" } else { "FAILED" };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>plexus devnet: {verdict} ({} nodes, {} slots)</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<main>\n",
        r.nodes, r.slots
    );
    header(&mut o, r);
    events(&mut o, r);
    topics(&mut o, r);

    o.push_str("<h2>Gossip latency</h2>\n<div class=\"plot\">\n<h3>Latency CDF per topic</h3>\n");
    cdf_plot(&mut o, &r.topics);
    o.push_str(
        "<p class=\"caption\">Share of each topic's deliveries (first receipt at a node) \
         that arrived within x ms of publication.</p>\n</div>\n",
    );

    o.push_str("<h2>Per slot</h2>\n<div class=\"plot\">\n<h3>Delivered share and p99 latency per slot</h3>\n");
    slot_plot(&mut o, &r.per_slot);
    o.push_str(
        "<p class=\"caption\">Left: share of the expected deliveries of each slot's messages \
         that arrived (red dots: below 100%; the axis starts below the lowest share). \
         Right: p99 publish-to-delivery latency of the slot's deliveries.</p>\n</div>\n",
    );

    o.push_str("<h2>Traffic per node</h2>\n<div class=\"plot\">\n<h3>Bytes sent and received per node</h3>\n");
    bytes_plot(&mut o, &r.per_node);
    o.push_str(
        "<p class=\"caption\">Stream bytes written (solid) and read (pale) by each node, \
         coloured by role.</p>\n</div>\n",
    );

    reqresp(&mut o, r);
    peer_manager(&mut o, r);
    cross_process(&mut o, r);
    resources(&mut o, r);
    details(&mut o, r);
    o.push_str(
        "<footer>Written by <code>plexus devnet</code>. The same figures are in report.json.\
         </footer>\n</main>\n</body>\n</html>\n",
    );
    o
}

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/// The verdict, the run summary and a few headline figures.
fn header(o: &mut String, r: &Report) {
    let (class, verdict) = if r.ok {
        ("ok", "OK")
    } else {
        ("failed", "FAILED")
    };
    let (delivered, expected) = r.topics.iter().fold((0u64, 0u64), |(d, e), t| {
        (d.saturating_add(t.delivered), e.saturating_add(t.expected))
    });
    let events_ok = r.events.iter().filter(|e| e.ok).count();
    let _ = write!(
        o,
        "<header>\n<div class=\"verdict {class}\">{verdict}</div>\n<div>\n<h1>plexus devnet</h1>\n\
         <p class=\"summary\">{} nodes &middot; {} slots of {} ms &middot; seed {} &middot; {} s</p>\n\
         <div class=\"cards\">",
        r.nodes,
        r.slots,
        r.slot_ms,
        r.seed,
        num(r.duration_s, 1)
    );
    let card = |o: &mut String, value: String, label: &str| {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{value}</b><span>{label}</span></div>"
        );
    };
    card(o, r.nodes.to_string(), "nodes");
    card(o, r.slots.to_string(), "slots");
    card(o, r.slot_ms.to_string(), "ms per slot");
    card(o, r.seed.to_string(), "seed");
    card(o, num(r.duration_s, 1), "seconds");
    card(o, pct(delivered, expected), "gossip reach");
    card(o, format!("{events_ok}/{}", r.events.len()), "events ok");
    o.push_str("</div>\n</div>\n</header>\n");
}

/// The scripted events, each ok or failed with its outcome.
fn events(o: &mut String, r: &Report) {
    o.push_str("<h2>Events</h2>\n");
    if r.events.is_empty() {
        o.push_str("<p class=\"muted\">No scripted events.</p>\n");
        return;
    }
    o.push_str("<ul class=\"events\">\n");
    for e in &r.events {
        let (class, badge) = if e.ok { ("ok", "ok") } else { ("fail", "FAIL") };
        let _ = writeln!(
            o,
            "<li class=\"{class}\"><span class=\"badge\">{badge}</span><b>{}</b>: {}</li>",
            esc(&e.name),
            esc(&e.outcome)
        );
    }
    o.push_str("</ul>\n");
}

/// The topics table.
fn topics(o: &mut String, r: &Report) {
    o.push_str("<h2>Gossip topics</h2>\n");
    if r.topics.is_empty() {
        o.push_str("<p class=\"muted\">No topics.</p>\n");
        return;
    }
    o.push_str(
        "<table>\n<tr><th>topic</th><th class=\"num\">published</th><th class=\"num\">expected</th>\
         <th class=\"num\">delivered</th><th class=\"num\">reach</th><th class=\"num\">p50 ms</th>\
         <th class=\"num\">p95 ms</th><th class=\"num\">p99 ms</th><th class=\"num\">duplicates / msg</th></tr>\n",
    );
    for t in &r.topics {
        let reach_class = if t.delivered < t.expected {
            "num bad"
        } else {
            "num"
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"{reach_class}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&t.name),
            t.published,
            t.expected,
            t.delivered,
            pct(t.delivered, t.expected),
            num(t.p50_ms, 1),
            num(t.p95_ms, 1),
            num(t.p99_ms, 1),
            num(t.duplicates_per_message, 2)
        );
    }
    o.push_str("</table>\n");
}

/// The Req/Resp table.
fn reqresp(o: &mut String, r: &Report) {
    let q = &r.reqresp;
    let served_class = if q.served < q.requests {
        "num bad"
    } else {
        "num"
    };
    let _ = write!(
        o,
        "<h2>Req/Resp</h2>\n<table>\n<tr><th class=\"num\">requests</th><th class=\"num\">served in full</th>\
         <th class=\"num\">blocks received</th><th class=\"num\">p50 ms</th><th class=\"num\">p99 ms</th></tr>\n\
         <tr><td class=\"num\">{}</td><td class=\"{served_class}\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n</table>\n",
        q.requests,
        q.served,
        q.blocks,
        num(q.p50_ms, 1),
        num(q.p99_ms, 1)
    );
}

/// Other devnet processes (`--bootstrap`), when there were any.
fn cross_process(o: &mut String, r: &Report) {
    let x = &r.outside;
    if x.bootstrap == 0 && x.peers == 0 && x.messages == 0 {
        return;
    }
    let _ = write!(
        o,
        "<h2>Other processes</h2>\n<table>\n<tr><th class=\"num\">bootstrap addresses</th>\
         <th class=\"num\">connections to their nodes at the end</th>\
         <th class=\"num\">their messages received</th></tr>\n\
         <tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         </table>\n",
        x.bootstrap, x.peers, x.messages
    );
}

/// The peer managers' figures: bans, goodbyes by reason, refusals by reason and checkpoint.
fn peer_manager(o: &mut String, r: &Report) {
    let pm = &r.peer_manager;
    let hab_class = if pm.handshakes_after_ban > 0 {
        "num bad"
    } else {
        "num"
    };
    let _ = write!(
        o,
        "<h2>Peer managers</h2>\n<p class=\"caption\">Summed over the honest nodes.</p>\n\
         <table>\n<tr><th>peers banned</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>reconnects refused (backoff or ban)</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>handshakes after a ban (should be 0)</th><td class=\"{hab_class}\">{}</td></tr>\n</table>\n",
        pm.bans, pm.reconnects_refused, pm.handshakes_after_ban
    );
    o.push_str("<div class=\"grid\">\n<div>\n<h3>Goodbyes by reason</h3>\n");
    // Reasons in order of first appearance, sent then received.
    let mut reasons: Vec<&str> = Vec::new();
    for (reason, _) in pm.goodbyes_sent.iter().chain(&pm.goodbyes_received) {
        if !reasons.contains(&reason.as_str()) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        o.push_str("<p class=\"muted\">No goodbyes.</p>\n");
    } else {
        let count = |v: &[(String, u64)], reason: &str| -> u64 {
            v.iter().filter(|(r, _)| r == reason).map(|(_, n)| *n).sum()
        };
        o.push_str("<table>\n<tr><th>reason</th><th class=\"num\">sent</th><th class=\"num\">received</th></tr>\n");
        for reason in reasons {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(reason),
                count(&pm.goodbyes_sent, reason),
                count(&pm.goodbyes_received, reason)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</div>\n<div>\n<h3>Refusals by reason and checkpoint</h3>\n");
    if pm.refusals.is_empty() {
        o.push_str("<p class=\"muted\">No refusals.</p>\n");
    } else {
        o.push_str(
            "<table>\n<tr><th>reason</th><th>checkpoint</th><th class=\"num\">count</th></tr>\n",
        );
        for (reason, checkpoint, n) in &pm.refusals {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{n}</td></tr>",
                esc(reason),
                esc(checkpoint)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</div>\n</div>\n");
}

/// CPU, memory and traffic per node.
fn resources(o: &mut String, r: &Report) {
    let (sent, recv) = r.per_node.iter().fold((0u64, 0u64), |(s, v), n| {
        (
            s.saturating_add(n.bytes_sent),
            v.saturating_add(n.bytes_received),
        )
    });
    let n = r.per_node.len().max(1) as f64;
    let _ = write!(
        o,
        "<h2>Resources</h2>\n<table>\n\
         <tr><th>CPU seconds per node</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>peak RSS per node (MiB)</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>mean bytes sent per node</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>mean bytes received per node</th><td class=\"num\">{}</td></tr>\n\
         <tr><th>total bytes sent / received</th><td class=\"num\">{} / {}</td></tr>\n</table>\n\
         <p class=\"caption\">CPU and RSS are the whole process's, divided by the node count.</p>\n",
        num(r.cpu_seconds_per_node, 2),
        num(r.rss_mib_per_node, 1),
        bytes(sent as f64 / n),
        bytes(recv as f64 / n),
        bytes(sent as f64),
        bytes(recv as f64)
    );
}

/// Collapsed tables with every slot's and every node's figures.
fn details(o: &mut String, r: &Report) {
    if !r.per_slot.is_empty() {
        o.push_str(
            "<details>\n<summary>Every slot</summary>\n<table>\n<tr><th class=\"num\">slot</th>\
             <th class=\"num\">delivered</th><th class=\"num\">p99 ms</th><th class=\"num\">messages/s</th>\
             <th class=\"num\">mean peers</th><th class=\"num\">mean mesh</th></tr>\n",
        );
        for s in &r.per_slot {
            let class = if s.delivered_share < 1.0 {
                "num bad"
            } else {
                "num"
            };
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{}</td><td class=\"{class}\">{}%</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                s.slot,
                num(100.0 * s.delivered_share, 2),
                num(s.p99_ms, 1),
                num(s.messages_per_s, 1),
                num(s.mean_peers, 1),
                num(s.mean_mesh, 1)
            );
        }
        o.push_str("</table>\n</details>\n");
    }
    if !r.per_node.is_empty() {
        o.push_str(
            "<details>\n<summary>Every node</summary>\n<table>\n<tr><th>node</th><th>role</th>\
             <th class=\"num\">bytes sent</th><th class=\"num\">bytes received</th><th class=\"num\">peers at the end</th></tr>\n",
        );
        for n in &r.per_node {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&n.name),
                esc(&n.role),
                bytes(n.bytes_sent as f64),
                bytes(n.bytes_received as f64),
                n.peers
            );
        }
        o.push_str("</table>\n</details>\n");
    }
}

// ---------------------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------------------

/// Plot 1, `latency-cdf`: one CDF polyline per topic, with a legend.
fn cdf_plot(o: &mut String, topics: &[TopicReport]) {
    // Each topic's points, `(ms, share)`; empty when it has no deliveries.
    let series: Vec<Vec<(f64, f64)>> = topics.iter().map(cdf_points).collect();
    let x_max = series.iter().flatten().map(|p| p.0).fold(0.0f64, f64::max);
    if series.iter().all(Vec::is_empty) {
        no_data(o, "latency-cdf", 860.0, 260.0);
        return;
    }
    let legend_rows = topics.len() as f64;
    let (w, h) = (860.0, (340.0f64).max(24.0 + 20.0 * legend_rows + 60.0));
    let f = Frame {
        left: 64.0,
        top: 16.0,
        width: w - 64.0 - 250.0,
        height: h - 16.0 - 56.0,
        x: nice_axis(0.0, x_max, 8),
        y: nice_axis(0.0, 1.0, 5),
    };
    svg_open(o, "latency-cdf", w, h, "latency CDF per topic");
    axes(o, &f, "latency (ms)", "share of deliveries", |v, _| {
        format!("{:.0}%", v * 100.0)
    });
    for (i, pts) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        let points = pts
            .iter()
            .map(|&(x, y)| format!("{},{}", c(f.sx(x)), c(f.sy(y))))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            o,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" \
             stroke-linejoin=\"round\"><title>{}</title></polyline>",
            esc(&topics[i].name)
        );
    }
    // Legend, right of the plot area.
    let lx = f.left + f.width + 20.0;
    for (i, t) in topics.iter().enumerate() {
        let y = f.top + 12.0 + 20.0 * i as f64;
        let (color, note) = if series[i].is_empty() {
            ("#bbbbbb", " (no deliveries)")
        } else {
            (PALETTE[i % PALETTE.len()], "")
        };
        let _ = writeln!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\"><title>{}</title>{}{note}</text>",
            c(lx),
            c(y - 4.0),
            c(lx + 18.0),
            c(y - 4.0),
            c(lx + 24.0),
            c(y),
            esc(&t.name),
            esc(&trunc(&t.name, 28))
        );
    }
    o.push_str("</svg>\n");
}

/// A topic's CDF as `(ms, share of deliveries)` points sorted by ms; empty without deliveries.
fn cdf_points(t: &TopicReport) -> Vec<(f64, f64)> {
    let total = t.cdf.iter().map(|p| p.1).max().unwrap_or(0);
    if total == 0 {
        return Vec::new();
    }
    let mut pts: Vec<(f64, f64)> = t
        .cdf
        .iter()
        .filter(|p| p.0.is_finite())
        .map(|&(ms, n)| (ms.max(0.0), n as f64 / total as f64))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Plot 2, `per-slot`: two panels, delivered share and p99 ms, against the slot.
fn slot_plot(o: &mut String, slots: &[SlotReport]) {
    let (w, h) = (860.0, 300.0);
    if slots.is_empty() {
        no_data(o, "per-slot", w, 220.0);
        return;
    }
    let first = slots.iter().map(|s| s.slot).min().unwrap_or(0);
    let last = slots.iter().map(|s| s.slot).max().unwrap_or(0);
    let x = if first == last {
        int_axis(first.saturating_sub(1) as f64, last as f64 + 1.0, 8)
    } else {
        int_axis(first as f64, last as f64, 8)
    };
    // The share axis starts at the 10% step below the lowest share (at most 90%), so a
    // shortfall of a few percent is visible.
    let share_min = slots
        .iter()
        .map(|s| s.delivered_share)
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::min)
        .clamp(0.0, 1.0);
    let share_lo = (((share_min - 0.05) * 10.0).floor() / 10.0).clamp(0.0, 0.9);
    let p99_max = slots
        .iter()
        .map(|s| s.p99_ms)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let panels = [
        Frame {
            left: 64.0,
            top: 30.0,
            width: 330.0,
            height: h - 30.0 - 48.0,
            x,
            y: nice_axis(share_lo, 1.0, 5),
        },
        Frame {
            left: 500.0,
            top: 30.0,
            width: 330.0,
            height: h - 30.0 - 48.0,
            x,
            y: nice_axis(0.0, p99_max, 5),
        },
    ];
    svg_open(
        o,
        "per-slot",
        w,
        h,
        "delivered share and p99 latency per slot",
    );
    let r = if slots.len() > 60 { 1.5 } else { 3.0 };
    for (i, f) in panels.iter().enumerate() {
        let (title, y_title) = if i == 0 {
            ("delivered share", "delivered")
        } else {
            ("p99 latency", "p99 (ms)")
        };
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"600\" text-anchor=\"middle\">{title}</text>",
            c(f.left + f.width / 2.0)
        );
        if i == 0 {
            axes(o, f, "slot", y_title, |v, _| format!("{:.0}%", v * 100.0));
        } else {
            axes(o, f, "slot", y_title, |v, a| a.label(v));
        }
        let value = |s: &SlotReport| if i == 0 { s.delivered_share } else { s.p99_ms };
        let color = PALETTE[i];
        let points = slots
            .iter()
            .map(|s| format!("{},{}", c(f.sx(s.slot as f64)), c(f.sy(value(s)))))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            o,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>"
        );
        for s in slots {
            let bad = i == 0 && s.delivered_share < 1.0;
            let fill = if bad { "#c62828" } else { color };
            let label = if i == 0 {
                format!(
                    "slot {}: {}% delivered",
                    s.slot,
                    num(100.0 * s.delivered_share, 2)
                )
            } else {
                format!("slot {}: p99 {} ms", s.slot, num(s.p99_ms, 1))
            };
            let _ = writeln!(
                o,
                "<circle cx=\"{}\" cy=\"{}\" r=\"{r}\" fill=\"{fill}\"><title>{label}</title></circle>",
                c(f.sx(s.slot as f64)),
                c(f.sy(value(s)))
            );
        }
    }
    o.push_str("</svg>\n");
}

/// Plot 3, `bytes-per-node`: a sent and a received bar per node, coloured by role.
fn bytes_plot(o: &mut String, nodes: &[NodeReport]) {
    let (w, h) = (860.0, 360.0);
    if nodes.is_empty() {
        no_data(o, "bytes-per-node", w, 220.0);
        return;
    }
    let max = nodes
        .iter()
        .map(|n| n.bytes_sent.max(n.bytes_received))
        .max()
        .unwrap_or(0) as f64;
    let (unit, div) = byte_unit(max);
    let f = Frame {
        left: 72.0,
        top: 16.0,
        width: w - 72.0 - 170.0,
        height: h - 16.0 - 96.0,
        x: nice_axis(0.0, nodes.len() as f64, 1),
        y: nice_axis(0.0, max / div, 5),
    };
    svg_open(
        o,
        "bytes-per-node",
        w,
        h,
        "bytes sent and received per node",
    );
    axes_y_only(o, &f, &format!("bytes ({unit})"));
    let mut roles: Vec<&str> = Vec::new();
    for n in nodes {
        if !roles.contains(&n.role.as_str()) {
            roles.push(&n.role);
        }
    }
    let gw = f.width / nodes.len() as f64;
    let base = f.top + f.height;
    let every = nodes.len().div_ceil(30).max(1);
    for (i, n) in nodes.iter().enumerate() {
        let color = role_color(&n.role, &roles);
        let gx = f.left + gw * i as f64;
        let tip = format!(
            "{} ({}): sent {}, received {}",
            esc(&n.name),
            esc(&n.role),
            bytes(n.bytes_sent as f64),
            bytes(n.bytes_received as f64)
        );
        for (j, (v, opacity)) in [(n.bytes_sent, "1"), (n.bytes_received, "0.45")]
            .into_iter()
            .enumerate()
        {
            let y = f.sy(v as f64 / div);
            let _ = writeln!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"{opacity}\"><title>{tip}</title></rect>",
                c(gx + gw * (0.1 + 0.4 * j as f64)),
                c(y),
                c(gw * 0.4),
                c((base - y).max(0.0))
            );
        }
        if i.is_multiple_of(every) {
            let (tx, ty) = (gx + gw / 2.0, base + 14.0);
            let _ = writeln!(
                o,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" transform=\"rotate(-45 {} {})\">{}</text>",
                c(tx),
                c(ty),
                c(tx),
                c(ty),
                esc(&trunc(&n.name, 14))
            );
        }
    }
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">node</text>",
        c(f.left + f.width / 2.0),
        c(h - 6.0)
    );
    // Legend: roles, then what solid and pale mean.
    let lx = f.left + f.width + 20.0;
    let mut row = 0.0;
    let mut entry = |o: &mut String, color: &str, opacity: &str, label: &str| {
        let y = f.top + 12.0 + 20.0 * row;
        let _ = writeln!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"12\" fill=\"{color}\" fill-opacity=\"{opacity}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{label}</text>",
            c(lx),
            c(y - 10.0),
            c(lx + 20.0),
            c(y)
        );
        row += 1.0;
    };
    for role in &roles {
        entry(o, role_color(role, &roles), "1", &esc(&trunc(role, 18)));
    }
    entry(o, "#666666", "1", "sent (solid)");
    entry(o, "#666666", "0.45", "received (pale)");
    o.push_str("</svg>\n");
}

/// The fill for a node's role: fixed colours for the known roles, the palette for others.
fn role_color<'a>(role: &str, roles: &[&str]) -> &'a str {
    match role {
        "honest" => "#4e79a7",
        "late_joiner" => "#59a14f",
        "misbehaving" => "#e15759",
        "wrong_fork" => "#f28e2b",
        "rejoiner" => "#b07aa1",
        _ => {
            let i = roles.iter().position(|r| *r == role).unwrap_or(0);
            ["#9c755f", "#76b7b2", "#edc948", "#ff9da7", "#bab0ac"][i % 5]
        }
    }
}

/// The area of a plot and the axes it maps.
struct Frame {
    /// Left edge of the plot area, SVG units.
    left: f64,
    /// Top edge of the plot area.
    top: f64,
    /// Width of the plot area.
    width: f64,
    /// Height of the plot area.
    height: f64,
    /// The horizontal axis.
    x: Axis,
    /// The vertical axis.
    y: Axis,
}

impl Frame {
    /// The SVG x of data value `v`, clamped to the plot area.
    fn sx(&self, v: f64) -> f64 {
        self.left + unit((v - self.x.lo) / (self.x.hi - self.x.lo)) * self.width
    }

    /// The SVG y of data value `v`, clamped to the plot area.
    fn sy(&self, v: f64) -> f64 {
        self.top + self.height - unit((v - self.y.lo) / (self.y.hi - self.y.lo)) * self.height
    }
}

/// `t` clamped to 0..=1; 0 when not finite.
fn unit(t: f64) -> f64 {
    if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// An axis with rounded bounds and a step of 1, 2 or 5 × 10^k.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    /// Lower bound (a multiple of `step`).
    lo: f64,
    /// Upper bound (a multiple of `step`), above `lo`.
    hi: f64,
    /// Distance between ticks.
    step: f64,
}

impl Axis {
    /// The tick values, `lo` to `hi`.
    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round();
        let n = if n.is_finite() {
            n.clamp(1.0, 50.0) as usize
        } else {
            1
        };
        (0..=n).map(|i| self.lo + self.step * i as f64).collect()
    }

    /// A tick label: as many decimals as the step needs.
    fn label(&self, v: f64) -> String {
        let decimals = if self.step >= 1.0 {
            0
        } else {
            (-self.step.log10()).ceil().clamp(0.0, 6.0) as usize
        };
        // `+ 0.0` turns -0 into 0.
        format!("{:.decimals$}", v + 0.0)
    }
}

/// An axis covering `lo..=hi` with about `target` intervals; `0..1` for nonsense input.
fn nice_axis(lo: f64, hi: f64, target: usize) -> Axis {
    let fallback = Axis {
        lo: 0.0,
        hi: 1.0,
        step: 0.2,
    };
    if !lo.is_finite() || !hi.is_finite() {
        return fallback;
    }
    let (lo, mut hi) = (lo.min(hi), lo.max(hi));
    if hi - lo < 1e-9 * hi.abs().max(1.0) {
        hi = lo + 1.0;
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    let axis = Axis {
        lo: (lo / step).floor() * step,
        hi: (hi / step).ceil() * step,
        step,
    };
    if [axis.lo, axis.hi, axis.step].iter().all(|v| v.is_finite())
        && axis.step > 0.0
        && axis.hi > axis.lo
    {
        axis
    } else {
        fallback
    }
}

/// Like [`nice_axis`], with a step of at least 1 (slots).
fn int_axis(lo: f64, hi: f64, target: usize) -> Axis {
    let a = nice_axis(lo, hi, target);
    if a.step >= 1.0 {
        a
    } else {
        Axis {
            lo: lo.floor(),
            hi: hi.ceil().max(lo.floor() + 1.0),
            step: 1.0,
        }
    }
}

/// Opens a plot's `<svg>`.
fn svg_open(o: &mut String, name: &str, w: f64, h: f64, label: &str) {
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" data-plot=\"{name}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" \
         role=\"img\" aria-label=\"{}\" font-family=\"system-ui, sans-serif\" fill=\"#222\">",
        c(w),
        c(h),
        c(w),
        c(h),
        esc(label)
    );
}

/// A whole plot that says "no data".
fn no_data(o: &mut String, name: &str, w: f64, h: f64) {
    svg_open(o, name, w, h, "no data");
    let _ = writeln!(
        o,
        "<rect x=\"1\" y=\"1\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#dddddd\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"18\" fill=\"#888\" text-anchor=\"middle\">no data</text>\n</svg>",
        c(w - 2.0),
        c(h - 2.0),
        c(w / 2.0),
        c(h / 2.0)
    );
}

/// Both axes with grid lines, tick labels and titles; `y_label` formats the y ticks.
fn axes(
    o: &mut String,
    f: &Frame,
    x_title: &str,
    y_title: &str,
    y_label: impl Fn(f64, &Axis) -> String,
) {
    let base = f.top + f.height;
    for v in f.x.ticks() {
        let x = f.sx(v);
        let _ = writeln!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eeeeee\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            c(x),
            c(f.top),
            c(x),
            c(base + 4.0),
            c(x),
            c(base + 16.0),
            f.x.label(v)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        c(f.left + f.width / 2.0),
        c(base + 34.0),
        esc(x_title)
    );
    y_axis(o, f, y_title, y_label);
    let _ = writeln!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>",
        c(f.left),
        c(base),
        c(f.left + f.width),
        c(base)
    );
}

/// The y axis only (grid, ticks, title) and the baseline; for bar charts.
fn axes_y_only(o: &mut String, f: &Frame, y_title: &str) {
    y_axis(o, f, y_title, |v, a| a.label(v));
    let base = f.top + f.height;
    let _ = writeln!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>",
        c(f.left),
        c(base),
        c(f.left + f.width),
        c(base)
    );
}

/// Horizontal grid lines, y tick labels, the y axis line and its (rotated) title.
fn y_axis(o: &mut String, f: &Frame, y_title: &str, y_label: impl Fn(f64, &Axis) -> String) {
    for v in f.y.ticks() {
        let y = f.sy(v);
        let _ = writeln!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eeeeee\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            c(f.left - 4.0),
            c(y),
            c(f.left + f.width),
            c(y),
            c(f.left - 7.0),
            c(y + 4.0),
            esc(&y_label(v, &f.y))
        );
    }
    let (tx, ty) = (f.left - 48.0, f.top + f.height / 2.0);
    let _ = writeln!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">{}</text>",
        c(f.left),
        c(f.top),
        c(f.left),
        c(f.top + f.height),
        c(tx),
        c(ty),
        c(tx),
        c(ty),
        esc(y_title)
    );
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by character references: safe as text and
/// inside a quoted attribute value.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An SVG coordinate: one decimal; 0 when not finite.
fn c(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", v + 0.0)
    } else {
        "0".to_owned()
    }
}

/// A figure with `decimals` decimals; a dash when not finite.
fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{:.decimals$}", v + 0.0)
    } else {
        "–".to_owned()
    }
}

/// `a / b` as a percentage; never rounds a shortfall up to 100%; a dash when `b` is 0.
fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "–".to_owned()
    } else if a >= b {
        format!("{:.1}%", 100.0 * share(a, b))
    } else {
        format!("{:.2}%", (100.0 * share(a, b)).min(99.99))
    }
}

/// The binary unit to show `max` bytes in, and its size.
fn byte_unit(max: f64) -> (&'static str, f64) {
    const KIB: f64 = 1024.0;
    if max >= KIB * KIB * KIB {
        ("GiB", KIB * KIB * KIB)
    } else if max >= KIB * KIB {
        ("MiB", KIB * KIB)
    } else if max >= KIB {
        ("KiB", KIB)
    } else {
        ("B", 1.0)
    }
}

/// A byte count in a binary unit.
fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let (unit, div) = byte_unit(v);
    if div == 1.0 {
        format!("{v:.0} B")
    } else {
        format!("{:.2} {unit}", v / div)
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::{EventReport, PeerManagerReport, ReqRespReport};
    use super::*;

    /// Strings with markup characters, put into the sample report.
    const NASTY: [&str; 7] = [
        "topic<&\">'one",
        "node-<b>\"0\"&",
        "<role & \"x\">",
        "ev<&>\"",
        "banned <node-7> & \"gone\"",
        "<fault>&\"x\"",
        "check<point>&\"",
    ];

    /// 3 topics with CDFs, 12 slots, 20 nodes of mixed roles, events ok and failed.
    fn sample() -> Report {
        let topics = (0..3)
            .map(|i| {
                let name = if i == 0 {
                    NASTY[0].to_owned()
                } else {
                    format!("topic_{i}")
                };
                let top = 50.0 * (i + 1) as f64;
                let cdf = (0..=40)
                    .map(|k| {
                        let ms = top * f64::from(k) / 40.0;
                        (ms, (1000.0 * (f64::from(k) / 40.0).sqrt()) as u64)
                    })
                    .collect();
                TopicReport {
                    name,
                    published: 100,
                    expected: 1000,
                    delivered: if i == 2 { 990 } else { 1000 },
                    p50_ms: top / 4.0,
                    p95_ms: top * 0.9,
                    p99_ms: top * 0.99,
                    duplicates_per_message: 1.5,
                    cdf,
                }
            })
            .collect();
        let per_slot = (0..12)
            .map(|s| SlotReport {
                slot: s,
                delivered_share: if s == 5 { 0.9 } else { 1.0 },
                p99_ms: 20.0 + s as f64 * 3.0,
                messages_per_s: 100.0,
                mean_peers: 8.0,
                mean_mesh: 6.0,
            })
            .collect();
        let roles = [
            "honest",
            "late_joiner",
            "misbehaving",
            "wrong_fork",
            "rejoiner",
            NASTY[2],
        ];
        let per_node = (0..20_usize)
            .map(|i| NodeReport {
                name: if i == 0 {
                    NASTY[1].to_owned()
                } else {
                    format!("node-{i}")
                },
                role: roles[i.saturating_sub(14)].to_owned(),
                bytes_sent: 3_000_000 + 100_000 * i as u64,
                bytes_received: 2_500_000 + 120_000 * i as u64,
                peers: 8,
            })
            .collect();
        Report {
            outside: Default::default(),
            nodes: 20,
            slots: 12,
            slot_ms: 2000,
            seed: 7,
            duration_s: 31.5,
            topics,
            per_slot,
            per_node,
            cpu_seconds_per_node: 0.8,
            rss_mib_per_node: 12.5,
            reqresp: ReqRespReport {
                requests: 4,
                served: 4,
                blocks: 24,
                p50_ms: 3.0,
                p99_ms: 9.0,
            },
            peer_manager: PeerManagerReport {
                goodbyes_sent: vec![(NASTY[5].to_owned(), 2), ("too_many_peers".into(), 1)],
                goodbyes_received: vec![("client_shutdown".into(), 1)],
                bans: 3,
                refusals: vec![(NASTY[5].to_owned(), NASTY[6].to_owned(), 5)],
                reconnects_refused: 4,
                handshakes_after_ban: 0,
            },
            events: vec![
                EventReport {
                    name: NASTY[3].to_owned(),
                    outcome: "went fine".into(),
                    ok: true,
                },
                EventReport {
                    name: "misbehaving".into(),
                    outcome: NASTY[4].to_owned(),
                    ok: false,
                },
            ],
            ok: false,
        }
    }

    /// Each plot's name and its `<svg …>…</svg>` text, in page order.
    fn plots(page: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = page;
        while let Some(start) = rest.find("<svg") {
            let end = rest[start..].find("</svg>").expect("unclosed svg") + start + "</svg>".len();
            let svg = &rest[start..end];
            let name = attr(svg, "data-plot")
                .expect("svg without data-plot")
                .to_owned();
            out.push((name, svg.to_owned()));
            rest = &rest[end..];
        }
        out
    }

    /// The value of attribute `name` in the first tag of `tag` that has it.
    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        let len = tag[at..].find('"')?;
        Some(&tag[at..at + len])
    }

    /// Checks every coordinate attribute in `svg` is a finite number inside its viewBox;
    /// returns how many polylines and rects it has.
    fn check_coordinates(name: &str, svg: &str) -> usize {
        let vb: Vec<f64> = attr(svg, "viewBox")
            .expect("viewBox")
            .split_whitespace()
            .map(|v| v.parse().expect("viewBox number"))
            .collect();
        assert_eq!(vb.len(), 4, "{name}: viewBox");
        let (w, h) = (vb[2], vb[3]);
        assert!(
            w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite(),
            "{name}: viewBox {vb:?}"
        );
        let inside = |v: f64, max: f64, what: &str| {
            assert!(
                v.is_finite() && v >= 0.0 && v <= max,
                "{name}: {what}={v} outside 0..={max}"
            );
        };
        let mut shapes = 0;
        for tag in svg.split('<').skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let tag_name = tag.split_whitespace().next().unwrap_or("");
            if tag_name == "polyline" || tag_name == "rect" {
                shapes += 1;
            }
            let tag = format!(" {}", tag.trim_start_matches(tag_name));
            for (a, max) in [("x", w), ("x1", w), ("x2", w), ("cx", w), ("width", w)] {
                if let Some(v) = attr(&tag, a) {
                    inside(v.parse().expect("number"), max, a);
                }
            }
            for (a, max) in [("y", h), ("y1", h), ("y2", h), ("cy", h), ("height", h)] {
                if let Some(v) = attr(&tag, a) {
                    inside(v.parse().expect("number"), max, a);
                }
            }
            if let (Some(x), Some(width)) = (attr(&tag, "x"), attr(&tag, "width")) {
                let (x, width): (f64, f64) = (x.parse().unwrap(), width.parse().unwrap());
                inside(x + width, w + 0.11, "x+width");
            }
            if let (Some(y), Some(height)) = (attr(&tag, "y"), attr(&tag, "height")) {
                let (y, height): (f64, f64) = (y.parse().unwrap(), height.parse().unwrap());
                inside(y + height, h + 0.11, "y+height");
            }
            if let Some(points) = attr(&tag, "points") {
                let nums: Vec<f64> = points
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("point number"))
                    .collect();
                assert!(
                    !nums.is_empty() && nums.len().is_multiple_of(2),
                    "{name}: points {points}"
                );
                for p in nums.chunks(2) {
                    inside(p[0], w, "points x");
                    inside(p[1], h, "points y");
                }
            }
        }
        let lower = svg.to_ascii_lowercase();
        assert!(
            !lower.contains("nan") && !lower.contains("inf"),
            "{name}: NaN or inf in {svg}"
        );
        shapes
    }

    #[test]
    fn page_has_exactly_the_three_plots() {
        let page = render(&sample());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        let names: Vec<String> = plots(&page).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["latency-cdf", "per-slot", "bytes-per-node"]);
        assert_eq!(page.matches("data-plot=").count(), 3);
        assert_eq!(page.matches("<svg").count(), 3);
        // Each inside an element of class "plot".
        for name in &names {
            let at = page.find(&format!("data-plot=\"{name}\"")).unwrap();
            let open = page[..at].rfind("<div class=\"plot\">").expect("plot div");
            assert!(
                !page[open..at].contains("</div>"),
                "{name} not inside .plot"
            );
        }
        // Self-contained: no scripts or fetched resources.
        let lower = page.to_ascii_lowercase();
        for bad in ["<script", "<link", "<img", "src=", "@import", "url("] {
            assert!(!lower.contains(bad), "page contains {bad}");
        }
        // The verdict and the headline figures.
        assert!(page.contains("class=\"verdict failed\">FAILED<"));
        assert!(
            page.contains("20 nodes &middot; 12 slots of 2000 ms &middot; seed 7 &middot; 31.5 s")
        );
        assert!(page.contains("99.00%"), "topic 2's reach");
        let mut ok = sample();
        ok.ok = true;
        assert!(render(&ok).contains("class=\"verdict ok\">OK<"));
    }

    #[test]
    fn plots_have_finite_shapes_inside_the_view_box() {
        let page = render(&sample());
        for (name, svg) in plots(&page) {
            assert!(check_coordinates(&name, &svg) >= 1, "{name} draws nothing");
            assert!(!svg.contains("no data"), "{name} says no data");
        }
        let (_, cdf) = &plots(&page)[0];
        assert_eq!(cdf.matches("<polyline").count(), 3, "one CDF per topic");
        let (_, bars) = &plots(&page)[2];
        assert!(bars.matches("<rect").count() >= 40, "two bars per node");
        // Axis titles and tick labels.
        assert!(cdf.contains(">latency (ms)<") && cdf.contains(">100%<"));
        assert!(bars.contains(">bytes (MiB)<"));
    }

    #[test]
    fn strings_from_the_data_are_escaped() {
        let page = render(&sample());
        for s in NASTY {
            assert!(!page.contains(s), "raw {s:?} in the page");
            assert!(page.contains(&esc(s)), "escaped {s:?} missing");
        }
        assert!(!page.contains("<b>\"0\""));
        assert!(!page.contains("<fault>"));
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn empty_report_renders_and_plots_say_no_data() {
        let page = render(&Report::default());
        let plots = plots(&page);
        assert_eq!(plots.len(), 3);
        for (name, svg) in &plots {
            assert!(svg.contains(">no data<"), "{name} does not say no data");
            check_coordinates(name, svg);
        }
        assert!(page.contains(">FAILED<"));
        assert!(page.contains("No scripted events."));
    }

    #[test]
    fn odd_numbers_give_finite_coordinates() {
        let mut r = sample();
        r.duration_s = f64::NAN;
        r.topics[0].cdf.push((f64::INFINITY, 2000));
        r.topics[0].cdf.push((f64::NAN, 5));
        r.topics[1].cdf = vec![(0.0, 0), (0.0, 0)];
        r.topics[2].cdf = vec![(0.0, 10)];
        r.per_slot.truncate(1);
        r.per_slot[0].p99_ms = f64::INFINITY;
        r.per_slot[0].delivered_share = f64::NAN;
        r.per_node.truncate(1);
        r.per_node[0].bytes_sent = 0;
        r.per_node[0].bytes_received = 0;
        let page = render(&r);
        for (name, svg) in plots(&page) {
            assert!(check_coordinates(&name, &svg) >= 1, "{name} draws nothing");
        }
        assert!(page.contains("(no deliveries)"));
        // One topic whose every delivery is at 0 ms; one zero-byte node.
        let mut r = Report::default();
        r.topics.push(TopicReport {
            name: "t".into(),
            cdf: vec![(0.0, 3)],
            ..Default::default()
        });
        r.per_node.push(NodeReport {
            name: "n".into(),
            role: "honest".into(),
            ..Default::default()
        });
        r.per_slot.push(SlotReport::default());
        let page = render(&r);
        for (name, svg) in plots(&page) {
            assert!(check_coordinates(&name, &svg) >= 1, "{name} draws nothing");
        }
    }

    #[test]
    fn axes_are_nice_and_cover_the_range() {
        let a = nice_axis(0.0, 97.0, 5);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 100.0, 20.0));
        assert_eq!(a.ticks().len(), 6);
        let a = nice_axis(0.0, 1.0, 5);
        assert_eq!(a.label(0.2 * 3.0), "0.6");
        let a = nice_axis(3.0, 3.0, 5);
        assert!(a.lo <= 3.0 && a.hi > 3.0);
        assert_eq!(
            nice_axis(f64::NAN, 1.0, 5),
            Axis {
                lo: 0.0,
                hi: 1.0,
                step: 0.2
            }
        );
        let a = int_axis(0.0, 3.0, 8);
        assert_eq!(a.step, 1.0);
        assert_eq!(pct(999, 1000), "99.90%");
        assert_eq!(pct(99_999, 100_000), "99.99%");
        assert_eq!(pct(5, 5), "100.0%");
        assert_eq!(pct(0, 0), "–");
        assert_eq!(bytes(3.0 * 1048576.0), "3.00 MiB");
        assert_eq!(trunc("abcdef", 4), "abc…");
    }
}
