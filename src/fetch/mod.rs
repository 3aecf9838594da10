//! Getting blobs onto disk: the [`download`] pool (a [`pool`], shared with
//! the push's uploads) runs every blob of a pull on the user's
//! connections; the [`schedule`] picks each thread's next piece of work,
//! sized in [`segment_size`]; each [`segment`] is fetched with `Range` (and
//! given up if it drips: [`drip_guard`]) into a resumable [`partial`] file
//! whose written bytes are journaled as a [`rangeset`]. A blob comes from
//! the registry [`blob_origin`] names for it, or from a mirror list, where
//! `failover.rs` sends what one mirror failed to another; a blob larger
//! than [`blob_size_limit`] allows is refused before anything is fetched.
//!
//! It takes in descriptors (digest and size) and registry clients, and
//! gives out verified blobs in the store, or in their region of an archive
//! written in place. It never knows the archive's format, and never
//! trusts a byte it has not hashed against its digest.

pub mod blob_origin;
pub mod blob_size_limit;
pub mod download;
pub mod drip_guard;
mod failover;
pub mod partial;
pub mod pool;
pub mod rangeset;
pub mod schedule;
pub mod segment;
pub mod segment_size;
