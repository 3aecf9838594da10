//! What a registry sent, kept as it was: a manifest or index as a
//! [`Document`] (its digest, media type and bytes); the images of one
//! index a pull takes at once ([`Several`]); and the [`Upstream`] record
//! an archive keeps for each name, so that a push can put the very same
//! document back under it and the name resolves to the same digest.
//!
//! Plain data: nothing here fetches, checks a digest against bytes it did
//! not make, or writes.

use serde::{Deserialize, Serialize};

use crate::image::digest::Digest;
use crate::image::manifest::{ImageManifest, Resolved};

/// A manifest or index exactly as a registry sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The SHA-256 of `bytes`.
    pub digest: Digest,
    /// Its media type (the `Content-Type`, else its own `mediaType`).
    pub media_type: String,
    /// The bytes received.
    pub bytes: Vec<u8>,
}

impl Document {
    /// A document of `bytes`, its digest computed here.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Document {
        Document {
            digest: Digest::of(&bytes),
            media_type: media_type.to_string(),
            bytes,
        }
    }
}

/// Several images of one index, as `--platform all` or a list of
/// platforms takes them.
#[derive(Debug)]
pub struct Several {
    /// The images, the one `docker load` gets first.
    pub images: Vec<Resolved>,
    /// The index the reference named.
    pub index: Document,
    /// The indexes nested in it.
    pub nested: Vec<Document>,
    /// The attestation manifests kept (of every image with `all`, else of
    /// the images taken), with their configs and layers to fetch.
    pub attestations: Vec<(Document, ImageManifest)>,
    /// Whether every manifest the index references (nested ones too) is
    /// taken, so the index itself can be pushed as it is.
    pub complete: bool,
}

/// Which registry document a name of the archive stands for (as a
/// `manifest.json` item's `PulltarUpstream`: `{"Digest", "MediaType",
/// "Index"}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Upstream {
    /// The document a push puts under the name: the image manifest (one
    /// platform), or the index (several platforms).
    pub digest: Digest,
    /// Its media type, for the push's `Content-Type`.
    pub media_type: String,
    /// For one platform chosen from an index: the index the name pointed
    /// at (its bytes are in the archive; its other images are not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_digest() {
        let d = Document::new("a/b", b"{}".to_vec());
        assert_eq!(d.digest, Digest::of(b"{}"));
        assert_eq!(d.media_type, "a/b");
    }
}
