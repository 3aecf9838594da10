//! A pull into a file writes the archive in place: each layer is
//! downloaded straight into its region of the archive (and, with a cache,
//! into the cache from the same bytes). The result must be byte for byte
//! what the streaming writer makes (a pull to standard output, say), load
//! everywhere, leave the cache holding every blob verified, and a bad or
//! missing blob must leave nothing behind.

use crate::support::images::{
    image_of_layers, push_image, random_layer, raw_layer, Flavor, AMD64, DOCKER_LAYER,
};
use crate::support::loaders::verify_everywhere;
use crate::support::nginx::blob_file;
use crate::support::registry::Registry;
use crate::support::util::{
    hex_of, list_dir, pulltar_in, sha256_hex, Output, Rng, TempDir, PULLTAR,
};
use std::path::Path;
use std::process::Command;

const MIB: usize = 1 << 20;

/// `pulltar NAME -o OUT ARGS` on six connections of 256 KiB segments
/// with --debug, which must succeed by the in-place path.
fn pull_in_place(work: &TempDir, name: &str, out: &Path, args: &[&str]) -> Output {
    let mut all = vec![name, "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-t", "6", "--chunk-size", "256K", "--debug"]);
    let placed = pulltar_in(work.path(), &all);
    assert_eq!(placed.code, 0, "{placed}");
    assert!(
        placed.stderr.contains("writing the archive in place"),
        "the in-place path was taken:\n{placed}"
    );
    placed
}

#[test]
fn no_cache_pull_is_written_in_place_with_the_same_bytes() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let layers = vec![
        random_layer(&mut rng, DOCKER_LAYER, 64 * 1024),
        raw_layer(
            &mut rng,
            "application/vnd.docker.image.rootfs.diff.tar",
            6 * MIB,
        ),
        raw_layer(
            &mut rng,
            "application/vnd.docker.image.rootfs.diff.tar",
            3 * MIB + 77,
        ),
    ];
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&reg, "team/big", Some("v1"), &img);
    let name = format!("{}/team/big:v1", reg.host());
    let work = TempDir::new("inplace");
    let cache = work.join("cache");
    let cached = pulltar_in(
        work.path(),
        &[
            &name,
            "-o",
            "cached.tar",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(cached.code, 0, "{cached}");
    let out_dir = TempDir::new("inplace-out");
    let placed_path = out_dir.join("placed.tar");
    pull_in_place(&work, &name, &placed_path, &["--no-cache"]);
    assert_eq!(
        std::fs::read(work.join("cached.tar")).unwrap(),
        std::fs::read(&placed_path).unwrap(),
        "the same bytes as a cached pull"
    );
    assert_eq!(list_dir(out_dir.path()), vec!["placed.tar".to_string()]);
    verify_everywhere(&placed_path, &img, &[name]);
}

#[test]
fn default_pull_is_written_in_place_and_fills_the_cache() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let layers = vec![
        random_layer(&mut rng, DOCKER_LAYER, 64 * 1024),
        raw_layer(
            &mut rng,
            "application/vnd.docker.image.rootfs.diff.tar",
            5 * MIB + 13,
        ),
    ];
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&reg, "team/big", Some("v1"), &img);
    let name = format!("{}/team/big:v1", reg.host());
    let work = TempDir::new("inplace-cache");
    let cache = work.join("cache");
    let cache_arg = cache.to_str().unwrap();
    // The streaming writer's bytes (to standard output), for the same image.
    let streamed_path = work.join("streamed.tar");
    let status = Command::new(PULLTAR)
        .args([name.as_str(), "-o", "-", "--no-cache", "-q"])
        .current_dir(work.path())
        .stdout(std::fs::File::create(&streamed_path).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "pulltar -o - failed: {status}");
    let out_dir = TempDir::new("inplace-cache-out");
    let placed_path = out_dir.join("placed.tar");
    let placed = pull_in_place(&work, &name, &placed_path, &["--cache-dir", cache_arg]);
    assert!(
        placed.stderr.contains("after the last byte arrived"),
        "--debug says when the archive was in place:\n{placed}"
    );
    assert_eq!(
        std::fs::read(&streamed_path).unwrap(),
        std::fs::read(&placed_path).unwrap(),
        "the same bytes as the streaming writer"
    );
    assert_eq!(list_dir(out_dir.path()), vec!["placed.tar".to_string()]);
    // Every blob is in the cache, verified, and nothing unfinished is left.
    let blobs = cache.join("blobs/sha256");
    for d in std::iter::once(&img.config_digest).chain(img.layers.iter().map(|l| &l.digest)) {
        let held = std::fs::read(blobs.join(hex_of(d)))
            .unwrap_or_else(|e| panic!("{d} not in the cache: {e}"));
        assert_eq!(sha256_hex(&held), hex_of(d), "{d} in the cache");
    }
    assert!(
        list_dir(&cache.join("tmp")).is_empty(),
        "{:?}",
        list_dir(&cache.join("tmp"))
    );
    // A second pull from the cache alone writes the same bytes again.
    let again = out_dir.join("again.tar");
    let warm = pulltar_in(
        work.path(),
        &[
            &name,
            "-o",
            again.to_str().unwrap(),
            "--cache-dir",
            cache_arg,
        ],
    );
    assert_eq!(warm.code, 0, "{warm}");
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&placed_path).unwrap()
    );
    verify_everywhere(&placed_path, &img, &[name]);
}

#[test]
fn a_bad_or_missing_blob_leaves_nothing_in_place() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let layers = vec![
        raw_layer(
            &mut rng,
            "application/vnd.docker.image.rootfs.diff.tar",
            2 * MIB,
        ),
        raw_layer(
            &mut rng,
            "application/vnd.docker.image.rootfs.diff.tar",
            MIB,
        ),
    ];
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&reg, "team/bad", Some("v1"), &img);
    let name = format!("{}/team/bad:v1", reg.host());
    // The registry serves bytes that do not match the digest.
    let data = blob_file(&reg, &img.layers[0].digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[MIB] ^= 0x55;
    std::fs::write(&data, &bytes).unwrap();
    let out_dir = TempDir::new("inplace-bad");
    let out = out_dir.join("x.tar");
    let res = pulltar_in(
        out_dir.path(),
        &[
            &name,
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
            "--chunk-size",
            "256K",
        ],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains(&img.layers[0].digest), "{res}");
    assert!(
        list_dir(out_dir.path()).is_empty(),
        "{:?}",
        list_dir(out_dir.path())
    );
    // A blob the registry lost.
    reg.delete_blob("team/bad", &img.layers[1].digest);
    let res = pulltar_in(
        out_dir.path(),
        &[&name, "-o", out.to_str().unwrap(), "--no-cache"],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(
        list_dir(out_dir.path()).is_empty(),
        "{:?}",
        list_dir(out_dir.path())
    );
}
