//! HTTPS registries: a throwaway CA and a leaf certificate made with the
//! `openssl` CLI (`Pki`), served by nginx's TLS front (`Nginx::tls`) in
//! front of a plain registry. pulltar must verify the certificate against
//! the system store (`SSL_CERT_FILE`) or a `--ca-cert`, skip verification
//! only with `--insecure` (and say so), and otherwise fail with a message
//! naming the host and suggesting `--ca-cert`, without falling back to
//! plain HTTP on a loopback registry that speaks TLS.

use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::util::pull_ok;
use crate::support::util::{pulltar_env, pulltar_in, TempDir};

#[test]
fn pull_over_https_with_ca_cert() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let work = TempDir::new("tlsca");
    let ca = t.pki.ca();
    let tar = pull_ok(&work, &t.reference(), &["--ca-cert", ca.to_str().unwrap()]);
    verify_everywhere(&tar, &t.img, &[t.reference()]);
    assert_eq!(
        t.manifest_gets(),
        vec![200],
        "{}",
        t.front.describe("front")
    );
    assert!(
        t.reg.log().contains("/v2/team/app/blobs/"),
        "blobs came through the front"
    );
}

#[test]
fn pull_over_https_with_ssl_cert_file_as_the_system_store() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let work = TempDir::new("tlssys");
    let out = work.join("out.tar");
    let ca = t.pki.ca();
    let reference = t.reference();
    let args = [&reference, "-o", out.to_str().unwrap(), "--no-cache"];
    let res = pulltar_env(
        work.path(),
        &args,
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert_eq!(res.code, 0, "SSL_CERT_FILE={}:\n{res}", ca.display());
    check_archive(&out, &t.img, &[reference]);
    assert_eq!(
        t.manifest_gets(),
        vec![200],
        "{}",
        t.front.describe("front")
    );
}

#[test]
fn pull_over_https_with_insecure_warns() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let work = TempDir::new("tlsins");
    let out = work.join("out.tar");
    let reference = t.reference();
    let args = [
        &reference,
        "--insecure",
        "-o",
        out.to_str().unwrap(),
        "--no-cache",
    ];
    let res = pulltar_in(work.path(), &args);
    assert_eq!(res.code, 0, "--insecure against a private CA:\n{res}");
    check_archive(&out, &t.img, &[reference]);
    assert_eq!(
        t.manifest_gets(),
        vec![200],
        "{}",
        t.front.describe("front")
    );
    let err = res.stderr.to_lowercase();
    assert!(
        err.contains("insecure") || err.contains("not verif") || err.contains("verification"),
        "--insecure must warn that the certificate is not verified:\n{res}"
    );
}

#[test]
fn untrusted_certificate_fails_naming_host_and_ca_cert() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let work = TempDir::new("tlsbad");
    let out = work.join("out.tar");
    let reference = t.reference();
    let res = pulltar_in(
        work.path(),
        &[&reference, "-o", out.to_str().unwrap(), "--no-cache"],
    );
    assert_eq!(res.code, 1, "an untrusted certificate must fail:\n{res}");
    assert!(
        res.stderr.contains(&t.front.host()),
        "the message names the registry {}:\n{res}",
        t.front.host()
    );
    assert!(
        res.stderr.contains("--ca-cert"),
        "suggests --ca-cert:\n{res}"
    );
    assert!(!out.exists(), "a failed pull left {}", out.display());
    // A certificate error is no reason to try plain HTTP: the front saw
    // no request at all (nginx logs a plain request to its TLS port).
    assert!(
        t.front.access_log("front").is_empty(),
        "requests reached the front:\n{}",
        t.front.describe("front")
    );
}

/// `--ca-cert` adds trust; it does not switch off the name check: a leaf
/// valid only for `DNS:localhost` is refused at `127.0.0.1`.
#[test]
fn ca_cert_keeps_the_name_check() {
    let t = TlsRegistry::start(Pki::with_sans(&["DNS:localhost"]));
    let work = TempDir::new("tlsname");
    let out = work.join("out.tar");
    let ca = t.pki.ca();
    let reference = t.reference();
    let args = [
        &reference,
        "-o",
        out.to_str().unwrap(),
        "--no-cache",
        "--ca-cert",
        ca.to_str().unwrap(),
    ];
    let res = pulltar_in(work.path(), &args);
    assert_eq!(
        res.code, 1,
        "a certificate for another name must fail:\n{res}"
    );
    assert!(res.stderr.contains(&t.front.host()), "{res}");
    assert!(!out.exists());
    assert!(
        t.manifest_gets().is_empty(),
        "{}",
        t.front.describe("front")
    );
}

#[test]
fn missing_ca_cert_file_is_an_error() {
    let work = TempDir::new("tlsnofile");
    let missing = work.join("no-such-ca.pem");
    let out = work.join("out.tar");
    let res = pulltar_in(
        work.path(),
        &[
            "127.0.0.1:9/team/app:v1",
            "--ca-cert",
            missing.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
        ],
    );
    assert!(res.code == 1 || res.code == 2, "{res}");
    assert!(
        res.stderr.contains("no-such-ca.pem"),
        "the message names the file:\n{res}"
    );
    assert!(!out.exists());
}

/// The same refusal for a registry that is not loopback (reached through
/// an environment proxy, as `proxy_env.rs` does): no HTTP fallback is
/// even allowed there, and the message is the same.
#[test]
fn untrusted_remote_registry_fails_naming_host_and_ca_cert() {
    let name = "registry.pulltar.test";
    let t = TlsRegistry::start(Pki::new(&[name]));
    let proxy = crate::support::proxy_servers::ConnectProxy::start();
    let work = TempDir::new("tlsremote");
    let out = work.join("out.tar");
    let host = format!("{name}:{}", t.front.port);
    let reference = format!("{host}/team/app:v1");
    let args = [&reference, "-o", out.to_str().unwrap(), "--no-cache"];
    let res = pulltar_env(work.path(), &args, &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains(&host), "names {host}:\n{res}");
    assert!(
        res.stderr.contains("--ca-cert"),
        "suggests --ca-cert:\n{res}"
    );
    assert!(!out.exists());
    let connects = proxy.connects();
    assert!(
        !connects.is_empty() && connects.iter().all(|c| c == &host),
        "it went through the proxy to {host}: {connects:?}"
    );
    assert!(t.manifest_gets().is_empty());
}
