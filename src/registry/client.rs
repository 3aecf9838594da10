//! The registry client: one per repository on one registry, what it may
//! do there ([`Access`], its token scope), connecting to it (the shared
//! agent from `transport.rs`, the `/v2/` ping that learns how it
//! authenticates), and the pull's endpoints: manifests with every manifest
//! type accepted, small blobs read whole, blob streams opened (whole, or a
//! byte range), and the tags for a hint (`client/tags.rs`). Every request
//! goes the one way of `client/request.rs`; the push's endpoints are
//! `session.rs`'s. It returns bytes and open streams; it does not choose
//! platforms, verify blobs or write files. Docker Hub's API host can be
//! replaced with `PULLTAR_DOCKER_HUB` ([`docker_hub_host`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest;
use crate::image::reference::Reference;
use crate::registry::auth::Auth;
use crate::registry::auth::Credentials;
use crate::registry::credentials;
use crate::registry::http_error::{drain, header, http_error, read_limited, small_body_deadline};
use crate::registry::permits::{Budget, Budgets, Permit};
use crate::registry::retry::Policy;
use crate::registry::transport::{self, Endpoint};

pub mod request;
mod tags;

use request::{Call, Sending};

/// How the client reaches a registry and authenticates to it.
#[derive(Clone, Debug)]
pub struct Options {
    /// How the registry's host is reached.
    pub transport: transport::Options,
    /// Credentials from the command line or the environment, with the one
    /// host (`host:port`) they belong to: that host and the token service
    /// it names get them; every other host has only the docker config's.
    pub credentials: Option<(String, Credentials)>,
    /// When to retry the ping, token and manifest requests.
    pub policy: Policy,
    /// Docker Hub mirrors (`--registry`), in order.
    pub mirrors: Vec<String>,
    /// Never contact Docker Hub itself (`--mirrors-only`).
    pub mirrors_only: bool,
    /// What each host allows, shared by every client of the process.
    pub budgets: Budgets,
    /// Try each request once, the ping too: the client is one host of a
    /// mirror list, whose next host is asked instead (`mirrors.rs`).
    pub once: bool,
}

/// What a client may do with its repository: its token scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read (`repository:<name>:pull`).
    Pull,
    /// Read and write (`repository:<name>:pull,push`).
    Push,
}

/// A client for one repository on one registry.
pub struct Registry {
    /// The agent, the base URL and any forward proxy.
    endpoint: Endpoint,
    /// The scheme, credentials and tokens.
    auth: Auth,
    repository: String,
    policy: Policy,
    /// What the registry's host allows (429s), shared with every client
    /// that reaches it.
    budget: Arc<Budget>,
    /// How long a connection may be silent (`--read-timeout`); blob
    /// segments also use it to judge a slow drip (`segment.rs`).
    pub read_timeout: Duration,
    /// One attempt per request, no retry: another mirror is asked instead
    /// (set by `mirrors.rs` while this host is not the last one left).
    once: AtomicBool,
}

/// The host Docker Hub's API is reached at: `registry-1.docker.io`, or
/// `PULLTAR_DOCKER_HUB` (`host:port`, for tests and for sites that stand
/// a registry in for Docker Hub).
pub fn docker_hub_host(reference: &Reference) -> String {
    match std::env::var("PULLTAR_DOCKER_HUB") {
        Ok(h) if !h.trim().is_empty() => h.trim().to_string(),
        _ => reference.api_host().to_string(),
    }
}

impl Registry {
    /// Builds the client for `access` to the repository of `reference`
    /// (through the first `--registry` mirror for a Docker Hub image when
    /// one is given), and pings the registry to learn how it
    /// authenticates.
    pub fn connect_for(
        reference: &Reference,
        options: &Options,
        access: Access,
    ) -> Result<Registry> {
        let host = match options.mirrors.first() {
            Some(m) if reference.is_docker_hub() => m.clone(),
            None if reference.is_docker_hub() => docker_hub_host(reference),
            _ => reference.api_host().to_string(),
        };
        Registry::connect_host(&host, reference, options, access)
    }

    /// Builds the client for `access` to the repository of `reference` on
    /// `host` (a mirror, say).
    pub fn connect_host(
        host: &str,
        reference: &Reference,
        options: &Options,
        access: Access,
    ) -> Result<Registry> {
        let explicit = options.credentials.as_ref();
        let (credentials, stored_credentials) =
            match explicit.filter(|(h, _)| h.eq_ignore_ascii_case(host)) {
                Some((_, c)) => (Some(c.clone()), false),
                None => match credentials::from_docker_config(host) {
                    Some(c) => {
                        log::debug!("using the docker config's credentials for {host}");
                        (Some(c), true)
                    }
                    None => (None, false),
                },
            };
        let mut endpoint = transport::open(host, &options.transport)?;
        let probe = endpoint.probe.take();
        let scope = match access {
            Access::Pull => reference.scope(),
            Access::Push => format!("repository:{}:pull,push", reference.repository()),
        };
        let auth = Auth::new(
            &endpoint.base,
            vec![scope],
            options.transport.read_timeout,
            credentials,
            stored_credentials,
        );
        let budget = options
            .budgets
            .of(&endpoint.base, options.transport.connections);
        let registry = Registry {
            endpoint,
            auth,
            budget,
            repository: reference.repository().to_string(),
            policy: options.policy.clone(),
            read_timeout: options.transport.read_timeout,
            once: AtomicBool::new(options.once),
        };
        match probe {
            Some(resp) if resp.status().as_u16() != 429 => registry.ping_answer(resp)?,
            _ => registry.ping()?,
        }
        Ok(registry)
    }

    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.endpoint.base);
        let what = "contacting the registry";
        let mut call = Call::new("GET", &url, what);
        call.renew = false;
        self.request(what, true, |permit| {
            let resp = self.send(&call, permit, &mut || Ok(Sending::Nothing))?;
            self.ping_answer(resp)
        })
    }

    /// Reads the answer to `GET /v2/`: 200 means anonymous, 401 carries
    /// the challenge.
    fn ping_answer(&self, mut resp: Response<Body>) -> Result<()> {
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                self.auth.learn_challenge(&resp)?;
                drain(&mut resp);
                Ok(())
            }
            status => {
                let url = format!("{}/v2/", self.endpoint.base);
                Err(http_error(
                    "contacting the registry",
                    &url,
                    status,
                    &mut resp,
                ))
            }
        }
    }

    /// Checks the client's credentials for `pulltar login`: `GET /v2/`
    /// with them (a Bearer registry's token fetched with them from the
    /// service it names); a refusal is an [`Error::Auth`].
    pub fn check_login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.endpoint.base);
        let what = "checking the login";
        let call = Call::new("GET", &url, what);
        self.request(what, true, |permit| {
            let mut resp = self.send(&call, permit, &mut || Ok(Sending::Nothing))?;
            match resp.status().as_u16() {
                200..=299 => {
                    drain(&mut resp);
                    Ok(())
                }
                401 | 403 => Err(Error::Auth(format!(
                    "{} refused these credentials",
                    self.endpoint.base
                ))),
                status => Err(http_error(what, &url, status, &mut resp)),
            }
        })
    }

    /// Whether a failed request is tried once only (another mirror is
    /// asked instead).
    pub(crate) fn set_once(&self, once: bool) {
        self.once.store(once, Ordering::Relaxed);
    }

    /// Whether a failed request is tried once only.
    pub fn once(&self) -> bool {
        self.once.load(Ordering::Relaxed)
    }

    /// What the registry's host allows.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The retry policy of the client's requests.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The registry's base URL (`https://host[:port]`).
    pub fn base(&self) -> &str {
        &self.endpoint.base
    }

    /// The repository this client is for.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `location` (a header's, maybe relative) as an absolute URL.
    pub fn resolve(&self, location: &str) -> String {
        crate::registry::location::resolve(&format!("{}/v2/", self.endpoint.base), location)
    }

    /// Fetches a manifest or index by tag or digest: its bytes and the
    /// `Content-Type` the registry gave. Bodies over
    /// [`manifest::MAX_MANIFEST_BYTES`] are refused.
    pub fn manifest(&self, key: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = format!(
            "{}/v2/{}/manifests/{key}",
            self.endpoint.base, self.repository
        );
        let what = format!("fetching the manifest {}:{key}", self.repository);
        let mut call = Call::new("GET", &url, &what);
        call.headers.push(("Accept", manifest::ACCEPT.to_string()));
        self.request(&what, true, |permit| {
            let mut resp = self.send(&call, permit, &mut || Ok(Sending::Nothing))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(http_error(&what, &url, status, &mut resp));
            }
            let content_type = header(&resp, "content-type").map(str::to_string);
            let body = read_limited(
                &mut resp,
                manifest::MAX_MANIFEST_BYTES,
                small_body_deadline(self.read_timeout),
                &what,
                &url,
            )?;
            Ok((body, content_type))
        })
    }

    /// Opens the blob `digest`, or only its bytes `[start, end)` (a `Range`
    /// request), under `permit`. Returns the response whatever its status;
    /// the caller checks it (200, or 206 for a range).
    pub fn open_blob(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
        permit: &Permit,
    ) -> Result<Response<Body>> {
        let url = self.blob_url(digest);
        let what = format!("downloading blob {digest}");
        let mut call = Call::new("GET", &url, &what);
        if let Some((start, end)) = range {
            let last = end.saturating_sub(1);
            call.headers
                .push(("Range", format!("bytes={start}-{last}")));
        }
        self.send(&call, permit, &mut || Ok(Sending::Nothing))
    }

    /// The registry URL of a blob (never a redirect target).
    pub fn blob_url(&self, digest: &Digest) -> String {
        format!(
            "{}/v2/{}/blobs/{digest}",
            self.endpoint.base, self.repository
        )
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

    /// Fetches a small blob (a config) whole, at most `limit` bytes; the
    /// caller verifies it.
    pub fn small_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let url = self.blob_url(digest);
        let what = format!("fetching blob {digest}");
        let call = Call::new("GET", &url, &what);
        self.request(&what, true, |permit| {
            let mut resp = self.send(&call, permit, &mut || Ok(Sending::Nothing))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(http_error(&what, &url, status, &mut resp));
            }
            read_limited(
                &mut resp,
                limit,
                small_body_deadline(self.read_timeout),
                &what,
                &url,
            )
        })
    }
}
