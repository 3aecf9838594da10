//! The one integration-test binary (ripgrep style). Helpers start a real
//! `docker-registry` per test on 127.0.0.1, push images built in memory,
//! run the `pulltar` binary and prove its archives with skopeo, podman and
//! dockerd. Missing tools fail the test with the apt-get line to run:
//! `scripts/test` installs them all.
//!
//! The map: `it/support/` holds what the tests start and use (servers,
//! proxies, images, loaders, runners); every other folder of `it/` holds
//! the tests of one feature, and its `mod.rs` says which file tests what.
//! A new test file goes into its feature's folder, named in that folder's
//! `mod.rs`; a new server or tool goes into `support/`.

#[path = "it/support/mod.rs"]
mod support;

#[path = "it/archive/mod.rs"]
mod archive;

#[path = "it/auth/mod.rs"]
mod auth;

#[path = "it/cache/mod.rs"]
mod cache;

#[path = "it/cli/mod.rs"]
mod cli;

#[path = "it/cross/mod.rs"]
mod cross;

#[path = "it/mirrors/mod.rs"]
mod mirrors;

#[path = "it/net/mod.rs"]
mod net;

#[path = "it/project/mod.rs"]
mod project;

#[path = "it/pull/mod.rs"]
mod pull;

#[path = "it/push/mod.rs"]
mod push;

#[path = "it/robustness/mod.rs"]
mod robustness;

// The fault soak's modules (run by tests/soak.rs through scripts/soak):
// compiled here too, for their unit tests and so that lints cover them.
#[allow(dead_code)]
#[path = "soak/mod.rs"]
mod soak;
