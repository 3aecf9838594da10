//! Proof that the OCI layout inside an archive (`oci-layout`, `index.json`,
//! manifests in `blobs/sha256/`) is complete and agrees with docker's
//! `manifest.json`, and that skopeo's `oci-archive:` transport reads it.
//! containerd prefers this layout when present, so it must be right.

use crate::support::loaders::read_tar;
use crate::support::util::{digest_of, hex_of, require_tool, run, TempDir};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn blob<'a>(files: &'a HashMap<String, Vec<u8>>, digest: &str) -> &'a Vec<u8> {
    let data = files
        .get(&format!("blobs/sha256/{}", hex_of(digest)))
        .unwrap_or_else(|| panic!("blob {digest} missing from the archive"));
    assert_eq!(
        digest_of(data),
        digest,
        "blob file {digest} matches its name"
    );
    data
}

/// One image as the OCI layout describes it.
#[derive(Debug)]
pub struct OciImage {
    /// `io.containerd.image.name`, if any.
    pub name: Option<String>,
    /// `org.opencontainers.image.ref.name`, if any.
    pub ref_name: Option<String>,
    pub manifest_digest: String,
    pub manifest: Value,
    pub config_digest: String,
    /// Layer digests, in order.
    pub layers: Vec<String>,
    pub layer_media_types: Vec<String>,
}

/// Reads and checks the OCI layout of an archive: `oci-layout` 1.0.0, an
/// OCI `index.json` whose every manifest, config and layer is a blob in the
/// archive with the right digest and size. Returns the images of the index
/// entries (an entry that is an index gives each of its images, with the
/// entry's names).
pub fn oci_images(tar: &Path) -> Vec<OciImage> {
    let files = read_tar(tar);
    let layout: Value = serde_json::from_slice(files.get("oci-layout").expect("oci-layout"))
        .expect("oci-layout JSON");
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(files.get("index.json").expect("index.json")).expect("JSON");
    assert_eq!(index["schemaVersion"], 2, "{index}");
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().expect("manifests") {
        let ann = |k: &str| entry["annotations"][k].as_str().map(str::to_string);
        let names = (
            ann("io.containerd.image.name"),
            ann("org.opencontainers.image.ref.name"),
        );
        images_of(&files, entry, &names, 0, &mut out);
    }
    // The docker view, when present, points at the same blobs.
    if let Some(m) = files.get("manifest.json") {
        let items: Value = serde_json::from_slice(m).unwrap();
        for item in items.as_array().unwrap() {
            let config = item["Config"].as_str().unwrap();
            let same = out
                .iter()
                .find(|o| config.ends_with(hex_of(&o.config_digest)));
            let o = same.unwrap_or_else(|| panic!("manifest.json item {item} not in index.json"));
            let layers: Vec<String> = o
                .layers
                .iter()
                .map(|d| format!("blobs/sha256/{}", hex_of(d)))
                .collect();
            assert_eq!(
                item["Layers"],
                serde_json::json!(layers),
                "same layers in both views"
            );
        }
    }
    out
}

/// Adds the image `desc` names (or each image of the index it names) to
/// `out`, checking every blob on the way.
fn images_of(
    files: &HashMap<String, Vec<u8>>,
    desc: &Value,
    names: &(Option<String>, Option<String>),
    depth: usize,
    out: &mut Vec<OciImage>,
) {
    assert!(depth < 4, "indexes nested too deep at {desc}");
    let mdigest = desc["digest"].as_str().unwrap().to_string();
    let mbytes = blob(files, &mdigest);
    assert_eq!(
        desc["size"].as_u64().unwrap(),
        mbytes.len() as u64,
        "manifest size"
    );
    let manifest: Value = serde_json::from_slice(mbytes).unwrap();
    if let Some(children) = manifest["manifests"].as_array() {
        for child in children {
            images_of(files, child, names, depth + 1, out);
        }
        return;
    }
    let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config = blob(files, &cdigest);
    assert_eq!(
        manifest["config"]["size"].as_u64().unwrap(),
        config.len() as u64
    );
    let mut layers = Vec::new();
    let mut types = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap().to_string();
        let data = blob(files, &d);
        assert_eq!(l["size"].as_u64().unwrap(), data.len() as u64, "layer size");
        layers.push(d);
        types.push(l["mediaType"].as_str().unwrap_or("").to_string());
    }
    out.push(OciImage {
        name: names.0.clone(),
        ref_name: names.1.clone(),
        manifest_digest: mdigest,
        manifest,
        config_digest: cdigest,
        layers,
        layer_media_types: types,
    });
}

/// `skopeo copy oci-archive:T[:REF] dir:DIR` (decompresses nothing, checks
/// every blob's digest); returns the config digest it recorded.
pub fn skopeo_copy_oci_archive(tar: &Path, reference: Option<&str>, work: &TempDir) -> String {
    let skopeo = require_tool("skopeo", "skopeo");
    let dir = work.join("from-oci-archive");
    let src = match reference {
        Some(r) => format!("oci-archive:{}:{r}", tar.display()),
        None => format!("oci-archive:{}", tar.display()),
    };
    run(
        Command::new(skopeo)
            .args(["copy", "--quiet"])
            .arg(&src)
            .arg(format!("dir:{}", dir.display())),
        Duration::from_secs(180),
    )
    .ok(&format!("skopeo copy {src} dir:"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_string()
}
