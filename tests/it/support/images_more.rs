//! More test images for the archive-format tests, built like `images.rs`
//! and pushed to a `Registry`: zstd and uncompressed OCI layers, an image
//! without layers, one layer listed twice, two images sharing a base
//! layer, an index nested in an index, a chain of indexes deeper than any
//! sane limit, and an index entry without `platform`. Each builder has a
//! test proving the registry serves what it pushed.

use crate::support::images::{
    descriptor, image_of_layers, push_image, random_layer, raw_layer, Flavor, Image, Layer, AMD64,
    ARM64, DOCKER_LAYER, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};
use crate::support::registry::{agent, Registry};
use crate::support::util::{digest_of, require_tool, run, Rng, TempDir};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A second `Layer` with the same bytes (the same blob listed again).
pub fn copy_layer(l: &Layer) -> Layer {
    Layer {
        media_type: l.media_type,
        blob: l.blob.clone(),
        digest: l.digest.clone(),
        diff_id: l.diff_id.clone(),
    }
}

/// `zstd ARGS IN -o OUT` on files in a temp dir; returns OUT's bytes.
fn zstd_cli(args: &[&str], input: &[u8]) -> Vec<u8> {
    let bin = require_tool("zstd", "zstd");
    let dir = TempDir::new("zstd");
    let (src, dst) = (dir.join("in"), dir.join("out"));
    std::fs::write(&src, input).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["-q", "-f"])
        .args(args)
        .arg(&src)
        .arg("-o")
        .arg(&dst);
    run(&mut cmd, Duration::from_secs(60)).ok("zstd");
    std::fs::read(&dst).unwrap()
}

/// A zstd layer (`zstd` CLI, default level and checksum) of a tar holding
/// one file of `size` random bytes; `diff_id` = sha256 of that tar.
pub fn zstd_layer(rng: &mut Rng, size: usize) -> Layer {
    let tar = raw_layer(rng, OCI_LAYER_TAR, size);
    let blob = zstd_cli(&[], &tar.blob);
    Layer {
        media_type: OCI_LAYER_ZSTD,
        digest: digest_of(&blob),
        diff_id: tar.diff_id,
        blob,
    }
}

/// The tar inside a zstd blob (`zstd -d`).
pub fn unzstd(blob: &[u8]) -> Vec<u8> {
    zstd_cli(&["-d"], blob)
}

/// An OCI linux/amd64 image as `repo:tag`: one gzip layer, then two zstd.
pub fn push_zstd_image(reg: &Registry, repo: &str, tag: &str) -> Image {
    let mut rng = Rng::new();
    let layers = vec![
        random_layer(&mut rng, OCI_LAYER, 64 * 1024),
        zstd_layer(&mut rng, 96 * 1024),
        zstd_layer(&mut rng, 48 * 1024),
    ];
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, layers);
    push_image(reg, repo, Some(tag), &img);
    img
}

/// An OCI linux/amd64 image as `repo:tag` of two plain-tar layers
/// (`…layer.v1.tar`: digest = diff_id).
pub fn push_uncompressed_image(reg: &Registry, repo: &str, tag: &str) -> Image {
    let mut rng = Rng::new();
    let layers = vec![
        raw_layer(&mut rng, OCI_LAYER_TAR, 64 * 1024),
        raw_layer(&mut rng, OCI_LAYER_TAR, 32 * 1024),
    ];
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, layers);
    push_image(reg, repo, Some(tag), &img);
    img
}

/// An OCI linux/amd64 image as `repo:tag` with no layers at all: empty
/// `rootfs.diff_ids` and `"layers": []`.
pub fn push_zero_layer_image(reg: &Registry, repo: &str, tag: &str) -> Image {
    let mut rng = Rng::new();
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, vec![]);
    push_image(reg, repo, Some(tag), &img);
    img
}

/// A Docker schema2 image as `repo:tag` whose layers are [A, B, A]: the
/// same blob twice in the manifest, its diff_id twice in the config.
pub fn push_dup_layer_image(reg: &Registry, repo: &str, tag: &str) -> Image {
    let mut rng = Rng::new();
    let a = random_layer(&mut rng, DOCKER_LAYER, 64 * 1024);
    let b = random_layer(&mut rng, DOCKER_LAYER, 32 * 1024);
    let again = copy_layer(&a);
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, vec![a, b, again]);
    push_image(reg, repo, Some(tag), &img);
    img
}

/// Two Docker schema2 images, `repo_a:tag_a` = [base, a] and
/// `repo_b:tag_b` = [base, b]: the same base blob pushed to both repos,
/// different configs and top layers.
pub fn push_shared_layer_images(
    reg: &Registry,
    repo_a: &str,
    tag_a: &str,
    repo_b: &str,
    tag_b: &str,
) -> (Image, Image) {
    let mut rng = Rng::new();
    let base = random_layer(&mut rng, DOCKER_LAYER, 64 * 1024);
    let base_again = copy_layer(&base);
    let top_a = random_layer(&mut rng, DOCKER_LAYER, 32 * 1024);
    let top_b = random_layer(&mut rng, DOCKER_LAYER, 32 * 1024);
    let a = image_of_layers(&mut rng, Flavor::Docker, AMD64, vec![base, top_a]);
    let b = image_of_layers(&mut rng, Flavor::Docker, AMD64, vec![base_again, top_b]);
    push_image(reg, repo_a, Some(tag_a), &a);
    push_image(reg, repo_b, Some(tag_b), &b);
    (a, b)
}

/// The bytes of an OCI index of `entries`.
fn oci_index(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap()
}

/// An index entry for `img`, with its platform.
fn entry_with_platform(img: &Image) -> Value {
    let mut d = descriptor(img.media_type, &img.manifest);
    d["platform"] = img.platform.json();
    d
}

/// `repo:tag` = an OCI index whose only entry (no platform) is another OCI
/// index holding a linux/amd64 and a linux/arm64/v8 OCI image (2 layers
/// each). Returns (outer index bytes, amd64 image, arm64 image); the inner
/// index is pushed by digest (it is the outer entry's `digest`).
pub fn push_nested_index(reg: &Registry, repo: &str, tag: &str) -> (Vec<u8>, Image, Image) {
    let mut rng = Rng::new();
    let amd = crate::support::images::build_image(&mut rng, Flavor::Oci, AMD64, 2, 48 * 1024);
    let arm = crate::support::images::build_image(&mut rng, Flavor::Oci, ARM64, 2, 48 * 1024);
    push_image(reg, repo, None, &amd);
    push_image(reg, repo, None, &arm);
    let inner = oci_index(vec![entry_with_platform(&amd), entry_with_platform(&arm)]);
    let inner_digest = reg.put_manifest(repo, &digest_of(&inner), OCI_INDEX, &inner);
    assert_eq!(inner_digest, digest_of(&inner));
    let outer = oci_index(vec![descriptor(OCI_INDEX, &inner)]);
    reg.put_manifest(repo, tag, OCI_INDEX, &outer);
    (outer, amd, arm)
}

/// `repo:tag` = a chain of `depth` OCI indexes (each the only entry of the
/// one above, no platform) ending at one linux/amd64 OCI image (an entry
/// with platform). A cycle cannot be built by digest; this stands in for
/// one. Returns (outermost index bytes, the image).
pub fn push_deep_index(reg: &Registry, repo: &str, tag: &str, depth: usize) -> (Vec<u8>, Image) {
    assert!(depth >= 1, "a chain needs at least one index");
    let mut rng = Rng::new();
    let img = crate::support::images::build_image(&mut rng, Flavor::Oci, AMD64, 1, 16 * 1024);
    push_image(reg, repo, None, &img);
    let mut bytes = oci_index(vec![entry_with_platform(&img)]);
    for _ in 1..depth {
        reg.put_manifest(repo, &digest_of(&bytes), OCI_INDEX, &bytes);
        bytes = oci_index(vec![descriptor(OCI_INDEX, &bytes)]);
    }
    reg.put_manifest(repo, tag, OCI_INDEX, &bytes);
    (bytes, img)
}

/// `repo:tag` = an OCI index with one entry, a linux/amd64 OCI image
/// (2 layers), whose descriptor has no `platform` field.
pub fn push_no_platform_index(reg: &Registry, repo: &str, tag: &str) -> Image {
    let mut rng = Rng::new();
    let img = crate::support::images::build_image(&mut rng, Flavor::Oci, AMD64, 2, 48 * 1024);
    push_image(reg, repo, None, &img);
    let index = oci_index(vec![descriptor(img.media_type, &img.manifest)]);
    reg.put_manifest(repo, tag, OCI_INDEX, &index);
    img
}

/// HEAD then GET `/v2/REPO/manifests/REFERENCE` with `Accept: media_type`:
/// both 200 with that Content-Type and a Docker-Content-Digest matching
/// the body. Returns the body.
pub fn fetch_manifest(reg: &Registry, repo: &str, reference: &str, media_type: &str) -> Vec<u8> {
    let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
    let head = agent()
        .head(&url)
        .header("Accept", media_type)
        .call()
        .unwrap_or_else(|e| panic!("HEAD {url}: {e}"));
    assert_eq!(head.status().as_u16(), 200, "HEAD {url}");
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let head_digest = header(&head, "docker-content-digest");
    let mut resp = agent()
        .get(&url)
        .header("Accept", media_type)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    assert_eq!(header(&resp, "content-type"), media_type, "GET {url}");
    let digest = header(&resp, "docker-content-digest");
    let body = resp.body_mut().read_to_vec().unwrap();
    assert_eq!(digest, digest_of(&body), "GET {url}: digest header");
    assert_eq!(head_digest, digest, "HEAD and GET {url} agree");
    body
}

/// The registry serves `img` under `reference` byte for byte, and every
/// blob it names.
fn assert_served(reg: &Registry, repo: &str, reference: &str, img: &Image) {
    let body = fetch_manifest(reg, repo, reference, img.media_type);
    assert!(body == img.manifest, "{repo}:{reference} manifest bytes");
    assert_eq!(
        reg.blob_status(repo, &img.config_digest),
        200,
        "config blob"
    );
    for l in &img.layers {
        assert_eq!(reg.blob_status(repo, &l.digest), 200, "layer {}", l.digest);
    }
    let m: Value = serde_json::from_slice(&body).unwrap();
    let config: Value = serde_json::from_slice(&img.config).unwrap();
    let layers = m["layers"].as_array().expect("manifest layers");
    assert_eq!(layers.len(), img.layers.len(), "layer count");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!(img.diff_ids()),
        "config diff_ids"
    );
    for (d, l) in layers.iter().zip(&img.layers) {
        assert_eq!(d["digest"], l.digest.as_str());
        assert_eq!(d["mediaType"], l.media_type);
        assert_eq!(d["size"], l.blob.len());
    }
}

#[test]
fn images_more_zstd_image_is_served_and_decompresses_to_its_diff_ids() {
    let reg = Registry::start();
    let img = push_zstd_image(&reg, "more/zstd", "v1");
    assert_served(&reg, "more/zstd", "v1", &img);
    let types: Vec<&str> = img.layers.iter().map(|l| l.media_type).collect();
    assert_eq!(types, [OCI_LAYER, OCI_LAYER_ZSTD, OCI_LAYER_ZSTD]);
    for l in &img.layers[1..] {
        assert_eq!(&l.blob[..4], b"\x28\xb5\x2f\xfd", "zstd frame magic");
        let tar = unzstd(&l.blob);
        assert_eq!(digest_of(&tar), l.diff_id, "zstd layer diff_id");
        assert_ne!(l.digest, l.diff_id);
        let mut ar = tar::Archive::new(&tar[..]);
        assert_eq!(ar.entries().unwrap().count(), 1, "one file in the tar");
    }
}

#[test]
fn images_more_uncompressed_image_is_served() {
    let reg = Registry::start();
    let img = push_uncompressed_image(&reg, "more/plain", "v1");
    assert_served(&reg, "more/plain", "v1", &img);
    assert_eq!(img.media_type, OCI_MANIFEST);
    for l in &img.layers {
        assert_eq!(l.media_type, OCI_LAYER_TAR);
        assert_eq!(l.digest, l.diff_id, "plain tar: digest = diff_id");
    }
}

#[test]
fn images_more_zero_layer_image_is_served() {
    let reg = Registry::start();
    let img = push_zero_layer_image(&reg, "more/empty", "v1");
    assert_served(&reg, "more/empty", "v1", &img);
    let m: Value = serde_json::from_slice(&img.manifest).unwrap();
    assert_eq!(m["layers"], json!([]));
    let c: Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(c["rootfs"]["diff_ids"], json!([]));
}

#[test]
fn images_more_dup_layer_image_is_served() {
    let reg = Registry::start();
    let img = push_dup_layer_image(&reg, "more/dup", "v1");
    assert_served(&reg, "more/dup", "v1", &img);
    assert_eq!(img.layers.len(), 3);
    assert_eq!(img.layers[0].digest, img.layers[2].digest);
    assert_ne!(img.layers[0].digest, img.layers[1].digest);
    assert_eq!(img.diff_ids()[0], img.diff_ids()[2]);
}

#[test]
fn images_more_shared_layer_images_are_served() {
    let reg = Registry::start();
    let (a, b) = push_shared_layer_images(&reg, "more/a", "v1", "more/b", "v2");
    assert_served(&reg, "more/a", "v1", &a);
    assert_served(&reg, "more/b", "v2", &b);
    assert_eq!(a.layers[0].digest, b.layers[0].digest, "shared base");
    assert_ne!(a.layers[1].digest, b.layers[1].digest);
    assert_ne!(a.config_digest, b.config_digest);
    assert_ne!(a.manifest_digest, b.manifest_digest);
}

#[test]
fn images_more_nested_index_is_served() {
    let reg = Registry::start();
    let (outer, amd, arm) = push_nested_index(&reg, "more/nested", "v1");
    assert!(fetch_manifest(&reg, "more/nested", "v1", OCI_INDEX) == outer);
    let o: Value = serde_json::from_slice(&outer).unwrap();
    let entries = o["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["mediaType"], OCI_INDEX);
    assert!(entries[0].get("platform").is_none(), "no platform: {o}");
    let inner_digest = entries[0]["digest"].as_str().unwrap();
    let inner: Value = serde_json::from_slice(&fetch_manifest(
        &reg,
        "more/nested",
        inner_digest,
        OCI_INDEX,
    ))
    .unwrap();
    let children = inner["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for (e, img) in children.iter().zip([&amd, &arm]) {
        assert_eq!(e["digest"], img.manifest_digest.as_str());
        assert_eq!(e["platform"], img.platform.json());
        assert_served(&reg, "more/nested", &img.manifest_digest, img);
    }
    assert_eq!(arm.platform, ARM64);
}

#[test]
fn images_more_deep_index_chain_is_served() {
    let reg = Registry::start();
    let depth = 10;
    let (outer, img) = push_deep_index(&reg, "more/deep", "v1", depth);
    let mut body = fetch_manifest(&reg, "more/deep", "v1", OCI_INDEX);
    assert!(body == outer);
    let mut levels = 0;
    // Bounded walk: at most depth + 1 hops.
    for _ in 0..=depth {
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let entries = doc["manifests"].as_array().expect("an index");
        assert_eq!(entries.len(), 1);
        levels += 1;
        let d = entries[0]["digest"].as_str().unwrap();
        if entries[0]["mediaType"] == OCI_MANIFEST {
            assert_eq!(d, img.manifest_digest);
            assert_eq!(entries[0]["platform"], img.platform.json());
            break;
        }
        assert!(entries[0].get("platform").is_none());
        body = fetch_manifest(&reg, "more/deep", d, OCI_INDEX);
    }
    assert_eq!(levels, depth, "index levels above the image");
    assert_served(&reg, "more/deep", &img.manifest_digest, &img);
}

#[test]
fn images_more_no_platform_index_is_served() {
    let reg = Registry::start();
    let img = push_no_platform_index(&reg, "more/noplat", "v1");
    let index: Value =
        serde_json::from_slice(&fetch_manifest(&reg, "more/noplat", "v1", OCI_INDEX)).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].get("platform").is_none(), "no platform: {index}");
    assert_eq!(entries[0]["digest"], img.manifest_digest.as_str());
    assert_served(&reg, "more/noplat", &img.manifest_digest, &img);
    let c: Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(
        (c["os"].as_str(), c["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
}
