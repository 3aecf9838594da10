//! Debian's nginx run as a child process in front of a test `Registry`, in
//! two shapes:
//!
//! - a **throttle front** (`Nginx::throttle`): a reverse proxy with a
//!   per-request `limit_rate`, i.e. a slow link on which parallel
//!   connections help. The limit only works with `proxy_buffering on`, and
//!   `proxy_max_temp_file_size 0` makes nginx read from the registry only as
//!   fast as the client drains. Range passes through (206).
//! - a **redirect front** (`Nginx::redirect`), an S3/CDN imitation: blob
//!   GETs are checked against the registry first (`auth_request`, so an
//!   unauthenticated GET gets the registry's 401 and its WWW-Authenticate),
//!   then answered 307 to a second server on another host name
//!   (`localhost:P2`, vs the front at `127.0.0.1:P1`) with a signed,
//!   expiring URL (`secure_link_md5`). The second server answers 400 to any
//!   request carrying Authorization, as S3 does, 403 to a bad or expired
//!   signature, and otherwise serves the blob file straight from the
//!   registry's storage (nginx static files: Range → 206).
//!
//! nginx runs in the foreground as a single process (`daemon off;
//! master_process off;`) with its pid file, logs and temp paths in a temp
//! dir, on ports picked here (bind 127.0.0.1:0, read, close, start; retried
//! if another process took the port meanwhile), and is killed by PID on
//! drop. Access logs are tab-separated, one request a line, and parsed into
//! `Access` records so tests assert on what the server saw.

use crate::registry::Registry;
use crate::util::{base64, poll, require_tool, TempDir};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The access-log format every server here writes: end time, duration,
/// status, bytes sent, method, path, Range header, whether Authorization was
/// present (never its value), connection serial number, query string.
const LOG_FORMAT: &str = "log_format pt '$msec\\t$request_time\\t$status\\t$bytes_sent\\t\
$request_method\\t$uri\\t$http_range\\t$pt_auth\\t$connection\\t$args';\n\
map $http_authorization $pt_auth { \"\" no; default yes; }\n";

/// The secret shared by the redirect front (which signs) and the blob
/// server (which checks).
const LINK_SECRET: &str = "pulltar-test-link-secret";

pub struct Nginx {
    child: Child,
    dir: TempDir,
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
        let hex = crate::util::hex_of(digest);
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
fn pick_port(v6: bool) -> (u16, bool) {
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The query string nginx's `secure_link_md5 "$secure_link_expires$uri
/// SECRET"` accepts for `path` until `expires` (Unix seconds).
pub fn sign_link(path: &str, expires: u64) -> String {
    let input = format!("{expires}{path} {LINK_SECRET}");
    // Not `run_with_input`: that decodes stdout as UTF-8, and md5 is binary.
    let bin = Command::new(require_tool("openssl", "openssl"))
        .args(["dgst", "-md5", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(c.stdin.as_mut().unwrap(), input.as_bytes())?;
            drop(c.stdin.take());
            c.wait_with_output()
        })
        .expect("openssl dgst -md5");
    assert!(bin.status.success(), "openssl dgst -md5 failed: {bin:?}");
    assert_eq!(bin.stdout.len(), 16, "md5 is 16 bytes");
    format!("md5={}&expires={expires}", base64(&bin.stdout, true))
}

/// The blob server's path for `digest`.
pub fn cdn_path(digest: &str) -> String {
    format!("/s3/sha256/{}", crate::util::hex_of(digest))
}

impl Nginx {
    /// The throttle front: everything proxied to `reg` with `limit_rate
    /// RATE` per request (e.g. "2m", "256k"; `None` = unlimited), access log
    /// `front`.
    pub fn throttle(reg: &Registry, rate: Option<&str>) -> Nginx {
        Nginx::throttle_varied(reg, &[rate.unwrap_or("0")])
    }

    /// A throttle front whose rate differs from request to request: each
    /// request gets one of `rates` at random (by the last hex digit of
    /// `$request_id`), so parallel downloads of equal blobs drift apart
    /// instead of finishing in lock-step.
    pub fn throttle_varied(reg: &Registry, rates: &[&str]) -> Nginx {
        assert!(
            !rates.is_empty() && 16 % rates.len() == 0,
            "1, 2, 4, 8 or 16 rates"
        );
        let map: String = (0..16)
            .map(|i| format!("  ~{:x}$ {};\n", i, rates[i % rates.len()]))
            .collect();
        let reg_port = reg.port;
        Nginx::start("thr", false, move |dir, p1, _| {
            format!(
                "map $request_id $pt_rate {{\n{map}}}\n\
                 server {{\n\
                 \x20 listen 127.0.0.1:{p1};\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location / {{\n{proxy}\
                 \x20   limit_rate $pt_rate;\n\
                 \x20 }}\n\
                 }}\n",
                proxy = proxy_to(reg_port),
            )
        })
    }

    /// The redirect front for `reg` (access logs `front` and `cdn`). `blobs`
    /// are the digests to hand out signed links for (valid `link_ttl`
    /// seconds from now); GETs of other blobs get 404. Manifests and
    /// everything else are proxied to the registry.
    ///
    /// Debian's nginx package has no module that can compute an MD5 (njs
    /// and perl are separate packages), so the links are signed here, when
    /// nginx starts, and put in a `map` from request path to signed URL;
    /// the blob server checks them with the stock `secure_link` module.
    pub fn redirect(reg: &Registry, blobs: &[String], link_ttl: u64) -> Nginx {
        let reg_port = reg.port;
        let storage = reg.storage_dir();
        let expires = unix_now() + link_ttl;
        let links: Vec<(String, String)> = blobs
            .iter()
            .map(|d| {
                let path = cdn_path(d);
                let q = sign_link(&path, expires);
                (crate::util::hex_of(d).to_string(), format!("{path}?{q}"))
            })
            .collect();
        Nginx::start("redir", true, move |dir, p1, cdn| {
            let (p2, v6) = cdn.expect("blob server port");
            let map: String = links
                .iter()
                .map(|(hex, link)| format!("  \"~/blobs/sha256:{hex}$\" \"{link}\";\n"))
                .collect();
            let v6_listen = if v6 {
                format!("  listen [::1]:{p2};\n")
            } else {
                String::new()
            };
            let blob_dir = format!("{}/docker/registry/v2/blobs/sha256", storage.display());
            format!(
                "map $uri $pt_link {{\n  default \"\";\n{map}}}\n\
                 server {{\n\
                 \x20 listen 127.0.0.1:{p1};\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location ~ \"^/v2/.+/blobs/sha256:[0-9a-f]{{64}}$\" {{\n\
                 \x20   # Credentials first: the registry's own answer to HEAD.\n\
                 \x20   auth_request /_pt_auth;\n\
                 \x20   auth_request_set $pt_challenge $upstream_http_www_authenticate;\n\
                 \x20   add_header WWW-Authenticate $pt_challenge always;\n\
                 \x20   # try_files runs after the access phase; `return` here\n\
                 \x20   # would run before auth_request.\n\
                 \x20   root {dir}/empty;\n\
                 \x20   try_files /.none @pt_redirect;\n\
                 \x20 }}\n\
                 \x20 location @pt_redirect {{\n\
                 \x20   if ($pt_link = \"\") {{ return 404 '{{\"errors\":[{{\"code\":\"BLOB_UNKNOWN\"}}]}}'; }}\n\
                 \x20   return 307 http://localhost:{p2}$pt_link;\n\
                 \x20 }}\n\
                 \x20 location = /_pt_auth {{\n\
                 \x20   internal;\n\
                 \x20   proxy_pass http://127.0.0.1:{reg_port}$request_uri;\n\
                 \x20   proxy_method HEAD;\n\
                 \x20   proxy_pass_request_body off;\n\
                 \x20   proxy_set_header Content-Length \"\";\n\
                 \x20   proxy_set_header Host $http_host;\n\
                 \x20 }}\n\
                 \x20 location / {{\n{proxy}\
                 \x20 }}\n\
                 }}\n\
                 server {{\n\
                 \x20 listen 127.0.0.1:{p2};\n{v6_listen}\
                 \x20 server_name localhost;\n\
                 \x20 access_log {dir}/cdn.log pt;\n\
                 \x20 location ~ \"^/s3/sha256/(?<pt_a>[0-9a-f]{{2}})(?<pt_b>[0-9a-f]{{62}})$\" {{\n\
                 \x20   if ($http_authorization != \"\") {{\n\
                 \x20     return 400 '<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>';\n\
                 \x20   }}\n\
                 \x20   secure_link $arg_md5,$arg_expires;\n\
                 \x20   secure_link_md5 \"$secure_link_expires$uri {LINK_SECRET}\";\n\
                 \x20   if ($secure_link = \"\") {{ return 403 'bad signature'; }}\n\
                 \x20   if ($secure_link = \"0\") {{ return 403 'link expired'; }}\n\
                 \x20   alias {blob_dir}/$pt_a/$pt_a$pt_b/data;\n\
                 \x20 }}\n\
                 \x20 location / {{ return 404; }}\n\
                 }}\n",
                proxy = proxy_to(reg_port),
            )
        })
    }

    /// Writes the config (`servers(dir, front_port, blob_server)` is the
    /// inside of `http {}`), starts nginx and waits until every port
    /// accepts; retried with new ports if one was taken meanwhile.
    fn start(
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
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\n\
                 pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n\
                 default_type application/octet-stream;\n\
                 server_tokens off;\n\
                 client_body_temp_path {d}/tmp/body;\nproxy_temp_path {d}/tmp/proxy;\n\
                 fastcgi_temp_path {d}/tmp/fcgi;\nuwsgi_temp_path {d}/tmp/uwsgi;\n\
                 scgi_temp_path {d}/tmp/scgi;\n\
                 access_log off;\n{LOG_FORMAT}\
                 keepalive_timeout 120s;\nkeepalive_requests 10000;\n\
                 client_max_body_size 0;\nsend_timeout 300s;\n\
                 {}\n}}\n",
                servers(&d, p1, cdn)
            );
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

/// A `location` body proxying to the registry on `port`, buffered so that
/// `limit_rate` applies, reading upstream only as fast as the client drains.
fn proxy_to(port: u16) -> String {
    format!(
        "\x20   proxy_pass http://127.0.0.1:{port};\n\
         \x20   proxy_http_version 1.1;\n\
         \x20   proxy_set_header Host $http_host;\n\
         \x20   proxy_buffering on;\n\
         \x20   proxy_max_temp_file_size 0;\n\
         \x20   proxy_request_buffering off;\n\
         \x20   proxy_read_timeout 300s;\n\
         \x20   proxy_send_timeout 300s;\n"
    )
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
    let hex = crate::util::hex_of(digest);
    reg.storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[cfg(test)]
mod selftest {
    //! The fronts themselves, without pulltar: if these pass and a pull
    //! test fails, the fault is not in nginx's configuration.

    use super::*;
    use crate::registry::agent;
    use crate::token::TokenServer;
    use crate::util::{digest_of, Rng};
    use std::time::Instant;

    fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut req = agent().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let hdrs = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        (status, hdrs, body)
    }

    fn header<'a>(hdrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        hdrs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn throttle_front_limits_rate_and_passes_range() {
        let reg = Registry::start();
        let data = Rng::new().bytes(2 << 20);
        let digest = reg.push_blob("t/blob", &data);
        let front = Nginx::throttle(&reg, Some("1m"));
        let url = front.url(&format!("/v2/t/blob/blobs/{digest}"));

        let t0 = Instant::now();
        let (status, _, body) = get(&url, &[]);
        let took = t0.elapsed();
        assert_eq!(status, 200);
        assert!(body == data, "full body differs");
        assert!(
            took >= Duration::from_millis(1500),
            "2 MiB at limit_rate 1m took only {took:?}: the throttle is not applied"
        );

        let (status, hdrs, body) = get(&url, &[("Range", "bytes=100-1123")]);
        assert_eq!(status, 206, "Range must pass through");
        assert_eq!(
            header(&hdrs, "content-range"),
            Some(format!("bytes 100-1123/{}", data.len()).as_str())
        );
        assert!(body == data[100..1124], "ranged body differs");

        // Two 1 MiB halves on two connections at once: ~1 s, overlapping.
        let t0 = Instant::now();
        let halves: Vec<_> = ["bytes=0-1048575", "bytes=1048576-2097151"]
            .into_iter()
            .map(|r| {
                let url = url.clone();
                std::thread::spawn(move || get(&url, &[("Range", r)]))
            })
            .collect();
        for h in halves {
            assert_eq!(h.join().unwrap().0, 206);
        }
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(1900),
            "two parallel halves took {took:?}: is the limit per connection?"
        );

        let log = front.settled_log("front", 4);
        let gets: Vec<&Access> = log.iter().filter(|a| a.is_blob_get(&digest)).collect();
        assert_eq!(gets.len(), 4, "{}", front.describe("front"));
        assert_eq!(gets[0].range, None);
        assert_eq!(gets[1].range_bounds(), Some((100, Some(1123))));
        assert!(gets[0].secs >= 1.5, "request_time logged: {:?}", gets[0]);
        assert_eq!(max_in_flight(&gets[..2]), 1, "sequential requests");
        assert_eq!(max_in_flight(&gets[2..]), 2, "parallel requests");
        assert!(ranges_cover(&gets[2..], data.len() as u64));
        assert!(!ranges_cover(&gets[1..2], data.len() as u64));
    }

    #[test]
    fn redirect_front_checks_credentials_signs_links_and_refuses_authorization() {
        let tokens = TokenServer::start();
        let reg = Registry::start_with(
            Some(tokens.registry_auth()),
            Some(tokens.issuer.push_auth()),
        );
        let data = Rng::new().bytes(300 * 1024);
        let digest = reg.push_blob("public/app", &data);
        assert_eq!(digest, digest_of(&data));
        assert!(
            blob_file(&reg, &digest).is_file(),
            "registry storage layout"
        );
        let front = Nginx::redirect(&reg, std::slice::from_ref(&digest), 600);
        let blob_url = front.url(&format!("/v2/public/app/blobs/{digest}"));

        // No credentials: the registry's 401 and its challenge, no redirect.
        let (status, hdrs, _) = get(&blob_url, &[]);
        assert_eq!(status, 401, "{}", front.describe("front"));
        let challenge = header(&hdrs, "www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with(&format!(
                "Bearer realm=\"http://127.0.0.1:{}/token\"",
                tokens.port
            )),
            "challenge passed through: {challenge:?}"
        );
        // Everything else is the registry's own answer.
        assert_eq!(get(&front.url("/v2/"), &[]).0, 401);

        let token_url = format!(
            "http://127.0.0.1:{}/token?service=x&scope=repository:public/app:pull",
            tokens.port
        );
        let (_, _, body) = get(&token_url, &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let bearer = format!("Bearer {}", v["token"].as_str().unwrap());

        let (status, hdrs, _) = get(&blob_url, &[("Authorization", &bearer)]);
        assert_eq!(status, 307, "{}", front.error_log());
        let location = header(&hdrs, "location").unwrap().to_string();
        let want = front.cdn_url(&format!("{}?md5=", cdn_path(&digest)));
        assert!(location.starts_with(&want), "{location}");

        // S3: a second auth mechanism is refused.
        let (status, _, body) = get(
            &location,
            &[("Authorization", &bearer), ("Range", "bytes=0-9")],
        );
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("Only one auth mechanism allowed"));
        let (status, _, body) = get(&location, &[("Range", "bytes=10-19")]);
        assert_eq!(status, 206);
        assert!(body == data[10..20]);
        let (status, _, body) = get(&location, &[]);
        assert_eq!(status, 200);
        assert!(body == data);

        let path = cdn_path(&digest);
        let tampered = location.replace("md5=", "md5=x");
        assert_eq!(get(&tampered, &[]).0, 403, "bad signature");
        let expired = front.cdn_url(&format!("{path}?{}", sign_link(&path, unix_now() - 5)));
        assert_eq!(get(&expired, &[]).0, 403, "expired link");
        let fresh = front.cdn_url(&format!("{path}?{}", sign_link(&path, unix_now() + 60)));
        assert_eq!(get(&fresh, &[]).0, 200, "a freshly signed link");

        let cdn = front.settled_log("cdn", 6);
        let summary: Vec<(u16, bool, Option<String>)> = cdn
            .iter()
            .map(|a| (a.status, a.auth, a.range.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (400, true, Some("bytes=0-9".into())),
                (206, false, Some("bytes=10-19".into())),
                (200, false, None),
                (403, false, None),
                (403, false, None),
                (200, false, None),
            ],
            "{}",
            front.describe("cdn")
        );
        assert!(
            !front
                .access_text("cdn")
                .contains(bearer.trim_start_matches("Bearer ")),
            "the access log must not hold the token"
        );
    }
}
