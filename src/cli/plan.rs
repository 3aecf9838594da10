//! Validating the raw [`Args`] into a [`Plan`] for the pull: the image
//! references and the output path (by [`crate::cli::targets`]); the archive
//! format and which layers are decompressed; the platforms (`--platform`
//! or `-a/--arch`, else the host's); the cache directory (or
//! `--no-cache`); and how the registry is reached
//! ([`crate::cli::connection`], as a push reads it too).
//!
//! It checks only what the user typed (ranges, references, platforms,
//! paths) and contacts no registry. Every problem is an
//! [`Error::Usage`](crate::error::Error::Usage) or
//! [`Error::Reference`](crate::error::Error::Reference), never a panic.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use crate::archive::layers::Expansion;
use crate::archive::layout::Format;
use crate::archive::writer::Output;
use crate::cli::args::{usage, Args};
use crate::cli::connection::{connection, Connection};
use crate::cli::logging::init_logging;
use crate::cli::targets::{output_path, references};
use crate::error::{Error, Result};
use crate::image::platform::{Platform, Selection};
use crate::pull::Plan;
use crate::store::cache::Store;

/// Validates `args` into a pull plan. `stdin` is read only for
/// `--password-stdin`.
pub fn plan(args: &Args, cwd: &Path, stdin: &mut dyn BufRead) -> Result<Plan> {
    let references = references(args, cwd)?;
    let format = match args.format.as_deref() {
        None | Some("both") | Some("docker+oci") => Format::Both,
        Some("docker") => Format::Docker,
        Some("oci") => Format::Oci,
        Some(other) => {
            return Err(usage(format!(
                "--format {other:?} is not one of docker, oci, both"
            )))
        }
    };
    let expansion = match (args.keep_zstd, args.uncompressed) {
        (true, true) => return Err(usage("give either --keep-zstd or --uncompressed, not both")),
        (true, false) => Expansion::Nothing,
        (false, true) => Expansion::All,
        (false, false) => Expansion::Zstd,
    };
    let (selection, platform_explicit) = match (&args.platform, &args.arch) {
        (Some(_), Some(_)) => return Err(usage("give either --platform or -a/--arch, not both")),
        (Some(p), None) => (Selection::parse(p, false).map_err(usage)?, true),
        (None, Some(a)) => (Selection::parse(a, true).map_err(usage)?, true),
        (None, None) => (Selection::Some(vec![Platform::host()]), false),
    };
    let platform = selection.first();
    if args.no_cache && args.cache_dir.is_some() {
        return Err(usage("give either --cache-dir or --no-cache, not both"));
    }
    let cache_dir = if args.no_cache {
        None
    } else {
        match &args.cache_dir {
            Some(d) => Some(cwd.join(d)),
            None => Some(Store::default_root().ok_or_else(|| {
                usage(format!(
                    "no cache directory: set {}, or pass --cache-dir or --no-cache",
                    crate::sys::CACHE_DIR_VARIABLES
                ))
            })?),
        }
    };
    let Connection {
        registry,
        threads,
        chunk,
    } = connection(args, &references, cwd, stdin)?;
    if references.len() > 1 && args.output.is_none() {
        return Err(usage(format!(
            "{} images go into one archive: name it with -o FILE (or -o - for a pipe)",
            references.len()
        )));
    }
    let output = output_path(
        args.output.as_deref(),
        &references[0],
        cwd,
        std::io::stdout().is_terminal(),
    )?;
    if references.len() > 1
        && output != Output::Stdout
        && args.output.as_deref().is_some_and(|o| {
            cwd.join(o).is_dir() || o.to_string_lossy().ends_with(std::path::is_separator)
        })
    {
        return Err(usage(
            "several images go into one archive: -o must name a file, not a directory",
        ));
    }
    Ok(Plan {
        references,
        format,
        expansion,
        verify_cache: args.verify_cache,
        platform,
        selection,
        platform_explicit,
        output,
        cache_dir,
        threads,
        registry,
        quiet: args.quiet,
        chunk,
    })
}

/// What a pull and `inspect` do before contacting a registry: set up
/// logging and the Ctrl-C handler, prompt for a `--password-stdin`
/// password on a terminal, validate the arguments into a plan.
pub(crate) fn prepare(args: &Args) -> Result<Plan> {
    prepare_with(args, plan)
}

/// Logging, the Ctrl-C handler and the password prompt, then `plan` of
/// the arguments in the current directory (a pull's, or a push's).
pub(crate) fn prepare_with<P>(
    args: &Args,
    plan: fn(&Args, &Path, &mut dyn BufRead) -> Result<P>,
) -> Result<P> {
    init_logging(args)?;
    crate::ui::interrupt::install();
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("find the current directory", ".", e))?;
    let stdin = std::io::stdin();
    let prompt = args.password_stdin && stdin.is_terminal();
    if prompt {
        eprint!("Password: ");
    }
    let quiet = prompt && crate::sys::set_input_echo(false);
    let planned = plan(args, &cwd, &mut stdin.lock());
    if quiet {
        crate::sys::set_input_echo(true);
        eprintln!();
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::pull_args;
    use std::time::Duration;

    fn plan_of(v: &[&str]) -> Result<Plan> {
        plan(&pull_args(v), Path::new("/tmp"), &mut &b""[..])
    }

    fn file(path: &str) -> Output {
        Output::File(path.into())
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["-t", "0", "nginx"][..],
            &["-t", "500", "nginx"][..],
            &["--platform", "linux", "nginx"][..],
            &["--platform", "linux/amd64", "-a", "arm64", "nginx"][..],
            &["--platform", "linux/amd64,", "nginx"][..],
            &["-u", "me", "nginx"][..],
            &["--no-cache", "--cache-dir", "x", "nginx"][..],
            &["-o", "/nonexistent-dir/x.tar", "nginx"][..],
        ] {
            let e = plan_of(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn bad_reference_quotes_input() {
        let e = plan_of(&["UPPER/Case:tag"]).unwrap_err();
        assert!(e.to_string().contains("\"UPPER/Case:tag\""), "{e}");
    }

    #[test]
    fn plans() {
        let p = plan_of(&["-a", "arm64", "--no-cache", "alpine:3.20"]).unwrap();
        assert_eq!(p.platform.to_string(), "linux/arm64");
        assert!(p.platform_explicit);
        assert_eq!(p.output, file("/tmp/alpine_3.20.tar"));
        assert_eq!(p.cache_dir, None);
        assert_eq!(p.threads, 8);
        let p = plan_of(&["-o", "/tmp/", "--cache-dir", "c", "nginx"]).unwrap();
        assert_eq!(p.output, file("/tmp/nginx_latest.tar"));
        assert_eq!(p.cache_dir.as_deref(), Some(Path::new("/tmp/c")));
        let p = plan_of(&["-o", "x.tar", "--platform=linux/arm/v7", "nginx"]).unwrap();
        assert_eq!(p.output, file("/tmp/x.tar"));
        assert_eq!(p.platform.to_string(), "linux/arm/v7");
        let p = plan_of(&["--platform", "all", "nginx"]).unwrap();
        assert_eq!(
            (p.selection, p.platform),
            (Selection::All, Platform::host())
        );
        let p = plan_of(&["-a", "arm64,amd64", "nginx"]).unwrap();
        assert_eq!(p.platform.to_string(), "linux/arm64");
        assert_eq!(p.selection.to_string(), "linux/arm64, linux/amd64");
    }

    #[test]
    fn network_flags() {
        let p = plan_of(&[
            "--ca-cert",
            "a.pem",
            "--ca-cert",
            "/b.pem",
            "-r",
            "https://mirror.example:5000/",
            "--proxy",
            "http://p:3128",
            "nginx",
        ])
        .unwrap();
        assert_eq!(
            p.registry.transport.ca_certs,
            vec![
                std::path::PathBuf::from("/tmp/a.pem"),
                std::path::PathBuf::from("/b.pem")
            ]
        );
        assert_eq!(p.registry.mirrors, vec!["mirror.example:5000".to_string()]);
        for bad in [
            &["-r", "bad host", "x"][..],
            &["--proxy", "p:3128", "x"][..],
        ] {
            assert_eq!(plan_of(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn retry_flags() {
        let p = plan_of(&[
            "--retries",
            "2",
            "--chunk-size",
            "2M",
            "--read-timeout",
            "5",
            "nginx",
        ])
        .unwrap();
        assert_eq!(p.registry.policy.max_failures, 2);
        assert_eq!(p.chunk, 2 << 20);
        assert_eq!(p.registry.transport.read_timeout, Duration::from_secs(5));
        for bad in [
            &["--retries", "101", "x"][..],
            &["--read-timeout", "0", "x"][..],
            &["--chunk-size", "1", "x"][..],
        ] {
            assert_eq!(plan_of(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn formats_and_several_images() {
        let p = plan_of(&["nginx", "redis", "-o", "b.tar", "--no-cache"]).unwrap();
        assert_eq!(p.references.len(), 2);
        assert_eq!(p.format, Format::Both);
        assert_eq!(p.expansion, Expansion::Zstd);
        let e = plan_of(&["nginx", "redis", "--no-cache"]).unwrap_err();
        assert!(e.to_string().contains("-o"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let p = plan_of(&["--format", "oci", "--uncompressed", "x", "--no-cache"]).unwrap();
        assert_eq!((p.format, p.expansion), (Format::Oci, Expansion::All));
        let p = plan_of(&["--format=docker", "--keep-zstd", "x", "--no-cache"]).unwrap();
        assert_eq!(
            (p.format, p.expansion),
            (Format::Docker, Expansion::Nothing)
        );
        for bad in [
            &["--format", "tar", "x"][..],
            &["--keep-zstd", "--uncompressed", "x"][..],
        ] {
            assert_eq!(plan_of(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
