//! The command line as typed: flags in docker's spelling (and the older
//! scripts' aliases) read with pico-args into the raw [`Args`], or the
//! `--help` and `--version` [`Command`]s; and [`run`], which prints the
//! help or version, or sets up logging and the Ctrl-C handler, prompts for
//! a `--password-stdin` password on a terminal, validates the arguments
//! into a plan and pulls.
//!
//! Parsing here only checks flag syntax and that numbers are numbers; it
//! contacts no registry. Whether the values make sense (references,
//! platforms, ranges, paths, credentials) is decided in [`crate::cli::plan`],
//! and the logger is configured in [`crate::cli::logging`]. Every usage problem
//! is an [`Error::Usage`], never a panic.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::logging::init_logging;
use crate::cli::plan::plan;
use crate::error::{Error, Result};
use crate::pull;

const HELP: &str = include_str!("help.txt");
const SHORT_HELP: &str = include_str!("help_short.txt");

/// The command line as typed, checked only for syntax.
#[derive(Debug, Default)]
pub struct Args {
    pub(crate) images: Vec<String>,
    pub(crate) image_files: Vec<PathBuf>,
    pub(crate) format: Option<String>,
    pub(crate) keep_zstd: bool,
    pub(crate) uncompressed: bool,
    pub(crate) verify_cache: bool,
    pub(crate) output: Option<PathBuf>,
    pub(crate) platform: Option<String>,
    pub(crate) arch: Option<String>,
    pub(crate) threads: Option<usize>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) no_cache: bool,
    pub(crate) quiet: bool,
    pub(crate) debug: bool,
    pub(crate) insecure: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) password_stdin: bool,
    pub(crate) retries: Option<u32>,
    pub(crate) chunk_size: Option<String>,
    pub(crate) read_timeout: Option<u64>,
    pub(crate) ca_certs: Vec<PathBuf>,
    pub(crate) proxy: Option<String>,
    pub(crate) mirror: Option<String>,
    pub(crate) log_file: Option<PathBuf>,
}

/// What the command line asks for.
pub enum Command {
    /// Print the help.
    Help,
    /// Print the short help (`-h`).
    ShortHelp,
    /// `pulltar inspect …` or `pulltar cache …`.
    Sub(Box<crate::cli::commands::Sub>),
    /// Print the version.
    Version,
    /// Pull an image.
    Pull(Box<Args>),
}

pub(crate) fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn pico_err(e: pico_args::Error) -> Error {
    usage(e.to_string())
}

/// Parses the arguments (without the program name).
pub fn parse(raw: Vec<OsString>) -> Result<Command> {
    if crate::cli::commands::is_subcommand(&raw) {
        return crate::cli::commands::parse(raw).map(|s| Command::Sub(Box::new(s)));
    }
    let mut p = pico_args::Arguments::from_vec(raw);
    if p.contains("--help") {
        return Ok(Command::Help);
    }
    if p.contains("-h") {
        return Ok(Command::ShortHelp);
    }
    if p.contains(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    let mut a = Args {
        output: p
            .opt_value_from_os_str(["-o", "--output"], |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(pico_err)?,
        platform: p.opt_value_from_str("--platform").map_err(pico_err)?,
        arch: p.opt_value_from_str(["-a", "--arch"]).map_err(pico_err)?,
        cache_dir: p
            .opt_value_from_os_str("--cache-dir", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(pico_err)?,
        no_cache: p.contains("--no-cache"),
        image_files: p
            .values_from_os_str(["-f", "--file"], |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(pico_err)?,
        format: p.opt_value_from_str("--format").map_err(pico_err)?,
        keep_zstd: p.contains("--keep-zstd"),
        uncompressed: p.contains("--uncompressed"),
        verify_cache: p.contains("--verify-cache"),
        quiet: p.contains(["-q", "--quiet"]),
        debug: p.contains(["-v", "--debug"]),
        insecure: p.contains("--insecure"),
        username: p
            .opt_value_from_str(["-u", "--username"])
            .map_err(pico_err)?,
        password: p.opt_value_from_str("--password").map_err(pico_err)?,
        password_stdin: p.contains("--password-stdin"),
        retries: p.opt_value_from_str("--retries").map_err(pico_err)?,
        chunk_size: p.opt_value_from_str("--chunk-size").map_err(pico_err)?,
        read_timeout: p.opt_value_from_str("--read-timeout").map_err(pico_err)?,
        ca_certs: p
            .values_from_os_str("--ca-cert", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(pico_err)?,
        proxy: p.opt_value_from_str("--proxy").map_err(pico_err)?,
        mirror: p
            .opt_value_from_str(["-r", "--registry"])
            .map_err(pico_err)?,
        log_file: p
            .opt_value_from_os_str("--log-file", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(pico_err)?,
        ..Args::default()
    };
    for keys in [["-t", "--threads"], ["-j", "--workers"]] {
        if let Some(n) = p.opt_value_from_str(keys).map_err(pico_err)? {
            a.threads = Some(n);
        }
    }
    if let Some(n) = p
        .opt_value_from_str("--max-concurrent-downloads")
        .map_err(pico_err)?
    {
        a.threads = Some(n);
    }
    let free = p.finish();
    for arg in free {
        let s = arg
            .into_string()
            .map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))?;
        if s.starts_with('-') && s.len() > 1 {
            return Err(usage(format!("unknown option {s:?}")));
        }
        a.images.push(s);
    }
    if a.images.is_empty() && a.image_files.is_empty() {
        return Err(usage(
            "no image given: pulltar [OPTIONS] IMAGE [IMAGE...] (or -f FILE)",
        ));
    }
    Ok(Command::Pull(Box::new(a)))
}

/// What a pull and `inspect` do before contacting a registry: set up
/// logging and the Ctrl-C handler, prompt for a `--password-stdin`
/// password on a terminal, validate the arguments into a plan.
pub(crate) fn prepare(args: &Args) -> Result<crate::pull::Plan> {
    init_logging(args)?;
    crate::ui::interrupt::install();
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("find the current directory", ".", e))?;
    let stdin = std::io::stdin();
    if args.password_stdin && stdin.is_terminal() {
        eprint!("Password: ");
    }
    plan(args, &cwd, &mut stdin.lock())
}

/// Runs the command line `raw` (without the program name).
pub fn run(raw: Vec<OsString>) -> Result<()> {
    match parse(raw)? {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::ShortHelp => {
            print!("{SHORT_HELP}");
            Ok(())
        }
        Command::Sub(sub) => crate::cli::commands::run(*sub),
        Command::Version => {
            println!("pulltar {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Pull(args) => {
            let plan = prepare(&args)?;
            pull::run(&plan)
                .map(|_| ())
                .map_err(|e| crate::cli::hints::after_failure(e, &plan.references, &plan.registry))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Command> {
        parse(v.iter().map(OsString::from).collect())
    }

    fn pull_args(v: &[&str]) -> Args {
        match args(v).unwrap() {
            Command::Pull(a) => *a,
            _ => panic!("not a pull"),
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(args(&["--help"]), Ok(Command::Help)));
        assert!(matches!(args(&["-h"]), Ok(Command::ShortHelp)));
        assert!(matches!(args(&["-V"]), Ok(Command::Version)));
        for flag in [
            "--platform",
            "--arch",
            "--output",
            "--threads",
            "--workers",
            "--max-concurrent-downloads",
            "--cache-dir",
            "--no-cache",
            "--quiet",
            "--debug",
            "--insecure",
            "--username",
            "--password-stdin",
            "--file",
            "--format",
            "--keep-zstd",
            "--uncompressed",
            "--verify-cache",
            "--log-file",
            "inspect",
            "cache prune",
        ] {
            assert!(HELP.contains(flag), "{flag} missing from help");
        }
    }

    #[test]
    fn thread_aliases() {
        for flags in [
            ["-t", "3"],
            ["--threads", "3"],
            ["-j", "3"],
            ["--workers", "3"],
            ["--max-concurrent-downloads", "3"],
        ] {
            let a = pull_args(&[flags[0], flags[1], "nginx"]);
            assert_eq!(a.threads, Some(3), "{flags:?}");
        }
        assert_eq!(pull_args(&["--threads=5", "nginx"]).threads, Some(5));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["nginx", "--bogus"][..],
            &[][..],
            &["-t", "x", "nginx"][..],
            &["--platform"][..],
        ] {
            let e = args(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }
}
