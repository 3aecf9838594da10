//! pulltar pulls container images from a Docker or OCI registry, without
//! a daemon, into one tar archive that `docker load`, `podman load`,
//! skopeo and containerd accept.
//!
//! A pull goes: [`cli`] reads the command line, [`plan`] validates it (with
//! [`targets`] for the images and the output path) into
//! a [`pull::Plan`] and [`logging`] sets up the logger;
//! [`reference`](mod@reference) parses the name, by the grammar in
//! [`name_rules`]; [`registry`] pings the registry, reached through
//! [`transport`] ([`tls`] for the trusted roots, [`proxy`] and [`forward`]
//! for proxies), and authenticates in [`handshake`], with [`auth`] for
//! challenges and tokens, [`credentials`] for the environment and the
//! docker config, and [`base64`]; [`http_error`] turns failed responses
//! into errors. [`resolve`] fetches the manifest, read by [`manifest`]
//! (its media types checked by [`media_type`]), following indexes, where
//! [`platform`] picks the image; [`download`] fetches the configs and
//! layers of every image in parallel (from the registry [`sources`] names
//! for each blob), in the order [`schedule`] chooses, each segment by
//! [`segment`] into a resumable [`partial`] file (its [`rangeset`]
//! journaled), then into the verified [`cache`] store ([`digest`] checks
//! the bytes), retrying by the [`retry`] policy; [`layers`] decides which layers are decompressed (by
//! [`layer_types`]) and [`decompress`] does it, checking diff_ids;
//! [`schema1`] converts Docker schema 1 images; [`archive`] writes the tar
//! from the store, with the documents of [`archive_index`] — or, without a
//! cache, [`archive_inplace`] lays it out first and the downloads fill it —
//! its disk writes started early by [`writeback`];
//! [`progress`] reports and [`interrupt`] stops the pull on Ctrl-C;
//! [`pull`] strings these together. Every failure is an [`error::Error`].
//!
//! Beside pulls, [`commands`] parses `pulltar inspect` ([`inspect`], which
//! finds the image with [`resolve`] and downloads no layer) and `pulltar
//! cache ls|prune` ([`cache_admin`]); [`hints`] adds what to try next to
//! a failure (the tags a repository has); [`progress_tty`] draws the
//! progress display on a terminal and [`progress_report`] words its
//! summary.
#![deny(missing_docs)]

pub mod archive;
pub mod archive_index;
pub mod archive_inplace;
pub mod auth;
pub mod base64;
pub mod cache;
pub mod cache_admin;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod decompress;
pub mod digest;
pub mod download;
pub mod error;
pub mod forward;
pub mod handshake;
pub mod hints;
pub mod http_error;
pub mod inspect;
pub mod interrupt;
pub mod layer_types;
pub mod layers;
pub mod logging;
pub mod manifest;
pub mod media_type;
pub mod name_rules;
pub mod partial;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod progress_report;
pub mod progress_tty;
pub mod proxy;
pub mod pull;
pub mod rangeset;
pub mod reference;
pub mod registry;
pub mod resolve;
pub mod retry;
pub mod schedule;
pub mod schema1;
pub mod segment;
pub mod sources;
pub mod targets;
pub mod tls;
pub mod transport;
pub mod writeback;
