//! From a reference to its image manifests, for a pull and for `inspect`:
//! fetch what the tag or digest names ([`top`]); for an index (or manifest
//! list), gather its images ([`entries`]) — following indexes nested inside
//! it, at most [`MAX_DEPTH`] deep, attestations set aside — choose the one
//! for the platform wanted ([`choose`], or say which platforms there are)
//! and fetch it ([`child`]); [`resolve`] does all of it for one platform,
//! [`resolve_several`] for `--platform all` or a list of platforms (with
//! the attestation manifests and nested indexes, kept as they came). A tag
//! not found gets the repository's tags as a hint ([`hints`]); a Docker
//! schema 1 image is converted by [`schema1`].
//!
//! A manifest fetched by digest must hash to that digest (and an index
//! entry must also have its descriptor's size), else it is fetched once
//! more and a second mismatch is final; a tag's manifest is
//! identified by the digest of the bytes received, never by the
//! `Docker-Content-Digest` header. Through a mirror list, requests fail
//! over as `registry/mirrors.rs` says. The manifest bytes are kept verbatim
//! for the archive's OCI layout. This module fetches manifests only — no
//! config, no layer — and writes nothing.

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::{
    self, Descriptor, ImageManifest, Index, Manifest, Resolved, MAX_DEPTH, MAX_NESTED,
};
use crate::image::platform::{self, Platform, Selection};
use crate::image::reference::Reference;
use crate::image::upstream::{Document, Several};
use crate::registry::mirrors::Hosts;

pub mod hints;
pub mod schema1;

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

/// Fetches the manifest (or index) the reference names.
pub fn top(registry: &Hosts, reference: &Reference) -> Result<Fetched> {
    let name = reference.original();
    let (bytes, content_type) = match reference.digest() {
        None => registry
            .tag(name, &reference.manifest_key())
            .map_err(|e| hints::missing_manifest(e, registry, reference))?,
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
        media_type: crate::image::media_type::of_document(&bytes, content_type.as_deref()),
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
    registry: &Hosts,
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
                return Err(Error::Verify {
                    digest: digest.to_string(),
                    detail: crate::error::second_mismatch(first, detail),
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

/// What walking an index found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The image entries, with the images of nested indexes in their
    /// place.
    pub images: Vec<Descriptor>,
    /// The attestation entries.
    pub attestations: Vec<Descriptor>,
    /// The nested indexes, as the registry sent them.
    pub indexes: Vec<Document>,
}

/// Walks `index` (of `reference`), following nested indexes.
pub fn walk(registry: &Hosts, reference: &Reference, index: Index) -> Result<Walk> {
    let mut out = Walk::default();
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

/// The image entries of `index` (of `reference`), attestations left out,
/// with the images of nested indexes in their place.
pub fn entries(registry: &Hosts, reference: &Reference, index: Index) -> Result<Vec<Descriptor>> {
    Ok(walk(registry, reference, index)?.images)
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
    registry: &Hosts,
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
                media_type: crate::image::media_type::of_document(&bytes, content_type.as_deref()),
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
    Image(Box<Resolved>),
    /// A Docker schema 1 manifest (with its digest), to be converted.
    Schema1(manifest::Schema1, Digest),
    /// Several images of an index.
    Several(Box<Several>),
}

/// Fetches the manifest `reference` names and, for an index, the image in
/// it for `wanted`.
pub fn resolve(registry: &Hosts, reference: &Reference, wanted: &Platform) -> Result<Resolution> {
    let name = reference.original();
    let (index, top_doc) = match top_or_single(registry, reference)? {
        Ok(single) => return Ok(single),
        Err(index) => index,
    };
    let entries = entries(registry, reference, index)?;
    let entry = choose(reference, &entries, wanted)?;
    log::debug!(
        "{name} -> {} ({})",
        entry.digest,
        entry.platform_as_listed()
    );
    let (fetched, image) = child(registry, reference, entry)?;
    Ok(Resolution::Image(Box::new(Resolved {
        digest: fetched.digest,
        bytes: fetched.bytes,
        image,
        from_index: true,
        index: Some(top_doc),
    })))
}

/// Fetches what `reference` names: a single image (or schema 1 image) as
/// its resolution, else the index and its document.
fn top_or_single(
    registry: &Hosts,
    reference: &Reference,
) -> Result<std::result::Result<Resolution, (Index, Document)>> {
    let name = reference.original();
    let fetched = top(registry, reference)?;
    let digest = fetched.digest;
    match fetched.manifest {
        Manifest::Image(image) => {
            log::debug!("{name} is a single-platform image {digest}");
            Ok(Ok(Resolution::Image(Box::new(Resolved {
                digest,
                bytes: fetched.bytes,
                image,
                from_index: false,
                index: None,
            }))))
        }
        Manifest::Schema1(m) => {
            log::debug!("{name} is a Docker schema 1 image {digest}");
            Ok(Ok(Resolution::Schema1(m, digest)))
        }
        Manifest::Index(index) => Ok(Err((
            index,
            Document {
                digest,
                media_type: fetched.media_type,
                bytes: fetched.bytes,
            },
        ))),
    }
}

/// Fetches what `reference` names and, for an index, the images
/// `selection` takes: every one for `all` (with every attestation), else
/// the best for each platform listed (with the attestations of those
/// images; a platform the index lacks is an error). The image `docker
/// load` gets comes first. A single image is resolved as it is.
pub fn resolve_several(
    registry: &Hosts,
    reference: &Reference,
    selection: &Selection,
) -> Result<Resolution> {
    let (index, top_doc) = match top_or_single(registry, reference)? {
        Ok(single) => return Ok(single),
        Err(index) => index,
    };
    let walk = walk(registry, reference, index)?;
    let platforms: Vec<Platform> = walk.images.iter().map(|d| d.entry_platform()).collect();
    let picked = selection.pick(&platforms).map_err(|missing| {
        choose(reference, &walk.images, &missing)
            .err()
            .unwrap_or_else(|| Error::Platform(format!("no image for {missing}")))
    })?;
    let chosen: Vec<&Descriptor> = picked.iter().map(|&i| &walk.images[i]).collect();
    let mut images = Vec::new();
    for entry in &chosen {
        log::debug!(
            "{} -> {} ({})",
            reference.original(),
            entry.digest,
            entry.platform_as_listed()
        );
        let (fetched, image) = child(registry, reference, entry)?;
        images.push(Resolved {
            digest: fetched.digest,
            bytes: fetched.bytes,
            image,
            from_index: true,
            index: None,
        });
    }
    let mut attestations = Vec::new();
    for entry in &walk.attestations {
        let wanted =
            matches!(selection, Selection::All) || chosen.iter().any(|c| entry.attests(&c.digest));
        if !wanted
            || attestations
                .iter()
                .any(|(d, _): &(Document, _)| d.digest == entry.digest)
        {
            continue;
        }
        let (fetched, m) = child(registry, reference, entry)?;
        let media_type = match fetched.media_type {
            t if t.is_empty() => entry.media_type.clone(),
            t => t,
        };
        let doc = Document {
            digest: fetched.digest,
            media_type,
            bytes: fetched.bytes,
        };
        attestations.push((doc, m));
    }
    Ok(Resolution::Several(Box::new(Several {
        images,
        index: top_doc,
        nested: walk.indexes,
        attestations,
        complete: matches!(selection, Selection::All),
    })))
}

/// Adds the image entries of `index` to `out`, following nested indexes.
/// An entry without a platform inherits `inherited`, the platform of the
/// entry that led to this index.
fn gather(
    registry: &Hosts,
    name: &str,
    index: Index,
    inherited: Option<&manifest::PlatformSpec>,
    depth: usize,
    nested: &mut usize,
    out: &mut Walk,
) -> Result<()> {
    for mut entry in index.manifests {
        if entry.platform.is_none() {
            entry.platform = inherited.cloned();
        }
        if entry.is_attestation() {
            out.attestations.push(entry);
            continue;
        }
        if entry.media_type != manifest::OCI_INDEX && entry.media_type != manifest::DOCKER_LIST {
            out.images.push(entry);
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
                if !out.indexes.iter().any(|d| d.digest == entry.digest) {
                    out.indexes.push(Document {
                        digest: entry.digest.clone(),
                        media_type: entry.media_type.clone(),
                        bytes,
                    });
                }
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
            Manifest::Image(_) | Manifest::Schema1(_) => out.images.push(entry),
        }
    }
    Ok(())
}

/// Fetches an index entry by digest and checks its size and digest.
fn fetch_entry(registry: &Hosts, entry: &Descriptor) -> Result<(Vec<u8>, Option<String>)> {
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
