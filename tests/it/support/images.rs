//! Test images built in memory and pushed to a `Registry`: random
//! incompressible gzip layers (a valid tar inside, gzip mtime 0), a config
//! with the right `rootfs.diff_ids`, Docker schema2 or OCI manifests, and
//! Docker manifest lists / OCI indexes with an attestation-like
//! `unknown/unknown` entry. Every digest is kept so tests can compare.

use crate::support::registry::Registry;
use crate::support::util::{digest_of, Rng};
use serde_json::{json, Value};
use std::io::Write;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flavor {
    Docker,
    Oci,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
    pub variant: Option<&'static str>,
}

pub const AMD64: Platform = Platform {
    os: "linux",
    arch: "amd64",
    variant: None,
};
pub const ARM64: Platform = Platform {
    os: "linux",
    arch: "arm64",
    variant: Some("v8"),
};
pub const ARMV7: Platform = Platform {
    os: "linux",
    arch: "arm",
    variant: Some("v7"),
};
pub const UNKNOWN: Platform = Platform {
    os: "unknown",
    arch: "unknown",
    variant: None,
};

impl Platform {
    pub fn json(&self) -> Value {
        let mut v = json!({"os": self.os, "architecture": self.arch});
        if let Some(var) = self.variant {
            v["variant"] = json!(var);
        }
        v
    }
}

pub struct Layer {
    pub media_type: &'static str,
    /// The blob exactly as pushed (gzip for image layers).
    pub blob: Vec<u8>,
    pub digest: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
}

pub struct Image {
    pub platform: Platform,
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub media_type: &'static str,
}

impl Image {
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

pub struct Index {
    pub digest: String,
    /// The index exactly as pushed, and its media type.
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// Children in index order; the last is the `unknown/unknown` entry.
    pub children: Vec<Image>,
}

impl Index {
    pub fn child(&self, p: &Platform) -> &Image {
        self.children
            .iter()
            .find(|c| &c.platform == p)
            .expect("platform in index")
    }
}

/// A gzip layer whose tar holds one or two files of random bytes.
pub fn random_layer(rng: &mut Rng, media_type: &'static str, size: usize) -> Layer {
    let mut tar = tar::Builder::new(Vec::new());
    let files = 1 + (rng.next_u64() % 2) as usize;
    for i in 0..files {
        let data = rng.bytes(size / files);
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        let name = format!("data/{}-{i}.bin", rng.token(8));
        tar.append_data(&mut h, name, &data[..]).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let blob = gz.finish().unwrap();
    Layer {
        media_type,
        digest: digest_of(&blob),
        diff_id: digest_of(&raw),
        blob,
    }
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "size": data.len(), "digest": digest_of(data)})
}

fn assemble(flavor: Flavor, platform: Platform, layers: Vec<Layer>, config: Value) -> Image {
    let config = serde_json::to_vec(&config).unwrap();
    let (media_type, config_type) = match flavor {
        Flavor::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
        Flavor::Oci => (OCI_MANIFEST, OCI_CONFIG),
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, &config),
        "layers": layers.iter().map(|l| descriptor(l.media_type, &l.blob)).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    Image {
        platform,
        config_digest: digest_of(&config),
        config,
        manifest_digest: digest_of(&manifest),
        manifest,
        media_type,
        layers,
    }
}

/// An image of `n_layers` random layers of about `layer_size` bytes each.
pub fn build_image(
    rng: &mut Rng,
    flavor: Flavor,
    platform: Platform,
    n_layers: usize,
    layer_size: usize,
) -> Image {
    let layer_type = match flavor {
        Flavor::Docker => DOCKER_LAYER,
        Flavor::Oci => OCI_LAYER,
    };
    let layers: Vec<Layer> = (0..n_layers)
        .map(|_| random_layer(rng, layer_type, layer_size))
        .collect();
    let mut config = platform.json();
    config["created"] = json!("2024-01-01T00:00:00Z");
    config["config"] = json!({
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": {"pulltar.test.nonce": rng.token(16)},
    });
    config["rootfs"] = json!({"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()});
    config["history"] = json!((0..n_layers)
        .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("pulltar test layer {i}")}))
        .collect::<Vec<_>>());
    assemble(flavor, platform, layers, config)
}

/// A BuildKit-style attestation manifest: platform unknown/unknown, one
/// in-toto JSON layer (OCI) or one tiny gzip layer (Docker list).
pub fn build_attestation(rng: &mut Rng, flavor: Flavor, subject: &str) -> Image {
    let layer = match flavor {
        Flavor::Docker => random_layer(rng, DOCKER_LAYER, 64),
        Flavor::Oci => {
            let stmt = json!({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": subject}}],
                "predicateType": "https://spdx.dev/Document", "predicate": {"nonce": rng.token(12)}});
            let blob = serde_json::to_vec(&stmt).unwrap();
            Layer {
                media_type: IN_TOTO,
                digest: digest_of(&blob),
                diff_id: digest_of(&blob),
                blob,
            }
        }
    };
    let config = json!({"architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.clone()]}});
    assemble(flavor, UNKNOWN, vec![layer], config)
}

/// Pushes the blobs, then the manifest under `reference` (a tag, or `None`
/// to push it by its digest only).
pub fn push_image(reg: &Registry, repo: &str, reference: Option<&str>, img: &Image) {
    for l in &img.layers {
        assert_eq!(reg.push_blob(repo, &l.blob), l.digest);
    }
    assert_eq!(reg.push_blob(repo, &img.config), img.config_digest);
    let reference = reference.unwrap_or(&img.manifest_digest);
    assert_eq!(
        reg.put_manifest(repo, reference, img.media_type, &img.manifest),
        img.manifest_digest
    );
}

/// Builds and pushes a 3-layer image of `flavor` for linux/amd64 as `repo:tag`.
pub fn push_simple(reg: &Registry, repo: &str, tag: &str, flavor: Flavor) -> Image {
    let mut rng = Rng::new();
    let img = build_image(&mut rng, flavor, AMD64, 3, 96 * 1024);
    push_image(reg, repo, Some(tag), &img);
    img
}

/// A multi-platform index as `repo:tag`: linux/amd64, linux/arm64/v8 and
/// linux/arm/v7 images (2 layers each) plus an `unknown/unknown` entry.
/// The Docker list is deliberately not in host-first order.
pub fn push_index(reg: &Registry, repo: &str, tag: &str, flavor: Flavor) -> Index {
    push_index_from(&mut Rng::new(), reg, repo, tag, flavor)
}

/// `push_index` with the random bytes drawn from `rng`.
pub fn push_index_from(
    rng: &mut Rng,
    reg: &Registry,
    repo: &str,
    tag: &str,
    flavor: Flavor,
) -> Index {
    let order = match flavor {
        Flavor::Docker => [ARMV7, ARM64, AMD64],
        Flavor::Oci => [AMD64, ARM64, ARMV7],
    };
    let mut children: Vec<Image> = order
        .into_iter()
        .map(|p| build_image(rng, flavor, p, 2, 48 * 1024))
        .collect();
    let subject = crate::support::util::hex_of(&children[0].manifest_digest).to_string();
    children.push(build_attestation(rng, flavor, &subject));
    for c in &children {
        push_image(reg, repo, None, c);
    }
    let entries: Vec<Value> = children
        .iter()
        .map(|c| {
            let mut d = descriptor(c.media_type, &c.manifest);
            d["platform"] = c.platform.json();
            if c.platform == UNKNOWN && flavor == Flavor::Oci {
                d["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": format!("sha256:{subject}")});
            }
            d
        })
        .collect();
    let media_type = match flavor {
        Flavor::Docker => DOCKER_LIST,
        Flavor::Oci => OCI_INDEX,
    };
    let bytes = serde_json::to_vec_pretty(
        &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}),
    )
    .unwrap();
    let digest = reg.put_manifest(repo, tag, media_type, &bytes);
    Index {
        digest,
        bytes,
        media_type,
        children,
    }
}

/// The uncompressed Docker layer media type (digest = diff_id).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// An uncompressed tar layer holding one file of `size` random bytes: its
/// digest is its diff_id, and it is quick to build at tens of MiB (gzip in
/// a debug build is not).
pub fn raw_layer(rng: &mut Rng, media_type: &'static str, size: usize) -> Layer {
    let data = rng.bytes(size);
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    let mut tar = tar::Builder::new(Vec::with_capacity(size + 2048));
    let name = format!("data/{}.bin", rng.token(8));
    tar.append_data(&mut h, name, &data[..]).unwrap();
    let blob = tar.into_inner().unwrap();
    let digest = digest_of(&blob);
    Layer {
        media_type,
        diff_id: digest.clone(),
        digest,
        blob,
    }
}

/// An image of the given `layers` (a config with their diff_ids), like
/// `build_image` but with layers the caller made.
pub fn image_of_layers(
    rng: &mut Rng,
    flavor: Flavor,
    platform: Platform,
    layers: Vec<Layer>,
) -> Image {
    let mut config = platform.json();
    config["created"] = json!("2024-01-01T00:00:00Z");
    config["config"] = json!({
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": {"pulltar.test.nonce": rng.token(16)},
    });
    config["rootfs"] = json!({"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()});
    config["history"] = json!((0..layers.len())
        .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("pulltar test layer {i}")}))
        .collect::<Vec<_>>());
    assemble(flavor, platform, layers, config)
}

/// A linux/amd64 image with one uncompressed layer of `size` random bytes.
pub fn one_big_layer(size: usize) -> Image {
    let mut rng = Rng::new();
    let big = raw_layer(&mut rng, DOCKER_LAYER_TAR, size);
    image_of_layers(&mut rng, Flavor::Docker, AMD64, vec![big])
}
