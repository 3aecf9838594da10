//! Issue 16, mirror lists: `-r A,B` fails over per request, spreads blobs
//! over every mirror, and keeps Docker Hub as the last resort
//! (`PULLTAR_DOCKER_HUB` points it at a loopback stand-in; `util` points
//! it at a closed port for every other run). Mirrors are real registries,
//! behind the fault proxy for faults (a corrupt or missing blob, a stalled
//! manifest) and behind nginx for rations; what pulltar did is read from
//! their logs.
//!
//! See: issue 16.

use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::one_big_layer;
use crate::support::images::{build_image, push_image, Flavor, Image, AMD64};
use crate::support::loaders::check_archive;
use crate::support::nginx::blob_gets;
use crate::support::nginx::conf::Rations;
use crate::support::nginx::{max_in_flight, Access, Nginx};
use crate::support::registry::Registry;
use crate::support::util::{pulltar_env, Output, Rng, TempDir};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// A small image (three layers of 96 KiB).
fn small() -> Image {
    build_image(&mut Rng::new(), Flavor::Docker, AMD64, 3, 96 * 1024)
}

/// A registry holding `img` as `library/app:v1`.
fn mirror_of(img: &Image) -> Registry {
    let reg = Registry::start();
    push_image(&reg, "library/app", Some("v1"), img);
    reg
}

/// A loopback port nothing listens on.
fn dead() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// `pulltar app:v1 -o OUT --no-cache ARGS` with `env`; backoff at 50 ms.
fn pull(work: &TempDir, args: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf) {
    let out = work.join("app.tar");
    let mut all = vec!["app:v1", "-o", out.to_str().unwrap(), "--no-cache"];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("PULLTAR_RETRY_DELAY_MS", "50"));
    (pulltar_env(work.path(), &all, &env), out)
}

fn ok(res: &Output, out: &Path, img: &Image, logs: &str) {
    assert_eq!(res.code, 0, "pull failed:\n{res}\n{logs}");
    check_archive(out, img, &["app:v1".to_string()]);
}

/// The blob GETs a registry answered 200 or 206, from its access log.
fn blobs_served(reg: &Registry) -> usize {
    let log = reg.log();
    let lines = log.lines().filter(|l| l.starts_with("127.0.0.1 - "));
    lines
        .filter(|l| l.contains("\"GET /v2/library/app/blobs/"))
        .filter(|l| l.contains("\" 200 ") || l.contains("\" 206 "))
        .count()
}

#[test]
fn r16_a_dead_first_mirror_is_left_out_once() {
    let img = small();
    let good = mirror_of(&img);
    let work = TempDir::new("r16dead");
    let dead = dead();
    let list = format!("{dead},{}", good.host());
    let (res, out) = pull(&work, &["-r", &list], &[]);
    ok(&res, &out, &img, &good.log());
    let said = res.stderr.matches(&format!("mirror {dead}")).count();
    assert_eq!(said, 1, "the dead mirror should be named once:\n{res}");
    assert!(blobs_served(&good) >= 4, "{}", good.log());
}

/// A mirror whose every blob response is corrupt (the fault proxy flips a
/// byte), or answers 404 for blobs, is passed over: the other serves.
fn bad_first_mirror(fault: Fault, what: &str) {
    let img = small();
    let (r1, good) = (mirror_of(&img), mirror_of(&img));
    let px = FaultProxy::start(r1.port);
    px.add(Rule::new("/blobs/", fault));
    let work = TempDir::new("r16bad");
    let list = format!("{},{}", px.host(), good.host());
    let (res, out) = pull(&work, &["-r", &list, "--mirrors-only"], &[]);
    ok(&res, &out, &img, &px.dump());
    let dropped = format!("mirror {} is dropped", px.host());
    assert_eq!(
        res.stderr.matches(&dropped).count(),
        1,
        "a mirror that {what} should be dropped, said once:\n{res}\n{}",
        px.dump()
    );
    assert!(blobs_served(&good) >= 4, "{}", good.log());
    // Dropped: after it, no blob is asked of it.
    let asked = px.requests_to("/blobs/").len();
    assert!(
        asked <= 6,
        "{asked} blob requests to a mirror that {what}:\n{}",
        px.dump()
    );
}

#[test]
fn r16_a_mirror_corrupting_every_blob_is_passed_over() {
    bad_first_mirror(Fault::FlipByte(100), "corrupts every blob");
}

#[test]
fn r16_a_mirror_answering_404_for_blobs_is_passed_over() {
    bad_first_mirror(Fault::Status(404, vec![]), "answers 404 for blobs");
}

#[test]
fn r16_a_stalled_manifest_is_left_within_the_read_timeout() {
    let img = small();
    let (r1, good) = (mirror_of(&img), mirror_of(&img));
    let px = FaultProxy::start(r1.port);
    px.add(Rule::new(
        "/manifests/",
        Fault::StallAfter(0, Duration::from_secs(60)),
    ));
    let work = TempDir::new("r16stall");
    let list = format!("{},{}", px.host(), good.host());
    let started = Instant::now();
    let (res, out) = pull(&work, &["-r", &list, "--read-timeout", "2"], &[]);
    let took = started.elapsed();
    ok(&res, &out, &img, &px.dump());
    assert!(
        !px.requests_to("/manifests/").is_empty(),
        "the stalling mirror was never asked:\n{}",
        px.dump()
    );
    // Well before the proxy gives up its 60 s stall.
    assert!(took < Duration::from_secs(30), "{took:?}:\n{res}");
    assert!(res.stderr.contains(&good.host()), "{res}");
}

#[test]
fn r16_every_mirror_dead_exits_1_naming_each() {
    let work = TempDir::new("r16all");
    let (a, b) = (dead(), dead());
    for extra in [&["--mirrors-only"][..], &[][..]] {
        let list = format!("{a},{b}");
        let mut args = vec!["-r", list.as_str()];
        args.extend_from_slice(extra);
        let (res, out) = pull(&work, &args, &[]);
        assert_eq!(res.code, 1, "{extra:?}:\n{res}");
        for m in [&a, &b] {
            assert!(res.stderr.contains(m.as_str()), "{m} not named:\n{res}");
        }
        assert!(!out.exists());
    }
}

/// A listener standing in for Docker Hub that counts the connections it
/// is offered and closes each at once; it stops when dropped.
struct Hub {
    addr: String,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Hub {
    fn start() -> Hub {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
        let (count, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, s) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && Instant::now() < until {
                match l.accept() {
                    Ok(_) => {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hub { addr, count, stop }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn r16_mirrors_only_never_contacts_docker_hub() {
    let img = small();
    let good = mirror_of(&img);
    let hub = Hub::start();
    let env = [("PULLTAR_DOCKER_HUB", hub.addr.as_str())];
    let work = TempDir::new("r16only");
    let (res, out) = pull(&work, &["-r", &good.host(), "--mirrors-only"], &env);
    ok(&res, &out, &img, &good.log());
    assert_eq!(hub.count.load(Ordering::Relaxed), 0, "{res}");
    // The same pull without --mirrors-only does try Docker Hub (which
    // fails here), so the count above means something.
    let (res, out) = pull(&work, &["-r", &good.host()], &env);
    ok(&res, &out, &img, &good.log());
    assert!(hub.count.load(Ordering::Relaxed) >= 1, "{res}");
}

/// A Docker Hub that does not answer is asked once a pull, not once an
/// image: blackholed, it would cost every image its connect timeout.
#[test]
fn r16_a_silent_docker_hub_is_asked_once_a_pull() {
    let (img, other) = (small(), small());
    let good = mirror_of(&img);
    push_image(&good, "library/other", Some("v1"), &other);
    let hub = Hub::start();
    let env = [("PULLTAR_DOCKER_HUB", hub.addr.as_str())];
    let work = TempDir::new("r16silent");
    let (res, out) = pull(&work, &["-r", &good.host()], &env);
    ok(&res, &out, &img, &good.log());
    let once = hub.count.swap(0, Ordering::Relaxed);
    assert!(once >= 1, "Docker Hub was not asked:\n{res}");
    let (res, _) = pull(&work, &["other:v1", "-r", &good.host()], &env);
    assert_eq!(res.code, 0, "{res}");
    let twice = hub.count.load(Ordering::Relaxed);
    assert_eq!(
        twice, once,
        "two images asked Docker Hub {twice} times, one {once}:\n{res}"
    );
}

#[test]
fn r16_docker_hub_resolves_the_tag_and_the_mirror_serves() {
    let img = small();
    let (origin, good) = (mirror_of(&img), mirror_of(&img));
    let work = TempDir::new("r16origin");
    let env = [("PULLTAR_DOCKER_HUB", origin.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (res, out) = pull(&work, &["-r", &good.host()], &env);
    ok(&res, &out, &img, &origin.log());
    let said = format!("Docker Hub resolves the tag to {}", img.manifest_digest);
    assert!(res.stderr.contains(&said), "{res}");
    let log = origin.log();
    assert!(
        log.contains("\"HEAD /v2/library/app/manifests/v1 "),
        "no HEAD at Docker Hub:\n{log}"
    );
    assert_eq!(blobs_served(&origin), 0, "Docker Hub served blobs:\n{log}");
    assert!(blobs_served(&good) >= 4, "{}", good.log());
}

#[test]
fn r16_two_mirrors_disagreeing_on_a_tag_are_named_with_their_digests() {
    let (a, b) = (small(), small());
    let (ra, rb) = (mirror_of(&a), mirror_of(&b));
    let work = TempDir::new("r16tag");
    let list = format!("{},{}", ra.host(), rb.host());
    let (res, out) = pull(&work, &["-r", &list, "--mirrors-only"], &[]);
    ok(&res, &out, &a, &ra.log());
    let warning = res
        .stderr
        .lines()
        .find(|l| l.contains("disagree"))
        .unwrap_or_else(|| panic!("no warning:\n{res}"));
    for s in [
        &ra.host(),
        &rb.host(),
        &a.manifest_digest,
        &b.manifest_digest,
    ] {
        assert!(warning.contains(s.as_str()), "{s} missing from {warning:?}");
    }
    let said = format!(
        "mirror {} resolves the tag to {}",
        ra.host(),
        a.manifest_digest
    );
    assert!(res.stderr.contains(&said), "{res}");
}

#[test]
fn r16_blobs_and_segments_come_from_every_mirror() {
    let img = one_big_layer(24 * MIB);
    let (ra, rb) = (mirror_of(&img), mirror_of(&img));
    let work = TempDir::new("r16spread");
    let list = format!("{},{}", ra.host(), rb.host());
    let (res, out) = pull(&work, &["-r", &list, "--mirrors-only", "-t", "8"], &[]);
    ok(&res, &out, &img, &ra.log());
    let (na, nb) = (blobs_served(&ra), blobs_served(&rb));
    assert!(na >= 2 && nb >= 2, "{na} and {nb} blob GETs:\n{res}");
    for r in [&ra, &rb] {
        assert!(
            res.stderr.contains(&r.host()),
            "{} not in the summary:\n{res}",
            r.host()
        );
    }
}

/// A fast and a slow mirror (4 MB/s and 256 KB/s a connection): each
/// mirror's share follows its throughput, so the fast one brings most of
/// the layer: 16/17 ends both together, and the fast mirror takes over
/// the slow one's tail (when idle connections only took over halves of
/// two chunks or more, the slow mirror brought a fifth and held the end).
#[test]
fn r16_the_faster_mirror_brings_most_of_a_layer() {
    let img = one_big_layer(24 * MIB);
    let size = img.layers[0].blob.len() as u64;
    let (ra, rb) = (mirror_of(&img), mirror_of(&img));
    let rate = |rate| Rations {
        conns: None,
        per_minute: None,
        rate,
    };
    let (fast, slow) = (
        Nginx::rationed(&ra, &rate("4m")),
        Nginx::rationed(&rb, &rate("256k")),
    );
    let work = TempDir::new("r16speeds");
    let list = format!("{},{}", slow.host(), fast.host());
    let (res, out) = pull(&work, &["-r", &list, "--mirrors-only", "-t", "8"], &[]);
    let trace = format!("{}\n{}", fast.describe("front"), slow.describe("front"));
    ok(&res, &out, &img, &trace);
    let digest = &img.layers[0].digest;
    let bytes = |n: &Nginx| -> u64 {
        let log = n.settled_log("front", 4);
        let gets = blob_gets(&log, digest);
        gets.iter()
            .filter(|a| a.status != 429)
            .map(|a| a.bytes_sent)
            .sum()
    };
    let (bf, bs) = (bytes(&fast), bytes(&slow));
    assert!(
        bs > 0,
        "the slow mirror (listed first) served nothing:\n{trace}"
    );
    assert!(
        bf >= size * 7 / 8,
        "the fast mirror served {bf} bytes and the slow one {bs}, of {size}:\n{trace}"
    );
}

/// Two mirrors each rationed to 4 connections of 2 MB/s: `-t 20` keeps
/// about 8 busy, and each serves a fair part of the layer (the wall-time
/// goal, 1.7 times one mirror, is scripts/bench-slowlink's).
#[test]
fn r16_two_rationed_mirrors_keep_eight_busy() {
    let img = one_big_layer(40 * MIB);
    let size = img.layers[0].blob.len() as u64;
    let (ra, rb) = (mirror_of(&img), mirror_of(&img));
    let rations = Rations {
        conns: Some(4),
        per_minute: None,
        rate: "2m",
    };
    let (fa, fb) = (
        Nginx::rationed(&ra, &rations),
        Nginx::rationed(&rb, &rations),
    );
    let work = TempDir::new("r16ration");
    let list = format!("{},{}", fa.host(), fb.host());
    let env = [
        ("PULLTAR_PROGRESS", "plain"),
        ("PULLTAR_PROGRESS_INTERVAL_MS", "250"),
    ];
    let (res, out) = pull(&work, &["-r", &list, "--mirrors-only", "-t", "20"], &env);
    let trace = format!("{}\n{}", fa.describe("front"), fb.describe("front"));
    ok(&res, &out, &img, &trace);
    let (la, lb) = (fa.settled_log("front", 4), fb.settled_log("front", 4));
    let digest = &img.layers[0].digest;
    let served = |log: &[Access]| -> Vec<Access> {
        let gets = blob_gets(log, digest).into_iter();
        gets.filter(|a| a.status != 429).cloned().collect()
    };
    let (sa, sb) = (served(&la), served(&lb));
    let bytes = |s: &[Access]| s.iter().map(|a| a.bytes_sent).sum::<u64>();
    let (ba, bb) = (bytes(&sa), bytes(&sb));
    let seen = format!("{ba} and {bb} bytes of {size} served");
    assert!(ba >= size / 4 && bb >= size / 4, "{seen}:\n{trace}");
    let both: Vec<&Access> = sa.iter().chain(&sb).collect();
    let max = max_in_flight(&both);
    assert!(
        max >= 7,
        "{seen}, at most {max} at once; wanted 8:\n{trace}"
    );
    // The display names both mirrors with their speeds, and the summary
    // what each brought.
    let shown = format!("From mirror {} ", fa.host());
    let line = res.stderr.lines().find(|l| l.contains(&shown));
    let line = line.unwrap_or_else(|| panic!("no mirror speeds shown:\n{res}"));
    assert!(line.contains(&format!("mirror {} ", fb.host())), "{line}");
    assert!(line.contains("/s"), "{line}");
    let summary = res.stderr.lines().find(|l| l.starts_with("From: "));
    let summary = summary.unwrap_or_else(|| panic!("no bytes by mirror:\n{res}"));
    assert!(
        summary.contains(&fa.host()) && summary.contains(&fb.host()),
        "{summary}"
    );
}

#[test]
fn r16_every_copy_corrupt_fails_naming_the_mirrors_tried() {
    let img = one_big_layer(6 * MIB);
    let (ra, rb) = (mirror_of(&img), mirror_of(&img));
    let (pa, pb) = (FaultProxy::start(ra.port), FaultProxy::start(rb.port));
    for px in [&pa, &pb] {
        px.add(Rule::new("/blobs/", Fault::FlipByte(100)));
    }
    let work = TempDir::new("r16corrupt");
    let list = format!("{},{}", pa.host(), pb.host());
    let args = ["-r", &list, "--mirrors-only", "--chunk-size", "1M"];
    let (res, out) = pull(&work, &args, &[]);
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists());
    let error = res.stderr.lines().find(|l| l.starts_with("pulltar: error"));
    let error = error.unwrap_or_else(|| panic!("no error line:\n{res}"));
    for px in [&pa, &pb] {
        assert!(
            error.contains(&px.host()),
            "{} not named: {error}",
            px.host()
        );
    }
    assert!(error.contains("every copy was wrong"), "{error}");
}

#[test]
fn r16_inspect_reads_through_the_list() {
    let img = small();
    let good = mirror_of(&img);
    let work = TempDir::new("r16inspect");
    let list = format!("{},{}", dead(), good.host());
    let args = ["inspect", "--json", "-r", &list, "--mirrors-only", "app:v1"];
    let res = pulltar_env(work.path(), &args, &[]);
    assert_eq!(res.code, 0, "{res}");
    let doc: serde_json::Value = serde_json::from_str(&res.stdout).unwrap();
    assert_eq!(doc["digest"], img.manifest_digest.as_str(), "{res}");
}
