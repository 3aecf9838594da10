//! Checks of the harness itself, independent of pulltar: an archive laid
//! out exactly as the contract says (written here) must pass
//! `check_archive`, skopeo, podman and dockerd. If these pass and a pull
//! test fails, the fault is in pulltar, not in the harness.

use crate::support::dockerd::Dockerd;
use crate::support::images::{build_image, push_index, push_simple, Flavor, Image, AMD64, ARM64};
use crate::support::loaders::verify_everywhere;
use crate::support::registry::{agent, Registry};
use crate::support::util::{hex_of, Rng, TempDir};
use serde_json::json;
use std::path::PathBuf;

/// The docker-archive the contract describes, for `img` tagged `tags`.
pub fn write_reference_archive(dir: &TempDir, img: &Image, tags: &[String]) -> PathBuf {
    let path = dir.join("reference.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    let blob = |d: &str| format!("blobs/sha256/{}", hex_of(d));
    add(&blob(&img.config_digest), &img.config);
    for l in &img.layers {
        add(&blob(&l.digest), &l.blob);
    }
    let top = hex_of(&img.layers.last().unwrap().digest).to_string();
    let mut repos = serde_json::Map::new();
    for t in tags {
        let (name, tag) = t.rsplit_once(':').unwrap();
        repos.insert(name.to_string(), json!({ tag: top }));
    }
    add("repositories", &serde_json::to_vec(&repos).unwrap());
    let manifest = json!([{"Config": blob(&img.config_digest), "RepoTags": tags,
        "Layers": img.layers.iter().map(|l| blob(&l.digest)).collect::<Vec<_>>()}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap();
    path
}

#[test]
fn reference_archive_passes_skopeo_and_podman() {
    let mut rng = Rng::new();
    let dir = TempDir::new("selfcheck");
    let tags = vec!["127.0.0.1:5000/team/app:v2".to_string()];
    for (flavor, platform) in [(Flavor::Docker, AMD64), (Flavor::Oci, ARM64)] {
        let img = build_image(&mut rng, flavor, platform, 3, 32 * 1024);
        let tar = write_reference_archive(&dir, &img, &tags);
        verify_everywhere(&tar, &img, &tags);
    }
    let untagged = build_image(&mut rng, Flavor::Docker, AMD64, 2, 16 * 1024);
    verify_everywhere(
        &write_reference_archive(&dir, &untagged, &[]),
        &untagged,
        &[],
    );
}

#[test]
fn reference_archive_passes_docker_load() {
    let mut rng = Rng::new();
    let dir = TempDir::new("selfdock");
    let img = build_image(&mut rng, Flavor::Docker, AMD64, 3, 32 * 1024);
    let tag = "127.0.0.1:5000/team/app:v2".to_string();
    let tar = write_reference_archive(&dir, &img, std::slice::from_ref(&tag));
    let daemon = Dockerd::start();
    let info = daemon.load_and_inspect(&tar, &tag);
    assert_eq!(info["Id"], img.config_digest.as_str());
    let layers: Vec<String> = serde_json::from_value(info["RootFS"]["Layers"].clone()).unwrap();
    assert_eq!(layers, img.diff_ids());
}

fn get_manifest(reg: &Registry, repo: &str, reference: &str, accept: &str) -> (u16, Vec<u8>) {
    let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
    let mut resp = agent().get(url).header("Accept", accept).call().unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_vec().unwrap(),
    )
}

fn get_blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let mut resp = agent()
        .get(reg.url(&format!("/v2/{repo}/blobs/{digest}")))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.body_mut().read_to_vec().unwrap()
}

#[test]
fn pushed_images_read_back_byte_for_byte() {
    let reg = Registry::start();
    let all =
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
               application/vnd.docker.distribution.manifest.list.v2+json, \
               application/vnd.docker.distribution.manifest.v2+json";
    for flavor in [Flavor::Docker, Flavor::Oci] {
        let img = push_simple(&reg, "team/app", "t", flavor);
        assert_eq!(
            get_manifest(&reg, "team/app", "t", all),
            (200, img.manifest.clone())
        );
        assert_eq!(get_blob(&reg, "team/app", &img.config_digest), img.config);
        for l in &img.layers {
            assert_eq!(get_blob(&reg, "team/app", &l.digest), l.blob);
        }
        let index = push_index(&reg, "team/multi", "v1", flavor);
        let (status, body) = get_manifest(&reg, "team/multi", "v1", all);
        assert_eq!(status, 200);
        assert_eq!(crate::support::util::digest_of(&body), index.digest);
        assert_eq!(index.children.len(), 4);
    }
    // The docker schema2 tag is only served as schema2 when asked for.
    let (status, _) = get_manifest(
        &reg,
        "team/app",
        "t",
        "application/vnd.docker.distribution.manifest.v2+json",
    );
    assert_eq!(
        status, 404,
        "an OCI manifest is hidden from a Docker-only Accept"
    );
}
