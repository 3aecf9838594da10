//! Retries inside one run, through the fault proxy: cut bodies resume with
//! Range (not from zero), a 200 answer to a Range request falls back to a
//! whole-body download, a wrong Content-Range fails the pull, 429 waits for
//! Retry-After, 5xx is retried `--retries` times, 404 is not retried, and a
//! stalled connection is cut by `--read-timeout`. Every test asserts on the
//! proxy's log (which faults fired, which requests followed) as well as on
//! pulltar's exit code and stderr.

use crate::support::fault_case::Case;
use crate::support::faultproxy::{Fault, Rule};
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::util::{hex_of, Output};
use std::time::Duration;

const MIB: usize = 1 << 20;

fn ok(case: &Case, res: &Output) {
    assert_eq!(
        res.code,
        0,
        "pull failed:\n{res}\nproxy log:\n{}",
        case.px.dump()
    );
}

#[test]
fn cut_bodies_resume_with_range_instead_of_restarting() {
    let case = Case::big(2, 8 * MIB);
    let big = case.img.layers[0].digest.clone();
    let size = case.img.layers[0].blob.len() as u64;
    // Segments are at least 2 MiB, so a cut at 1 MiB always has a body to cut.
    case.px
        .add(Rule::new(&big, Fault::CutAfter(MIB as u64)).times(3));
    let res = case.pull(&["-t", "4", "--chunk-size", "2M"]);
    ok(&case, &res);
    verify_everywhere(&case.out(), &case.img, &case.tags());
    let hits = case.hits(&big);
    let cuts = hits.iter().filter(|r| r.fault == Some("cut")).count();
    assert_eq!(cuts, 3, "three cuts should have fired:\n{}", case.px.dump());
    assert!(
        hits.iter().all(|r| r.range.is_some()),
        "a segmented blob should only be fetched with Range:\n{}",
        case.px.dump()
    );
    // Restarting a cut segment from its start would cost >= 1 MiB per cut.
    let sent: u64 = hits.iter().map(|r| r.body_bytes).sum();
    let slack = 3 * 256 * 1024 + 64 * 1024;
    assert!(
        sent <= size + slack,
        "{sent} bytes relayed for a {size}-byte blob (allowed {}):\n{}",
        size + slack,
        case.px.dump()
    );
}

#[test]
fn a_200_answer_to_range_falls_back_to_one_whole_download() {
    let case = Case::big(2, 6 * MIB);
    let big = case.img.layers[1].digest.clone();
    case.px.add(Rule::new(&big, Fault::IgnoreRange).ranged());
    let res = case.pull(&["-t", "4"]);
    ok(&case, &res);
    verify_everywhere(&case.out(), &case.img, &case.tags());
    let hits = case.hits(&big);
    assert!(
        hits.iter().any(|r| r.fault == Some("ignore-range")),
        "the blob was never requested with Range:\n{}",
        case.px.dump()
    );
    assert!(
        hits.iter().any(|r| r.status == 200 && r.end.is_some()),
        "{}",
        case.px.dump()
    );
}

#[test]
fn a_wrong_content_range_fails_the_pull_and_names_the_blob() {
    let case = Case::big(2, 6 * MIB);
    let big = case.img.layers[0].digest.clone();
    case.px
        .add(Rule::new(&big, Fault::BadContentRange).ranged());
    let res = case.pull(&["-t", "4"]);
    case.assert_failed_on(&res, &big);
    assert!(
        case.hits(&big)
            .iter()
            .any(|r| r.fault == Some("bad-content-range")),
        "no 206 was rewritten:\n{}",
        case.px.dump()
    );
    let cached = case.cache().join("blobs/sha256").join(hex_of(&big));
    assert!(!cached.exists(), "the blob reached the cache anyway");
}

/// The first request to `path` after the injected status, and the gap
/// between the end of the injected answer and its start.
fn retried_after(case: &Case, path: &str) -> Duration {
    let log = case.px.requests_to(path);
    let at = log
        .iter()
        .position(|r| r.fault == Some("status"))
        .unwrap_or_else(|| panic!("no injected status on {path}:\n{}", case.px.dump()));
    let next = log
        .get(at + 1)
        .unwrap_or_else(|| panic!("{path} was not retried:\n{}", case.px.dump()));
    next.start.duration_since(log[at].end.unwrap())
}

/// One 429 with `Retry-After: 1` on requests to `path`: the pull succeeds, and the proxy saw the retry come
/// at least 1 s later although the backoff is fixed at 50 ms.
fn throttled_once(case: &Case, path: &str) {
    let throttle = Fault::Status(429, vec![("Retry-After".into(), "1".into())]);
    case.px.add(Rule::new(path, throttle).times(1));
    let res = case.pull(&[]);
    ok(case, &res);
    check_archive(&case.out(), &case.img, &case.tags());
    case.px.settled();
    let gap = retried_after(case, path);
    assert!(
        gap >= Duration::from_millis(950),
        "{path} retried {gap:?} after a 429 with Retry-After: 1:\n{}",
        case.px.dump()
    );
}

#[test]
fn too_many_requests_on_a_blob_waits_for_retry_after() {
    let case = Case::small();
    let blob = case.img.layers[1].digest.clone();
    throttled_once(&case, &blob);
}

#[test]
fn too_many_requests_on_the_manifest_waits_for_retry_after() {
    throttled_once(&Case::small(), "/manifests/");
}

#[test]
fn server_errors_are_retried_exactly_retries_times() {
    let case = Case::small();
    let blob = case.img.layers[1].digest.clone();
    case.px.add(Rule::new(&blob, Fault::Status(503, vec![])));
    let res = case.pull(&["--retries", "2"]);
    assert_eq!(res.code, 1, "wanted exit 1:\n{res}\n{}", case.px.dump());
    assert!(!case.out().exists(), "output left after a failure");
    let hits = case.hits(&blob);
    assert_eq!(
        hits.len(),
        3,
        "--retries 2: one attempt and two retries for {blob}:\n{}",
        case.px.dump()
    );
    assert!(hits.iter().all(|r| r.status == 503));
}

#[test]
fn not_found_is_not_retried() {
    let case = Case::small();
    let blob = case.img.layers[2].digest.clone();
    case.px.add(Rule::new(&blob, Fault::Status(404, vec![])));
    let res = case.pull(&[]);
    case.assert_failed_on(&res, &blob);
    assert_eq!(
        case.hits(&blob).len(),
        1,
        "a 404 must not be retried:\n{}",
        case.px.dump()
    );
}

#[test]
fn a_stalled_connection_is_cut_by_read_timeout_and_retried() {
    let case = Case::small();
    let blob = case.img.layers[0].digest.clone();
    let stall = Fault::StallAfter(4096, Duration::from_secs(40));
    case.px.add(Rule::new(&blob, stall).times(1));
    let res = case.pull(&["--read-timeout", "2"]);
    ok(&case, &res);
    check_archive(&case.out(), &case.img, &case.tags());
    let hits = case.hits(&blob);
    let at = hits
        .iter()
        .position(|r| r.fault == Some("stall"))
        .unwrap_or_else(|| panic!("no stall fired:\n{}", case.px.dump()));
    let (stalled, next) = (&hits[at], hits.get(at + 1).expect("a retry"));
    assert!(
        stalled.client_gone,
        "pulltar never hung up on the stalled connection:\n{}",
        case.px.dump()
    );
    // Cut by pulltar after ~2 s, not by the proxy after 40 s.
    let gap = next.start.duration_since(stalled.start);
    assert!(
        gap >= Duration::from_millis(1500) && gap < Duration::from_secs(15),
        "retry {gap:?} after the stall began (read timeout 2 s):\n{}",
        case.px.dump()
    );
}
