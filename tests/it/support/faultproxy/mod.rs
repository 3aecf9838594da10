//! A scripted fault-injecting HTTP/1.1 proxy between pulltar and the real
//! registry, in the style of cargo-test-support's test server (std
//! `TcpListener` on 127.0.0.1:0, a thread per connection, `Connection:
//! close` everywhere, stopped on Drop) with regclient-style scripted rules:
//! each `Rule` matches a path substring (optionally only requests with or
//! without `Range`, or of one method) and injects one `Fault`, every time
//! or `times(n)`. A request with `Expect: 100-continue` gets the `100
//! Continue` from the proxy itself, as nginx sends it.
//! A rule is used up only at the moment its fault fires (a cut needs a
//! body longer than the cut point, a bad Content-Range needs a 206), so a
//! test can count on "n faults happened". Every request is logged as a
//! `Record`, updated while its body streams, so tests can watch progress
//! live. The HTTP handling is in `conn.rs` and `http.rs` (the relay of a
//! request body upstream, paced or cut, is here), the proxy's own tests
//! against the real registry in `selftest.rs`.

mod conn;
mod http;

mod selftest;

use conn::handle;
pub use http::{header, read_head};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_CONNS: usize = 64;
const MAX_HEAD: usize = 64 * 1024;
const MAX_STALL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub enum Fault {
    /// Relay the head and this many body bytes, then close the socket.
    CutAfter(u64),
    /// Drop the client's Range header upstream: a 200 with the whole body.
    IgnoreRange,
    /// Relay a 206 whose Content-Range is shifted by one byte.
    BadContentRange,
    /// Answer this status and these headers without contacting upstream.
    Status(u16, Vec<(String, String)>),
    /// Relay this many body bytes, send nothing for the duration, close.
    StallAfter(u64, Duration),
    /// Answer this status, headers and body without contacting upstream
    /// (Content-Length is set from the body).
    Respond(u16, Vec<(String, String)>, Vec<u8>),
    /// Relay, with this response header set (replaced if present).
    SetHeader(String, String),
    /// Relay the body without its Content-Length (ended by closing the
    /// connection) and send these bytes after it.
    Append(Vec<u8>),
    /// Relay the body at this many bytes per second.
    Rate(u64),
    /// Relay the request's body upstream at this many bytes per second (a
    /// slow uplink, for pushes).
    SlowUpload(u64),
    /// Relay the request head and this many bytes of its body upstream,
    /// then close both sides without an answer (a reset mid-upload).
    /// Fires only on a body longer than that.
    CutUpload(u64),
    /// Relay a 200 or 206 with the body byte at this offset (of this
    /// response's body) inverted: one corrupt response, as from a bad
    /// proxy or CDN edge. Fires only if the body reaches the offset.
    FlipByte(u64),
    /// Drop any Range upstream: a 200 and the whole body, whatever the
    /// request asked for. Unlike `IgnoreRange`, fires on every GET, so
    /// `times(n)` is "the first n GETs".
    WholeBody,
    /// Hang up without an answer, right after reading the request head.
    Hangup,
}

/// A host's ration for its one client (every request through the proxy):
/// beyond it, an immediate 429 without `Retry-After`, as nginx's
/// `limit_conn` and `limit_req ... nodelay` answer with status 429.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ration {
    /// At most this many requests in progress at once.
    pub conns: Option<usize>,
    /// At most this many requests a minute, with this burst on top.
    pub per_minute: Option<(u32, u32)>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    path: String,
    range: Option<bool>,
    method: Option<String>,
    fault: Fault,
    left: Option<u32>,
    /// Matching requests let through untouched before the rule applies.
    skip: u32,
}

impl Rule {
    /// Applies `fault` to every request whose path contains `path`.
    pub fn new(path: &str, fault: Fault) -> Rule {
        let (path, range, left) = (path.to_string(), None, None);
        Rule {
            path,
            range,
            method: None,
            fault,
            left,
            skip: 0,
        }
    }
    /// Lets the first `n` matching requests through untouched.
    pub fn after(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }
    /// Only requests of this method (`PUT`, `PATCH`, …).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_string());
        self
    }
    /// Only the first `n` times the fault fires.
    pub fn times(mut self, n: u32) -> Rule {
        self.left = Some(n);
        self
    }
    /// Only requests that carry a Range header.
    pub fn ranged(mut self) -> Rule {
        self.range = Some(true);
        self
    }
    /// Only requests without a Range header.
    pub fn unranged(mut self) -> Rule {
        self.range = Some(false);
        self
    }
}

/// One request as the proxy saw and answered it.
#[derive(Clone, Debug)]
pub struct Record {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub auth: bool,
    /// Status sent to the client (0 if none was sent).
    pub status: u16,
    pub content_range: Option<String>,
    /// Body bytes written to the client so far.
    pub body_bytes: u64,
    /// Request body bytes relayed upstream so far.
    pub body_in: u64,
    /// The fault that actually fired on this request.
    pub fault: Option<&'static str>,
    /// The exchange ended early: the client hung up (seen during a stall
    /// or as a failed write), or the upstream side failed.
    pub client_gone: bool,
    pub start: Instant,
    pub end: Option<Instant>,
}

struct Shared {
    upstream: u16,
    port: u16,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Record>>,
    rate: AtomicU64,
    stop: AtomicBool,
    open: Mutex<Vec<(u64, TcpStream)>>,
    ration: Mutex<Rationing>,
}

/// The ration and its state: requests in progress, and the request
/// bucket (tokens, when last refilled).
#[derive(Default)]
struct Rationing {
    ration: Ration,
    in_progress: usize,
    tokens: f64,
    refilled: Option<Instant>,
}

impl Rationing {
    /// Admits one request (counting it in progress) or says which ration
    /// refuses it.
    fn admit(&mut self) -> Result<(), &'static str> {
        if let Some((per_minute, burst)) = self.ration.per_minute {
            let now = Instant::now();
            let cap = f64::from(burst) + 1.0;
            let last = self.refilled.unwrap_or(now);
            let gained = now.duration_since(last).as_secs_f64() * f64::from(per_minute) / 60.0;
            self.tokens = if self.refilled.is_none() {
                cap
            } else {
                (self.tokens + gained).min(cap)
            };
            self.refilled = Some(now);
        }
        if self.ration.conns.is_some_and(|c| self.in_progress >= c) {
            return Err("conn-ration");
        }
        if self.ration.per_minute.is_some() {
            if self.tokens < 1.0 {
                return Err("req-ration");
            }
            self.tokens -= 1.0;
        }
        self.in_progress += 1;
        Ok(())
    }
}

pub struct FaultProxy {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1:0 forwarding to the registry at 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let shared = Arc::new(Shared {
            upstream,
            port: listener.local_addr().unwrap().port(),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            rate: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            ration: Mutex::new(Rationing::default()),
        });
        let sh = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(&sh, listener));
        FaultProxy {
            shared,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `127.0.0.1:PORT`, to use as the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.shared.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    pub fn add(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// How often each rule may still fire (None: always).
    pub fn rules_left(&self) -> Vec<Option<u32>> {
        self.shared
            .rules
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.left)
            .collect()
    }

    /// Paces every connection's body to `bytes_per_sec` (0 = unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.shared.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Rations the client from now on (the request bucket starts full).
    pub fn set_ration(&self, ration: Ration) {
        let mut r = self.shared.ration.lock().unwrap();
        (r.ration, r.tokens, r.refilled) = (ration, 0.0, None);
    }

    /// No more faults: every rule, the ration and the pacing removed (the
    /// log stays).
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
        self.set_ration(Ration::default());
        self.set_rate(0);
    }

    /// How many requests the log holds (to look at only later ones).
    pub fn log_len(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// Every request so far (in-flight ones with `end: None`).
    pub fn requests(&self) -> Vec<Record> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Record> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(path))
            .collect()
    }

    /// The log once every request has ended (waits up to 10 s for the
    /// proxy's threads to notice a client that went away).
    pub fn settled(&self) -> Vec<Record> {
        let done = crate::support::util::poll(200, Duration::from_millis(50), || {
            let log = self.requests();
            log.iter().all(|r| r.end.is_some()).then_some(log)
        });
        done.unwrap_or_else(|| panic!("proxy requests still open:\n{}", self.dump()))
    }

    /// Body bytes sent for paths containing `path`, in-flight requests included.
    pub fn body_bytes(&self, path: &str) -> u64 {
        self.requests_to(path).iter().map(|r| r.body_bytes).sum()
    }

    /// The log as text, for assertion messages: start and end (seconds
    /// from the first request), then the rest of the record.
    pub fn dump(&self) -> String {
        self.dump_since(0)
    }

    /// `dump` of the requests after the first `from` (see `log_len`).
    pub fn dump_since(&self, from: usize) -> String {
        let log = self.requests();
        let log = log.get(from..).unwrap_or_default();
        let Some(first) = log.first().map(|r| r.start) else {
            return String::new();
        };
        let secs = |t: Instant| t.duration_since(first).as_secs_f64();
        let line = |r: &Record| {
            let end = r.end.map(secs).unwrap_or(f64::NAN);
            let (m, p, st, n) = (&r.method, &r.path, r.status, r.body_bytes);
            let rest = (&r.range, &r.content_range, r.fault, r.auth, r.client_gone);
            format!(
                "{:7.3} {end:7.3} {m} {p} -> {st} body={n} {rest:?}\n",
                secs(r.start)
            )
        };
        log.iter().map(line).collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.shared.port)); // wake accept()
        for (_, s) in self.shared.open.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `more` request body bytes from the client upstream, at `pace`
/// bytes a second if given, counting them in the record as they go.
fn relay_up(
    sh: &Shared,
    idx: usize,
    client: &mut TcpStream,
    up: &mut TcpStream,
    more: u64,
    pace: Option<u64>,
    already: u64,
) -> std::io::Result<()> {
    let t0 = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut left, mut sent) = (more, 0u64);
    while left > 0 {
        if sh.stop.load(Ordering::SeqCst) {
            return Err(ErrorKind::ConnectionAborted.into());
        }
        let step = match pace {
            Some(r) => (r / 50).max(1),
            None => buf.len() as u64,
        };
        let want = left.min(step).min(buf.len() as u64) as usize;
        let n = client.read(&mut buf[..want])?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        up.write_all(&buf[..n])?;
        left -= n as u64;
        sent += n as u64;
        sh.update(idx, |r| r.body_in = already + sent);
        if let Some(r) = pace {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            if let Some(ahead) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    Ok(())
}

fn accept_loop(sh: &Arc<Shared>, listener: TcpListener) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for (id, conn) in (0u64..).zip(listener.incoming()) {
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        threads.retain(|t| !t.is_finished());
        for _ in 0..1000 {
            if threads.len() < MAX_CONNS || sh.stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            threads.retain(|t| !t.is_finished());
        }
        if let Ok(c) = conn.try_clone() {
            sh.open.lock().unwrap().push((id, c));
        }
        let sh2 = sh.clone();
        threads.push(std::thread::spawn(move || {
            handle(&sh2, conn);
            sh2.open.lock().unwrap().retain(|(i, _)| *i != id);
        }));
    }
    // Drop shut every open socket down, so these end promptly.
    for (_, s) in sh.open.lock().unwrap().iter() {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
}
