//! Segmented parallel downloads through a slow link: the registry behind
//! nginx with a per-request `limit_rate` (see `support/nginx/`). What pulltar
//! did is read from nginx's access log (each request with its Range header,
//! start and duration), not from pulltar's own output.

use crate::support::images::one_big_layer;
use crate::support::images::{
    build_image, image_of_layers, push_image, random_layer, Flavor, AMD64, DOCKER_LAYER,
};
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::nginx::blob_gets;
use crate::support::nginx::{max_in_flight, ranges_cover, Access, Nginx};
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{Rng, TempDir};

#[test]
fn segments_use_all_threads() {
    const SIZE: usize = 48 << 20;
    let reg = Registry::start();
    let img = one_big_layer(SIZE);
    push_image(&reg, "team/big", Some("v1"), &img);
    // 4 MiB/s per connection: one connection would need 12 s, eight 1.5 s.
    let front = Nginx::throttle(&reg, Some("4m"));
    let work = TempDir::new("seg8");
    let reference = format!("{}/team/big:v1", front.host());
    let tar = pull_ok(&work, &reference, &["-t", "8"]);

    let big = &img.layers[0];
    let blob_size = big.blob.len() as u64;
    let log = front.settled_log("front", 9);
    let gets = blob_gets(&log, &big.digest);
    let ranged: Vec<&Access> = gets.iter().copied().filter(|a| a.range.is_some()).collect();
    let trace = front.describe("front");
    assert!(
        ranged.len() >= 8,
        "{} Range requests for the {blob_size}-byte blob with -t 8, wanted >= 8:\n{trace}",
        ranged.len()
    );
    assert_eq!(
        ranged.len(),
        gets.len(),
        "every GET of a segmented blob carries Range:\n{trace}"
    );
    for a in &ranged {
        assert_eq!(a.status, 206, "segment answered {}:\n{trace}", a.status);
        let (first, last) = a.range_bounds().unwrap();
        let last = last.unwrap_or_else(|| panic!("open-ended Range {:?}:\n{trace}", a.range));
        assert!(first <= last && last < blob_size, "Range {:?}", a.range);
    }
    assert!(
        ranges_cover(&ranged, blob_size),
        "the ranges requested leave a hole in [0, {blob_size}):\n{trace}"
    );
    let in_flight = max_in_flight(&ranged);
    assert!(
        in_flight >= 4,
        "at most {in_flight} segments were in flight at once, wanted >= 4:\n{trace}"
    );
    let sent: u64 = ranged.iter().map(|a| a.bytes_sent).sum();
    assert!(
        sent < 2 * blob_size,
        "nginx sent {sent} bytes for a {blob_size}-byte blob:\n{trace}"
    );
    verify_everywhere(&tar, &img, &[reference]);
}

#[test]
fn single_thread_makes_no_parallel_requests() {
    const SIZE: usize = 12 << 20;
    let reg = Registry::start();
    let img = one_big_layer(SIZE);
    push_image(&reg, "team/big", Some("v1"), &img);
    let front = Nginx::throttle(&reg, Some("4m"));
    let work = TempDir::new("seg1");
    let reference = format!("{}/team/big:v1", front.host());
    let tar = pull_ok(&work, &reference, &["-t", "1"]);

    let log = front.settled_log("front", 3);
    let trace = front.describe("front");
    let big = &img.layers[0];
    assert!(
        !blob_gets(&log, &big.digest).is_empty(),
        "the big blob never went through the front:\n{trace}"
    );
    let all: Vec<&Access> = log.iter().collect();
    assert_eq!(
        max_in_flight(&all),
        1,
        "-t 1 had requests in flight at the same time:\n{trace}"
    );
    check_archive(&tar, &img, &[reference]);
}

#[test]
fn small_blobs_one_connection_each() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    // All below 1 MiB (the default chunk size), so none is worth splitting;
    // slow enough (256 KiB/s) that idle threads would be tempted to.
    let layers = [64 << 10, 200 << 10, 400 << 10, 700 << 10, 960 << 10]
        .into_iter()
        .map(|size| random_layer(&mut rng, DOCKER_LAYER, size))
        .collect();
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&reg, "team/small", Some("v1"), &img);
    let front = Nginx::throttle(&reg, Some("256k"));
    let work = TempDir::new("small");
    let reference = format!("{}/team/small:v1", front.host());
    let tar = pull_ok(&work, &reference, &["-t", "8"]);

    let log = front.settled_log("front", 7);
    let trace = front.describe("front");
    let blobs = img
        .layers
        .iter()
        .map(|l| (&l.digest, l.blob.len()))
        .chain([(&img.config_digest, img.config.len())]);
    for (digest, size) in blobs {
        assert!(size < 1 << 20);
        let gets = blob_gets(&log, digest);
        assert_eq!(
            gets.len(),
            1,
            "blob {digest} ({size} bytes) took {} GETs, wanted exactly 1:\n{trace}",
            gets.len()
        );
        assert_eq!(
            gets[0].range, None,
            "a small blob fetched with Range:\n{trace}"
        );
        assert_eq!(gets[0].status, 200, "{trace}");
    }
    check_archive(&tar, &img, &[reference]);
}

#[test]
fn chunk_size_sets_the_segment_floor() {
    // 6 MiB with -t 8: at --chunk-size 2M only 3 segments fit (each at
    // least 2 MiB), however many threads; the default 1 MiB floor allows 6.
    let reg = Registry::start();
    let img = one_big_layer(6 << 20);
    push_image(&reg, "team/mid", Some("v1"), &img);
    let front = Nginx::throttle(&reg, Some("2m"));
    let work = TempDir::new("floor");
    let reference = format!("{}/team/mid:v1", front.host());
    let tar = pull_ok(&work, &reference, &["-t", "8", "--chunk-size", "2M"]);
    let big = &img.layers[0];
    let log = front.settled_log("front", 3);
    let trace = front.describe("front");
    let ranged: Vec<&Access> = blob_gets(&log, &big.digest)
        .into_iter()
        .filter(|a| a.range.is_some())
        .collect();
    assert!(
        ranged.len() >= 2,
        "a 6 MiB blob at --chunk-size 2M was not segmented:\n{trace}"
    );
    for a in &ranged {
        let (first, last) = a.range_bounds().unwrap();
        let last = last.expect("closed Range");
        // The last segment of a blob may be shorter; no other may.
        if last + 1 < big.blob.len() as u64 {
            assert!(
                last + 1 - first >= 2 << 20,
                "segment {:?} is below the 2 MiB floor:\n{trace}",
                a.range
            );
        }
    }
    check_archive(&tar, &img, &[reference]);
}

/// Guard for the test images themselves: a 3-layer gzip image built the
/// usual way still round-trips through the throttle front unchanged.
#[test]
fn throttle_front_serves_gzip_images_to_pulltar() {
    let reg = Registry::start();
    let img = build_image(&mut Rng::new(), Flavor::Docker, AMD64, 3, 96 * 1024);
    push_image(&reg, "team/app", Some("v1"), &img);
    let front = Nginx::throttle(&reg, None);
    let work = TempDir::new("thrgz");
    let reference = format!("{}/team/app:v1", front.host());
    let tar = pull_ok(&work, &reference, &[]);
    check_archive(&tar, &img, &[reference]);
    assert!(
        front.access_log("front").iter().any(|a| a.status == 200),
        "nothing went through the front:\n{}",
        front.describe("front")
    );
}
