//! What a person sees: the [`progress`] display (its [`counters`], drawn
//! on a terminal by [`progress_tty`], worded by [`progress_report`]) and
//! the Ctrl-C and SIGTERM handling of [`interrupt`].
//!
//! It takes in events (a blob started, bytes arrived, a retry, the end)
//! and gives out lines on stderr and an "interrupted" flag. It decides
//! nothing about the pull.

pub mod counters;
pub mod interrupt;
pub mod progress;
pub mod progress_report;
pub mod progress_tty;
