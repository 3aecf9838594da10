//! The cache is trusted by size, and hashed with `--verify-cache`: a
//! cached blob damaged in place (same size) is found, removed and fetched
//! again, and so is a damaged decompressed layer.

use crate::support::images::{push_simple, Flavor};
use crate::support::images_more::push_zstd_image;
use crate::support::loaders::{check_archive, read_tar};
use crate::support::registry::Registry;
use crate::support::util::{digest_of, hex_of, pulltar_in, TempDir};
use std::path::Path;

/// Flips one byte in the middle of `path`, keeping its size.
fn damage(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(path, data).unwrap();
}

/// How many times the registry served blob `digest` (its access log shows
/// `"GET /v2/REPO/blobs/DIGEST HTTP/1.1" 200`).
fn blob_gets(reg: &Registry, digest: &str) -> usize {
    reg.log()
        .lines()
        .filter(|l| l.contains(&format!("/blobs/{digest} HTTP")) && l.contains("\"GET "))
        .count()
}

fn pull(work: &TempDir, name: &str, out: &str, extra: &[&str]) -> crate::support::util::Output {
    let cache = work.join("cache");
    let mut args = vec![name, "-o", out, "--cache-dir", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    pulltar_in(work.path(), &args)
}

#[test]
fn verify_cache_refetches_a_damaged_blob() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let name = format!("{}/team/app:v1", reg.host());
    let work = TempDir::new("vc");
    let first = pull(&work, &name, "a.tar", &[]);
    assert_eq!(first.code, 0, "{first}");
    let victim = &img.layers[1];
    let cached = work
        .join("cache")
        .join("blobs/sha256")
        .join(hex_of(&victim.digest));
    damage(&cached);
    let before = blob_gets(&reg, &victim.digest);
    assert_eq!(before, 1, "fetched once by the first pull:\n{}", reg.log());
    let second = pull(&work, &name, "b.tar", &["--verify-cache"]);
    assert_eq!(second.code, 0, "{second}");
    assert!(second.stderr.contains("damaged"), "{second}");
    check_archive(&work.join("b.tar"), &img, std::slice::from_ref(&name));
    assert_eq!(blob_gets(&reg, &victim.digest), 2, "fetched again once");
    for other in [&img.layers[0], &img.layers[2]] {
        assert_eq!(blob_gets(&reg, &other.digest), 1, "not fetched again");
    }
}

#[test]
fn verify_cache_remakes_a_damaged_decompressed_layer() {
    let reg = Registry::start();
    let img = push_zstd_image(&reg, "team/z", "v1");
    let name = format!("{}/team/z:v1", reg.host());
    let work = TempDir::new("vcz");
    assert_eq!(pull(&work, &name, "a.tar", &[]).code, 0);
    let diff_id = &img.layers[1].diff_id;
    let plain = work
        .join("cache")
        .join("blobs/sha256")
        .join(hex_of(diff_id));
    assert!(plain.is_file(), "the plain tar is cached by its diff_id");
    // The compressed zstd blob is not needed for a re-pull: without it the
    // layer is still found, by its diff_id.
    let compressed = work
        .join("cache")
        .join("blobs/sha256")
        .join(hex_of(&img.layers[1].digest));
    std::fs::remove_file(&compressed).unwrap();
    let again = pull(&work, &name, "b.tar", &[]);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(
        blob_gets(&reg, &img.layers[1].digest),
        1,
        "not fetched again"
    );
    damage(&plain);
    let fixed = pull(&work, &name, "c.tar", &["--verify-cache"]);
    assert_eq!(fixed.code, 0, "{fixed}");
    let files = read_tar(&work.join("c.tar"));
    let layer = &files[&format!("blobs/sha256/{}", hex_of(diff_id))];
    assert_eq!(&digest_of(layer), diff_id, "the plain tar was made again");
    assert_eq!(
        blob_gets(&reg, &img.layers[1].digest),
        2,
        "the zstd blob was fetched again"
    );
}
