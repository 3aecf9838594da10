//! The archive's index documents: `manifest.json` (one
//! `{"Config", "RepoTags", "Layers"}` item per image, paths into
//! `blobs/sha256/`, layers in manifest order) and the legacy `repositories`
//! (`{name: {tag: <chain id of the top layer>}}`), and the entry name of a
//! blob. Only validated digests' hex becomes part of a name. This module
//! builds bytes; `archive.rs` writes them into the tar.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::Digest;
use crate::manifest::Descriptor;

/// One image to put in the archive.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, base first.
    pub layers: Vec<Descriptor>,
    /// The config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// `name:tag` entries (may be empty).
    pub repo_tags: Vec<String>,
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

    /// A descriptor of `data` (also used by `archive.rs`'s tests).
    pub(crate) fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "x".into(),
            digest: Digest::of(data),
            size: data.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }

    fn entry() -> ImageEntry {
        let l1 = desc(b"layer one");
        ImageEntry {
            config: desc(b"{}"),
            layers: vec![l1.clone(), desc(b"layer two"), l1],
            diff_ids: vec![Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"a")],
            repo_tags: vec!["127.0.0.1:5000/team/app:v2".into()],
        }
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
