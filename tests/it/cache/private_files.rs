//! The cache is the user's alone, and a cache someone prepared cannot
//! turn a pull against other files (issue 22): under `umask 022` a pull
//! leaves the cache's folders 0700 and its files 0600 (the `blobs/` of an
//! older pulltar made 0700 too, the folder the user chose left as it is)
//! while the archive at `-o` gets the umask
//! (0644, 0600 under `umask 077`), and a `--no-cache` pull's temporary
//! store is 0700 while it runs; a symbolic link planted at a partial
//! blob's or a journal's path leaves the file it points to untouched and
//! the pull succeeds; a cache folder others may write in is refused; a
//! manifest giving a cached blob a wrong size keeps the good blob and
//! fails naming the digest and both sizes; a decompression temporary left
//! by a dead pull is removed by `cache prune` and by the next pull.
//! Unix only: modes, umask and symbolic links as Unix has them.
#![cfg(unix)]

use crate::support::fault_case::Case;
use crate::support::images::{push_simple, Flavor, Image};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::util::{
    hex_of, no_docker_hub, pulltar_in, run, sha256_hex, Output, TempDir, PULLTAR,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `pulltar ARGS` in `work` under `umask UMASK` (through sh, as a shell
/// user runs it).
fn pulltar_umask(work: &TempDir, umask: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(PULLTAR)
        .args(args)
        .current_dir(work.path())
        .env_remove("RUST_LOG")
        .env("PULLTAR_DOCKER_HUB", no_docker_hub());
    run(&mut cmd, Duration::from_secs(180))
}

/// Every folder and file under `dir`, `dir` included.
fn tree(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![dir.to_path_buf()], vec![]);
    let mut i = 0;
    while i < dirs.len() {
        for e in std::fs::read_dir(&dirs[i]).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
        i += 1;
    }
    (dirs, files)
}

/// A registry holding `team/app:v1`, and its reference.
fn registry() -> (Registry, Image, String) {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let name = format!("{}/team/app:v1", reg.host());
    (reg, img, name)
}

fn cached(cache: &Path, digest: &str) -> PathBuf {
    cache.join("blobs/sha256").join(hex_of(digest))
}

#[test]
fn the_cache_is_private_and_the_archive_gets_the_umask() {
    let (_reg, img, name) = registry();
    let work = TempDir::new("modes");
    let cache = work.join("cache");
    // A cache an older pulltar made under umask 022.
    std::fs::create_dir_all(cache.join("blobs")).unwrap();
    set_mode(&cache, 0o755);
    set_mode(&cache.join("blobs"), 0o755);
    let dir = cache.to_str().unwrap();
    let res = pulltar_umask(&work, "022", &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&work.join("a.tar"), &img, std::slice::from_ref(&name));
    assert_eq!(
        mode(&work.join("a.tar")),
        0o644,
        "the archive, as cp gives it"
    );
    let (dirs, files) = tree(&cache);
    assert!(dirs.len() >= 4, "{dirs:?}");
    // The root may be a folder the user chose: left as it is.
    assert_eq!(mode(&cache), 0o755);
    for d in &dirs[1..] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    assert!(files.len() >= 5, "lock, config, 3 layers: {files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let res = pulltar_umask(&work, "077", &[&name, "-o", "b.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(mode(&work.join("b.tar")), 0o600);
    // A new cache is 0700 from the start.
    let fresh = work.join("fresh/cache");
    let dir = fresh.to_str().unwrap();
    let res = pulltar_umask(&work, "022", &[&name, "-o", "d.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(mode(&fresh), 0o700);
    let res = pulltar_umask(&work, "002", &[&name, "-o", "c.tar", "--no-cache"]);
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(mode(&work.join("c.tar")), 0o664);
}

#[test]
fn a_no_cache_pulls_temporary_store_is_private() {
    let case = Case::big(1, 2 << 20);
    case.px.set_rate(1_000_000);
    let temp = case.work.join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$@\"")
        .arg("sh")
        .arg(PULLTAR)
        .args([&case.reference(), "-o", case.out().to_str().unwrap()])
        .args(["--no-cache", "-q"])
        .env("TMPDIR", &temp)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let store = crate::support::util::poll(200, Duration::from_millis(50), || {
        let found = crate::support::util::list_dir(&temp);
        let name = found.iter().find(|n| n.starts_with("pulltar-"))?;
        let root = temp.join(name);
        root.join("tmp").is_dir().then_some(root)
    });
    let store = store.expect("the temporary store never appeared");
    let (dirs, files) = tree(&store);
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&case.out()), 0o644);
    assert!(!store.exists(), "the temporary store was left");
}

#[test]
fn a_link_planted_in_tmp_is_replaced_and_what_it_points_to_untouched() {
    let (_reg, img, name) = registry();
    let work = TempDir::new("planted");
    let cache = work.join("cache");
    let tmp = cache.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    set_mode(&cache, 0o700);
    let mut victims = Vec::new();
    for (i, layer) in img.layers.iter().enumerate() {
        let victim = work.join(&format!("victim{i}"));
        std::fs::write(&victim, format!("precious {i}\n")).unwrap();
        let hex = hex_of(&layer.digest);
        // The partial blob of the first layer, the journal of the second,
        // both for the third.
        let planted: &[&str] = match i {
            0 => &["partial"],
            1 => &["journal"],
            _ => &["partial", "journal"],
        };
        for ext in planted {
            std::os::unix::fs::symlink(&victim, tmp.join(format!("{hex}.{ext}"))).unwrap();
        }
        victims.push(victim);
    }
    let dir = cache.to_str().unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    // The links are removed and the pull goes on: tmp/ holds only files
    // pulltar made and may remove at any time, so a link there is not the
    // user's (who owns the folder, checked), and refusing would leave
    // every later pull stuck on it.
    assert_eq!(res.code, 0, "{res}");
    assert!(res.stderr.contains("symbolic link"), "{res}");
    for (i, victim) in victims.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(victim).unwrap(),
            format!("precious {i}\n"),
            "written through the link"
        );
    }
    check_archive(&work.join("a.tar"), &img, std::slice::from_ref(&name));
    for l in &img.layers {
        let blob = cached(&cache, &l.digest);
        assert!(!std::fs::symlink_metadata(&blob).unwrap().is_symlink());
        assert_eq!(
            sha256_hex(&std::fs::read(&blob).unwrap()),
            hex_of(&l.digest)
        );
    }
}

#[test]
fn a_cache_folder_others_may_write_in_is_refused() {
    let (_reg, _img, name) = registry();
    let work = TempDir::new("open");
    let cache = work.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    set_mode(&cache, 0o777);
    let dir = cache.to_str().unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 1, "{res}");
    for what in [
        dir,
        "other users may write in it (mode 0777)",
        "chmod 700",
        "--cache-dir",
    ] {
        assert!(res.stderr.contains(what), "no {what:?} in:\n{res}");
    }
    assert_eq!(mode(&cache), 0o777, "left as it was");
    assert!(!work.join("a.tar").exists() && !cache.join("blobs").exists());
    let res = pulltar_in(work.path(), &["cache", "prune", "--cache-dir", dir]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("other users may write"), "{res}");
    // A folder inside it, the same.
    set_mode(&cache, 0o700);
    std::fs::create_dir_all(cache.join("tmp")).unwrap();
    set_mode(&cache.join("tmp"), 0o757);
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains(&format!("{dir}/tmp")), "{res}");
    set_mode(&cache.join("tmp"), 0o755);
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(
        res.code, 0,
        "a 0755 folder is made private, not refused:\n{res}"
    );
    assert_eq!(mode(&cache.join("tmp")), 0o700);
}

#[test]
fn a_manifest_giving_a_cached_blob_a_wrong_size_keeps_the_blob() {
    let (reg, img, name) = registry();
    let work = TempDir::new("size");
    let cache = work.join("cache");
    let dir = cache.to_str().unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    let layer = &img.layers[0];
    let real = layer.blob.len();
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    manifest["layers"][0]["size"] = serde_json::json!(real + 1);
    let body = serde_json::to_vec(&manifest).unwrap();
    reg.put_manifest("team/app", "lying", img.media_type, &body);
    let lying = format!("{}/team/app:lying", reg.host());
    let blob = cached(&cache, &layer.digest);
    for extra in [&[][..], &["--verify-cache"][..]] {
        let mut args = vec![lying.as_str(), "-o", "b.tar", "--cache-dir", dir];
        args.extend_from_slice(extra);
        let res = pulltar_in(work.path(), &args);
        assert_eq!(res.code, 1, "{extra:?}: {res}");
        let (given, held) = (
            format!("gives {} bytes", real + 1),
            format!("has {real} bytes"),
        );
        for what in [layer.digest.as_str(), &given, &held] {
            assert!(
                res.stderr.contains(what),
                "{extra:?}: no {what:?} in:\n{res}"
            );
        }
        assert_eq!(
            sha256_hex(&std::fs::read(&blob).unwrap()),
            hex_of(&layer.digest),
            "the good blob was not kept"
        );
    }
    // Damage of another size is removed and fetched again.
    std::fs::write(&blob, b"damaged").unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "c.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&work.join("c.tar"), &img, std::slice::from_ref(&name));
    assert_eq!(std::fs::read(&blob).unwrap(), layer.blob);
}

/// A temporary named as a decompressed layer's of a process that ended,
/// last written two hours ago.
fn leftover(tmp: &Path, digest: &str) -> PathBuf {
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let path = tmp.join(format!("{}.tar.{dead}.1a2b.tmp", hex_of(digest)));
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    path
}

#[test]
fn a_dead_pulls_decompression_temporary_is_swept() {
    let (_reg, img, name) = registry();
    let work = TempDir::new("sweep");
    let cache = work.join("cache");
    let dir = cache.to_str().unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "a.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    let tmp = cache.join("tmp");
    let diff_id = &img.layers[0].diff_id;
    let left = leftover(&tmp, diff_id);
    // A live process's (this test's), written just now: kept by a pull.
    let live = tmp.join(format!(
        "{}.tar.{}.9.tmp",
        hex_of(diff_id),
        std::process::id()
    ));
    std::fs::write(&live, b"busy").unwrap();
    let res = pulltar_in(
        work.path(),
        &["cache", "prune", "--older-than", "30d", "--cache-dir", dir],
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(!left.exists() && !live.exists(), "prune left them:\n{res}");
    assert!(
        res.stdout
            .contains("Removed 0 blobs and 2 partial downloads"),
        "{res}"
    );
    let left = leftover(&tmp, diff_id);
    std::fs::write(&live, b"busy").unwrap();
    let res = pulltar_in(work.path(), &[&name, "-o", "b.tar", "--cache-dir", dir]);
    assert_eq!(res.code, 0, "{res}");
    assert!(!left.exists(), "the next pull left a dead pull's temporary");
    assert!(
        live.exists(),
        "the next pull removed a running pull's temporary"
    );
}
