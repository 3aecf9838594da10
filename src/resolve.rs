//! From a reference to one image manifest, for a pull and for `inspect`:
//! fetch what the tag or digest names ([`top`]); for an index (or manifest
//! list), gather its images ([`entries`]) — following indexes nested inside
//! it, at most [`MAX_DEPTH`] deep, attestations left out — choose the one
//! for the platform wanted ([`choose`], or say which platforms there are)
//! and fetch it ([`child`]); [`resolve`] does all of it.
//!
//! A manifest fetched by digest must hash to that digest (and an index
//! entry must also have its descriptor's size), else it is fetched once
//! more and a second mismatch is final; a tag's manifest is
//! identified by the digest of the bytes received, never by the
//! `Docker-Content-Digest` header. The manifest bytes are kept verbatim
//! for the archive's OCI layout. This module fetches manifests only — no
//! config, no layer — and writes nothing.

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::{self, Descriptor, ImageManifest, Index, Manifest, Resolved};
use crate::image::platform::{self, Platform};
use crate::image::reference::Reference;
use crate::registry::client::Registry;

/// How deep indexes may nest inside an index.
pub const MAX_DEPTH: usize = 8;
/// How many nested indexes one reference may make pulltar fetch.
const MAX_NESTED: usize = 32;

/// A manifest as fetched: its digest, media type, bytes and parsed form.
#[derive(Debug)]
pub struct Fetched {
    /// The SHA-256 of the bytes received.
    pub digest: Digest,
    /// The `Content-Type`, else the document's own `mediaType`.
    pub media_type: String,
    /// The bytes received.
    pub bytes: Vec<u8>,
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
    let name = reference.original();
    let (bytes, content_type) = match reference.digest() {
        None => registry.manifest(&reference.manifest_key())?,
        Some(expected) => by_digest(registry, expected, |bytes, content_type| {
            let digest = Digest::of(bytes);
            if &digest == expected {
                return Ok(());
            }
            let schema1 = matches!(
                manifest::parse(bytes, content_type, name),
                Ok(Manifest::Schema1(_))
            );
            Err(if schema1 {
                ("it is a Docker schema 1 manifest, whose digest covers only part of the signed document, so pulltar cannot check it; pull the image by tag instead".into(), false)
            } else {
                (
                    format!("the registry's manifest for it hashes to {digest}"),
                    true,
                )
            })
        })?,
    };
    let digest = Digest::of(&bytes);
    let what = format!("manifest of {name}");
    Ok(Fetched {
        media_type: media_type_of(&bytes, content_type.as_deref()),
        manifest: manifest::parse(&bytes, content_type.as_deref(), &what)?,
        bytes,
        digest,
    })
}

/// Fetches the manifest `digest` and checks it with `check`, which says
/// what is wrong and whether another fetch may help. A mismatch is
/// fetched once more (one corrupt response, from a proxy or a CDN edge,
/// must not end a pull); a second is final and says what both were.
fn by_digest(
    registry: &Registry,
    digest: &Digest,
    check: impl Fn(&[u8], Option<&str>) -> std::result::Result<(), (String, bool)>,
) -> Result<(Vec<u8>, Option<String>)> {
    let mut first: Option<String> = None;
    loop {
        let (bytes, content_type) = registry.manifest(&digest.to_string())?;
        let detail = match check(&bytes, content_type.as_deref()) {
            Ok(()) => return Ok((bytes, content_type)),
            Err((detail, true)) if first.is_none() => detail,
            Err((detail, _)) => {
                let detail = match first {
                    Some(first) if first == detail => {
                        format!("{detail}, on both of two fetches (the registry, or a proxy on the way, serves it corrupted)")
                    }
                    Some(first) => format!("{detail}; the first fetch failed too ({first}): the registry, or a proxy on the way, is corrupting it"),
                    None => detail,
                };
                return Err(Error::Verify {
                    digest: digest.to_string(),
                    detail,
                });
            }
        };
        log::warn!(
            "manifest {}: {detail}; fetching it once more",
            digest.short()
        );
        first = Some(detail);
    }
}

/// The image entries of `index` (of `reference`), attestations left out,
/// with the images of nested indexes in their place.
pub fn entries(
    registry: &Registry,
    reference: &Reference,
    index: Index,
) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    let mut nested = 0;
    gather(
        registry,
        reference.original(),
        index,
        None,
        1,
        &mut nested,
        &mut out,
    )?;
    Ok(out)
}

/// The entry of `entries` for `wanted`, or an error listing every
/// platform there is (as the index spells them: arm64/v8 stays arm64/v8).
pub fn choose<'a>(
    reference: &Reference,
    entries: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor> {
    let platforms: Vec<Platform> = entries.iter().map(|d| d.entry_platform()).collect();
    match platform::choose(wanted, &platforms) {
        Some(i) => Ok(&entries[i]),
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

/// Fetches the index entry `entry`, checked against its digest and size;
/// it must be an image manifest.
pub fn child(
    registry: &Registry,
    reference: &Reference,
    entry: &Descriptor,
) -> Result<(Fetched, ImageManifest)> {
    let (bytes, content_type) = fetch_entry(registry, entry)?;
    let what = format!(
        "manifest {} ({}) of {}",
        entry.digest,
        entry.platform_as_listed(),
        reference.original()
    );
    match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Manifest::Image(m) => Ok((
            Fetched {
                digest: entry.digest.clone(),
                media_type: media_type_of(&bytes, content_type.as_deref()),
                bytes,
                manifest: Manifest::Image(m.clone()),
            },
            m,
        )),
        Manifest::Index(_) | Manifest::Schema1(_) => Err(Error::Manifest {
            what,
            reason: "the index lists it as an image, but it is an index or a schema 1 manifest"
                .into(),
        }),
    }
}

/// What a reference resolved to.
#[derive(Debug)]
pub enum Resolution {
    /// An image manifest.
    Image(Resolved),
    /// A Docker schema 1 manifest (with its digest), to be converted.
    Schema1(manifest::Schema1, Digest),
}

/// Fetches the manifest `reference` names and, for an index, the image in
/// it for `wanted`.
pub fn resolve(
    registry: &Registry,
    reference: &Reference,
    wanted: &Platform,
) -> Result<Resolution> {
    let name = reference.original();
    let fetched = top(registry, reference)?;
    let digest = fetched.digest;
    let index = match fetched.manifest {
        Manifest::Image(image) => {
            log::debug!("{name} is a single-platform image {digest}");
            return Ok(Resolution::Image(Resolved {
                digest,
                bytes: fetched.bytes,
                image,
                from_index: false,
            }));
        }
        Manifest::Schema1(m) => {
            log::debug!("{name} is a Docker schema 1 image {digest}");
            return Ok(Resolution::Schema1(m, digest));
        }
        Manifest::Index(index) => index,
    };
    let entries = entries(registry, reference, index)?;
    let entry = choose(reference, &entries, wanted)?;
    log::debug!(
        "{name} -> {} ({})",
        entry.digest,
        entry.platform_as_listed()
    );
    let (fetched, image) = child(registry, reference, entry)?;
    Ok(Resolution::Image(Resolved {
        digest: fetched.digest,
        bytes: fetched.bytes,
        image,
        from_index: true,
    }))
}

/// Adds the image entries of `index` to `out`, following nested indexes.
/// An entry without a platform inherits `inherited`, the platform of the
/// entry that led to this index.
fn gather(
    registry: &Registry,
    name: &str,
    index: Index,
    inherited: Option<&manifest::PlatformSpec>,
    depth: usize,
    nested: &mut usize,
    out: &mut Vec<Descriptor>,
) -> Result<()> {
    for mut entry in index.manifests {
        if entry.platform.is_none() {
            entry.platform = inherited.cloned();
        }
        if entry.is_attestation() {
            continue;
        }
        if entry.media_type != manifest::OCI_INDEX && entry.media_type != manifest::DOCKER_LIST {
            out.push(entry);
            continue;
        }
        *nested += 1;
        if depth >= MAX_DEPTH || *nested > MAX_NESTED {
            return Err(Error::Manifest {
                what: format!("index of {name}"),
                reason: format!(
                    "it nests indexes more than {MAX_DEPTH} deep or more than {MAX_NESTED} in all (at {}); pick an image by digest instead",
                    entry.digest
                ),
            });
        }
        let what = format!("index {} inside the index of {name}", entry.digest);
        let (bytes, content_type) = fetch_entry(registry, &entry)?;
        match manifest::parse(&bytes, content_type.as_deref(), &what)? {
            Manifest::Index(inner) => {
                log::debug!("{name}: following the nested index {}", entry.digest);
                let platform = entry.platform.clone();
                gather(
                    registry,
                    name,
                    inner,
                    platform.as_ref(),
                    depth + 1,
                    nested,
                    out,
                )?;
            }
            Manifest::Image(_) | Manifest::Schema1(_) => out.push(entry),
        }
    }
    Ok(())
}

/// Fetches an index entry by digest and checks its size and digest.
fn fetch_entry(registry: &Registry, entry: &Descriptor) -> Result<(Vec<u8>, Option<String>)> {
    by_digest(registry, &entry.digest, |bytes, _| {
        let actual = Digest::of(bytes);
        if actual == entry.digest && bytes.len() as u64 == entry.size {
            return Ok(());
        }
        Err((
            format!(
                "the registry's manifest for it has {} bytes and hashes to {actual} (the index says {} bytes)",
                bytes.len(),
                entry.size
            ),
            true,
        ))
    })
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
