//! How a command reaches a registry, from the flags a pull and a push
//! share: the thread count (`-t` and its aliases), the retry count
//! (`--retries`), the chunk size (`--chunk-size`, read by [`parse_size`]),
//! the read timeout, TLS (`--ca-cert`, `--insecure`,
//! `--insecure-registry`), the proxy, the
//! `-r/--registry` mirrors (comma lists, repeatable, in order) and
//! `--mirrors-only`, and the credentials: `-u` with `--password` or
//! `--password-stdin`, else the environment, and the one host they belong
//! to ([`credential_host`]; the docker config is read later, by the
//! registry client, for every other host).
//!
//! It checks only what the user typed; nothing is contacted. Every problem
//! is an [`Error::Usage`](crate::error::Error::Usage).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use crate::cli::args::{usage, Args};
use crate::error::Result;
use crate::fetch::download::DEFAULT_CHUNK;
use crate::image::reference::Reference;
use crate::registry::auth::Credentials;
use crate::registry::credentials;
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

/// Validates the connection flags of `args` for a command that reaches
/// the registries of `images` (paths relative to `cwd`; `stdin` is read
/// only for `--password-stdin`).
pub fn connection(
    args: &Args,
    images: &[Reference],
    cwd: &Path,
    stdin: &mut dyn BufRead,
) -> Result<Connection> {
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
    let credentials = match credentials(args, stdin)?.or_else(credentials::from_env) {
        Some(c) => Some((credential_host(images, &mirrors, args.mirrors_only)?, c)),
        None => None,
    };
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

/// The one host explicit credentials (`-u`, or `PULLTAR_USERNAME`) are
/// for: the registry `images` name (Docker Hub's API host for Docker Hub
/// images, whatever mirrors are tried first; the one mirror under
/// `--mirrors-only`). Several registries, or several mirrors only, are a
/// usage error: each host then needs its own login.
pub fn credential_host(
    images: &[Reference],
    mirrors: &[String],
    mirrors_only: bool,
) -> Result<String> {
    let each = "give each registry its own login with `pulltar login HOST` (or docker's config.json and credential helpers)";
    let mut hosts: Vec<String> = Vec::new();
    for r in images {
        let host = match (r.is_docker_hub() && !mirrors.is_empty() && mirrors_only, mirrors) {
            (true, [one]) => one.clone(),
            (true, _) => {
                return Err(usage(format!(
                    "-u/--username (or PULLTAR_USERNAME) is for one registry, and --mirrors-only names several mirrors ({}); {each}",
                    mirrors.join(", ")
                )))
            }
            (false, _) if r.is_docker_hub() => client::docker_hub_host(r),
            (false, _) => r.api_host().to_string(),
        }
        .to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    match hosts.len() {
        0 => Err(usage("-u/--username needs an image to say its registry")),
        1 => Ok(hosts.remove(0)),
        _ => Err(usage(format!(
            "-u/--username (or PULLTAR_USERNAME) is for one registry, and these images name several ({}); {each}",
            hosts.join(", ")
        ))),
    }
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
        let images: Vec<Reference> = a
            .images
            .iter()
            .map(|i| Reference::parse(i).unwrap())
            .collect();
        connection(a, &images, cwd, stdin)
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
        let (host, c) = p.registry.credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "s3cret"));
        assert_eq!(
            host,
            client::docker_hub_host(&Reference::parse("nginx").unwrap())
        );
        assert!(plan(&a, Path::new("/tmp"), &mut &b""[..]).is_err());
    }

    #[test]
    fn credentials_belong_to_one_host() {
        let host = |images: &[&str], mirrors: &[&str], only: bool| {
            let images: Vec<Reference> = images
                .iter()
                .map(|i| Reference::parse(i).unwrap())
                .collect();
            let mirrors: Vec<String> = mirrors.iter().map(|m| m.to_string()).collect();
            credential_host(&images, &mirrors, only)
        };
        assert_eq!(
            host(&["r.example:5000/a", "R.example:5000/b:1"], &[], false).unwrap(),
            "r.example:5000"
        );
        let e = host(&["r.example/a", "q.example/b"], &[], false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("r.example, q.example"), "{e}");
        assert!(e.to_string().contains("pulltar login"), "{e}");
        let hub = client::docker_hub_host(&Reference::parse("nginx").unwrap());
        assert_eq!(host(&["nginx"], &["m.example"], false).unwrap(), hub);
        assert_eq!(
            host(&["nginx", "alpine"], &["m.example"], true).unwrap(),
            "m.example"
        );
        assert_eq!(
            host(&["nginx"], &["m.example", "n.example"], true)
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            host(&["nginx", "r.example/a"], &["m.example"], false)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
