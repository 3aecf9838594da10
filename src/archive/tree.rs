//! A manifest or index of an archive, with everything below it, as a push
//! needs it ([`Node`]): each document's bytes (checked against the digest
//! that names it), and each blob's digest, size and place in the file
//! ([`Blob`]). Building one ([`tree`]) says whether the archive holds all
//! of it, and for an index which of its manifests it holds whole.
//!
//! It reads documents (bounded) from the archive and checks them; blobs
//! are only located, their sizes compared with their descriptors (they are
//! hashed as they are sent). It neither chooses what to push nor writes.

use crate::archive::reader::{Archive, Region};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::{self, Descriptor, Manifest, MAX_MANIFEST_BYTES};
use crate::image::upstream::Document;

/// How deep indexes may nest.
const MAX_DEPTH: usize = 8;

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
        return Err(damaged(archive, &name, &format!("it hashes to {actual}")));
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

/// How much of `doc` (and what it references) the archive holds.
pub fn tree(archive: &Archive, doc: Document) -> Result<Tree> {
    tree_at(archive, doc, 0)
}

fn tree_at(archive: &Archive, doc: Document, depth: usize) -> Result<Tree> {
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
            if depth >= MAX_DEPTH {
                return Err(Error::Manifest {
                    what,
                    reason: format!("it nests indexes more than {MAX_DEPTH} deep"),
                });
            }
            let total = index.manifests.len();
            let mut whole = Vec::new();
            for d in index.manifests {
                let Some(child) = read_doc(archive, &d.digest, &d.media_type)? else {
                    continue;
                };
                if child.bytes.len() as u64 != d.size {
                    let name = crate::archive::layout::blob_name(&d.digest);
                    return Err(damaged(archive, &name, "its size differs from the index's"));
                }
                if let Tree::Whole(node) = tree_at(archive, child, depth + 1)? {
                    whole.push((d, node));
                }
            }
            if whole.len() == total {
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

/// Where the blob `d` is: `None` when the archive lacks it, an error when
/// its size differs from the descriptor's.
fn locate(archive: &Archive, d: &Descriptor) -> Result<Option<Blob>> {
    let Some(region) = archive.blob(&d.digest) else {
        return Ok(None);
    };
    if region.size != d.size {
        let name = crate::archive::layout::blob_name(&d.digest);
        return Err(damaged(
            archive,
            &name,
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
pub fn damaged(archive: &Archive, name: &str, why: &str) -> Error {
    Error::Manifest {
        what: format!("{name} in {}", archive.path().display()),
        reason: format!("the archive is damaged: {why}"),
    }
}
