//! pulltar pulls a container image from a Docker or OCI registry, without
//! a daemon, into one tar archive that `docker load`, `podman load`, skopeo
//! and containerd accept.
//!
//! A pull goes: [`reference`] parses the name; [`registry`] pings the
//! registry and authenticates ([`auth`]); [`manifest`] reads the manifest
//! and [`platform`] picks an image from an index; [`download`] fetches the
//! config and layers in parallel into the verified [`cache`] store, retrying
//! by the [`retry`] policy; [`archive`] writes the tar from the store;
//! [`progress`] reports; [`pull`] strings these together and [`cli`] turns
//! the command line into a [`pull::Plan`]. Every failure is an
//! [`error::Error`].
#![deny(missing_docs)]

pub mod archive;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod credentials;
pub mod digest;
pub mod download;
pub mod error;
pub mod forward;
pub mod interrupt;
pub mod manifest;
pub mod partial;
pub mod platform;
pub mod progress;
pub mod proxy;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod segment;
pub mod tls;
pub mod transport;
