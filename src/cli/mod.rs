//! The command line: the flags as typed ([`args`]), the subcommands
//! ([`commands`], with `pulltar push` in [`push_cmd`], `login` and `logout`
//! in [`login_cmd`]), the [`plan`] a pull
//! runs (with [`targets`] for the images and the output path, and
//! [`connection`] for how a registry is reached, which a push shares), the
//! logger ([`logging`]), and the questions asked instead when pulltar is started with no arguments on a
//! terminal ([`ask`], double-click use).
//!
//! It takes in the arguments, the environment, standard input (for
//! `--password-stdin`, the password prompt, or the answers to the
//! questions) and the `-f` lists, and gives out a validated plan to the
//! commands' flows (`pull`, `push`, `inspect`), whose results it prints.
//! The files it writes are the `--log-file` and, for `login` and
//! `logout`, docker's config (through `registry/credentials.rs`); reading, writing and
//! caching blobs and archives is the flows' work.

use std::ffi::OsString;

use crate::error::Result;

pub mod args;
pub mod ask;
pub mod commands;
pub mod connection;
pub mod logging;
pub mod login_cmd;
pub mod plan;
pub mod push_cmd;
pub mod targets;

/// Runs the command line `raw` (without the program name); with no
/// arguments on a terminal, asks what to pull ([`ask`]).
pub fn run(raw: Vec<OsString>) -> Result<()> {
    if ask::wanted(&raw) {
        return ask::run();
    }
    commands::run(commands::parse(raw)?)
}

/// Call last, after printing the result: a console window opened for
/// pulltar alone (a double-click on Windows) waits for Enter before it
/// closes.
pub fn before_exit() {
    ask::hold_window()
}
