//! Where credentials come from when the command line gives none: the
//! environment (`PULLTAR_USERNAME` and `PULLTAR_PASSWORD`), then docker's
//! own configuration (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): a credential helper named for the registry in
//! `credHelpers`, the `credsStore`, then the `auths` entry (`auth` as
//! base64 `user:password`, `username` and `password`, or an
//! `identitytoken`).
//!
//! Entries are matched by host, whatever scheme or path their key carries;
//! Docker Hub answers to its usual aliases. A helper is the program
//! `docker-credential-<name>` on `PATH`, run as `… get` with the server URL
//! on its standard input, and must answer within 30 seconds. Nothing read
//! here is ever printed. This module does not decide what to do when the
//! registry refuses what it found (`auth.rs` falls back to anonymous).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::registry::auth::Credentials;

/// The user name docker uses to mark a password that is an identity
/// (OAuth2 refresh) token.
pub const TOKEN_USER: &str = "<token>";

const HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Credentials from `PULLTAR_USERNAME` and `PULLTAR_PASSWORD`, when both
/// are set.
pub fn from_env() -> Option<Credentials> {
    let get = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    Some(Credentials {
        username: get("PULLTAR_USERNAME")?,
        password: get("PULLTAR_PASSWORD")?,
    })
}

/// The docker configuration file, if one is set or exists.
fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    crate::sys::home_dir().map(|h| h.join(".docker").join("config.json"))
}

/// `https://host:port/v1/` → `host:port`, lowercase.
fn key_host(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k).to_ascii_lowercase()
}

/// Whether a config key names `host` (Docker Hub's aliases count as one).
fn key_matches(key: &str, host: &str) -> bool {
    let k = key_host(key);
    let h = host.to_ascii_lowercase();
    k == h || (HUB_ALIASES.contains(&k.as_str()) && HUB_ALIASES.contains(&h.as_str()))
}

/// Credentials for `host` from the docker configuration, if any. A broken
/// file or helper is reported as a warning and treated as none.
pub fn from_docker_config(host: &str) -> Option<Credentials> {
    let path = config_path()?;
    let text = std::fs::read(&path).ok()?;
    let config: DockerConfig = match serde_json::from_slice(&text) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("ignoring {}: not valid JSON ({e})", path.display());
            return None;
        }
    };
    let is_hub = HUB_ALIASES.contains(&host.to_ascii_lowercase().as_str());
    let server = if is_hub {
        "https://index.docker.io/v1/".to_string()
    } else {
        host.to_string()
    };
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| key_matches(k, host))
        .map(|(_, v)| v.clone())
        .or(config.creds_store.clone());
    if let Some(name) = helper.filter(|n| !n.is_empty()) {
        match run_helper(&name, &server) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => log::debug!("credential helper {name} has nothing for {host}"),
            Err(e) => log::warn!("credential helper docker-credential-{name}: {e}"),
        }
    }
    let entry = config
        .auths
        .iter()
        .find(|(k, _)| key_matches(k, host))
        .map(|(_, v)| v)?;
    entry_credentials(entry)
}

fn entry_credentials(e: &AuthEntry) -> Option<Credentials> {
    if let Some(token) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credentials {
            username: TOKEN_USER.into(),
            password: token.clone(),
        });
    }
    if let Some(auth) = e.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = crate::registry::base64::base64_decode(auth.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    Some(Credentials {
        username: e.username.clone().filter(|u| !u.is_empty())?,
        password: e.password.clone().filter(|p| !p.is_empty())?,
    })
}

/// Runs `docker-credential-<name> get` for `server`.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, String> {
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("helper name {name:?} is not a plain name"));
    }
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no answer within 30 seconds".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.by_ref().take(64 << 10).read_to_end(&mut out);
    }
    if !status.success() {
        // "credentials not found" is the helpers' way to say none.
        return Ok(None);
    }
    let a: HelperAnswer = serde_json::from_slice(&out)
        .map_err(|_| "its answer is not the expected JSON".to_string())?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: if a.username.is_empty() {
            TOKEN_USER.into()
        } else {
            a.username
        },
        password: a.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_hosts() {
        assert!(key_matches("https://127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(key_matches("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(key_matches("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!key_matches("127.0.0.1:5001", "127.0.0.1:5000"));
        assert!(key_matches(
            "https://index.docker.io/v1/",
            "registry-1.docker.io"
        ));
        assert!(key_matches("docker.io", "index.docker.io"));
        assert!(!key_matches("ghcr.io", "docker.io"));
    }

    #[test]
    fn entry_forms() {
        let e = AuthEntry {
            auth: Some(crate::registry::base64::base64(b"me:pa:ss")),
            ..Default::default()
        };
        let c = entry_credentials(&e).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "pa:ss"));
        let e = AuthEntry {
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(entry_credentials(&e).unwrap().password, "p");
        let e = AuthEntry {
            identitytoken: Some("tok".into()),
            ..Default::default()
        };
        assert_eq!(entry_credentials(&e).unwrap().username, TOKEN_USER);
        assert!(entry_credentials(&AuthEntry::default()).is_none());
        let bad = AuthEntry {
            auth: Some("!!!".into()),
            ..Default::default()
        };
        assert!(entry_credentials(&bad).is_none());
    }

    #[test]
    fn helper_names_are_plain() {
        assert!(run_helper("../evil", "x").is_err());
        assert!(run_helper("a/b", "x").is_err());
    }
}
