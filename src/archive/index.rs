//! The archive's index documents: docker's `manifest.json` (one
//! `{"Config", "RepoTags", "Layers"}` item per image, paths into
//! `blobs/sha256/`, layers in manifest order) and the legacy `repositories`
//! (`{name: {tag: <chain id of the top layer>}}`); the OCI layout's
//! `oci-layout` and `index.json` (one entry per name, annotated as
//! `docker save` does since Docker 25: `io.containerd.image.name` with the
//! full name, `org.opencontainers.image.ref.name` with the tag); the
//! entry name of a blob. Only validated digests' hex becomes part of a
//! name. This module builds bytes; `writer.rs` writes them into the tar.

use std::collections::BTreeMap;

use serde::Serialize;

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

/// One image to put in the archive.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs as the archive holds them, base first.
    pub layers: Vec<Descriptor>,
    /// The config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// `name:tag` entries (may be empty).
    pub repo_tags: Vec<String>,
    /// Names for the OCI index: (full name, as `io.containerd.image.name`;
    /// the tag, as `org.opencontainers.image.ref.name`, if there is one).
    pub oci_names: Vec<(String, Option<String>)>,
    /// The image manifest for the OCI layout (its platform set), and its
    /// bytes.
    pub manifest: (Descriptor, Vec<u8>),
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
}

impl Member<'_> {
    /// The entry's name in the tar.
    pub fn name(&self) -> String {
        match self {
            Member::Dir(d) => d.to_string(),
            Member::Blob(b) => blob_name(&b.digest),
            Member::Doc(name, _) => name.clone(),
        }
    }

    /// The entry's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Member::Dir(_) => 0,
            Member::Blob(b) => b.size,
            Member::Doc(_, bytes) => bytes.len() as u64,
        }
    }
}

/// The archive's entries, in the order they are written: `blobs/`,
/// `blobs/sha256/`; for each image its config, its layers and (in the OCI
/// layout) its manifest, each blob once; then `oci-layout` and
/// `index.json`, and `manifest.json` and `repositories`, as `format` says.
pub fn members(images: &[ImageEntry], format: Format) -> Vec<Member<'_>> {
    let mut out = vec![Member::Dir("blobs/"), Member::Dir("blobs/sha256/")];
    let mut seen: std::collections::HashSet<&Digest> = Default::default();
    for image in images {
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            if seen.insert(&blob.digest) {
                out.push(Member::Blob(blob));
            }
        }
        let (manifest, bytes) = &image.manifest;
        if format.oci() && seen.insert(&manifest.digest) {
            out.push(Member::Doc(blob_name(&manifest.digest), bytes.clone()));
        }
    }
    if format.oci() {
        out.push(Member::Doc("oci-layout".into(), OCI_LAYOUT.to_vec()));
        out.push(Member::Doc("index.json".into(), oci_index_json(images)));
    }
    if format.docker() {
        out.push(Member::Doc("manifest.json".into(), manifest_json(images)));
        if let Some(repos) = repositories_json(images) {
            out.push(Member::Doc("repositories".into(), repos));
        }
    }
    out
}

/// The `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The OCI layout's `index.json` for `images`: one entry per name, one
/// unnamed entry for an image without names.
pub fn oci_index_json(images: &[ImageEntry]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for image in images {
        let (desc, _) = &image.manifest;
        if image.oci_names.is_empty() {
            manifests.push(desc.clone());
        }
        for (full, tag) in &image.oci_names {
            let mut d = desc.clone();
            d.annotations
                .insert("io.containerd.image.name".into(), full.clone());
            if let Some(tag) = tag {
                d.annotations
                    .insert("org.opencontainers.image.ref.name".into(), tag.clone());
            }
            manifests.push(d);
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::image::manifest::OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

/// An OCI image manifest for a config and the layers as the archive holds
/// them (used when a layer was decompressed, so the registry's manifest
/// no longer describes the blobs). Returns its bytes.
pub fn oci_manifest_json(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    let plain = |d: &Descriptor, media_type: &str| serde_json::json!({"mediaType": media_type, "digest": d.digest, "size": d.size});
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::image::manifest::OCI_MANIFEST,
        "config": plain(config, "application/vnd.oci.image.config.v1+json"),
        "layers": layers.iter().map(|l| plain(l, &l.media_type)).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// The path of a blob inside the archive.
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The `manifest.json` document for `images`.
pub fn manifest_json(images: &[ImageEntry]) -> Vec<u8> {
    let items: Vec<ManifestItem> = images
        .iter()
        .map(|i| ManifestItem {
            config: blob_name(&i.config.digest),
            repo_tags: i.repo_tags.clone(),
            layers: i.layers.iter().map(|l| blob_name(&l.digest)).collect(),
        })
        .collect();
    // Serialising plain strings and vectors cannot fail.
    serde_json::to_vec(&items).unwrap_or_default()
}

/// The legacy `repositories` document: for each tagged image, its name and
/// tag mapped to the chain ID of its top layer. `None` when no image is
/// tagged and layered.
pub fn repositories_json(images: &[ImageEntry]) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let Some(top) = chain_id(&image.diff_ids) else {
            continue;
        };
        for rt in &image.repo_tags {
            if let Some((name, tag)) = rt.rsplit_once(':') {
                repos
                    .entry(name.to_string())
                    .or_default()
                    .insert(tag.to_string(), top.hex().to_string());
            }
        }
    }
    (!repos.is_empty()).then(|| serde_json::to_vec(&repos).unwrap_or_default())
}

/// The OCI chain ID of a layer stack: `diff[0]`, then
/// `sha256(chain + " " + diff[n])`.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let mut iter = diff_ids.iter();
    let mut chain = iter.next()?.clone();
    for d in iter {
        chain = Digest::of(format!("{chain} {d}").as_bytes());
    }
    Some(chain)
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
        let bytes = oci_manifest_json(&config, &layers);
        ImageEntry {
            diff_ids: layers
                .iter()
                .map(|l| Digest::of(l.digest.hex().as_bytes()))
                .collect(),
            config,
            layers,
            repo_tags: vec!["127.0.0.1:5000/team/app:v2".into()],
            oci_names: vec![("127.0.0.1:5000/team/app:v2".into(), Some("v2".into()))],
            manifest: (
                Descriptor {
                    media_type: crate::image::manifest::OCI_MANIFEST.into(),
                    ..desc(&bytes)
                },
                bytes,
            ),
        }
    }

    fn entry() -> ImageEntry {
        let l1 = desc(b"layer one");
        entry_of(desc(b"{}"), vec![l1.clone(), desc(b"layer two"), l1])
    }

    #[test]
    fn oci_documents() {
        let mut image = entry();
        image.oci_names.push((
            "127.0.0.1:5000/team/app:latest".into(),
            Some("latest".into()),
        ));
        let v: serde_json::Value =
            serde_json::from_slice(&oci_index_json(std::slice::from_ref(&image))).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        let m = v["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["digest"], image.manifest.0.digest.to_string());
        assert_eq!(
            m[1]["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
        assert_eq!(
            m[0]["annotations"]["io.containerd.image.name"],
            "127.0.0.1:5000/team/app:v2"
        );
        let doc: serde_json::Value = serde_json::from_slice(&image.manifest.1).unwrap();
        assert_eq!(doc["layers"].as_array().unwrap().len(), 3);
        assert_eq!(
            doc["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        image.oci_names.clear();
        let v: serde_json::Value = serde_json::from_slice(&oci_index_json(&[image])).unwrap();
        assert!(v["manifests"][0].get("annotations").is_none());
    }

    #[test]
    fn manifest_document() {
        let image = entry();
        let v: serde_json::Value =
            serde_json::from_slice(&manifest_json(std::slice::from_ref(&image))).unwrap();
        assert_eq!(v[0]["Config"], blob_name(&image.config.digest));
        assert_eq!(v[0]["RepoTags"][0], "127.0.0.1:5000/team/app:v2");
        assert_eq!(v[0]["Layers"].as_array().unwrap().len(), 3);
        assert_eq!(v[0]["Layers"][0], v[0]["Layers"][2]);
        let r: serde_json::Value =
            serde_json::from_slice(&repositories_json(std::slice::from_ref(&image)).unwrap())
                .unwrap();
        let top = chain_id(&image.diff_ids).unwrap();
        assert_eq!(r["127.0.0.1:5000/team/app"]["v2"], top.hex());
    }

    #[test]
    fn untagged_has_no_repositories() {
        let mut image = entry();
        image.repo_tags.clear();
        assert!(repositories_json(&[image]).is_none());
    }

    #[test]
    fn chain_ids() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        assert_eq!(
            chain_id(&[a.clone(), b.clone()]).unwrap(),
            Digest::of(format!("{a} {b}").as_bytes())
        );
    }
}
