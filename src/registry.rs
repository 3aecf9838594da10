//! The registry client: one shared `ureq::Agent`, the `/v2/` ping, the auth
//! handshake (anonymous, Basic, Bearer with cached tokens, renewed before
//! they expire and once more on a 401), manifest fetches with every manifest
//! type accepted, and opening blob streams (whole, or a byte range).
//!
//! It returns bytes and open streams; it does not choose platforms, verify
//! blobs or write files (`download.rs` and `pull.rs` do). Plain HTTP is used
//! only for registries on loopback; everything else is HTTPS. The
//! `Authorization` header is never forwarded across a redirect, so blob
//! redirects to a CDN carry no token.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::Response;
use ureq::Body;

use crate::auth::{self, Challenge, Credentials, TokenCache};
use crate::digest::Digest;
use crate::error::{excerpt, redact_url, Error, Result};
use crate::forward::ForwardProxy;
use crate::manifest;
use crate::proxy::ProxyConfig;
use crate::reference::Reference;
use crate::retry::{self, Policy};
use crate::{credentials, tls, transport};

/// How the client reaches a registry.
#[derive(Clone, Debug)]
pub struct Options {
    /// Skip TLS certificate verification (and allow an http token realm).
    pub insecure: bool,
    /// Credentials from the command line or the environment, if any; else
    /// the docker config is consulted.
    pub credentials: Option<Credentials>,
    /// How many connections may be open at once.
    pub connections: usize,
    /// How long a connection may send nothing before it is cut.
    pub read_timeout: Duration,
    /// When to retry the ping, token and manifest requests.
    pub policy: Policy,
    /// Extra certificate authorities (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Proxy settings.
    pub proxy: ProxyConfig,
    /// A Docker Hub mirror (`--registry`).
    pub mirror: Option<String>,
}

/// What the ping said about authentication.
#[derive(Clone, Debug)]
enum AuthMode {
    Anonymous,
    Basic,
    Bearer(Challenge),
}

/// A client for one repository on one registry.
pub struct Registry {
    agent: ureq::Agent,
    /// For a plain-HTTP registry behind an HTTP proxy: requests in absolute
    /// form, without CONNECT.
    forward: Option<ForwardProxy>,
    base: String,
    scope: String,
    repository: String,
    insecure: bool,
    credentials: Mutex<Option<Credentials>>,
    /// Whether the credentials were found in the docker config (and may be
    /// dropped for anonymous access when refused).
    stored_credentials: bool,
    policy: Policy,
    mode: Mutex<AuthMode>,
    tokens: TokenCache,
    /// Held while a token is fetched, so that threads needing a new one
    /// at the same moment make one request, not one each.
    token_fetch: Mutex<()>,
}

/// The most read of an error or token body.
const SMALL_BODY: u64 = 64 << 10;

impl Registry {
    /// Builds the client for `reference` (through the `--registry` mirror
    /// for Docker Hub images when one is given) and pings the registry to
    /// learn how it authenticates.
    pub fn connect(reference: &Reference, options: &Options) -> Result<Registry> {
        let host = match &options.mirror {
            Some(m) if reference.is_docker_hub() => m.as_str(),
            _ => reference.api_host(),
        };
        let (credentials, stored_credentials) = match &options.credentials {
            Some(c) => (Some(c.clone()), false),
            None => match credentials::from_docker_config(host) {
                Some(c) => {
                    log::debug!("using the docker config's credentials for {host}");
                    (Some(c), true)
                }
                None => (None, false),
            },
        };
        let endpoint = transport::open(host, options)?;
        let registry = Registry {
            agent: endpoint.agent,
            forward: endpoint.forward,
            base: endpoint.base,
            scope: reference.scope(),
            repository: reference.repository().to_string(),
            insecure: options.insecure,
            credentials: Mutex::new(credentials),
            stored_credentials,
            policy: options.policy.clone(),
            mode: Mutex::new(AuthMode::Anonymous),
            tokens: TokenCache::default(),
            token_fetch: Mutex::new(()),
        };
        match endpoint.probe {
            Some(resp) => registry.ping_answer(resp)?,
            None => registry.ping()?,
        }
        Ok(registry)
    }

    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        self.retrying("contacting the registry", || {
            let resp = self.send(&url, "contacting the registry", None, None, None)?;
            self.ping_answer(resp)
        })
    }

    /// Reads the answer to `GET /v2/`: 200 means anonymous, 401 carries
    /// the challenge.
    fn ping_answer(&self, mut resp: Response<Body>) -> Result<()> {
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                self.learn_challenge(&resp)?;
                drain(&mut resp);
                Ok(())
            }
            status => {
                let url = format!("{}/v2/", self.base);
                Err(http_error(
                    "contacting the registry",
                    &url,
                    status,
                    &mut resp,
                ))
            }
        }
    }

    /// Runs `attempt` by the retry policy; for requests that stream
    /// nothing (ping, token, manifest), so no attempt counts as progress.
    fn retrying<T>(&self, what: &str, attempt: impl FnMut() -> Result<T>) -> Result<T> {
        retry::run(&self.policy, what, None, || false, attempt)
    }

    /// Reads the challenge of a 401 answer and switches to its scheme.
    fn learn_challenge(&self, resp: &Response<Body>) -> Result<()> {
        let header = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = auth::parse_challenges(&header);
        let mode = if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            AuthMode::Bearer(b.clone())
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            AuthMode::Basic
        } else {
            return Err(Error::Auth(format!(
                "{} asked for authentication without a usable WWW-Authenticate challenge ({:?})",
                self.base,
                excerpt(header.as_bytes(), 100)
            )));
        };
        log::debug!(
            "registry auth: {}",
            match &mode {
                AuthMode::Anonymous => "anonymous",
                AuthMode::Basic => "basic",
                AuthMode::Bearer(_) => "bearer",
            }
        );
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        Ok(())
    }

    /// The `Authorization` value for the next request, fetching a token if
    /// none is fresh.
    fn authorization(&self) -> Result<Option<String>> {
        let mode = self.mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match mode {
            AuthMode::Anonymous => Ok(None),
            AuthMode::Basic => match self.current_credentials() {
                Some(c) => Ok(Some(c.basic_header())),
                None => Err(Error::Auth(format!(
                    "{} requires a user name and password: pass -u USER --password-stdin",
                    self.base
                ))),
            },
            AuthMode::Bearer(challenge) => {
                let url = auth::token_url(&challenge, &self.scope).map_err(Error::Auth)?;
                if let Some(t) = self.tokens.get(&url, Instant::now()) {
                    return Ok(Some(t.header()));
                }
                let _one_at_a_time = self.token_fetch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t) = self.tokens.get(&url, Instant::now()) {
                    return Ok(Some(t.header()));
                }
                let token = self.fetch_token(&challenge, &url)?;
                self.tokens.put(&url, token.clone());
                Ok(Some(token.header()))
            }
        }
    }

    fn forget_tokens(&self) {
        let mode = self.mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let AuthMode::Bearer(challenge) = mode {
            if let Ok(url) = auth::token_url(&challenge, &self.scope) {
                self.tokens.forget(&url);
            }
        }
    }

    fn current_credentials(&self) -> Option<Credentials> {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fetches a token from the challenge's realm: a GET (with Basic
    /// credentials if there are any), or for an identity token docker's
    /// OAuth2 refresh POST. Stored credentials the realm refuses are
    /// dropped, and the token fetched anonymously.
    fn fetch_token(&self, challenge: &Challenge, url: &str) -> Result<auth::Token> {
        if url.starts_with("http://") && self.base.starts_with("https://") && !self.insecure {
            return Err(Error::Auth(format!(
                "the registry sends tokens over plain http ({}); refusing to fetch one (use --insecure to allow it)",
                redact_url(url)
            )));
        }
        log::debug!("fetching a token from {}", redact_url(url));
        let what = "fetching a registry token";
        let creds = self.current_credentials();
        let sent = match &creds {
            Some(c) if c.username == credentials::TOKEN_USER => {
                let realm = challenge.param("realm").unwrap_or(url);
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "pulltar"),
                    ("refresh_token", c.password.as_str()),
                ];
                if let Some(service) = challenge.param("service") {
                    form.push(("service", service));
                }
                let scope = challenge.param("scope").unwrap_or(&self.scope);
                form.push(("scope", scope));
                self.agent.post(realm).send_form(form)
            }
            Some(c) => self.http_get(url, vec![("Authorization", c.basic_header())]),
            None => self.http_get(url, Vec::new()),
        };
        let mut resp = sent.map_err(|e| network_error(what, url, e))?;
        let status = resp.status().as_u16();
        if matches!(status, 401 | 403) && creds.is_some() && self.stored_credentials {
            drain(&mut resp);
            log::warn!(
                "the docker config's credentials for {} were refused; continuing anonymously",
                self.base
            );
            *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return self.fetch_token(challenge, url);
        }
        if status != 200 {
            let e = http_error(what, url, status, &mut resp);
            // Busy or broken token servers are worth another try.
            return Err(if e.is_retryable() {
                e
            } else {
                Error::Auth(e.to_string())
            });
        }
        let body = read_limited(&mut resp, SMALL_BODY, what, url)?;
        auth::parse_token(&body, Instant::now()).map_err(Error::Auth)
    }

    /// Sends a GET with the current authorization (for the bytes
    /// `[start, end)` when `range` is given); on a 401 learns the new
    /// challenge, renews the token and tries once more.
    fn get(
        &self,
        url: &str,
        what: &str,
        accept: Option<&str>,
        range: Option<(u64, u64)>,
    ) -> Result<Response<Body>> {
        let auth = self.authorization()?;
        let mut resp = self.send(url, what, accept, auth.as_deref(), range)?;
        if resp.status().as_u16() == 401 {
            log::debug!("401 from {}: renewing authorization", redact_url(url));
            self.learn_challenge(&resp)?;
            drain(&mut resp);
            self.forget_tokens();
            let auth = self.authorization()?;
            resp = self.send(url, what, accept, auth.as_deref(), range)?;
        }
        Ok(resp)
    }

    /// A GET of `url` with `headers`: through the forward proxy for
    /// `http://` URLs when there is one (and through ureq for a redirect
    /// it hands back), else through ureq.
    fn http_get(
        &self,
        url: &str,
        headers: Vec<(&str, String)>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let Some(forward) = self.forward.as_ref().filter(|_| url.starts_with("http://")) else {
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            return req.call();
        };
        let resp = forward.get(url, &headers)?;
        let redirect = matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(next) if redirect && next.starts_with("https://") => {
                // Another host: the registry's token stays behind.
                let mut req = self.agent.get(next);
                for (k, v) in headers.into_iter().filter(|(k, _)| *k != "Authorization") {
                    req = req.header(k, v);
                }
                req.call()
            }
            _ => Ok(resp),
        }
    }

    fn send(
        &self,
        url: &str,
        what: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
        range: Option<(u64, u64)>,
    ) -> Result<Response<Body>> {
        let mut headers = Vec::new();
        if let Some(a) = accept {
            headers.push(("Accept", a.to_string()));
        }
        if let Some(a) = authorization {
            headers.push(("Authorization", a.to_string()));
        }
        if let Some((start, end)) = range {
            headers.push(("Range", format!("bytes={start}-{}", end.saturating_sub(1))));
        }
        let started = Instant::now();
        let resp = self
            .http_get(url, headers)
            .map_err(|e| network_error(what, url, e))?;
        log::debug!(
            "GET {}{} -> {} ({} ms)",
            redact_url(url),
            range.map_or(String::new(), |(a, b)| format!(
                " bytes {a}-{}",
                b.saturating_sub(1)
            )),
            resp.status().as_u16(),
            started.elapsed().as_millis()
        );
        Ok(resp)
    }

    /// Fetches a manifest or index by tag or digest: its bytes and the
    /// `Content-Type` the registry gave. Bodies over
    /// [`manifest::MAX_MANIFEST_BYTES`] are refused.
    pub fn manifest(&self, key: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = format!("{}/v2/{}/manifests/{key}", self.base, self.repository);
        let what = format!("fetching the manifest {}:{key}", self.repository);
        self.retrying(&what, || {
            let mut resp = self.get(&url, &what, Some(manifest::ACCEPT), None)?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(http_error(&what, &url, status, &mut resp));
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = read_limited(&mut resp, manifest::MAX_MANIFEST_BYTES, &what, &url)?;
            Ok((body, content_type))
        })
    }

    /// Opens the blob `digest`, or only its bytes `[start, end)` (a `Range`
    /// request). Returns the response whatever its status; the caller
    /// checks it (200, or 206 for a range).
    pub fn open_blob(&self, digest: &Digest, range: Option<(u64, u64)>) -> Result<Response<Body>> {
        let url = self.blob_url(digest);
        self.get(&url, &format!("downloading blob {digest}"), None, range)
    }

    /// The registry URL of a blob (never a redirect target).
    pub fn blob_url(&self, digest: &Digest) -> String {
        format!("{}/v2/{}/blobs/{digest}", self.base, self.repository)
    }

    /// Turns a blob response with an unexpected status into an error that
    /// names the blob.
    pub fn blob_error(&self, digest: &Digest, resp: &mut Response<Body>) -> Error {
        let status = resp.status().as_u16();
        http_error(
            &format!("downloading blob {digest}"),
            &self.blob_url(digest),
            status,
            resp,
        )
    }
}

/// Reads a body of at most `limit` bytes.
fn read_limited(resp: &mut Response<Body>, limit: u64, what: &str, url: &str) -> Result<Vec<u8>> {
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::Manifest {
                what: what.to_string(),
                reason: format!(
                    "the answer from {} is larger than {limit} bytes",
                    redact_url(url)
                ),
            },
            other => network_error(what, url, other),
        })
}

/// Reads (a bounded part of) the body so the connection can be reused.
fn drain(resp: &mut Response<Body>) {
    let _ = resp
        .body_mut()
        .with_config()
        .limit(SMALL_BODY)
        .read_to_vec();
}

/// An HTTP status error with an excerpt of the body (the spec's error
/// message when there is one).
pub fn http_error(what: &str, url: &str, status: u16, resp: &mut Response<Body>) -> Error {
    let body = resp
        .body_mut()
        .with_config()
        .limit(SMALL_BODY)
        .read_to_vec()
        .unwrap_or_default();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
    let text = spec_error_message(&body).unwrap_or_else(|| excerpt(&body, 200));
    Error::Http {
        what: what.to_string(),
        url: format!("GET {}", redact_url(url)),
        status,
        excerpt: text,
        retry_after,
    }
}

/// `https://host:port/path` → `host:port`.
fn host_of_url(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The first `{code, message}` of a distribution-spec error body.
fn spec_error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = v.get("errors")?.get(0)?;
    let code = first.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let message = first.get("message").and_then(|c| c.as_str()).unwrap_or("");
    Some(excerpt(format!("{code}: {message}").as_bytes(), 200))
}

/// A transport failure, classified as transient or not.
pub fn network_error(what: &str, url: &str, e: ureq::Error) -> Error {
    let transient = !tls::is_certificate_error(&e)
        && matches!(
            e,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Protocol(_)
        );
    let cause = match &e {
        e if tls::is_certificate_error(e) => format!(
            "the TLS certificate of {} is not trusted ({e}); if the registry uses a private certificate authority, pass it with --ca-cert FILE (or skip verification with --insecure)",
            host_of_url(url)
        ),
        ureq::Error::Rustls(r) => format!("TLS error: {r}"),
        other => other.to_string(),
    };
    Error::Network {
        what: what.to_string(),
        url: format!("GET {}", redact_url(url)),
        cause,
        transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors_are_summarised() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            spec_error_message(body).unwrap(),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert!(spec_error_message(b"<html>").is_none());
    }

    #[test]
    fn network_errors_redact() {
        let e = network_error(
            "x",
            "https://cdn/blob?sig=secret",
            ureq::Error::ConnectionFailed,
        );
        let text = e.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(e.is_retryable());
    }
}
