//! The layer cache: hits, sharing between pulls, `pulltar cache ls` and
//! `prune` (`commands`), and `--verify-cache` finding damaged blobs
//! (`verify`). Resuming across runs is in `robustness/resume.rs`.

mod commands;
mod verify;
