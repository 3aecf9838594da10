//! What an archive holds for a push ([`images`]): each image (or index)
//! once, with all the names it has in the archive, the tree to push
//! ([`Node`]) and where its digest comes from ([`Origin`]).
//!
//! The archive's own record comes first: `index.json` (pulltar's, `docker
//! save` 25+'s, skopeo's or any OCI layout), else docker's `manifest.json`
//! (`docker save`, skopeo's `docker-archive:`, podman). A name pulltar
//! recorded (`pulltar.upstream.*`, or an item's `PulltarUpstream`) gets
//! the registry's own document back when the archive holds everything it
//! references; an index of which the archive holds only some images gets
//! an index over those (a new digest), or the one image alone. Otherwise
//! the layout's manifest is pushed as it is, and an archive with no
//! manifest at all (docker's classic `docker save`) gets an OCI manifest
//! written over its config and layer files, hashed here; the config, and
//! so the image ID, is unchanged. This module reads the archive and
//! writes nothing.

use std::collections::HashMap;

use serde::Deserialize;

use crate::archive::documents::{
    oci_manifest_json, ManifestItem, UPSTREAM_DIGEST, UPSTREAM_INDEX, UPSTREAM_MEDIA_TYPE,
};
use crate::archive::reader::Archive;
use crate::archive::tree::{read_doc, tree, Tree};
pub use crate::archive::tree::{Blob, Node};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::layer_types::{self, LayerType};
use crate::image::manifest::{Descriptor, ImageConfig, MAX_CONFIG_BYTES, OCI_MANIFEST};
use crate::image::reference::Reference;
use crate::image::upstream::{Document, Upstream};

/// Where the digest of what is pushed comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The registry's own document, as pulled: the digest is unchanged.
    AsPulled,
    /// One image of an index the name pointed at (its other images are
    /// not in the archive): the image's digest is unchanged.
    OnePlatform {
        /// The index.
        index: Digest,
    },
    /// An index written over the images the archive holds of the one the
    /// name pointed at: a new digest, the images' unchanged.
    Subset {
        /// The index.
        index: Digest,
        /// How many of its manifests the archive holds.
        held: usize,
    },
    /// The archive's own manifest, as it is.
    AsFound,
    /// Written by pulltar, for this reason: a new digest.
    Written(String),
}

/// One image (or index) of the archive.
#[derive(Debug)]
pub struct Pushable {
    /// Its names in the archive (none for an untagged image).
    pub names: Vec<Reference>,
    /// What to push.
    pub root: Node,
    /// Where its digest comes from.
    pub origin: Origin,
}

/// The most a `manifest.json` or `index.json` may weigh.
const MAX_INDEX_BYTES: u64 = 20 << 20;

#[derive(Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The images of `archive`, each once with all its names.
pub fn images(archive: &Archive) -> Result<Vec<Pushable>> {
    let mut out: Vec<Pushable> = Vec::new();
    let mut add = |names: Vec<Reference>, root: Node, origin: Origin| match out
        .iter_mut()
        .find(|p| p.root.doc().digest == root.doc().digest)
    {
        Some(same) => {
            for n in names {
                if !same.names.contains(&n) {
                    same.names.push(n);
                }
            }
        }
        None => out.push(Pushable {
            names,
            root,
            origin,
        }),
    };
    let bad = |what: &str, e: serde_json::Error| Error::Manifest {
        what: format!("{what} in {}", archive.path().display()),
        reason: format!("not a valid {what}: {e}"),
    };
    let items: Option<Vec<ManifestItem>> = match archive.read("manifest.json", MAX_INDEX_BYTES)? {
        Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| bad("manifest.json", e))?),
        None => None,
    };
    let other = if let Some(bytes) = archive.read("index.json", MAX_INDEX_BYTES)? {
        let index: IndexJson = serde_json::from_slice(&bytes).map_err(|e| bad("index.json", e))?;
        // An entry listed again (another name for it) is walked once.
        let mut first: HashMap<(&Digest, Option<Upstream>), usize> = HashMap::new();
        let mut entries: Vec<(&Descriptor, Option<Upstream>, Vec<Reference>)> = Vec::new();
        for entry in &index.manifests {
            let key = (&entry.digest, record_of(entry));
            let i = *first.entry(key.clone()).or_insert_with(|| {
                entries.push((entry, key.1, Vec::new()));
                entries.len() - 1
            });
            for n in names_of(entry) {
                if !entries[i].2.contains(&n) {
                    entries[i].2.push(n);
                }
            }
        }
        for (entry, record, names) in entries {
            let (root, origin) = match recorded(archive, record)? {
                Some(found) => found,
                None => laid_out(archive, entry)?,
            };
            add(names, root, origin);
        }
        "index.json"
    } else if let Some(items) = &items {
        // Items of several images share base layers: each is hashed once.
        let mut hashed = HashMap::new();
        for item in items {
            let (root, origin) = match recorded(archive, item.upstream.clone())? {
                Some(found) => found,
                None => written(archive, item, &mut hashed)?,
            };
            let names = item
                .repo_tags
                .iter()
                .filter_map(|t| parse_name(t))
                .collect();
            add(names, root, origin);
        }
        "the PulltarUpstream record of manifest.json"
    } else {
        return Err(Error::Manifest {
            what: archive.path().display().to_string(),
            reason: "a tar, but no image archive: it holds neither manifest.json nor index.json"
                .into(),
        });
    };
    if out.is_empty() {
        return Err(Error::Manifest {
            what: archive.path().display().to_string(),
            reason: "the archive lists no image".into(),
        });
    }
    crate::archive::agree::agree(archive, items.as_deref().unwrap_or_default(), &out, other)?;
    Ok(out)
}

/// A name as the archive writes it, if it is one (a bare tag is not).
fn parse_name(name: &str) -> Option<Reference> {
    match Reference::parse(name) {
        Ok(r) => Some(r),
        Err(e) => {
            log::warn!("the archive's name {name:?} is not an image name ({e}); it is left out");
            None
        }
    }
}

/// The names an `index.json` entry gives: `io.containerd.image.name`, else
/// an `org.opencontainers.image.ref.name` that is a whole name.
fn names_of(entry: &Descriptor) -> Vec<Reference> {
    let a = &entry.annotations;
    let full = a.get("io.containerd.image.name").cloned().or_else(|| {
        a.get("org.opencontainers.image.ref.name")
            .filter(|r| r.contains(['/', ':']))
            .cloned()
    });
    full.as_deref().and_then(parse_name).into_iter().collect()
}

/// The record of the registry's document on an `index.json` entry.
fn record_of(entry: &Descriptor) -> Option<Upstream> {
    let a = &entry.annotations;
    let digest = Digest::parse(a.get(UPSTREAM_DIGEST)?).ok()?;
    Some(Upstream {
        digest,
        media_type: a.get(UPSTREAM_MEDIA_TYPE).cloned().unwrap_or_default(),
        index: a.get(UPSTREAM_INDEX).and_then(|d| Digest::parse(d).ok()),
    })
}

/// The registry's document a name recorded, when the archive holds enough
/// of it: all of it, or (for an index) some of its images.
fn recorded(archive: &Archive, record: Option<Upstream>) -> Result<Option<(Node, Origin)>> {
    let Some(record) = record else {
        return Ok(None);
    };
    crate::image::media_type::check(&record.media_type).map_err(|e| Error::Manifest {
        what: format!(
            "the record of {} in {}",
            record.digest,
            archive.path().display()
        ),
        reason: format!("its {e}"),
    })?;
    let Some(doc) = read_doc(archive, &record.digest, &record.media_type)? else {
        return Ok(None);
    };
    let index_json = doc.bytes.clone();
    let media_type = doc.media_type.clone();
    Ok(match tree(archive, doc)? {
        Tree::Whole(node) => Some(match record.index {
            Some(index) => (node, Origin::OnePlatform { index }),
            None => (node, Origin::AsPulled),
        }),
        Tree::Missing => None,
        Tree::Part(mut whole) => {
            let images: Vec<usize> = (0..whole.len())
                .filter(|&i| !whole[i].0.is_attestation())
                .collect();
            match images.as_slice() {
                [] => None,
                [one] => Some((
                    whole.swap_remove(*one).1,
                    Origin::OnePlatform {
                        index: record.digest,
                    },
                )),
                _ => Some(subset(&index_json, &media_type, whole, record.digest)?),
            }
        }
    })
}

/// An index like `bytes` (its other fields kept) listing only the
/// manifests of `whole`.
fn subset(
    bytes: &[u8],
    media_type: &str,
    whole: Vec<(Descriptor, Node)>,
    index: Digest,
) -> Result<(Node, Origin)> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Manifest {
            what: format!("index {index}"),
            reason: format!("not JSON: {e}"),
        })?;
    let kept: Vec<String> = whole.iter().map(|(d, _)| d.digest.to_string()).collect();
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|m| {
            m["digest"]
                .as_str()
                .is_some_and(|d| kept.iter().any(|k| k == d))
        });
    }
    // Re-serialising a value just parsed cannot fail.
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let held = whole.len();
    let node = Node::Index {
        doc: Document::new(media_type, bytes),
        children: whole.into_iter().map(|(_, n)| n).collect(),
    };
    Ok((node, Origin::Subset { index, held }))
}

/// The OCI layout's document for an `index.json` entry, as it is.
fn laid_out(archive: &Archive, entry: &Descriptor) -> Result<(Node, Origin)> {
    let missing = |what: String| Error::Manifest {
        what: format!("{what} in {}", archive.path().display()),
        reason: "index.json names it, but the archive does not hold all it references".into(),
    };
    let doc = read_doc(archive, &entry.digest, &entry.media_type)?
        .ok_or_else(|| missing(format!("manifest {}", entry.digest)))?;
    let pulled = record_of(entry).is_some();
    match tree(archive, doc)? {
        Tree::Whole(node) if pulled => Ok((
            node,
            Origin::Written(
                "its layers were decompressed when it was pulled (pull without --uncompressed, and with --keep-zstd, to keep the registry's)"
                    .into(),
            ),
        )),
        Tree::Whole(node) => Ok((node, Origin::AsFound)),
        _ => Err(missing(format!("manifest {}", entry.digest))),
    }
}

/// An OCI manifest written for a `manifest.json` item of an archive that
/// holds none: over its config and its layer files as they are, each
/// hashed here (once: `hashed` keeps what a layer's region hashed to and
/// its first bytes, by offset).
fn written(
    archive: &Archive,
    item: &ManifestItem,
    hashed: &mut HashMap<u64, (Digest, Vec<u8>)>,
) -> Result<(Node, Origin)> {
    let where_ = |path: &str| format!("{path} in {}", archive.path().display());
    let locate = |path: &str| {
        archive.region(path).ok_or_else(|| Error::Manifest {
            what: where_(path),
            reason: "manifest.json lists it, but the archive does not hold it".into(),
        })
    };
    let config_region = locate(&item.config)?;
    let config_bytes = archive
        .read(&item.config, MAX_CONFIG_BYTES)?
        .ok_or_else(|| locate(&item.config).unwrap_err())?;
    let config = ImageConfig::parse(&config_bytes, &where_(&item.config))?;
    if config.rootfs.diff_ids.len() != item.layers.len() {
        return Err(Error::Manifest {
            what: where_("manifest.json"),
            reason: format!(
                "an item lists {} layers, but its config has {} diff_ids",
                item.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    let config_desc = descriptor(
        "application/vnd.oci.image.config.v1+json",
        Digest::of(&config_bytes),
        config_bytes.len() as u64,
    );
    let mut blobs = vec![Blob {
        digest: config_desc.digest.clone(),
        size: config_desc.size,
        region: config_region,
    }];
    let mut layers = Vec::new();
    for path in &item.layers {
        let region = locate(path)?;
        let (digest, start) = match hashed.get(&region.offset) {
            Some(known) => known.clone(),
            None => {
                let h = archive.hash(region)?;
                hashed.insert(region.offset, h.clone());
                h
            }
        };
        let media_type = layer_types::oci_media_type(LayerType {
            compression: layer_types::sniff(&start),
            foreign: false,
        });
        layers.push(descriptor(media_type, digest.clone(), region.size));
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(Blob {
                digest,
                size: region.size,
                region,
            });
        }
    }
    let bytes = oci_manifest_json(&config_desc, &layers);
    let doc = Document::new(OCI_MANIFEST, bytes);
    let why = "the archive holds no manifest: written over its config and layers".to_string();
    Ok((Node::Image { doc, blobs }, Origin::Written(why)))
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        platform: None,
        annotations: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cache::Store;

    /// A `docker save`-style archive: no manifest, the layer a link.
    #[test]
    fn an_archive_without_manifests_gets_one() {
        let dir = Store::temporary().unwrap();
        let layer = b"layer bytes, plain";
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::of(layer)
        );
        let items = br#"[{"Config":"c.json","RepoTags":["team/app:v1","bad name"],"Layers":["x/layer.tar"]},
            {"Config":"c.json","RepoTags":null,"Layers":["x/layer.tar"]}]"#;
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            match link {
                Some(l) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, l).unwrap()
                }
                None => b.append_data(&mut h, name, data).unwrap(),
            }
        };
        add("c.json", config.as_bytes(), None);
        add("l/layer.tar", layer, None);
        add("x/layer.tar", b"", Some("../l/layer.tar"));
        add("manifest.json", items, None);
        let path = dir.root().join("a.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        let got = images(&Archive::open(&path).unwrap()).unwrap();
        assert_eq!(got.len(), 1, "one image, named once: {got:?}");
        let one = &got[0];
        let names: Vec<String> = one.names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["docker.io/team/app:v1"]);
        assert!(matches!(one.origin, Origin::Written(_)));
        let blobs = one.root.blobs();
        assert_eq!(blobs[0].digest, Digest::of(config.as_bytes()));
        assert_eq!(blobs[1].digest, Digest::of(layer));
        let m: serde_json::Value = serde_json::from_slice(&one.root.doc().bytes).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], layer_types::OCI_LAYER_TAR);
        assert_eq!(
            m["config"]["digest"],
            Digest::of(config.as_bytes()).to_string()
        );
    }
}
