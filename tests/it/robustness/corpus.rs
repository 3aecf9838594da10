//! The bad-input corpus: tables of hostile or broken inputs, each run as a
//! real pull, each asserting the exit code, that stderr names the problem
//! (and shows no raw control character), and that nothing is left at the
//! output path or beside it. User input needs no server; hostile documents
//! come from the fault proxy (`Fault::Respond`) in front of a real
//! registry that serves everything else; sizes a real registry will store
//! are pushed to it. Protocol abuse is in `corpus_net.rs`, local faults in
//! `corpus_local.rs`.

use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::{push_index, push_simple, Flavor, Image, AMD64};
use crate::support::registry::Registry;
use crate::support::util::{Output, TempDir, PULLTAR};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// One corpus case: how to run pulltar and what must come of it.
pub struct Case {
    pub name: &'static str,
    pub image: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub code: i32,
    /// Each must appear in stderr.
    pub needles: Vec<String>,
}

impl Case {
    pub fn new(name: &'static str, image: &str, code: i32, needles: &[&str]) -> Case {
        Case {
            name,
            image: image.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            code,
            needles: needles.iter().map(|s| s.to_string()).collect(),
        }
    }
    pub fn args(mut self, a: &[&str]) -> Case {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
}

/// Fails the test with every failed case of a table of `n`.
pub fn assert_none_failed(failures: &[String], n: usize) {
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs `case` with a fresh output dir and cache; returns a description of
/// what went wrong, if anything.
pub fn check(case: &Case) -> Option<String> {
    let out_dir = TempDir::new("corpus-out");
    let cache = TempDir::new("corpus-cache");
    let out = out_dir.join("image.tar");
    let res = run_case(case, &out, cache.path());
    let mut wrong = Vec::new();
    if res.code != case.code {
        wrong.push(format!("exit code {} (wanted {})", res.code, case.code));
    }
    for n in &case.needles {
        if !res.stderr.contains(n.as_str()) {
            wrong.push(format!("stderr does not name {n:?}"));
        }
    }
    if res.stderr.chars().any(|c| c.is_control() && c != '\n') {
        wrong.push("stderr holds a raw control character".into());
    }
    if out.exists() || !out_dir.list().is_empty() {
        wrong.push(format!("left files at the output: {:?}", out_dir.list()));
    }
    (!wrong.is_empty()).then(|| format!("case {:?}: {}\n{res}", case.name, wrong.join("; ")))
}

/// Runs pulltar for `case` writing to `out`, with quick retries.
pub fn run_case(case: &Case, out: &std::path::Path, cache: &std::path::Path) -> Output {
    let mut cmd = Command::new(PULLTAR);
    cmd.arg(&case.image)
        .args(["-o", out.to_str().unwrap()])
        .args(["--cache-dir", cache.to_str().unwrap()])
        .args(["--retries", "1"])
        .args(&case.args)
        .current_dir(
            out.parent()
                .filter(|p| p.is_dir())
                .unwrap_or(std::path::Path::new("/")),
        )
        .env_remove("RUST_LOG")
        .env("PULLTAR_RETRY_DELAY_MS", "10")
        .envs(case.env.iter().map(|(k, v)| (k, v)));
    if !case.args.iter().any(|a| a == "--read-timeout") {
        cmd.args(["--read-timeout", "2"]);
    }
    crate::support::util::run(&mut cmd, Duration::from_secs(120))
}

/// Runs every case; fails once, listing every case that went wrong.
pub fn run_all(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn corpus_user_input() {
    let long_tag = "t".repeat(129);
    let long_name = format!("{}/app:1", "a".repeat(256));
    let cases = vec![
        Case::new("empty reference", "", 2, &["empty"]),
        Case::new("upper-case repository", "Team/App:1", 2, &["Team/App"]),
        Case::new("tag starting with a dash", "app:-x", 2, &["-x"]),
        Case::new("tag too long", &format!("app:{long_tag}"), 2, &["tag"]),
        Case::new("name too long", &long_name, 2, &["255"]),
        Case::new("dot-dot in the path", "team/../app:1", 2, &["team/../app"]),
        Case::new("escape character", "app\u{1b}[2J:1", 2, &["\\u{1b}"]),
        Case::new("space in the name", "my app:1", 2, &["' '"]),
        Case::new(
            "upper-case digest",
            &format!("app@sha256:{}", HEX.to_uppercase()),
            2,
            &["64 lowercase hex"],
        ),
        Case::new(
            "short digest",
            &format!("app@sha256:{}", &HEX[1..]),
            2,
            &["64 lowercase hex"],
        ),
        Case::new(
            "sha512 digest",
            &format!("app@sha512:{HEX}{HEX}"),
            2,
            &["sha512", "not supported"],
        ),
        Case::new(
            "digest with a path",
            "app@sha256:../../etc/passwd",
            2,
            &["../../etc/passwd"],
        ),
        Case::new(
            "digest without algorithm",
            &format!("app@{HEX}"),
            2,
            &["no algorithm"],
        ),
        Case::new(
            "registry port out of range",
            "localhost:99999/app:1",
            2,
            &["99999"],
        ),
        Case::new(
            "bad PULLTAR_MAX_BLOB_SIZE",
            "127.0.0.1:1/app:1",
            2,
            &["PULLTAR_MAX_BLOB_SIZE"],
        )
        .env("PULLTAR_MAX_BLOB_SIZE", "lots"),
    ];
    // The last one must fail on the variable, not on the unreachable
    // registry: run it against a real one.
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let mut cases = cases;
    cases.last_mut().unwrap().image = format!("{}/team/app:v1", reg.host());
    run_all(&cases);
}

/// The image's manifest as JSON, with `edit` applied.
fn edited(img: &Image, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&img.manifest).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// A proxy answering the manifest of `team/app:v1` with `body`.
fn serving(reg: &Registry, path: &str, body: Vec<u8>, content_type: &str) -> FaultProxy {
    let proxy = FaultProxy::start(reg.port);
    let headers = vec![("Content-Type".to_string(), content_type.to_string())];
    proxy.add(Rule::new(path, Fault::Respond(200, headers, body)));
    proxy
}

#[test]
fn corpus_hostile_manifests() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Oci);
    let ct = img.media_type;
    let layer = |f: &'static str, v: Value| edited(&img, move |m| m["layers"][0][f] = v.clone());
    let table: Vec<(&'static str, Vec<u8>, &str, Vec<&str>)> = vec![
        ("layer digest sha512", layer("digest", json!(format!("sha512:{HEX}{HEX}"))), ct, vec!["sha512", "not supported"]),
        ("layer digest upper case", layer("digest", json!(format!("sha256:{}", HEX.to_uppercase()))), ct, vec!["64 lowercase hex", "0123456789ABCDEF"]),
        ("layer digest 63 digits", layer("digest", json!(format!("sha256:{}", &HEX[1..]))), ct, vec!["64 lowercase hex"]),
        ("layer digest with ..", layer("digest", json!("sha256:../../../../etc/passwd")), ct, vec!["../../../../etc/passwd"]),
        ("layer digest with /", layer("digest", json!(format!("sha256:{}/{}", &HEX[..31], &HEX[32..]))), ct, vec!["64 lowercase hex"]),
        ("layer digest with NUL", layer("digest", json!(format!("sha256:\u{0}{}", &HEX[1..]))), ct, vec!["\\0"]),
        ("layer digest without algorithm", layer("digest", json!(HEX)), ct, vec!["no algorithm"]),
        ("config digest sha384", edited(&img, |m| m["config"]["digest"] = json!(format!("sha384:{HEX}"))), ct, vec!["sha384"]),
        ("media type with escape", layer("mediaType", json!("application/x\u{1b}[31m")), ct, vec!["media type", "\\u{1b}"]),
        ("media type with newline", layer("mediaType", json!("application/x\nInjected: 1")), ct, vec!["media type", "\\n"]),
        ("media type not ASCII", layer("mediaType", json!("application/\u{441}")), ct, vec!["non-ASCII"]),
        ("negative size", layer("size", json!(-1)), ct, vec!["-1"]),
        ("size past u64", edited(&img, |m| m["layers"][0]["size"] = serde_json::from_str("18446744073709551616").unwrap()), ct, vec!["u64"]),
        ("size as a string", layer("size", json!("12")), ct, vec!["string"]),
        ("not JSON", b"<html>hello</html>".to_vec(), ct, vec!["not valid JSON"]),
        ("manifest over 4 MiB", vec![b' '; 5 << 20], ct, vec!["larger than"]),
        ("unknown media type", edited(&img, |m| m["mediaType"] = json!("text/html")), "application/json", vec!["text/html", "not a manifest type"]),
        ("schema 1", br#"{"schemaVersion":1,"name":"team/app","fsLayers":[]}"#.to_vec(), "application/json", vec!["schema 1"]),
        ("neither manifest nor index", b"{}".to_vec(), "application/json", vec!["neither"]),
        ("index child digest sha1", serde_json::to_vec(&json!({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha1:0123456789abcdef0123456789abcdef01234567","size":10,"platform":{"os":"linux","architecture":"amd64"}}]})).unwrap(), "application/vnd.oci.image.index.v1+json", vec!["sha1"]),
    ];
    let mut failures = Vec::new();
    let n = table.len();
    for (name, body, ct, needles) in table {
        let proxy = serving(&reg, "/manifests/v1", body, ct);
        let case = Case::new(name, &format!("{}/team/app:v1", proxy.host()), 1, &needles);
        failures.extend(check(&case));
    }
    assert_none_failed(&failures, n);
}

/// A manifest fetched by digest, or an index child, whose bytes are not
/// the digest's: refused, whatever the registry says.
#[test]
fn corpus_manifest_not_matching_its_digest() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Oci);
    let index = push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let other = edited(&img, |m| m["annotations"] = json!({"x": "y"}));
    let by_digest = serving(&reg, "/manifests/sha256:", other.clone(), img.media_type);
    let child = &index.child(&AMD64).manifest_digest;
    let child_proxy = serving(&reg, &format!("/manifests/{child}"), other, img.media_type);
    run_all(&[
        Case::new(
            "by-digest manifest with other bytes",
            &format!("{}/team/app@{}", by_digest.host(), img.manifest_digest),
            1,
            &[&img.manifest_digest, "hashes to"],
        ),
        Case::new(
            "index child with other bytes",
            &format!("{}/team/multi:v1", child_proxy.host()),
            1,
            &[child, "hashes to"],
        )
        .args(&["--platform", "linux/amd64"]),
    ]);
}

/// Sizes a real registry stores as given: larger than the bound, and
/// disagreeing with the blob (caught from Content-Length before reading).
#[test]
fn corpus_declared_sizes() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Oci);
    let real = img.layers[0].blob.len() as u64;
    let push = |tag: &str, size: u64| {
        let body = edited(&img, |m| m["layers"][0]["size"] = json!(size));
        reg.put_manifest("team/app", tag, img.media_type, &body);
        format!("{}/team/app:{tag}", reg.host())
    };
    let layer = img.layers[0].digest.as_str();
    run_all(&[
        Case::new(
            "size 2^62",
            &push("huge", 1 << 62),
            1,
            &[layer, "4611686018427387904", "PULLTAR_MAX_BLOB_SIZE"],
        ),
        Case::new(
            "size over PULLTAR_MAX_BLOB_SIZE",
            &format!("{}/team/app:v1", reg.host()),
            1,
            &["larger than the 1024 bytes", "PULLTAR_MAX_BLOB_SIZE"],
        )
        .env("PULLTAR_MAX_BLOB_SIZE", "1K"),
        Case::new(
            "size one more than the blob",
            &push("plus", real + 1),
            1,
            &[layer, &format!("announced {real} bytes")],
        ),
        Case::new(
            "size one less than the blob",
            &push("minus", real - 1),
            1,
            &[layer, &format!("announced {real} bytes")],
        ),
        Case::new("zero size for a real blob", &push("zero", 0), 1, &[layer]),
    ]);
}
