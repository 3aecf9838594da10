//! pulltar pulls a container image from a Docker or OCI registry, without
//! a daemon, into one tar archive that `docker load`, `podman load` and
//! skopeo accept.
//!
//! A pull goes: [`cli`] reads the command line, [`plan`] validates it into
//! a [`pull::Plan`] and [`logging`] sets up the logger;
//! [`reference`](mod@reference) parses the name, by the grammar in
//! [`name_rules`]; [`registry`] pings the registry, reached through
//! [`transport`] ([`tls`] for the trusted roots, [`proxy`] and [`forward`]
//! for proxies), and authenticates in [`handshake`], with [`auth`] for
//! challenges and tokens, [`credentials`] for the environment and the
//! docker config, and [`base64`]; [`http_error`] turns failed responses
//! into errors. [`manifest`] reads the manifest (its media types checked by
//! [`media_type`]) and [`platform`] picks an
//! image from an index; [`download`] fetches the config and layers in
//! parallel, in the order [`schedule`] chooses, each segment by
//! [`segment`] into a resumable [`partial`] file, then into the verified
//! [`cache`] store ([`digest`] checks the bytes), retrying by the
//! [`retry`] policy; [`archive`] writes the tar from the store, with the documents of
//! [`archive_index`];
//! [`progress`] reports and [`interrupt`] stops the pull on Ctrl-C;
//! [`pull`] strings these together. Every failure is an [`error::Error`].
#![deny(missing_docs)]

pub mod archive;
pub mod archive_index;
pub mod auth;
pub mod base64;
pub mod cache;
pub mod cli;
pub mod credentials;
pub mod digest;
pub mod download;
pub mod error;
pub mod forward;
pub mod handshake;
pub mod http_error;
pub mod interrupt;
pub mod logging;
pub mod manifest;
pub mod media_type;
pub mod name_rules;
pub mod partial;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod proxy;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod schedule;
pub mod segment;
pub mod tls;
pub mod transport;
