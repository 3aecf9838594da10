//! The auth handshake when the ping says nothing: a registry whose `/v2/`
//! answers 200 (so pulltar starts anonymous) but whose repository requests
//! need a Bearer token. The first manifest request meets the 401 and its
//! challenge; pulltar must learn it, fetch a token and go on. Also a 401
//! that carries no challenge at all (GCR does that): the challenge the ping
//! learned still holds, and a fresh token is fetched.

use crate::support::auth_registries::TokenRegistry;
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::loaders::check_archive;
use crate::support::nginx::Nginx;
use crate::support::user_env::Client;

#[test]
fn a_401_after_an_anonymous_ping_restarts_the_handshake() {
    let t = TokenRegistry::start("public/app");
    let front = Nginx::anonymous_ping(&t.reg);
    let reference = format!("127.0.0.1:{}/public/app:v1", front.port);
    let client = Client::new();
    let (res, out) = client.pull_loud(&reference, &[]);
    assert_eq!(res.code, 0, "{res}\n{}", front.describe("front"));
    check_archive(&out, &t.img, std::slice::from_ref(&reference));
    let log = front.access_log("front");
    let ping: Vec<u16> = log
        .iter()
        .filter(|a| a.path == "/v2/")
        .map(|a| a.status)
        .collect();
    assert!(
        !ping.is_empty() && ping.iter().all(|s| *s == 200),
        "pings: {ping:?}"
    );
    let manifests: Vec<(u16, bool)> = log
        .iter()
        .filter(|a| a.path.contains("/manifests/"))
        .map(|a| (a.status, a.auth))
        .collect();
    assert_eq!(
        manifests.first(),
        Some(&(401, false)),
        "the first manifest request should go anonymous and meet the challenge: {manifests:?}"
    );
    assert!(
        manifests.contains(&(200, true)),
        "no authorized manifest request after the challenge: {manifests:?}"
    );
    assert!(
        !t.tokens.issued.lock().unwrap().is_empty(),
        "no token was fetched"
    );
}

#[test]
fn a_401_without_a_challenge_keeps_the_pings_scheme() {
    let t = TokenRegistry::start("public/app");
    let px = FaultProxy::start(t.reg.port);
    px.add(Rule::new("/manifests/", Fault::Status(401, vec![])).times(1));
    let reference = format!("{}/public/app:v1", px.host());
    let client = Client::new();
    let (res, out) = client.pull_loud(&reference, &[]);
    assert_eq!(res.code, 0, "{res}\n{}", px.dump());
    check_archive(&out, &t.img, std::slice::from_ref(&reference));
    assert_eq!(px.rules_left(), vec![Some(0)], "the bare 401 never fired");
    assert!(
        t.tokens.issued.lock().unwrap().len() >= 2,
        "the token refused with a bare 401 was not replaced"
    );
}
