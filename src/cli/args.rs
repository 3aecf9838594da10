//! The flags of a pull (and of `inspect`) as typed: docker's spelling and
//! the older scripts' aliases, read with pico-args into the raw [`Args`],
//! or the `--help`, `-h` and `--version` requests ([`Parsed`]).
//!
//! Parsing here only checks flag syntax and that numbers are numbers; it
//! contacts no registry. Whether the values make sense (references,
//! platforms, ranges, paths, credentials) is decided in
//! [`crate::cli::plan`]; subcommands are told apart in
//! [`crate::cli::commands`]. Every usage problem is an [`Error::Usage`],
//! never a panic.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The full help (`--help`).
pub(crate) const HELP: &str = include_str!("help.txt");
/// The short help (`-h`).
pub(crate) const SHORT_HELP: &str = include_str!("help_short.txt");

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
    pub(crate) insecure_registries: Vec<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) password_stdin: bool,
    pub(crate) retries: Option<u32>,
    pub(crate) chunk_size: Option<String>,
    pub(crate) read_timeout: Option<u64>,
    pub(crate) ca_certs: Vec<PathBuf>,
    pub(crate) proxy: Option<String>,
    /// `-r/--registry` as given, each maybe a comma list.
    pub(crate) mirrors: Vec<String>,
    pub(crate) mirrors_only: bool,
    pub(crate) log_file: Option<PathBuf>,
    /// `push --dry-run` (read by [`crate::cli::push_cmd`] alone).
    pub(crate) dry_run: bool,
}

/// What the flags ask for.
pub enum Parsed {
    /// Print the help.
    Help,
    /// Print the short help (`-h`).
    ShortHelp,
    /// Print the version.
    Version,
    /// Pull (or inspect) an image.
    Pull(Box<Args>),
}

pub(crate) fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn pico_err(e: pico_args::Error) -> Error {
    usage(e.to_string())
}

/// Parses the arguments of a pull (without the program name).
pub fn parse(raw: Vec<OsString>) -> Result<Parsed> {
    let mut p = pico_args::Arguments::from_vec(raw);
    if p.contains("--help") {
        return Ok(Parsed::Help);
    }
    if p.contains("-h") {
        return Ok(Parsed::ShortHelp);
    }
    if p.contains(["-V", "--version"]) {
        return Ok(Parsed::Version);
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
        insecure_registries: p.values_from_str("--insecure-registry").map_err(pico_err)?,
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
        mirrors: p.values_from_str(["-r", "--registry"]).map_err(pico_err)?,
        mirrors_only: p.contains("--mirrors-only"),
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
    Ok(Parsed::Pull(Box::new(a)))
}

/// The raw arguments of a pull command line, for tests.
#[cfg(test)]
pub(crate) fn pull_args(v: &[&str]) -> Args {
    match parse(v.iter().map(OsString::from).collect()).unwrap() {
        Parsed::Pull(a) => *a,
        _ => panic!("not a pull"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Parsed> {
        parse(v.iter().map(OsString::from).collect())
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(args(&["--help"]), Ok(Parsed::Help)));
        assert!(matches!(args(&["-h"]), Ok(Parsed::ShortHelp)));
        assert!(matches!(args(&["-V"]), Ok(Parsed::Version)));
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
            "--insecure-registry",
            "--username",
            "--password-stdin",
            "--file",
            "--format",
            "--keep-zstd",
            "--uncompressed",
            "--verify-cache",
            "--log-file",
            "--registry",
            "--mirrors-only",
            "inspect",
            "cache prune",
            "push",
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
