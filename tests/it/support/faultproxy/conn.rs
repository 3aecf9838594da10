//! The proxy's connection handling (see `mod.rs`): parse one
//! request, refuse it if the ration is spent, pick the rule, answer a
//! canned status (or nothing) or forward it upstream with `Connection:
//! close`, rewrite the response head (Location, Content-Range) and relay
//! the body paced, cut, stalled or with a byte inverted, updating the
//! request's `Record` as bytes go out.

use super::http::{header, is_one_of, parse_head, read_head};
use super::{relay_up, Fault, Record, Rule, Shared, MAX_STALL};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Shared {
    pub(super) fn update(&self, idx: usize, f: impl FnOnce(&mut Record)) {
        f(&mut self.log.lock().unwrap()[idx]);
    }

    /// The first live rule matching this request (not used up yet).
    fn find(&self, method: &str, path: &str, ranged: bool) -> Option<usize> {
        let live = |r: &Rule| {
            r.left != Some(0)
                && r.range.is_none_or(|w| w == ranged)
                && r.method.as_deref().is_none_or(|m| m == method)
        };
        let mut rules = self.rules.lock().unwrap();
        let i = rules
            .iter()
            .position(|r| path.contains(&r.path) && live(r))?;
        if rules[i].skip > 0 {
            rules[i].skip -= 1;
            return None;
        }
        Some(i)
    }

    /// Uses rule `i` once as its fault fires; false if it ran out meanwhile
    /// (then the fault does not fire).
    fn fire(&self, rule: Option<usize>, idx: usize, name: &'static str) -> bool {
        let Some(i) = rule else { return false };
        let ok = match &mut self.rules.lock().unwrap()[i].left {
            Some(n) => n.checked_sub(1).map(|m| *n = m).is_some(),
            None => true,
        };
        if ok {
            self.update(idx, |r| r.fault = Some(name));
        }
        ok
    }
}

pub fn handle(sh: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = client.set_write_timeout(Some(Duration::from_secs(15)));
    // A TLS hello (a client probing for HTTPS): answered at once in plain
    // HTTP, as the registry (Go's net/http) answers it, not logged.
    let mut first = [0u8; 1];
    if matches!(client.peek(&mut first), Ok(1) if first[0] == 0x16) {
        let _ = client.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        );
        return;
    }
    let Some((head, rest)) = read_head(&mut client) else {
        return;
    };
    let (line, headers) = parse_head(&head);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let range = header(&headers, "range").map(str::to_string);
    let record = Record {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
        auth: header(&headers, "authorization").is_some(),
        status: 0,
        content_range: None,
        body_bytes: 0,
        body_in: 0,
        fault: None,
        client_gone: false,
        start: Instant::now(),
        end: None,
    };
    let idx = {
        let mut log = sh.log.lock().unwrap();
        log.push(record);
        log.len() - 1
    };
    let admitted = sh.ration.lock().unwrap().admit();
    let res = match admitted {
        Err(ration) => {
            sh.update(idx, |r| r.fault = Some(ration));
            canned(sh, idx, &mut client, &method, 429, &[])
        }
        Ok(()) => {
            let rule = sh.find(&method, &path, range.is_some());
            let res = serve(
                sh,
                (idx, rule),
                &mut client,
                (&method, &path, &headers, rest),
            );
            let mut ration = sh.ration.lock().unwrap();
            ration.in_progress = ration.in_progress.saturating_sub(1);
            res
        }
    };
    let _ = client.shutdown(Shutdown::Both);
    sh.update(idx, |r| {
        r.end = Some(Instant::now());
        r.client_gone |= res.is_err();
    });
}

type Req<'a> = (&'a str, &'a str, &'a [(String, String)], Vec<u8>);

/// Answers one request: a canned status, or a relay with the fault of
/// rule `rule` (if any) applied.
fn serve(
    sh: &Shared,
    (idx, rule): (usize, Option<usize>),
    client: &mut TcpStream,
    (method, path, headers, rest): Req,
) -> std::io::Result<()> {
    let fault = rule.map(|i| sh.rules.lock().unwrap()[i].fault.clone());
    if let Some(Fault::Status(code, extra)) = &fault {
        if !sh.fire(rule, idx, "status") {
            return serve(sh, (idx, None), client, (method, path, headers, rest));
        }
        return canned(sh, idx, client, method, *code, extra);
    }
    if matches!(fault, Some(Fault::Hangup)) && sh.fire(rule, idx, "hangup") {
        return Ok(());
    }
    if let Some(Fault::Respond(code, extra, body)) = &fault {
        if !sh.fire(rule, idx, "respond") {
            return serve(sh, (idx, None), client, (method, path, headers, rest));
        }
        let mut out = format!(
            "HTTP/1.1 {code} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        )
        .into_bytes();
        for (k, v) in extra {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if method != "HEAD" {
            out.extend_from_slice(body);
        }
        sh.update(idx, |r| r.status = *code);
        return client.write_all(&out);
    }
    let ignore_range = (matches!(fault, Some(Fault::IgnoreRange))
        && header(headers, "range").is_some()
        && sh.fire(rule, idx, "ignore-range"))
        || (matches!(fault, Some(Fault::WholeBody)) && sh.fire(rule, idx, "whole-body"));
    let mut up = TcpStream::connect(("127.0.0.1", sh.upstream))?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
        sh.upstream
    );
    for (k, v) in headers {
        let hop = is_one_of(
            k,
            &[
                "host",
                "connection",
                "keep-alive",
                "proxy-connection",
                "expect",
            ],
        );
        if !(hop || ignore_range && k.eq_ignore_ascii_case("range")) {
            out += &format!("{k}: {v}\r\n");
        }
    }
    out += "Connection: close\r\n\r\n";
    up.write_all(out.as_bytes())?;
    // A request body (pushes): Content-Length only; the client waiting for
    // `100 Continue` gets it from here.
    if header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let len = header(headers, "content-length").and_then(|v| v.parse().ok());
    let total = len.unwrap_or(0u64);
    let more = total.saturating_sub(rest.len() as u64);
    let pace = match &fault {
        Some(Fault::SlowUpload(r)) if total > 0 && sh.fire(rule, idx, "slow-upload") => Some(*r),
        _ => None,
    };
    let cut = match &fault {
        Some(Fault::CutUpload(n)) if total > *n && sh.fire(rule, idx, "cut-upload") => *n,
        _ => total,
    };
    let first = rest.len().min(cut as usize);
    up.write_all(&rest[..first])?;
    sh.update(idx, |r| r.body_in = first as u64);
    let more = more.min(cut - first as u64);
    relay_up(sh, idx, client, &mut up, more, pace, first as u64)?;
    if cut < total {
        // Both sockets dropped with the body unread: the client's next
        // write meets a reset, the registry an unexpected end.
        let _ = up.shutdown(Shutdown::Both);
        sh.update(idx, |r| r.client_gone = true);
        return Ok(());
    }
    let Some((rhead, body_start)) = read_head(&mut up) else {
        return Err(ErrorKind::UnexpectedEof.into());
    };
    let (status_line, rheaders) = parse_head(&rhead);
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status: u16 = status.unwrap_or(0);
    let mut out = format!("{status_line}\r\n");
    let mut content_range = None;
    let set = match &fault {
        Some(Fault::SetHeader(name, value)) if sh.fire(rule, idx, "set-header") => {
            out += &format!("{name}: {value}\r\n");
            Some(name.clone())
        }
        _ => None,
    };
    let append = match &fault {
        Some(Fault::Append(extra)) if status == 200 || status == 206 => {
            sh.fire(rule, idx, "append").then(|| extra.clone())
        }
        _ => None,
    };
    for (k, v) in &rheaders {
        let mut v = v.clone();
        if is_one_of(k, &["connection", "keep-alive"])
            || set.as_ref().is_some_and(|n| n.eq_ignore_ascii_case(k))
            || append.is_some() && k.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        if k.eq_ignore_ascii_case("location") {
            for host in ["127.0.0.1", "localhost"] {
                let from = format!("http://{host}:{}", sh.upstream);
                if let Some(tail) = v.strip_prefix(&from) {
                    v = format!("http://127.0.0.1:{}{tail}", sh.port);
                }
            }
        }
        if k.eq_ignore_ascii_case("content-range") {
            if matches!(fault, Some(Fault::BadContentRange))
                && status == 206
                && sh.fire(rule, idx, "bad-content-range")
            {
                v = shift_content_range(&v);
            }
            content_range = Some(v.clone());
        }
        out += &format!("{k}: {v}\r\n");
    }
    out += "Connection: close\r\n\r\n";
    client.write_all(out.as_bytes())?;
    sh.update(idx, |r| {
        (r.status, r.content_range) = (status, content_range)
    });
    let limit = match fault {
        Some(Fault::CutAfter(n)) => Some((n, None)),
        Some(Fault::StallAfter(n, d)) => Some((n, Some(d.min(MAX_STALL)))),
        _ => None,
    };
    let rate = match fault {
        Some(Fault::Rate(r)) if sh.fire(rule, idx, "rate") => Some(r),
        _ => None,
    };
    let flip = match fault {
        Some(Fault::FlipByte(at)) if status == 200 || status == 206 => Some(at),
        _ => None,
    };
    let mods = Mods { limit, rate, flip };
    relay(sh, (idx, rule), client, &mut up, body_start, mods)?;
    if let Some(extra) = append {
        client.write_all(&extra)?;
        sh.update(idx, |r| r.body_bytes += extra.len() as u64);
    }
    Ok(())
}

/// Answers `code` with a registry-style JSON error and `extra` headers,
/// without contacting upstream.
fn canned(
    sh: &Shared,
    idx: usize,
    client: &mut TcpStream,
    method: &str,
    code: u16,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    let what = if code == 429 {
        "TOOMANYREQUESTS"
    } else {
        "UNKNOWN"
    };
    let body = format!(r#"{{"errors":[{{"code":"{what}","message":"faultproxy"}}]}}"#);
    let mut out = format!(
        "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out += &format!("{k}: {v}\r\n");
    }
    out += "\r\n";
    if method != "HEAD" {
        out += &body;
    }
    sh.update(idx, |r| r.status = code);
    client.write_all(out.as_bytes())
}

/// `bytes A-B/T` with A and B moved by one (down if possible, else up).
fn shift_content_range(v: &str) -> String {
    let parse = || -> Option<(u64, u64, String)> {
        let (a, rest) = v.strip_prefix("bytes ")?.split_once('-')?;
        let (b, t) = rest.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?, t.to_string()))
    };
    match parse() {
        Some((a, b, t)) if a > 0 => format!("bytes {}-{}/{t}", a - 1, b - 1),
        Some((a, b, t)) => format!("bytes {}-{}/{t}", a + 1, b + 1),
        None => format!("{v}x"),
    }
}

/// What the relay does to a body: cut or stall it after `limit.0` bytes
/// (when it is longer), pace it at `rate` (else the proxy's rate), invert
/// the byte at offset `flip`.
struct Mods {
    limit: Option<(u64, Option<Duration>)>,
    rate: Option<u64>,
    flip: Option<u64>,
}

/// Copies the upstream body to the client with `mods` applied, each fault
/// used up from rule `rule` only when it fires.
fn relay(
    sh: &Shared,
    (idx, rule): (usize, Option<usize>),
    client: &mut TcpStream,
    up: &mut TcpStream,
    mut pending: Vec<u8>,
    mods: Mods,
) -> std::io::Result<()> {
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            return Err(ErrorKind::ConnectionAborted.into());
        }
        if pending.is_empty() {
            let n = up.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        }
        let rate = mods.rate.unwrap_or_else(|| sh.rate.load(Ordering::SeqCst));
        let mut take = pending.len();
        if rate > 0 {
            let floor = if mods.rate.is_some() { 1 } else { 1024 };
            take = take.min((rate / 50).max(floor) as usize);
        }
        if let Some((n, stall)) = mods.limit {
            let name = if stall.is_some() { "stall" } else { "cut" };
            if sent + take as u64 > n && sh.fire(rule, idx, name) {
                client.write_all(&pending[..(n - sent) as usize])?;
                sh.update(idx, |r| r.body_bytes = n);
                if let Some(d) = stall {
                    let gone = wait_for_hangup(sh, client, d);
                    sh.update(idx, |r| r.client_gone = gone);
                }
                return Ok(());
            }
        }
        if let Some(at) = mods
            .flip
            .filter(|&at| at >= sent && at < sent + take as u64)
        {
            if sh.fire(rule, idx, "flip") {
                pending[(at - sent) as usize] ^= 0xff;
            }
        }
        client.write_all(&pending[..take])?;
        pending.drain(..take);
        sent += take as u64;
        sh.update(idx, |r| r.body_bytes = sent);
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
}

/// Sends nothing for `d` (or until the proxy stops); true if the client
/// closed its side meanwhile (then we stop waiting).
fn wait_for_hangup(sh: &Shared, client: &TcpStream, d: Duration) -> bool {
    let end = Instant::now() + d;
    let _ = client.set_nonblocking(true);
    while Instant::now() < end && !sh.stop.load(Ordering::SeqCst) {
        match client.peek(&mut [0u8; 1]) {
            Ok(0) => return true,
            Err(e) if e.kind() != ErrorKind::WouldBlock => return true,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}
