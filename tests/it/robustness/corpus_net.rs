//! The bad-input corpus, protocol abuse: blob answers that disagree with
//! what was asked (Content-Length, Content-Range, extra bytes), a slow
//! drip, redirect loops and redirects to other schemes, broken or
//! oversized auth challenges and token answers, a token realm on plain
//! http for an https registry; and a lying `Docker-Content-Digest`, which
//! must not matter. Faults come from the fault proxy in front of a real
//! registry; the https case uses nginx's TLS front and the token server.

use super::corpus::{assert_none_failed, check, run_all, Case};
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images::{
    image_of_layers, push_image, push_simple, raw_layer, Flavor, AMD64, OCI_LAYER,
};
use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::token_server::TokenServer;
use crate::support::util::{Rng, TempDir};

fn h(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_string(), v.to_string())]
}

/// An image with one 400 KB layer, so that `--chunk-size 64K` fetches it
/// in Range segments.
fn ranged_image(reg: &Registry) -> crate::support::images::Image {
    let mut rng = Rng::new();
    let layer = raw_layer(&mut rng, OCI_LAYER, 400_000);
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, vec![layer]);
    push_image(reg, "team/big", Some("v1"), &img);
    img
}

#[test]
fn corpus_blob_protocol_abuse() {
    let reg = Registry::start();
    let img = ranged_image(&reg);
    let layer = img.layers[0].digest.clone();
    let blob = format!("/blobs/{layer}");
    let chunked = ["--chunk-size", "64K", "-t", "4"];
    let whole = ["--chunk-size", "1G", "-t", "1"];
    let table: Vec<(&'static str, Rule, &[&str], Vec<&str>)> = vec![
        (
            "206 with a shifted Content-Range",
            Rule::new(&blob, Fault::BadContentRange),
            &chunked,
            vec!["Content-Range"],
        ),
        (
            "206 with a wrong Content-Length",
            Rule::new(&blob, Fault::SetHeader("Content-Length".into(), "7".into())).ranged(),
            &chunked,
            vec!["announced 7 bytes"],
        ),
        (
            "200 with a wrong Content-Length",
            Rule::new(&blob, Fault::SetHeader("Content-Length".into(), "7".into())),
            &whole,
            vec!["announced 7 bytes", "the manifest says"],
        ),
        (
            "200 with bytes past the blob",
            Rule::new(&blob, Fault::Append(vec![b'x'; 5000])),
            &whole,
            vec!["more than the"],
        ),
        (
            "206 with bytes past the range",
            Rule::new(&blob, Fault::Append(vec![b'x'; 5000])).ranged(),
            &chunked,
            vec!["more than the"],
        ),
        (
            "slow drip",
            Rule::new(&blob, Fault::Rate(200)),
            &["--read-timeout", "1"],
            vec!["KiB/s"],
        ),
        (
            "manifest drip",
            Rule::new("/manifests/", Fault::Rate(20)),
            &["--read-timeout", "1"],
            vec!["manifest", "dripping"],
        ),
        (
            "redirect loop",
            Rule::new(&blob, Fault::Respond(302, h("Location", &blob), Vec::new())),
            &whole,
            vec!["redirect"],
        ),
        (
            "redirect to ftp",
            Rule::new(
                &blob,
                Fault::Respond(307, h("Location", "ftp://127.0.0.1/blob"), Vec::new()),
            ),
            &whole,
            vec!["ftp"],
        ),
        (
            "redirect to file",
            Rule::new(
                &blob,
                Fault::Respond(307, h("Location", "file:///etc/passwd"), Vec::new()),
            ),
            &whole,
            vec!["file"],
        ),
        (
            "blob answered 404",
            Rule::new(&blob, Fault::Status(404, Vec::new())),
            &whole,
            vec![&layer, "404"],
        ),
    ];
    let n = table.len();
    let mut failures = Vec::new();
    for (name, rule, args, needles) in table {
        let proxy = FaultProxy::start(reg.port);
        proxy.add(rule);
        let mut needles = needles;
        if !needles.contains(&layer.as_str()) && !name.contains("drip") {
            needles.push(&layer);
        }
        let case =
            Case::new(name, &format!("{}/team/big:v1", proxy.host()), 1, &needles).args(args);
        failures.extend(check(&case));
    }
    assert_none_failed(&failures, n);
}

#[test]
fn corpus_auth_abuse() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    fn challenge(v: &str) -> Fault {
        Fault::Status(401, h("WWW-Authenticate", v))
    }
    fn token_from_proxy(proxy: &FaultProxy) -> Fault {
        challenge(&format!(
            r#"Bearer realm="{}",service="r""#,
            proxy.url("/token")
        ))
    }
    type Setup = Box<dyn Fn(&FaultProxy)>;
    #[allow(clippy::type_complexity)]
    let table: Vec<(&'static str, Setup, Vec<&str>)> = vec![
        (
            "realm not http",
            Box::new(move |p: &FaultProxy| {
                p.add(Rule::new(
                    "/v2/",
                    challenge(r#"Bearer realm="ftp://127.0.0.1/token""#),
                ))
            }),
            vec!["ftp://127.0.0.1/token", "not an http(s) URL"],
        ),
        (
            "realm missing",
            Box::new(move |p: &FaultProxy| {
                p.add(Rule::new("/v2/", challenge(r#"Bearer service="r""#)))
            }),
            vec!["no realm"],
        ),
        (
            "401 without a challenge",
            Box::new(|p: &FaultProxy| p.add(Rule::new("/v2/", Fault::Status(401, Vec::new())))),
            vec!["WWW-Authenticate"],
        ),
        (
            "token answer over 64 KiB",
            Box::new(move |p: &FaultProxy| {
                p.add(Rule::new(
                    "/token",
                    Fault::Respond(
                        200,
                        h("Content-Type", "application/json"),
                        format!(r#"{{"token":"{}"}}"#, "a".repeat(70_000)).into_bytes(),
                    ),
                ));
                p.add(Rule::new("/v2/", token_from_proxy(p)));
            }),
            vec!["larger than 65536"],
        ),
        (
            "token answer not JSON",
            Box::new(move |p: &FaultProxy| {
                p.add(Rule::new(
                    "/token",
                    Fault::Respond(200, Vec::new(), b"<html>".to_vec()),
                ));
                p.add(Rule::new("/v2/", token_from_proxy(p)));
            }),
            vec!["token"],
        ),
        (
            "token refused",
            Box::new(move |p: &FaultProxy| {
                p.add(Rule::new("/token", Fault::Status(403, Vec::new())));
                p.add(Rule::new("/v2/", token_from_proxy(p)));
            }),
            vec!["403"],
        ),
    ];
    let n = table.len();
    let mut failures = Vec::new();
    for (name, setup, needles) in table {
        let proxy = FaultProxy::start(reg.port);
        setup(&proxy);
        let case = Case::new(name, &format!("{}/team/app:v1", proxy.host()), 1, &needles);
        failures.extend(check(&case));
    }
    assert_none_failed(&failures, n);
}

/// An https registry whose token realm is plain http: refused (the
/// credentials and token would cross the network in clear) unless
/// `--insecure`.
#[test]
fn corpus_http_realm_for_https_registry() {
    let tokens = TokenServer::start();
    let reg = Registry::start_with(
        Some(tokens.registry_auth()),
        Some(tokens.issuer.push_auth()),
    );
    push_simple(&reg, "public/app", "v1", Flavor::Docker);
    let pki = crate::support::tls_front::Pki::new(&[]);
    let front = Nginx::tls(&reg, &pki.cert(), &pki.key());
    let ca = pki.ca();
    let image = format!("{}/public/app:v1", front.host());
    run_all(&[Case::new(
        "http realm, https registry",
        &image,
        1,
        &["plain http", "--insecure"],
    )
    .args(&["--ca-cert", ca.to_str().unwrap()])]);
    let out = TempDir::new("realm-insecure");
    let ok = crate::support::util::pulltar_in(
        out.path(),
        &[&image, "-o", "x.tar", "--insecure", "--no-cache"],
    );
    assert_eq!(ok.code, 0, "--insecure allows the http realm:\n{ok}");
}

/// A `Docker-Content-Digest` header that lies changes nothing: the pull
/// goes by the bytes, and the archive holds the real image.
#[test]
fn lying_docker_content_digest_is_ignored() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let proxy = FaultProxy::start(reg.port);
    let lie = format!("sha256:{}", "e".repeat(64));
    proxy.add(Rule::new(
        "/manifests/",
        Fault::SetHeader("Docker-Content-Digest".into(), lie.clone()),
    ));
    proxy.add(Rule::new(
        "/blobs/",
        Fault::SetHeader("Docker-Content-Digest".into(), lie.clone()),
    ));
    let out = TempDir::new("dcd-lie");
    let res = crate::support::util::pulltar_in(
        out.path(),
        &[
            &format!("{}/team/app:v1", proxy.host()),
            "-o",
            "a.tar",
            "--no-cache",
        ],
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.fault == Some("set-header")),
        "{}",
        proxy.dump()
    );
    let tar = std::fs::read(out.join("a.tar")).unwrap();
    let hex = crate::support::util::hex_of(&img.config_digest);
    assert!(
        tar.windows(hex.len()).any(|w| w == hex.as_bytes()),
        "the archive names the real config"
    );
    assert!(
        !tar.windows(64).any(|w| w == "e".repeat(64).as_bytes()),
        "the lie reached the archive"
    );
}
