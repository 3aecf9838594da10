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
//! written over its config and layer files (`classic.rs`). What is listed
//! again under another name is walked once.
//!
//! Refused before anything is pushed: a recorded media type that a
//! registry's would not pass (`media_type::check`), and an archive whose
//! two records tell different stories: every name `manifest.json` gives
//! must get, from `index.json` (or the item's own record), an image of
//! the config `manifest.json` gives it (for an index, one of its
//! platforms'), or `docker load` and a push would give the name different
//! images. pulltar's own archives agree (a `--platform` list's
//! `manifest.json` names its first image; decompressed layers keep the
//! config), as do `docker save`'s. This module reads the archive and
//! writes nothing.

use std::collections::HashMap;

use serde::Deserialize;

use crate::archive::documents::{
    ManifestItem, UPSTREAM_DIGEST, UPSTREAM_INDEX, UPSTREAM_MEDIA_TYPE,
};
use crate::archive::reader::Archive;
use crate::archive::tree::{read_doc, tree, Tree};
pub use crate::archive::tree::{Blob, Node};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
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
        for (entry, names) in grouped(
            &index.manifests,
            |e| (e.digest.clone(), record_of(e)),
            names_of,
        ) {
            let (root, origin) = match recorded(archive, record_of(entry))? {
                Some(found) => found,
                None => laid_out(archive, entry)?,
            };
            add(names, root, origin);
        }
        "index.json"
    } else if let Some(items) = &items {
        // Items of several images share base layers: each is hashed once.
        let mut hashed = HashMap::new();
        let key = |i: &ManifestItem| (i.config.clone(), i.layers.clone(), i.upstream.clone());
        let names = |i: &ManifestItem| i.repo_tags.iter().filter_map(|t| parse_name(t)).collect();
        for (item, names) in grouped(items, key, names) {
            let (root, origin) = match recorded(archive, item.upstream.clone())? {
                Some(found) => found,
                None => crate::archive::classic::written(archive, item, &mut hashed)?,
            };
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
    agree(archive, items.as_deref().unwrap_or_default(), &out, other)?;
    Ok(out)
}

/// Refuses an archive whose `manifest.json` gives a name a config that no
/// image pushed under that name (by `other`'s account) has: `docker load`
/// and a push would give the name different images.
fn agree(archive: &Archive, items: &[ManifestItem], out: &[Pushable], other: &str) -> Result<()> {
    let mut hashed: HashMap<u64, Digest> = HashMap::new();
    let what = || format!("manifest.json and {other} in {}", archive.path().display());
    for item in items {
        let region = archive
            .region(&item.config)
            .ok_or_else(|| Error::Manifest {
                what: what(),
                reason: format!(
                    "manifest.json names the config {:?}, not in the archive",
                    item.config
                ),
            })?;
        for name in item
            .repo_tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
        {
            let name = name.to_string();
            let configs: Vec<&Digest> = out
                .iter()
                .filter(|p| p.names.iter().any(|n| n.to_string() == name))
                .flat_map(|p| p.root.configs())
                .collect();
            if configs.iter().any(|c| archive.blob(c) == Some(region)) {
                continue;
            }
            let given = match hashed.get(&region.offset) {
                Some(d) => d.clone(),
                None => archive.hash(region)?.0,
            };
            hashed.insert(region.offset, given.clone());
            if configs.contains(&&given) {
                continue;
            }
            let theirs: Vec<String> = configs.iter().map(|d| format!("the config {d}")).collect();
            let theirs = if theirs.is_empty() {
                "no image".into()
            } else {
                theirs.join(" or ")
            };
            return Err(Error::Manifest {
                what: what(),
                reason: format!("they tell different stories: manifest.json gives {name} the config {given}, {other} gives it {theirs}; docker load and a push would give it different images, so nothing is pushed"),
            });
        }
    }
    Ok(())
}

/// The members of `list`, each kind (by `key`) once in the order first
/// seen, with the names of all its members: what the archive lists again
/// under another name is walked once.
fn grouped<T, K: std::hash::Hash + Eq>(
    list: &[T],
    key: impl Fn(&T) -> K,
    names: impl Fn(&T) -> Vec<Reference>,
) -> Vec<(&T, Vec<Reference>)> {
    let mut first = HashMap::new();
    let mut out: Vec<(&T, Vec<Reference>)> = Vec::new();
    for t in list {
        let i = *first.entry(key(t)).or_insert_with(|| {
            out.push((t, Vec::new()));
            out.len() - 1
        });
        for n in names(t) {
            if !out[i].1.contains(&n) {
                out[i].1.push(n);
            }
        }
    }
    out
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
    if let Err(e) = crate::image::media_type::check(&record.media_type) {
        let what = format!(
            "the record of {} in {}",
            record.digest,
            archive.path().display()
        );
        return Err(Error::Manifest {
            what,
            reason: format!("its {e}"),
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::OCI_MANIFEST;
    use crate::store::cache::Store;

    fn desc(media_type: &str, data: &[u8]) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": Digest::of(data), "size": data.len()})
    }

    /// An archive of one image named team/app:v1 by both records, the
    /// record's media type `mt`, `index.json` naming it `times` times and
    /// `manifest.json` giving it the config `given`.
    fn images_of(mt: &str, times: usize, given: &[u8]) -> Result<Vec<Pushable>> {
        let (config, layer, other) = (b"{}".to_vec(), b"layer".to_vec(), b"{ }".to_vec());
        let m = serde_json::json!({"schemaVersion": 2, "config": desc("application/vnd.oci.image.config.v1+json", &config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)]});
        let m = serde_json::to_vec(&m).unwrap();
        let mut entry = desc(OCI_MANIFEST, &m);
        entry["annotations"] = serde_json::json!({"io.containerd.image.name": "team/app:v1",
            UPSTREAM_DIGEST: Digest::of(&m), UPSTREAM_MEDIA_TYPE: mt});
        let index = serde_json::json!({"manifests": vec![entry; times]});
        let item = serde_json::json!([{"Config": crate::archive::layout::blob_name(&Digest::of(given)),
            "RepoTags": ["team/app:v1"], "Layers": []}]);
        let dir = Store::temporary().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let blobs = [&config, &layer, &other, &m]
            .map(|d| (crate::archive::layout::blob_name(&Digest::of(d)), d.clone()));
        let docs = [("index.json", index), ("manifest.json", item)]
            .map(|(n, v)| (n.to_string(), serde_json::to_vec(&v).unwrap()));
        for (name, data) in blobs.iter().chain(&docs) {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        let path = dir.root().join("a.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        images(&Archive::open(&path).unwrap())
    }

    #[test]
    fn records_agree_or_are_refused() {
        let got = images_of(OCI_MANIFEST, 3, b"{}").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].names.len(), 1, "named once: {:?}", got[0].names);
        assert_eq!(got[0].origin, Origin::AsPulled);
        let e = images_of(OCI_MANIFEST, 1, b"{ }").unwrap_err().to_string();
        for word in ["manifest.json", "index.json", "docker.io/team/app:v1"] {
            assert!(e.contains(word), "{word}: {e}");
        }
        for d in [Digest::of(b"{ }"), Digest::of(b"{}")] {
            assert!(e.contains(&d.to_string()), "{d}: {e}");
        }
        let bad = format!("{OCI_MANIFEST}; x=\u{1b}[2J");
        let e = images_of(&bad, 1, b"{}").unwrap_err().to_string();
        assert!(e.contains("control") && !e.contains('\u{1b}'), "{e}");
    }
}
