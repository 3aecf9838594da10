//! Talking to one registry: how its host is reached ([`transport`], with
//! [`tls`] for the trusted roots, [`proxy`] and [`forward`] for proxies,
//! [`location`] for where a URL points), the authentication handshake
//! ([`auth`], with [`credentials`] and [`base64`]), the [`client`] of one
//! repository (connecting, the pull's requests, and in `client/request.rs`
//! the one way every request goes: authorization, the 401 renewal, the
//! host's [`permits`] and what it allows after a 429 ([`allowance`]), the
//! [`retry`] policy), [`http_error`] for failed answers, the push's
//! requests ([`session`]: blob lookups, mounts, upload sessions,
//! manifests), and the hosts one repository is read from, a mirror list
//! failing over ([`mirrors`]).
//!
//! It takes in a reference and connection options, and gives out bytes
//! (manifests, tokens, small blobs) and open blob streams, or stores in a
//! registry the bytes it is given, each blob hashed on its way out. It
//! never decides what to fetch or push and writes no file: that is the
//! caller's (`fetch/`, `upload/`, `resolve/`, `push`).

pub mod allowance;
pub mod auth;
pub mod base64;
pub mod client;
pub mod credentials;
pub mod forward;
pub mod http_error;
pub mod location;
pub mod mirrors;
pub mod permits;
pub mod proxy;
pub mod retry;
pub mod session;
pub mod tls;
pub mod transport;
