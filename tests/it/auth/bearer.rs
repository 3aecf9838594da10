//! Pulls through Docker-Hub-style token auth: the registry answers 401
//! with a Bearer challenge, pulltar fetches a token from our token server
//! (anonymously) and retries.

use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::verify_everywhere;
use crate::support::registry::{agent, Registry};
use crate::support::token_server::{TokenServer, PASSWORD, USER};
use crate::support::util::{pulltar_in, TempDir};

fn token_registry() -> (TokenServer, Registry) {
    let tokens = TokenServer::start();
    let reg = Registry::start_with(
        Some(tokens.registry_auth()),
        Some(tokens.issuer.push_auth()),
    );
    (tokens, reg)
}

#[test]
fn token_server_issues_anonymous_pull_for_public_repos_only() {
    let (tokens, reg) = token_registry();
    push_simple(&reg, "public/app", "v1", Flavor::Docker);
    let fetch = |scope: &str| -> String {
        let url = format!(
            "http://127.0.0.1:{}/token?service=x&scope={scope}",
            tokens.port
        );
        let body = agent()
            .get(url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["token"].as_str().unwrap().to_string()
    };
    let manifest = |repo: &str, token: &str| -> u16 {
        let url = reg.url(&format!("/v2/{repo}/manifests/v1"));
        let req = agent()
            .get(url)
            .header("Accept", crate::support::images::DOCKER_MANIFEST)
            .header("Authorization", format!("Bearer {token}"));
        req.call().unwrap().status().as_u16()
    };
    assert_eq!(
        manifest("public/app", &fetch("repository%3Apublic%2Fapp%3Apull")),
        200,
        "{}",
        reg.log()
    );
    assert_eq!(
        manifest("public/app", &fetch("repository:private/app:pull")),
        401
    );
    let unauth = agent()
        .get(reg.url("/v2/public/app/manifests/v1"))
        .call()
        .unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    let challenge = unauth
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1:"),
        "{challenge}"
    );
}

#[test]
fn anonymous_pull_through_token_auth() {
    let (tokens, reg) = token_registry();
    let img = push_simple(&reg, "public/app", "v1", Flavor::Docker);
    let work = TempDir::new("tokpull");
    let reference = format!("{}/public/app:v1", reg.host());
    let tar = crate::support::util::pull_ok(&work, &reference, &[]);
    verify_everywhere(&tar, &img, &[reference]);
    let seen = tokens.requests.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.starts_with("GET /token?")
            && r.contains("public")
            && !r.contains("auth=basic")),
        "pulltar never asked the token server anonymously: {seen:?}"
    );
}

#[test]
fn private_repo_without_credentials_fails() {
    let (_tokens, reg) = token_registry();
    push_simple(&reg, "private/app", "v1", Flavor::Docker);
    let dir = TempDir::new("tokdeny");
    let out = dir.join("x.tar");
    let cache = dir.join("cache");
    let res = pulltar_in(
        dir.path(),
        &[
            &format!("{}/private/app:v1", reg.host()),
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(!out.exists(), "a denied pull left a file");
}

/// Pulls `private/app:v1` with extra args and stdin; returns the result and
/// whether the archive exists.
fn pull_private(
    extra: &[&str],
    stdin: Option<&[u8]>,
) -> (crate::support::util::Output, bool, TokenServer) {
    let (tokens, reg) = token_registry();
    let img = push_simple(&reg, "private/app", "v1", Flavor::Docker);
    let dir = TempDir::new("tokcred");
    let out = dir.join("x.tar");
    let cache = dir.join("cache");
    let reference = format!("{}/private/app:v1", reg.host());
    let mut args = vec![
        reference.as_str(),
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let res = crate::support::util::pulltar_with_stdin(dir.path(), &args, stdin);
    let ok = out.exists();
    if res.code == 0 {
        crate::support::loaders::check_archive(&out, &img, std::slice::from_ref(&reference));
    }
    (res, ok, tokens)
}

#[test]
fn private_repo_with_credentials_via_password_stdin() {
    let stdin = format!("{PASSWORD}\n");
    let (res, ok, tokens) = pull_private(&["-u", USER, "--password-stdin"], Some(stdin.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    assert!(ok);
    let seen = tokens.requests.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.contains("private") && r.ends_with("auth=basic")),
        "credentials never reached the token server: {seen:?}"
    );
    assert!(
        !res.stderr.contains(PASSWORD),
        "the password leaked to stderr:\n{res}"
    );
}

#[test]
fn private_repo_with_credentials_via_password_flag() {
    let (res, ok, tokens) = pull_private(
        &["--username", USER, "--password", PASSWORD, "--debug"],
        None,
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(ok);
    assert!(
        !res.stderr.contains(PASSWORD),
        "the password leaked to the debug log:\n{res}"
    );
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(!issued.is_empty(), "no token was issued");
    for t in issued {
        // The signature part alone is enough to replay nothing, but any
        // 40 characters of a token in a log are a leak.
        let sig = t.rsplit('.').next().unwrap();
        assert!(
            !res.stderr.contains(&sig[..40]),
            "a bearer token leaked to the debug log"
        );
    }
}

#[test]
fn private_repo_with_a_wrong_password_fails() {
    let (res, ok, _tokens) = pull_private(&["-u", USER, "--password", "wrong-password"], None);
    assert_eq!(res.code, 1, "{res}");
    assert!(!ok, "a denied pull left a file");
}
