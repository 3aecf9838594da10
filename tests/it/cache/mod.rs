//! The layer cache: hits, sharing between pulls, `pulltar cache ls` and
//! `prune` (`commands`), and `--verify-cache` finding damaged blobs
//! (`verify`), and the cache kept private: modes, planted links, folders
//! others may write in, a wrong size in a manifest, leftover temporaries
//! (`private_files`). Resuming across runs is in `robustness/resume.rs`.

mod commands;
mod private_files;
mod verify;
