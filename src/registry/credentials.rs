//! Where credentials come from when the command line gives none, and where
//! `pulltar login` keeps them: the environment (`PULLTAR_USERNAME` and
//! `PULLTAR_PASSWORD`), then docker's own configuration (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): a credential helper named for the registry in
//! `credHelpers`, the `credsStore`, then the `auths` entry (`auth` as
//! base64 `user:password`, `username` and `password`, or an
//! `identitytoken`).
//!
//! Entries are matched by host, whatever scheme or path their key carries;
//! Docker Hub answers to its usual aliases. A helper is the program
//! `docker-credential-<name>` on `PATH`, run as `… get` with the server URL
//! on its standard input, and must answer within 30 seconds. A login is
//! stored ([`store`]) and removed ([`erase`]) the way docker does: `… store`
//! and `… erase` of the helper, else base64 in `auths`, the rest of the
//! file kept and the file replaced at once, private to its owner. Nothing
//! read here is ever printed. This module does not decide what to do when the
//! registry refuses what it found (`auth.rs` falls back to anonymous).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

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
    config_path()?;
    let file = read_config()
        .map_err(|e| log::warn!("ignoring the docker config: {e}"))
        .ok()?;
    if let Some(name) = file.helper(host) {
        match run_helper(&name, &server_key(host)) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => log::debug!("credential helper {name} has nothing for {host}"),
            Err(e) => log::warn!("credential helper docker-credential-{name}: {e}"),
        }
    }
    let entry = file
        .config
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
    let Some(out) = call_helper(name, "get", server.as_bytes())? else {
        // "credentials not found" is the helpers' way to say none.
        return Ok(None);
    };
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

/// Runs `docker-credential-<name> <action>` with `input` on its standard
/// input: what it printed (64 KiB at most), or `None` when it failed.
fn call_helper(name: &str, action: &str, input: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("helper name {name:?} is not a plain name"));
    }
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(action)
        .env_remove("PULLTAR_PASSWORD")
        .env_remove("PULLTAR_USERNAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
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
    Ok(status.success().then_some(out))
}

/// Whether `host` is one of Docker Hub's names.
pub fn is_docker_hub(host: &str) -> bool {
    HUB_ALIASES.contains(&host.to_ascii_lowercase().as_str())
}

/// The key docker keeps `host`'s login under: `https://index.docker.io/v1/`
/// for Docker Hub, else the host itself.
pub fn server_key(host: &str) -> String {
    if is_docker_hub(host) {
        "https://index.docker.io/v1/".to_string()
    } else {
        host.to_string()
    }
}

/// Where [`store`] kept a login.
pub enum Stored {
    /// With `docker-credential-<name>`.
    Helper(String),
    /// Unencrypted, in the `auths` of this file.
    File(PathBuf),
}

/// The docker config file: where, every key as it is, and what pulltar
/// reads of it.
struct ConfigFile {
    path: PathBuf,
    map: Map<String, Value>,
    config: DockerConfig,
}

/// Reads the docker config (an absent file is an empty one); a file that
/// is not a JSON object is an error, and is left alone.
fn read_config() -> Result<ConfigFile, String> {
    let path = config_path().ok_or("no docker config folder: set DOCKER_CONFIG or HOME")?;
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let map: Map<String, Value> = match std::fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not valid JSON ({e})", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let config = serde_json::from_value(Value::Object(map.clone()))
        .map_err(|e| format!("{} is not a docker config ({e})", path.display()))?;
    Ok(ConfigFile { path, map, config })
}

impl ConfigFile {
    /// The credential helper for `host`: its `credHelpers` entry, else the
    /// `credsStore`.
    fn helper(&self, host: &str) -> Option<String> {
        let c = &self.config;
        c.cred_helpers
            .iter()
            .find(|(k, _)| key_matches(k, host))
            .map(|(_, v)| v.clone())
            .or(c.creds_store.clone())
            .filter(|n| !n.is_empty())
    }
}

/// Stores the login `c` for `host` as docker does: with the credential
/// helper the config names for it (`credHelpers`, else `credsStore`), else
/// base64 in `auths`. Any other entry for `host` in `auths` goes, every
/// other key of the file stays; the file is replaced at once, readable by
/// its owner only.
pub fn store(host: &str, c: &Credentials) -> Result<Stored, String> {
    let file = read_config()?;
    let helper = file.helper(host);
    let ConfigFile { path, mut map, .. } = file;
    let server = server_key(host);
    let entry = match &helper {
        Some(name) => {
            let input = serde_json::json!({"ServerURL": server, "Username": c.username, "Secret": c.password});
            call_helper(name, "store", input.to_string().as_bytes())?
                .ok_or(format!("docker-credential-{name} store failed"))?;
            serde_json::json!({})
        }
        None => {
            let pair = format!("{}:{}", c.username, c.password);
            serde_json::json!({"auth": crate::registry::base64::base64(pair.as_bytes())})
        }
    };
    let auths = map
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(format!("{}: \"auths\" is not an object", path.display()));
    };
    auths.retain(|k, _| !key_matches(k, host));
    auths.insert(server, entry);
    write_config(&path, &map)?;
    Ok(match helper {
        Some(name) => Stored::Helper(name),
        None => Stored::File(path),
    })
}

/// Removes `host`'s login: from its credential helper, and its `auths`
/// entries. Whether there was one to remove.
pub fn erase(host: &str) -> Result<bool, String> {
    let file = read_config()?;
    let helper = file.helper(host);
    let ConfigFile { path, mut map, .. } = file;
    let mut found = match &helper {
        Some(name) => call_helper(name, "erase", server_key(host).as_bytes())?.is_some(),
        None => false,
    };
    if let Some(auths) = map.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| !key_matches(k, host));
        if auths.len() != before {
            found = true;
            write_config(&path, &map)?;
        }
    }
    Ok(found)
}

/// Writes `map` to `path` through a private temporary file beside it,
/// renamed over it.
fn write_config(path: &Path, map: &Map<String, Value>) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    crate::sys::create_private_dir_all(dir).map_err(fail)?;
    let tmp = dir.join(format!("config.json.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let text = serde_json::to_vec_pretty(map).map_err(|e| e.to_string())?;
    let written = crate::sys::open_private(
        &tmp,
        std::fs::OpenOptions::new().write(true).create_new(true),
    )
    .and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    })
    .and_then(|()| crate::sys::replace(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(fail)
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
