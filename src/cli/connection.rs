//! How a command reaches a registry, from the flags a pull and a push
//! share: the thread count (`-t` and its aliases), the retry count
//! (`--retries`), the chunk size (`--chunk-size`, read by [`parse_size`]),
//! the read timeout, TLS (`--ca-cert`, `--insecure`,
//! `--insecure-registry`), the proxy, the
//! `-r/--registry` mirrors (comma lists, repeatable, in order) and
//! `--mirrors-only`, and the credentials: `-u` with `--password` or
//! `--password-stdin`, else the environment (the docker config is read
//! later, by the registry client).
//!
//! It checks only what the user typed; nothing is contacted. Every problem
//! is an [`Error::Usage`](crate::error::Error::Usage).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use crate::cli::args::{usage, Args};
use crate::error::Result;
use crate::fetch::download::DEFAULT_CHUNK;
use crate::registry::auth::Credentials;
use crate::registry::proxy::ProxyConfig;
use crate::registry::retry::Policy;
use crate::registry::{client, transport};
use crate::ui::size::parse_size;

/// How a command reaches its registry.
#[derive(Debug)]
pub struct Connection {
    /// The client's options.
    pub registry: client::Options,
    /// Connections at once.
    pub threads: usize,
    /// The chunk size.
    pub chunk: u64,
}

/// Validates the connection flags of `args` (paths relative to `cwd`;
/// `stdin` is read only for `--password-stdin`).
pub fn connection(args: &Args, cwd: &Path, stdin: &mut dyn BufRead) -> Result<Connection> {
    let threads = args.threads.unwrap_or(8);
    if !(1..=128).contains(&threads) {
        return Err(usage(format!(
            "--threads must be from 1 to 128, got {threads}"
        )));
    }
    let retries = args.retries.unwrap_or(Policy::default().max_failures);
    if retries > 100 {
        return Err(usage(format!(
            "--retries must be from 0 to 100, got {retries}"
        )));
    }
    let policy = Policy {
        max_failures: retries,
        refusals: retries,
        ..Policy::default()
    };
    let chunk = match &args.chunk_size {
        Some(s) => chunk_size(s)?,
        None => DEFAULT_CHUNK,
    };
    let read_timeout = args.read_timeout.unwrap_or(30);
    if !(1..=3600).contains(&read_timeout) {
        return Err(usage(format!(
            "--read-timeout must be from 1 to 3600 seconds, got {read_timeout}"
        )));
    }
    let credentials = credentials(args, stdin)?.or_else(crate::registry::credentials::from_env);
    let mut mirrors: Vec<String> = Vec::new();
    for list in &args.mirrors {
        for m in list.split(',').map(str::trim) {
            let host = mirror_host(m)?;
            if !mirrors.contains(&host) {
                mirrors.push(host);
            }
        }
    }
    if args.mirrors_only && mirrors.is_empty() {
        return Err(usage(
            "--mirrors-only needs at least one mirror: -r HOST[:PORT][,HOST...]",
        ));
    }
    if let Some(p) = &args.proxy {
        if !(p.starts_with("http://") || p.starts_with("https://")) {
            return Err(usage(format!(
                "--proxy {:?} is not a URL like http://host:port",
                crate::error::redact_url(p)
            )));
        }
    }
    Ok(Connection {
        registry: client::Options {
            transport: transport::Options {
                insecure: args.insecure,
                insecure_registries: insecure_registries(args)?,
                connections: threads,
                read_timeout: Duration::from_secs(read_timeout),
                ca_certs: args.ca_certs.iter().map(|c| cwd.join(c)).collect(),
                proxy: ProxyConfig::new(args.proxy.clone()),
                connect_timeout: transport::CONNECT_TIMEOUT,
            },
            credentials,
            policy,
            mirrors,
            mirrors_only: args.mirrors_only,
            budgets: Default::default(),
            once: false,
        },
        threads,
        chunk,
    })
}

/// The `--chunk-size` value: a size from 64 KiB to 1 GiB.
fn chunk_size(s: &str) -> Result<u64> {
    let bytes = parse_size("--chunk-size", s).map_err(usage)?;
    if !((64 << 10)..=(1 << 30)).contains(&bytes) {
        return Err(usage(format!(
            "--chunk-size must be from 64K to 1G, got {s:?}"
        )));
    }
    Ok(bytes)
}

/// The hosts of `--insecure-registry`: `HOST` or `HOST:PORT` each.
fn insecure_registries(args: &Args) -> Result<Vec<String>> {
    let check = |h: &String| {
        crate::image::name_rules::check_registry(h)
            .map(|_| h.to_ascii_lowercase())
            .map_err(|e| usage(format!("--insecure-registry {h:?}: {e}")))
    };
    args.insecure_registries.iter().map(check).collect()
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

    fn plan(a: &Args, cwd: &Path, stdin: &mut dyn BufRead) -> Result<Connection> {
        connection(a, cwd, stdin)
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size("64K").ok(), Some(64 << 10));
        assert_eq!(chunk_size("1GiB").ok(), Some(1 << 30));
        for bad in ["1K", "2G", "1X", "99999999999999999999"] {
            assert_eq!(chunk_size(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn mirror_lists() {
        let a = pull_args(&[
            "-r",
            "a.example, b.example:5000",
            "-r",
            "https://c.example/",
            "-r",
            "a.example",
            "nginx",
        ]);
        let p = plan(&a, Path::new("/tmp"), &mut &b""[..]).unwrap();
        assert_eq!(
            p.registry.mirrors,
            ["a.example", "b.example:5000", "c.example"]
        );
        assert!(!p.registry.mirrors_only);
        let a = pull_args(&["-r", "a.example", "--mirrors-only", "nginx"]);
        assert!(
            plan(&a, Path::new("/tmp"), &mut &b""[..])
                .unwrap()
                .registry
                .mirrors_only
        );
        for bad in [
            &["--mirrors-only", "nginx"][..],
            &["-r", "a.example,,b", "nginx"][..],
        ] {
            let e = plan(&pull_args(bad), Path::new("/tmp"), &mut &b""[..]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
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
}
