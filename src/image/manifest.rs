//! Manifest and index documents: the serde types, the media types, and
//! `parse`, which decides what a registry sent (the image config is
//! [`crate::image::config`]'s).
//!
//! Four kinds are understood: Docker schema 2 manifests and manifest lists,
//! OCI image manifests and OCI indexes; Docker schema 1 is read as it is
//! (its conversion is [`crate::resolve::schema1`]'s). Every digest in a document is validated by
//! [`Digest`]'s deserialiser, so a malformed one stops parsing. This module
//! does not fetch anything and does not check digests of the documents
//! themselves (the registry client does that).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::image::digest::Digest;
use crate::image::platform::Platform;

pub use crate::image::config::{check_config_size, ImageConfig, RootFs};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 1 (signed and unsigned).
pub const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// The `Accept` header value for manifest requests: all four types.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The most a manifest or index may weigh.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The most an image config may weigh.
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;
/// How deep indexes may nest inside an index.
pub const MAX_DEPTH: usize = 8;
/// How many nested indexes one reference (or one name of an archive) may
/// lead to.
pub const MAX_NESTED: usize = 32;

/// A content descriptor: what a manifest says about a blob or a child.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    #[serde(default, deserialize_with = "crate::image::media_type::deserialize")]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content in bytes.
    pub size: u64,
    /// Platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The `platform` object of an index entry or an image config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl PlatformSpec {
    /// The normalised platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, &self.variant)
    }
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Its media type (Docker schema 2 or OCI), from the registry's
    /// `Content-Type` or the document; OCI when neither says.
    #[serde(default)]
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Clone, Debug, Deserialize)]
pub struct Index {
    /// The child manifests.
    pub manifests: Vec<Descriptor>,
}

/// What a manifest endpoint returned.
#[derive(Clone, Debug)]
pub enum Manifest {
    /// A single-platform image.
    Image(ImageManifest),
    /// A list of per-platform manifests.
    Index(Index),
    /// A Docker schema 1 manifest (to be converted).
    Schema1(Schema1),
}

/// A Docker schema 1 manifest: layers and their v1 JSON, top layer first.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema1 {
    /// The CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// The layer blobs (gzip), top first.
    pub fs_layers: Vec<FsLayer>,
    /// One v1 image JSON per layer, top first.
    pub history: Vec<V1History>,
}

/// A schema 1 layer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsLayer {
    /// The gzip blob's digest.
    pub blob_sum: Digest,
}

/// A schema 1 history entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1History {
    /// The v1 image JSON, as a string.
    pub v1_compatibility: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Parses a manifest or index. The kind comes from the `Content-Type`
/// header, else the document's own `mediaType`, else its shape; `what` names
/// the document in errors.
pub fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Manifest, Error> {
    let err = |reason: String| Error::Manifest {
        what: what.to_string(),
        reason,
    };
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    let kind = header
        .map(str::to_string)
        .or(probe.media_type.clone())
        .unwrap_or_default();
    if DOCKER_SCHEMA1.contains(&kind.as_str()) || probe.schema_version == Some(1) {
        let m: Schema1 = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not a valid Docker schema 1 manifest: {e}")))?;
        if m.fs_layers.len() != m.history.len() || m.fs_layers.is_empty() {
            return Err(err(format!(
                "this Docker schema 1 manifest has {} layers and {} history entries; they must match",
                m.fs_layers.len(),
                m.history.len()
            )));
        }
        return Ok(Manifest::Schema1(m));
    }
    let is_index = match kind.as_str() {
        DOCKER_LIST | OCI_INDEX => true,
        DOCKER_MANIFEST | OCI_MANIFEST => false,
        "" => match (&probe.manifests, &probe.layers) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => return Err(err("it is neither an image manifest nor an index".into())),
        },
        other => {
            return Err(err(format!(
                "media type {:?} is not a manifest type pulltar understands",
                crate::error::excerpt(other.as_bytes(), 100)
            )))
        }
    };
    if is_index {
        let index: Index = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not a valid image index: {e}")))?;
        Ok(Manifest::Index(index))
    } else {
        let mut m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not a valid image manifest: {e}")))?;
        m.media_type = if kind.is_empty() {
            OCI_MANIFEST.to_string()
        } else {
            kind
        };
        Ok(Manifest::Image(m))
    }
}

impl Descriptor {
    /// A descriptor of `media_type`, `digest` and `size`, nothing more.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Whether this index entry describes an attestation, not an image.
    pub fn is_attestation(&self) -> bool {
        self.annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.platform().is_unknown())
    }

    /// Whether this attestation entry describes the image `digest`
    /// (`vnd.docker.reference.digest`, as BuildKit writes it).
    pub fn attests(&self, digest: &Digest) -> bool {
        self.annotations
            .get("vnd.docker.reference.digest")
            .is_some_and(|d| *d == digest.to_string())
    }

    /// The entry's platform as the index writes it (`linux/arm64/v8`), for
    /// messages; an entry without one counts as linux/amd64.
    pub fn platform_as_listed(&self) -> String {
        let raw = match &self.platform {
            Some(p) if p.variant.is_empty() => format!("{}/{}", p.os, p.architecture),
            Some(p) => format!("{}/{}/{}", p.os, p.architecture, p.variant),
            None => "linux/amd64".to_string(),
        };
        // Registry text: keep control characters out of the terminal.
        crate::error::excerpt(raw.as_bytes(), 80)
    }

    /// The entry's platform; an entry without one counts as linux/amd64.
    pub fn entry_platform(&self) -> Platform {
        self.platform
            .as_ref()
            .map(PlatformSpec::platform)
            .unwrap_or_else(|| Platform::new("linux", "amd64", ""))
    }
}

/// The image manifest a reference resolved to.
#[derive(Debug)]
pub struct Resolved {
    /// The digest of the manifest bytes.
    pub digest: Digest,
    /// The manifest exactly as the registry sent it (empty for one
    /// pulltar wrote, from a schema 1 image).
    pub bytes: Vec<u8>,
    /// The manifest.
    pub image: ImageManifest,
    /// Whether it was chosen from an index (a config whose platform
    /// differs is then the index's mistake: a warning).
    pub from_index: bool,
    /// The index it was chosen from, as the registry sent it, when the
    /// reference named an index and only this image was taken from it.
    pub index: Option<crate::image::upstream::Document>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image_json(mt: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"c","digest":"{D}","size":7}},"layers":[{{"mediaType":"l","digest":"{D}","size":9}}]}}"#
        )
    }

    #[test]
    fn image_by_header_and_by_body() {
        for (ct, body_mt) in [
            (Some(DOCKER_MANIFEST), DOCKER_MANIFEST),
            (None, OCI_MANIFEST),
            (Some("application/json"), DOCKER_MANIFEST),
        ] {
            let m = parse(image_json(body_mt).as_bytes(), ct, "m").unwrap();
            let Manifest::Image(m) = m else {
                panic!("not an image")
            };
            assert_eq!(m.layers.len(), 1);
            assert_eq!(m.config.size, 7);
            assert_eq!(m.media_type, body_mt);
        }
    }

    #[test]
    fn index_without_media_type() {
        let j = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},{{"digest":"{D}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        );
        let Manifest::Index(i) = parse(j.as_bytes(), None, "i").unwrap() else {
            panic!("not an index")
        };
        assert_eq!(i.manifests[0].entry_platform().to_string(), "linux/arm/v7");
        assert_eq!(i.manifests[0].platform_as_listed(), "linux/arm/v7");
        assert_eq!(i.manifests[1].platform_as_listed(), "unknown/unknown");
        assert!(!i.manifests[0].is_attestation());
        assert!(i.manifests[1].is_attestation());
    }

    #[test]
    fn schema1_read_or_refused() {
        let e = parse(br#"{"schemaVersion":1,"name":"x"}"#, None, "m").unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        let e = parse(b"{}", Some(DOCKER_SCHEMA1[0]), "m").unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        let one = format!(
            r#"{{"schemaVersion":1,"architecture":"amd64","fsLayers":[{{"blobSum":"{D}"}}],"history":[{{"v1Compatibility":"{{}}"}}]}}"#
        );
        let Manifest::Schema1(m) = parse(one.as_bytes(), Some(DOCKER_SCHEMA1[0]), "m").unwrap()
        else {
            panic!("not schema 1")
        };
        assert_eq!(m.fs_layers.len(), 1);
        let two = one.replace(r#""history":[{"v1Compatibility":"{}"}]"#, r#""history":[]"#);
        let e = parse(two.as_bytes(), None, "m").unwrap_err();
        assert!(e.to_string().contains("must match"), "{e}");
    }

    #[test]
    fn bad_digest_refused() {
        let j = image_json(OCI_MANIFEST).replace("sha256:0123", "sha256:../0");
        let e = parse(j.as_bytes(), None, "m").unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
    }

    #[test]
    fn unknown_type_refused() {
        let e = parse(b"{}", Some("text/html\x1b"), "m").unwrap_err();
        assert!(e.to_string().contains("not a manifest type"), "{e}");
        assert!(parse(b"not json", None, "m").is_err());
    }
}
