//! The archive's named entries ([`ImageEntry`]), from what a pull
//! resolved: for each reference its images ([`Image`]: one, or several of
//! one index, each with its config, its layers as the archive holds them
//! and its OCI manifest); its names (docker's RepoTags, the OCI layout's
//! names); the registry's documents kept as they came (the image
//! manifests, the index and the indexes nested in it, the attestation
//! manifests, with the attestations' configs and layers), and the record
//! of which document the names stand for ([`Upstream`]); and, with several
//! images, the index the OCI layout names. That index is the registry's
//! own, byte for byte, when it is an OCI index whose every manifest the
//! archive holds as it is; otherwise an OCI index written anew over the
//! images (skopeo's `oci-archive:` reads OCI types only), the registry's
//! kept beside it for a push.
//!
//! References naming the same thing become one entry with all their
//! names. This module builds values; it reads and writes nothing.

use crate::archive::layers::{descriptor, LayerWork};
use crate::image::digest::Digest;
use crate::image::manifest::{Descriptor, Resolved, OCI_INDEX};
use crate::image::reference::Reference;
use crate::image::upstream::{Document, Several, Upstream};

/// One image of the archive.
#[derive(Clone, Debug)]
pub struct Image {
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs as the archive holds them, base first.
    pub layers: Vec<Descriptor>,
    /// The config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// The image manifest for the OCI layout (its platform set), and its
    /// bytes.
    pub manifest: (Descriptor, Vec<u8>),
}

/// One named entry of the archive: the images its names stand for.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    /// The images, at least one; docker's `manifest.json` lists the
    /// first.
    pub images: Vec<Image>,
    /// With several images: the index the OCI layout names for them, and
    /// its bytes.
    pub index: Option<(Descriptor, Vec<u8>)>,
    /// `name:tag` entries (may be empty).
    pub repo_tags: Vec<String>,
    /// Names for the OCI index: (full name, as `io.containerd.image.name`;
    /// the tag, as `org.opencontainers.image.ref.name`, if there is one).
    pub oci_names: Vec<(String, Option<String>)>,
    /// The registry's document the names stand for, if it is kept.
    pub upstream: Option<Upstream>,
    /// Documents kept as the registry sent them (its manifests and
    /// indexes, attestation manifests), in every format.
    pub documents: Vec<Document>,
    /// Other blobs from the store, in every format (the configs and
    /// layers of attestations).
    pub blobs: Vec<Descriptor>,
}

impl ImageEntry {
    /// The document `index.json` names for this entry, and its bytes:
    /// the index, or the one image's manifest.
    pub fn root(&self) -> &(Descriptor, Vec<u8>) {
        match &self.index {
            Some(index) => index,
            None => &self.images[0].manifest,
        }
    }

    /// Every blob of the entry from the store: its images' configs and
    /// layers, and its other blobs.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        let images = self.images.iter();
        images
            .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
            .chain(&self.blobs)
    }

    /// The image docker's `manifest.json` lists.
    pub fn docker_image(&self) -> &Image {
        &self.images[0]
    }
}

/// What one reference of a pull brings to the archive.
pub struct Part<'a> {
    /// The reference.
    pub reference: &'a Reference,
    /// Its images and what became of their layers; the one `docker load`
    /// gets first.
    pub images: Vec<(&'a LayerWork, &'a Resolved)>,
    /// With several images of an index: the index and what came with it.
    pub several: Option<&'a Several>,
}

/// The archive's entries for `parts` (`expanded` has the plain tars of
/// decompressed layers): one per distinct image or index, an entry named
/// twice holding both names.
pub fn entries<'a>(
    parts: impl Iterator<Item = Part<'a>>,
    expanded: &[Descriptor],
) -> Vec<ImageEntry> {
    let mut out: Vec<ImageEntry> = Vec::new();
    for part in parts {
        let entry = entry(&part, expanded);
        let key = &entry.root().0.digest;
        let Some(same) = out.iter_mut().find(|e| &e.root().0.digest == key) else {
            out.push(entry);
            continue;
        };
        for tag in entry.repo_tags {
            if !same.repo_tags.contains(&tag) {
                same.repo_tags.push(tag);
            }
        }
        for name in entry.oci_names {
            if !same.oci_names.contains(&name) {
                same.oci_names.push(name);
            }
        }
    }
    out
}

/// The entry of one reference.
fn entry(part: &Part, expanded: &[Descriptor]) -> ImageEntry {
    let images: Vec<Image> = part
        .images
        .iter()
        .map(|(work, resolved)| work.image(resolved, expanded))
        .collect();
    let mut documents: Vec<Document> = Vec::new();
    let mut keep = |doc: Document| {
        if !documents.iter().any(|d| d.digest == doc.digest) {
            documents.push(doc);
        }
    };
    for (_, r) in &part.images {
        // Empty for a manifest pulltar wrote (schema 1): nothing to keep.
        if !r.bytes.is_empty() {
            keep(Document {
                digest: r.digest.clone(),
                media_type: r.image.media_type.clone(),
                bytes: r.bytes.clone(),
            });
        }
        if let Some(index) = &r.index {
            keep(index.clone());
        }
    }
    let mut blobs = Vec::new();
    let (upstream, index) = match part.several {
        Some(several) => {
            keep(several.index.clone());
            several.nested.iter().cloned().for_each(&mut keep);
            for (doc, m) in &several.attestations {
                keep(doc.clone());
                blobs.push(m.config.clone());
                blobs.extend(m.layers.iter().cloned());
            }
            let upstream = Upstream {
                digest: several.index.digest.clone(),
                media_type: several.index.media_type.clone(),
                index: None,
            };
            (Some(upstream), Some(oci_index(several, &images)))
        }
        None => {
            let (_, r) = &part.images[0];
            let upstream = (!r.bytes.is_empty()).then(|| Upstream {
                digest: r.digest.clone(),
                media_type: r.image.media_type.clone(),
                index: r.index.as_ref().map(|i| i.digest.clone()),
            });
            (upstream, None)
        }
    };
    let reference = part.reference;
    let full = match (reference.tag(), reference.digest()) {
        (Some(tag), _) => Some((
            format!("{}/{}:{tag}", reference.registry(), reference.repository()),
            Some(tag.to_string()),
        )),
        (None, Some(d)) => Some((
            format!("{}/{}@{d}", reference.registry(), reference.repository()),
            None,
        )),
        (None, None) => None,
    };
    ImageEntry {
        images,
        index,
        repo_tags: reference.repo_tag().into_iter().collect(),
        oci_names: full.into_iter().collect(),
        upstream,
        documents,
        blobs,
    }
}

/// The index the OCI layout names for several images: the registry's own
/// when it is an OCI index (nested ones too), every manifest of it is
/// taken and each image's manifest is kept as it is; else an OCI index
/// written anew over the images' manifests.
fn oci_index(several: &Several, images: &[Image]) -> (Descriptor, Vec<u8>) {
    let verbatim = several.complete
        && several.index.media_type == OCI_INDEX
        && several.nested.iter().all(|n| n.media_type == OCI_INDEX)
        && images
            .iter()
            .zip(&several.images)
            .all(|(i, r)| i.manifest.0.digest == r.digest);
    if verbatim {
        let bytes = several.index.bytes.clone();
        return (descriptor(OCI_INDEX, &bytes), bytes);
    }
    let manifests: Vec<&Descriptor> = images.iter().map(|i| &i.manifest.0).collect();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    // Serialising descriptors (strings and numbers) cannot fail.
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    (descriptor(OCI_INDEX, &bytes), bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A descriptor of `data` (also used by the other modules' tests).
    pub(crate) fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "x".into(),
            digest: Digest::of(data),
            size: data.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }

    /// An image entry over `config` and `layers` (also used by the other
    /// modules' tests).
    pub(crate) fn entry_of(config: Descriptor, layers: Vec<Descriptor>) -> ImageEntry {
        let bytes = crate::archive::documents::oci_manifest_json(&config, &layers);
        let image = Image {
            diff_ids: layers
                .iter()
                .map(|l| Digest::of(l.digest.hex().as_bytes()))
                .collect(),
            config,
            layers,
            manifest: (
                Descriptor {
                    media_type: crate::image::manifest::OCI_MANIFEST.into(),
                    ..desc(&bytes)
                },
                bytes,
            ),
        };
        ImageEntry {
            images: vec![image],
            index: None,
            repo_tags: vec!["127.0.0.1:5000/team/app:v2".into()],
            oci_names: vec![("127.0.0.1:5000/team/app:v2".into(), Some("v2".into()))],
            upstream: None,
            documents: Vec::new(),
            blobs: Vec::new(),
        }
    }
}
