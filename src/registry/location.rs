//! Where a URL points and whether the client may go there: its
//! `host:port` ([`host_of`], [`split_host`]), a `Location` header
//! (absolute, or relative to the URL it came from) as an absolute URL
//! ([`resolve`]), and a registry's [`Reach`]: which hosts its requests go
//! to without certificate checks, and which addresses it may not send the
//! client to.
//!
//! The scope of `--insecure` is the registry the client was opened for
//! (one the user named: an image's registry, a mirror, the push
//! destination; Docker Hub only through `--insecure-registry`) and any host
//! of the same host name (its token service on another port); the scope of
//! `--insecure-registry HOST` is HOST, any port, or HOST:PORT. Every other
//! host, a CDN a blob is redirected to, a token realm elsewhere, is
//! verified in full.
//!
//! The address guard: a registry that is not on a loopback or link-local
//! address (127.0.0.0/8, ::1, 169.254.0.0/16 where cloud metadata services
//! live, fe80::/10) may not send the client to a host on one, by a
//! redirect, an upload location or a token realm. Literal addresses are
//! taken as they are; names are resolved once per registry (a name any of
//! whose answers is such an address is refused; one that does not resolve
//! is let through, as the connection to it fails or a proxy decides). A
//! URL with user information (`user@host`) is refused whatever its host. Hosts of the registry's own
//! host name are not checked. Nothing is sent from here.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};

/// `http://user@host:port/path?query#f` → `user@host:port`: where the
/// connection goes, with any user information.
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// `http://host:port/path?query` → `host:port`.
pub fn host_of(url: &str) -> &str {
    let authority = authority(url);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// `host:port` or `[v6]:port` → (host without brackets, port).
pub fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (inside, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match host.split_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (host, None),
    }
}

/// Resolves a `Location` against the URL it came from.
pub fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// Where one registry's requests may go, and which of those hosts are
/// spared certificate checks.
#[derive(Debug)]
pub struct Reach {
    /// The registry's `host[:port]`, as given.
    host: String,
    /// Whether the registry's host name is spared checks.
    insecure: bool,
    /// The `--insecure-registry` hosts.
    listed: Vec<String>,
    /// Whether the registry is on a loopback or link-local address.
    local: OnceLock<bool>,
    /// Other hosts resolved, and whether they are local.
    resolved: Mutex<HashMap<String, bool>>,
}

impl Reach {
    /// The reach of the registry at `host`, given `--insecure` (`all`) and
    /// the `--insecure-registry` hosts.
    pub fn new(host: &str, all: bool, listed: &[String]) -> Reach {
        let hub = matches!(
            split_host(host).0.to_ascii_lowercase().as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        );
        Reach {
            host: host.to_string(),
            insecure: (all && !hub) || is_listed(listed, host),
            listed: listed.to_vec(),
            local: OnceLock::new(),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the registry itself goes unverified (and may be reached
    /// over plain HTTP).
    pub fn registry_insecure(&self) -> bool {
        self.insecure
    }

    /// Whether `host` (`host[:port]`) is of the registry's host name.
    pub fn is_own(&self, host: &str) -> bool {
        split_host(host)
            .0
            .eq_ignore_ascii_case(split_host(&self.host).0)
    }

    /// Whether requests to `host` (`host[:port]`) skip certificate checks.
    pub fn unverified(&self, host: &str) -> bool {
        (self.insecure && self.is_own(host)) || is_listed(&self.listed, host)
    }

    /// Refuses `host` (`host[:port]`) when it is on a loopback or
    /// link-local address and the registry is not.
    pub fn check(&self, host: &str) -> std::result::Result<(), String> {
        if self.is_own(host) {
            return Ok(());
        }
        let key = host.to_ascii_lowercase();
        let mut seen = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        let local = *seen.entry(key).or_insert_with(|| is_local(host));
        drop(seen);
        if local && !*self.local.get_or_init(|| is_local(&self.host)) {
            return Err(format!(
                "the registry {} sent the client to {}, a loopback or link-local address (this machine's own services, or a cloud metadata service); refused",
                self.host,
                crate::error::excerpt(host.as_bytes(), 100)
            ));
        }
        Ok(())
    }
}

/// Whether `--insecure-registry` names `host`: `HOST` names each of its
/// ports, `HOST:PORT` that one.
fn is_listed(listed: &[String], host: &str) -> bool {
    let name = split_host(host).0;
    listed.iter().any(|l| {
        l.eq_ignore_ascii_case(host)
            || (split_host(l).1.is_none() && split_host(l).0.eq_ignore_ascii_case(name))
    })
}

/// Whether `host` (`host[:port]`) is, or resolves to (any of its
/// answers), a loopback or link-local address.
fn is_local(host: &str) -> bool {
    let (name, port) = split_host(host);
    let ip = match name.parse::<IpAddr>() {
        Ok(ip) => ip,
        // Every answer counts: the connection may try any of them.
        Err(_) => {
            return (name, port.unwrap_or(443))
                .to_socket_addrs()
                .is_ok_and(|mut addrs| addrs.any(|a| is_local_ip(a.ip())))
        }
    };
    is_local_ip(ip)
}

/// Loopback (127/8, ::1), link-local (169.254/16, fe80::/10), unspecified,
/// and the IPv6 address of EC2's metadata service (fd00:ec2::254).
fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_ip(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve() {
        assert_eq!(
            resolve("http://a:1/v2/x/blobs/y", "/s3/z?q=1"),
            "http://a:1/s3/z?q=1"
        );
        assert_eq!(resolve("http://a:1/v2/x", "http://b:2/z"), "http://b:2/z");
        assert_eq!(resolve("http://a:1/v2/x", "y"), "http://a:1/v2/y");
        assert_eq!(host_of("http://a:1/v2/?q"), "a:1");
        assert_eq!(host_of("https://u:pw@b:2/t"), "b:2");
        // The authority ends at '#' as it does for the connection.
        assert_eq!(
            host_of("http://169.254.169.254#@r.example/"),
            "169.254.169.254"
        );
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(split_host("r.example"), ("r.example", None));
        assert_eq!(split_host("127.0.0.1:5000"), ("127.0.0.1", Some(5000)));
        assert_eq!(split_host("[::1]:5000"), ("::1", Some(5000)));
        assert_eq!(split_host("[::1]"), ("::1", None));
    }

    #[test]
    fn insecure_scope() {
        let named = Reach::new("r.example:5000", true, &[]);
        assert!(named.registry_insecure());
        assert!(named.unverified("r.example:5001"), "its token service");
        assert!(!named.unverified("cdn.example"));
        let listed = ["a.example".to_string(), "b.example:443".to_string()];
        let other = Reach::new("c.example", false, &listed);
        assert!(!other.registry_insecure());
        assert!(other.unverified("A.example:8443") && other.unverified("b.example:443"));
        assert!(!other.unverified("b.example:444") && !other.unverified("c.example"));
        assert!(!Reach::new("registry-1.docker.io", true, &[]).registry_insecure());
        assert!(Reach::new("docker.io", false, &["docker.io".into()]).registry_insecure());
    }

    #[test]
    fn local_addresses_are_guarded() {
        for (host, local) in [
            ("169.254.169.254", true),
            ("127.0.0.1:8080", true),
            ("[::1]:5000", true),
            ("[fe80::1]", true),
            ("[::ffff:127.0.0.1]", true),
            ("0.0.0.0", true),
            ("[fd00:ec2::254]", true),
            ("localhost:5000", true),
            ("10.0.0.1", false),
            ("[2001:db8::1]:443", false),
        ] {
            assert_eq!(is_local(host), local, "{host}");
        }
        let public = Reach::new("10.200.0.1:5000", false, &[]);
        let e = public.check("127.0.0.1:9000").unwrap_err();
        assert!(
            e.contains("127.0.0.1:9000") && e.contains("loopback"),
            "{e}"
        );
        assert!(public.check("169.254.169.254").is_err());
        assert!(public.check("10.200.0.2:80").is_ok());
        assert!(public.check("10.200.0.1:6000").is_ok(), "its own host name");
        let loopback = Reach::new("127.0.0.1:5000", false, &[]);
        assert!(loopback.check("localhost:9000").is_ok());
        assert!(loopback.check("127.0.0.2:9000").is_ok());
    }
}
