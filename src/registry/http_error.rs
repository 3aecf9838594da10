//! Turning what the network hands back into [`Error`]s, and reading
//! bodies with a bound: an unexpected HTTP status becomes an error with the
//! distribution spec's `code: message` (else an excerpt of the body) and
//! any `Retry-After`; a transport failure becomes one marked transient or
//! not, with certificate failures explained (`--ca-cert`, `--insecure`); a
//! body read past its limit, or dripping in past its deadline, is an
//! error; and an unwanted body (of a 401,
//! say) is read, up to 64 KiB, so the connection can be reused.
//!
//! URLs in errors are redacted. This module sends no request and decides
//! no retry; it only describes what happened.

use ureq::http::Response;
use ureq::Body;

use crate::error::{excerpt, redact_url, Error, Result};
use crate::{registry::retry, registry::tls};

/// The most read of an error or token body.
pub(crate) const SMALL_BODY: u64 = 64 << 10;

/// Reads a body of at most `limit` bytes, within `deadline`: a small
/// answer (a manifest, a token, a config) that drips in slower than that
/// is cut, as a transient network failure (the read timeout alone lets a
/// server send a byte every few seconds forever).
pub(crate) fn read_limited(
    resp: &mut Response<Body>,
    limit: u64,
    deadline: std::time::Duration,
    what: &str,
    url: &str,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut reader = resp.body_mut().as_reader().take(limit + 1);
    let mut body = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(network_error(what, url, ureq::Error::from(e))),
        };
        body.extend_from_slice(&buf[..n]);
        if body.len() as u64 > limit {
            return Err(Error::Manifest {
                what: what.to_string(),
                reason: format!(
                    "the answer from {} is larger than {limit} bytes",
                    redact_url(url)
                ),
            });
        }
        if started.elapsed() > deadline {
            return Err(Error::Network {
                what: what.to_string(),
                url: format!("GET {}", redact_url(url)),
                cause: format!(
                    "only {} bytes arrived in {} s (the registry or the link is dripping)",
                    body.len(),
                    deadline.as_secs()
                ),
                transient: true,
            });
        }
    }
    Ok(body)
}

/// How long a small answer may take: four times the read timeout (two
/// minutes by default).
pub(crate) fn small_body_deadline(read_timeout: std::time::Duration) -> std::time::Duration {
    read_timeout * 4
}

/// The value of the header `name` of `resp`, trimmed, if it is text.
pub fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    let value = resp.headers().get(name)?.to_str().ok()?;
    Some(value.trim())
}

/// Reads (a bounded part of) the body so the connection can be reused.
pub(crate) fn drain(resp: &mut Response<Body>) {
    let _ = resp
        .body_mut()
        .with_config()
        .limit(SMALL_BODY)
        .read_to_vec();
}

/// An HTTP status error with an excerpt of the body (the spec's error
/// message when there is one).
pub fn http_error(what: &str, url: &str, status: u16, resp: &mut Response<Body>) -> Error {
    http_error_of("GET", what, url, status, resp)
}

/// [`http_error`] for a request of `method`.
pub fn http_error_of(
    method: &str,
    what: &str,
    url: &str,
    status: u16,
    resp: &mut Response<Body>,
) -> Error {
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
    let mut text = spec_error_message(&body).unwrap_or_else(|| excerpt(&body, 200));
    if status == 429 {
        text.push_str(&rate_limit_note(resp));
    }
    Error::Http {
        what: what.to_string(),
        url: format!("{method} {}", redact_url(url)),
        status,
        excerpt: text,
        retry_after,
    }
}

/// What the `RateLimit-*` headers of a 429 say (Docker Hub's
/// `ratelimit-limit: 100;w=21600` form, and a `RateLimit-Reset` in
/// seconds), as text to append to the message; empty when there are none.
fn rate_limit_note(resp: &Response<Body>) -> String {
    let get = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| excerpt(v.as_bytes(), 60))
    };
    let mut parts = Vec::new();
    if let Some(limit) = get("ratelimit-limit") {
        parts.push(format!("limit {limit}"));
    }
    if let Some(left) = get("ratelimit-remaining") {
        parts.push(format!("remaining {left}"));
    }
    if let Some(reset) = get("ratelimit-reset") {
        match reset.trim().parse::<u64>() {
            Ok(secs) => parts.push(format!(
                "resets in {secs} s, at {}",
                crate::error::utc_clock_in(std::time::Duration::from_secs(secs))
            )),
            Err(_) => parts.push(format!("reset {reset}")),
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (rate limit: {})", parts.join(", "))
    }
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
    network_error_of("GET", what, url, e)
}

/// [`network_error`] for a request of `method`.
pub fn network_error_of(method: &str, what: &str, url: &str, e: ureq::Error) -> Error {
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
            "the TLS certificate of {} is not trusted ({e}); if the registry uses a private certificate authority, pass it with --ca-cert FILE (or skip verification with --insecure, or --insecure-registry HOST)",
            crate::registry::location::host_of(url)
        ),
        ureq::Error::Rustls(r) => format!("TLS error: {r}"),
        ureq::Error::Other(e) => e.to_string(),
        other => other.to_string(),
    };
    Error::Network {
        what: what.to_string(),
        url: format!("{method} {}", redact_url(url)),
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
