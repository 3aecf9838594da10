//! Docker schema 1 images, pushed for real: skopeo converts a schema 2
//! image to a signed schema 1 manifest (`--format v2s1`) and pushes it to a
//! registry that accepts them. pulltar must turn it into an image that
//! loads, with diff_ids it computed itself from the layers.

use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::{podman_load, read_tar, skopeo_inspect};
use crate::support::oci_check::oci_images;
use crate::support::registry::{agent, Registry};
use crate::support::util::pull_ok;
use crate::support::util::{pulltar_in, require_tool, run, TempDir};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

#[test]
fn schema1_image_is_converted_and_loads() {
    let reg = Registry::start_schema1();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let skopeo = require_tool("skopeo", "skopeo");
    run(
        Command::new(skopeo)
            .args(["copy", "--quiet", "--format", "v2s1"])
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("docker://{}/team/app:v2", reg.host()))
            .arg(format!("docker://{}/team/old:s1", reg.host())),
        Duration::from_secs(120),
    )
    .ok("skopeo copy --format v2s1");
    // The registry serves it as schema 1 even to a client that accepts
    // every current type.
    let resp = agent()
        .get(&reg.url("/v2/team/old/manifests/s1"))
        .header("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(ct, SCHEMA1, "the registry serves schema 1");
    let s1_digest = resp
        .headers()
        .get("docker-content-digest")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    let work = TempDir::new("s1");
    let name = format!("{}/team/old:s1", reg.host());
    let tar = pull_ok(&work, &name, &[]);
    let files = read_tar(&tar);
    let items: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config_path = items[0]["Config"].as_str().unwrap();
    let config: Value = serde_json::from_slice(&files[config_path]).unwrap();
    let diff_ids: Vec<String> =
        serde_json::from_value(config["rootfs"]["diff_ids"].clone()).unwrap();
    assert_eq!(
        diff_ids,
        img.diff_ids(),
        "diff_ids computed from the layers"
    );
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["history"].as_array().map(Vec::len),
        Some(img.layers.len()),
        "one history entry per v1 entry: {config}"
    );
    let layers: Vec<String> = serde_json::from_value(items[0]["Layers"].clone()).unwrap();
    let pushed: Vec<String> = img
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", crate::support::util::hex_of(&l.digest)))
        .collect();
    assert_eq!(layers, pushed, "layers as pulled, base first");
    assert_eq!(items[0]["RepoTags"][0], name.as_str());
    let info = skopeo_inspect(&tar);
    let seen: Vec<String> = serde_json::from_value(info["Layers"].clone()).unwrap();
    assert_eq!(seen, img.diff_ids(), "skopeo checks the diff_ids");
    let oci = oci_images(&tar);
    assert_eq!(oci.len(), 1);
    assert_eq!(oci[0].ref_name.as_deref(), Some("s1"));
    let config_digest = crate::support::util::digest_of(&files[config_path]);
    let (id, names) = podman_load(&tar);
    assert_eq!(id, crate::support::util::hex_of(&config_digest));
    assert!(names.contains(&name), "{names:?}");

    // By digest: a schema 1 digest covers only part of the document.
    let out = pulltar_in(
        work.path(),
        &[
            &format!("{}/team/old@{s1_digest}", reg.host()),
            "-o",
            "bydigest.tar",
            "--no-cache",
        ],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("schema 1"), "{out}");
    assert!(!work.join("bydigest.tar").exists());
}
