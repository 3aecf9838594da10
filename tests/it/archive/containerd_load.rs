//! `ctr images import` through a test-started containerd 1.6: the image
//! is named after the normalised RepoTag, `images check` calls it
//! complete, and its config digest is the pushed one, for a Docker schema2
//! image, an OCI image and the arm64 child of an OCI index.

use crate::support::containerd::Containerd;
use crate::support::images::{push_index, push_simple, Flavor, ARM64};
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::TempDir;

/// Pulls `reference` with `extra` args and imports the archive into a
/// fresh containerd, expecting one image named `reference` with `config`.
fn pull_and_import(reference: &str, extra: &[&str], config: &str) {
    let work = TempDir::new("ctdload");
    let tar = pull_ok(&work, reference, extra);
    let daemon = Containerd::start();
    daemon.import_and_check(&tar, &[reference.to_string()], config);
}

#[test]
fn containerd_imports_docker_v2_image() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let reference = format!("{}/team/app:v2", reg.host());
    pull_and_import(&reference, &[], &img.config_digest);
}

#[test]
fn containerd_imports_oci_image() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/oci-app", "1.0", Flavor::Oci);
    let reference = format!("{}/team/oci-app:1.0", reg.host());
    pull_and_import(&reference, &[], &img.config_digest);
}

#[test]
fn containerd_imports_arm64_child_of_an_index() {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let child = index.child(&ARM64);
    let reference = format!("{}/team/multi:v1", reg.host());
    pull_and_import(
        &reference,
        &["--platform", "linux/arm64"],
        &child.config_digest,
    );
}
