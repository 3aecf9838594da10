//! The nginx configurations of the fronts in `mod.rs`: the main file
//! (foreground, one process, everything under the temp dir) and the
//! `server` blocks of each shape of front.
//!
//! - throttle: `limit_rate` only works with `proxy_buffering on`, and
//!   `proxy_max_temp_file_size 0` makes nginx read from the registry only
//!   as fast as the client drains. Range passes through (206).
//! - redirect: blob GETs are checked against the registry first
//!   (`auth_request`, so an unauthenticated GET gets the registry's 401 and
//!   its WWW-Authenticate), then answered 307 to a second server on another
//!   host name (`localhost:P2`, vs the front at `127.0.0.1:P1`) with a
//!   signed, expiring URL (`secure_link_md5`). The second server answers
//!   400 to any request carrying Authorization, as S3 does, 403 to a bad or
//!   expired signature, and otherwise serves the blob file straight from
//!   the registry's storage (nginx static files: Range → 206).
//! - tls: `listen 127.0.0.1:P ssl` with a certificate and key made by the
//!   test (see `support/tls_front.rs`), everything proxied to the registry.
//! - rationed: a public mirror's rations per client: `limit_conn`
//!   (requests in progress) and/or `limit_req` (requests a minute, a burst
//!   served at once: `nodelay`), both answering 429 without Retry-After,
//!   on top of a throttle's `limit_rate`.

use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::util::{base64, require_tool};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The access-log format every server here writes: end time, duration,
/// status, bytes sent, method, path, Range header, whether Authorization was
/// present (never its value), connection serial number, query string.
pub(crate) const LOG_FORMAT: &str =
    "log_format pt '$msec\\t$request_time\\t$status\\t$bytes_sent\\t\
$request_method\\t$uri\\t$http_range\\t$pt_auth\\t$connection\\t$args';\n\
map $http_authorization $pt_auth { \"\" no; default yes; }\n";

/// The secret shared by the redirect front (which signs) and the blob
/// server (which checks).
const LINK_SECRET: &str = "pulltar-test-link-secret";

pub(crate) fn unix_now() -> u64 {
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
    format!("/s3/sha256/{}", crate::support::util::hex_of(digest))
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
                (
                    crate::support::util::hex_of(d).to_string(),
                    format!("{path}?{q}"),
                )
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
}

impl Nginx {
    /// The TLS front: `listen 127.0.0.1:P ssl` with the PEM `cert` (the
    /// leaf, or leaf + chain) and `key`, everything proxied to `reg`
    /// unthrottled, access log `front`. The URL is `https_url`.
    pub fn tls(reg: &Registry, cert: &Path, key: &Path) -> Nginx {
        let reg_port = reg.port;
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Nginx::start("tls", false, move |dir, p1, _| {
            format!(
                "server {{\n\
                 \x20 listen 127.0.0.1:{p1} ssl;\n\
                 \x20 ssl_certificate {cert};\n\
                 \x20 ssl_certificate_key {key};\n\
                 \x20 ssl_protocols TLSv1.2 TLSv1.3;\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location / {{\n{proxy}\
                 \x20   proxy_set_header X-Forwarded-Proto https;\n\
                 \x20 }}\n\
                 }}\n",
                proxy = proxy_to(reg_port),
            )
        })
    }
}

/// What a rationed front allows its client (see `Nginx::rationed`).
pub struct Rations {
    /// Requests in progress at once (`limit_conn`).
    pub conns: Option<u32>,
    /// Requests a minute and the burst served at once (`limit_req`).
    pub per_minute: Option<(u32, u32)>,
    /// `limit_rate` per request, e.g. "2m".
    pub rate: &'static str,
}

impl Nginx {
    /// A mirror that rations its client (one client: 127.0.0.1): beyond
    /// `rations`, 429 at once, without Retry-After; everything proxied to
    /// `reg` as by the throttle front. Access log `front`.
    pub fn rationed(reg: &Registry, rations: &Rations) -> Nginx {
        let reg_port = reg.port;
        let mut zones = String::new();
        let mut limits = format!("\x20   limit_rate {};\n", rations.rate);
        if let Some(n) = rations.conns {
            zones += "limit_conn_zone $binary_remote_addr zone=pt_conn:1m;\n";
            limits += &format!("\x20   limit_conn pt_conn {n};\n\x20   limit_conn_status 429;\n");
        }
        if let Some((per_minute, burst)) = rations.per_minute {
            zones += &format!(
                "limit_req_zone $binary_remote_addr zone=pt_req:1m rate={per_minute}r/m;\n"
            );
            limits += &format!(
                "\x20   limit_req zone=pt_req burst={burst} nodelay;\n\x20   limit_req_status 429;\n"
            );
        }
        Nginx::start("ration", false, move |dir, p1, _| {
            format!(
                "{zones}\
                 server {{\n\
                 \x20 listen 127.0.0.1:{p1};\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location / {{\n{proxy}{limits}\
                 \x20 }}\n\
                 }}\n",
                proxy = proxy_to(reg_port),
            )
        })
    }
}

impl Nginx {
    /// A front that refuses request bodies over `max` (`1m`) with 413, as
    /// corporate proxies and CDNs do (`client_max_body_size`, with the body
    /// buffered before it goes on), proxying everything else to `reg`.
    /// Access log `front`.
    pub fn capped(reg: &Registry, max: &str) -> Nginx {
        let reg_port = reg.port;
        let max = max.to_string();
        Nginx::start("cap", false, move |dir, p1, _| {
            format!(
                "server {{\n\
                 \x20 listen 127.0.0.1:{p1};\n\
                 \x20 client_max_body_size {max};\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location / {{\n{proxy}\
                 \x20 }}\n\
                 }}\n",
                proxy = proxy_to(reg_port)
                    .replace("proxy_request_buffering off", "proxy_request_buffering on"),
            )
        })
    }

    /// A front that answers `GET /v2/` with 200 itself, as if the registry
    /// were anonymous, and proxies everything else to `reg`, so that the
    /// first authenticated request is the one that meets the challenge.
    /// Access log `front`.
    pub fn anonymous_ping(reg: &Registry) -> Nginx {
        let reg_port = reg.port;
        Nginx::start("ping", false, move |dir, p1, _| {
            format!(
                "server {{\n\
                 \x20 listen 127.0.0.1:{p1};\n\
                 \x20 access_log {dir}/front.log pt;\n\
                 \x20 location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}\n\
                 \x20 location / {{\n{proxy}\
                 \x20 }}\n\
                 }}\n",
                proxy = proxy_to(reg_port),
            )
        })
    }
}

/// The whole nginx.conf for a server in dir `d` whose `http {}` holds
/// `servers`.
pub(crate) fn main_conf(d: &str, servers: &str) -> String {
    format!(
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
         {servers}\n}}\n"
    )
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
