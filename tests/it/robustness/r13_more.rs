//! Issue 13, beyond its three repros: what the fault soak and the work on
//! the fixes found, each against the real registry through the fault
//! proxy. A blob's one connection on a registry that ignores `Range`,
//! resumed after a cut, reads past the bytes it has rather than starting
//! over on a new connection. A manifest fetched by digest (an index's
//! child, or the image a digest reference names) gets one fresh fetch
//! after a corrupt response, as a blob does; a second is final and names
//! both digests. Two silent answers, each cut by the read timeout, are two
//! failures without progress for the retry policy, not a slow drip. A 429
//! on the ping or a manifest is waited out like one on a blob; two pulls
//! sharing a host's two connections both finish; a host that refuses
//! everything fails the pull after the policy's patience, not in a loop.
//!
//! See: issue 13.

use super::r13::Proxied;
use crate::support::faultproxy::{Fault, FaultProxy, Ration, Record, Rule};
use crate::support::images::one_big_layer;
use crate::support::images::{push_image, push_index, Flavor, Index, AMD64};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::util::{digest_of, hex_of, list_dir, pulltar_env, Output, TempDir};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// Every ranged GET of a 12 MiB blob gets the whole blob, and the one
/// connection it falls back to is cut at 5 MiB: its resume (a ranged GET,
/// answered whole again) drops the first 5 MiB and brings the rest, on
/// the same one connection: one GET without Range in all, and nothing
/// else in flight beside it.
#[test]
fn r13_the_one_connection_resumes_past_the_bytes_it_has() {
    let case = Proxied::new(one_big_layer(12 * MIB));
    let big = case.img.layers[0].digest.clone();
    let size = case.img.layers[0].blob.len() as u64;
    let cut = Fault::CutAfter(5 * MIB as u64);
    case.px.add(Rule::new(&big, cut).unranged().times(1));
    case.px.add(Rule::new(&big, Fault::WholeBody).ranged());
    let res = case.pull(false, &["-t", "4", "--chunk-size", "2M"]);
    case.ok(&res);
    let gets = case.gets(&big);
    let log = case.px.dump();
    let at = gets
        .iter()
        .position(|r| r.range.is_none())
        .unwrap_or_else(|| panic!("no fallback GET:\n{log}"));
    let whole: Vec<&Record> = gets.iter().filter(|r| r.range.is_none()).collect();
    assert_eq!(whole.len(), 1, "one fallback, never a second:\n{log}");
    assert_eq!(whole[0].fault, Some("cut"), "{log}");
    let after: Vec<&Record> = gets[at + 1..]
        .iter()
        .filter(|r| r.start >= whole[0].start)
        .collect();
    assert_eq!(
        after.len(),
        1,
        "one resume after the cut, on the one connection:\n{log}"
    );
    assert_eq!(
        (after[0].status, after[0].body_bytes),
        (200, size),
        "the resume is answered with the whole blob:\n{log}"
    );
    assert!(
        after[0].start >= whole[0].end.unwrap(),
        "the resume overlapped the fallback GET:\n{log}"
    );
}

/// A multi-platform index as `team/multi:v1` behind the fault proxy, and
/// a work dir.
struct Multi {
    px: FaultProxy,
    index: Index,
    work: TempDir,
    _reg: Registry,
}

impl Multi {
    fn new() -> Multi {
        let reg = Registry::start();
        let index = push_index(&reg, "team/multi", "v1", Flavor::Oci);
        Multi {
            px: FaultProxy::start(reg.port),
            index,
            work: TempDir::new("r13m"),
            _reg: reg,
        }
    }

    /// `pulltar HOST/team/multi<suffix> --platform linux/amd64`.
    fn pull(&self, suffix: &str) -> (String, Output) {
        std::fs::create_dir_all(self.work.join("out")).unwrap();
        let reference = format!("{}/team/multi{suffix}", self.px.host());
        let out = self.work.join("out/image.tar");
        let cache = self.work.join("cache");
        let args = [
            reference.as_str(),
            "--platform",
            "linux/amd64",
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        let env = [("PULLTAR_RETRY_DELAY_MS", "50")];
        let res = pulltar_env(self.work.path(), &args, &env);
        (reference, res)
    }

    /// The GETs of the manifest `digest`, and how many carried the flip.
    fn manifest_gets(&self, digest: &str) -> (usize, usize) {
        self.px.settled();
        let gets = self.px.requests_to(&format!("/manifests/{digest}"));
        let flipped = gets.iter().filter(|r| r.fault == Some("flip")).count();
        (flipped, gets.len())
    }
}

#[test]
fn r13_one_corrupt_child_manifest_is_fetched_again() {
    let case = Multi::new();
    let child = case.index.child(&AMD64);
    let digest = child.manifest_digest.clone();
    case.px
        .add(Rule::new(&digest, Fault::FlipByte(10)).times(1));
    let (reference, res) = case.pull(":v1");
    assert_eq!(res.code, 0, "{res}\n{}", case.px.dump());
    check_archive(&case.work.join("out/image.tar"), child, &[reference]);
    assert_eq!(
        case.manifest_gets(&digest),
        (1, 2),
        "one corrupt GET of the child manifest, then one fresh one:\n{}",
        case.px.dump()
    );
}

#[test]
fn r13_one_corrupt_manifest_named_by_digest_is_fetched_again() {
    let case = Multi::new();
    let child = case.index.child(&AMD64);
    let digest = child.manifest_digest.clone();
    case.px
        .add(Rule::new(&digest, Fault::FlipByte(10)).times(1));
    let (_, res) = case.pull(&format!("@{digest}"));
    assert_eq!(res.code, 0, "{res}\n{}", case.px.dump());
    // A digest reference has no tag to load the image under.
    check_archive(&case.work.join("out/image.tar"), child, &[]);
    assert_eq!(case.manifest_gets(&digest), (1, 2), "{}", case.px.dump());
}

#[test]
fn r13_a_second_corrupt_child_manifest_fails_naming_both_digests() {
    let case = Multi::new();
    let child = case.index.child(&AMD64);
    let digest = child.manifest_digest.clone();
    let mut bad = child.manifest.clone();
    bad[10] ^= 0xff;
    case.px
        .add(Rule::new(&digest, Fault::FlipByte(10)).times(2));
    let (_, res) = case.pull(":v1");
    assert_eq!(res.code, 1, "wanted exit 1:\n{res}\n{}", case.px.dump());
    assert!(list_dir(&case.work.join("out")).is_empty(), "{res}");
    for d in [&digest, &digest_of(&bad)] {
        assert!(
            res.stderr.contains(hex_of(d)),
            "stderr should name {d}:\n{res}"
        );
    }
    assert_eq!(case.manifest_gets(&digest), (2, 2), "{}", case.px.dump());
}

/// A 4 MiB blob on one connection whose first two answers send their head
/// and then nothing for 3 s: `--read-timeout 2` cuts each, and the third
/// brings the blob. Before, the guard against a slow drip measured from
/// the segment's start across attempts and gave up after two such
/// answers: "only 0 bytes arrived in 4 s".
#[test]
fn r13_two_silent_answers_are_not_a_slow_drip() {
    let case = Proxied::new(one_big_layer(4 * MIB));
    let big = case.img.layers[0].digest.clone();
    let stall = Fault::StallAfter(0, Duration::from_secs(3));
    case.px.add(Rule::new(&big, stall).times(2));
    let res = case.pull(false, &["-t", "1", "--read-timeout", "2"]);
    case.ok(&res);
    let gets = case.gets(&big);
    let stalls = gets.iter().filter(|r| r.fault == Some("stall")).count();
    assert_eq!(stalls, 2, "two silent answers:\n{}", case.px.dump());
    assert_eq!(
        gets.len(),
        3,
        "and one that brings the blob:\n{}",
        case.px.dump()
    );
}

/// The start of each refused request to `path` (exactly), and of the one
/// after them.
fn refusals(case: &Proxied, path: &str) -> Vec<(u16, std::time::Instant)> {
    case.px.settled();
    let log = case.px.requests();
    log.iter()
        .filter(|r| r.path == path)
        .map(|r| (r.status, r.start))
        .collect()
}

#[test]
fn r13_refusals_of_the_ping_and_the_manifest_are_waited_out() {
    let case = Proxied::new(one_big_layer(MIB));
    let manifest = "/v2/team/app/manifests/v1";
    let refused = || Fault::Status(429, vec![]);
    case.px.add(Rule::new("/manifests/", refused()).times(3));
    case.px.add(Rule::new("/v2/", refused()).times(3));
    // One retry allowed: before, the second 429 of the ping failed the pull.
    let res = case.pull(false, &["--retries", "1"]);
    case.ok(&res);
    for path in ["/v2/", manifest] {
        let seen = refusals(&case, path);
        let statuses: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses,
            [429, 429, 429, 200],
            "{path}:\n{}",
            case.px.dump()
        );
        // Asked again ever later (250 ms, 500 ms, 1 s), not in a loop.
        let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert!(
            gaps[0] >= Duration::from_millis(200) && gaps[2] >= Duration::from_millis(800),
            "{path} asked again after {gaps:?}:\n{}",
            case.px.dump()
        );
    }
}

#[test]
fn r13_a_host_refusing_everything_fails_after_the_patience() {
    let case = Proxied::new(one_big_layer(MIB));
    let refused = Fault::Status(429, vec![]);
    case.px.add(Rule::new("/manifests/", refused));
    // One retry allowed: 12 s of refusals.
    let res = case.pull(false, &["--retries", "1"]);
    assert_eq!(res.code, 1, "{res}");
    for want in ["answered HTTP 429", "requests in a row over "] {
        assert!(res.stderr.contains(want), "{want:?} missing:\n{res}");
    }
    let over = res
        .stderr
        .split("in a row over ")
        .nth(1)
        .unwrap_or_default();
    let secs: u64 = over
        .split(' ')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert!((12..30).contains(&secs), "gave up after {secs} s:\n{res}");
    let asked = case.px.requests_to("/manifests/").len();
    // Pauses of 250 ms, 500 ms, 1, 2, 4 and 8 s.
    assert!(
        (6..=8).contains(&asked),
        "asked {asked} times:\n{}",
        case.px.dump()
    );
    assert!(list_dir(&case.work.join("out")).is_empty());
}

/// Two pulls at once through a host that serves two connections at a
/// time, each pull with `-t 8` and the test's 50 ms backoff: the one that
/// finds the slots taken waits for them. Before, its ping spent its five
/// attempts in 250 ms and the pull failed.
#[test]
fn r13_two_pulls_sharing_two_connections_both_finish() {
    let reg = Registry::start();
    let images = [one_big_layer(12 * MIB), one_big_layer(12 * MIB)];
    push_image(&reg, "team/app", Some("v1"), &images[0]);
    push_image(&reg, "team/app", Some("v2"), &images[1]);
    let px = FaultProxy::start(reg.port);
    px.set_rate(4 << 20);
    px.set_ration(Ration {
        conns: Some(2),
        per_minute: None,
    });
    let work = TempDir::new("r13twin");
    let pull = |tag: &str| {
        let reference = format!("{}/team/app:{tag}", px.host());
        let out = work.join(&format!("{tag}.tar"));
        let cache = work.join(&format!("cache-{tag}"));
        let args = [
            reference.as_str(),
            "-t",
            "8",
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        let res = pulltar_env(work.path(), &args, &[("PULLTAR_RETRY_DELAY_MS", "50")]);
        (reference, out, res)
    };
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| pull("v1"));
        let two = s.spawn(|| pull("v2"));
        (one.join().unwrap(), two.join().unwrap())
    });
    px.settled();
    let refused = px.requests().iter().filter(|r| r.status == 429).count();
    for ((reference, out, res), img) in [one, two].into_iter().zip(&images) {
        assert_eq!(res.code, 0, "{res}\n{refused} refused:\n{}", px.dump());
        check_archive(&out, img, &[reference]);
    }
    assert!(refused > 0, "the ration never refused: not a test of it");
}
