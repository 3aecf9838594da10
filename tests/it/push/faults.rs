//! `pulltar push` when things go wrong: nginx with `client_max_body_size
//! 1m` in front of the registry (the push goes on in `PATCH` chunks; a
//! chunk size the cap refuses too is an error saying so); a chunk that
//! fails half-way (the fault proxy answers 503 to one `PATCH`: the push asks
//! the upload where it stands and goes on from there, in the same session;
//! a 416 there starts a new session); chunks of the registry's
//! `OCI-Chunk-Min-Length` when it asks for more than `--chunk-size`; a
//! `Docker-Content-Digest` that is not ours, an error naming both;
//! a push interrupted with Ctrl-C (exit 130) and one killed mid-blob (a
//! slow uplink catches them there) complete when run again, without
//! sending again what was stored; and the errors a person gets, with what
//! to do: a junk file, a compressed archive, a `DEST` that is no registry,
//! Harbor's "project not found", a `DEST` that is no registry name.

use super::roundtrip::{path, pull_from, push_ok, skopeo_raw};
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::DOCKER_LAYER_TAR;
use crate::support::images::{image_of_layers, push_image, raw_layer, Flavor, Image, AMD64};
use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::util::{digest_of, poll, pulltar_in, Output, Rng, TempDir, PULLTAR};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// A Docker image of one uncompressed layer of `size` bytes, as `repo:tag`.
fn big_image(reg: &Registry, repo: &str, tag: &str, size: usize) -> Image {
    let mut rng = Rng::new();
    let layer = raw_layer(&mut rng, DOCKER_LAYER_TAR, size);
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, vec![layer]);
    push_image(reg, repo, Some(tag), &img);
    img
}

#[test]
fn a_body_cap_makes_the_push_go_in_chunks() {
    let src = Registry::start();
    let img = big_image(&src, "team/big", "v1", 3 * MIB + 1000);
    let (work, tar) = pull_from(&src, "team/big:v1", &[]);
    let dst = Registry::start();
    let front = Nginx::capped(&dst, "1m");
    let res = push_ok(&work, &[path(&tar), &format!("{}/capped", front.host())]);
    let pushed = format!("{}/capped/team/big:v1", dst.host());
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[])),
        img.manifest_digest,
        "{res}"
    );
    let log = front.access_log("front");
    let count = |m: &str, status: u16| {
        log.iter()
            .filter(|a| a.method == m && a.status == status && a.path.contains("/blobs/uploads/"))
            .count()
    };
    assert_eq!(
        count("PUT", 413),
        1,
        "one whole blob refused:\n{}",
        front.describe("front")
    );
    assert!(
        count("PATCH", 202) >= 4,
        "the layer in 1 MiB chunks:\n{}",
        front.describe("front")
    );
    assert!(
        count("PUT", 201) >= 2,
        "each upload closed:\n{}",
        front.describe("front")
    );
    assert!(res.stderr.contains("uploaded"), "{res}");

    // Chunks the cap refuses too: an error that says what to change.
    let res = pulltar_in(
        work.path(),
        &[
            "push",
            "--chunk-size",
            "2M",
            path(&tar),
            &format!("{}/other", front.host()),
        ],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("413") && res.stderr.contains("--chunk-size"),
        "the error names the refusal and the flag:\n{res}"
    );
}

#[test]
fn a_failed_chunk_goes_on_from_where_the_registry_stands() {
    let src = Registry::start();
    let img = big_image(&src, "team/res", "v1", 3 * MIB + 512);
    let (work, tar) = pull_from(&src, "team/res:v1", &[]);
    let dst = Registry::start();
    let px = FaultProxy::start(dst.port);
    // The whole layer refused (so chunks), then its second chunk lost.
    px.add(
        Rule::new("/blobs/uploads/", Fault::Status(413, vec![]))
            .method("PUT")
            .times(1),
    );
    px.add(
        Rule::new("/blobs/uploads/", Fault::Status(503, vec![]))
            .method("PATCH")
            .after(1)
            .times(1),
    );
    let res = pulltar_in(
        work.path(),
        &["push", "-t", "1", path(&tar), &format!("{}/r", px.host())],
    );
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    let pushed = format!("{}/r/team/res:v1", dst.host());
    assert_eq!(digest_of(&skopeo_raw(&pushed, &[])), img.manifest_digest);
    let log = px.settled();
    let of = |m: &str| -> Vec<_> {
        log.iter()
            .filter(|r| r.method == m && r.path.contains("/blobs/uploads/"))
            .collect()
    };
    assert_eq!(
        of("POST").len(),
        2,
        "one session per blob, none begun again:\n{}",
        px.dump()
    );
    assert!(
        of("GET").iter().any(|r| r.status == 204),
        "the upload was asked where it stands:\n{}",
        px.dump()
    );
    let patched: u64 = of("PATCH")
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.body_in)
        .sum();
    let blobs = (img.layers[0].blob.len() + img.config.len()) as u64;
    assert_eq!(patched, blobs, "no byte sent twice:\n{}", px.dump());
}

/// A push run in the background, for signals.
struct Spawned {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Spawned {
    fn start(work: &TempDir, args: &[&str]) -> Spawned {
        let mut child = Command::new(PULLTAR)
            .arg("push")
            .args(args)
            .current_dir(work.path())
            .env_remove("RUST_LOG")
            .env("PULLTAR_RETRY_DELAY_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pulltar push");
        let drain = |mut r: Box<dyn Read + Send>| {
            Some(std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            }))
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        Spawned { child, out, err }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(st.success(), "kill {sig} {pid}");
    }

    fn wait(mut self, limit: Duration) -> Output {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                start.elapsed() < limit,
                "pulltar push did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: self.out.take().unwrap().join().unwrap(),
            stderr: self.err.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a blob upload through `px` (after the first `skip`
/// records) has sent `bytes` of its body.
fn wait_mid_blob(px: &FaultProxy, skip: usize, bytes: u64) {
    let seen = poll(2000, Duration::from_millis(5), || {
        let log = px.requests();
        log.iter()
            .skip(skip)
            .any(|r| r.method == "PUT" && r.body_in >= bytes && r.end.is_none())
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "no upload got {bytes} bytes in:\n{}",
        px.dump()
    );
}

#[test]
fn interrupted_and_killed_pushes_complete_when_run_again() {
    let src = Registry::start();
    let img = big_image(&src, "team/slow", "v1", 8 * MIB);
    let (work, tar) = pull_from(&src, "team/slow:v1", &[]);
    let dst = Registry::start();
    let px = FaultProxy::start(dst.port);
    px.add(Rule::new("/blobs/uploads/", Fault::SlowUpload(4 * MIB as u64)).method("PUT"));
    let dest = format!("{}/s", px.host());
    let args = [path(&tar), dest.as_str()];

    // Ctrl-C mid-blob: exit 130, and it says a rerun goes on.
    let run = Spawned::start(&work, &args);
    wait_mid_blob(&px, 0, MIB as u64);
    let t0 = Instant::now();
    run.signal("-INT");
    let res = run.wait(Duration::from_secs(20));
    assert_eq!(res.code, 130, "{res}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "slow to stop: {:?}",
        t0.elapsed()
    );
    assert!(
        res.stderr.contains("interrupted") && res.stderr.contains("again"),
        "{res}"
    );

    // Killed mid-blob.
    let before = px.requests().len();
    let run = Spawned::start(&work, &args);
    wait_mid_blob(&px, before, MIB as u64);
    run.signal("-KILL");
    assert_eq!(run.wait(Duration::from_secs(10)).code, -1);

    // The next run completes; the config, stored by the first run, is not
    // sent again.
    let before = px.settled().len();
    let res = Spawned::start(&work, &args).wait(Duration::from_secs(60));
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    let pushed = format!("{}/s/team/slow:v1", dst.host());
    assert_eq!(digest_of(&skopeo_raw(&pushed, &[])), img.manifest_digest);
    let third: Vec<_> = px.settled().into_iter().skip(before).collect();
    let posts = third
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(
        posts,
        1,
        "only the layer was uploaded again:\n{}",
        px.dump()
    );
}

#[test]
fn errors_say_what_to_do() {
    let work = TempDir::new("pusherr");
    let junk = work.join("junk.tar");
    std::fs::write(&junk, b"this is not an archive\n".repeat(100)).unwrap();
    let reg = Registry::start();
    let res = pulltar_in(work.path(), &["push", path(&junk), &reg.host()]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("not an image archive"), "{res}");
    let gz = work.join("a.tar.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).unwrap();
    let res = pulltar_in(work.path(), &["push", path(&gz), &reg.host()]);
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("gzip") && res.stderr.contains("decompress"),
        "{res}"
    );
    let res = pulltar_in(work.path(), &["push", path(&gz), "myrepo"]);
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains("registry host"), "{res}");

    let img = big_image(&reg, "team/e", "v1", 4096);
    let (work, tar) = pull_from(&reg, "team/e:v1", &[]);
    // A damaged archive: the upload never completes.
    let layer = &img.layers[0].digest;
    let damaged = work.join("damaged.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    let member = format!("blobs/sha256/{}", crate::support::util::hex_of(layer));
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let at = ar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_str() == Some(member.as_str()))
        .map(|e| e.raw_file_position())
        .expect("the layer in the archive");
    bytes[at as usize + 100] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let res = pulltar_in(
        work.path(),
        &["push", path(&damaged), &format!("{}/d", reg.host())],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("archive is damaged"), "{res}");
    assert_eq!(reg.blob_status("d/team/e", layer), 404, "nothing stored");
    // Two images of one path from two registries: no prefix can hold both.
    let other = Registry::start();
    big_image(&other, "team/e", "v1", 4096);
    let both = work.join("both.tar");
    let (a, b) = (
        format!("{}/team/e:v1", reg.host()),
        format!("{}/team/e:v1", other.host()),
    );
    let res = pulltar_in(work.path(), &[&a, &b, "-o", path(&both), "--no-cache"]);
    assert_eq!(res.code, 0, "{res}");
    let res = pulltar_in(work.path(), &["push", path(&both), &reg.host()]);
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains("would both be pushed as"), "{res}");
    // Something that answers, but not as a registry.
    let tokens = crate::support::token_server::TokenServer::start();
    let not_a_registry = format!("127.0.0.1:{}", tokens.port);
    let res = pulltar_in(work.path(), &["push", path(&tar), &not_a_registry]);
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("does not answer as a registry"),
        "{res}"
    );

    // Harbor without the project.
    let px = FaultProxy::start(reg.port);
    let body = br#"{"errors":[{"code":"NOT_FOUND","message":"project harbor not found: project harbor not found"}]}"#;
    px.add(
        Rule::new(
            "/blobs/uploads/",
            Fault::Respond(404, vec![], body.to_vec()),
        )
        .method("POST"),
    );
    let res = pulltar_in(
        work.path(),
        &["push", path(&tar), &format!("{}/harbor", px.host())],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("project \"harbor\"") && res.stderr.contains("create it first"),
        "{res}"
    );
    drop(img);
}

#[test]
fn the_registrys_answers_are_checked() {
    let src = Registry::start();
    let img = big_image(&src, "team/min", "v1", 5 * MIB);
    let (work, tar) = pull_from(&src, "team/min:v1", &[]);
    let dst = Registry::start();
    let px = FaultProxy::start(dst.port);
    // Whole blobs refused; the registry asks for chunks of 2 MiB at least.
    let min = (2 * MIB).to_string();
    px.add(
        Rule::new("/blobs/uploads/", Fault::Status(413, vec![]))
            .method("PUT")
            .times(1),
    );
    let header = Fault::SetHeader("OCI-Chunk-Min-Length".into(), min);
    px.add(Rule::new("/blobs/uploads/", header).method("POST"));
    let res = pulltar_in(
        work.path(),
        &["push", "-t", "1", path(&tar), &format!("{}/m", px.host())],
    );
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    let pushed = format!("{}/m/team/min:v1", dst.host());
    assert_eq!(digest_of(&skopeo_raw(&pushed, &[])), img.manifest_digest);
    let chunks: Vec<u64> = px
        .settled()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 202 && r.body_in > 4096)
        .map(|r| r.body_in)
        .collect();
    let layer = img.layers[0].blob.len() as u64;
    let two = 2 * MIB as u64;
    assert_eq!(chunks, [two, two, layer - 2 * two], "{}", px.dump());

    // A manifest the registry says it stored under another digest.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let lie = Fault::SetHeader("Docker-Content-Digest".into(), wrong.clone());
    px.add(Rule::new("/manifests/", lie).method("PUT"));
    let res = pulltar_in(
        work.path(),
        &["push", path(&tar), &format!("{}/lie", px.host())],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains(&wrong) && res.stderr.contains(&img.manifest_digest),
        "the error names both digests:\n{res}"
    );
}
