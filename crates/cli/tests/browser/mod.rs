//! Headless Chromium for the end-to-end tests.
//!
//! [`chromium`] returns Debian's `/usr/bin/chromium`, installing the `chromium` package
//! first when it is missing (`apt-get update`, then `apt-get install -y
//! --no-install-recommends chromium`, as root or through `sudo -n`), once per process.
//! Every run starts Chromium headless with a new empty profile, under a time limit, in its
//! own process group, which is killed when the run ends or the limit passes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The installer's steps, each run as root (directly or through `sudo -n`). The lock
/// timeout makes a concurrent apt or dpkg (another test process) wait instead of failing.
const INSTALL: [&[&str]; 2] = [
    &["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"],
    &[
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=600",
        "install",
        "-y",
        "--no-install-recommends",
        "chromium",
    ],
];

/// Time limit of each installer step.
const INSTALL_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Time limit of one Chromium run (a page load plus a DOM dump or a screenshot).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Flags of every run. Without the background-networking flags, Chromium's connections to
/// Google's hosts are refused by a closed network, many at a time; `--no-sandbox` because
/// the tests run as root (Chromium refuses its sandbox then) and the page is our own file.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
];

/// The Chromium binary, installed from Debian's packages on first use.
///
/// Panics, naming the command, when the install fails; later calls panic the same way
/// without trying again.
fn chromium() -> &'static Path {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(ensure_chromium) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// Installs Chromium if it is missing and checks that it starts.
fn ensure_chromium() -> Result<PathBuf, String> {
    let chromium = PathBuf::from(CHROMIUM);
    if !chromium.exists() {
        let scratch = TempDir::new("apt");
        let root = is_root();
        for step in INSTALL {
            let mut argv: Vec<&str> = if root { vec![] } else { vec!["sudo", "-n"] };
            argv.extend(["env", "DEBIAN_FRONTEND=noninteractive"]);
            argv.extend(step);
            let shown = argv.join(" ");
            eprintln!("browser: {CHROMIUM} is missing; running `{shown}`");
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            let ran = run_bounded(&mut cmd, INSTALL_LIMIT, scratch.path())
                .map_err(|e| format!("installing Chromium: `{shown}`: {e}"))?;
            if !ran.success() {
                return Err(format!(
                    "installing Chromium: `{shown}` {}{}\n{}",
                    ran.outcome(),
                    if root {
                        ""
                    } else {
                        " (not root: it ran through `sudo -n`, which needs passwordless sudo)"
                    },
                    tail(&ran.stderr, 2000)
                ));
            }
        }
        if !chromium.exists() {
            return Err(format!(
                "installing Chromium: `{}` succeeded but {CHROMIUM} is still missing",
                INSTALL[1].join(" ")
            ));
        }
    }
    let scratch = TempDir::new("chromium-version");
    let ran = run_bounded(
        Command::new(&chromium).arg("--version"),
        RUN_LIMIT,
        scratch.path(),
    )
    .map_err(|e| format!("`{CHROMIUM} --version`: {e}"))?;
    if !ran.success() {
        return Err(format!(
            "`{CHROMIUM} --version` {}:\n{}",
            ran.outcome(),
            tail(&ran.stderr, 2000)
        ));
    }
    eprintln!("browser: {}", String::from_utf8_lossy(&ran.stdout).trim());
    Ok(chromium)
}

/// Whether this process runs as root (effective uid 0, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// A finished (or killed) command.
struct Ran {
    /// The exit status; `None` when it was killed at its time limit.
    status: Option<ExitStatus>,
    limit: Duration,
    /// Everything written to stdout.
    stdout: Vec<u8>,
    /// Everything written to stderr.
    stderr: String,
}

impl Ran {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn outcome(&self) -> String {
        match self.status {
            Some(s) => format!("failed ({s})"),
            None => format!(
                "did not finish in {} s and was killed",
                self.limit.as_secs()
            ),
        }
    }
}

/// Runs `cmd` in its own process group with stdout and stderr going to files in
/// `scratch`, and waits at most `limit`. When the command exits or the limit passes, its
/// whole group is killed (Chromium leaves helper processes behind), then it is reaped.
fn run_bounded(cmd: &mut Command, limit: Duration, scratch: &Path) -> Result<Ran, String> {
    use std::os::unix::process::CommandExt as _;
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.join(format!("stdout-{n}"));
    let err_path = scratch.join(format!("stderr-{n}"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let pid = child.id();
    let start = Instant::now();
    // Wait for the leader to become a zombie without reaping it: until it is reaped, its
    // pid (the group's id) cannot be reused, so killing the group hits only our processes.
    let mut timed_out = false;
    while !exited(pid) {
        if start.elapsed() > limit {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    Ok(Ran {
        status: (!timed_out).then_some(status),
        limit,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned(),
    })
}

/// Whether process `pid` has exited (is a zombie, or is gone).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// The last `max` bytes of `s` (at a character boundary).
fn tail(s: &str, max: usize) -> &str {
    let mut at = s.len().saturating_sub(max);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// Runs headless Chromium on `url` with `args`, a new empty profile, and the time limit.
/// Panics, with Chromium's stderr, when it fails or hangs.
fn headless(args: &[String], url: &str) -> Ran {
    let chromium = chromium();
    let scratch = TempDir::new("chromium");
    let profile = scratch.path().join("profile");
    std::fs::create_dir(&profile).unwrap();
    let mut cmd = Command::new(chromium);
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url);
    let ran = run_bounded(&mut cmd, RUN_LIMIT, scratch.path())
        .unwrap_or_else(|e| panic!("{CHROMIUM}: {e}"));
    assert!(
        ran.success(),
        "{CHROMIUM} {} on {url} {}:\n{}",
        args.join(" "),
        ran.outcome(),
        tail(&ran.stderr, 4000)
    );
    ran
}

/// A `file://` URL for an absolute path.
pub(crate) fn file_url(path: &Path) -> String {
    let path = path.to_str().expect("a UTF-8 path");
    assert!(path.starts_with('/'), "not absolute: {path}");
    let mut url = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Measures every `<svg data-plot>` once the page has loaded, as laid out and drawn by
/// the browser, and appends the result as JSON in `<pre id="plexus-probe">`:
/// - `page_height`: the document's height in CSS pixels (before the `<pre>` is added);
/// - per plot: its name, `aria-label` and text; its box on the page (`width`, `height`)
///   and computed `display` and `visibility`; `drawn`: per element kind (`polyline`,
///   `rect`, `circle`, `line`, `text`, …), how many have a bounding box of non-zero
///   size, as computed by the browser's layout (text only gets one when a font drew it);
/// - per plot, `pixels`, `inked` and `chromatic`: the plot's markup rasterised by the
///   browser onto a white canvas of the plot's size, and the number of its pixels that
///   are not near white, and that are coloured (not grey: the data series are, the axes
///   are not); `pixel_error` instead when that failed;
/// - `error`: an exception, if the script threw.
const PROBE: &str = r##"<script>
function plexusPixels(svg, w, h) {
  return new Promise(resolve => {
    const img = new Image();
    img.onload = () => {
      try {
        const c = document.createElement('canvas');
        c.width = w; c.height = h;
        const g = c.getContext('2d');
        g.fillStyle = '#ffffff'; g.fillRect(0, 0, w, h);
        g.drawImage(img, 0, 0, w, h);
        const d = g.getImageData(0, 0, w, h).data;
        let inked = 0, chromatic = 0;
        for (let i = 0; i < d.length; i += 4) {
          const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
          if (lo < 224) inked++;
          if (hi - lo > 64) chromatic++;
        }
        resolve({pixels: w * h, inked, chromatic});
      } catch (e) { resolve({pixel_error: String(e)}); }
    };
    img.onerror = () => resolve({pixel_error: 'the plot did not load as an image'});
    img.src = 'data:image/svg+xml;charset=utf-8,' +
      encodeURIComponent(new XMLSerializer().serializeToString(svg));
  });
}
addEventListener('load', async () => {
  const out = {page_height: document.documentElement.scrollHeight, plots: [], error: null};
  try {
    for (const svg of document.querySelectorAll('svg[data-plot]')) {
      const r = svg.getBoundingClientRect();
      const style = getComputedStyle(svg);
      const drawn = {};
      for (const e of svg.querySelectorAll('path,polyline,polygon,rect,circle,ellipse,line,text')) {
        const b = e.getBBox();
        if (b.width > 0 || b.height > 0) drawn[e.localName] = (drawn[e.localName] || 0) + 1;
      }
      const px = await plexusPixels(svg, Math.max(1, Math.ceil(r.width)), Math.max(1, Math.ceil(r.height)));
      out.plots.push(Object.assign({
        name: svg.dataset.plot, label: svg.getAttribute('aria-label'), text: svg.textContent,
        width: r.width, height: r.height, display: style.display, visibility: style.visibility,
        drawn,
      }, px));
    }
  } catch (e) { out.error = String((e && e.stack) || e); }
  const pre = document.createElement('pre');
  pre.id = 'plexus-probe';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>
"##;

/// Loads a copy of the page at `html` with [`PROBE`] added into headless Chromium
/// (`--dump-dom`), and returns the probe's JSON. The page itself is not changed.
pub(crate) fn probe_plots(html: &Path, width: u32) -> Value {
    let page = std::fs::read_to_string(html).unwrap();
    let at = page
        .rfind("</body>")
        .unwrap_or_else(|| panic!("{}: no </body>", html.display()));
    let copy = TempDir::new("probe");
    let probed = copy.path().join("probed.html");
    std::fs::write(&probed, format!("{}{PROBE}{}", &page[..at], &page[at..])).unwrap();
    let ran = headless(
        &[
            format!("--window-size={width},1000"),
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
        ],
        &file_url(&probed),
    );
    let dom = String::from_utf8_lossy(&ran.stdout);
    let open = "<pre id=\"plexus-probe\">";
    let json = dom
        .find(open)
        .and_then(|i| dom[i + open.len()..].split_once("</pre>"))
        .map(|(json, _)| {
            json.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&nbsp;", "\u{a0}")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| {
            panic!(
                "the probe wrote no result: the page's load event did not run it.\n\
                 DOM ({} bytes), end: {}\nstderr: {}",
                dom.len(),
                tail(&dom, 1000),
                tail(&ran.stderr, 2000)
            )
        });
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe result: {e}: {json}"))
}

/// Takes a PNG screenshot of `url` with a `width` × `height` window into `png`.
pub(crate) fn screenshot(url: &str, png: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(png);
    headless(
        &[
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", png.display()),
        ],
        url,
    );
}

/// A PNG's width and height, from its signature and IHDR chunk.
pub(crate) fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || &png[..8] != SIGNATURE || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// A new empty directory under the temp dir, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "plexus-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
