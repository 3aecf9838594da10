//! A manifest or index of an archive, with everything below it, as a push
//! needs it ([`Node`]): each document's bytes (checked against the digest
//! that names it), and each blob's digest, size and place in the file
//! ([`Blob`]). Building one ([`tree`]) says whether the archive holds all
//! of it, and for an index which of its manifests it holds whole.
//!
//! It reads documents (bounded) from the archive and checks them; blobs
//! are only located, their sizes compared with their descriptors (they are
//! hashed as they are sent). It neither chooses what to push nor writes.

use std::collections::HashMap;

use crate::archive::reader::{Archive, Region};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::{
    self, Descriptor, Manifest, MAX_DEPTH, MAX_MANIFEST_BYTES, MAX_NESTED,
};
use crate::image::upstream::Document;

/// A blob to push: its digest, size and where it lies in the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its digest (what it must hash to).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Where its bytes are.
    pub region: Region,
}

/// A manifest or index the archive holds whole.
#[derive(Clone, Debug)]
pub enum Node {
    /// An image manifest and its config and layers.
    Image {
        /// The manifest.
        doc: Document,
        /// Its config, then its layers (each once).
        blobs: Vec<Blob>,
    },
    /// An index and its manifests.
    Index {
        /// The index.
        doc: Document,
        /// Its manifests, in its order.
        children: Vec<Node>,
    },
}

impl Node {
    /// The manifest or index itself.
    pub fn doc(&self) -> &Document {
        match self {
            Node::Image { doc, .. } | Node::Index { doc, .. } => doc,
        }
    }

    /// Every blob below it, each once.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out: Vec<&Blob> = Vec::new();
        self.each(&mut |n| {
            if let Node::Image { blobs, .. } = n {
                for b in blobs {
                    if !out.iter().any(|o| o.digest == b.digest) {
                        out.push(b);
                    }
                }
            }
        });
        out
    }

    /// Every document in the order a registry takes them: the manifests
    /// of an index before it, the node itself last; each once.
    pub fn documents(&self) -> Vec<&Document> {
        let mut out: Vec<&Document> = Vec::new();
        self.each(&mut |n| {
            if !out.iter().any(|d| d.digest == n.doc().digest) {
                out.push(n.doc());
            }
        });
        out
    }

    /// The configs of its images.
    pub fn configs(&self) -> Vec<&Digest> {
        let mut out = Vec::new();
        self.each(&mut |n| {
            if let Node::Image { blobs, .. } = n {
                out.extend(blobs.first().map(|b| &b.digest));
            }
        });
        out
    }

    /// Calls `f` on every node below this one, children first.
    fn each<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        if let Node::Index { children, .. } = self {
            for c in children {
                c.each(f);
            }
        }
        f(self)
    }
}

/// How much of a document the archive holds.
#[derive(Debug)]
pub enum Tree {
    /// All of it.
    Whole(Node),
    /// An index of which only these manifests are whole (with their
    /// descriptors in the index).
    Part(Vec<(Descriptor, Node)>),
    /// Not enough to push it.
    Missing,
}

/// Reads the document `digest` (`blobs/sha256/<hex>`) of `media_type`
/// (empty: read from the document): `None` when the archive lacks it.
pub fn read_doc(archive: &Archive, digest: &Digest, media_type: &str) -> Result<Option<Document>> {
    let name = crate::archive::layout::blob_name(digest);
    let Some(bytes) = archive.read(&name, MAX_MANIFEST_BYTES)? else {
        return Ok(None);
    };
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(damaged(archive, digest, &format!("it hashes to {actual}")));
    }
    let media_type = match media_type {
        "" => crate::image::media_type::of_document(&bytes, None),
        t => t.to_string(),
    };
    Ok(Some(Document {
        digest: actual,
        media_type,
        bytes,
    }))
}

/// How much of `doc` (and what it references) the archive holds. Each
/// document is read once however often it is listed: one listed again is
/// held or not as it was the first time, and is left out of the tree (a
/// push needs each once); indexes nest at most [`MAX_DEPTH`] deep and at
/// most [`MAX_NESTED`] distinct ones below `doc`, the limits of a pull.
pub fn tree(archive: &Archive, doc: Document) -> Result<Tree> {
    let mut walk = Walk {
        archive,
        seen: HashMap::new(),
        indexes: 0,
    };
    walk.tree_at(doc, 0)
}

/// One walk: the documents seen (their size, if the archive has them, and
/// whether they are whole) and how many indexes below the top one.
struct Walk<'a> {
    archive: &'a Archive,
    seen: HashMap<Digest, (Option<u64>, bool)>,
    indexes: usize,
}

impl Walk<'_> {
    fn tree_at(&mut self, doc: Document, depth: usize) -> Result<Tree> {
        let archive = self.archive;
        let what = format!("manifest {} in {}", doc.digest, archive.path().display());
        let content_type = (!doc.media_type.is_empty()).then_some(doc.media_type.as_str());
        match manifest::parse(&doc.bytes, content_type, &what)? {
            Manifest::Image(m) => {
                let mut blobs: Vec<Blob> = Vec::new();
                for d in std::iter::once(&m.config).chain(&m.layers) {
                    if blobs.iter().any(|b| b.digest == d.digest) {
                        continue;
                    }
                    match locate(archive, d)? {
                        Some(b) => blobs.push(b),
                        None => return Ok(Tree::Missing),
                    }
                }
                Ok(Tree::Whole(Node::Image { doc, blobs }))
            }
            Manifest::Index(index) => {
                self.indexes += usize::from(depth > 0);
                if depth >= MAX_DEPTH || self.indexes > MAX_NESTED {
                    return Err(Error::Manifest {
                        what,
                        reason: format!("it nests indexes more than {MAX_DEPTH} deep or more than {MAX_NESTED} in all"),
                    });
                }
                let total = index.manifests.len();
                let (mut held, mut whole) = (0, Vec::new());
                for d in index.manifests {
                    let (size, is_whole) = match self.seen.get(&d.digest) {
                        Some(seen) => *seen,
                        None => self.child(&d, depth, &mut whole)?,
                    };
                    if size.is_some_and(|s| s != d.size) {
                        let why = "its size differs from the index's";
                        return Err(damaged(archive, &d.digest, why));
                    }
                    held += usize::from(is_whole);
                }
                if held == total {
                    let children = whole.into_iter().map(|(_, n)| n).collect();
                    Ok(Tree::Whole(Node::Index { doc, children }))
                } else if whole.is_empty() {
                    Ok(Tree::Missing)
                } else {
                    Ok(Tree::Part(whole))
                }
            }
            Manifest::Schema1(_) => Err(Error::Manifest {
                what,
                reason: "a Docker schema 1 manifest cannot be pushed as it is".into(),
            }),
        }
    }

    /// Walks the manifest `d` of an index, seen for the first time (adding
    /// it to `whole` when the archive holds it whole): its size, if the
    /// archive has it, and whether it is whole.
    fn child(
        &mut self,
        d: &Descriptor,
        depth: usize,
        whole: &mut Vec<(Descriptor, Node)>,
    ) -> Result<(Option<u64>, bool)> {
        let mut seen = (None, false);
        if let Some(child) = read_doc(self.archive, &d.digest, &d.media_type)? {
            seen.0 = Some(child.bytes.len() as u64);
            if let Tree::Whole(node) = self.tree_at(child, depth + 1)? {
                whole.push((d.clone(), node));
                seen.1 = true;
            }
        }
        self.seen.insert(d.digest.clone(), seen);
        Ok(seen)
    }
}

/// Where the blob `d` is: `None` when the archive lacks it, an error when
/// its size differs from the descriptor's.
fn locate(archive: &Archive, d: &Descriptor) -> Result<Option<Blob>> {
    let Some(region) = archive.blob(&d.digest) else {
        return Ok(None);
    };
    if region.size != d.size {
        return Err(damaged(
            archive,
            &d.digest,
            &format!(
                "it has {} bytes where its manifest says {}",
                region.size, d.size
            ),
        ));
    }
    Ok(Some(Blob {
        digest: d.digest.clone(),
        size: d.size,
        region,
    }))
}

/// An archive member that does not match its name or descriptor.
pub fn damaged(archive: &Archive, digest: &Digest, why: &str) -> Error {
    let name = crate::archive::layout::blob_name(digest);
    Error::Manifest {
        what: format!("{name} in {}", archive.path().display()),
        reason: format!("the archive is damaged: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cache::Store;

    /// An archive holding `blobs` under `blobs/sha256/`, and its folder.
    fn archive_of(blobs: &[&[u8]]) -> (Store, Archive) {
        let dir = Store::temporary().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for data in blobs {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            let name = crate::archive::layout::blob_name(&Digest::of(data));
            b.append_data(&mut h, name, *data).unwrap();
        }
        let path = dir.root().join("a.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        let archive = Archive::open(&path).unwrap();
        (dir, archive)
    }

    fn desc(media_type: &str, data: &[u8]) -> serde_json::Value {
        let d = Digest::of(data).to_string();
        serde_json::json!({"mediaType": media_type, "digest": d, "size": data.len()})
    }

    /// An index listing each of `children` (index documents) `times` times.
    fn index(children: &[&[u8]], times: usize, media_type: &str) -> Vec<u8> {
        let list: Vec<_> = children
            .iter()
            .flat_map(|c| std::iter::repeat_n(desc(media_type, c), times))
            .collect();
        let doc = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": list});
        serde_json::to_vec(&doc).unwrap()
    }

    fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (config, layer) = (b"{}".to_vec(), b"layer".to_vec());
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", &config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)]});
        (serde_json::to_vec(&m).unwrap(), config, layer)
    }

    /// Indexes listing one child 300 times, three deep: each document is
    /// walked once (27 million visits otherwise), and listed once.
    #[test]
    fn fan_out_is_walked_once() {
        let (m, config, layer) = image();
        let c = index(&[&m], 300, manifest::OCI_MANIFEST);
        let b = index(&[&c], 300, manifest::OCI_INDEX);
        let a = index(&[&b], 300, manifest::OCI_INDEX);
        let (_dir, archive) = archive_of(&[&config, &layer, &m, &c, &b, &a]);
        let top = Document::new(manifest::OCI_INDEX, a.clone());
        let started = std::time::Instant::now();
        let Tree::Whole(node) = tree(&archive, top).unwrap() else {
            panic!("the archive holds it all");
        };
        assert!(started.elapsed().as_secs() < 5);
        let docs: Vec<_> = node.documents().iter().map(|d| d.digest.clone()).collect();
        assert_eq!(docs, [&m, &c, &b, &a].map(|d| Digest::of(d)));
        assert_eq!(node.blobs().len(), 2);
        assert_eq!(node.configs(), [&Digest::of(&config)]);
    }

    /// More distinct nested indexes than a pull follows are refused.
    #[test]
    fn distinct_indexes_are_counted() {
        let (m, config, layer) = image();
        let mut docs: Vec<Vec<u8>> = vec![config, layer, m.clone()];
        for n in [MAX_NESTED, MAX_NESTED + 1] {
            let children: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let mut v: serde_json::Value =
                        serde_json::from_slice(&index(&[&m], 2, manifest::OCI_MANIFEST)).unwrap();
                    v["annotations"] = serde_json::json!({"n": i.to_string()});
                    serde_json::to_vec(&v).unwrap()
                })
                .collect();
            let refs: Vec<&[u8]> = children.iter().map(Vec::as_slice).collect();
            let top = index(&refs, 2, manifest::OCI_INDEX);
            docs.extend(children.iter().cloned());
            docs.push(top.clone());
            let all: Vec<&[u8]> = docs.iter().map(Vec::as_slice).collect();
            let (_dir, archive) = archive_of(&all);
            let got = tree(&archive, Document::new(manifest::OCI_INDEX, top));
            match got {
                Ok(Tree::Whole(node)) if n == MAX_NESTED => {
                    assert_eq!(node.documents().len(), n + 2)
                }
                Err(e) if n > MAX_NESTED => assert!(e.to_string().contains("in all"), "{e}"),
                other => panic!("{n} indexes: {other:?}"),
            }
        }
    }
}
