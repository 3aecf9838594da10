//! Authentication: Docker-Hub-style token auth (`bearer`), where
//! credentials come from for Basic (`creds`) and token registries
//! (`creds_token`), a handshake the ping says nothing about
//! (`handshake`), short-lived tokens (`token_expiry`), and no secret in
//! any output, log, cache file or archive (`secrets`), explicit
//! credentials kept to their one host and `pulltar login`/`logout`
//! (`per_host`). The servers are in
//! `support/` (`token_server`, `auth_registries`).

mod bearer;
mod creds;
mod creds_token;
mod handshake;
mod per_host;
mod secrets;
mod token_expiry;
