//! The content-addressed blob store (the [`cache`]), its administration
//! ([`cache_admin`]: `pulltar cache ls|prune`), the removal of what killed
//! pulls left in it ([`sweep`]) and the rules that keep its files the
//! user's alone ([`private`]).
//!
//! It takes in files that were verified as they were written, and gives
//! out paths of blobs named by their digest. It never holds anything
//! unverified under `blobs/` (unfinished downloads stay in `tmp/`), and
//! makes no network request.

pub mod cache;
pub mod cache_admin;
pub mod private;
pub mod sweep;
