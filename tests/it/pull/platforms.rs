//! `--platform all` and lists of platforms: several images of one index in
//! one archive. The registry's index and every manifest it references
//! (attestations included) travel byte for byte with their blobs, named in
//! `index.json` and `manifest.json` as the document a push puts back;
//! `docker load` (a dockerd 20.10 the test starts) gets this host's image
//! (or the first asked for) under the tag, `ctr images import
//! --all-platforms` every platform, and skopeo and podman read the archive.

use crate::support::containerd::Containerd;
use crate::support::dockerd::Dockerd;
use crate::support::images::{
    push_index, push_simple, Flavor, Index, AMD64, ARM64, ARMV7, UNKNOWN,
};
use crate::support::loaders::{read_tar, skopeo_inspect, verify_everywhere};
use crate::support::oci_check::oci_images;
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{hex_of, pulltar_in, TempDir};
use serde_json::Value;
use std::collections::HashMap;

const DOCKER_LIST: &str = crate::support::images::DOCKER_LIST;
const OCI_INDEX: &str = crate::support::images::OCI_INDEX;

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

fn json(files: &HashMap<String, Vec<u8>>, name: &str) -> Value {
    let data = files
        .get(name)
        .unwrap_or_else(|| panic!("{name} in the archive"));
    serde_json::from_slice(data).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every document and blob of the index `ix` is in the archive, byte for
/// byte: the index, each manifest (attestations too), configs, layers.
fn assert_all_upstream(files: &HashMap<String, Vec<u8>>, ix: &Index) {
    assert!(
        files.get(&blob_path(&ix.digest)) == Some(&ix.bytes),
        "the registry's index is not kept byte for byte"
    );
    for c in &ix.children {
        let has = |d: &str, data: &[u8]| files.get(&blob_path(d)).map(Vec::as_slice) == Some(data);
        assert!(
            has(&c.manifest_digest, &c.manifest),
            "manifest of {:?}",
            c.platform
        );
        assert!(
            has(&c.config_digest, &c.config),
            "config of {:?}",
            c.platform
        );
        for l in &c.layers {
            assert!(
                has(&l.digest, &l.blob),
                "layer {} of {:?}",
                l.digest,
                c.platform
            );
        }
    }
}

/// The one `index.json` entry: its descriptor and annotations checked
/// against the name and the registry's index.
fn layout_entry(files: &HashMap<String, Vec<u8>>, reference: &str, ix: &Index) -> Value {
    let index = json(files, "index.json");
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1, "one entry per name: {index}");
    let e = entries[0].clone();
    assert_eq!(e["mediaType"], OCI_INDEX, "the layout names an index: {e}");
    let a = &e["annotations"];
    assert_eq!(a["io.containerd.image.name"], reference);
    assert_eq!(a["pulltar.upstream.digest"], ix.digest.as_str(), "{e}");
    assert_eq!(a["pulltar.upstream.media-type"], ix.media_type, "{e}");
    e
}

/// The one `manifest.json` item: `img`'s config and layers, the tag, and
/// the record of the registry's index.
fn docker_item(
    files: &HashMap<String, Vec<u8>>,
    reference: &str,
    ix: &Index,
    p: &crate::support::images::Platform,
) {
    let items = json(files, "manifest.json");
    let items = items.as_array().expect("manifest.json list");
    assert_eq!(items.len(), 1, "one item per name: {items:?}");
    let img = ix.child(p);
    assert_eq!(items[0]["Config"], blob_path(&img.config_digest).as_str());
    assert_eq!(items[0]["RepoTags"], serde_json::json!([reference]));
    assert_eq!(items[0]["PulltarUpstream"]["Digest"], ix.digest.as_str());
}

#[test]
fn all_platforms_of_an_oci_index_load_everywhere() {
    let reg = Registry::start();
    let ix = push_index(&reg, "multi/app", "v1", Flavor::Oci);
    let reference = format!("{}/multi/app:v1", reg.host());
    let work = TempDir::new("all");
    let tar = pull_ok(&work, &reference, &["--platform", "all"]);
    let files = read_tar(&tar);
    assert_all_upstream(&files, &ix);
    // Every manifest is OCI and kept as it is: the layout names the
    // registry's index itself.
    let e = layout_entry(&files, &reference, &ix);
    assert_eq!(e["digest"], ix.digest.as_str(), "the index verbatim: {e}");
    docker_item(&files, &reference, &ix, &AMD64);
    let oci = oci_images(&tar);
    for c in &ix.children {
        assert!(
            oci.iter().any(|o| o.manifest_digest == c.manifest_digest),
            "{:?} is not in the layout's index",
            c.platform
        );
    }
    let amd = ix.child(&AMD64);
    verify_everywhere(&tar, amd, std::slice::from_ref(&reference));
    // Written in place (no cache), the archive has the same bytes.
    let in_place = work.join("in-place.tar");
    let res = pulltar_in(
        work.path(),
        &[
            &reference,
            "--platform",
            "all",
            "--no-cache",
            "-o",
            in_place.to_str().unwrap(),
        ],
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(std::fs::read(&in_place).unwrap() == std::fs::read(&tar).unwrap());

    let dk = Dockerd::start();
    let info = dk.load_and_inspect(&tar, &reference);
    assert_eq!(info["Id"], amd.config_digest.as_str(), "docker loads amd64");

    let ctd = Containerd::start();
    let out = ctd.import(&tar);
    assert_eq!(out.code, 0, "ctr images import:\n{out}\n{}", ctd.log());
    assert_eq!(
        ctd.images(),
        [(reference.clone(), ix.digest.clone())],
        "containerd names the index"
    );
    ctd.check();
    for c in &ix.children {
        let config = ctd.content(&c.config_digest);
        assert_eq!(
            config.as_bytes(),
            c.config,
            "{:?} config in containerd",
            c.platform
        );
    }
}

#[test]
fn all_platforms_of_a_docker_list_keep_the_list_for_a_push() {
    let reg = Registry::start();
    let ix = push_index(&reg, "multi/list", "v1", Flavor::Docker);
    let reference = format!("{}/multi/list:v1", reg.host());
    let work = TempDir::new("alld");
    let tar = pull_ok(&work, &reference, &["--platform", "all"]);
    let files = read_tar(&tar);
    assert_all_upstream(&files, &ix);
    // Docker types: the layout's index and manifests are OCI ones written
    // over the same configs and layers; the list is kept beside them.
    let e = layout_entry(&files, &reference, &ix);
    assert_ne!(e["digest"], ix.digest.as_str());
    assert_eq!(e["annotations"]["pulltar.upstream.media-type"], DOCKER_LIST);
    docker_item(&files, &reference, &ix, &AMD64);
    let oci = oci_images(&tar);
    for p in [AMD64, ARM64, ARMV7] {
        let c = ix.child(&p);
        assert!(
            oci.iter().any(|o| o.config_digest == c.config_digest),
            "{p:?} is not in the layout's index: {oci:?}"
        );
    }
    let amd = ix.child(&AMD64);
    verify_everywhere(&tar, amd, std::slice::from_ref(&reference));
    let ctd = Containerd::start();
    let out = ctd.import(&tar);
    assert_eq!(out.code, 0, "ctr images import:\n{out}\n{}", ctd.log());
    ctd.check();
    for p in [AMD64, ARM64, ARMV7] {
        let c = ix.child(&p);
        assert_eq!(ctd.content(&c.config_digest).as_bytes(), c.config);
    }
}

#[test]
fn a_list_of_platforms_takes_those_and_docker_gets_the_first() {
    let reg = Registry::start();
    let ix = push_index(&reg, "multi/some", "v1", Flavor::Oci);
    let reference = format!("{}/multi/some:v1", reg.host());
    let work = TempDir::new("some");
    let tar = pull_ok(
        &work,
        &reference,
        &["--platform", "linux/arm64,linux/amd64"],
    );
    let files = read_tar(&tar);
    let e = layout_entry(&files, &reference, &ix);
    // Not every manifest of the index is here: a new index over the two.
    assert_ne!(e["digest"], ix.digest.as_str());
    docker_item(&files, &reference, &ix, &ARM64);
    assert!(files.get(&blob_path(&ix.digest)) == Some(&ix.bytes));
    let has = |d: &str| files.contains_key(&blob_path(d));
    for p in [AMD64, ARM64] {
        assert!(has(&ix.child(&p).manifest_digest), "{p:?}");
    }
    // The attestation of amd64 comes along; arm/v7 does not.
    assert!(has(&ix.child(&UNKNOWN).manifest_digest), "attestation kept");
    assert!(!has(&ix.child(&ARMV7).config_digest), "arm/v7 left out");
    let info = skopeo_inspect(&tar);
    assert_eq!(info["Architecture"], "arm64", "{info}");
    // A platform the index lacks is an error naming what there is.
    let res = pulltar_in(
        work.path(),
        &[
            &reference,
            "-o",
            "x.tar",
            "--platform",
            "linux/amd64,linux/s390x",
        ],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("s390x") && res.stderr.contains("linux/arm64"),
        "{res}"
    );
    // inspect shows one platform.
    let res = pulltar_in(work.path(), &["inspect", "--platform", "all", &reference]);
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains("--list-platforms"), "{res}");
    // `all` on a single-platform image is that image.
    let img = push_simple(&reg, "multi/one", "v1", Flavor::Docker);
    let one = format!("{}/multi/one:v1", reg.host());
    let work = TempDir::new("one");
    let tar = pull_ok(&work, &one, &["--platform", "all"]);
    verify_everywhere(&tar, &img, std::slice::from_ref(&one));
}
