//! The bad-input corpus, local faults: a full disk while downloading (the
//! cache on an 8 MiB tmpfs: a clear error, the partial kept, a rerun after
//! space is freed finishes) and while writing the archive; an output
//! directory that is read-only (a read-only tmpfs, since root ignores
//! permissions) or under a regular file; an existing output left intact by
//! a failed pull; two pulls into one output; SIGINT and SIGTERM while the
//! manifest or a blob is in flight (exit 130, nothing at the output, the
//! rerun works). Mounting needs root: the test fails, saying so, without it.

use super::corpus::{run_case, Case};
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::{
    image_of_layers, push_image, push_simple, raw_layer, Flavor, AMD64, OCI_LAYER,
};
use crate::support::registry::Registry;
use crate::support::util::{list_dir, require_tool, run, Rng, TempDir, PULLTAR};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tmpfs mounted on a fresh directory, unmounted on Drop.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let mount = require_tool("mount", "mount");
        let dir = TempDir::new("tmpfs");
        let mut cmd = Command::new(mount);
        cmd.args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path());
        let res = run(&mut cmd, Duration::from_secs(10));
        assert_eq!(
            res.code, 0,
            "mounting a tmpfs needs root (run the tests as root):\n{res}"
        );
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn remount(&self, options: &str) {
        let mut cmd = Command::new("mount");
        cmd.args(["-o", &format!("remount,{options}")])
            .arg(self.path());
        run(&mut cmd, Duration::from_secs(10)).ok("remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A 12 MB image (three 4 MB uncompressed layers).
fn big_image(reg: &Registry) -> String {
    let mut rng = Rng::new();
    let layers = (0..3)
        .map(|_| raw_layer(&mut rng, OCI_LAYER, 4 << 20))
        .collect();
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, layers);
    push_image(reg, "team/big", Some("v1"), &img);
    format!("{}/team/big:v1", reg.host())
}

fn pull(image: &str, out: &Path, cache: &Path) -> crate::support::util::Output {
    run_case(&Case::new("local", image, 0, &[]), out, cache)
}

fn assert_failed(res: &crate::support::util::Output, out: &Path, needles: &[&str]) {
    assert_eq!(res.code, 1, "{res}");
    for n in needles {
        assert!(res.stderr.contains(n), "stderr should name {n:?}:\n{res}");
    }
    assert!(!out.exists(), "a failed pull left {}", out.display());
    let dir = out.parent().unwrap();
    if dir.is_dir() {
        let stray: Vec<String> = list_dir(dir)
            .into_iter()
            .filter(|f| f.contains("image"))
            .collect();
        assert!(stray.is_empty(), "temp files beside the output: {stray:?}");
    }
}

#[test]
fn corpus_disk_full_while_downloading_keeps_the_partial_for_resume() {
    let reg = Registry::start();
    let image = big_image(&reg);
    let fs = Tmpfs::mount("size=8m");
    let work = TempDir::new("full-dl");
    let out = work.join("image.tar");
    let res = pull(&image, &out, fs.path());
    assert_failed(
        &res,
        &out,
        &["No space left on device", &fs.path().display().to_string()],
    );
    let tmp = fs.path().join("tmp");
    let kept: u64 = list_dir(&tmp)
        .iter()
        .filter(|f| f.ends_with(".partial"))
        .map(|f| std::fs::metadata(tmp.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(
        kept > 0,
        "no partial file kept in {}: {:?}",
        tmp.display(),
        list_dir(&tmp)
    );
    fs.remount("size=64m");
    let again = pull(&image, &out, fs.path());
    assert_eq!(again.code, 0, "the rerun after freeing space:\n{again}");
    assert!(out.is_file());
}

#[test]
fn corpus_disk_full_while_writing_the_archive() {
    let reg = Registry::start();
    let image = big_image(&reg);
    let fs = Tmpfs::mount("size=8m");
    let cache = TempDir::new("full-ar-cache");
    let out = fs.path().join("image.tar");
    let res = pull(&image, &out, cache.path());
    assert_failed(
        &res,
        &out,
        &["No space left on device", &fs.path().display().to_string()],
    );
    assert!(list_dir(fs.path()).is_empty(), "{:?}", list_dir(fs.path()));
}

#[test]
fn corpus_output_not_writable() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let image = format!("{}/team/app:v1", reg.host());
    let cache = TempDir::new("ro-cache");
    let ro = Tmpfs::mount("ro,size=1m");
    let out = ro.path().join("image.tar");
    let res = pull(&image, &out, cache.path());
    assert_failed(
        &res,
        &out,
        &["Read-only file system", &ro.path().display().to_string()],
    );
    let work = TempDir::new("notdir");
    std::fs::write(work.join("file"), b"x").unwrap();
    let out = work.join("file").join("image.tar");
    let res = pull(&image, &out, cache.path());
    // Found before any request: a usage error.
    assert_eq!(res.code, 2, "{res}");
    assert!(
        res.stderr
            .contains(&work.join("file").display().to_string()),
        "{res}"
    );
    assert_eq!(std::fs::read(work.join("file")).unwrap(), b"x");
}

#[test]
fn corpus_failed_pull_keeps_the_existing_output() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    reg.delete_blob("team/app", &img.layers[2].digest);
    let work = TempDir::new("keep-old");
    let out = work.join("image.tar");
    std::fs::write(&out, b"the old archive").unwrap();
    let res = pull(
        &format!("{}/team/app:v1", reg.host()),
        &out,
        &work.join("cache"),
    );
    assert_eq!(res.code, 1, "{res}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the old archive");
    assert_eq!(
        list_dir(work.path()),
        vec!["cache".to_string(), "image.tar".to_string()]
    );
}

#[test]
fn two_pulls_into_one_output_both_succeed() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let work = TempDir::new("two-pulls");
    let out = work.join("image.tar");
    let spawn = |cache: &str| {
        Command::new(PULLTAR)
            .arg(format!("{}/team/app:v1", reg.host()))
            .arg("-o")
            .arg(&out)
            .args(["--cache-dir", work.join(cache).to_str().unwrap(), "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("c1"), spawn("c2"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    crate::support::loaders::check_archive(
        &out,
        &img,
        &["127.0.0.1:".to_string() + &reg.port.to_string() + "/team/app:v1"],
    );
    let files: Vec<String> = list_dir(work.path());
    assert_eq!(files, vec!["c1", "c2", "image.tar"], "no temp file is left");
}

/// Waits (bounded) until the proxy holds a stalled request for `path`,
/// runs `meanwhile`, then sends `signal` to `child` and returns its exit
/// status.
fn signal_when_stalled(
    proxy: &FaultProxy,
    path: &str,
    child: &mut std::process::Child,
    signal: &str,
    meanwhile: impl FnOnce(),
) -> std::process::ExitStatus {
    let seen = crate::support::util::poll(300, Duration::from_millis(50), || {
        proxy
            .requests()
            .iter()
            .any(|r| r.path.contains(path) && r.fault.is_some())
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "no stalled request for {path}:\n{}",
        proxy.dump()
    );
    meanwhile();
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` once the proxy has seen a request for `path`, then
/// checks exit 130, nothing at the output, and that a rerun succeeds.
fn signal_during(signal: &str, path: &str) {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let proxy = FaultProxy::start(reg.port);
    proxy.add(Rule::new(path, Fault::StallAfter(0, Duration::from_secs(30))).times(1));
    let work = TempDir::new("signal");
    let out = work.join("image.tar");
    let cache = work.join("cache");
    let image = format!("{}/team/app:v1", proxy.host());
    let mut child = Command::new(PULLTAR)
        .args([
            &image,
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = signal_when_stalled(&proxy, path, &mut child, signal, || {});
    assert_eq!(status.code(), Some(130), "{signal} during {path}");
    assert!(!out.exists());
    assert_eq!(
        list_dir(work.path()),
        vec!["cache".to_string()],
        "{signal} during {path}"
    );
    let again = pull(&image, &out, &cache);
    assert_eq!(again.code, 0, "rerun after {signal}:\n{again}");
}

#[test]
fn signals_at_several_moments() {
    signal_during("-INT", "/manifests/");
    signal_during("-TERM", "/manifests/");
    signal_during("-TERM", "/blobs/");
    signal_during("-INT", "/blobs/");
}

/// A `--no-cache` pull writes its archive in place while blobs arrive:
/// stuck in a blob request when SIGTERM comes, it must still leave neither
/// the hidden archive beside the output nor its temporary store.
#[test]
fn signal_during_an_in_place_pull_leaves_nothing() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let proxy = FaultProxy::start(reg.port);
    let layer = format!("/blobs/{}", img.layers[0].digest);
    proxy.add(Rule::new(&layer, Fault::StallAfter(0, Duration::from_secs(30))).times(1));
    let work = TempDir::new("signal-inplace");
    let tmp = TempDir::new("signal-tmp");
    let out = work.join("image.tar");
    let image = format!("{}/team/app:v1", proxy.host());
    let mut child = Command::new(PULLTAR)
        .args([&image, "-o", out.to_str().unwrap(), "--no-cache"])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = signal_when_stalled(&proxy, &layer, &mut child, "-TERM", || {
        assert!(
            !list_dir(work.path()).is_empty(),
            "the archive is being written in place beside the output"
        );
    });
    assert_eq!(status.code(), Some(130));
    assert!(
        list_dir(work.path()).is_empty(),
        "{:?}",
        list_dir(work.path())
    );
    assert!(
        list_dir(tmp.path()).is_empty(),
        "{:?}",
        list_dir(tmp.path())
    );
}
