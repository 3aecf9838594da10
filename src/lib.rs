//! pulltar pulls container images from a Docker or OCI registry, without
//! a daemon, into one tar archive that `docker load`, `podman load`,
//! skopeo and containerd accept, and pushes such an archive into another
//! registry with every digest unchanged.
//!
//! The source has one folder per stage, in the order data flows through
//! them, and each stage imports only from the stages below it:
//!
//! - [`cli`]: the command line, read into the plan a command runs;
//! - the commands' flows: [`pull`], [`push`] and [`inspect`];
//! - [`resolve`]: a reference to its image manifests, through indexes
//!   (Docker schema 1 images converted), for a pull and for `inspect`;
//! - [`upload`]: every blob of a push into the registry, in parallel,
//!   each hashed on its way out;
//! - [`fetch`]: every blob of a pull onto disk, in parallel `Range`
//!   segments, resumable, verified before it is kept;
//! - [`archive`]: the tar written from the verified blobs, or laid out
//!   first and filled in place; and read back for a push;
//! - [`registry`]: talking to one registry (transport, TLS, proxies,
//!   authentication, retries);
//! - [`store`]: the content-addressed cache of verified blobs;
//! - [`ui`]: the progress display and Ctrl-C;
//! - [`image`]: what an image is (references, digests, platforms,
//!   manifests), with no network and no disk;
//! - [`sys`]: what differs between operating systems (positioned I/O,
//!   Ctrl-C, the terminal, replacing a file, the default directories, the
//!   system's CA certificates), behind one set of functions with a Unix
//!   side and a Windows side; no other module tests `cfg(unix)` or
//!   `cfg(windows)`.
//!
//! Every failure is an [`error::Error`], and `main.rs` turns it into the
//! exit code.
#![deny(missing_docs)]

pub mod cli;

pub mod inspect;
pub mod pull;
pub mod push;

pub mod resolve;

pub mod upload;

pub mod fetch;

pub mod archive;

pub mod registry;

pub mod store;

pub mod ui;

pub mod image;

pub mod sys;

pub mod error;
