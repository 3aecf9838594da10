//! Talking to one registry: how its host is reached ([`transport`], with
//! [`tls`] for the trusted roots and [`proxy`] and [`forward`] for
//! proxies), the `/v2/` ping and the authentication handshake
//! ([`handshake`], [`auth`], [`credentials`], [`base64`]), the
//! [`client`] that fetches manifests and opens blob streams, [`http_error`]
//! for failed answers, the [`retry`] policy every request follows and the
//! [`budget`] of connections and requests each host allows (what it
//! rations learned from its 429s in [`ration`]); the hosts one
//! repository is read from, a mirror list failing over ([`mirrors`]); and
//! for a push, requests
//! of any method with a body ([`request`]), the requests that write
//! ([`session`]: blob lookups, mounts, upload sessions, manifests) and one
//! blob's upload ([`upload`]).
//!
//! It takes in a reference and connection options, and gives out bytes
//! (manifests, tokens, small blobs) and open blob streams, or stores in a
//! registry the bytes it is given, each blob hashed on its way out. It
//! never decides what to fetch or push and writes no file: that is the
//! caller's (`fetch/`, `resolve`, `push`).

pub mod auth;
pub mod base64;
pub mod budget;
pub mod client;
pub mod credentials;
pub mod forward;
pub mod handshake;
pub mod http_error;
pub mod location;
pub mod mirrors;
pub mod proxy;
pub mod ration;
pub mod retry;
pub mod session;
pub mod tls;
pub mod transport;
