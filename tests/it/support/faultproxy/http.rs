//! The proxy's HTTP/1.1 heads: read one off a socket (bounded, and a TLS
//! hello refused at once), split it into its first line and headers, and
//! look a header up by name. No relaying, no faults (`conn.rs`).

use super::MAX_HEAD;
use std::io::Read;
use std::net::TcpStream;

/// Reads up to the end of an HTTP head; returns (head, bytes read past it).
pub fn read_head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return Some((head, buf[i + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            // A TLS hello (a client trying https first): hang up at once.
            Ok(_) if chunk[0] == 0x16 && buf.is_empty() => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// (first line, headers) of an HTTP head.
pub(super) fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (first, headers)
}

pub(super) fn is_one_of(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
