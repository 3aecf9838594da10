//! `--proxy URL`: every registry, loopback ones included, is reached by
//! HTTP CONNECT through the proxy (tinyproxy here, whose log proves the
//! tunnel), also for plain-HTTP and TLS registries, with proxy Basic
//! credentials from the URL that are never printed. Environment proxies
//! are never used for a loopback registry. A dead proxy fails fast and
//! never falls back to a direct connection.

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::proxy_servers::{dead_port, TinyProxy};
use crate::support::registry::Registry;
use crate::support::tls_front::{Pki, TlsRegistry};
use crate::support::user_env::assert_no_secrets;
use crate::support::util::{pulltar_env, Output, TempDir};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PUSER: &str = "ptproxy";
const PPASS: &str = "pt-Proxy-Pw-77dw";

/// How many times the registry served `team/app:v1`'s manifest (GET or
/// HEAD; the push's PUT does not count).
fn manifest_reads(reg: &Registry) -> usize {
    let log = reg.log();
    ["\"GET ", "\"HEAD "]
        .iter()
        .map(|m| {
            log.matches(&format!("{m}/v2/team/app/manifests/v1 "))
                .count()
        })
        .sum()
}

fn open_registry() -> (Registry, Image) {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    (reg, img)
}

/// `pulltar REF -o OUT --no-cache EXTRA…` with `env` in a fresh dir.
fn pull(reference: &str, extra: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf, TempDir) {
    let work = TempDir::new("proxy");
    let out = work.join("out.tar");
    let mut args = vec![reference, "-o", out.to_str().unwrap(), "--no-cache"];
    args.extend_from_slice(extra);
    let res = pulltar_env(work.path(), &args, env);
    (res, out, work)
}

/// Every proxy variable, upper and lower case, set to `url`.
fn all_proxy_vars(url: &str) -> Vec<(&'static str, String)> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (k, url.to_string()))
    .collect()
}

#[test]
fn proxy_flag_forwards_a_plain_http_loopback_registry_without_connect() {
    let (reg, img) = open_registry();
    let proxy = TinyProxy::start(&[reg.port], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let (res, out, _w) = pull(
        &format!("{}/team/app:v1", reg.host()),
        &["--proxy", &url],
        &[],
    );
    assert_eq!(res.code, 0, "{res}\n--- tinyproxy ---\n{}", proxy.log());
    verify_everywhere(&out, &img, &[format!("{}/team/app:v1", reg.host())]);
    // Plain HTTP goes through the proxy in absolute form, not a tunnel
    // (only the HTTPS probe before it may ask for a CONNECT).
    let forwards = proxy.forwards();
    assert!(
        forwards.len() >= 3 && forwards.iter().all(|f| f == &reg.host()),
        "tinyproxy did not forward the plain-HTTP requests to {}: {forwards:?}\n{}",
        reg.host(),
        proxy.log()
    );
    let connects = proxy.connects();
    assert!(
        connects.len() <= 1 && connects.iter().all(|c| c == &reg.host()),
        "CONNECTs beyond the HTTPS probe: {connects:?}\n{}",
        proxy.log()
    );
}

#[test]
fn proxy_flag_tunnels_to_a_tls_registry() {
    let t = TlsRegistry::start(Pki::new(&[]));
    let proxy = TinyProxy::start(&[t.front.port], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let ca = t.pki.ca();
    let extra = ["--proxy", &url, "--ca-cert", ca.to_str().unwrap()];
    let (res, out, _w) = pull(&t.reference(), &extra, &[]);
    assert_eq!(res.code, 0, "{res}\n--- tinyproxy ---\n{}", proxy.log());
    check_archive(&out, &t.img, &[t.reference()]);
    assert!(
        proxy.connects().contains(&t.front.host()),
        "{}",
        proxy.log()
    );
    assert_eq!(t.manifest_gets(), vec![200]);
}

#[test]
fn proxy_credentials_from_the_url_are_used_and_never_printed() {
    let (reg, img) = open_registry();
    let proxy = TinyProxy::start(&[reg.port], Some((PUSER, PPASS)));
    let reference = format!("{}/team/app:v1", reg.host());
    let good = format!("http://{PUSER}:{PPASS}@127.0.0.1:{}", proxy.port);
    let loud = [("RUST_LOG", "trace")];
    let (res, out, _w) = pull(&reference, &["--proxy", &good, "--debug"], &loud);
    assert_eq!(res.code, 0, "{res}\n--- tinyproxy ---\n{}", proxy.log());
    check_archive(&out, &img, std::slice::from_ref(&reference));
    assert!(proxy.connects().contains(&reg.host()), "{}", proxy.log());
    assert_no_secrets(&res, PUSER, &[PPASS]);

    // A wrong password: the proxy's 407 is a failure, not a reason to go
    // direct.
    let before = manifest_reads(&reg);
    assert!(before > 0, "the good pull read the manifest");
    let bad = format!("http://{PUSER}:wrong-{PPASS}@127.0.0.1:{}", proxy.port);
    let args = ["--proxy", &bad, "--debug", "--retries", "0"];
    let (res, out, _w) = pull(&reference, &args, &loud);
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists());
    assert_no_secrets(&res, PUSER, &[PPASS, &format!("wrong-{PPASS}")]);
    assert_eq!(
        manifest_reads(&reg),
        before,
        "the registry was reached anyway"
    );
}

/// HTTP(S)_PROXY and friends do not apply to 127.0.0.1: neither a dead
/// one (the pull works) nor a live one (which sees no CONNECT).
#[test]
fn environment_proxies_are_never_used_for_loopback() {
    let (reg, img) = open_registry();
    let reference = format!("{}/team/app:v1", reg.host());
    let dead = all_proxy_vars(&format!("http://127.0.0.1:{}", dead_port()));
    let env: Vec<(&str, &str)> = dead.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (res, out, _w) = pull(&reference, &["--retries", "0"], &env);
    assert_eq!(
        res.code, 0,
        "a dead HTTPS_PROXY broke a loopback pull:\n{res}"
    );
    check_archive(&out, &img, std::slice::from_ref(&reference));

    let proxy = TinyProxy::start(&[reg.port], None);
    let live = all_proxy_vars(&format!("http://127.0.0.1:{}", proxy.port));
    let env: Vec<(&str, &str)> = live.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (res, _, _w) = pull(&reference, &[], &env);
    assert_eq!(res.code, 0, "{res}");
    assert!(
        proxy.connects().is_empty(),
        "an environment proxy was used for a loopback registry:\n{}",
        proxy.log()
    );
}

#[test]
fn dead_proxy_fails_fast_without_going_direct() {
    let (reg, _img) = open_registry();
    let reference = format!("{}/team/app:v1", reg.host());
    let port = dead_port();
    let url = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    let (res, out, _w) = pull(&reference, &["--proxy", &url, "--retries", "0"], &[]);
    let took = t0.elapsed();
    assert_eq!(res.code, 1, "{res}");
    assert!(took < Duration::from_secs(30), "took {took:?}:\n{res}");
    assert!(!out.exists());
    assert!(
        res.stderr.to_lowercase().contains("proxy") || res.stderr.contains(&port.to_string()),
        "the message should point at the proxy:\n{res}"
    );
    assert_eq!(
        manifest_reads(&reg),
        0,
        "pulltar went around the dead proxy:\n{}",
        reg.log()
    );
}
