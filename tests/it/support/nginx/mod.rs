//! Debian's nginx run as a child process in front of a test `Registry`.
//! The shapes of front (their configs are in `conf.rs`):
//!
//! - a **throttle front** (`Nginx::throttle`): a reverse proxy with a
//!   per-request `limit_rate`, i.e. a slow link on which parallel
//!   connections help;
//! - a **redirect front** (`Nginx::redirect`), an S3/CDN imitation: blob
//!   GETs answered 307 to a second server on another host name with a
//!   signed, expiring URL; that server refuses any Authorization;
//! - a **TLS front** (`Nginx::tls`): HTTPS with a certificate of the
//!   test's own CA, proxying to the plain-HTTP registry.
//!
//! nginx runs in the foreground as a single process (`daemon off;
//! master_process off;`) with its pid file, logs and temp paths in a temp
//! dir, on ports picked here (bind 127.0.0.1:0, read, close, start; retried
//! if another process took the port meanwhile), and is killed by PID on
//! drop. Access logs are tab-separated, one request a line, and parsed into
//! `Access` records so tests assert on what the server saw. The fronts'
//! own checks (without pulltar) are in `selftest.rs`.

pub mod conf;

mod selftest;

use crate::support::nginx::conf::main_conf;
pub use crate::support::nginx::conf::{cdn_path, sign_link};
use crate::support::registry::Registry;
use crate::support::util::{poll, require_tool, TempDir};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    pub(crate) child: Child,
    pub(crate) dir: TempDir,
    /// The front: what image references name (`127.0.0.1:PORT`).
    pub port: u16,
    /// The redirect front's blob server (`localhost:PORT`), if any.
    pub cdn_port: Option<u16>,
}

/// One request as an nginx access log recorded it.
#[derive(Clone, Debug)]
pub struct Access {
    /// When the response was finished (Unix seconds, ms resolution).
    pub end: f64,
    /// `$request_time`: from the first request byte read to the last
    /// response byte sent.
    pub secs: f64,
    pub status: u16,
    pub bytes_sent: u64,
    pub method: String,
    pub path: String,
    /// The Range header as sent, if any.
    pub range: Option<String>,
    /// Whether the request carried an Authorization header.
    pub auth: bool,
    /// nginx's connection serial number.
    pub conn: u64,
    pub query: String,
}

impl Access {
    pub fn start(&self) -> f64 {
        self.end - self.secs
    }

    /// `bytes=A-B` → (A, Some(B)); `bytes=A-` → (A, None). Anything else
    /// (several ranges, suffix ranges) fails the test.
    pub fn range_bounds(&self) -> Option<(u64, Option<u64>)> {
        let r = self.range.as_deref()?;
        let spec = r
            .strip_prefix("bytes=")
            .unwrap_or_else(|| panic!("Range not in bytes: {r}"));
        let (a, b) = spec
            .split_once('-')
            .unwrap_or_else(|| panic!("malformed Range {r}"));
        let a = a
            .parse()
            .unwrap_or_else(|_| panic!("Range without a first byte: {r}"));
        let b = if b.is_empty() {
            None
        } else {
            Some(b.parse().unwrap_or_else(|_| panic!("bad Range end: {r}")))
        };
        Some((a, b))
    }

    /// A GET of the blob `digest` (any repository; front or blob server).
    pub fn is_blob_get(&self, digest: &str) -> bool {
        let hex = crate::support::util::hex_of(digest);
        self.method == "GET"
            && (self.path.ends_with(&format!("/blobs/{digest}"))
                || self.path.ends_with(&format!("/s3/sha256/{hex}")))
    }
}

/// The largest number of requests in flight at once. Intervals are shrunk
/// by 5 ms at the end so that a request logged in the same millisecond as
/// the next one starts (keep-alive, one connection) is not an overlap.
pub fn max_in_flight(entries: &[&Access]) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for e in entries {
        let (s, t) = (e.start(), (e.end - 0.005).max(e.start()));
        events.push((s, 1));
        events.push((t, -1));
    }
    // Ends before starts at the same instant.
    events.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// Whether the closed ranges requested cover `[0, size)` entirely.
pub fn ranges_cover(entries: &[&Access], size: u64) -> bool {
    let mut spans: Vec<(u64, u64)> = entries
        .iter()
        .filter_map(|e| e.range_bounds())
        .map(|(a, b)| (a, b.map_or(size, |b| b + 1)))
        .collect();
    spans.sort_unstable();
    let mut covered = 0u64;
    for (a, b) in spans {
        if a > covered {
            return false;
        }
        covered = covered.max(b);
    }
    covered >= size
}

/// A free port on 127.0.0.1 (and on [::1] too when `v6` and the host has
/// IPv6 loopback). Returns the port and whether [::1] should be listened on.
pub(crate) fn pick_port(v6: bool) -> (u16, bool) {
    for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if !v6 {
            return (port, false);
        }
        match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            Ok(_) => return (port, true),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(_) => return (port, false), // no IPv6 loopback here
        }
    }
    panic!("no port free on both 127.0.0.1 and [::1]");
}

impl Nginx {
    /// Writes the config (`servers(dir, front_port, blob_server)` is the
    /// inside of `http {}`), starts nginx and waits until every port
    /// accepts; retried with new ports if one was taken meanwhile.
    pub(crate) fn start(
        tag: &str,
        with_cdn: bool,
        servers: impl Fn(&str, u16, Option<(u16, bool)>) -> String,
    ) -> Nginx {
        let bin = require_tool("nginx", "nginx");
        let dir = TempDir::new(tag);
        for sub in ["tmp", "empty"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.path().display().to_string();
        let conf_path = dir.join("nginx.conf");
        for attempt in 1..=5 {
            let (p1, _) = pick_port(false);
            let cdn = with_cdn.then(|| pick_port(true));
            let conf = main_conf(&d, &servers(&d, p1, cdn));
            std::fs::write(&conf_path, conf).unwrap();
            let _ = std::fs::remove_file(dir.join("error.log"));
            let mut child = Command::new(&bin)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
            let ports: Vec<u16> = std::iter::once(p1).chain(cdn.map(|c| c.0)).collect();
            let ready = poll(200, Duration::from_millis(25), || {
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                let up = ports.iter().all(|p| {
                    TcpStream::connect_timeout(
                        &SocketAddr::from(([127, 0, 0, 1], *p)),
                        Duration::from_millis(200),
                    )
                    .is_ok()
                });
                up.then_some(true)
            });
            if ready == Some(true) {
                return Nginx {
                    child,
                    dir,
                    port: p1,
                    cdn_port: cdn.map(|c| c.0),
                };
            }
            // Our own child, by PID (a no-op if it already exited).
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            // Somebody took a port between our probe and nginx's bind: try
            // other ports. Anything else is a real failure.
            if !(log.contains("Address already in use") && attempt < 5) {
                panic!(
                    "nginx did not come up on {ports:?} (ready: {ready:?}):\n{log}\n\
                     --- config ---\n{}",
                    std::fs::read_to_string(&conf_path).unwrap_or_default()
                );
            }
        }
        unreachable!("the last attempt panics")
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:PORT{path}`, for the TLS front.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The blob server's URL for a path (`http://localhost:P2/...`).
    pub fn cdn_url(&self, path_and_query: &str) -> String {
        format!(
            "http://localhost:{}{path_and_query}",
            self.cdn_port.expect("a redirect front")
        )
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The raw text of access log `name` ("front" or "cdn").
    pub fn access_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Access log `name` parsed, oldest first.
    pub fn access_log(&self, name: &str) -> Vec<Access> {
        let text = self.access_text(name);
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| parse_access(l).unwrap_or_else(|| panic!("bad {name}.log line: {l:?}")))
            .collect()
    }

    /// Access log `name` after the server has logged at least `min`
    /// requests (or 2 s have passed): nginx writes a line when a request is
    /// finalized, which for a client that hung up can lag a little.
    pub fn settled_log(&self, name: &str, min: usize) -> Vec<Access> {
        let _ = poll(40, Duration::from_millis(50), || {
            (self.access_log(name).len() >= min).then_some(())
        });
        std::thread::sleep(Duration::from_millis(100));
        self.access_log(name)
    }

    /// A one-line-per-request rendering of access log `name`, for messages.
    pub fn describe(&self, name: &str) -> String {
        self.access_log(name)
            .iter()
            .map(|a| {
                format!(
                    "{:.3}+{:.3}s {} {} {} range={} auth={} conn={} bytes={}\n",
                    a.start(),
                    a.secs,
                    a.status,
                    a.method,
                    a.path,
                    a.range.as_deref().unwrap_or("-"),
                    a.auth,
                    a.conn,
                    a.bytes_sent
                )
            })
            .collect()
    }
}

fn parse_access(line: &str) -> Option<Access> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 10 {
        return None;
    }
    let opt = |s: &str| (s != "-" && !s.is_empty()).then(|| s.to_string());
    Some(Access {
        end: f[0].parse().ok()?,
        secs: f[1].parse().ok()?,
        status: f[2].parse().ok()?,
        bytes_sent: f[3].parse().ok()?,
        method: f[4].to_string(),
        path: f[5].to_string(),
        range: opt(f[6]),
        auth: f[7] == "yes",
        conn: f[8].parse().ok()?,
        query: if f[9] == "-" {
            String::new()
        } else {
            f[9].to_string()
        },
    })
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Our own child (one process: master_process off), by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The file in the registry's storage that the blob server serves for
/// `digest`.
pub fn blob_file(reg: &Registry, digest: &str) -> PathBuf {
    let hex = crate::support::util::hex_of(digest);
    reg.storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// The GETs of blob `digest` in an access log, oldest first.
pub fn blob_gets<'a>(log: &'a [Access], digest: &str) -> Vec<&'a Access> {
    log.iter().filter(|a| a.is_blob_get(digest)).collect()
}
