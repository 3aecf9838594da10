//! Resume across runs, through the fault proxy with a paced relay so a
//! pull lasts a few seconds: a pull killed three times (SIGKILL) leaves
//! nothing beside the output (its archive, written in place, sits in the
//! cache until the next pull removes it) and finishes on the fourth run
//! having fetched each byte about once; Ctrl-C stops at
//! once with exit 130 and a rerun fetches only the rest; a partial blob
//! corrupted between runs is detected and fetched again; two processes
//! sharing one cache both succeed, each blob fetched once. Byte counts come
//! from the proxy's log.

use crate::support::background::{blob_total, wait_for_bytes, Background};
use crate::support::fault_case::Case;
use crate::support::faultproxy::{Fault, Rule};
use crate::support::loaders::verify_everywhere;
use crate::support::util::{hex_of, list_dir, Rng, PULLTAR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// pulltar in the background on the case's image, into `out`.
fn start(case: &Case, out: &Path, extra: &[&str]) -> Background {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut cmd = Command::new(PULLTAR);
    cmd.arg(case.reference())
        .arg("-o")
        .arg(out)
        .arg("--cache-dir")
        .arg(case.cache())
        .args(extra)
        .current_dir(case.work.path())
        .env_remove("RUST_LOG")
        .env("PULLTAR_RETRY_DELAY_MS", "50");
    Background::start(cmd)
}

fn partials(case: &Case) -> Vec<PathBuf> {
    let tmp = case.cache().join("tmp");
    if !tmp.is_dir() {
        return vec![];
    }
    let names = list_dir(&tmp).into_iter();
    names
        .filter(|n| n.ends_with(".partial"))
        .map(|n| tmp.join(n))
        .collect()
}

/// Archives being written in place in the cache's `tmp/` (a killed
/// pull's, until the next pull removes it).
fn archives_in_cache(case: &Case) -> Vec<String> {
    let tmp = case.cache().join("tmp");
    list_dir(&tmp)
        .into_iter()
        .filter(|n| n.ends_with(".archive"))
        .collect()
}

fn assert_no_partials(case: &Case) {
    let left = partials(case);
    assert!(left.is_empty(), "partials left after success: {left:?}");
}

#[test]
fn three_kills_then_a_full_run_fetch_each_byte_about_once() {
    let case = Case::big(3, 16 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let mut rng = Rng::new();
    for frac in [0.20, 0.45, 0.70] {
        let jitter = (rng.next_u64() % 61) as f64 / 1000.0 - 0.03;
        let target = ((frac + jitter) * total as f64) as u64;
        let mut run = start(&case, &case.out(), &["-t", "2"]);
        wait_for_bytes(&case, &mut run, target);
        let res = run.kill();
        assert_eq!(res.code, -1, "killed pull exited by itself:\n{res}");
        // The archive being written in place sat in the cache, not beside
        // the output.
        let beside = list_dir(&case.work.join("out"));
        assert!(
            beside.is_empty(),
            "left beside the output after a kill: {beside:?}"
        );
        assert_eq!(
            archives_in_cache(&case).len(),
            1,
            "the killed pull's archive"
        );
    }
    let res = start(&case, &case.out(), &["-t", "2"]).wait(Duration::from_secs(120));
    assert_eq!(res.code, 0, "fourth run failed:\n{res}\n{}", case.px.dump());
    let left = archives_in_cache(&case);
    assert!(
        left.is_empty(),
        "killed pulls' archives left in the cache: {left:?}"
    );
    verify_everywhere(&case.out(), &case.img, &case.tags());
    case.px.settled();
    let sent = case.px.body_bytes("/blobs/");
    assert!(
        sent as f64 <= 1.05 * total as f64,
        "{sent} blob bytes relayed over four runs for {total} bytes of blobs:\n{}",
        case.px.dump()
    );
    assert_no_partials(&case);
}

#[test]
fn ctrl_c_stops_with_130_and_a_rerun_fetches_only_the_rest() {
    let case = Case::big(2, 12 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let mut run = start(&case, &case.out(), &["-t", "2"]);
    wait_for_bytes(&case, &mut run, total * 35 / 100);
    let t0 = Instant::now();
    run.interrupt();
    let res = run.wait(Duration::from_secs(20));
    let took = t0.elapsed();
    assert_eq!(res.code, 130, "Ctrl-C should exit 130:\n{res}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop after SIGINT"
    );
    let err = res.stderr.to_lowercase();
    assert!(
        err.contains("interrupt"),
        "stderr should say interrupted:\n{res}"
    );
    assert!(
        err.contains("resume") || err.contains("again"),
        "stderr should say a rerun resumes:\n{res}"
    );
    let left = list_dir(&case.work.join("out"));
    assert!(
        left.is_empty(),
        "files at the output after Ctrl-C: {left:?}"
    );
    case.px.settled();
    let before = case.px.body_bytes("/blobs/");
    let res = start(&case, &case.out(), &["-t", "2"]).wait(Duration::from_secs(120));
    assert_eq!(res.code, 0, "rerun failed:\n{res}\n{}", case.px.dump());
    verify_everywhere(&case.out(), &case.img, &case.tags());
    case.px.settled();
    let rerun = case.px.body_bytes("/blobs/") - before;
    let slack = 4 * 256 * 1024 + 64 * 1024;
    assert!(
        rerun <= (total - before.min(total)) + slack,
        "rerun fetched {rerun} bytes; {before} of {total} were fetched before Ctrl-C:\n{}",
        case.px.dump()
    );
    assert_no_partials(&case);
}

/// Flips 16 bytes near the start of every written (non-zero) stretch of
/// `path` that is at least 512 KiB long, so the journal (which trails the
/// writes by at most 256 KiB per segment) surely claims them; returns how
/// many stretches were hit.
fn corrupt(path: &Path) -> usize {
    let mut data = std::fs::read(path).unwrap();
    let block = 4096;
    let written: Vec<bool> = data
        .chunks(block)
        .map(|b| b.iter().any(|&x| x != 0))
        .collect();
    let mut hit = 0;
    for i in 0..written.len() {
        let starts = written[i] && (i == 0 || !written[i - 1]);
        let long = written.iter().skip(i).take_while(|&&w| w).count() >= 128;
        if starts && long {
            let at = (i + 1) * block;
            for b in &mut data[at..at + 16] {
                *b ^= 0xff;
            }
            hit += 1;
        }
    }
    std::fs::write(path, data).unwrap();
    hit
}

#[test]
fn a_corrupted_partial_is_detected_and_fetched_again() {
    let case = Case::big(2, 8 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let mut run = start(&case, &case.out(), &["-t", "2"]);
    wait_for_bytes(&case, &mut run, total * 40 / 100);
    run.kill();
    let mut victims = vec![];
    for p in partials(&case) {
        if corrupt(&p) > 0 {
            victims.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        !victims.is_empty(),
        "no partial with data to corrupt:\n{}",
        case.px.dump()
    );
    case.px.settled();
    let before: Vec<u64> = victims.iter().map(|h| case.px.body_bytes(h)).collect();
    let res = start(&case, &case.out(), &["-t", "2"]).wait(Duration::from_secs(120));
    assert_eq!(res.code, 0, "rerun failed:\n{res}\n{}", case.px.dump());
    verify_everywhere(&case.out(), &case.img, &case.tags());
    case.px.settled();
    for (hex, before) in victims.iter().zip(before) {
        let layer = case.img.layers.iter().find(|l| hex_of(&l.digest) == hex);
        let again = case.px.body_bytes(hex) - before;
        assert!(
            again >= layer.expect("a layer").blob.len() as u64,
            "corrupted blob {hex}: only {again} bytes fetched again:\n{res}\n{}",
            case.px.dump()
        );
    }
    assert_no_partials(&case);
}

#[test]
fn a_416_on_a_resumed_blob_restarts_it_once() {
    let case = Case::big(2, 8 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let mut run = start(&case, &case.out(), &["-t", "2"]);
    wait_for_bytes(&case, &mut run, total * 40 / 100);
    run.kill();
    let resumed: Vec<String> = partials(&case)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !resumed.is_empty(),
        "no partial left by the kill:\n{}",
        case.px.dump()
    );
    for hex in &resumed {
        case.px
            .add(Rule::new(hex, Fault::Status(416, vec![])).ranged().times(1));
    }
    case.px.settled();
    let res = start(&case, &case.out(), &["-t", "2"]).wait(Duration::from_secs(120));
    assert_eq!(res.code, 0, "rerun failed:\n{res}\n{}", case.px.dump());
    assert!(
        case.px.rules_left().iter().all(|left| *left == Some(0)),
        "a 416 rule never fired: {:?}\n{}",
        case.px.rules_left(),
        case.px.dump()
    );
    assert!(res.stderr.contains("416"), "no word of the 416:\n{res}");
    verify_everywhere(&case.out(), &case.img, &case.tags());
    assert_no_partials(&case);
}

#[test]
fn two_pulls_sharing_a_cache_both_succeed() {
    let case = Case::big(3, 6 * MIB);
    case.px.set_rate(4 * MIB as u64);
    let (a, b) = (case.work.join("a/image.tar"), case.work.join("b/image.tar"));
    let ra = start(&case, &a, &["-t", "3"]);
    let rb = start(&case, &b, &["-t", "3"]);
    let (oa, ob) = (
        ra.wait(Duration::from_secs(120)),
        rb.wait(Duration::from_secs(120)),
    );
    assert_eq!(oa.code, 0, "first pull failed:\n{oa}\n{}", case.px.dump());
    assert_eq!(ob.code, 0, "second pull failed:\n{ob}\n{}", case.px.dump());
    verify_everywhere(&a, &case.img, &case.tags());
    verify_everywhere(&b, &case.img, &case.tags());
    // The per-blob lock: whoever waited found the blob in the cache rather
    // than fetching it a second time.
    case.px.settled();
    let (sent, total) = (case.px.body_bytes("/blobs/"), blob_total(&case));
    assert!(
        sent as f64 <= 1.05 * total as f64,
        "{sent} blob bytes relayed for two pulls of {total} bytes:\n{}",
        case.px.dump()
    );
    for l in &case.img.layers {
        let cached = case.cache().join("blobs/sha256").join(hex_of(&l.digest));
        assert!(
            std::fs::read(&cached).unwrap() == l.blob,
            "cache holds a bad {}",
            l.digest
        );
    }
    assert_no_partials(&case);
}
