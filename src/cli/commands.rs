//! What the command line asks for, and running it: a pull (the default),
//! the help or the version, or a subcommand beside a pull: `pulltar push
//! [OPTIONS] ARCHIVE DEST` ([`crate::cli::push_cmd`]), `pulltar login` and
//! `pulltar logout` ([`crate::cli::login_cmd`]), `pulltar inspect
//! [OPTIONS] IMAGE` (`--json`, `--list-platforms`, and the pull's image
//! selection, network and auth flags) and `pulltar cache ls|prune
//! [--older-than AGE] [--cache-dir DIR]`. A subcommand is recognised only
//! as the first argument; anything else is a pull (an image named like a
//! subcommand is pulled by its full name, `docker.io/library/login`).
//!
//! Parsing here reuses the pull's flag parser ([`crate::cli::args::parse`])
//! and validation ([`crate::cli::plan`]) for `inspect` (and its connection
//! flags for `push`), so they read the same flags the same way; the work
//! is done in [`crate::pull`], [`crate::push`], [`crate::inspect`] and
//! [`crate::store::cache_admin`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::args::{self, usage, Args, Parsed};
use crate::cli::plan::prepare;
use crate::cli::{login_cmd, push_cmd};
use crate::error::{Error, Result};
use crate::store::cache::Store;
use crate::store::cache_admin;
use crate::ui::escape::printable;
use crate::{inspect, pull, push};

const INSPECT_HELP: &str = "\
Usage: pulltar inspect [OPTIONS] IMAGE

Shows an image without downloading its layers: the manifest's digest and
media type, the platforms of a multi-platform image, and for the chosen
platform the layers with their sizes and the total.

      --json                 one JSON document, for scripts
      --list-platforms       only the platforms
      --platform OS/ARCH[/VARIANT], -a ARCH
                             which image of an index (default: this host's)
  Network and authentication flags are those of a pull (see pulltar --help).

Examples:
  pulltar inspect nginx:1.25
  pulltar inspect --list-platforms alpine:3.20
  pulltar inspect -a arm64 --json 127.0.0.1:5000/team/app:v2
";

const CACHE_HELP: &str = "\
Usage: pulltar cache ls [--cache-dir DIR]
       pulltar cache prune [--older-than AGE] [--cache-dir DIR]

  ls                      the blobs held (digest, size, age) and the total
  prune                   remove blobs and partial downloads, and report the
                          space freed; waits for no pull: it stops if one is
                          using the cache
      --older-than AGE    only those stored at least AGE ago: 30d, 12h, 2w
      --cache-dir DIR     the cache (default $XDG_CACHE_HOME/pulltar, else
                          ~/.cache/pulltar; %LOCALAPPDATA%\\pulltar on
                          Windows)
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Print this help text.
    Help(&'static str),
    /// Print the version.
    Version,
    /// Pull images.
    Pull(Box<Args>),
    /// `pulltar push ARCHIVE DEST`.
    Push(Box<Args>),
    /// `pulltar inspect`.
    Inspect(Box<Args>, inspect::Options),
    /// `pulltar login [HOST]`.
    Login(Box<Args>),
    /// `pulltar logout [HOST]`.
    Logout(Box<Args>),
    /// `pulltar cache ls`.
    CacheLs(Option<PathBuf>),
    /// `pulltar cache prune`.
    CachePrune(Option<PathBuf>, Option<Duration>),
}

/// The subcommands, recognised as the first argument only (an image of
/// that name is `docker.io/library/<name>`).
const SUBCOMMANDS: [&str; 5] = ["inspect", "cache", "push", "login", "logout"];

/// Whether the command line starts with a subcommand's name.
pub fn is_subcommand(raw: &[OsString]) -> bool {
    raw.first()
        .is_some_and(|a| SUBCOMMANDS.iter().any(|s| a == *s))
}

fn pico_err(e: pico_args::Error) -> Error {
    usage(e.to_string())
}

/// Parses the command line (without the program name).
pub fn parse(raw: Vec<OsString>) -> Result<Command> {
    if is_subcommand(&raw) {
        return parse_sub(raw);
    }
    Ok(match args::parse(raw)? {
        Parsed::Help => Command::Help(args::HELP),
        Parsed::ShortHelp => Command::Help(args::SHORT_HELP),
        Parsed::Version => Command::Version,
        Parsed::Pull(a) => Command::Pull(a),
    })
}

/// Parses a command line that [`is_subcommand`].
fn parse_sub(mut raw: Vec<OsString>) -> Result<Command> {
    let name = raw.remove(0);
    if name == "push" {
        return Ok(match push_cmd::parse(raw)? {
            Some(args) => Command::Push(args),
            None => Command::Help(push_cmd::HELP),
        });
    }
    if name == "login" || name == "logout" {
        let logout = name == "logout";
        return Ok(match login_cmd::parse(raw, logout)? {
            Some(args) if logout => Command::Logout(args),
            Some(args) => Command::Login(args),
            None => Command::Help(login_cmd::HELP),
        });
    }
    let wants_help = raw.iter().any(|a| a == "-h" || a == "--help");
    if name == "inspect" {
        if wants_help {
            return Ok(Command::Help(INSPECT_HELP));
        }
        let mut opts = inspect::Options::default();
        raw.retain(|a| {
            let json = a == "--json";
            let list = a == "--list-platforms";
            opts.json |= json;
            opts.list_platforms |= list;
            !(json || list)
        });
        if is_subcommand(&raw) {
            return Err(usage("pulltar inspect takes an image, not a subcommand"));
        }
        return match args::parse(raw)? {
            Parsed::Pull(args) if args.images.len() != 1 || !args.image_files.is_empty() => {
                Err(usage("pulltar inspect takes one image (no -f list)"))
            }
            Parsed::Pull(args) => Ok(Command::Inspect(args, opts)),
            _ => Ok(Command::Help(INSPECT_HELP)),
        };
    }
    if wants_help {
        return Ok(Command::Help(CACHE_HELP));
    }
    if raw.is_empty() {
        return Err(usage("pulltar cache needs ls or prune"));
    }
    let action = raw.remove(0);
    let mut p = pico_args::Arguments::from_vec(raw);
    let dir: Option<PathBuf> = p
        .opt_value_from_os_str("--cache-dir", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(pico_err)?;
    let older: Option<String> = if action == "prune" {
        p.opt_value_from_str("--older-than").map_err(pico_err)?
    } else {
        None
    };
    let rest = p.finish();
    if let Some(extra) = rest.first() {
        return Err(usage(format!(
            "unexpected argument {:?} for pulltar cache",
            extra.to_string_lossy()
        )));
    }
    match action.to_str() {
        Some("ls") => Ok(Command::CacheLs(dir)),
        Some("prune") => {
            let age = older
                .map(|o| cache_admin::parse_age(&o))
                .transpose()
                .map_err(usage)?;
            Ok(Command::CachePrune(dir, age))
        }
        _ => Err(usage(format!(
            "pulltar cache {:?}: expected ls or prune",
            action.to_string_lossy()
        ))),
    }
}

fn cache_root(dir: Option<PathBuf>) -> Result<PathBuf> {
    dir.or_else(Store::default_root).ok_or_else(|| {
        usage(format!(
            "no cache directory: set {}, or pass --cache-dir",
            crate::sys::CACHE_DIR_VARIABLES
        ))
    })
}

/// Runs a command, printing its result on stdout.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Help(text) => print!("{text}"),
        Command::Version => println!("pulltar {}", env!("CARGO_PKG_VERSION")),
        Command::Pull(args) => {
            let plan = prepare(&args)?;
            pull::run(&plan)?;
        }
        Command::Push(args) => {
            let plan = push_cmd::prepare(&args)?;
            for p in push::run(&plan)? {
                let r = &p.name;
                let tag = r.tag().map(|t| format!(":{t}")).unwrap_or_default();
                println!("{}/{}{tag}@{}", r.registry(), r.repository(), p.digest);
            }
        }
        Command::Login(args) => login_cmd::login(args)?,
        Command::Logout(args) => login_cmd::logout(args)?,
        Command::CacheLs(dir) => print!("{}", cache_admin::ls(&cache_root(dir)?)),
        Command::CachePrune(dir, age) => {
            let pruned = cache_admin::prune(&cache_root(dir)?, age)?;
            print!("{}", cache_admin::report(&pruned));
        }
        Command::Inspect(args, opts) => {
            let plan = prepare(&args)?;
            let text = inspect::run(&plan, opts)?;
            print!("{}", printable(&text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(v: &[&str]) -> Result<Command> {
        parse(v.iter().map(OsString::from).collect())
    }

    #[test]
    fn parses() {
        assert!(is_subcommand(&[OsString::from("cache")]));
        assert!(!is_subcommand(&[OsString::from("nginx")]));
        match sub(&["inspect", "--json", "-a", "arm64", "nginx"]).unwrap() {
            Command::Inspect(a, o) => {
                assert!(o.json && !o.list_platforms);
                assert_eq!(a.arch.as_deref(), Some("arm64"));
                assert_eq!(a.images, ["nginx"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sub(&["cache", "prune", "--older-than", "30d", "--cache-dir", "x"]),
            Ok(Command::CachePrune(Some(_), Some(d))) if d == Duration::from_secs(30 * 86_400)
        ));
        assert!(matches!(sub(&["cache", "ls"]), Ok(Command::CacheLs(None))));
        assert!(matches!(sub(&["inspect", "-h"]), Ok(Command::Help(_))));
        assert!(matches!(sub(&["push", "--help"]), Ok(Command::Help(_))));
        assert!(matches!(
            sub(&["push", "a.tar", "r.example"]),
            Ok(Command::Push(_))
        ));
        for bad in [
            &["cache"][..],
            &["cache", "rm"][..],
            &["cache", "ls", "--older-than", "1d"][..],
            &["cache", "prune", "--older-than", "30"][..],
            &["inspect"][..],
            &["inspect", "a", "b"][..],
        ] {
            let e = sub(bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
