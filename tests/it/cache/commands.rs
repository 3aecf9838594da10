//! The layer cache as a user sees it: a second pull of the same image
//! sends no blob request to the registry (counted in the registry's own
//! access log) and reports every layer as a hit; two pulls running at once
//! into one cache both write good archives and fetch each blob once;
//! `pulltar cache ls` lists what is held, and `pulltar cache prune`
//! removes blobs and stale partial downloads (honouring `--older-than`),
//! reports the space freed, and refuses while a pull uses the cache.

use crate::support::fault_case::Case;
use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::{check_archive, skopeo_inspect};
use crate::support::registry::Registry;
use crate::support::util::{hex_of, pulltar_in, Output, TempDir, PULLTAR};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Blob GETs the registry logged for `repo`.
fn blob_gets(reg: &Registry, repo: &str) -> usize {
    reg.log()
        .matches(&format!("\"GET /v2/{repo}/blobs/"))
        .count()
}

#[test]
fn a_second_pull_makes_no_blob_request() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let work = TempDir::new("hit");
    let reference = format!("{}/team/app:v1", reg.host());
    let cache = work.join("cache");
    let pull = |out: &str| {
        let out = work.join(out);
        let res = pulltar_in(
            work.path(),
            &[
                &reference,
                "-o",
                out.to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
            ],
        );
        assert_eq!(res.code, 0, "{res}");
        (out, res)
    };
    let (first, res) = pull("a.tar");
    assert!(res.stderr.contains("Cache: 0/3 layers, 0 B saved"), "{res}");
    // Access log lines may trail the response by a moment.
    std::thread::sleep(Duration::from_millis(300));
    let before = blob_gets(&reg, "team/app");
    assert_eq!(before, 4, "config + 3 layers:\n{}", reg.log());
    let (second, res) = pull("b.tar");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        blob_gets(&reg, "team/app"),
        before,
        "the second pull asked the registry for blobs:\n{res}"
    );
    let saved: u64 = img.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert!(
        res.stderr.contains("Cache: 3/3 layers, ") && res.stderr.contains(" 0 B downloaded"),
        "{res}"
    );
    assert!(saved > 0);
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "the cached pull wrote a different archive"
    );
}

#[test]
fn two_pulls_at_once_share_one_cache() {
    let case = Case::big(2, 2 << 20);
    case.px.set_rate(2_000_000);
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let cache = case.cache();
    let spawn = |name: &str| {
        Command::new(PULLTAR)
            .args([
                &case.reference(),
                "-o",
                case.work.join(name).to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
                "-q",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pulltar")
    };
    let children = [spawn("out/a.tar"), spawn("out/b.tar")];
    for child in children {
        let out = child.wait_with_output().expect("wait for pulltar");
        assert!(
            out.status.success(),
            "a concurrent pull failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in ["out/a.tar", "out/b.tar"] {
        let tar = case.work.join(name);
        check_archive(&tar, &case.img, &case.tags());
        let inspected = skopeo_inspect(&tar);
        assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
    }
    // Each layer crossed the network once: the second pull waited for the
    // first one's per-blob lock and then found the blob in the store.
    case.px.settled();
    for l in &case.img.layers {
        let bytes = case.px.body_bytes(&format!("/blobs/{}", l.digest));
        assert_eq!(
            bytes,
            l.blob.len() as u64,
            "{}:\n{}",
            l.digest,
            case.px.dump()
        );
    }
}

fn cache_cmd(work: &TempDir, args: &[&str]) -> Output {
    pulltar_in(work.path(), args)
}

#[test]
fn cache_ls_and_prune() {
    let case = Case::big(2, 300 << 10);
    let res = case.pull(&[]);
    assert_eq!(res.code, 0, "{res}");
    let cache = case.cache();
    let dir = cache.to_str().unwrap();
    let ls = cache_cmd(&case.work, &["cache", "ls", "--cache-dir", dir]).ok("cache ls");
    for l in &case.img.layers {
        assert!(ls.stdout.contains(&l.digest), "{ls}");
    }
    assert!(ls.stdout.contains(&case.img.config_digest), "{ls}");
    assert!(ls.stdout.contains("Total: 3 blobs, "), "{ls}");
    // A stale partial download from some earlier, killed pull.
    let stale = cache.join(format!("tmp/{}.partial", "ab".repeat(32)));
    std::fs::write(&stale, vec![0u8; 1000]).unwrap();
    let touched = Command::new("touch")
        .args(["-d", "40 days ago", stale.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(touched.success());
    let kept = cache_cmd(
        &case.work,
        &["cache", "prune", "--older-than", "30d", "--cache-dir", dir],
    )
    .ok("cache prune --older-than");
    assert!(
        kept.stdout
            .contains("Removed 0 blobs and 1 partial downloads: 1.0 KB freed; kept 3 newer blobs"),
        "{kept}"
    );
    assert!(!stale.exists());
    let all = cache_cmd(&case.work, &["cache", "prune", "--cache-dir", dir]).ok("cache prune");
    let size: u64 = case
        .img
        .layers
        .iter()
        .map(|l| l.blob.len() as u64)
        .sum::<u64>()
        + case.img.config.len() as u64;
    assert!(
        all.stdout.contains(&format!(
            "Removed 3 blobs and 0 partial downloads: {} freed",
            human(size)
        )),
        "{all}"
    );
    let ls = cache_cmd(&case.work, &["cache", "ls", "--cache-dir", dir]).ok("cache ls");
    assert!(ls.stdout.contains("Total: 0 blobs, 0 B"), "{ls}");
    let bad = cache_cmd(&case.work, &["cache", "prune", "--older-than", "30"]);
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn prune_refuses_while_a_pull_uses_the_cache() {
    let case = Case::big(1, 2 << 20);
    case.px.set_rate(500_000);
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let cache = case.cache();
    let child = Command::new(PULLTAR)
        .args([
            &case.reference(),
            "-o",
            case.out().to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "-q",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pulltar");
    // Wait until the pull is fetching the layer.
    let layer = format!("/blobs/{}", case.img.layers[0].digest);
    let busy = crate::support::util::poll(200, Duration::from_millis(50), || {
        (case.px.body_bytes(&layer) > 0).then_some(())
    });
    assert!(
        busy.is_some(),
        "the pull never started:\n{}",
        case.px.dump()
    );
    let dir = cache.to_str().unwrap();
    let res = cache_cmd(&case.work, &["cache", "prune", "--cache-dir", dir]);
    assert_eq!(res.code, 1, "prune ran under a pull:\n{res}");
    assert!(res.stderr.contains("a pull is using it"), "{res}");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the pull broke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_archive(&case.out(), &case.img, &case.tags());
    let blob = cache
        .join("blobs/sha256")
        .join(hex_of(&case.img.layers[0].digest));
    assert!(blob.is_file());
}

/// pulltar's size format (powers of 1000, one decimal).
fn human(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB"];
    let (mut v, mut u) = (n as f64, 0);
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
