//! Successful pulls: a 3-layer Docker schema2 image, an OCI image, each
//! platform of a Docker manifest list and of an OCI index, a digest
//! reference and a tag+digest reference. Each archive is checked byte for
//! byte and loaded by skopeo (inspect + copy to oci:) and podman.

use crate::support::images::{
    build_image, push_image, push_index, push_simple, Flavor, Image, Platform, AMD64, ARM64, ARMV7,
};
use crate::support::loaders::verify_everywhere;
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{hex_of, pulltar_in, Rng, TempDir};

#[test]
fn pulls_three_layer_docker_v2_image() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("v2");
    let tar = pull_ok(&work, &format!("{}/team/app:v2", reg.host()), &["-t", "3"]);
    verify_everywhere(&tar, &img, &[format!("{}/team/app:v2", reg.host())]);
    // The cache is content-addressed: blobs/sha256/<hex>, verified bytes.
    for l in &img.layers {
        let cached = work
            .join("cache")
            .join("blobs/sha256")
            .join(hex_of(&l.digest));
        let data = std::fs::read(&cached)
            .unwrap_or_else(|e| panic!("cache lacks {}: {e}", cached.display()));
        assert!(
            data == l.blob,
            "cached {} differs from the pushed blob",
            l.digest
        );
    }
}

#[test]
fn pulls_oci_typed_image() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/oci-app", "1.0", Flavor::Oci);
    let work = TempDir::new("oci");
    let out = work.join("out.tar");
    let reference = format!("{}/team/oci-app:1.0", reg.host());
    let res = pulltar_in(
        work.path(),
        &[&reference, "-o", out.to_str().unwrap(), "--no-cache", "-q"],
    );
    assert_eq!(res.code, 0, "pull failed:\n{res}");
    verify_everywhere(&out, &img, &[format!("{}/team/oci-app:1.0", reg.host())]);
}

/// Pushes a `flavor` index as team/multi:v1, pulls it with `args`, and
/// checks the archive is exactly the `want` child.
fn pull_platform(flavor: Flavor, args: &[&str], want: Platform) {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", flavor);
    let child: &Image = index.child(&want);
    let work = TempDir::new("plat");
    let tar = pull_ok(&work, &format!("{}/team/multi:v1", reg.host()), args);
    verify_everywhere(&tar, child, &[format!("{}/team/multi:v1", reg.host())]);
}

#[test]
fn list_platform_linux_amd64() {
    pull_platform(Flavor::Docker, &["--platform", "linux/amd64"], AMD64);
}

#[test]
fn list_platform_linux_arm64_means_v8() {
    pull_platform(Flavor::Docker, &["--platform", "linux/arm64"], ARM64);
}

#[test]
fn list_platform_linux_arm_v7() {
    pull_platform(Flavor::Docker, &["--platform", "linux/arm/v7"], ARMV7);
}

#[test]
fn list_arch_flag_arm64() {
    pull_platform(Flavor::Docker, &["-a", "arm64"], ARM64);
}

#[test]
fn list_default_platform_is_host_amd64() {
    // The list is ordered arm/v7, arm64, amd64: "first entry" is wrong.
    pull_platform(Flavor::Docker, &[], AMD64);
}

#[test]
fn oci_index_platform_arm64_v8() {
    pull_platform(Flavor::Oci, &["--platform", "linux/arm64/v8"], ARM64);
}

#[test]
fn oci_index_platform_arm_v7() {
    pull_platform(Flavor::Oci, &["--platform=linux/arm/v7"], ARMV7);
}

#[test]
fn oci_index_default_platform_amd64() {
    pull_platform(Flavor::Oci, &[], AMD64);
}

#[test]
fn digest_reference_has_no_repo_tags() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("dig");
    let tar = pull_ok(
        &work,
        &format!("{}/team/app@{}", reg.host(), img.manifest_digest),
        &[],
    );
    verify_everywhere(&tar, &img, &[]);
}

#[test]
fn tag_plus_digest_pulls_the_digest_and_keeps_the_tag() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    // `v2` now points elsewhere; the digest must win, the tag is kept.
    let old = build_image(&mut rng, Flavor::Docker, AMD64, 3, 64 * 1024);
    push_image(&reg, "team/app", Some("old"), &old);
    let _moved = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("tagdig");
    let tar = pull_ok(
        &work,
        &format!("{}/team/app:v2@{}", reg.host(), old.manifest_digest),
        &[],
    );
    verify_everywhere(&tar, &old, &[format!("{}/team/app:v2", reg.host())]);
}

#[test]
fn index_child_by_digest_reference() {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let child = index.child(&ARMV7);
    let work = TempDir::new("childdig");
    // A digest naming a single-platform manifest needs no platform match.
    let tar = pull_ok(
        &work,
        &format!("{}/team/multi@{}", reg.host(), child.manifest_digest),
        &[],
    );
    verify_everywhere(&tar, child, &[]);
}

#[test]
fn index_by_digest_with_platform() {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", Flavor::Docker);
    let work = TempDir::new("idxdig");
    let reference = format!("{}/team/multi@{}", reg.host(), index.digest);
    let tar = pull_ok(&work, &reference, &["--platform", "linux/arm/v7"]);
    verify_everywhere(&tar, index.child(&ARMV7), &[]);
}

/// `-o -` streams the same archive to a pipe or file: byte for byte what
/// `-o FILE` writes, and loadable.
#[test]
fn stdout_archive_matches_the_file_and_loads() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let reference = format!("{}/team/app:v2", reg.host());
    let work = TempDir::new("stdout");
    let file = pull_ok(&work, &reference, &[]);
    let streamed = work.join("streamed.tar");
    let sink = std::fs::File::create(&streamed).unwrap();
    let status = std::process::Command::new(crate::support::util::PULLTAR)
        .args([reference.as_str(), "-o", "-", "--no-cache", "-q"])
        .current_dir(work.path())
        .stdin(std::process::Stdio::null())
        .stdout(sink)
        .status()
        .expect("run pulltar");
    assert!(status.success(), "pulltar -o - failed: {status}");
    assert!(
        std::fs::read(&streamed).unwrap() == std::fs::read(&file).unwrap(),
        "-o - wrote other bytes than -o FILE"
    );
    verify_everywhere(&streamed, &img, std::slice::from_ref(&reference));
    assert!(!work.join("-").exists(), "a file named '-' was written");
}
