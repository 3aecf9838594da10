//! Plain-HTTP requests through an HTTP proxy the classic way: the request
//! goes to the proxy with the absolute URL in its request line
//! (`GET http://registry:5000/v2/ HTTP/1.1`), no CONNECT tunnel. ureq
//! always tunnels, and many proxies (squid's default `SSL_ports` among them)
//! refuse a CONNECT to a port like 5000, so plain-HTTP registries behind
//! such a proxy need this.
//!
//! It does one request per connection (`Connection: close`; a GET, or any
//! method with a body of known length, as a push sends), reads the status
//! and headers with bounds, and hands back a `ureq` response whose body
//! reads `Content-Length` bytes, a chunked body, or up to the close (none
//! for a HEAD). It follows no redirect: the registry client does, for
//! every transport (an `https` target then goes through ureq's tunnel). It
//! is used only for `http://` URLs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

use crate::registry::base64::base64;
use crate::registry::location::host_of;

/// An HTTP proxy for `http://` targets.
#[derive(Clone, Debug)]
pub struct ForwardProxy {
    addr: String,
    authorization: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

const MAX_HEAD: u64 = 64 << 10;

impl ForwardProxy {
    /// Parses `http://[user:pass@]host:port`; `None` for other schemes.
    pub fn parse(
        url: &str,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Option<ForwardProxy> {
        let rest = url.strip_prefix("http://")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (userinfo, addr) = match authority.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, authority),
        };
        let has_port = addr.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.starts_with('[') || h.ends_with(']'))
        });
        let addr = if has_port {
            addr.to_string()
        } else {
            format!("{addr}:80")
        };
        Some(ForwardProxy {
            addr,
            authorization: userinfo
                .map(|u| format!("Basic {}", base64(percent_decode(u).as_bytes()))),
            connect_timeout,
            read_timeout,
        })
    }

    /// Sends `method` `url` with `headers` and `body` (this many bytes
    /// from a reader), once.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&mut (dyn Read + Send), u64)>,
    ) -> Result<Response<Body>, ureq::Error> {
        let addrs: Vec<_> = self
            .addr
            .to_socket_addrs()
            .map_err(|_| ureq::Error::HostNotFound)?
            .collect();
        let mut stream = None;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = stream.ok_or_else(|| {
            last.map(ureq::Error::Io)
                .unwrap_or(ureq::Error::ConnectionFailed)
        })?;
        stream.set_read_timeout(Some(self.read_timeout))?;
        stream.set_nodelay(true)?;
        let mut req = format!(
            "{method} {url} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pulltar/{}\r\nConnection: close\r\n",
            host_of(url),
            env!("CARGO_PKG_VERSION")
        );
        if let Some((_, len)) = &body {
            req.push_str(&format!("Content-Length: {len}\r\n"));
        }
        if let Some(a) = &self.authorization {
            req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        for (k, v) in headers {
            if v.contains(['\r', '\n']) {
                return Err(ureq::Error::BadUri(
                    "a header value contains a line break".into(),
                ));
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes())?;
        if let Some((reader, len)) = body {
            let sent = io::copy(&mut reader.take(len), &mut stream)?;
            if sent != len {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the request body ended early",
                )));
            }
        }
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        let (status, head) = read_head(&mut reader)?;
        let mut builder = Response::builder().status(status);
        let (mut length, mut chunked) = (None, false);
        for (k, v) in &head {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
            builder = builder.header(k.as_str(), v.as_str());
        }
        let body: Body = if method == "HEAD" {
            Body::builder().reader(io::empty())
        } else if chunked {
            Body::builder().reader(Chunked {
                inner: reader,
                left: 0,
                done: false,
            })
        } else if let Some(n) = length {
            Body::builder().reader(reader.take(n))
        } else {
            Body::builder().reader(reader)
        };
        builder.body(body).map_err(ureq::Error::Http)
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads `HTTP/1.x CODE reason` and the header lines, bounded.
fn read_head(r: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut limited = r.take(MAX_HEAD);
    let mut line = String::new();
    limited.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| bad("bad status line from the proxy"))?,
        _ => return Err(bad("the proxy's answer is not HTTP/1.x")),
    };
    let mut head = Vec::new();
    loop {
        line.clear();
        if limited.read_line(&mut line)? == 0 {
            return Err(bad("the proxy closed the connection inside the headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            return Ok((status, head));
        }
        if let Some((k, v)) = l.split_once(':') {
            head.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// A `Transfer-Encoding: chunked` body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            (&mut self.inner).take(1024).read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let t = Duration::from_secs(1);
        let p = ForwardProxy::parse("http://u:p%40ss@127.0.0.1:3128/", t, t).unwrap();
        assert_eq!(p.addr, "127.0.0.1:3128");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"u:p@ss")).as_str())
        );
        assert_eq!(
            ForwardProxy::parse("http://proxy", t, t).unwrap().addr,
            "proxy:80"
        );
        assert!(ForwardProxy::parse("https://proxy:3128", t, t).is_none());
    }

    #[test]
    fn heads() {
        let mut r =
            &b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nContent-Length: 0\r\n\r\nrest"[..];
        let (status, head) = read_head(&mut r).unwrap();
        assert_eq!(status, 307);
        assert_eq!(head[0], ("Location".to_string(), "/x".to_string()));
        assert!(read_head(&mut &b"SSH-2.0\r\n\r\n"[..]).is_err());
        assert!(read_head(&mut &b"HTTP/1.1 200 OK\r\nA: b\r\n"[..]).is_err());
    }

    #[test]
    fn chunked_bodies() {
        let mut c = Chunked {
            inner: &b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"[..],
            left: 0,
            done: false,
        };
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "Wikipedia");
        let mut cut = Chunked {
            inner: &b"9\r\nWiki"[..],
            left: 0,
            done: false,
        };
        assert!(cut.read_to_string(&mut String::new()).is_err());
    }
}
