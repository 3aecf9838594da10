//! Issue 21, one request path for pull and push: a push through a front
//! that rations requests (nginx `limit_req`, 429 beyond) or connections
//! (`limit_conn`) slows down to what it allows and finishes, as a pull
//! does (no refusal is retried as a failure), with every digest as pulled; and a 5xx on the `HEAD` that
//! resolves a tag at the first host of a mirror list sends the pull to the
//! next host at once, not after retries on the same one. What pulltar did
//! is read from the front's or the fault proxy's log.
//!
//! See: issue 21.

use crate::push::roundtrip::{path, pull_from, skopeo_raw};
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::{build_image, push_image, push_index, Flavor, AMD64};
use crate::support::loaders::check_archive;
use crate::support::nginx::conf::Rations;
use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::util::{digest_of, pulltar_env, Rng, TempDir};

/// Pushes an archive of the `multi` index (pulled with `--platform all`)
/// with `-t threads` through a front with `rations` in front of a real
/// registry: the push finishes, the front refused some of its requests
/// (429), and the pushed tag hashes to the upstream digest.
fn push_through(rations: Rations, threads: &str) {
    let src = Registry::start();
    let ix = push_index(&src, "team/multi", "v1", Flavor::Oci);
    let (work, tar) = pull_from(&src, "team/multi:v1", &["--platform", "all"]);
    let dst = Registry::start();
    let front = Nginx::rationed(&dst, &rations);
    let dest = format!("{}/somewhere", front.host());
    let args = ["push", "-t", threads, path(&tar), &dest];
    let res = pulltar_env(work.path(), &args, &[("PULLTAR_RETRY_DELAY_MS", "50")]);
    let log = front.access_log("front");
    let refused = log.iter().filter(|a| a.status == 429).count();
    assert_eq!(
        res.code,
        0,
        "the push failed ({refused} requests refused):\n{res}\n{}",
        front.describe("front")
    );
    assert!(
        refused > 0,
        "the front refused nothing, so nothing was tested:\n{}",
        front.describe("front")
    );
    // A refusal slowed the push down; it was not a failure to retry.
    assert!(
        res.stderr.contains("slowing down to what it allows")
            && !res.stderr.contains("429; retrying"),
        "{res}"
    );
    let pushed = format!("{}/somewhere/team/multi:v1", dst.host());
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[])),
        ix.digest,
        "{pushed} resolves to the upstream digest:\n{res}"
    );
}

#[test]
fn r21_a_push_through_a_front_rationing_requests_finishes() {
    let rations = Rations {
        conns: None,
        per_minute: Some((60, 10)),
        rate: "0",
    };
    push_through(rations, "8");
}

#[test]
fn r21_a_push_with_20_threads_through_a_front_allowing_4_connections_finishes() {
    let rations = Rations {
        conns: Some(4),
        per_minute: None,
        rate: "0",
    };
    push_through(rations, "20");
}

#[test]
fn r21_a_5xx_on_the_resolving_head_goes_to_the_next_host_at_once() {
    let img = build_image(&mut Rng::new(), Flavor::Docker, AMD64, 2, 64 * 1024);
    let (origin, mirror) = (Registry::start(), Registry::start());
    for reg in [&origin, &mirror] {
        push_image(reg, "library/app", Some("v1"), &img);
    }
    // Docker Hub's stand-in answers the tag's HEAD with 503.
    let px = FaultProxy::start(origin.port);
    px.add(Rule::new("/manifests/v1", Fault::Status(503, vec![])).method("HEAD"));
    let work = TempDir::new("r21head");
    let out = work.join("app.tar");
    let args = [
        "app:v1",
        "-o",
        path(&out),
        "--no-cache",
        "-r",
        &mirror.host(),
    ];
    let env = [
        ("PULLTAR_DOCKER_HUB", px.host()),
        ("PULLTAR_RETRY_DELAY_MS", "50".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = pulltar_env(work.path(), &args, &env);
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    check_archive(&out, &img, &["app:v1".to_string()]);
    let heads: Vec<_> = px
        .requests_to("/manifests/v1")
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .collect();
    assert_eq!(
        heads.len(),
        1,
        "the first host got one HEAD, then the next host was asked:\n{}",
        px.dump()
    );
    assert_eq!(heads[0].status, 503, "{}", px.dump());
    let asked = mirror.log();
    assert!(
        asked.contains("\"GET /v2/library/app/manifests/v1"),
        "the mirror resolved the tag:\n{asked}"
    );
}
