//! The one error type of the crate: every failure a pull, a push or an
//! inspect can meet, with the context a person needs to act on it (what
//! was being done, on which reference, digest, URL or path, and what to
//! try next), and the exit code of each kind ([`Error::exit_code`], which
//! `main.rs` exits with).
//!
//! This module only describes failures, and it never holds a secret: URLs
//! are stored already redacted (see [`redact_url`]), and response bodies
//! only as a short excerpt.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A failure of a pull, or of the command line that asked for it.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (exit code 2).
    Usage(String),
    /// An image reference could not be parsed.
    Reference {
        /// What the user typed.
        input: String,
        /// Why it is not a reference.
        reason: String,
    },
    /// No image matches the requested platform.
    Platform(String),
    /// The registry answered with an unexpected HTTP status.
    Http {
        /// What was being fetched ("manifest for x", "blob sha256:…").
        what: String,
        /// Method and redacted URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the reader.
        excerpt: String,
        /// What the registry's `Retry-After` header asked for, if anything.
        retry_after: Option<std::time::Duration>,
    },
    /// The request never got an HTTP answer (connect, TLS, reset, timeout).
    Network {
        /// What was being fetched.
        what: String,
        /// Method and redacted URL.
        url: String,
        /// The underlying failure, as text.
        cause: String,
        /// Whether trying again may help.
        transient: bool,
    },
    /// Content did not match what its descriptor promised.
    Verify {
        /// The digest that was expected.
        digest: String,
        /// What went wrong (size or hash).
        detail: String,
    },
    /// A manifest, index or config is malformed or unsupported.
    Manifest {
        /// Which document.
        what: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Authentication with the registry failed.
    Auth(String),
    /// A local file operation failed.
    Io {
        /// What was being done ("create", "rename", …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another download failed, so this one stopped early.
    Aborted,
    /// SIGINT or SIGTERM arrived.
    Interrupted {
        /// Whether the bytes fetched so far are kept for the next run.
        resumable: bool,
    },
    /// Another error, with a hint learned after it happened (the tags a
    /// repository does have, say).
    Hinted {
        /// The error.
        error: Box<Error>,
        /// What to try next.
        hint: String,
    },
    /// Another error, with a hint that fits where it happened better than
    /// the error's own (a 401 while pushing asks for push rights, not for
    /// the image name); the error's own hint is left out.
    WithHint {
        /// The error.
        error: Box<Error>,
        /// What to try next, in place of the error's own hint.
        hint: String,
    },
}

/// Short alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the action and path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error: 2 when the command line is
    /// wrong (a bad flag or image reference), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Reference { .. } => 2,
            Error::Interrupted { .. } => 130,
            Error::Hinted { error, .. } | Error::WithHint { error, .. } => error.exit_code(),
            _ => 1,
        }
    }

    /// Whether repeating the same request may succeed (connect, timeout,
    /// reset and truncation errors; 408, 429 and 5xx statuses).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { transient, .. } => *transient,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::WithHint { error, .. } => error.is_retryable(),
            _ => false,
        }
    }

    /// The HTTP status of a failed answer, looking through hints.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::Hinted { error, .. } | Error::WithHint { error, .. } => error.status(),
            _ => None,
        }
    }

    /// This error with `hint` in place of its own.
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        let error = match self {
            Error::WithHint { error, .. } => error,
            other => Box::new(other),
        };
        Error::WithHint {
            error,
            hint: hint.into(),
        }
    }

    /// How long the server asked to wait before trying again.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A few words on what went wrong, for retry messages.
    pub fn short_cause(&self) -> String {
        match self {
            Error::Network { cause, .. } => cause.clone(),
            Error::Http { status, .. } => format!("HTTP {status}"),
            other => other.to_string(),
        }
    }

    fn hint(&self) -> Option<String> {
        if let Error::Http {
            status: 429,
            retry_after: Some(wait),
            ..
        } = self
        {
            return Some(format!(
                "the registry is rate limiting: it asks to wait {} s (until {}); or log in for a higher limit",
                wait.as_secs(),
                utc_clock_in(*wait)
            ));
        }
        self.static_hint().map(str::to_string)
    }

    fn static_hint(&self) -> Option<&'static str> {
        match self {
            Error::Http { status: 401, .. } | Error::Http { status: 403, .. } => Some(
                "the registry refused access: check the image name, or pass credentials with -u USER --password-stdin",
            ),
            Error::Http { status: 404, .. } => {
                Some("check the repository name and the tag or digest; the image may not exist")
            }
            Error::Http { status: 429, .. } => {
                Some("the registry is rate limiting: wait a while, or log in for a higher limit")
            }
            Error::Http { status, .. } if *status >= 500 => {
                Some("the registry had an internal problem: try again later")
            }
            Error::Network { .. } => Some("check the network, the registry host name and any proxy"),
            Error::Verify { .. } => Some(
                "the data received does not match its digest: try again; if it persists the registry or a proxy is corrupting data",
            ),
            Error::Interrupted { resumable: true } => {
                Some("the bytes downloaded so far are kept: run the same command again to resume")
            }
            _ => None,
        }
    }
}

impl Error {
    /// What went wrong, without a hint.
    fn message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see 'pulltar --help')"),
            Error::Reference { input, reason } => {
                write!(f, "invalid image reference {input:?}: {reason}")
            }
            Error::Platform(msg) => f.write_str(msg),
            Error::Http {
                what,
                url,
                status,
                excerpt,
                ..
            } => {
                write!(f, "{what}: {url} answered HTTP {status}")?;
                if !excerpt.is_empty() {
                    write!(f, ": {excerpt}")?;
                }
                Ok(())
            }
            Error::Network {
                what, url, cause, ..
            } => write!(f, "{what}: {url} failed: {cause}"),
            Error::Verify { digest, detail } => {
                write!(f, "blob {digest} failed verification: {detail}")
            }
            Error::Manifest { what, reason } => write!(f, "{what}: {reason}"),
            Error::Auth(msg) => write!(f, "authentication failed: {msg}"),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Aborted => f.write_str("stopped because another transfer failed"),
            Error::Interrupted { resumable: true } => f.write_str("interrupted"),
            Error::Interrupted { resumable: false } => {
                f.write_str("interrupted (with --no-cache nothing downloaded is kept)")
            }
            Error::Hinted { error, .. } => write!(f, "{error}"),
            Error::WithHint { error, .. } => error.message(f),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message(f)?;
        let hint = match self {
            Error::Hinted { hint, .. } | Error::WithHint { hint, .. } => Some(hint.clone()),
            other => other.hint(),
        };
        if let Some(hint) = hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// What a content mismatch says after one fresh fetch: `detail` of the
/// second, with the `first` fetch's when there was one (the same, or not).
pub fn second_mismatch(first: Option<String>, detail: String) -> String {
    match first {
        Some(first) if first == detail => format!(
            "{detail}, on both of two fetches (the registry, or a proxy on the way, serves it corrupted)"
        ),
        Some(first) => format!(
            "{detail}; the first fetch failed too ({first}): the registry, or a proxy on the way, is corrupting it"
        ),
        None => detail,
    }
}

/// The UTC time of day `wait` from now, as `12:34:56 UTC`.
pub fn utc_clock_in(wait: std::time::Duration) -> String {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(wait)
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02} UTC", at / 3600, at % 3600 / 60, at % 60)
}

/// Returns `url` without its query string and fragment, and without any
/// `user:password@` part, so that presigned URLs and credentials never reach
/// a message or a log.
pub fn redact_url(url: &str) -> String {
    let mut out = url;
    if let Some(i) = out.find(['?', '#']) {
        out = &out[..i];
    }
    let mut s = out.to_string();
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            s.replace_range(scheme_end + 3..scheme_end + 3 + at + 1, "");
        }
    }
    if s.len() < url.len() && url[out.len()..].starts_with('?') {
        s.push_str("?<redacted>");
    }
    s
}

/// The first `max` characters of a response body, on one line, for error
/// messages (control characters become spaces).
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_query() {
        assert_eq!(
            redact_url("https://s3.example/blob?X-Amz-Signature=abc"),
            "https://s3.example/blob?<redacted>"
        );
    }

    #[test]
    fn redact_userinfo() {
        assert_eq!(
            redact_url("http://user:pw@proxy:3128/x"),
            "http://proxy:3128/x"
        );
    }

    #[test]
    fn redact_plain() {
        assert_eq!(
            redact_url("https://r.example/v2/a/blobs/sha256:00"),
            "https://r.example/v2/a/blobs/sha256:00"
        );
    }

    #[test]
    fn excerpt_cuts_and_cleans() {
        assert_eq!(excerpt(b"a\nb\x1b[2J", 100), "a b [2J");
        assert_eq!(excerpt(b"abcdef", 3), "abc…");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Platform("x".into()).exit_code(), 1);
    }

    #[test]
    fn retryable_statuses() {
        let http = |status| Error::Http {
            what: String::new(),
            url: String::new(),
            status,
            excerpt: String::new(),
            retry_after: None,
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(401).is_retryable());
    }
}
