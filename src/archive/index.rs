//! What the archive holds, before it is written: its named entries
//! ([`ImageEntry`]: the images a name stands for, each an [`Image`] with its
//! config, layers and OCI manifest; with several platforms, the index the
//! OCI layout names; the documents and blobs kept for a push), the layouts
//! asked for ([`Format`]) and the members in the order they are written
//! ([`members`]), each blob once, named by its digest ([`blob_name`]).
//!
//! The JSON documents themselves (`index.json`, `manifest.json`,
//! `repositories`) are built in [`crate::archive::documents`]; `writer.rs`
//! and `in_place.rs` write the members into the tar. Only validated
//! digests' hex becomes part of a name.

use crate::archive::documents::{manifest_json, oci_index_json, repositories_json};
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::image::upstream::{Document, Upstream};

/// Which layouts the archive holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// docker's `manifest.json` and `repositories` and the OCI layout
    /// (`oci-layout`, `index.json`, manifests), over one set of blobs.
    #[default]
    Both,
    /// `manifest.json` and `repositories` only.
    Docker,
    /// The OCI layout only.
    Oci,
}

impl Format {
    /// Whether docker's `manifest.json` is written.
    pub fn docker(self) -> bool {
        self != Format::Oci
    }

    /// Whether the OCI layout is written.
    pub fn oci(self) -> bool {
        self != Format::Docker
    }
}

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
    /// The descriptor `index.json` names for this entry: the index, or
    /// the one image's manifest.
    pub fn layout(&self) -> &(Descriptor, Vec<u8>) {
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

/// One entry of the archive.
#[derive(Debug)]
pub enum Member<'a> {
    /// A directory (`blobs/`).
    Dir(&'static str),
    /// A blob from the store, named by its digest.
    Blob(&'a Descriptor),
    /// A document held in memory: its name and bytes.
    Doc(String, Vec<u8>),
    /// A document held in memory, shared with the entries.
    Kept(String, &'a [u8]),
}

impl Member<'_> {
    /// The entry's name in the tar.
    pub fn name(&self) -> String {
        match self {
            Member::Dir(d) => d.to_string(),
            Member::Blob(b) => blob_name(&b.digest),
            Member::Doc(name, _) => name.clone(),
            Member::Kept(name, _) => name.clone(),
        }
    }

    /// The entry's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Member::Dir(_) => 0,
            Member::Blob(b) => b.size,
            Member::Doc(_, bytes) => bytes.len() as u64,
            Member::Kept(_, bytes) => bytes.len() as u64,
        }
    }

    /// The bytes of a document held in memory.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Member::Doc(_, bytes) => Some(bytes),
            Member::Kept(_, bytes) => Some(bytes),
            Member::Dir(_) | Member::Blob(_) => None,
        }
    }
}

/// The archive's entries, in the order they are written: `blobs/`,
/// `blobs/sha256/`; for each named entry the config and layers of each of
/// its images, its other blobs, (in the OCI layout) each image's manifest
/// and its index, and the documents kept for a push, each blob once; then
/// `oci-layout` and `index.json`, and `manifest.json` and `repositories`,
/// as `format` says.
pub fn members(entries: &[ImageEntry], format: Format) -> Vec<Member<'_>> {
    let mut out = vec![Member::Dir("blobs/"), Member::Dir("blobs/sha256/")];
    let mut seen: std::collections::HashSet<&Digest> = Default::default();
    for entry in entries {
        for blob in entry.blobs() {
            if seen.insert(&blob.digest) {
                out.push(Member::Blob(blob));
            }
        }
        let layout = entry.images.iter().map(|i| &i.manifest).chain(&entry.index);
        for (desc, bytes) in layout {
            if format.oci() && seen.insert(&desc.digest) {
                out.push(Member::Kept(blob_name(&desc.digest), bytes));
            }
        }
        for doc in &entry.documents {
            if seen.insert(&doc.digest) {
                out.push(Member::Kept(blob_name(&doc.digest), &doc.bytes));
            }
        }
    }
    if format.oci() {
        out.push(Member::Doc("oci-layout".into(), OCI_LAYOUT.to_vec()));
        out.push(Member::Doc("index.json".into(), oci_index_json(entries)));
    }
    if format.docker() {
        out.push(Member::Doc("manifest.json".into(), manifest_json(entries)));
        if let Some(repos) = repositories_json(entries) {
            out.push(Member::Doc("repositories".into(), repos));
        }
    }
    out
}

/// The `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The path of a blob inside the archive.
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A descriptor of `data` (also used by `writer.rs`'s tests).
    pub(crate) fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "x".into(),
            digest: Digest::of(data),
            size: data.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }

    /// An image entry over `config` and `layers` (also used by
    /// `writer.rs`'s tests).
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
