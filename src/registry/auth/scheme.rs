//! Registry authentication, without the HTTP: parsing `WWW-Authenticate`
//! challenges, building token requests, reading token answers, keeping
//! tokens until shortly before they expire, and holding credentials so that
//! they never print.
//!
//! The handshake itself (learn the challenge, fetch the token) is
//! [`super::Auth`]'s; this module only decides and remembers. Credentials come from the command
//! line here; the docker config and credential helpers are not read by this
//! module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::registry::base64::base64;

/// A user name and password (or token) for a registry.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, with lowercased keys, in order.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `key` (lowercase), if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` header into its challenges. Values may be
/// quoted (with commas and escaped quotes inside) or bare tokens; scheme
/// names are case-insensitive. Junk yields fewer challenges, never a panic.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let tok_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..tok_end];
        let after = rest[tok_end..].trim_start_matches([' ', '\t']);
        if token.is_empty() {
            break;
        }
        if let Some(value_part) = after.strip_prefix('=') {
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remainder) = read_value(value_part);
            if let Some(current) = out.last_mut() {
                current.params.push((token.to_ascii_lowercase(), value));
            }
            rest = remainder;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: Vec::new(),
            });
            rest = after;
        }
    }
    out
}

/// Reads a quoted string or a bare token; returns it and what follows.
fn read_value(s: &str) -> (String, &str) {
    if let Some(inner) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => return (value, &inner[i + 1..]),
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    }
}

/// The scopes a token is asked for: the challenge's own first (some
/// registries look only at the first), then each of `ours` it lacks (GCR's
/// challenges name none; a push needs `pull,push`, a mount `pull` on the
/// source repository too).
pub fn scopes<'a>(challenge: &'a Challenge, ours: &'a [String]) -> Vec<&'a str> {
    let mut all: Vec<&str> = Vec::new();
    let theirs = challenge.param("scope").unwrap_or("");
    for s in theirs
        .split(' ')
        .chain(ours.iter().flat_map(|o| o.split(' ')))
    {
        if !s.is_empty() && !all.contains(&s) {
            all.push(s);
        }
    }
    all
}

/// The token endpoint URL for a Bearer challenge, with `service` and the
/// [`scopes`].
pub fn token_url(challenge: &Challenge, ours: &[String]) -> Result<String, String> {
    let realm = challenge
        .param("realm")
        .ok_or("the registry's Bearer challenge has no realm")?;
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return Err(format!(
            "the token realm {:?} is not an http(s) URL",
            crate::error::redact_url(realm)
        ));
    }
    let mut url = realm.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if let Some(service) = challenge.param("service") {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&percent_encode(service));
        sep = '&';
    }
    for s in scopes(challenge, ours) {
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&percent_encode(s));
        sep = '&';
    }
    Ok(url)
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    value: String,
    refresh_at: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.value)
    }

    /// Whether the token should be renewed before use at `now`.
    pub fn is_stale(&self, now: Instant) -> bool {
        now >= self.refresh_at
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a token endpoint's JSON answer (`token` or `access_token`, with
/// `expires_in`, 60 s when absent), obtained at `now`. The token is
/// renewed a tenth of its life (at least one second) before it expires.
pub fn parse_token(body: &[u8], now: Instant) -> Result<Token, String> {
    let a: TokenAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("the token endpoint sent something that is not a token: {e}"))?;
    let value = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token.filter(|t| !t.is_empty()))
        .ok_or("the token endpoint's answer has no token")?;
    if value.chars().any(|c| c.is_control() || c == ' ') {
        return Err("the token endpoint's token contains invalid characters".into());
    }
    let life = Duration::from_secs(a.expires_in.unwrap_or(60).clamp(1, 86_400));
    let margin = (life / 10).max(Duration::from_secs(1)).min(life / 2);
    Ok(Token {
        value,
        refresh_at: now + life - margin,
    })
}

/// Tokens by (realm URL with service and scope).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenCache {
    /// A fresh token for `key`, if one is held.
    pub fn get(&self, key: &str, now: Instant) -> Option<Token> {
        let map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|t| !t.is_stale(now)).cloned()
    }

    /// Remembers a token.
    pub fn put(&self, key: &str, token: Token) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_string(), token);
    }

    /// Forgets every token (after a 401).
    pub fn clear(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            token_url(&c[0], &["repository:library/nginx:pull".into()]).unwrap(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fnginx%3Apull"
        );
    }

    #[test]
    fn commas_in_quotes_and_case() {
        let c = parse_challenges(
            r#"BEARER Realm="https://x/t", scope="repository:a:pull,push", error="insufficient_scope""#,
        );
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://x/t"));
        assert_eq!(c[0].param("scope"), Some("repository:a:pull,push"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn escaped_quote_and_bare_tokens() {
        let c = parse_challenges(r#"Bearer realm=https://x/t,service="a\"b""#);
        assert_eq!(c[0].param("realm"), Some("https://x/t"));
        assert_eq!(c[0].param("service"), Some("a\"b"));
    }

    #[test]
    fn several_challenges() {
        let c = parse_challenges(r#"Basic realm="r1", Bearer realm="https://t",service=s"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[1].param("service"), Some("s"));
    }

    #[test]
    fn gcr_without_scope_uses_fallback() {
        let c = parse_challenges(r#"Bearer realm="https://gcr.io/v2/token",service="gcr.io""#);
        let url = token_url(&c[0], &["repository:p/img:pull".into()]).unwrap();
        assert!(url.ends_with("&scope=repository%3Ap%2Fimg%3Apull"), "{url}");
    }

    #[test]
    fn push_and_mount_scopes() {
        let c = parse_challenges(r#"Bearer realm="https://t",scope="repository:b:pull,push""#);
        let ours = [
            "repository:b:pull,push".to_string(),
            "repository:a:pull".to_string(),
        ];
        assert_eq!(
            scopes(&c[0], &ours),
            ["repository:b:pull,push", "repository:a:pull"]
        );
        let url = token_url(&c[0], &ours).unwrap();
        assert!(
            url.ends_with("?scope=repository%3Ab%3Apull%2Cpush&scope=repository%3Aa%3Apull"),
            "{url}"
        );
    }

    #[test]
    fn junk_does_not_panic() {
        for h in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer =x",
            "a=b",
        ] {
            let _ = parse_challenges(h);
        }
        assert!(parse_challenges("a=b").is_empty());
    }

    #[test]
    fn realm_must_be_http() {
        let c = parse_challenges(r#"Bearer realm="file:///etc/passwd""#);
        assert!(token_url(&c[0], &["s".into()]).is_err());
        let c = parse_challenges("Bearer service=x");
        assert!(token_url(&c[0], &["s".into()]).is_err());
    }

    #[test]
    fn token_answers() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.header(), "Bearer abc");
        assert!(!t.is_stale(now + Duration::from_secs(269)));
        assert!(t.is_stale(now + Duration::from_secs(270)));
        let t = parse_token(br#"{"access_token":"xyz"}"#, now).unwrap();
        assert_eq!(t.header(), "Bearer xyz");
        assert!(t.is_stale(now + Duration::from_secs(54)));
        let t = parse_token(br#"{"token":"short","expires_in":3}"#, now).unwrap();
        assert!(!t.is_stale(now + Duration::from_millis(1900)));
        assert!(t.is_stale(now + Duration::from_secs(2)));
        assert!(parse_token(br#"{"token":""}"#, now).is_err());
        assert!(parse_token(b"<html>", now).is_err());
        assert!(parse_token(br#"{"token":"a\nb"}"#, now).is_err());
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = parse_token(br#"{"token":"secret"}"#, Instant::now()).unwrap();
        assert!(!format!("{t:?}").contains("secret"));
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn cache_expires() {
        let now = Instant::now();
        let cache = TokenCache::default();
        cache.put(
            "k",
            parse_token(br#"{"token":"a","expires_in":10}"#, now).unwrap(),
        );
        assert!(cache.get("k", now).is_some());
        assert!(cache.get("k", now + Duration::from_secs(10)).is_none());
        cache.clear();
        assert!(cache.get("k", now).is_none());
    }
}
