//! Stored credentials against a Docker-Hub-style token registry
//! (`support/token_server.rs`: `public/*` anonymous, anything else needs
//! `tester:s3cret`): config `auths` sent with Basic to the token realm, an
//! identity token (`identitytoken`, or a helper answering Username
//! `<token>`) exchanged by `POST` with `grant_type=refresh_token`, and
//! stale stored credentials on a public image: the pull goes on
//! anonymously and says so. Credentials from flags or the environment are
//! never dropped that way. No secret or token is ever printed.

use crate::support::auth_registries::TokenRegistry;
use crate::support::auth_registries::STALE;
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::token_server::{PASSWORD, REFRESH_TOKEN, USER};
use crate::support::user_env::{userpass, Client};
use serde_json::json;

#[test]
fn private_repo_with_docker_config_auths() {
    let t = TokenRegistry::start("private/app");
    let mut c = Client::new();
    c.docker_config(&json!({"auths": {
        format!("https://{}", t.reg.host()): {"auth": userpass(USER, PASSWORD)},
        "127.0.0.1:1": {"auth": userpass(USER, STALE)},
    }}));
    let (res, out) = c.pull_loud(&t.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &t.img, &[t.reference()]);
    let seen = t.requests();
    assert!(
        seen.iter()
            .any(|r| r.contains("private%2Fapp") || r.contains("private/app"))
            && seen.iter().all(|r| r.ends_with("auth=basic")),
        "every token request should carry the stored Basic credentials: {seen:?}"
    );
    t.assert_nothing_leaked(&res);
}

/// Stored credentials the token server refuses (401) on a public image:
/// exit 0, a warning that mentions going anonymous, and a good archive.
fn stale_on_public(c: &Client, t: &TokenRegistry) {
    let (res, out) = c.pull_loud(&t.reference(), &[]);
    assert_eq!(
        res.code, 0,
        "stale stored credentials on a public image:\n{res}"
    );
    assert!(
        res.stderr.to_lowercase().contains("anonymous"),
        "the fallback must be said:\n{res}"
    );
    verify_everywhere(&out, &t.img, &[t.reference()]);
    let seen = t.requests();
    assert!(
        seen.iter().any(|r| r.ends_with("auth=basic")),
        "the stored credentials were never tried: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET /token?") && !r.ends_with("auth=basic")),
        "no anonymous token request: {seen:?}"
    );
    t.assert_nothing_leaked(&res);
}

#[test]
fn stale_config_credentials_on_a_public_image_fall_back_to_anonymous() {
    let t = TokenRegistry::start("public/app");
    let mut c = Client::new();
    c.docker_config(&json!({"auths": {t.reg.host(): {"auth": userpass(USER, STALE)}}}));
    stale_on_public(&c, &t);
}

#[test]
fn stale_helper_credentials_on_a_public_image_fall_back_to_anonymous() {
    let t = TokenRegistry::start("public/app");
    let mut c = Client::new();
    c.helper("ptstale", USER, STALE);
    c.docker_config(&json!({"credHelpers": {t.reg.host(): "ptstale"}}));
    stale_on_public(&c, &t);
    assert!(!c.helper_calls("ptstale").is_empty());
}

/// A wrong password the user typed (flag or environment) is an error even
/// where anonymous access would work: it is not silently dropped.
#[test]
fn wrong_explicit_credentials_on_a_public_image_fail() {
    let t = TokenRegistry::start("public/app");
    let mut c = Client::new();
    let (res, out) = c.pull_loud(&t.reference(), &["-u", USER, "--password", STALE]);
    assert_eq!(res.code, 1, "--password that the realm refuses:\n{res}");
    assert!(!out.exists());
    t.assert_nothing_leaked(&res);
    c.set_env("PULLTAR_USERNAME", USER);
    c.set_env("PULLTAR_PASSWORD", STALE);
    let (res, out) = c.pull_loud(&t.reference(), &[]);
    assert_eq!(
        res.code, 1,
        "PULLTAR_PASSWORD that the realm refuses:\n{res}"
    );
    assert!(!out.exists());
    t.assert_nothing_leaked(&res);
}

/// The token server saw the refresh-token grant and no password.
fn assert_refresh_grant(t: &TokenRegistry) {
    let seen = t.requests();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("POST /token") && r.contains("grant=refresh_token")),
        "no POST /token with grant_type=refresh_token: {seen:?}"
    );
    assert!(
        !seen.iter().any(|r| r.ends_with("auth=basic")),
        "an identity token is not a password: {seen:?}"
    );
}

#[test]
fn identity_token_in_docker_config() {
    let t = TokenRegistry::start("private/app");
    let mut c = Client::new();
    c.docker_config(&json!({"auths": {t.reg.host(): {"identitytoken": REFRESH_TOKEN}}}));
    let (res, out) = c.pull_loud(&t.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &t.img, &[t.reference()]);
    assert_refresh_grant(&t);
    t.assert_nothing_leaked(&res);
}

#[test]
fn identity_token_from_a_credential_helper() {
    let t = TokenRegistry::start("private/app");
    let mut c = Client::new();
    c.helper("pttoken", "<token>", REFRESH_TOKEN);
    c.docker_config(&json!({"credsStore": "pttoken"}));
    let (res, out) = c.pull_loud(&t.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &t.img, &[t.reference()]);
    assert_refresh_grant(&t);
    assert!(!c.helper_calls("pttoken").is_empty());
    t.assert_nothing_leaked(&res);
}
