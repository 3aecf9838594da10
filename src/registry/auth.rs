//! The authentication half of the registry client: learning the scheme
//! from a 401's `WWW-Authenticate` challenges, the `Authorization` value
//! for each request (Basic credentials, or a Bearer token, from the cache
//! while it is fresh), and fetching tokens from the challenge's realm: a
//! GET (with Basic credentials if there are any), or docker's OAuth2
//! refresh POST for an identity token. Stored credentials the realm refuses
//! are dropped and the token fetched anonymously; a token realm on plain
//! http is refused for an https registry unless the realm's host is in the
//! scope of `--insecure` or `--insecure-registry` (a realm on a loopback or
//! link-local address, for a registry that is not on one, is refused by
//! the transport's address guard). One thread at a time fetches a token.
//!
//! The state lives in an [`Auth`], one per registry client; a 401 renews
//! it in `client/request.rs`, and token requests go out through the
//! [`Endpoint`] of `transport.rs`. Parsing challenges and token answers,
//! and the token cache itself, are in [`scheme`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::Response;
use ureq::Body;

use crate::error::{excerpt, redact_url, Error, Result};
use crate::registry::credentials;
use crate::registry::http_error::{
    drain, http_error, network_error_of, read_limited, small_body_deadline, SMALL_BODY,
};
use crate::registry::transport::{Endpoint, Outgoing, Payload};

pub mod scheme;

pub use scheme::{parse_challenges, token_url, Credentials};
use scheme::{Challenge, TokenCache};

/// What the ping said about authentication.
#[derive(Clone, Debug)]
pub(crate) enum AuthMode {
    Anonymous,
    Basic,
    Bearer(Challenge),
}

/// The authentication state of one registry client: the scheme learned,
/// the credentials, and the tokens fetched for its scopes (one repository,
/// to pull or to push, and for a cross-repository mount the source's pull
/// too).
pub(crate) struct Auth {
    /// The registry's base URL, for messages and the realm checks.
    base: String,
    /// The token scopes every request needs (`repository:<name>:pull`, or
    /// `…:pull,push` for a push).
    scopes: Vec<String>,
    /// How long a token answer may take to arrive.
    read_timeout: Duration,
    credentials: Mutex<Option<Credentials>>,
    /// Whether the credentials were found in the docker config (and may be
    /// dropped for anonymous access when refused).
    stored_credentials: bool,
    mode: Mutex<AuthMode>,
    tokens: TokenCache,
    /// Held while a token is fetched, so that threads needing a new one
    /// at the same moment make one request, not one each.
    token_fetch: Mutex<()>,
}

impl Auth {
    /// Anonymous until a challenge says otherwise.
    pub(crate) fn new(
        base: &str,
        scopes: Vec<String>,
        read_timeout: Duration,
        credentials: Option<Credentials>,
        stored_credentials: bool,
    ) -> Auth {
        Auth {
            base: base.to_string(),
            scopes,
            read_timeout,
            credentials: Mutex::new(credentials),
            stored_credentials,
            mode: Mutex::new(AuthMode::Anonymous),
            tokens: TokenCache::default(),
            token_fetch: Mutex::new(()),
        }
    }

    /// Reads the challenge of a 401 answer and switches to its scheme; a
    /// 401 without one keeps the scheme already known, if there is one.
    pub(crate) fn learn_challenge(&self, resp: &Response<Body>) -> Result<()> {
        let header = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = scheme::parse_challenges(&header);
        let mut current = self.mode.lock().unwrap_or_else(|p| p.into_inner());
        let mode = if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            AuthMode::Bearer(b.clone())
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            AuthMode::Basic
        } else if !matches!(*current, AuthMode::Anonymous) {
            // A bare 401 (GCR sends some): the scheme already learned still
            // holds; the caller renews the token.
            log::debug!("401 without a challenge: keeping the registry's known scheme");
            return Ok(());
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
        *current = mode;
        Ok(())
    }

    /// The `Authorization` value for the next request (which needs the
    /// `extra` scope too, if any), fetching a token if none is fresh.
    pub(crate) fn authorization(
        &self,
        endpoint: &Endpoint,
        extra: Option<&str>,
    ) -> Result<Option<String>> {
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
                let mut scopes = self.scopes.clone();
                scopes.extend(extra.map(str::to_string));
                let url = scheme::token_url(&challenge, &scopes).map_err(Error::Auth)?;
                if let Some(t) = self.tokens.get(&url, Instant::now()) {
                    return Ok(Some(t.header()));
                }
                let _one_at_a_time = self.token_fetch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t) = self.tokens.get(&url, Instant::now()) {
                    return Ok(Some(t.header()));
                }
                let token = self.fetch_token(endpoint, &challenge, &url, &scopes)?;
                self.tokens.put(&url, token.clone());
                Ok(Some(token.header()))
            }
        }
    }

    /// Forgets the tokens held, after a 401.
    pub(crate) fn forget_tokens(&self) {
        self.tokens.clear();
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
    fn fetch_token(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        url: &str,
        scopes: &[String],
    ) -> Result<scheme::Token> {
        let realm_host = crate::registry::location::host_of(url);
        if url.starts_with("http://")
            && self.base.starts_with("https://")
            && !endpoint.reach.unverified(realm_host)
        {
            return Err(Error::Auth(format!(
                "the registry sends tokens over plain http ({}); refusing to fetch one (use --insecure, or --insecure-registry {realm_host}, to allow it)",
                redact_url(url)
            )));
        }
        log::debug!("fetching a token from {}", redact_url(url));
        let what = "fetching a registry token";
        let creds = self.current_credentials();
        let form;
        let mut req = Outgoing::new("GET", url, Vec::new());
        match &creds {
            Some(c) if c.username == credentials::TOKEN_USER => {
                let mut fields = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "pulltar"),
                    ("refresh_token", c.password.as_str()),
                ];
                fields.extend(challenge.param("service").map(|s| ("service", s)));
                fields.extend(
                    scheme::scopes(challenge, scopes)
                        .into_iter()
                        .map(|s| ("scope", s)),
                );
                let encoded: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", scheme::percent_encode(v)))
                    .collect();
                form = encoded.join("&");
                req.method = "POST";
                req.url = challenge.param("realm").unwrap_or(url);
                req.headers = vec![(
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_string(),
                )];
                req.body = Payload::Bytes(form.as_bytes());
            }
            Some(c) => req.headers = vec![("Authorization", c.basic_header())],
            None => {}
        }
        let (method, to) = (req.method, req.url);
        let mut resp = endpoint
            .exchange(req)
            .map_err(|e| network_error_of(method, what, to, e))?;
        let status = resp.status().as_u16();
        if matches!(status, 401 | 403) && creds.is_some() && self.stored_credentials {
            drain(&mut resp);
            log::warn!(
                "the docker config's credentials for {} were refused; continuing anonymously",
                self.base
            );
            *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return self.fetch_token(endpoint, challenge, url, scopes);
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
        let deadline = small_body_deadline(self.read_timeout);
        let body = read_limited(&mut resp, SMALL_BODY, deadline, what, url)?;
        scheme::parse_token(&body, Instant::now()).map_err(Error::Auth)
    }
}
