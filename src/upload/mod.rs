//! Putting an archive's blobs into a registry, the push's counterpart of
//! `fetch/`: the [`blobs`] of a push on the user's connections (a
//! [`crate::fetch::pool`]), each looked for, mounted from a repository
//! that has it, or uploaded ([`blob`]: whole, or in chunks once a
//! registry or proxy refused a whole one with 413; after a failure, from
//! where the registry says the upload stands, or in a new session).
//!
//! It takes in the archive's blobs (where each lies in it) and a registry
//! client per repository, and gives out blobs stored in the registry,
//! each hashed on its way out (or, for a dry run, the same decisions
//! from `HEAD`s alone). It decides what to send and how; the
//! requests themselves are the registry client's, and it never writes a
//! manifest (the push flow does, after every blob is in).

pub mod blob;
pub mod blobs;
