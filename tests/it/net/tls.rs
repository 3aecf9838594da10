//! HTTPS registries: a throwaway CA and a leaf certificate made with the
//! `openssl` CLI (`Pki`), served by nginx's TLS front (`Nginx::tls`) in
//! front of a plain registry. pulltar must verify the certificate against
//! the system store (`SSL_CERT_FILE`) or a `--ca-cert`, skip verification
//! only with `--insecure` (and say so), and otherwise fail with a message
//! naming the host and suggesting `--ca-cert`, without falling back to
//! plain HTTP on a loopback registry that speaks TLS.

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{pulltar_env, pulltar_in, require_tool, run, TempDir};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A CA (`ca.pem`) and a leaf (`cert.pem`, `key.pem`) it signed, in a
/// temp dir.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// A leaf for `IP:127.0.0.1, IP:::1, DNS:localhost` plus `extra_dns`.
    pub fn new(extra_dns: &[&str]) -> Pki {
        let mut sans = vec!["IP:127.0.0.1", "IP:::1", "DNS:localhost"];
        let extra: Vec<String> = extra_dns.iter().map(|d| format!("DNS:{d}")).collect();
        sans.extend(extra.iter().map(String::as_str));
        Pki::with_sans(&sans)
    }

    /// A leaf whose subjectAltName is exactly `sans` (`IP:…`, `DNS:…`).
    pub fn with_sans(sans: &[&str]) -> Pki {
        let openssl = require_tool("openssl", "openssl");
        let dir = TempDir::new("pki");
        let conf = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = pulltar test CA\n\
                    [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                    keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n\
                    [v3_leaf]\nbasicConstraints = critical,CA:FALSE\n\
                    keyUsage = critical,digitalSignature,keyEncipherment\n\
                    extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\n\
                    authorityKeyIdentifier = keyid\n";
        let conf = format!("{conf}subjectAltName = {}\n", sans.join(","));
        std::fs::write(dir.join("openssl.cnf"), conf).unwrap();
        let step = |args: &[&str]| {
            let mut cmd = Command::new(&openssl);
            cmd.args(args).current_dir(dir.path());
            run(&mut cmd, Duration::from_secs(60)).ok(&format!("openssl {args:?}"));
        };
        let cnf = ["-config", "openssl.cnf"];
        let days = ["-days", "2"];
        step(
            &[
                &["req", "-x509", "-newkey", "rsa:2048", "-nodes"][..],
                &cnf,
                &days,
                &[
                    "-extensions",
                    "v3_ca",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ],
            ]
            .concat(),
        );
        step(
            &[
                &["req", "-new", "-newkey", "rsa:2048", "-nodes"][..],
                &cnf,
                &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem"],
                &["-out", "leaf.csr"],
            ]
            .concat(),
        );
        step(
            &[
                &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem"][..],
                &["-CAkey", "ca.key", "-CAcreateserial", "-out", "cert.pem"],
                &days,
                &["-extfile", "openssl.cnf", "-extensions", "v3_leaf"],
            ]
            .concat(),
        );
        Pki { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

/// A registry holding `team/app:v1` behind the TLS front of `pki`.
pub struct TlsRegistry {
    pub pki: Pki,
    pub reg: Registry,
    pub front: Nginx,
    pub img: Image,
}

impl TlsRegistry {
    pub fn start(pki: Pki) -> TlsRegistry {
        let reg = Registry::start();
        let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
        let front = Nginx::tls(&reg, &pki.cert(), &pki.key());
        TlsRegistry {
            pki,
            reg,
            front,
            img,
        }
    }

    /// `127.0.0.1:TLSPORT/team/app:v1`.
    pub fn reference(&self) -> String {
        format!("{}/team/app:v1", self.front.host())
    }

    /// Requests the front logged for the manifest (it logs only requests
    /// made over TLS that completed a handshake, plus plain-HTTP ones it
    /// answered 400).
    pub fn manifest_gets(&self) -> Vec<u16> {
        self.front
            .access_log("front")
            .iter()
            .filter(|a| a.path == "/v2/team/app/manifests/v1")
            .map(|a| a.status)
            .collect()
    }
}

/// A ureq agent trusting only `ca` (and verifying names).
fn agent_trusting(ca: &std::path::Path) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = std::fs::read(ca).unwrap();
    let cert = Certificate::from_pem(&pem).expect("CA PEM");
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![cert])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The harness alone: the front speaks TLS with a chain rustls accepts
/// given the CA (so a pulltar failure with `--ca-cert` is pulltar's), and
/// refuses a client that does not trust the CA.
#[test]
fn tls_front_serves_the_registry_under_the_test_ca() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let url = t.front.https_url("/v2/team/app/manifests/v1");
    let resp = agent_trusting(&t.pki.ca())
        .get(&url)
        .header("Accept", crate::support::images::DOCKER_MANIFEST)
        .call()
        .unwrap_or_else(|e| panic!("GET {url} trusting the CA: {e}\n{}", t.front.error_log()));
    assert_eq!(resp.status().as_u16(), 200);
    let other = Pki::new(&[]);
    let err = agent_trusting(&other.ca()).get(&url).call();
    assert!(err.is_err(), "a client trusting another CA got {err:?}");
    // A refused handshake leaves no access-log line (what the pull test
    // without a CA relies on); a plain-HTTP request would (400).
    let log = t.front.settled_log("front", 1);
    assert_eq!(log.len(), 1, "{}", t.front.describe("front"));
    assert_eq!(t.manifest_gets(), vec![200]);
    let plain = crate::support::registry::agent()
        .get(t.front.url("/v2/"))
        .call();
    assert_eq!(plain.unwrap().status().as_u16(), 400);
    assert_eq!(t.front.settled_log("front", 2).len(), 2);
}

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
