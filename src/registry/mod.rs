//! Talking to one registry: how its host is reached ([`transport`], with
//! [`tls`] for the trusted roots and [`proxy`] and [`forward`] for
//! proxies), the `/v2/` ping and the authentication handshake
//! ([`handshake`], [`auth`], [`credentials`], [`base64`]), the
//! [`client`] that fetches manifests and opens blob streams, [`http_error`]
//! for failed answers and the [`retry`] policy every request follows; and
//! requests of any method with a body ([`request`]), as a push sends them.
//!
//! It takes in a reference and connection options, and gives out bytes
//! (manifests, tokens, small blobs) and open blob streams. It never
//! decides what to fetch and writes no file: that is the caller's
//! (`fetch/`, `resolve`).

pub mod auth;
pub mod base64;
pub mod client;
pub mod credentials;
pub mod forward;
pub mod handshake;
pub mod http_error;
pub mod proxy;
pub mod request;
pub mod retry;
pub mod tls;
pub mod transport;
