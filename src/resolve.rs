//! From a reference to one image manifest: fetch what the tag or digest
//! names; for an index (or manifest list), gather its images — following
//! indexes nested inside it, at most [`MAX_DEPTH`] deep — choose the one
//! for the platform wanted and fetch it.
//!
//! A manifest fetched by digest must hash to that digest (and an index
//! entry must also have its descriptor's size); a tag's manifest is
//! identified by the digest of the bytes received, never by the
//! `Docker-Content-Digest` header. Attestation entries are skipped. The
//! manifest bytes are kept verbatim for the archive's OCI layout. This
//! module does not download blobs and does not look at configs.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageManifest, Index, Manifest};
use crate::platform::{self, Platform};
use crate::reference::Reference;
use crate::registry::Registry;

/// How deep indexes may nest inside an index.
pub const MAX_DEPTH: usize = 8;
/// How many nested indexes one reference may make pulltar fetch.
const MAX_NESTED: usize = 32;

/// The image manifest a reference resolved to.
#[derive(Debug)]
pub struct Resolved {
    /// The digest of the manifest bytes.
    pub digest: Digest,
    /// The manifest exactly as the registry sent it.
    pub bytes: Vec<u8>,
    /// The manifest.
    pub image: ImageManifest,
    /// Whether it was chosen from an index (a config whose platform
    /// differs is then the index's mistake: a warning).
    pub from_index: bool,
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
    let (bytes, content_type) = registry.manifest(&reference.manifest_key())?;
    let digest = Digest::of(&bytes);
    if let Some(expected) = reference.digest() {
        if &digest != expected {
            let schema1 = matches!(
                manifest::parse(&bytes, content_type.as_deref(), name),
                Ok(Manifest::Schema1(_))
            );
            return Err(Error::Verify {
                digest: expected.to_string(),
                detail: if schema1 {
                    "it is a Docker schema 1 manifest, whose digest covers only part of the signed document, so pulltar cannot check it; pull the image by tag instead".into()
                } else {
                    format!("the registry's manifest for it hashes to {digest}")
                },
            });
        }
    }
    let what = format!("manifest of {name}");
    let index = match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Manifest::Image(image) => {
            log::debug!("{name} is a single-platform image {digest}");
            return Ok(Resolution::Image(Resolved {
                digest,
                bytes,
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
    let mut entries = Vec::new();
    let mut nested = 0;
    gather(registry, name, index, None, 1, &mut nested, &mut entries)?;
    let platforms: Vec<Platform> = entries.iter().map(|d| d.entry_platform()).collect();
    let Some(i) = platform::choose(wanted, &platforms) else {
        // As the index spells them (arm64/v8 stays arm64/v8).
        let available: Vec<String> = entries.iter().map(|d| d.platform_as_listed()).collect();
        return Err(Error::Platform(format!(
            "{name} has no image for {wanted}; available platforms: {} (choose one with --platform)",
            if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            }
        )));
    };
    let child = &entries[i];
    log::debug!("{name} -> {} ({})", child.digest, platforms[i]);
    let what = format!("manifest {} ({}) of {name}", child.digest, platforms[i]);
    let (bytes, content_type) = fetch_entry(registry, child)?;
    match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Manifest::Image(image) => Ok(Resolution::Image(Resolved {
            digest: child.digest.clone(),
            bytes,
            image,
            from_index: true,
        })),
        Manifest::Index(_) | Manifest::Schema1(_) => Err(Error::Manifest {
            what,
            reason: "the index lists it as an image, but it is an index or a schema 1 manifest"
                .into(),
        }),
    }
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
    let (bytes, content_type) = registry.manifest(&entry.digest.to_string())?;
    let actual = Digest::of(&bytes);
    if actual != entry.digest || bytes.len() as u64 != entry.size {
        return Err(Error::Verify {
            digest: entry.digest.to_string(),
            detail: format!(
                "the registry's manifest for it has {} bytes and hashes to {actual} (the index says {} bytes)",
                bytes.len(),
                entry.size
            ),
        });
    }
    Ok((bytes, content_type))
}
