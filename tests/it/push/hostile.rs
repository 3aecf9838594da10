//! `pulltar push` of archives made to mislead or to exhaust it: indexes
//! that fan out (one child index listed 300 times, three deep, and
//! `index.json` naming the top one 20000 times) are walked
//! once per document, so the push ends in seconds and small (it is pushed:
//! exit 0, see below); an archive whose `manifest.json` gives a name
//! another config than `index.json` does is refused naming both, before
//! any upload; a recorded upstream media type that no registry would send
//! is refused as a pulled one would be.

use super::roundtrip::{path, skopeo_raw, uploads_in_log};
use crate::support::images::{push_simple, Flavor};
use crate::support::registry::Registry;
use crate::support::util::{digest_of, no_docker_hub, pull_ok, pulltar_in, run, TempDir, PULLTAR};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn desc(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest_of(data), "size": data.len()})
}

/// An OCI index listing `child` (of `media_type`) 300 times.
fn fan(child: &[u8], media_type: &str) -> Vec<u8> {
    let list = vec![desc(media_type, child); 300];
    serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": list}),
    )
    .unwrap()
}

/// A tar of `members` (name, bytes).
fn write_tar(out: &Path, members: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// The members of the tar at `from`, each through `edit` (name, bytes).
fn members(from: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(std::fs::File::open(from).unwrap());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e.path().unwrap().to_str().unwrap().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        let bytes = edit(&name, bytes);
        out.push((name, bytes));
    }
    out
}

/// The registry got no blob upload and no manifest.
fn nothing_pushed(reg: &Registry) {
    let log = reg.log();
    assert_eq!(uploads_in_log(reg), 0, "{log}");
    assert!(!log.contains("\"PUT /v2/"), "no manifest is put: {log}");
}

/// An index listing a child index 300 times, that one a third index 300
/// times, and that one an image 300 times, named 20000 times by
/// `index.json`: 540 billion references over four documents. It is pushed (exit 0): OCI lets an index list a manifest
/// more than once, the registry takes it, and the walk that reads each
/// document once has four to read, well under the limit of distinct
/// indexes a pull follows; only the walk that followed every reference
/// was wrong (it grew past 3 GB). Peak memory is measured with `time -v`.
#[test]
fn fanned_out_indexes_push_in_seconds_and_small() {
    let time = crate::support::util::require_tool("time", "time");
    let work = TempDir::new("fanout");
    let layer = b"a layer, plain".to_vec();
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&layer)]}}))
    .unwrap();
    let manifest = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)]}),
    )
    .unwrap();
    let c = fan(&manifest, MANIFEST);
    let b = fan(&c, INDEX);
    let a = fan(&b, INDEX);
    let mut top = desc(INDEX, &a);
    top["annotations"] = serde_json::json!({"io.containerd.image.name": "fan/out:v1"});
    // index.json names it 20000 times (5 MB): one walk, one name.
    let index_json =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": vec![top; 20000]}))
            .unwrap();
    let blob = |d: &[u8]| (format!("blobs/sha256/{}", &digest_of(d)[7..]), d.to_vec());
    let tar = work.join("fan.tar");
    let mut all: Vec<_> = [&layer, &config, &manifest, &c, &b, &a]
        .iter()
        .map(|d| blob(d))
        .collect();
    all.push(("index.json".into(), index_json));
    all.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    write_tar(&tar, &all);

    let reg = Registry::start();
    let mut cmd = Command::new(time);
    cmd.arg("-v")
        .args([PULLTAR, "push", path(&tar), &reg.host()])
        .current_dir(work.path())
        .env_remove("RUST_LOG")
        .env("PULLTAR_DOCKER_HUB", no_docker_hub());
    let started = Instant::now();
    let res = run(&mut cmd, Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(res.code, 0, "{res}");
    let peak_kb: u64 = res
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from time -v: {res}"));
    assert!(peak_kb < 100 * 1024, "peak RSS {peak_kb} kB: {res}");
    assert!(took < Duration::from_secs(15), "took {took:?}: {res}");
    let pushed = skopeo_raw(&format!("{}/fan/out:v1", reg.host()), &[]);
    assert_eq!(digest_of(&pushed), digest_of(&a), "the index as it is");
}

/// Two images pulled into one archive, then `manifest.json` swapped
/// their configs: `docker load` would give each name the other's config.
#[test]
fn manifest_json_and_index_json_must_agree() {
    let src = Registry::start();
    let one = push_simple(&src, "team/one", "v1", Flavor::Oci);
    let two = push_simple(&src, "team/two", "v1", Flavor::Docker);
    let work = TempDir::new("stories");
    let (a, b) = (
        format!("{}/team/one:v1", src.host()),
        format!("{}/team/two:v1", src.host()),
    );
    let tar = pull_ok(&work, &a, &[&b]);
    let dst = Registry::start();
    // As pulled, the two files agree and the archive pushes.
    let res = pulltar_in(
        work.path(),
        &["push", path(&tar), &format!("{}/ok", dst.host())],
    );
    assert_eq!(res.code, 0, "{res}");

    let swapped = work.join("swapped.tar");
    let (c1, c2) = (one.config_digest.clone(), two.config_digest.clone());
    let edited = members(&tar, |name, bytes| {
        if name != "manifest.json" {
            return bytes;
        }
        let text = String::from_utf8(bytes).unwrap();
        let (h1, h2) = (&c1[7..], &c2[7..]);
        assert!(text.contains(h1) && text.contains(h2), "{text}");
        text.replace(h1, "@1")
            .replace(h2, h1)
            .replace("@1", h2)
            .into_bytes()
    });
    write_tar(&swapped, &edited);
    let other = Registry::start();
    let res = pulltar_in(work.path(), &["push", path(&swapped), &other.host()]);
    assert_eq!(res.code, 1, "{res}");
    for word in ["manifest.json", "index.json", "team/one:v1", &c1, &c2] {
        assert!(res.stderr.contains(word), "{word}: {res}");
    }
    nothing_pushed(&other);
}

/// The media type recorded for the registry's document is checked as a
/// registry's would be: control characters, or a type that is no
/// manifest's, are refused before anything is pushed.
#[test]
fn a_bogus_recorded_media_type_is_refused() {
    let src = Registry::start();
    push_simple(&src, "team/mt", "v1", Flavor::Docker);
    let work = TempDir::new("mediatype");
    let tar = pull_ok(&work, &format!("{}/team/mt:v1", src.host()), &[]);
    let dst = Registry::start();
    for (bogus, says) in [
        (
            "application/vnd.oci.image.manifest.v1+json; x=\\u001b[2J",
            "control",
        ),
        ("application/x-bogus", "not a manifest type"),
    ] {
        let edited = members(&tar, |name, bytes| {
            if name != "index.json" && name != "manifest.json" {
                return bytes;
            }
            let text = String::from_utf8(bytes).unwrap();
            let recorded = "application/vnd.docker.distribution.manifest.v2+json";
            let (annotation, item) = ("\"pulltar.upstream.media-type\":", "\"MediaType\":");
            let key = if name == "index.json" {
                annotation
            } else {
                item
            };
            let was = format!("{key}\"{recorded}\"");
            assert!(text.contains(&was), "{name}: {text}");
            text.replace(&was, &format!("{key}\"{bogus}\""))
                .into_bytes()
        });
        let out = work.join("bogus.tar");
        write_tar(&out, &edited);
        let res = pulltar_in(work.path(), &["push", path(&out), &dst.host()]);
        assert_eq!(res.code, 1, "{bogus}: {res}");
        assert!(
            res.stderr.contains(says) && res.stderr.contains("media type"),
            "{res}"
        );
        assert!(!res.stderr.contains('\u{1b}'), "escaped: {res}");
        nothing_pushed(&dst);
    }
}
