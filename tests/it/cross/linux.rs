//! The Linux release binaries, run as a user would: the static x86_64 one
//! alone in an empty root directory (no `/etc`, no libraries, no
//! certificates, no environment), and the aarch64 one under qemu-user,
//! where it must pick `linux/arm64/v8` from a multi-platform image by
//! itself. Every archive is loaded by skopeo, podman, dockerd and
//! containerd.

use crate::support::images::{push_index, push_simple, Flavor, ARM64};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::targets::{loads_everywhere, qemu, EmptyRoot};
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::util::{list_dir, run, TempDir};
use std::time::Duration;

#[test]
fn static_binary_pulls_in_an_empty_root() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let root = EmptyRoot::new();
    let reference = format!("{}/team/app:v1", reg.host());
    let res = root.pulltar(&[&reference, "-o", "/app.tar", "--cache-dir", "/cache"]);
    assert_eq!(res.code, 0, "the static binary in an empty root:\n{res}");
    loads_everywhere(&root.host_path("/app.tar"), &img, &reference);
    assert_eq!(root.list(), ["app.tar", "cache", "pulltar"]);
}

/// TLS with nothing on the host but the binary and the registry's CA:
/// no `/etc/ssl`, no `/tmp`, no cache (`--no-cache`).
#[test]
fn static_binary_pulls_over_tls_in_an_empty_root() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let root = EmptyRoot::new();
    root.put(&t.pki.ca(), "/ca.pem");
    let reference = t.reference();
    let args = [
        &reference,
        "--ca-cert",
        "/ca.pem",
        "--no-cache",
        "-o",
        "/tls.tar",
    ];
    let res = root.pulltar(&args);
    assert_eq!(res.code, 0, "a TLS pull in an empty root:\n{res}");
    check_archive(&root.host_path("/tls.tar"), &t.img, &[reference]);
    // The temporary store went under the temp dir (/tmp, made for it
    // when missing) and is gone.
    let mut left = root.list();
    if left.iter().any(|n| n == "tmp") {
        assert!(list_dir(&root.host_path("/tmp")).is_empty(), "left in /tmp");
        left.retain(|n| n != "tmp");
    }
    assert_eq!(left, ["ca.pem", "pulltar", "tls.tar"]);
}

/// The Docker list is ordered arm/v7, arm64, amd64 and the OCI index
/// amd64, arm64, arm/v7: neither first entry is the right one.
#[test]
fn aarch64_binary_under_qemu_picks_arm64_v8_by_default() {
    let reg = Registry::start();
    for (flavor, repo) in [(Flavor::Oci, "team/multi"), (Flavor::Docker, "team/list")] {
        let index = push_index(&reg, repo, "v1", flavor);
        let child = index.child(&ARM64);
        let work = TempDir::new("qemu");
        let out = work.join("out.tar");
        let cache = work.join("cache");
        let reference = format!("{}/{repo}:v1", reg.host());
        let mut cmd = qemu();
        cmd.arg(&reference)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .current_dir(work.path());
        let res = run(&mut cmd, Duration::from_secs(180));
        assert_eq!(res.code, 0, "the aarch64 binary under qemu:\n{res}");
        loads_everywhere(&out, child, &reference);
    }
}
