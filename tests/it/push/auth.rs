//! `pulltar push` with credentials and over TLS, against the real
//! registry: htpasswd Basic auth (`-u` with `--password-stdin`); token
//! auth for a user with push rights (tokens asked with `pull,push`, and
//! for a blob mounted from another repository `pull` on that one too; a
//! 401 in the middle of an upload renews the token and sends the body
//! again; tokens good for 2 s through a push of several seconds); TLS with `--ca-cert`, and without it a refusal that says what to
//! pass; a plain-HTTP registry through an HTTP proxy (`--proxy`, tinyproxy
//! forwarding each request, bodies included). A wrong password is exit 1 saying the registry refused the push;
//! no password or token is ever printed.

use super::roundtrip::{path, skopeo_raw};
use crate::support::auth_registries::TokenRegistry;
use crate::support::auth_registries::{BasicRegistry, BPASS, BUSER, STALE};
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::images_more::push_shared_layer_images;
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::token_server::{PASSWORD, SERVICE, USER};
use crate::support::user_env::{assert_no_secrets, Client};
use crate::support::util::pull_ok;
use crate::support::util::{digest_of, pulltar_in, TempDir};

#[test]
fn htpasswd_auth_and_a_wrong_password() {
    let b = BasicRegistry::start();
    let c = Client::new();
    let pw = format!("{BPASS}\n");
    let login = ["-u", BUSER, "--password-stdin"];
    let (res, tar) = c.pull(&b.reference(), &login, &[], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    let dest = format!("{}/copy", b.reg.host());
    let mut args = vec!["push", "--debug", path(&tar), &dest];
    args.extend(login);
    let res = c.run(&args, &[("RUST_LOG", "trace")], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    let pushed = format!("{}/copy/team/app:v1", b.reg.host());
    let creds = format!("--creds={BUSER}:{BPASS}");
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[&creds])),
        b.img.manifest_digest
    );
    assert_no_secrets(&res, BUSER, &[BPASS]);

    let wrong = format!("{STALE}\n");
    let dest = format!("{}/other", b.reg.host());
    let mut args = vec!["push", path(&tar), &dest];
    args.extend(login);
    let res = c.run(&args, &[], Some(wrong.as_bytes()));
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("401") && res.stderr.contains("refused the push"),
        "the error says the registry refused, and what to check:\n{res}"
    );
    assert_no_secrets(&res, BUSER, &[STALE]);
}

#[test]
fn token_auth_push_rights_mounts_and_a_401_mid_upload() {
    let t = TokenRegistry::start("private/app");
    let (a, b) = push_shared_layer_images(&t.reg, "private/a", "t", "private/b", "t");
    let c = Client::new();
    let pw = format!("{PASSWORD}\n");
    let login = ["-u", USER, "--password-stdin"];
    let ref_b = format!("{}/private/b:t", t.reg.host());
    let mut extra = vec![ref_b.as_str()];
    extra.extend(login);
    let ref_a = format!("{}/private/a:t", t.reg.host());
    let (res, tar) = c.pull(&ref_a, &extra, &[], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}");

    // The first upload's PUT is refused as if its token had expired.
    let px = FaultProxy::start(t.reg.port);
    let challenge = format!(
        r#"Bearer realm="http://127.0.0.1:{}/token",service="{SERVICE}",error="invalid_token""#,
        t.tokens.port
    );
    let refusal = Fault::Status(401, vec![("WWW-Authenticate".into(), challenge)]);
    px.add(Rule::new("/blobs/uploads/", refusal).method("PUT").times(1));
    let issued = t.tokens.issued_count();
    let dest = format!("{}/mirror", px.host());
    let mut args = vec!["push", "-t", "1", path(&tar), &dest];
    args.extend(login);
    let res = c.run(&args, &[("RUST_LOG", "trace")], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    assert_eq!(px.rules_left(), [Some(0)], "the 401 fired");
    assert!(
        t.tokens.issued_count() > issued + 1,
        "a new token after the 401"
    );
    let creds = format!("--creds={USER}:{PASSWORD}");
    for (repo, img) in [("a", &a), ("b", &b)] {
        let pushed = format!("{}/mirror/private/{repo}:t", t.reg.host());
        assert_eq!(
            digest_of(&skopeo_raw(&pushed, &[&creds])),
            img.manifest_digest
        );
    }
    // The shared layer went once, and was mounted into the other one.
    assert!(res.stderr.contains("1 mounted"), "{res}");
    let scopes = t.tokens.requests.lock().unwrap().join("\n");
    let mount = "scope=repository%3Amirror%2Fprivate%2Fb%3Apull%2Cpush\
                 &scope=repository%3Amirror%2Fprivate%2Fa%3Apull HTTP";
    assert!(
        scopes.contains(mount),
        "a token for the push with pull on the mount's source:\n{scopes}"
    );
    t.assert_nothing_leaked(&res);
}

#[test]
fn over_tls_with_its_ca() {
    let tls = TlsRegistry::start(Pki::new(&[]));
    let work = TempDir::new("pushtls");
    let tar = pull_ok(&work, &format!("{}/team/app:v1", tls.reg.host()), &[]);
    let ca = tls.pki.ca();
    let dest = format!("{}/secure", tls.front.host());
    let res = pulltar_in(
        work.path(),
        &["push", "--ca-cert", path(&ca), path(&tar), &dest],
    );
    assert_eq!(res.code, 0, "{res}");
    let pushed = format!("{}/secure/team/app:v1", tls.reg.host());
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[])),
        tls.img.manifest_digest
    );
    assert!(
        tls.front
            .access_log("front")
            .iter()
            .any(|a| a.method == "PUT" && a.status == 201),
        "the blobs went over TLS:\n{}",
        tls.front.describe("front")
    );
    let res = pulltar_in(work.path(), &["push", path(&tar), &dest]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("--ca-cert"), "{res}");
}

#[test]
fn through_an_http_proxy() {
    let src = crate::support::registry::Registry::start();
    let img = crate::support::images::push_simple(
        &src,
        "team/app",
        "v1",
        crate::support::images::Flavor::Oci,
    );
    let work = TempDir::new("pushproxy");
    let tar = pull_ok(&work, &format!("{}/team/app:v1", src.host()), &[]);
    let dst = crate::support::registry::Registry::start();
    let proxy = crate::support::proxy_servers::TinyProxy::start(&[dst.port], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let dest = format!("{}/via", dst.host());
    let res = pulltar_in(work.path(), &["push", "--proxy", &url, path(&tar), &dest]);
    assert_eq!(res.code, 0, "{res}\n--- tinyproxy ---\n{}", proxy.log());
    let pushed = format!("{}/via/team/app:v1", dst.host());
    assert_eq!(digest_of(&skopeo_raw(&pushed, &[])), img.manifest_digest);
    let log = proxy.log();
    for method in ["HEAD", "POST", "PUT"] {
        assert!(
            log.contains(&format!("): {method} http://{}/v2/via/", dst.host())),
            "tinyproxy did not forward a {method}:\n{log}"
        );
    }
}

#[test]
fn short_tokens_long_push() {
    use crate::support::images::{
        image_of_layers, push_image, raw_layer, Flavor, AMD64, DOCKER_LAYER_TAR,
    };
    let t = TokenRegistry::start("private/app");
    let mut rng = crate::support::util::Rng::new();
    let layers = (0..4)
        .map(|_| raw_layer(&mut rng, DOCKER_LAYER_TAR, 512 << 10))
        .collect();
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&t.reg, "private/long", Some("v1"), &img);
    let c = Client::new();
    let pw = format!("{PASSWORD}\n");
    let login = ["-u", USER, "--password-stdin"];
    let reference = format!("{}/private/long:v1", t.reg.host());
    let (res, tar) = c.pull(&reference, &login, &[], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    // Tokens good for 2 s; uploads that take 5 s in all, one at a time.
    t.tokens.issuer.set_lifetime(2);
    let px = FaultProxy::start(t.reg.port);
    px.add(Rule::new("/blobs/uploads/", Fault::SlowUpload(400 << 10)).method("PUT"));
    let issued = t.tokens.issued_count();
    let dest = format!("{}/long", px.host());
    let mut args = vec!["push", "-t", "1", path(&tar), &dest];
    args.extend(login);
    let res = c.run(&args, &[], Some(pw.as_bytes()));
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    let creds = format!("--creds={USER}:{PASSWORD}");
    let pushed = format!("{}/long/private/long:v1", t.reg.host());
    assert_eq!(
        digest_of(&skopeo_raw(&pushed, &[&creds])),
        img.manifest_digest
    );
    assert!(
        t.tokens.issued_count() >= issued + 3,
        "tokens renewed as they ran out: {} then {}",
        issued,
        t.tokens.issued_count()
    );
}
