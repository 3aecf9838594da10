//! Validating the raw [`Args`] into a [`Plan`] for the pull: the image
//! references and the output path (by [`crate::cli::targets`]); the archive
//! format and which layers are decompressed; the platform (`--platform` or `-a/--arch`, else the host's);
//! the thread count; the cache directory (or `--no-cache`); the retry
//! count, segment size ([`parse_size`]) and read timeout; credentials from
//! `-u` with `--password` or `--password-stdin`, else from the environment;
//! the `-r/--registry` mirror host; the proxy URL.
//!
//! It checks only what the user typed (ranges, references, platforms,
//! paths) and contacts no registry; the docker config is read later, by
//! the registry client. Every problem is an
//! [`Error::Usage`](crate::error::Error::Usage) or
//! [`Error::Reference`](crate::error::Error::Reference), never a panic.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::Duration;

use crate::archive::layers::Expansion;
use crate::archive::writer::Format;
use crate::cli::args::{usage, Args};
use crate::cli::logging::init_logging;
use crate::cli::targets::{output_path, references};
use crate::error::{Error, Result};
use crate::fetch::download::DEFAULT_CHUNK;
use crate::image::platform::Platform;
use crate::pull::{Plan, STDOUT};
use crate::registry::auth::Credentials;
use crate::registry::proxy::ProxyConfig;
use crate::registry::retry::Policy;
use crate::registry::{client, transport};
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
    let (platform, platform_explicit) = match (&args.platform, &args.arch) {
        (Some(_), Some(_)) => return Err(usage("give either --platform or -a/--arch, not both")),
        (Some(p), None) => (Platform::parse(p).map_err(usage)?, true),
        (None, Some(a)) => (Platform::parse_arch(a).map_err(usage)?, true),
        (None, None) => (Platform::host(), false),
    };
    let threads = args.threads.unwrap_or(8);
    if !(1..=128).contains(&threads) {
        return Err(usage(format!(
            "--threads must be from 1 to 128, got {threads}"
        )));
    }
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
    let retries = args.retries.unwrap_or(Policy::default().max_failures);
    let policy = Policy {
        max_failures: retries,
        ..Policy::default()
    };
    if retries > 100 {
        return Err(usage(format!(
            "--retries must be from 0 to 100, got {retries}"
        )));
    }
    let chunk = match &args.chunk_size {
        Some(s) => parse_size(s).map_err(usage)?,
        None => DEFAULT_CHUNK,
    };
    let read_timeout = args.read_timeout.unwrap_or(30);
    if !(1..=3600).contains(&read_timeout) {
        return Err(usage(format!(
            "--read-timeout must be from 1 to 3600 seconds, got {read_timeout}"
        )));
    }
    let credentials = credentials(args, stdin)?.or_else(crate::registry::credentials::from_env);
    let mirror = args.mirror.as_deref().map(mirror_host).transpose()?;
    if let Some(p) = &args.proxy {
        if !(p.starts_with("http://") || p.starts_with("https://")) {
            return Err(usage(format!(
                "--proxy {:?} is not a URL like http://host:port",
                crate::error::redact_url(p)
            )));
        }
    }
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
        && output.as_os_str() != STDOUT
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
        platform_explicit,
        output,
        cache_dir,
        threads,
        registry: client::Options {
            transport: transport::Options {
                insecure: args.insecure,
                connections: threads,
                read_timeout: Duration::from_secs(read_timeout),
                ca_certs: args.ca_certs.iter().map(|c| cwd.join(c)).collect(),
                proxy: ProxyConfig::new(args.proxy.clone()),
            },
            credentials,
            policy,
            mirror,
        },
        quiet: args.quiet,
        chunk,
    })
}

/// What a pull and `inspect` do before contacting a registry: set up
/// logging and the Ctrl-C handler, prompt for a `--password-stdin`
/// password on a terminal, validate the arguments into a plan.
pub(crate) fn prepare(args: &Args) -> Result<Plan> {
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

/// Parses a size: bytes, or a number with `K`, `M` or `G` (powers of
/// 1024; `KB`, `KiB` and so on are accepted too), from 64 KiB to 1 GiB.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "--chunk-size {s:?} is not a size like 4M, 512K or 1048576"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("--chunk-size {s:?} is not a size like 4M, 512K or 1048576"))?;
    let bytes = n.saturating_mul(mult);
    if !((64 << 10)..=(1 << 30)).contains(&bytes) {
        return Err(format!("--chunk-size must be from 64K to 1G, got {s:?}"));
    }
    Ok(bytes)
}

/// The host of `-r/--registry`: `host[:port]`, a scheme and a trailing
/// `/` allowed.
fn mirror_host(m: &str) -> Result<String> {
    let host = m
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    crate::image::name_rules::check_registry(host)
        .map_err(|e| usage(format!("-r/--registry {m:?}: {e}")))?;
    Ok(host.to_string())
}

fn credentials(args: &Args, stdin: &mut dyn BufRead) -> Result<Option<Credentials>> {
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err(usage(
                "give either --password or --password-stdin, not both",
            ))
        }
        (Some(p), false) => {
            log::warn!("a password on the command line can be seen by other users of this host; prefer --password-stdin");
            Some(p.clone())
        }
        (None, true) => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .map_err(|e| usage(format!("cannot read the password from stdin: {e}")))?;
            let p = line.trim_end_matches(['\r', '\n']).to_string();
            if p.is_empty() {
                return Err(usage(
                    "--password-stdin was given but stdin held no password",
                ));
            }
            Some(p)
        }
        (None, false) => None,
    };
    match (&args.username, password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            password: p,
        })),
        (Some(_), None) => Err(usage(
            "-u/--username needs --password-stdin (or --password)",
        )),
        (None, Some(_)) => Err(usage("a password was given without -u/--username")),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::pull_args;

    fn plan_of(v: &[&str]) -> Result<Plan> {
        plan(&pull_args(v), Path::new("/tmp"), &mut &b""[..])
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["-t", "0", "nginx"][..],
            &["-t", "500", "nginx"][..],
            &["--platform", "linux", "nginx"][..],
            &["--platform", "linux/amd64", "-a", "arm64", "nginx"][..],
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
        assert_eq!(p.output, Path::new("/tmp/alpine_3.20.tar"));
        assert_eq!(p.cache_dir, None);
        assert_eq!(p.threads, 8);
        let p = plan_of(&["-o", "/tmp/", "--cache-dir", "c", "nginx"]).unwrap();
        assert_eq!(p.output, Path::new("/tmp/nginx_latest.tar"));
        assert_eq!(p.cache_dir.as_deref(), Some(Path::new("/tmp/c")));
        let p = plan_of(&["-o", "x.tar", "--platform=linux/arm/v7", "nginx"]).unwrap();
        assert_eq!(p.output, Path::new("/tmp/x.tar"));
        assert_eq!(p.platform.to_string(), "linux/arm/v7");
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
        assert_eq!(p.registry.mirror.as_deref(), Some("mirror.example:5000"));
        for bad in [
            &["-r", "bad host", "x"][..],
            &["--proxy", "p:3128", "x"][..],
        ] {
            assert_eq!(plan_of(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in [
            "",
            "M",
            "1X",
            "1k1",
            "1K",
            "2G",
            "-1M",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
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
    fn password_from_stdin() {
        let a = pull_args(&["-u", "me", "--password-stdin", "nginx"]);
        let p = plan(&a, Path::new("/tmp"), &mut &b"s3cret\n"[..]).unwrap();
        let c = p.registry.credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "s3cret"));
        assert!(plan(&a, Path::new("/tmp"), &mut &b""[..]).is_err());
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
