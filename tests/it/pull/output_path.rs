//! What `-o` names, other than a plain file or directory: a symlink (its
//! target gets the archive, the link stays a link; a dangling link's
//! target is created), a named pipe and `/dev/null` (the archive written
//! through, byte for byte the archive a file gets; the node stays what it
//! was), a unix socket (refused with exit 2, left as it was), and a failed
//! pull through a symlink (its target unchanged); and the Windows exe
//! under Wine writing through `-o NUL`.

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::loaders::{check_archive, skopeo_inspect};
use crate::support::registry::Registry;
use crate::support::util::{list_dir, pulltar_in, TempDir};
use crate::support::wine::Wine;

/// A registry holding a small image as team/out:v1, and its reference.
fn pushed() -> (Registry, Image, String) {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/out", "v1", Flavor::Docker);
    let reference = format!("{}/team/out:v1", reg.host());
    (reg, img, reference)
}

/// Runs `pulltar REFERENCE -o OUT EXTRA...` in `work`, its cache in
/// `work/cache` (unless `EXTRA` says `--no-cache`).
fn pull_to(
    work: &TempDir,
    reference: &str,
    out: &Path,
    extra: &[&str],
) -> crate::support::util::Output {
    let cache = work.join("cache");
    let mut args = vec![reference, "-o", out.to_str().unwrap()];
    if !extra.contains(&"--no-cache") {
        args.extend(["--cache-dir", cache.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    pulltar_in(work.path(), &args)
}

/// The archive at `tar` is `img`, as tagged, and skopeo reads it.
fn loads(tar: &Path, img: &Image, reference: &str) {
    check_archive(tar, img, &[reference.to_string()]);
    let inspected = skopeo_inspect(tar);
    assert_eq!(
        inspected["Layers"].as_array().map(Vec::len),
        Some(img.layers.len())
    );
}

fn is_link_to(link: &Path, target: &Path) -> bool {
    let meta = std::fs::symlink_metadata(link).unwrap();
    meta.file_type().is_symlink() && std::fs::read_link(link).unwrap() == target
}

#[test]
fn symlink_output_replaces_the_target_and_keeps_the_link() {
    let (_reg, img, reference) = pushed();
    let work = TempDir::new("olink");
    for dir in ["links", "files"] {
        std::fs::create_dir(work.join(dir)).unwrap();
    }
    let target = work.join("files/real.tar");
    std::fs::write(&target, b"an older file").unwrap();
    // Relative to the link's own folder, not to the current directory.
    let relative = Path::new("../files/real.tar");
    symlink(relative, work.join("links/link.tar")).unwrap();
    // In place with the temporary in the cache, in place beside the
    // target (--no-cache), and streamed into a file (--uncompressed).
    for extra in [&[][..], &["--no-cache"], &["--uncompressed"]] {
        let res = pull_to(&work, &reference, Path::new("links/link.tar"), extra);
        assert_eq!(res.code, 0, "{extra:?}:\n{res}");
        assert!(is_link_to(&work.join("links/link.tar"), relative));
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        match extra {
            ["--uncompressed"] => {
                let inspected = skopeo_inspect(&target);
                assert_eq!(
                    inspected["Layers"].as_array().map(Vec::len),
                    Some(img.layers.len())
                );
            }
            _ => loads(&target, &img, &reference),
        }
        assert_eq!(list_dir(&work.join("links")), ["link.tar"], "{extra:?}");
        assert_eq!(list_dir(&work.join("files")), ["real.tar"], "{extra:?}");
    }
}

#[test]
fn dangling_symlink_output_creates_its_target() {
    let (_reg, img, reference) = pushed();
    let work = TempDir::new("odangle");
    std::fs::create_dir(work.join("files")).unwrap();
    let target = work.join("files/new.tar");
    let link = work.join("link.tar");
    symlink(&target, &link).unwrap();
    let res = pull_to(&work, &reference, &link, &[]);
    assert_eq!(res.code, 0, "{res}");
    assert!(is_link_to(&link, &target));
    loads(&target, &img, &reference);
    assert_eq!(list_dir(&work.join("files")), ["new.tar"]);
    // A link into a folder that does not exist: a usage error, nothing made.
    let nowhere = work.join("nowhere/new.tar");
    let bad = work.join("bad.tar");
    symlink(&nowhere, &bad).unwrap();
    let res = pull_to(&work, &reference, &bad, &[]);
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains("nowhere"), "{res}");
    assert!(is_link_to(&bad, &nowhere));
    assert!(!work.join("nowhere").exists());
}

/// `cat FIFO > COPY`, started before the pull opens the pipe.
fn reader(fifo: &Path, copy: &Path) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(r#"exec cat "$1" > "$2""#)
        .args(["sh", fifo.to_str().unwrap(), copy.to_str().unwrap()])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `child` (up to a minute), killing it if it hangs.
fn finished(mut child: std::process::Child) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn fifo_output_gets_the_archive_written_through() {
    let (_reg, img, reference) = pushed();
    let work = TempDir::new("ofifo");
    let plain = work.join("plain.tar");
    let res = pull_to(&work, &reference, &plain, &[]);
    assert_eq!(res.code, 0, "{res}");
    let fifo = work.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let copy = work.join("copy.tar");
    let cat = reader(&fifo, &copy);
    let res = pull_to(&work, &reference, &fifo, &[]);
    assert_eq!(res.code, 0, "{res}");
    assert!(finished(cat), "the reader of the pipe did not end");
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(&plain).unwrap(),
        "the pipe's reader got other bytes than -o FILE wrote"
    );
    loads(&copy, &img, &reference);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the pipe was replaced: {kind:?}");
    assert_eq!(
        list_dir(work.path()),
        ["cache", "copy.tar", "fifo", "plain.tar"]
    );
    // A failed pull still opens the pipe: its reader sees the end.
    let cat = reader(&fifo, &copy);
    let missing = reference.replace("team/out", "team/missing");
    let res = pull_to(&work, &missing, &fifo, &[]);
    assert_ne!(res.code, 0, "{res}");
    assert!(
        finished(cat),
        "the reader of the pipe hangs after a failed pull"
    );
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), 0);
}

/// `stat`'s name for the type of the file at `path`.
fn stat_type(path: &str) -> String {
    let out = Command::new("stat")
        .args(["-c", "%F", path])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn dev_null_output_stays_a_device() {
    let (_reg, _img, reference) = pushed();
    let work = TempDir::new("onull");
    assert_eq!(stat_type("/dev/null"), "character special file");
    let res = pull_to(&work, &reference, Path::new("/dev/null"), &[]);
    let after = stat_type("/dev/null");
    if after != "character special file" {
        // Put the machine's /dev/null back before failing (as root it
        // could have been replaced).
        let _ = std::fs::remove_file("/dev/null");
        let _ = Command::new("mknod")
            .args(["-m", "666", "/dev/null", "c", "1", "3"])
            .status();
    }
    assert_eq!(after, "character special file", "{res}");
    assert_eq!(res.code, 0, "{res}");
    assert!(res.stderr.contains("-> /dev/null"), "{res}");
}

#[test]
fn socket_output_is_refused_and_left_alone() {
    // A port nothing listens on: contacting it would be another error.
    let reference = "127.0.0.1:1/team/out:v1";
    let work = TempDir::new("osock");
    let socket = work.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let res = pull_to(&work, reference, &socket, &[]);
    assert_eq!(res.code, 2, "{res}");
    for word in ["sock", "a socket", "name a file"] {
        assert!(res.stderr.contains(word), "{word:?} not said:\n{res}");
    }
    let kind = std::fs::symlink_metadata(&socket).unwrap().file_type();
    assert!(kind.is_socket(), "{kind:?}");
}

#[test]
fn failed_pull_through_a_symlink_leaves_the_target() {
    let (_reg, _img, reference) = pushed();
    let work = TempDir::new("ofail");
    std::fs::create_dir(work.join("files")).unwrap();
    let target = work.join("files/kept.tar");
    std::fs::write(&target, b"precious").unwrap();
    let link = work.join("link.tar");
    symlink(&target, &link).unwrap();
    let missing = reference.replace("team/out", "team/missing");
    let res = pull_to(&work, &missing, &link, &[]);
    assert_ne!(res.code, 0, "{res}");
    assert_ne!(res.code, 2, "not a usage error: {res}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(is_link_to(&link, &target));
    assert_eq!(list_dir(&work.join("files")), ["kept.tar"]);
}

#[test]
fn windows_exe_writes_through_nul() {
    let (_reg, _img, reference) = pushed();
    let wine = Wine::new();
    let work = TempDir::new("onulw");
    let res = wine.run(work.path(), &[&reference, "-o", "NUL", "--no-cache"], None);
    assert_eq!(res.code, 0, "{res}");
    assert!(res.stderr.contains(r"onulw\NUL"), "{res}");
    assert!(work.list().is_empty(), "{:?}", work.list());
}
