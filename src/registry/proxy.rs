//! Which HTTP proxy, if any, carries the requests to a registry: `--proxy`
//! for every registry, else the environment the way curl reads it
//! (`https_proxy`/`HTTPS_PROXY` for https, `http_proxy`/`HTTP_PROXY` for
//! http, `all_proxy`/`ALL_PROXY` for both), minus the hosts `NO_PROXY`
//! names. ureq's own environment handling is not used: it takes one proxy
//! for every scheme and matches `NO_PROXY` far more narrowly than curl.
//!
//! `NO_PROXY` entries are trimmed; `*` matches everything; `example.com`,
//! `.example.com` and `*.example.com` match the domain and its subdomains;
//! an IP matches itself, a CIDR block the addresses in it, and `host:port`
//! only that port. Proxies from the environment are never used for
//! registries on loopback. This module only chooses; the connection (an
//! HTTP CONNECT tunnel) is ureq's.

use std::net::IpAddr;

/// The proxy settings of this run.
#[derive(Clone, Debug, Default)]
pub struct ProxyConfig {
    explicit: Option<String>,
    https: Option<String>,
    http: Option<String>,
    no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// `--proxy` if given, else the process environment.
    pub fn new(explicit: Option<String>) -> ProxyConfig {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let all = var(&["all_proxy", "ALL_PROXY"]);
        ProxyConfig {
            explicit,
            https: var(&["https_proxy", "HTTPS_PROXY"]).or(all.clone()),
            http: var(&["http_proxy", "HTTP_PROXY"]).or(all),
            no_proxy: var(&["no_proxy", "NO_PROXY"])
                .map(|v| {
                    v.split(',')
                        .map(|e| e.trim().to_ascii_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy URL for `scheme://host:port`, if one applies.
    pub fn for_target(&self, scheme: &str, host: &str, port: u16, loopback: bool) -> Option<&str> {
        if let Some(p) = &self.explicit {
            return Some(p);
        }
        if loopback {
            return None;
        }
        let proxy = if scheme == "https" {
            &self.https
        } else {
            &self.http
        };
        let proxy = proxy.as_deref()?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if self
            .no_proxy
            .iter()
            .any(|e| no_proxy_matches(e, &host, port))
        {
            return None;
        }
        Some(proxy)
    }
}

/// Whether one `NO_PROXY` entry covers `host` (lowercase, no brackets) on
/// `port`.
pub fn no_proxy_matches(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (name, entry_port) = split_port(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Some((net, bits)) = name.split_once('/') {
        return match (
            net.parse::<IpAddr>(),
            bits.parse::<u8>(),
            host.parse::<IpAddr>(),
        ) {
            (Ok(n), Ok(b), Ok(h)) => in_cidr(h, n, b),
            _ => false,
        };
    }
    if let (Ok(a), Ok(b)) = (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return a == b;
    }
    let domain = name.trim_start_matches('*').trim_start_matches('.');
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

/// `host:port` → (`host`, port); IPv6 addresses keep their colons.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((inside, after)) = rest.split_once(']') {
            return (inside, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(host: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (host, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(h) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(h), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(h) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(https: Option<&str>, http: Option<&str>, no: &[&str]) -> ProxyConfig {
        ProxyConfig {
            explicit: None,
            https: https.map(String::from),
            http: http.map(String::from),
            no_proxy: no.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn per_scheme() {
        let c = cfg(Some("http://s:1"), Some("http://p:2"), &[]);
        assert_eq!(
            c.for_target("https", "r.example", 443, false),
            Some("http://s:1")
        );
        assert_eq!(
            c.for_target("http", "r.example", 80, false),
            Some("http://p:2")
        );
        assert_eq!(c.for_target("https", "127.0.0.1", 443, true), None);
        let only_http = cfg(None, Some("http://p:2"), &[]);
        assert_eq!(only_http.for_target("https", "r.example", 443, false), None);
    }

    #[test]
    fn explicit_wins_even_on_loopback() {
        let mut c = cfg(None, None, &["*"]);
        c.explicit = Some("http://x:3".into());
        assert_eq!(
            c.for_target("http", "127.0.0.1", 5000, true),
            Some("http://x:3")
        );
    }

    #[test]
    fn no_proxy_forms() {
        let m = no_proxy_matches;
        assert!(m("*", "anything", 1));
        assert!(m("example.com", "example.com", 443));
        assert!(m("example.com", "reg.example.com", 443));
        assert!(!m("example.com", "badexample.com", 443));
        assert!(m(".example.com", "reg.example.com", 443));
        assert!(m("*.example.com", "reg.example.com", 443));
        assert!(m("10.0.0.0/8", "10.1.2.3", 443));
        assert!(!m("10.0.0.0/8", "11.1.2.3", 443));
        assert!(m("192.168.1.5", "192.168.1.5", 443));
        assert!(m("reg.example.com:5000", "reg.example.com", 5000));
        assert!(!m("reg.example.com:5000", "reg.example.com", 443));
        assert!(m("::1", "::1", 443));
        assert!(m("[::1]:5000", "::1", 5000));
        assert!(m("fd00::/8", "fd12::1", 443));
        assert!(!m("", "x", 1));
    }

    #[test]
    fn no_proxy_list_is_trimmed() {
        let c = cfg(Some("http://s:1"), None, &["a.example", "b.example"]);
        assert_eq!(c.for_target("https", "b.example", 443, false), None);
        assert_eq!(
            c.for_target("https", "c.example", 443, false),
            Some("http://s:1")
        );
    }
}
