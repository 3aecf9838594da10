//! What a person sees and types: the [`progress`] display (its
//! [`counters`], drawn on a terminal by [`progress_tty`], worded by
//! [`progress_report`]), the Ctrl-C and SIGTERM handling of [`interrupt`],
//! the reading of a [`size`] as typed, and the [`escape`] of text from a
//! registry or an archive before it is printed.
//!
//! It takes in events (a blob started, bytes arrived, a retry, the end)
//! and text typed, and gives out lines on stderr, an "interrupted" flag
//! and numbers. It decides nothing about the pull.

pub mod counters;
pub mod escape;
pub mod interrupt;
pub mod progress;
pub mod progress_report;
pub mod progress_tty;
pub mod size;
