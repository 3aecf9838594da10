//! How a registry host is reached: its `ureq::Agent`s (trusted roots,
//! proxy, timeouts, a connection pool as large as the thread count, no
//! automatic gzip, statuses returned rather than turned into errors; one
//! that verifies certificates, and one that does not for the hosts in the
//! scope of `--insecure` and `--insecure-registry`, see
//! [`crate::registry::location::Reach`]) and the scheme, HTTPS unless plain
//! HTTP is allowed and HTTPS does not answer.
//!
//! Plain HTTP is allowed only for registries on loopback and for those in
//! the scope of `--insecure`; for those HTTPS is tried first and HTTP used
//! when the TLS handshake fails for a reason other than the certificate (a
//! loopback registry with an untrusted certificate is an error, not a
//! downgrade). Plain HTTP through an HTTP proxy uses
//! [`crate::registry::forward`] (no CONNECT). Every HTTP request pulltar
//! makes, the probe and token requests too, is sent by
//! [`Endpoint::exchange`], which logs it, refuses the hosts the address
//! guard of `Reach` refuses, picks the agent by the host, and follows a
//! GET's or a HEAD's redirects itself (the agent follows none). This
//! module knows nothing of authentication or of the registry API beyond
//! the `/v2/` probe.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ureq::http::Response;
use ureq::Body;

use crate::error::{redact_url, Error, Result};
use crate::image::reference;
use crate::registry::forward::ForwardProxy;
use crate::registry::http_error::network_error;
use crate::registry::location::{self, split_host, Reach};
use crate::registry::proxy::ProxyConfig;
use crate::registry::tls;

/// How a registry host is reached.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--insecure`: skip TLS certificate verification for the registries
    /// named (and allow plain HTTP and an http token realm).
    pub insecure: bool,
    /// `--insecure-registry`: hosts (`HOST` or `HOST:PORT`) to skip it for.
    pub insecure_registries: Vec<String>,
    /// How many connections may be open at once.
    pub connections: usize,
    /// How long a connection may send nothing before it is cut.
    pub read_timeout: Duration,
    /// Extra certificate authorities (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Proxy settings.
    pub proxy: ProxyConfig,
    /// How long connecting may take ([`CONNECT_TIMEOUT`]; shorter for
    /// Docker Hub behind a mirror list, its last resort).
    pub connect_timeout: Duration,
}

/// How many redirects one request may follow.
pub const MAX_REDIRECTS: u32 = 10;

/// A reachable registry host: the agent and the base URL to use with it.
pub struct Endpoint {
    /// The agent that verifies certificates (clones share its pool).
    agent: ureq::Agent,
    /// The one that does not, for the hosts `reach` spares.
    unverified: Option<ureq::Agent>,
    /// Which hosts go unverified, and which are refused.
    pub reach: Reach,
    /// `https://host[:port]` or `http://host[:port]`.
    pub base: String,
    /// The answer to `GET /v2/` when the scheme probe already got one.
    pub probe: Option<Response<Body>>,
    /// For plain HTTP through an HTTP proxy: the proxy, spoken to in
    /// absolute form rather than through a CONNECT tunnel.
    pub forward: Option<ForwardProxy>,
}

/// The body of a request.
pub enum Payload<'a> {
    /// None (`Content-Length: 0` on a POST, PUT or PATCH).
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many bytes from a reader.
    Stream(&'a mut (dyn Read + Send), u64),
}

/// One request as the transport sends it.
pub struct Outgoing<'a> {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'a str,
    /// Where to.
    pub url: &'a str,
    /// Its headers (an `Authorization` among them stays behind on a
    /// redirect).
    pub headers: Vec<(&'a str, String)>,
    /// Its body.
    pub body: Payload<'a>,
    /// How long the answer may take once the request is sent (the read
    /// timeout when `None`).
    pub answer_within: Option<Duration>,
    /// How long connecting may take (the agent's when `None`).
    pub connect_within: Option<Duration>,
}

impl<'a> Outgoing<'a> {
    /// `method` `url` with `headers` and no body.
    pub fn new(method: &'a str, url: &'a str, headers: Vec<(&'a str, String)>) -> Outgoing<'a> {
        Outgoing {
            method,
            url,
            headers,
            body: Payload::Empty,
            answer_within: None,
            connect_within: None,
        }
    }
}

impl Endpoint {
    /// Sends `req`: every HTTP request of pulltar goes out here, and is
    /// logged here (method, redacted URL, any range, status, time). A GET
    /// or HEAD follows redirects, at most [`MAX_REDIRECTS`], only to
    /// `http`/`https` URLs (a `file:` or `ftp:` Location is an error, not a
    /// path on the same host), and never with `Authorization`; other
    /// methods are sent once, where they are told. A body of known length
    /// carries `Expect: 100-continue`, so that a registry (or proxy)
    /// refusing it (401, 413) says so before the body is sent. Plain-HTTP
    /// URLs go through the forward proxy when there is one. A host of
    /// another name that the address guard refuses is not contacted, and a
    /// certificate it presents that fails is reported naming it.
    pub fn exchange(&self, mut req: Outgoing) -> std::result::Result<Response<Body>, ureq::Error> {
        let follows = matches!(req.method, "GET" | "HEAD");
        let range = req.headers.iter().find(|(k, _)| *k == "Range");
        let range = range.map_or(String::new(), |(_, v)| format!(" {v}"));
        let mut url = req.url.to_string();
        let own = format!("{}/", self.base);
        let mut redirected = false;
        for _ in 0..=MAX_REDIRECTS {
            let started = Instant::now();
            let body = std::mem::replace(&mut req.body, Payload::Empty);
            let host = location::host_of(&url);
            if location::authority(&url).contains('@') {
                return Err(ureq::Error::BadUri(format!(
                    "{} carries user information (user@host), which pulltar never follows",
                    crate::error::excerpt(redact_url(&url).as_bytes(), 100)
                )));
            }
            self.reach
                .check(host)
                .map_err(|e| ureq::Error::Other(e.into()))?;
            let resp = self
                .once(&req, &url, body)
                .map_err(|e| self.foreign(host, e))?;
            let status = resp.status().as_u16();
            log::debug!(
                "{} {}{range} -> {status} ({} ms)",
                req.method,
                redact_url(&url),
                started.elapsed().as_millis()
            );
            let redirect = follows && matches!(status, 301 | 302 | 303 | 307 | 308);
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            let Some(location) = location.filter(|_| redirect) else {
                // A host the registry sent the request to may not ask for
                // credentials: they, and the token service it would name,
                // are the registry's alone.
                if status == 401 && redirected && !url.starts_with(&own) {
                    return Err(ureq::Error::Other(format!(
                        "{host}, where the registry {} sent the request, asks for credentials (401); pulltar gives them only to the registry and the token service it names",
                        location::host_of(&self.base)
                    ).into()));
                }
                return Ok(resp);
            };
            let next = location::resolve(&url, location.trim());
            let scheme = next.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("http" | "https")) {
                return Err(ureq::Error::BadUri(format!(
                    "the registry redirected to {:?}, which is not an http(s) URL",
                    crate::error::excerpt(redact_url(&next).as_bytes(), 100)
                )));
            }
            log::debug!("redirected to {}", redact_url(&next));
            // Another host, or a signed URL: the registry's token stays behind.
            req.headers.retain(|(k, _)| *k != "Authorization");
            url = next;
            redirected = true;
        }
        Err(ureq::Error::TooManyRedirects)
    }

    /// A certificate failure of `host`, a host of another name than the
    /// registry's, said with the flag that would spare it.
    fn foreign(&self, host: &str, e: ureq::Error) -> ureq::Error {
        if self.reach.is_own(host) || !tls::is_certificate_error(&e) {
            return e;
        }
        let base = location::host_of(&self.base);
        ureq::Error::Other(format!(
            "the TLS certificate of {host}, where the registry {base} sent the request, is not trusted ({e}); pass its certificate authority with --ca-cert FILE, or skip its verification with --insecure-registry {host}"
        ).into())
    }

    /// One request of `req` to `url` with `body`, no redirect followed.
    fn once(
        &self,
        req: &Outgoing,
        url: &str,
        body: Payload,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let method = req.method;
        let has_body = !matches!(method, "HEAD" | "GET" | "DELETE");
        let expect = matches!(body, Payload::Stream(..));
        let mut nothing: &[u8] = &[];
        let mut bytes: &[u8];
        let body: Option<(&mut (dyn Read + Send), u64)> = match body {
            Payload::Stream(r, len) => Some((r, len)),
            Payload::Bytes(b) => {
                bytes = b;
                Some((&mut bytes, b.len() as u64))
            }
            Payload::Empty => has_body.then_some((&mut nothing, 0)),
        };
        if let Some(forward) = self.forward.as_ref().filter(|_| url.starts_with("http://")) {
            return forward.request(method, url, &req.headers, body);
        }
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        if expect {
            builder = builder.header("Expect", "100-continue");
        }
        match body {
            Some((reader, len)) => {
                let builder = builder.header("Content-Length", len.to_string());
                self.run(req, builder, ureq::SendBody::from_reader(reader))
            }
            None => self.run(req, builder, ureq::SendBody::none()),
        }
    }

    fn run(
        &self,
        req: &Outgoing,
        builder: ureq::http::request::Builder,
        body: ureq::SendBody,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let request = builder.body(body).map_err(ureq::Error::Http)?;
        let uri = request.uri();
        let host = match (uri.host(), uri.port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (h, None) => h.unwrap_or("").to_string(),
            (None, Some(_)) => String::new(),
        };
        let agent = match &self.unverified {
            Some(lax) if self.reach.unverified(&host) => lax,
            _ => &self.agent,
        };
        let mut config = agent.configure_request(request);
        if let Some(wait) = req.answer_within {
            config = config.timeout_recv_response(Some(wait));
        }
        if let Some(wait) = req.connect_within {
            config = config.timeout_connect(Some(wait));
        }
        agent.run(config.build())
    }
}

/// The verifying agent, and the one that does not verify when any host
/// may go unverified.
fn agents(
    options: &Options,
    roots: &ureq::tls::RootCerts,
    proxy: Option<&str>,
) -> Result<(ureq::Agent, Option<ureq::Agent>)> {
    let lax = options.insecure || !options.insecure_registries.is_empty();
    Ok((
        agent(options, roots.clone(), proxy, false)?,
        lax.then(|| agent(options, roots.clone(), proxy, true))
            .transpose()?,
    ))
}

fn agent(
    options: &Options,
    roots: ureq::tls::RootCerts,
    proxy: Option<&str>,
    unverified: bool,
) -> Result<ureq::Agent> {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(unverified)
        .build();
    let conns = options.connections.max(1);
    let proxy = match proxy {
        Some(url) => {
            log::debug!("using the proxy {}", redact_url(url));
            Some(ureq::Proxy::new(url).map_err(|_| {
                Error::Usage(format!(
                    "the proxy {:?} is not a proxy URL like http://host:port",
                    redact_url(url)
                ))
            })?)
        }
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("pulltar/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .proxy(proxy)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_recv_response(Some(options.read_timeout.max(Duration::from_secs(1))))
        .timeout_per_read(Some(options.read_timeout))
        .timeout_per_write(Some(options.read_timeout))
        .max_idle_connections(conns * 2 + 4)
        .max_idle_connections_per_host(conns + 2)
        .build();
    Ok(config.into())
}

/// How long connecting to a registry may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets up the agent for `host` and picks the scheme.
pub fn open(host: &str, options: &Options) -> Result<Endpoint> {
    let (name, port) = split_host(host);
    let loopback = reference::is_loopback_host(name);
    let roots = tls::roots(&options.ca_certs)?;
    let https_proxy = options
        .proxy
        .for_target("https", name, port.unwrap_or(443), loopback);
    let (https, unverified) = agents(options, &roots, https_proxy)?;
    let base = format!("https://{host}");
    let reach = Reach::new(host, options.insecure, &options.insecure_registries);
    let insecure = reach.registry_insecure();
    if insecure {
        log::warn!(
            "--insecure: the TLS certificate of {host} is not verified, and plain HTTP is allowed"
        );
    }
    let mut endpoint = Endpoint {
        agent: https,
        unverified,
        reach,
        base,
        probe: None,
        forward: None,
    };
    if !(loopback || insecure) {
        return Ok(endpoint);
    }
    let url = format!("{}/v2/", endpoint.base);
    // A loopback server that takes a TLS hello for the start of an HTTP
    // request may sit silent; do not wait the full read timeout for it.
    let probe_timeout = if loopback {
        options.read_timeout.min(Duration::from_secs(3))
    } else {
        options.read_timeout.max(Duration::from_secs(30))
    };
    let mut req = Outgoing::new("GET", &url, Vec::new());
    req.answer_within = Some(probe_timeout);
    req.connect_within = Some(probe_timeout.min(options.connect_timeout));
    match endpoint.exchange(req) {
        Ok(resp) => {
            endpoint.probe = Some(resp);
            Ok(endpoint)
        }
        Err(e) if tls::is_certificate_error(&e) => {
            Err(network_error("contacting the registry", &url, e))
        }
        Err(e) => {
            log::debug!("https://{host} did not answer ({e}); using plain http");
            let http_proxy = options
                .proxy
                .for_target("http", name, port.unwrap_or(80), loopback);
            let forward = http_proxy.and_then(|p| {
                ForwardProxy::parse(p, Duration::from_secs(30), options.read_timeout)
            });
            if forward.is_none() {
                // Plain-HTTP requests go to the proxy directly; the agents
                // (and their tunnel) only serve redirects to https.
                (endpoint.agent, endpoint.unverified) = agents(options, &roots, http_proxy)?;
            }
            endpoint.base = format!("http://{host}");
            endpoint.forward = forward;
            Ok(endpoint)
        }
    }
}
