//! Environment proxies for registries that are not loopback:
//! `HTTPS_PROXY`/`https_proxy` for https, `HTTP_PROXY`/`http_proxy` for
//! http (an `--insecure` registry), and curl-style `NO_PROXY`. The registry
//! is named `registry.pulltar.test`, which does not resolve here: the
//! `ConnectProxy` tunnels any CONNECT to 127.0.0.1 at the requested port,
//! so a pull succeeds only through the proxy, and a name excluded by
//! NO_PROXY fails (direct: no such host).

use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::check_archive;
use crate::support::proxy_servers::{dead_port, ConnectProxy};
use crate::support::registry::Registry;
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::user_env::assert_no_secrets;
use crate::support::util::{run, Output, TempDir, PULLTAR};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const NAME: &str = "registry.pulltar.test";

const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// `pulltar REF -o OUT --no-cache --retries 0 EXTRA…` with only the proxy
/// variables in `env` (none inherited).
fn pull(reference: &str, extra: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf, TempDir) {
    let work = TempDir::new("penv");
    let out = work.join("out.tar");
    let mut cmd = Command::new(PULLTAR);
    cmd.arg(reference)
        .arg("-o")
        .arg(&out)
        .args(["--no-cache", "--retries", "0"])
        .args(extra)
        .current_dir(work.path())
        .env_remove("RUST_LOG")
        .env_remove("SSL_CERT_FILE");
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let res = run(&mut cmd, Duration::from_secs(180));
    (res, out, work)
}

/// A TLS registry with a certificate for `NAME` too, and the proxy.
struct Remote {
    t: TlsRegistry,
    proxy: ConnectProxy,
}

impl Remote {
    fn start() -> Remote {
        Remote {
            t: TlsRegistry::start(Pki::new(&[NAME])),
            proxy: ConnectProxy::start(),
        }
    }

    fn target(&self) -> String {
        format!("{NAME}:{}", self.t.front.port)
    }

    fn reference(&self) -> String {
        format!("{}/team/app:v1", self.target())
    }

    fn pull(&self, env: &[(&str, &str)], extra: &[&str]) -> (Output, PathBuf, TempDir) {
        let ca = self.t.pki.ca();
        let mut args = vec!["--ca-cert", ca.to_str().unwrap()];
        args.extend_from_slice(extra);
        pull(&self.reference(), &args, env)
    }

    /// A pull with `env` that must go through the proxy.
    fn pull_via_proxy(&self, env: &[(&str, &str)]) {
        let before = self.proxy.connects().len();
        let (res, out, _w) = self.pull(env, &[]);
        assert_eq!(res.code, 0, "{env:?}:\n{res}\n{:?}", self.proxy.requests());
        check_archive(&out, &self.t.img, &[self.reference()]);
        let connects = self.proxy.connects();
        assert!(
            connects[before..].contains(&self.target()),
            "{env:?}: no CONNECT {}: {connects:?}",
            self.target()
        );
    }

    /// A pull with `env` that must not use the proxy (and so fails).
    fn pull_direct(&self, env: &[(&str, &str)]) {
        let before = self.proxy.requests().len();
        let (res, out, _w) = self.pull(env, &[]);
        assert_eq!(res.code, 1, "{env:?} should bypass the proxy:\n{res}");
        assert!(!out.exists());
        assert_eq!(
            self.proxy.requests().len(),
            before,
            "{env:?}: the proxy was used: {:?}",
            self.proxy.requests()
        );
    }
}

#[test]
fn https_proxy_variables_reach_a_remote_https_registry() {
    let r = Remote::start();
    // The control: without a proxy the name does not resolve.
    r.pull_direct(&[]);
    let url = r.proxy.url();
    r.pull_via_proxy(&[("HTTPS_PROXY", &url)]);
    r.pull_via_proxy(&[("https_proxy", &url)]);
    // HTTP_PROXY is for http registries only.
    r.pull_direct(&[("HTTP_PROXY", &url), ("http_proxy", &url)]);
    assert_eq!(r.t.manifest_gets(), vec![200, 200]);
}

#[test]
fn proxy_flag_beats_the_environment() {
    let r = Remote::start();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let url = r.proxy.url();
    let env = [("HTTPS_PROXY", dead.as_str()), ("NO_PROXY", "")];
    let before = r.proxy.connects().len();
    let (res, out, _w) = r.pull(&env, &["--proxy", &url]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &r.t.img, &[r.reference()]);
    assert!(r.proxy.connects().len() > before);
}

#[test]
fn environment_proxy_credentials_are_sent_and_never_printed() {
    let r = Remote::start();
    let url = format!("http://ptenv:pt-Env-Proxy-Pw-4q@127.0.0.1:{}", r.proxy.port);
    let env = [("HTTPS_PROXY", url.as_str()), ("RUST_LOG", "trace")];
    let (res, out, _w) = r.pull(&env, &["--debug"]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &r.t.img, &[r.reference()]);
    let seen = r.proxy.requests();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("CONNECT ") && l.contains("auth=yes")),
        "no Proxy-Authorization on the CONNECT: {seen:?}"
    );
    assert_no_secrets(&res, "ptenv", &["pt-Env-Proxy-Pw-4q"]);
}

#[test]
fn no_proxy_is_matched_curl_style() {
    let r = Remote::start();
    let url = r.proxy.url();
    let port = r.t.front.port;
    let with_port = format!("{NAME}:{port}");
    let listed = format!(" example.com , {NAME} ");
    for no_proxy in [
        "pulltar.test",
        ".pulltar.test",
        NAME,
        "*",
        listed.as_str(),
        with_port.as_str(),
    ] {
        r.pull_direct(&[("HTTPS_PROXY", &url), ("NO_PROXY", no_proxy)]);
    }
    r.pull_direct(&[("https_proxy", &url), ("no_proxy", "pulltar.test")]);
    let other_port = format!("{NAME}:1");
    for no_proxy in [
        "example.com",
        "ulltar.test",
        "pulltar.tes",
        "other.registry.pulltar.test",
        other_port.as_str(),
        "127.0.0.1,10.0.0.0/8",
    ] {
        r.pull_via_proxy(&[("HTTPS_PROXY", &url), ("NO_PROXY", no_proxy)]);
    }
}

/// `--insecure` on an http registry: HTTPS is tried first (through
/// HTTPS_PROXY; the TLS handshake fails, the registry speaks plain HTTP),
/// then plain HTTP through HTTP_PROXY.
#[test]
fn http_proxy_variable_for_an_insecure_plain_registry() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let (for_https, for_http) = (ConnectProxy::start(), ConnectProxy::start());
    let reference = format!("{NAME}:{}/team/app:v1", reg.port);
    let env = [
        ("HTTPS_PROXY", for_https.url()),
        ("HTTP_PROXY", for_http.url()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (res, out, _w) = pull(&reference, &["--insecure"], &env);
    assert_eq!(
        res.code,
        0,
        "{res}\nhttps proxy: {:?}\nhttp proxy: {:?}",
        for_https.requests(),
        for_http.requests()
    );
    check_archive(&out, &img, std::slice::from_ref(&reference));
    let target = format!("{NAME}:{}", reg.port);
    assert!(
        for_http.forwards().contains(&target) && for_http.connects().is_empty(),
        "HTTP_PROXY was not used for plain HTTP in absolute form: {:?}",
        for_http.requests()
    );
    assert!(
        for_https.connects().contains(&target),
        "HTTPS was not tried first through HTTPS_PROXY: {:?}",
        for_https.requests()
    );
}
