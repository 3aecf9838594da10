//! Image references: `[registry[:port]/]path[:tag][@sha256:hex]`, split
//! into their parts with docker's rules, and the names derived from them.
//!
//! The rules, as docker applies them:
//! - the first path component is a registry only if it contains `.` or `:`,
//!   or is `localhost`; otherwise the image is on Docker Hub (`docker.io`);
//! - `docker.io`, `index.docker.io` and `registry-1.docker.io` are the same
//!   registry, whose API lives at `registry-1.docker.io`;
//! - a one-component Docker Hub name gets `library/` (`nginx` is
//!   `library/nginx`);
//! - without a tag or digest the tag is `latest`; with both a tag and a
//!   digest the image is pulled by digest and the tag is kept for the
//!   archive's RepoTags.
//!
//! Each part is checked against the grammar in `name_rules.rs` (which
//! characters, how long); a failure quotes the whole input. This module is
//! pure parsing: it makes no network calls and decides nothing about
//! transport beyond whether a registry is on loopback.

use std::fmt;

use crate::error::Error;
use crate::image::digest::Digest;
use crate::image::name_rules::{check_path, check_registry, check_tag};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, validated image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    original: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `input`; the error quotes it and says what is wrong.
    pub fn parse(input: &str) -> Result<Reference, Error> {
        parse(input).map_err(|reason| Error::Reference {
            input: input.to_string(),
            reason,
        })
    }

    /// What the user typed.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The canonical registry name (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path on the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given or defaulted (`latest` when neither tag nor
    /// digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the image is on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8 or
    /// `::1`), where plain HTTP is allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(host_of(&self.registry))
    }

    /// What the manifest endpoint is asked for: the digest if there is one,
    /// else the tag.
    pub fn manifest_key(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            // Invariant of `parse`: a reference without a digest has a tag.
            (None, None) => "latest".to_string(),
        }
    }

    /// The name as docker shows it: `nginx`, `user/app`,
    /// `ghcr.io/org/x`, `127.0.0.1:5000/team/app`.
    /// A Docker Hub path whose first component would read as a registry
    /// (`docker.io/a.b/c`) keeps its `docker.io/`, so the name means the
    /// same image when read back.
    pub fn familiar_name(&self) -> String {
        if self.is_docker_hub() {
            let short = self
                .repository
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.repository);
            match short.split_once('/') {
                Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
                    format!("{DOCKER_HUB}/{short}")
                }
                _ => short.to_string(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The archive's RepoTags entry (`nginx:1.25`), or `None` for a
    /// digest-only reference, which docker cannot name.
    pub fn repo_tag(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.familiar_name()))
    }

    /// The auth scope for pulling this repository.
    pub fn scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    /// The default archive name: the repository path with `/` as `_`
    /// (without Docker Hub's `library/`), `_`, the tag (or the first 12 hex
    /// digits of the digest), `.tar`.
    pub fn default_file_name(&self) -> String {
        let path = match self.repository.strip_prefix("library/") {
            Some(rest) if self.is_docker_hub() => rest,
            _ => &self.repository,
        };
        let suffix = match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.short().to_string(),
            (None, None) => "latest".to_string(),
        };
        format!("{}_{suffix}.tar", path.replace('/', "_"))
    }
}

impl fmt::Display for Reference {
    /// The canonical form: `docker.io/library/nginx:1.25@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn parse(input: &str) -> Result<Reference, String> {
    if input.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("it contains the character {c:?}"));
    }
    let (name_tag, digest) = match input.split_once('@') {
        Some((n, d)) => (n, Some(Digest::parse(d)?)),
        None => (input, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            check_registry(first)?;
            (canonical_registry(first), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    };
    check_path(path)?;
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference {
        original: input.to_string(),
        registry,
        repository,
        tag,
        digest,
    })
}

fn canonical_registry(r: &str) -> String {
    match r {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => r.to_string(),
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether a host name or address is this machine (`localhost`,
/// 127.0.0.0/8, `::1`).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host == "::1" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn hub_official() {
        let r = p("nginx:1.25");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.tag(), Some("1.25"));
        assert_eq!(r.repo_tag().unwrap(), "nginx:1.25");
        assert_eq!(r.default_file_name(), "nginx_1.25.tar");
        assert_eq!(r.scope(), "repository:library/nginx:pull");
        assert_eq!(r.to_string(), "docker.io/library/nginx:1.25");
    }

    #[test]
    fn hub_aliases() {
        for s in ["docker.io/nginx", "index.docker.io/library/nginx", "nginx"] {
            let r = p(s);
            assert_eq!(r.registry(), "docker.io", "{s}");
            assert_eq!(r.repository(), "library/nginx", "{s}");
            assert_eq!(r.tag(), Some("latest"), "{s}");
            assert_eq!(r.repo_tag().unwrap(), "nginx:latest", "{s}");
        }
    }

    #[test]
    fn hub_user() {
        let r = p("user/app:v1");
        assert_eq!(r.repository(), "user/app");
        assert_eq!(r.repo_tag().unwrap(), "user/app:v1");
        assert_eq!(r.default_file_name(), "user_app_v1.tar");
    }

    #[test]
    fn other_registries() {
        let r = p("127.0.0.1:5000/team/app:v2");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert!(r.is_loopback());
        assert_eq!(r.repo_tag().unwrap(), "127.0.0.1:5000/team/app:v2");
        assert_eq!(r.default_file_name(), "team_app_v2.tar");
        let g = p("ghcr.io/org/x:tag");
        assert!(!g.is_loopback());
        assert_eq!(g.repo_tag().unwrap(), "ghcr.io/org/x:tag");
        assert!(p("localhost/app").is_loopback());
        assert_eq!(p("localhost/app").registry(), "localhost");
        assert!(p("localhost:5000/app").is_loopback());
        assert!(p("[::1]:5000/app").is_loopback());
        assert!(!p("[2001:db8::1]:5000/app").is_loopback());
        assert!(p("127.1.2.3:80/app").is_loopback());
    }

    #[test]
    fn digest_refs() {
        let r = p(&format!("ghcr.io/org/tool@sha256:{HEX}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.repo_tag(), None);
        assert_eq!(r.manifest_key(), format!("sha256:{HEX}"));
        assert_eq!(r.default_file_name(), "org_tool_0123456789ab.tar");
        let both = p(&format!("alpine:3.20@sha256:{HEX}"));
        assert_eq!(both.tag(), Some("3.20"));
        assert_eq!(both.manifest_key(), format!("sha256:{HEX}"));
        assert_eq!(both.repo_tag().unwrap(), "alpine:3.20");
    }

    #[test]
    fn port_is_not_a_tag() {
        let r = p("localhost:5000/app");
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "UPPER/case",
            "nginx:",
            "nginx:-bad",
            "nginx:a/b",
            "a//b",
            "/nginx",
            "nginx/",
            "ngi nx",
            "a..b",
            "a_-b",
            "-a",
            "a-",
            "a___b",
            "nginx@sha256:123",
            "nginx@md5:0123",
            "host:99999/app",
            "host:0/app",
            "host:/app",
            "bad_host.com/app",
            "[::1/app",
            &format!("x:{}", "a".repeat(129)),
            &"a".repeat(256),
        ] {
            let err = Reference::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// Found by `cargo fuzz run reference`: a Hub path whose first component
    /// has a dot read back as another registry in RepoTags.
    #[test]
    fn familiar_name_reads_back_as_the_same_image() {
        let r = p("index.docker.io/a.b/c:1");
        assert_eq!(r.repo_tag().unwrap(), "docker.io/a.b/c:1");
        let again = p(&r.repo_tag().unwrap());
        assert_eq!(
            (again.registry(), again.repository()),
            ("docker.io", "a.b/c")
        );
        assert_eq!(p("user/app:1").repo_tag().unwrap(), "user/app:1");
    }
}
