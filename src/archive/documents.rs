//! The archive's JSON documents: docker's `manifest.json` (one
//! `{"Config", "RepoTags", "Layers"}` item per named entry, for the image
//! `docker load` gets, paths into `blobs/sha256/`, layers in manifest
//! order) and the legacy `repositories` (`{name: {tag: <chain id of the
//! top layer>}}`); the OCI layout's `index.json` (one entry per name,
//! annotated as `docker save` does since Docker 25:
//! `io.containerd.image.name` with the full name,
//! `org.opencontainers.image.ref.name` with the tag), and OCI manifests
//! written anew.
//!
//! Each name also records the registry's own document it stands for
//! ([`crate::image::upstream::Upstream`]): in `index.json` as the annotations [`UPSTREAM_DIGEST`],
//! [`UPSTREAM_MEDIA_TYPE`] and [`UPSTREAM_INDEX`], and in `manifest.json`
//! as the item's `PulltarUpstream` object ([`UPSTREAM_ITEM`], which the
//! loaders ignore), so that a push can put the very same bytes back. The
//! types read back by a push ([`ManifestItem`]) are here too. This module
//! builds bytes; it reads and writes no file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::entries::ImageEntry;
use crate::archive::layout::blob_name;
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::image::upstream::Upstream;

/// `index.json` annotation: the digest of the registry's document a name
/// stands for (its bytes are a blob of the archive).
pub const UPSTREAM_DIGEST: &str = "pulltar.upstream.digest";
/// `index.json` annotation: that document's media type.
pub const UPSTREAM_MEDIA_TYPE: &str = "pulltar.upstream.media-type";
/// `index.json` annotation: for one platform taken from an index, the
/// index's digest (its bytes are a blob of the archive too).
pub const UPSTREAM_INDEX: &str = "pulltar.upstream.index";
/// The key of a `manifest.json` item holding the same record:
/// `{"Digest", "MediaType", "Index"}`.
pub const UPSTREAM_ITEM: &str = "PulltarUpstream";

/// The OCI layout's `index.json` for `entries`: one entry per name, one
/// unnamed entry for an image without names; each with the record of the
/// registry's document.
pub fn oci_index_json(entries: &[ImageEntry]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for entry in entries {
        let mut desc = entry.root().0.clone();
        if let Some(up) = &entry.upstream {
            let a = &mut desc.annotations;
            a.insert(UPSTREAM_DIGEST.into(), up.digest.to_string());
            a.insert(UPSTREAM_MEDIA_TYPE.into(), up.media_type.clone());
            if let Some(index) = &up.index {
                a.insert(UPSTREAM_INDEX.into(), index.to_string());
            }
        }
        if entry.oci_names.is_empty() {
            manifests.push(desc.clone());
        }
        for (full, tag) in &entry.oci_names {
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

/// A `manifest.json` item, as written and as read back.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestItem {
    /// The config's path in the archive.
    pub config: String,
    /// `name:tag` entries.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// The layers' paths in the archive, base first.
    #[serde(default)]
    pub layers: Vec<String>,
    /// The record of the registry's document.
    #[serde(
        rename = "PulltarUpstream",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream: Option<Upstream>,
}

/// `"RepoTags": null` (as docker save writes for an untagged image) is no
/// tags.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The `manifest.json` document for `entries`.
pub fn manifest_json(entries: &[ImageEntry]) -> Vec<u8> {
    let items: Vec<ManifestItem> = entries
        .iter()
        .map(|e| {
            let i = e.docker_image();
            ManifestItem {
                config: blob_name(&i.config.digest),
                repo_tags: e.repo_tags.clone(),
                layers: i.layers.iter().map(|l| blob_name(&l.digest)).collect(),
                upstream: e.upstream.clone(),
            }
        })
        .collect();
    // Serialising plain strings and vectors cannot fail.
    serde_json::to_vec(&items).unwrap_or_default()
}

/// The legacy `repositories` document: for each tagged image, its name and
/// tag mapped to the chain ID of its top layer. `None` when no image is
/// tagged and layered.
pub fn repositories_json(entries: &[ImageEntry]) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in entries {
        let Some(top) = chain_id(&image.docker_image().diff_ids) else {
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
mod tests {
    use super::*;
    use crate::archive::entries::tests::{desc, entry_of};

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
        assert_eq!(
            m[0]["digest"],
            image.images[0].manifest.0.digest.to_string()
        );
        assert_eq!(
            m[1]["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
        assert_eq!(
            m[0]["annotations"]["io.containerd.image.name"],
            "127.0.0.1:5000/team/app:v2"
        );
        let doc: serde_json::Value = serde_json::from_slice(&image.images[0].manifest.1).unwrap();
        assert_eq!(doc["layers"].as_array().unwrap().len(), 3);
        assert_eq!(
            doc["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        image.oci_names.clear();
        let v: serde_json::Value =
            serde_json::from_slice(&oci_index_json(std::slice::from_ref(&image))).unwrap();
        assert!(v["manifests"][0].get("annotations").is_none());
        let index = Digest::of(b"index");
        image.upstream = Some(Upstream {
            digest: image.images[0].manifest.0.digest.clone(),
            media_type: "m/t".into(),
            index: Some(index.clone()),
        });
        let v: serde_json::Value = serde_json::from_slice(&oci_index_json(&[image])).unwrap();
        let a = &v["manifests"][0]["annotations"];
        assert_eq!(a[UPSTREAM_MEDIA_TYPE], "m/t");
        assert_eq!(a[UPSTREAM_INDEX], index.to_string());
        assert_eq!(a[UPSTREAM_DIGEST], v["manifests"][0]["digest"]);
    }

    #[test]
    fn manifest_document() {
        let mut image = entry();
        let v: serde_json::Value =
            serde_json::from_slice(&manifest_json(std::slice::from_ref(&image))).unwrap();
        assert_eq!(v[0]["Config"], blob_name(&image.images[0].config.digest));
        assert!(v[0].get(UPSTREAM_ITEM).is_none());
        assert_eq!(v[0]["RepoTags"][0], "127.0.0.1:5000/team/app:v2");
        assert_eq!(v[0]["Layers"].as_array().unwrap().len(), 3);
        assert_eq!(v[0]["Layers"][0], v[0]["Layers"][2]);
        let r: serde_json::Value =
            serde_json::from_slice(&repositories_json(std::slice::from_ref(&image)).unwrap())
                .unwrap();
        let top = chain_id(&image.images[0].diff_ids).unwrap();
        assert_eq!(r["127.0.0.1:5000/team/app"]["v2"], top.hex());
        let digest = Digest::of(b"m");
        image.upstream = Some(Upstream {
            digest: digest.clone(),
            media_type: "m/t".into(),
            index: None,
        });
        let bytes = manifest_json(std::slice::from_ref(&image));
        let items: Vec<ManifestItem> = serde_json::from_slice(&bytes).unwrap();
        let up = items[0].upstream.as_ref().unwrap();
        assert_eq!((&up.digest, up.media_type.as_str()), (&digest, "m/t"));
        assert!(up.index.is_none());
        let docker_save: Vec<ManifestItem> = serde_json::from_slice(
            br#"[{"Config":"c.json","RepoTags":null,"Layers":["a/layer.tar"]}]"#,
        )
        .unwrap();
        assert!(docker_save[0].repo_tags.is_empty() && docker_save[0].upstream.is_none());
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
