//! Where `pulltar push` puts each image: the `DEST` argument, either
//! `REGISTRY[/PREFIX]` (every image goes to `REGISTRY/PREFIX/<its
//! repository path>:<each of its tags>`, the path as pulled without its
//! registry: `127.0.0.1:5000/team/app:v2` → `team/app:v2`, `nginx:1.25` →
//! `library/nginx:1.25`) or a full `REGISTRY/REPO:TAG` for an archive of
//! one image.
//!
//! `DEST` must start with a registry host, by docker's rule (a dot or a
//! port, or `localhost`), so that a typo such as `myrepo` is not taken
//! for Docker Hub. A scheme (`https://`) and a trailing `/` are dropped.
//! Pure parsing: nothing is contacted here.

use crate::image::name_rules::{check_path, check_registry};
use crate::image::reference::Reference;

/// Where a push sends images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `REGISTRY[/PREFIX]`.
    Prefix {
        /// The registry host (and port).
        registry: String,
        /// The path put before each image's own (may be empty).
        prefix: String,
    },
    /// `REGISTRY/REPO:TAG`: the archive's one image, under this name.
    Name(Reference),
}

impl Destination {
    /// Parses `DEST`; the error says what is expected.
    pub fn parse(input: &str) -> Result<Destination, String> {
        let s = input
            .strip_prefix("https://")
            .or_else(|| input.strip_prefix("http://"))
            .unwrap_or(input)
            .trim_end_matches('/');
        let form =
            "REGISTRY[/PREFIX] (127.0.0.1:5000, registry.example.com/mirror) or REGISTRY/REPO:TAG";
        let (host, rest) = s.split_once('/').unwrap_or((s, ""));
        let looks_like_registry = host.contains('.') || host.contains(':') || host == "localhost";
        if host.is_empty() || !looks_like_registry {
            return Err(format!(
                "DEST {input:?} does not start with a registry host (a name with a dot or a port, or localhost): give {form}"
            ));
        }
        check_registry(host).map_err(|e| format!("DEST {input:?}: {e}"))?;
        if rest.contains('@') {
            return Err(format!(
                "DEST {input:?} names a digest: a push puts an image under a tag; give {form}"
            ));
        }
        let last = rest.rsplit('/').next().unwrap_or("");
        if last.contains(':') {
            let full = Reference::parse(s).map_err(|e| format!("DEST: {e}"))?;
            return Ok(Destination::Name(full));
        }
        if !rest.is_empty() {
            check_path(rest).map_err(|e| format!("DEST {input:?}: the prefix: {e}"))?;
        }
        Ok(Destination::Prefix {
            registry: host.to_string(),
            prefix: rest.to_string(),
        })
    }

    /// Where the image the archive names `name` goes (`None`: an image the
    /// archive gives no name). With a tag, under that tag; a name with a
    /// digest only is pushed by its digest, untagged.
    pub fn target(&self, name: Option<&Reference>) -> Result<Reference, String> {
        let (registry, prefix) = match self {
            Destination::Name(full) => return Ok(full.clone()),
            Destination::Prefix { registry, prefix } => (registry, prefix),
        };
        let Some(name) = name else {
            return Err(
                "the archive gives this image no name: push it alone, to a full DEST REGISTRY/REPO:TAG"
                    .into(),
            );
        };
        let path = if prefix.is_empty() {
            name.repository().to_string()
        } else {
            format!("{prefix}/{}", name.repository())
        };
        check_path(&path).map_err(|e| format!("{} under {prefix:?}: {e}", name.original()))?;
        let text = match (name.tag(), name.digest()) {
            (Some(tag), _) => format!("{registry}/{path}:{tag}"),
            (None, Some(d)) => format!("{registry}/{path}@{d}"),
            (None, None) => format!("{registry}/{path}"),
        };
        Reference::parse(&text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dest: &str, name: &str) -> String {
        let d = Destination::parse(dest).unwrap();
        d.target(Some(&Reference::parse(name).unwrap()))
            .unwrap()
            .to_string()
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            target("127.0.0.1:5000", "127.0.0.1:6000/team/app:v2"),
            "127.0.0.1:5000/team/app:v2"
        );
        assert_eq!(
            target("registry.example.com/mirror/", "nginx:1.25"),
            "registry.example.com/mirror/library/nginx:1.25"
        );
        assert_eq!(
            target("https://localhost:5000", "ghcr.io/org/tool:1"),
            "localhost:5000/org/tool:1"
        );
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            target("r.example", &format!("a/b@sha256:{hex}")),
            format!("r.example/a/b@sha256:{hex}")
        );
    }

    #[test]
    fn full_names() {
        let d = Destination::parse("r.example:5000/team/app:v3").unwrap();
        assert!(matches!(d, Destination::Name(_)));
        assert_eq!(
            d.target(None).unwrap().to_string(),
            "r.example:5000/team/app:v3"
        );
        assert_eq!(
            target("r.example/x:latest", "nginx:1"),
            "r.example/x:latest"
        );
    }

    #[test]
    fn refusals() {
        for (bad, why) in [
            ("myrepo", "registry host"),
            ("team/app", "registry host"),
            ("", "registry host"),
            ("r.example/App", "lowercase"),
            ("r.example/a@sha256:00", "digest"),
            ("bad_host.example/x", "host"),
            ("r.example/a:b:c", "DEST"),
        ] {
            let e = Destination::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let d = Destination::parse("r.example").unwrap();
        assert!(d.target(None).unwrap_err().contains("no name"));
        let long = format!("r.example/{}", "a".repeat(250));
        let d = Destination::parse(&long).unwrap();
        let e = d
            .target(Some(&Reference::parse("team/app:1").unwrap()))
            .unwrap_err();
        assert!(e.contains("255"), "{e}");
    }
}
