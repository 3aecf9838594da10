//! `pulltar push` into the real registry: what is pulled from one
//! registry and pushed into another keeps every digest (`skopeo inspect
//! --raw` of the pushed tag hashes to the upstream digest) for a Docker
//! schema 2 image, an OCI image, a Docker manifest list and an OCI index
//! with an attestation; what skopeo copies back out of it loads; a second
//! push uploads no blob (the registry's log has no upload); names map
//! under `DEST`'s prefix, or to a full `DEST`.

use crate::support::images::{push_index, push_simple, Flavor, Image, AMD64};
use crate::support::loaders::{podman_load, read_tar};
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{digest_of, hex_of, pulltar_in, require_tool, run, Output, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `pulltar push ARGS` in `work`, which must exit 0.
pub fn push_ok(work: &TempDir, args: &[&str]) -> Output {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    let res = pulltar_in(work.path(), &all);
    assert_eq!(res.code, 0, "pulltar {all:?}:\n{res}");
    res
}

/// `skopeo inspect --raw docker://REF` (plain http, or TLS with `cert_dir`
/// trusted): the manifest bytes as the registry serves them.
pub fn skopeo_raw(reference: &str, extra: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new(require_tool("skopeo", "skopeo"));
    cmd.args(["inspect", "--raw"]).args(extra);
    if !extra.iter().any(|a| a.starts_with("--cert-dir")) {
        cmd.arg("--tls-verify=false");
    }
    cmd.arg(format!("docker://{reference}"));
    let out = run(&mut cmd, Duration::from_secs(120)).ok("skopeo inspect --raw");
    out.stdout.into_bytes()
}

/// How many blob uploads the registry's log shows (POSTs that open one).
pub fn uploads_in_log(reg: &Registry) -> usize {
    reg.log()
        .lines()
        .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads/"))
        .count()
}

/// `skopeo copy docker://REF docker-archive:T:REF` then `podman load`: the
/// image comes back whole; its ID is the config digest.
fn copy_back_and_load(reference: &str, img: &Image, work: &TempDir) {
    let name = crate::support::util::sha256_hex(reference.as_bytes());
    let tar = work.join(&format!("copied-{}.tar", &name[..12]));
    let mut cmd = Command::new(require_tool("skopeo", "skopeo"));
    cmd.args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("docker-archive:{}:copied/app:v1", tar.display()));
    run(&mut cmd, Duration::from_secs(120)).ok("skopeo copy docker:// docker-archive:");
    let (id, _) = podman_load(&tar);
    assert_eq!(
        id,
        hex_of(&img.config_digest),
        "podman loads what was pushed"
    );
}

pub fn pull_from(reg: &Registry, repo_tag: &str, extra: &[&str]) -> (TempDir, std::path::PathBuf) {
    let work = TempDir::new("pushsrc");
    let tar = pull_ok(&work, &format!("{}/{repo_tag}", reg.host()), extra);
    (work, tar)
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn images_and_indexes_keep_their_digests() {
    let src = Registry::start();
    let docker = push_simple(&src, "team/docker", "v1", Flavor::Docker);
    let oci = push_simple(&src, "team/oci", "v1", Flavor::Oci);
    let list = push_index(&src, "team/list", "v1", Flavor::Docker);
    let index = push_index(&src, "team/index", "v1", Flavor::Oci);
    let work = TempDir::new("pushall");
    let tar = work.join("all.tar");
    let refs: Vec<String> = ["team/docker", "team/oci", "team/list", "team/index"]
        .iter()
        .map(|r| format!("{}/{r}:v1", src.host()))
        .collect();
    let mut args: Vec<&str> = refs.iter().map(String::as_str).collect();
    args.extend(["-o", path(&tar), "--platform", "all", "--cache-dir"]);
    let cache = work.join("cache");
    args.push(path(&cache));
    let res = pulltar_in(work.path(), &args);
    assert_eq!(res.code, 0, "{res}");

    let dst = Registry::start();
    let res = push_ok(&work, &[path(&tar), &format!("{}/mirror", dst.host())]);
    for (repo, digest) in [
        ("team/docker", &docker.manifest_digest),
        ("team/oci", &oci.manifest_digest),
        ("team/list", &list.digest),
        ("team/index", &index.digest),
    ] {
        let pushed = format!("{}/mirror/{repo}:v1", dst.host());
        assert_eq!(
            &digest_of(&skopeo_raw(&pushed, &[])),
            digest,
            "{pushed} resolves to the upstream digest:\n{res}"
        );
        assert!(
            res.stdout.contains(&format!("{pushed}@{digest}")),
            "stdout names {pushed}@{digest}:\n{res}"
        );
    }
    // Every manifest of the index came along, the attestation too.
    for c in &index.children {
        let by_digest = format!("{}/mirror/team/index@{}", dst.host(), c.manifest_digest);
        assert_eq!(skopeo_raw(&by_digest, &[]), c.manifest);
    }
    copy_back_and_load(
        &format!("{}/mirror/team/docker:v1", dst.host()),
        &docker,
        &work,
    );
    copy_back_and_load(
        &format!("{}/mirror/team/index:v1", dst.host()),
        index.child(&AMD64),
        &work,
    );

    // A second push sends no blob.
    let before = uploads_in_log(&dst);
    assert!(
        before > 0,
        "the first push uploaded nothing?\n{}",
        dst.log()
    );
    let again = push_ok(&work, &[path(&tar), &format!("{}/mirror", dst.host())]);
    assert_eq!(
        uploads_in_log(&dst),
        before,
        "a second push opened uploads:\n{again}"
    );
    assert!(again.stderr.contains("0 uploaded"), "{again}");
}

#[test]
fn one_image_to_a_full_name_and_a_single_platform_of_an_index() {
    let src = Registry::start();
    let ix = push_index(&src, "team/multi", "v1", Flavor::Oci);
    let (work, tar) = pull_from(&src, "team/multi:v1", &[]);
    let files = read_tar(&tar);
    assert!(files.contains_key(&format!("blobs/sha256/{}", hex_of(&ix.digest))));
    let dst = Registry::start();
    let full = format!("{}/other/name:v9", dst.host());
    let res = push_ok(&work, &[path(&tar), &full]);
    let amd = ix.child(&AMD64);
    assert_eq!(
        digest_of(&skopeo_raw(&full, &[])),
        amd.manifest_digest,
        "{res}"
    );
    assert!(res.stderr.contains("one platform of the index"), "{res}");

    // --format docker has no index.json: manifest.json holds the record.
    let (work, tar) = pull_from(&src, "team/multi:v1", &["--format", "docker"]);
    assert!(!read_tar(&tar).contains_key("index.json"));
    let res = push_ok(&work, &[path(&tar), &format!("{}/docker", dst.host())]);
    let pushed = format!("{}/docker/team/multi:v1", dst.host());
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[])),
        amd.manifest_digest,
        "{res}"
    );
}

/// The config digest of the manifest `reference` serves.
fn config_of(reference: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&skopeo_raw(reference, &[])).unwrap();
    m["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string()
}

#[test]
fn other_tools_archives_push_with_their_config_digest() {
    let src = Registry::start();
    let docker = push_simple(&src, "team/app", "v1", Flavor::Docker);
    let oci = push_simple(&src, "team/oci", "v1", Flavor::Oci);
    let work = TempDir::new("foreign");
    let skopeo = |from: &str, to: String| {
        let mut cmd = Command::new(require_tool("skopeo", "skopeo"));
        cmd.args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{from}", src.host()))
            .arg(&to);
        run(&mut cmd, Duration::from_secs(120)).ok(&format!("skopeo copy {from} {to}"));
    };
    let darch = work.join("skopeo-docker.tar");
    skopeo(
        "team/app:v1",
        format!("docker-archive:{}:team/app:v1", darch.display()),
    );
    let oarch = work.join("skopeo-oci.tar");
    skopeo("team/oci:v1", format!("oci-archive:{}:v1", oarch.display()));
    let dst = Registry::start();

    // skopeo's docker-archive holds no manifest: one is written.
    let res = push_ok(&work, &[path(&darch), &format!("{}/sk", dst.host())]);
    let pushed = format!("{}/sk/team/app:v1", dst.host());
    assert_eq!(config_of(&pushed), docker.config_digest, "{res}");
    assert!(
        res.stderr.contains("new: the archive holds no manifest"),
        "{res}"
    );
    copy_back_and_load(&pushed, &docker, &work);

    // skopeo's oci-archive names the image only by a tag: a full DEST.
    let res = pulltar_in(work.path(), &["push", path(&oarch), &dst.host()]);
    assert_eq!(res.code, 2, "{res}");
    assert!(
        res.stderr.contains("no name") && res.stderr.contains("REPO:TAG"),
        "{res}"
    );
    let named = format!("{}/oci/named:v2", dst.host());
    let res = push_ok(&work, &[path(&oarch), &named]);
    assert_eq!(config_of(&named), oci.config_digest, "{res}");
    assert_eq!(
        digest_of(&skopeo_raw(&named, &[])),
        oci.manifest_digest,
        "as it is"
    );

    // docker save (20.10's classic layout) of an image it loaded.
    let reference = format!("{}/team/app:v1", src.host());
    let tar = pull_ok(&work, &reference, &[]);
    let dk = crate::support::dockerd::Dockerd::start();
    dk.load_and_inspect(&tar, &reference);
    let saved = work.join("docker-save.tar");
    dk.docker(&["save", "-o", path(&saved), &reference])
        .ok("docker save");
    let res = push_ok(&work, &[path(&saved), &format!("{}/ds", dst.host())]);
    let pushed = format!("{}/ds/team/app:v1", dst.host());
    assert_eq!(config_of(&pushed), docker.config_digest, "{res}");
    copy_back_and_load(&pushed, &docker, &work);
}

#[test]
fn digests_that_cannot_stay_are_said_to_be_new() {
    let src = Registry::start();
    let ix = push_index(&src, "team/some", "v1", Flavor::Oci);
    let (work, tar) = pull_from(
        &src,
        "team/some:v1",
        &["--platform", "linux/amd64,linux/arm64"],
    );
    let dst = Registry::start();
    let res = push_ok(&work, &[path(&tar), &dst.host()]);
    let pushed = format!("{}/team/some:v1", dst.host());
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(&pushed, &[])).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    // amd64, arm64 and the attestation of amd64: theirs as pulled.
    let want: Vec<&str> = ix
        .children
        .iter()
        .filter(|c| c.platform != crate::support::images::ARMV7)
        .map(|c| c.manifest_digest.as_str())
        .collect();
    assert_eq!(listed, want, "{res}");
    assert!(
        res.stderr.contains("a new index over the 3 manifests"),
        "{res}"
    );

    // zstd layers made plain tar when pulled: the layout's manifest goes,
    // over the same config.
    let z = crate::support::images_more::push_zstd_image(&src, "team/z", "v1");
    let (work, tar) = pull_from(&src, "team/z:v1", &[]);
    let res = push_ok(&work, &[path(&tar), &dst.host()]);
    let pushed = format!("{}/team/z:v1", dst.host());
    assert_eq!(config_of(&pushed), z.config_digest, "{res}");
    assert_ne!(digest_of(&skopeo_raw(&pushed, &[])), z.manifest_digest);
    assert!(
        res.stderr.contains("new: its layers were decompressed"),
        "{res}"
    );
}
