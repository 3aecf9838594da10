//! From a reference to one image manifest, for any command that needs
//! it: fetch the reference's manifest (checked against the reference's
//! digest when it has one), and for an index list its image entries
//! (attestations left out), choose the entry for a platform (or say which
//! platforms there are), and fetch the chosen child, checked against its
//! descriptor's digest and size.
//!
//! A tag's manifest is identified by the digest of the bytes received,
//! never by `Docker-Content-Digest`. This module fetches manifests only —
//! no config, no layer — and writes nothing.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageManifest, Manifest};
use crate::platform::{self, Platform};
use crate::reference::Reference;
use crate::registry::Registry;

/// A manifest as fetched: its digest, media type and parsed form.
#[derive(Debug)]
pub struct Fetched {
    /// The SHA-256 of the bytes received.
    pub digest: Digest,
    /// The `Content-Type`, else the document's own `mediaType`.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The parsed document.
    pub manifest: Manifest,
}

fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> String {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let own = || {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()?
            .get("mediaType")?
            .as_str()
            .map(str::to_string)
    };
    let t = header.or_else(own).unwrap_or_default();
    crate::error::excerpt(t.as_bytes(), 120)
}

/// Fetches the manifest (or index) the reference names.
pub fn top(registry: &Registry, reference: &Reference) -> Result<Fetched> {
    let (bytes, content_type) = registry.manifest(&reference.manifest_key())?;
    let digest = Digest::of(&bytes);
    if let Some(wanted) = reference.digest() {
        if &digest != wanted {
            return Err(Error::Verify {
                digest: wanted.to_string(),
                detail: format!("the registry's manifest for it hashes to {digest}"),
            });
        }
    }
    let what = format!("manifest of {}", reference.original());
    Ok(Fetched {
        media_type: media_type_of(&bytes, content_type.as_deref()),
        size: bytes.len() as u64,
        manifest: manifest::parse(&bytes, content_type.as_deref(), &what)?,
        digest,
    })
}

/// The image entries of an index (attestations left out).
pub fn images(index: &manifest::Index) -> Vec<&Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| !d.is_attestation())
        .collect()
}

/// The entry of `entries` for `wanted`, or an error listing every
/// platform there is.
pub fn choose<'a>(
    reference: &Reference,
    entries: &[&'a Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor> {
    let platforms: Vec<Platform> = entries.iter().map(|d| d.entry_platform()).collect();
    match platform::choose(wanted, &platforms) {
        Some(i) => Ok(entries[i]),
        None => {
            let available: Vec<String> = entries.iter().map(|d| d.platform_as_listed()).collect();
            Err(Error::Platform(format!(
                "{} has no image for {wanted}; available platforms: {} (choose one with --platform)",
                reference.original(),
                if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                }
            )))
        }
    }
}

/// Fetches the index entry `child`, checked against its digest and size;
/// it must be an image manifest.
pub fn child(
    registry: &Registry,
    reference: &Reference,
    child: &Descriptor,
) -> Result<(Fetched, ImageManifest)> {
    let (bytes, content_type) = registry.manifest(&child.digest.to_string())?;
    let actual = Digest::of(&bytes);
    if actual != child.digest || bytes.len() as u64 != child.size {
        return Err(Error::Verify {
            digest: child.digest.to_string(),
            detail: format!(
                "the registry's manifest for it has {} bytes and hashes to {actual} (the index says {} bytes)",
                bytes.len(),
                child.size
            ),
        });
    }
    let what = format!(
        "manifest {} ({}) of {}",
        child.digest,
        child.platform_as_listed(),
        reference.original()
    );
    match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Manifest::Image(m) => Ok((
            Fetched {
                digest: actual,
                media_type: media_type_of(&bytes, content_type.as_deref()),
                size: bytes.len() as u64,
                manifest: Manifest::Image(m.clone()),
            },
            m,
        )),
        Manifest::Index(_) => Err(Error::Manifest {
            what,
            reason: "an index inside an index is not supported".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            media_type_of(b"{}", Some("application/vnd.oci.image.index.v1+json; x=y")),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            media_type_of(br#"{"mediaType":"a/b"}"#, Some("application/json")),
            "a/b"
        );
        assert_eq!(media_type_of(b"{}", None), "");
    }
}
