//! `pulltar push --dry-run` against the real registry: into an empty
//! registry every blob is listed as to upload and the tag as to be
//! created with the archive's digest, and afterwards the registry has no
//! such repository, tag or manifest and its access log shows no `POST`,
//! `PUT`, `PATCH` or `DELETE`; after the real push (whose counts agree
//! with the dry run's) every blob is listed as there and the tag as
//! unchanged; an archive that adds a second repository lists its blobs as
//! mounted from the first, as its push then mounts them. With `-q` nothing
//! but errors is printed; a wrong password fails as the push would; a
//! registry nothing answers at is said so (exit 1) after a list of every
//! blob as to upload.

use super::roundtrip::{path, pull_from, push_ok};
use crate::support::auth_registries::{BasicRegistry, BUSER, STALE};
use crate::support::images::{push_simple, Flavor};
use crate::support::registry::{agent, Registry};
use crate::support::user_env::{assert_no_secrets, Client};
use crate::support::util::{pulltar_in, Output};

/// The requests in `reg`'s access log that would change it.
fn writes(reg: &Registry) -> Vec<String> {
    reg.log()
        .lines()
        .filter(|l| {
            ["\"POST ", "\"PUT ", "\"PATCH ", "\"DELETE "]
                .iter()
                .any(|m| l.contains(m))
        })
        .map(str::to_string)
        .collect()
}

/// How many `HEAD`s `reg`'s access log shows (the dry run's questions).
fn heads(reg: &Registry) -> usize {
    reg.log()
        .lines()
        .filter(|l| l.contains("\"HEAD /v2/"))
        .count()
}

/// The number before `word` in `text`'s line starting with `start`
/// (e.g. `"3 would upload"`).
fn count(text: &str, start: &str, word: &str) -> usize {
    let line = text
        .lines()
        .find(|l| l.contains(start))
        .unwrap_or_else(|| panic!("no line with {start:?} in:\n{text}"));
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    let n = line[..at].trim_end().rsplit(' ').next().unwrap_or("");
    n.parse()
        .unwrap_or_else(|_| panic!("no count before {word:?} in {line:?}"))
}

/// The blob lines of a dry run's output.
fn blob_lines(out: &Output) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("blob sha256:"))
        .collect()
}

/// The HTTP status of `GET`/`HEAD` on `path` of `reg`.
fn status(reg: &Registry, method: &str, path: &str) -> u16 {
    let url = reg.url(path);
    let req = match method {
        "HEAD" => agent().head(&url).call(),
        _ => agent().get(&url).call(),
    };
    req.map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

#[test]
fn lists_uploads_then_nothing_then_mounts_and_writes_nothing() {
    let src = Registry::start();
    let img = push_simple(&src, "team/app", "v1", Flavor::Docker);
    let (work, tar) = pull_from(&src, "team/app:v1", &[]);
    let dst = Registry::start();
    let dest = format!("{}/mirror", dst.host());
    let name = format!("{}/mirror/team/app:v1", dst.host());
    let blobs = img.layers.len() + 1;

    // Into an empty registry: every blob to upload, the tag to create.
    let dry = push_ok(&work, &["--dry-run", path(&tar), &dest]);
    let lines = blob_lines(&dry);
    assert_eq!(lines.len(), blobs, "one line per blob:\n{dry}");
    for l in &lines {
        assert!(l.ends_with("would upload to mirror/team/app"), "{l}\n{dry}");
    }
    for layer in &img.layers {
        assert!(
            dry.stdout.contains(&layer.digest),
            "{} listed:\n{dry}",
            layer.digest
        );
    }
    assert!(dry.stdout.contains(&img.config_digest), "{dry}");
    let created = format!("{name}: would be created as {}", img.manifest_digest);
    assert!(dry.stdout.contains(&created), "{created:?} in:\n{dry}");
    assert_eq!(
        count(&dry.stdout, "Dry run", "would upload"),
        blobs,
        "{dry}"
    );
    assert!(
        heads(&dst) >= blobs,
        "the dry run asked with HEADs:\n{}",
        dst.log()
    );
    assert_eq!(writes(&dst), Vec::<String>::new(), "the dry run wrote");
    let catalog = agent()
        .get(&dst.url("/v2/_catalog"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(!catalog.contains("mirror"), "no repository: {catalog}");
    assert_eq!(status(&dst, "GET", "/v2/mirror/team/app/tags/list"), 404);
    let by_digest = format!("/v2/mirror/team/app/manifests/{}", img.manifest_digest);
    assert_eq!(status(&dst, "HEAD", &by_digest), 404);
    assert_eq!(
        status(&dst, "HEAD", "/v2/mirror/team/app/manifests/v1"),
        404
    );

    // The push does what the dry run said, in the same counts.
    let pushed = push_ok(&work, &[path(&tar), &dest]);
    assert_eq!(
        count(&pushed.stderr, "Blobs:", "uploaded"),
        blobs,
        "{pushed}"
    );
    assert_eq!(
        count(&pushed.stderr, "Blobs:", "already there"),
        0,
        "{pushed}"
    );
    assert_eq!(count(&pushed.stderr, "Blobs:", "mounted"), 0, "{pushed}");
    assert_eq!(status(&dst, "HEAD", &by_digest), 200);

    // After it: every blob there, the tag unchanged, nothing written.
    let before = writes(&dst).len();
    let again = push_ok(&work, &["--dry-run", path(&tar), &dest]);
    let lines = blob_lines(&again);
    assert_eq!(lines.len(), blobs, "{again}");
    for l in &lines {
        assert!(l.ends_with("already in mirror/team/app"), "{l}\n{again}");
    }
    let same = format!("{name}: already {}, unchanged", img.manifest_digest);
    assert!(again.stdout.contains(&same), "{same:?} in:\n{again}");
    assert_eq!(count(&again.stdout, "Dry run", "would upload"), 0);
    assert_eq!(count(&again.stdout, "Dry run", "already there"), blobs);
    assert_eq!(writes(&dst).len(), before, "the second dry run wrote");

    // The same image under a second name of the registry it came from:
    // pushed, its new repository mounts every blob from the first.
    let copy = format!("{}/team/copy:v1", src.host());
    push_ok(&work, &[path(&tar), &copy]);
    let two = work.join("two.tar");
    let from = format!("{}/team/app:v1", src.host());
    let res = pulltar_in(work.path(), &[&from, &copy, "-o", path(&two)]);
    assert_eq!(res.code, 0, "{res}");
    let dry = push_ok(&work, &["--dry-run", path(&two), &dest]);
    let mounts = "would mount into mirror/team/copy from mirror/team/app";
    let lines = blob_lines(&dry);
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(mounts)).count(),
        blobs,
        "{dry}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("already in mirror/team/app"))
            .count(),
        blobs,
        "{dry}"
    );
    assert_eq!(count(&dry.stdout, "Dry run", "would mount"), blobs, "{dry}");
    assert_eq!(writes(&dst).len(), before, "the third dry run wrote");
    let pushed = push_ok(&work, &[path(&two), &dest]);
    assert_eq!(
        count(&pushed.stderr, "Blobs:", "mounted"),
        blobs,
        "{pushed}"
    );
    assert_eq!(count(&pushed.stderr, "Blobs:", "already there"), blobs);
    assert_eq!(count(&pushed.stderr, "Blobs:", "uploaded"), 0, "{pushed}");
    let mounted = writes(&dst)
        .iter()
        .filter(|l| l.contains("mount=") && l.contains("from=mirror"))
        .count();
    assert_eq!(mounted, blobs, "the push mounted as said:\n{}", dst.log());
}

#[test]
fn quiet_a_wrong_password_and_no_registry() {
    let src = Registry::start();
    let img = push_simple(&src, "team/app", "v1", Flavor::Oci);
    let (work, tar) = pull_from(&src, "team/app:v1", &[]);

    // -q: nothing but errors, exit 0; still nothing written.
    let dst = Registry::start();
    let dest = format!("{}/q", dst.host());
    let quiet = push_ok(&work, &["--dry-run", "-q", path(&tar), &dest]);
    assert_eq!(
        (quiet.stdout.as_str(), quiet.stderr.as_str()),
        ("", ""),
        "{quiet}"
    );
    assert!(
        heads(&dst) > 0,
        "the quiet dry run still asked:\n{}",
        dst.log()
    );
    assert_eq!(
        writes(&dst),
        Vec::<String>::new(),
        "the quiet dry run wrote"
    );

    // A wrong password fails the dry run as it fails the push: no list.
    let b = BasicRegistry::start();
    let c = Client::new();
    let wrong = format!("{STALE}\n");
    let dest = format!("{}/other", b.reg.host());
    let args = [
        "push",
        "--dry-run",
        "-u",
        BUSER,
        "--password-stdin",
        path(&tar),
        &dest,
    ];
    let res = c.run(&args, &[], Some(wrong.as_bytes()));
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("refused the push"), "{res}");
    assert!(
        !res.stdout.contains("would"),
        "no list after a refusal:\n{res}"
    );
    assert_no_secrets(&res, BUSER, &[STALE]);
    let into_other: Vec<String> = writes(&b.reg)
        .into_iter()
        .filter(|l| l.contains(" /v2/other/"))
        .collect();
    assert_eq!(
        into_other,
        Vec::<String>::new(),
        "the refused dry run wrote"
    );

    // Nothing listens there: said so, after every blob as to upload.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let res = pulltar_in(
        work.path(),
        &[
            "push",
            "--dry-run",
            "--retries",
            "1",
            path(&tar),
            &format!("127.0.0.1:{port}/x"),
        ],
    );
    assert_eq!(res.code, 1, "{res}");
    let lines = blob_lines(&res);
    assert_eq!(lines.len(), img.layers.len() + 1, "{res}");
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with("would upload to x/team/app")),
        "{res}"
    );
    assert!(
        res.stderr.contains("nothing there could be checked"),
        "{res}"
    );
}
