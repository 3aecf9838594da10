//! Getting blobs onto disk: the [`download`] pool (a [`pool`], shared with
//! the push's uploads) that runs every blob of a pull on the user's
//! connections, the [`schedule`] that picks the next
//! piece of work (how large, on a host that rations, from [`share`]), each
//! [`segment`] fetched with `Range` (and given up if it drips, [`pace`])
//! into a resumable [`partial`] file whose written bytes are journaled as
//! a [`rangeset`], from the registry [`sources`] names for each blob (or
//! from every mirror of a list, each failure going to another one:
//! `failover.rs`).
//!
//! Sizes no pull may take are refused first ([`limits`]).
//!
//! It takes in descriptors (digest and size) and registry clients, and
//! gives out verified blobs in the store, or in their region of an archive
//! written in place. It never knows the archive's format, and never
//! trusts a byte it has not hashed against its digest.

pub mod download;
mod failover;
pub mod limits;
pub mod pace;
pub mod partial;
pub mod pool;
pub mod rangeset;
pub mod schedule;
pub mod segment;
pub mod share;
pub mod sources;
