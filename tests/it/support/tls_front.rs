//! HTTPS for the tests: a throwaway CA and a leaf certificate made with
//! the `openssl` CLI ([`Pki`]), and [`TlsRegistry`], a registry holding
//! `team/app:v1` behind nginx's TLS front (`Nginx::tls`) under that CA;
//! plus the front's own check that it speaks TLS with a chain rustls
//! accepts. The pulls over it are in `net/tls.rs`.

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::nginx::Nginx;
use crate::support::registry::Registry;
use crate::support::util::{require_tool, run, TempDir};
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
