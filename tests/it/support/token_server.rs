//! A Docker-Hub-style token server for the registry's `auth: token:`
//! config: std TcpListener on 127.0.0.1, one thread, stopped on drop.
//! `GET /token?service=S&scope=repository:NAME:ACTIONS` answers
//! `{token, access_token, expires_in, issued_at}` with a JWT signed RS256
//! by a throwaway key made with the `openssl` CLI (header `x5c` = the
//! self-signed cert that is also the registry's `rootcertbundle`).
//! Repositories under `public/` get anonymous pull; anything else needs
//! Basic `tester:s3cret`. `POST /token` (form: `grant_type=refresh_token`,
//! `refresh_token`, `service`, `scope`) is the OAuth2 flow that docker uses
//! with an identity token; it accepts `REFRESH_TOKEN` only.

use crate::support::registry::{PushAuth, TokenAuth};
use crate::support::util::{base64, base64_decode, require_tool, run, Rng, TempDir};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SERVICE: &str = "pulltar-test-registry";
pub const ISSUER: &str = "pulltar-test-issuer";
pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret";
/// The OAuth2 refresh token ("identity token") that `POST /token` with
/// `grant_type=refresh_token` accepts, standing for `USER`.
pub const REFRESH_TOKEN: &str = "pt-refresh-Zq81vXk2";

/// Signs tokens with the key in its temp dir.
pub struct Issuer {
    dir: TempDir,
    x5c: String,
    seq: AtomicU64,
    /// Token lifetime in seconds; 0 = the default (`exp` = now + 300).
    lifetime: AtomicU64,
}

impl Issuer {
    pub fn new() -> Issuer {
        let openssl = require_tool("openssl", "openssl");
        let dir = TempDir::new("tok");
        run(
            Command::new(&openssl)
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=pulltar-test-token",
                ])
                .arg("-keyout")
                .arg(dir.join("key.pem"))
                .arg("-out")
                .arg(dir.join("cert.pem")),
            Duration::from_secs(60),
        )
        .ok("openssl req");
        let pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64_decode(&b64);
        Issuer {
            x5c: base64(&der, false),
            dir,
            seq: AtomicU64::new(0),
            lifetime: AtomicU64::new(0),
        }
    }

    /// Short-lived tokens from now on: `expires_in` = `secs`, and the JWT
    /// `exp` = iat + 1 + secs - 60, because the registry accepts a token
    /// until `exp` + 60 s (a fixed leeway), and iat is whole seconds rounded
    /// down (the + 1 keeps the registry from refusing a token before
    /// `expires_in` says). So the registry really refuses a token `secs` to
    /// `secs + 1` seconds after issue (401 invalid_token).
    pub fn set_lifetime(&self, secs: u64) {
        self.lifetime.store(secs, Ordering::SeqCst);
    }

    /// `expires_in` as the token server reports it.
    pub fn expires_in(&self) -> u64 {
        match self.lifetime.load(Ordering::SeqCst) {
            0 => 300,
            l => l,
        }
    }

    /// The JWT `exp` for a token issued at `now`.
    fn exp_at(&self, now: u64) -> u64 {
        match self.lifetime.load(Ordering::SeqCst) {
            0 => now + 300,
            l => now + 1 + l - 60,
        }
    }

    pub fn cert_pem(&self) -> std::path::PathBuf {
        self.dir.join("cert.pem")
    }

    /// A JWT granting `access` = [(repository, actions)] to `subject`.
    pub fn mint(&self, subject: &str, access: &[(String, Vec<String>)]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]});
        let access: Vec<_> = access
            .iter()
            .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let claims = json!({"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": self.exp_at(now), "nbf": now - 10,
            "iat": now, "jti": format!("{}-{n}", Rng::new().token(12)), "access": access});
        let input = format!(
            "{}.{}",
            base64(&serde_json::to_vec(&header).unwrap(), true),
            base64(&serde_json::to_vec(&claims).unwrap(), true)
        );
        let (inp, sig) = (
            self.dir.join(&format!("in-{n}")),
            self.dir.join(&format!("sig-{n}")),
        );
        std::fs::write(&inp, &input).unwrap();
        run(
            Command::new(require_tool("openssl", "openssl"))
                .args(["dgst", "-sha256", "-sign"])
                .arg(self.dir.join("key.pem"))
                .arg("-out")
                .arg(&sig)
                .arg(&inp),
            Duration::from_secs(30),
        )
        .ok("openssl dgst -sign");
        let signature = std::fs::read(&sig).unwrap();
        format!("{input}.{}", base64(&signature, true))
    }

    /// Push credentials for the registry helper: pull+push+delete on the repo.
    pub fn push_auth(self: &Arc<Self>) -> PushAuth {
        let me = Arc::clone(self);
        Arc::new(move |repo: &str| {
            let all = vec!["pull".into(), "push".into(), "delete".into()];
            format!("Bearer {}", me.mint("pusher", &[(repo.to_string(), all)]))
        })
    }
}

pub struct TokenServer {
    pub port: u16,
    pub issuer: Arc<Issuer>,
    /// Every request line seen, with ` auth=basic` when credentials came.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Every token handed out over HTTP (to check none is logged).
    pub issued: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    pub fn start() -> TokenServer {
        let issuer = Arc::new(Issuer::new());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(Mutex::new(Vec::new()));
        let (iss, st) = (Arc::clone(&issuer), Arc::clone(&stop));
        let logs = (Arc::clone(&requests), Arc::clone(&issued));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(900);
            while !st.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &iss, &logs.0, &logs.1),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TokenServer {
            port,
            issuer,
            requests,
            issued,
            stop,
            thread: Some(thread),
        }
    }

    /// How many tokens this server has handed out so far.
    pub fn issued_count(&self) -> usize {
        self.issued.lock().unwrap().len()
    }

    /// The registry-side config for this server.
    pub fn registry_auth(&self) -> TokenAuth {
        TokenAuth {
            realm: format!("http://127.0.0.1:{}/token", self.port),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            cert_pem: self.issuer.cert_pem(),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(
    mut stream: TcpStream,
    issuer: &Issuer,
    log: &Mutex<Vec<String>>,
    issued: &Mutex<Vec<String>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let mut body = buf.split_off(head_len.unwrap_or(buf.len()));
    let text = String::from_utf8_lossy(&buf).into_owned();
    let length = text
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(64 * 1024);
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let form = String::from_utf8_lossy(&body).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_string();
    let basic = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| {
            v.trim()
                .strip_prefix("Basic ")
                .map(|b| String::from_utf8_lossy(&base64_decode(b.trim())).into_owned())
        });
    let post = request_line.starts_with("POST ");
    let field = |name: &str| {
        form.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    };
    let grant = if post {
        format!(" grant={}", field("grant_type").unwrap_or_default())
    } else {
        String::new()
    };
    log.lock().unwrap().push(format!(
        "{request_line}{grant}{}",
        if basic.is_some() { " auth=basic" } else { "" }
    ));
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // A POST carries its scope(s) in the form, a GET in the query.
    let query = if post { form.as_str() } else { query };
    if path != "/token" {
        return respond(
            &mut stream,
            "404 Not Found",
            "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}",
        );
    }
    let authenticated = match &basic {
        _ if post => {
            let ok = field("grant_type").as_deref() == Some("refresh_token")
                && field("refresh_token").as_deref() == Some(REFRESH_TOKEN);
            if !ok {
                return respond(
                    &mut stream,
                    "401 Unauthorized",
                    "{\"error\":\"invalid_grant\"}",
                );
            }
            true
        }
        None => false,
        Some(cred) if cred == &format!("{USER}:{PASSWORD}") => true,
        Some(_) => {
            return respond(
                &mut stream,
                "401 Unauthorized",
                "{\"details\":\"incorrect username or password\"}",
            )
        }
    };
    let mut access = Vec::new();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "scope" {
            continue;
        }
        let scope = percent_decode(v);
        let mut parts = scope.splitn(2, ':');
        let (kind, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        if kind != "repository" {
            continue;
        }
        let granted: Vec<String> = actions
            .split(',')
            .filter(|a| authenticated || (name.starts_with("public/") && *a == "pull"))
            .map(str::to_string)
            .collect();
        access.push((name.to_string(), granted));
    }
    let subject = if authenticated { USER } else { "" };
    let token = issuer.mint(subject, &access);
    issued.lock().unwrap().push(token.clone());
    // The OAuth2 answer (POST) has `access_token` only, as docker's has.
    let body = if post {
        json!({"access_token": token, "expires_in": issuer.expires_in(), "issued_at": rfc3339_now(), "scope": field("scope")})
    } else {
        json!({"token": token, "access_token": token, "expires_in": issuer.expires_in(), "issued_at": rfc3339_now()})
    };
    respond(&mut stream, "200 OK", &body.to_string());
}

/// Current UTC time as RFC 3339 (civil-from-days, no chrono).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
