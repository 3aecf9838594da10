//! Authentication: Docker-Hub-style token auth (`bearer`), where
//! credentials come from for Basic (`creds`) and token registries
//! (`creds_token`), a handshake the ping says nothing about
//! (`handshake`), short-lived tokens (`token_expiry`), and no secret in
//! any output, log, cache file or archive (`secrets`). The servers are in
//! `support/` (`token_server`, `auth_registries`).

mod bearer;
mod creds;
mod creds_token;
mod handshake;
mod secrets;
mod token_expiry;
