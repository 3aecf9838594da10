//! Pulls that must fail cleanly: exit 1, a message that names what was
//! missing, and no file (not even a temp file) left where the output would
//! have gone.

use crate::support::images::{push_index, push_simple, Flavor};
use crate::support::registry::Registry;
use crate::support::util::{pulltar_in, Output, TempDir};

/// Runs a pull into a fresh, empty output dir and checks exit code 1 and
/// that the output dir is still empty.
fn pull_fails(reference: &str, extra: &[&str]) -> Output {
    let out_dir = TempDir::new("fail-out");
    let cache = TempDir::new("fail-cache");
    let out = out_dir.join("image.tar");
    let mut args = vec![
        reference,
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let res = pulltar_in(out_dir.path(), &args);
    assert_eq!(
        res.code, 1,
        "pulltar {args:?} should fail with exit 1:\n{res}"
    );
    assert!(!out.exists(), "a failed pull left {}", out.display());
    assert_eq!(
        out_dir.list(),
        Vec::<String>::new(),
        "stray files next to the output:\n{res}"
    );
    res
}

#[test]
fn platform_not_in_index_lists_available_platforms() {
    let reg = Registry::start();
    push_index(&reg, "team/multi", "v1", Flavor::Docker);
    let res = pull_fails(
        &format!("{}/team/multi:v1", reg.host()),
        &["--platform", "linux/s390x"],
    );
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert!(res.stderr.contains(p), "stderr should list {p}:\n{res}");
    }
    assert!(
        res.stderr.contains("s390x"),
        "stderr should name the requested platform:\n{res}"
    );
}

#[test]
fn platform_not_in_oci_index_fails_too() {
    let reg = Registry::start();
    push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let res = pull_fails(&format!("{}/team/multi:v1", reg.host()), &["-a", "riscv64"]);
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert!(res.stderr.contains(p), "stderr should list {p}:\n{res}");
    }
}

#[test]
fn deleted_blob_fails_and_names_the_digest() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let victim = &img.layers[1].digest;
    reg.delete_blob("team/app", victim);
    // Guard against a blob-descriptor cache that still serves it.
    assert_eq!(
        reg.blob_status("team/app", victim),
        404,
        "registry still serves the deleted blob"
    );
    assert_eq!(reg.blob_status("team/app", &img.layers[0].digest), 200);
    let res = pull_fails(&format!("{}/team/app:v2", reg.host()), &[]);
    let hex = crate::support::util::hex_of(victim);
    assert!(
        res.stderr.contains(hex),
        "stderr should name {victim}:\n{res}"
    );
}

#[test]
fn unknown_tag_fails() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let res = pull_fails(&format!("{}/team/app:nope", reg.host()), &[]);
    assert!(
        res.stderr.contains("nope"),
        "stderr should name the reference:\n{res}"
    );
}

#[test]
fn unreachable_registry_fails() {
    // A port that was free a moment ago; nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pull_fails(&format!("127.0.0.1:{port}/team/app:v2"), &[]);
}

#[test]
fn failed_pull_keeps_an_existing_output_file() {
    // Atomic output: a failed pull must not clobber or truncate an old file.
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    reg.delete_blob("team/app", &img.layers[2].digest);
    let dir = TempDir::new("keep");
    let cache = TempDir::new("keep-cache");
    let out = dir.join("image.tar");
    std::fs::write(&out, b"previous contents").unwrap();
    let reference = format!("{}/team/app:v2", reg.host());
    let args = [
        &reference,
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ];
    let res = pulltar_in(dir.path(), &args);
    assert_eq!(res.code, 1, "{res}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous contents");
    assert_eq!(
        dir.list(),
        vec!["image.tar".to_string()],
        "stray files:\n{res}"
    );
}
