//! The archive's layout: the layouts asked for ([`Format`]) and, for the
//! named entries ([`crate::archive::entries`]), the members in the order
//! they are written ([`members`]), each blob once, named by its digest
//! ([`blob_name`]).
//!
//! The JSON documents themselves (`index.json`, `manifest.json`,
//! `repositories`) are built in [`crate::archive::documents`]; `writer.rs`
//! and `in_place.rs` write the members into the tar. Only validated
//! digests' hex becomes part of a name.

use crate::archive::documents::{manifest_json, oci_index_json, repositories_json};
use crate::archive::entries::ImageEntry;
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;

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
