//! The command line: the flags as typed ([`args`]), the subcommands
//! ([`commands`], with `pulltar push` in [`push_cmd`]), the [`plan`] a pull
//! runs (with [`targets`] for the images and the output path, and
//! [`connection`] for how a registry is reached, which a push shares), the
//! logger ([`logging`]) and the [`hints`] added to a failure.
//!
//! It takes in the arguments, the environment and standard input (for
//! `--password-stdin`), and gives out a validated plan to the commands'
//! flows (`pull`, `push`, `inspect`). Beyond reading those, it does no I/O
//! of its own.

use std::ffi::OsString;

use crate::error::Result;

pub mod args;
pub mod commands;
pub mod connection;
pub mod hints;
pub mod logging;
pub mod plan;
pub mod push_cmd;
pub mod targets;

/// Runs the command line `raw` (without the program name).
pub fn run(raw: Vec<OsString>) -> Result<()> {
    commands::run(commands::parse(raw)?)
}
