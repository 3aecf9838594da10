//! Proof that an archive written by pulltar is what it should be: its own
//! contents (manifest.json, config verbatim, layer bytes as pushed), and
//! acceptance by real loaders: `skopeo inspect`, `skopeo copy` to an OCI
//! layout (which checks every layer against its diff_id) and `podman load`
//! into an isolated vfs store. dockerd lives in `dockerd.rs`.

use crate::support::images::Image;
use crate::support::util::{hex_of, require_tool, run, Output, TempDir};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Every regular file in a tar, by path.
pub fn read_tar(path: &Path) -> HashMap<String, Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut ar = tar::Archive::new(file);
    let mut files = HashMap::new();
    for entry in ar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        assert!(
            files.insert(name.clone(), data).is_none(),
            "duplicate tar entry {name}"
        );
    }
    files
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

/// Checks the archive against the contract: one manifest.json entry with
/// `Config` = the config verbatim, `Layers` = the pushed blobs in manifest
/// order, `RepoTags` = `tags`, and a `repositories` file when tagged.
pub fn check_archive(tar: &Path, img: &Image, tags: &[String]) {
    let files = read_tar(tar);
    let manifest: Value = serde_json::from_slice(
        files
            .get("manifest.json")
            .expect("manifest.json in archive"),
    )
    .expect("manifest.json is JSON");
    let list = manifest.as_array().expect("manifest.json is a list");
    assert_eq!(list.len(), 1, "one image in manifest.json: {manifest}");
    let m = &list[0];
    assert_eq!(m["Config"], blob_path(&img.config_digest), "Config path");
    assert_eq!(
        files.get(&blob_path(&img.config_digest)),
        Some(&img.config),
        "config bytes verbatim"
    );
    let repo_tags: Vec<String> = match &m["RepoTags"] {
        Value::Null => vec![],
        v => serde_json::from_value(v.clone()).expect("RepoTags is a list of strings"),
    };
    assert_eq!(repo_tags, tags, "RepoTags");
    let want: Vec<String> = img.layers.iter().map(|l| blob_path(&l.digest)).collect();
    let got: Vec<String> = serde_json::from_value(m["Layers"].clone()).expect("Layers is a list");
    assert_eq!(got, want, "Layers in manifest order");
    for l in &img.layers {
        let data = files
            .get(&blob_path(&l.digest))
            .expect("layer file in archive");
        assert!(
            data == &l.blob,
            "layer {} bytes differ from the pushed blob",
            l.digest
        );
    }
    // `repositories` (legacy docker save) maps name -> tag -> top layer. Like
    // `docker save`, an untagged image may have none at all.
    let repos = match files.get("repositories") {
        Some(data) => serde_json::from_slice(data).expect("repositories is JSON"),
        None if tags.is_empty() => Value::Null,
        None => panic!("no repositories file in a tagged archive"),
    };
    for t in tags {
        let (name, tag) = t.rsplit_once(':').unwrap();
        assert!(
            repos[name][tag].is_string(),
            "repositories lacks {name}:{tag}: {repos}"
        );
    }
}

fn skopeo() -> std::path::PathBuf {
    require_tool("skopeo", "skopeo")
}

/// `skopeo inspect docker-archive:T`, parsed.
pub fn skopeo_inspect(tar: &Path) -> Value {
    let out = run(
        Command::new(skopeo())
            .arg("inspect")
            .arg(format!("docker-archive:{}", tar.display())),
        Duration::from_secs(120),
    )
    .ok("skopeo inspect");
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect output: {e}\n{}", out.stdout))
}

fn skopeo_copy(tar: &Path, dest: String) {
    let out = run(
        Command::new(skopeo())
            .arg("copy")
            .arg("--quiet")
            .arg(format!("docker-archive:{}", tar.display()))
            .arg(&dest),
        Duration::from_secs(180),
    );
    out.ok(&format!("skopeo copy docker-archive: -> {dest}"));
}

/// `skopeo copy docker-archive:T oci:DIR:t` (which decompresses every layer
/// and checks it against its diff_id); returns the OCI config it wrote.
/// skopeo converts a Docker config to OCI here, so its digest may change.
pub fn skopeo_copy_to_oci(tar: &Path, work: &TempDir) -> Value {
    let dir = work.join("oci-layout");
    skopeo_copy(tar, format!("oci:{}:t", dir.display()));
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index.json manifest digest")
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join(blob_path(&mdigest))).unwrap()).unwrap();
    let cdigest = manifest["config"]["digest"]
        .as_str()
        .expect("OCI manifest config digest");
    serde_json::from_slice(&std::fs::read(dir.join(blob_path(cdigest))).unwrap()).unwrap()
}

/// `skopeo copy docker-archive:T dir:DIR`: no format conversion, so the
/// config must arrive verbatim. Returns the config digest it recorded.
pub fn skopeo_copy_to_dir(tar: &Path, work: &TempDir) -> String {
    let dir = work.join("dir-layout");
    skopeo_copy(tar, format!("dir:{}", dir.display()));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let cdigest = manifest["config"]["digest"]
        .as_str()
        .expect("dir: manifest config digest")
        .to_string();
    let config = std::fs::read(dir.join(hex_of(&cdigest))).expect("config file in dir: layout");
    assert_eq!(
        crate::support::util::digest_of(&config),
        cdigest,
        "dir: config file matches its digest"
    );
    cdigest
}

/// `podman` with its root, runroot and tmpdir in `store` (vfs, cgroupfs,
/// file events): add the subcommand and run it (or spawn it, for a pipe).
pub fn podman_command(store: &TempDir) -> Command {
    let bin = require_tool("podman", "podman uidmap runc");
    let mut cmd = Command::new(bin);
    cmd.arg("--root")
        .arg(store.join("root"))
        .arg("--runroot")
        .arg(store.join("runroot"))
        .arg("--tmpdir")
        .arg(store.join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    cmd
}

fn podman(store: &TempDir, args: &[&str], limit: u64) -> Output {
    let mut cmd = podman_command(store);
    cmd.args(args);
    run(&mut cmd, Duration::from_secs(limit))
}

/// `podman images` of `store`: (image ID, names) of each image, once
/// (podman prints one row per tag, so an image with two tags comes twice).
pub fn podman_images(store: &TempDir) -> Vec<(String, Vec<String>)> {
    let out = podman(store, &["images", "--format", "json"], 60).ok("podman images");
    let images: Value = serde_json::from_str(&out.stdout).expect("podman images JSON");
    let images = images.as_array().expect("podman images list");
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for i in images {
        let id = i["Id"].as_str().expect("podman image Id").to_string();
        let names: Vec<String> = serde_json::from_value(i["Names"].clone()).unwrap_or_default();
        match seen.iter_mut().find(|(s, _)| *s == id) {
            Some((_, known)) => {
                assert_eq!(*known, names, "podman rows of {id} disagree on names");
            }
            None => seen.push((id, names)),
        }
    }
    seen
}

/// `podman load -i T` into a fresh store; returns (image ID, names) of
/// every image it then lists.
pub fn podman_load_all(tar: &Path) -> Vec<(String, Vec<String>)> {
    let store = TempDir::new("podman");
    let tar = tar.to_str().unwrap();
    podman(&store, &["load", "-i", tar], 300).ok("podman load");
    podman_images(&store)
}

/// `podman load -i T` into a fresh store; returns (image ID, names).
pub fn podman_load(tar: &Path) -> (String, Vec<String>) {
    let mut images = podman_load_all(tar);
    assert_eq!(images.len(), 1, "one image loaded: {images:?}");
    images.remove(0)
}

/// Everything above: archive contents, skopeo inspect (os/arch, layers =
/// diff_ids), skopeo copy to oci: (layers verified; same diff_ids and
/// platform) and to dir: (config digest unchanged), and podman load (image
/// ID = config digest).
pub fn verify_everywhere(tar: &Path, img: &Image, tags: &[String]) {
    check_archive(tar, img, tags);
    let info = skopeo_inspect(tar);
    assert_eq!(info["Os"], img.platform.os, "skopeo Os: {info}");
    assert_eq!(
        info["Architecture"], img.platform.arch,
        "skopeo Architecture: {info}"
    );
    if let (Some(v), Some(want)) = (info.get("Variant"), img.platform.variant) {
        assert_eq!(v, want, "skopeo Variant");
    }
    let layers: Vec<String> =
        serde_json::from_value(info["Layers"].clone()).expect("skopeo Layers");
    assert_eq!(
        layers,
        img.diff_ids(),
        "skopeo sees the uncompressed layers = diff_ids"
    );
    let work = TempDir::new("skopeo");
    let oci = skopeo_copy_to_oci(tar, &work);
    let ours: Value = serde_json::from_slice(&img.config).unwrap();
    for key in ["rootfs", "architecture", "os", "variant", "config"] {
        assert_eq!(oci[key], ours[key], "{key} after skopeo copy to oci:");
    }
    assert_eq!(
        skopeo_copy_to_dir(tar, &work),
        img.config_digest,
        "config digest after skopeo copy to dir:"
    );
    if read_tar(tar).contains_key("oci-layout") {
        let oci = crate::support::oci_check::oci_images(tar);
        assert!(
            oci.iter().any(|o| o.config_digest == img.config_digest),
            "index.json names the config {}: {oci:?}",
            img.config_digest
        );
        let reference = oci.iter().find_map(|o| o.ref_name.clone());
        assert_eq!(
            crate::support::oci_check::skopeo_copy_oci_archive(tar, reference.as_deref(), &work),
            img.config_digest,
            "config digest after skopeo copy oci-archive: to dir:"
        );
    }
    let (id, names) = podman_load(tar);
    assert_eq!(
        id,
        hex_of(&img.config_digest),
        "podman image ID = config digest"
    );
    for t in tags {
        assert!(names.contains(t), "podman names {names:?} lack {t}");
    }
}
