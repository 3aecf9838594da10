//! The Windows exe under Wine, as a Windows user runs it: paths with a
//! drive letter and backslashes, TLS with `--ca-cert` or a CA in Windows'
//! certificate store, a token registry with `-u … --password-stdin` into
//! a default-named file in the working directory (the cache in
//! `%LOCALAPPDATA%\pulltar`), `linux/amd64` picked
//! from a multi-platform image by default, a pull killed partway that the
//! next run finishes with the bytes it had, and Ctrl-C (exit 130, the next
//! run resumes). Every archive is loaded by the Linux loaders (skopeo,
//! podman, dockerd, containerd).

use crate::support::auth_registries::TokenRegistry;
use crate::support::background::{blob_total, wait_for_bytes, Background};
use crate::support::fault_case::Case;
use crate::support::images::{push_index, Flavor, AMD64};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::targets::loads_everywhere;
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::token_server::{PASSWORD, USER};
use crate::support::util::{hex_of, list_dir, TempDir};
use crate::support::wine::{win_path, Wine};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

#[test]
fn windows_exe_pulls_over_tls_with_ca_cert() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let wine = Wine::new();
    let work = TempDir::new("wintls");
    let (out, cache) = (work.join("out.tar"), work.join("cache"));
    let reference = t.reference();
    let args = [
        reference.as_str(),
        "--ca-cert",
        &win_path(&t.pki.ca()),
        "-o",
        &win_path(&out),
        "--cache-dir",
        &win_path(&cache),
    ];
    let res = wine.run(work.path(), &args, None);
    assert_eq!(res.code, 0, "pulltar.exe over TLS:\n{res}");
    loads_everywhere(&out, &t.img, &reference);
    assert_eq!(
        t.manifest_gets(),
        vec![200],
        "{}",
        t.front.describe("front")
    );
}

/// A CA that only Windows' certificate store holds (no `--ca-cert`) is
/// trusted, as the Linux system store is: without it there, the same
/// pull is refused.
#[test]
fn windows_exe_trusts_the_windows_certificate_store() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let wine = Wine::new();
    let work = TempDir::new("winstore");
    let out = work.join("out.tar");
    let reference = t.reference();
    let args = [
        reference.as_str(),
        "-o",
        &win_path(&out),
        "--no-cache",
        "-v",
    ];
    let res = wine.run(work.path(), &args, None);
    assert_eq!(res.code, 1, "trusted without the CA in the store:\n{res}");
    assert!(res.stderr.contains("is not trusted"), "{res}");
    let res = wine.run_with_store_roots(work.path(), &args, &t.pki.ca());
    assert_eq!(res.code, 0, "with the CA in Windows' store:\n{res}");
    assert!(
        res.stderr
            .contains("CA certificates from the system's certificate store"),
        "{res}"
    );
    loads_everywhere(&out, &t.img, &reference);
}

#[test]
fn windows_exe_pulls_from_a_token_registry_into_a_default_named_file() {
    let t = TokenRegistry::start("private/app");
    let wine = Wine::new();
    let work = TempDir::new("wintok");
    let reference = t.reference();
    let args = [reference.as_str(), "-u", USER, "--password-stdin"];
    let res = wine.run(work.path(), &args, Some(PASSWORD.as_bytes()));
    assert_eq!(res.code, 0, "pulltar.exe with --password-stdin:\n{res}");
    t.assert_nothing_leaked(&res);
    assert_eq!(work.list(), ["private_app_v1.tar"], "{res}");
    let blobs = wine.local_app_data().join("pulltar/blobs/sha256");
    for l in &t.img.layers {
        let cached = blobs.join(hex_of(&l.digest));
        assert!(
            cached.is_file(),
            "the default cache lacks {}",
            cached.display()
        );
    }
    loads_everywhere(&work.join("private_app_v1.tar"), &t.img, &reference);
}

/// Windows users pull Linux images to carry to Linux hosts: the default
/// is linux/amd64 (the Docker list is ordered arm/v7, arm64, amd64).
#[test]
fn windows_exe_picks_linux_amd64_by_default() {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winplat");
    let out = work.join("out.tar");
    let reference = format!("{}/team/multi:v1", reg.host());
    let args = [reference.as_str(), "-o", &win_path(&out), "--no-cache"];
    let res = wine.run(work.path(), &args, None);
    assert_eq!(res.code, 0, "pulltar.exe of a multi-platform image:\n{res}");
    check_archive(&out, index.child(&AMD64), &[reference]);
}

/// The exe under Wine in the background on the case's image.
fn start_exe(wine: &Wine, case: &Case, extra: &[&str]) -> Background {
    let mut cmd = wine.pulltar(case.work.path());
    cmd.arg(case.reference())
        .arg("-o")
        .arg(win_path(&case.out()))
        .arg("--cache-dir")
        .arg(win_path(&case.cache()))
        .args(extra)
        .env("PULLTAR_RETRY_DELAY_MS", "50");
    Background::start(cmd)
}

fn assert_no_partials(case: &Case) {
    let tmp = case.cache().join("tmp");
    let left: Vec<String> = match tmp.is_dir() {
        true => list_dir(&tmp),
        false => vec![],
    };
    assert!(
        left.iter().all(|n| !n.ends_with(".partial")),
        "partials left: {left:?}"
    );
}

#[test]
fn windows_exe_killed_partway_finishes_on_the_next_run() {
    let case = Case::big(2, 8 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let wine = Wine::new();
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let mut first = start_exe(&wine, &case, &["-t", "2"]);
    wait_for_bytes(&case, &mut first, total * 40 / 100);
    let res = first.kill();
    assert_eq!(res.code, -1, "the killed pull exited by itself:\n{res}");
    assert!(
        list_dir(&case.work.join("out")).is_empty(),
        "output after a kill"
    );
    case.px.settled();
    let before = case.px.body_bytes("/blobs/");
    let res = start_exe(&wine, &case, &["-t", "2"]).wait(Duration::from_secs(180));
    assert_eq!(res.code, 0, "the second run:\n{res}\n{}", case.px.dump());
    case.px.settled();
    let sent = case.px.body_bytes("/blobs/");
    assert!(
        sent as f64 <= 1.05 * total as f64,
        "{sent} blob bytes relayed over two runs for {total} bytes of blobs \
         ({before} before the kill):\n{}",
        case.px.dump()
    );
    assert_no_partials(&case);
    loads_everywhere(&case.out(), &case.img, &case.reference());
}

/// Ctrl-C (SIGINT, which Wine turns into the console's Ctrl-C): exit 130
/// within seconds, nothing at the output path, and the next run fetches
/// only what was missing.
#[test]
fn windows_exe_ctrl_c_exits_130_and_the_next_run_resumes() {
    let case = Case::big(2, 8 * MIB);
    let total = blob_total(&case);
    case.px.set_rate(4 * MIB as u64);
    let wine = Wine::new();
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let mut first = start_exe(&wine, &case, &["-t", "2"]);
    wait_for_bytes(&case, &mut first, total * 35 / 100);
    let t0 = Instant::now();
    first.interrupt();
    let res = first.wait(Duration::from_secs(20));
    let took = t0.elapsed();
    assert_eq!(res.code, 130, "Ctrl-C should exit 130:\n{res}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop after Ctrl-C"
    );
    assert!(res.stderr.to_lowercase().contains("interrupt"), "{res}");
    assert!(
        list_dir(&case.work.join("out")).is_empty(),
        "output after Ctrl-C"
    );
    case.px.settled();
    let before = case.px.body_bytes("/blobs/");
    let res = start_exe(&wine, &case, &["-t", "2"]).wait(Duration::from_secs(180));
    assert_eq!(res.code, 0, "the rerun:\n{res}\n{}", case.px.dump());
    case.px.settled();
    let rerun = case.px.body_bytes("/blobs/") - before;
    let slack = 4 * 256 * 1024 + 64 * 1024;
    assert!(
        rerun <= total - before.min(total) + slack,
        "the rerun fetched {rerun} bytes; {before} of {total} came before Ctrl-C:\n{}",
        case.px.dump()
    );
    assert_no_partials(&case);
    check_archive(&case.out(), &case.img, &case.tags());
}
