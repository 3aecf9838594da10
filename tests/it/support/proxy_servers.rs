//! HTTP CONNECT proxies on 127.0.0.1 for the proxy tests:
//!
//! - `TinyProxy`: Debian's tinyproxy run in the foreground (`-d`) with its
//!   config and log in a temp dir, CONNECT allowed only to the given
//!   ports, optional Basic auth; killed by PID on drop. Its log (level
//!   Info) has a `Request (file descriptor N): CONNECT host:port` line per
//!   tunnel.
//! - `ConnectProxy`: a small std-only CONNECT proxy that tunnels to
//!   **127.0.0.1** at the requested port whatever host was named, so a
//!   test can use a registry name that is not loopback and does not
//!   resolve (`registry.pulltar.test`): a pull that works proves it went
//!   through the proxy (pulltar never resolved the name itself).

use crate::support::util::{poll, require_tool, TempDir};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port nothing listens on (bound, read, closed).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub struct TinyProxy {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl TinyProxy {
    /// Allows CONNECT to `connect_ports` only; `auth` = Basic user, password.
    pub fn start(connect_ports: &[u16], auth: Option<(&str, &str)>) -> TinyProxy {
        let bin = require_tool("tinyproxy", "tinyproxy");
        let dir = TempDir::new("tinyproxy");
        let d = dir.path().display().to_string();
        for attempt in 1..=5 {
            let port = dead_port();
            let mut conf = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 120\nLogFile \"{d}/tinyproxy.log\"\n\
                 LogLevel Info\nPidFile \"{d}/tinyproxy.pid\"\nMaxClients 100\n\
                 Allow 127.0.0.1\nDisableViaHeader Yes\n"
            );
            for p in connect_ports {
                conf.push_str(&format!("ConnectPort {p}\n"));
            }
            if let Some((u, p)) = auth {
                conf.push_str(&format!("BasicAuth {u} {p}\n"));
            }
            std::fs::write(dir.join("tinyproxy.conf"), conf).unwrap();
            let _ = std::fs::remove_file(dir.join("tinyproxy.log"));
            let out = std::fs::File::create(dir.join("stderr.log")).unwrap();
            let mut child = Command::new(&bin)
                .arg("-d")
                .arg("-c")
                .arg(dir.join("tinyproxy.conf"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("cannot start tinyproxy");
            let ready = poll(200, Duration::from_millis(25), || {
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .ok()
                    .map(|_| true)
            });
            if ready == Some(true) {
                return TinyProxy { child, dir, port };
            }
            // Our own child, by PID (a no-op if it already exited).
            let _ = child.kill();
            let _ = child.wait();
            let log = read_logs(&dir);
            assert!(
                log.contains("Address already in use") && attempt < 5,
                "tinyproxy did not come up on {port}:\n{log}"
            );
        }
        unreachable!("the last attempt panics")
    }

    /// Its log and whatever it printed.
    pub fn log(&self) -> String {
        read_logs(&self.dir)
    }

    /// The `host:port` of every CONNECT it was asked for.
    pub fn connects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): CONNECT ").map(|(_, r)| r))
            .map(|r| r.split(' ').next().unwrap_or("").to_string())
            .collect()
    }

    /// The `host:port` of every absolute-form `GET http://…` it forwarded.
    pub fn forwards(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): GET http://").map(|(_, r)| r))
            .map(|r| r.split(['/', ' ']).next().unwrap_or("").to_string())
            .collect()
    }
}

fn read_logs(dir: &TempDir) -> String {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    format!("{}{}", read("tinyproxy.log"), read("stderr.log"))
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        // Our own child (one process, threads), by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct ConnectProxy {
    pub port: u16,
    /// One line a request: `METHOD TARGET auth=yes|no -> STATUS`.
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (lg, st) = (Arc::clone(&log), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(900);
            while !st.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let lg = Arc::clone(&lg);
                        std::thread::spawn(move || tunnel(s, &lg));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ConnectProxy {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Targets of the CONNECTs it tunnelled.
    pub fn connects(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|l| l.starts_with("CONNECT ") && l.ends_with("-> 200"))
            .map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
            .collect()
    }

    /// `host:port` of the absolute-form `GET http://…` requests it relayed.
    pub fn forwards(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|l| l.starts_with("GET http://") && l.ends_with("-> 200"))
            .filter_map(|l| l.split(' ').nth(1))
            .map(|t| {
                t["http://".len()..]
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tunnel(mut client: TcpStream, log: &Mutex<Vec<String>>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match client.read(&mut chunk) {
            Ok(n) if n > 0 && buf.len() < 64 * 1024 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let auth = head
        .to_ascii_lowercase()
        .contains("\r\nproxy-authorization:");
    // CONNECT host:port, or an absolute-form GET http://host:port/path.
    let forward = method == "GET" && target.starts_with("http://");
    let authority = if forward {
        target["http://".len()..].split('/').next().unwrap_or("")
    } else {
        target
    };
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let upstream = match (method, port) {
        ("CONNECT", Some(p)) | ("GET", Some(p)) if method == "CONNECT" || forward => {
            let addr = SocketAddr::from(([127, 0, 0, 1], p));
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()
        }
        _ => None,
    };
    let status = match (&upstream, method) {
        (Some(_), _) => 200,
        (None, "CONNECT") => 502,
        (None, _) => 405,
    };
    let yes = if auth { "yes" } else { "no" };
    log.lock()
        .unwrap()
        .push(format!("{method} {target} auth={yes} -> {status}"));
    let Some(mut upstream) = upstream else {
        let _ = write!(
            client,
            "HTTP/1.1 {status} No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    let started = if forward {
        // Relay the request in origin form: GET /path HTTP/1.1, same headers.
        let path_start = "http://".len() + authority.len();
        let path = target
            .get(path_start..)
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let rest = &head[method.len() + 1 + target.len()..];
        upstream
            .write_all(format!("GET {path}{rest}").as_bytes())
            .and_then(|_| upstream.write_all(&buf[head_end..]))
    } else {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .and_then(|_| upstream.write_all(&buf[head_end..]))
    };
    if started.is_err() {
        return;
    }
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(120)));
    let (mut c2, mut u2) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Through the proxy on `proxy_port`: `CONNECT target`, then `GET /v2/`
/// in the tunnel. Returns everything the proxy and registry answered.
#[cfg(test)]
fn connect_and_get(proxy_port: u16, target: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", proxy_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200") {
        write!(
            s,
            "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut rest = String::new();
        let _ = s.read_to_string(&mut rest);
        text.push_str(&rest);
    }
    text
}

/// The proxies alone, without pulltar: tunnels work, tinyproxy enforces
/// ConnectPort and Basic auth, and both log the CONNECT target.
#[test]
fn proxies_tunnel_to_the_registry() {
    let reg = crate::support::registry::Registry::start();
    let tiny = TinyProxy::start(&[reg.port], Some(("u", "p")));
    let target = reg.host();
    let auth = format!(
        "Proxy-Authorization: Basic {}\r\n",
        crate::support::util::base64(b"u:p", false)
    );
    let got = connect_and_get(tiny.port, &target, &auth);
    assert!(
        got.contains("\r\n\r\nHTTP/1.1 200 OK"),
        "{got}\n{}",
        tiny.log()
    );
    let status = |got: String| got.lines().next().unwrap_or("").to_string();
    let no_auth = status(connect_and_get(tiny.port, &target, ""));
    assert!(no_auth.contains(" 407 "), "{no_auth}");
    let other = format!("127.0.0.1:{}", dead_port());
    let refused = status(connect_and_get(tiny.port, &other, &auth));
    assert!(
        refused.contains(" 403 "),
        "a port not in ConnectPort: {refused}"
    );
    assert!(tiny.connects().contains(&target), "{}", tiny.log());

    let mapping = ConnectProxy::start();
    let named = format!("registry.pulltar.test:{}", reg.port);
    let got = connect_and_get(mapping.port, &named, "");
    assert!(got.contains("\r\n\r\nHTTP/1.1 200 OK"), "{got}");
    assert_eq!(mapping.connects(), vec![named]);
}
