//! Where credentials come from, against a registry with htpasswd Basic
//! auth: `-u` with `--password-stdin`, `PULLTAR_USERNAME`/`PULLTAR_PASSWORD`,
//! and the docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `auths` entries in each form, `credHelpers`
//! and `credsStore` helpers (fake `docker-credential-*` scripts on PATH
//! that log how they were called). First match wins. No password ever
//! shows in pulltar's output, with `--debug` and `RUST_LOG=trace` too.
//! Token-auth registries are in `creds_token.rs`.

use crate::support::auth_registries::{BasicRegistry, BPASS, BUSER, STALE};
use crate::support::loaders::{check_archive, verify_everywhere};
use crate::support::user_env::{assert_no_secrets, userpass, Client};
use serde_json::{json, Value};

/// Host-matched `auths` with decoys for other registries holding a wrong
/// password, and the right `entry` under `key`.
fn auths_with_decoys(key: &str, entry: Value) -> Value {
    let decoy = json!({"auth": userpass(BUSER, STALE)});
    let mut auths = json!({
        "127.0.0.1:1": decoy,
        "https://index.docker.io/v1/": decoy,
        "localhost": decoy,
    });
    auths[key] = entry;
    json!({ "auths": auths })
}

fn pull_with_config(key_of: impl Fn(&str) -> String, entry: Value) {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.docker_config(&auths_with_decoys(&key_of(&b.reg.host()), entry));
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    b.assert_authorized();
    assert_no_secrets(&res, BUSER, &[BPASS, STALE]);
}

#[test]
fn basic_auth_with_password_stdin() {
    let b = BasicRegistry::start();
    let c = Client::new();
    let stdin = format!("{BPASS}\n");
    let args = ["-u", BUSER, "--password-stdin", "--debug"];
    let (res, out) = c.pull(
        &b.reference(),
        &args,
        &[("RUST_LOG", "trace")],
        Some(stdin.as_bytes()),
    );
    assert_eq!(res.code, 0, "{res}");
    verify_everywhere(&out, &b.img, &[b.reference()]);
    b.assert_authorized();
    assert_no_secrets(&res, BUSER, &[BPASS]);
}

#[test]
fn basic_auth_without_credentials_fails_saying_so() {
    let b = BasicRegistry::start();
    let c = Client::new();
    let (res, out) = c.pull(&b.reference(), &[], &[], None);
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists(), "a refused pull left {}", out.display());
    let err = res.stderr.to_lowercase();
    assert!(
        ["credential", "password", "username", "log in", "login"]
            .iter()
            .any(|w| err.contains(w)),
        "the message must say credentials are needed:\n{res}"
    );
}

#[test]
fn basic_auth_with_a_wrong_password_fails_without_printing_it() {
    let b = BasicRegistry::start();
    let c = Client::new();
    let (res, out) = c.pull_loud(&b.reference(), &["-u", BUSER, "--password", STALE]);
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists());
    assert_no_secrets(&res, BUSER, &[STALE]);
}

#[test]
fn basic_auth_from_environment() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.set_env("PULLTAR_USERNAME", BUSER);
    c.set_env("PULLTAR_PASSWORD", BPASS);
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    b.assert_authorized();
    assert_no_secrets(&res, BUSER, &[BPASS]);
}

#[test]
fn docker_config_auths_base64_auth() {
    pull_with_config(str::to_string, json!({"auth": userpass(BUSER, BPASS)}));
}

#[test]
fn docker_config_auths_username_and_password() {
    pull_with_config(
        str::to_string,
        json!({"username": BUSER, "password": BPASS}),
    );
}

#[test]
fn docker_config_auths_key_with_https_scheme() {
    pull_with_config(
        |h| format!("https://{h}"),
        json!({"auth": userpass(BUSER, BPASS)}),
    );
}

#[test]
fn docker_config_auths_key_with_http_scheme_and_path() {
    pull_with_config(
        |h| format!("http://{h}/v2/"),
        json!({"auth": userpass(BUSER, BPASS)}),
    );
}

#[test]
fn docker_config_in_home_when_docker_config_is_unset() {
    let b = BasicRegistry::start();
    let c = Client::new();
    c.home_docker_config(&auths_with_decoys(
        &b.reg.host(),
        json!({"auth": userpass(BUSER, BPASS)}),
    ));
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "~/.docker/config.json:\n{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    assert_no_secrets(&res, BUSER, &[BPASS, STALE]);
}

/// The helper was called with `get` and the registry's address on stdin
/// (`127.0.0.1:PORT`, as docker passes it; a scheme is tolerated).
fn assert_helper_asked_for(c: &Client, name: &str, host: &str) {
    let calls = c.helper_calls(name);
    assert!(!calls.is_empty(), "docker-credential-{name} was never run");
    for call in &calls {
        let input = call
            .strip_prefix("get ")
            .unwrap_or_else(|| panic!("helper {name} called with {call:?}"));
        let bare = input
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        assert_eq!(bare, host, "server URL given to docker-credential-{name}");
    }
}

#[test]
fn cred_helper_for_the_registry() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.helper("pttest", BUSER, BPASS);
    c.helper("ptother", BUSER, STALE);
    c.docker_config(&json!({"credHelpers": {
        b.reg.host(): "pttest",
        "127.0.0.1:1": "ptother",
    }}));
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    b.assert_authorized();
    assert_helper_asked_for(&c, "pttest", &b.reg.host());
    assert!(
        c.helper_calls("ptother").is_empty(),
        "the other host's helper ran"
    );
    assert_no_secrets(&res, BUSER, &[BPASS]);
}

#[test]
fn creds_store_for_every_registry() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.helper("ptstore", BUSER, BPASS);
    // As `docker login` leaves it with a store: an empty auths entry.
    c.docker_config(&json!({"credsStore": "ptstore", "auths": {b.reg.host(): {}}}));
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    b.assert_authorized();
    assert_helper_asked_for(&c, "ptstore", &b.reg.host());
    assert_no_secrets(&res, BUSER, &[BPASS]);
}

/// First match wins: flags over the environment over the docker config
/// (whose helper is then not even run).
#[test]
fn flags_beat_environment_beats_docker_config() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.helper("ptstore", BUSER, STALE);
    c.docker_config(&json!({"credsStore": "ptstore"}));
    c.set_env("PULLTAR_USERNAME", BUSER);
    c.set_env("PULLTAR_PASSWORD", BPASS);
    let (res, _) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 0, "environment over config:\n{res}");
    assert!(
        c.helper_calls("ptstore").is_empty(),
        "the helper ran although the environment had credentials"
    );
    c.set_env("PULLTAR_PASSWORD", STALE);
    let stdin = format!("{BPASS}\n");
    let args = ["-u", BUSER, "--password-stdin"];
    let (res, out) = c.pull(&b.reference(), &args, &[], Some(stdin.as_bytes()));
    assert_eq!(res.code, 0, "flags over environment:\n{res}");
    check_archive(&out, &b.img, &[b.reference()]);
    assert!(c.helper_calls("ptstore").is_empty());
    assert_no_secrets(&res, BUSER, &[BPASS, STALE]);
}

/// Stored credentials that the registry refuses on an image that needs
/// them: a failure, not a silent anonymous pull.
#[test]
fn stale_stored_credentials_on_a_private_registry_fail() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.docker_config(&json!({"auths": {b.reg.host(): {"auth": userpass(BUSER, STALE)}}}));
    let (res, out) = c.pull_loud(&b.reference(), &[]);
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists());
    assert_no_secrets(&res, BUSER, &[STALE]);
}
