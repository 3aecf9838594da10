//! `pulltar login [-u USER] [--password-stdin] [HOST]` and `pulltar logout
//! [HOST]` (no HOST: Docker Hub): the login is checked against HOST (its
//! `/v2/` and the token service it names, with the client a pull uses and
//! the pull's connection flags), then kept as docker keeps it, so that
//! docker, podman, skopeo and crane read the same logins
//! ([`crate::registry::credentials::store`]); `logout` removes it.
//!
//! On a terminal the user name and the password are asked for (the
//! password not echoed); otherwise `-u` (or `PULLTAR_USERNAME`) and
//! `--password-stdin` (or `PULLTAR_PASSWORD`) give them. It writes nothing
//! but the docker config (or what its credential helper keeps), and prints
//! no secret.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use crate::cli::args::{self, usage, Args, Parsed};
use crate::cli::connection::connection;
use crate::error::{Error, Result};
use crate::image::name_rules::check_registry;
use crate::image::reference::Reference;
use crate::registry::client::{Access, Registry};
use crate::registry::credentials::{self, Stored};

/// `pulltar login --help`.
pub const HELP: &str = "\
Usage: pulltar login [-u USER] [--password-stdin] [HOST]
       pulltar logout [HOST]

Checks a login against the registry HOST (default: Docker Hub) and keeps
it in docker's config.json ($DOCKER_CONFIG, else ~/.docker), through the
credential helper it names (credsStore, credHelpers) if any, else in its
\"auths\" (unencrypted). Later pulls and pushes to HOST use it, as docker,
podman and skopeo do. logout removes it.

  -u, --username USER     the user name (asked for on a terminal)
      --password-stdin    read the password from standard input (asked
                          for, not echoed, on a terminal)
  The network flags of a pull (--insecure, --ca-cert, --proxy, -v) apply.

Examples:
  pulltar login registry.example.com
  printf %s \"$TOKEN\" | pulltar login -u ci --password-stdin ghcr.io
  pulltar logout registry.example.com
";

/// Parses the arguments after `login` or `logout` (`None`: the help).
pub fn parse(raw: Vec<OsString>, logout: bool) -> Result<Option<Box<Args>>> {
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    // The pull's parser wants an image: Docker Hub, first (so that no
    // flag's value can be taken for it), stands for a missing HOST.
    let mut raw = raw;
    raw.insert(0, OsString::from("docker.io"));
    let Parsed::Pull(mut args) = args::parse(raw)? else {
        return Ok(None);
    };
    if args.images.len() == 2 {
        args.images.remove(0);
    }
    let what = if logout { "logout" } else { "login" };
    if !args.mirrors.is_empty() || args.mirrors_only {
        return Err(usage(format!(
            "pulltar {what} takes no -r or --mirrors-only: log in to each mirror by its own name (pulltar {what} MIRROR)"
        )));
    }
    if args.images.len() != 1 || !args.image_files.is_empty() || args.output.is_some() {
        return Err(usage(format!(
            "pulltar {what} takes one registry host: pulltar {what} [HOST]"
        )));
    }
    if logout && (args.username.is_some() || args.password_stdin || args.password.is_some()) {
        return Err(usage("pulltar logout takes only a HOST"));
    }
    host(&args.images[0])?;
    Ok(Some(args))
}

/// The registry host of `HOST` (a scheme and a path such as docker's
/// `https://index.docker.io/v1/` allowed).
fn host(given: &str) -> Result<String> {
    let h = given
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let h = h.split('/').next().unwrap_or(h);
    check_registry(h).map_err(|e| usage(format!("{given:?} is not a registry host: {e}")))?;
    Ok(h.to_ascii_lowercase())
}

/// `pulltar login`: asks for what is missing on a terminal, checks the
/// login against the registry, stores it.
pub fn login(mut args: Box<Args>) -> Result<()> {
    let host = host(&args.images[0])?;
    // docker's `https://index.docker.io/v1/` form, as the host alone.
    args.images[0] = host.clone();
    let terminal = std::io::stdin().is_terminal();
    if args.username.is_none() && terminal && credentials::from_env().is_none() {
        eprint!("Username: ");
        let _ = std::io::stderr().flush();
        let mut name = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut name)
            .map_err(|e| usage(format!("cannot read the user name: {e}")))?;
        args.username = Some(name.trim().to_string()).filter(|n| !n.is_empty());
    }
    if args.username.is_some() && args.password.is_none() && !args.password_stdin {
        if !terminal {
            return Err(usage(
                "pulltar login -u USER reads the password with --password-stdin",
            ));
        }
        args.password_stdin = true;
    }
    let (on_host, options) =
        crate::cli::plan::prepare_with(&args, |a: &Args, cwd: &Path, stdin: &mut dyn BufRead| {
            let on_host = Reference::parse(&format!("{}/library/pulltar", a.images[0]))?;
            let c = connection(a, std::slice::from_ref(&on_host), cwd, stdin)?;
            Ok((on_host, c.registry))
        })?;
    let Some((api_host, c)) = options.credentials.clone() else {
        return Err(usage(
            "pulltar login needs a user name: -u USER (or PULLTAR_USERNAME)",
        ));
    };
    Registry::connect_host(&api_host, &on_host, &options, Access::Pull)?.check_login()?;
    match credentials::store(&host, &c).map_err(Error::Auth)? {
        Stored::Helper(name) => log::info!("the login is kept by docker-credential-{name}"),
        Stored::File(path) => log::warn!(
            "your password is stored unencrypted in {}; configure a credential helper (credsStore) to keep it elsewhere",
            path.display()
        ),
    }
    println!("Login Succeeded");
    Ok(())
}

/// `pulltar logout`: removes the login for the host.
pub fn logout(args: Box<Args>) -> Result<()> {
    crate::cli::logging::init_logging(&args)?;
    let host = host(&args.images[0])?;
    let key = credentials::server_key(&host);
    if credentials::erase(&host).map_err(Error::Auth)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(v: &[&str], logout: bool) -> Result<Option<Box<Args>>> {
        parse(v.iter().map(OsString::from).collect(), logout)
    }

    #[test]
    fn arguments() {
        assert!(parsed(&["--help"], false).unwrap().is_none());
        let a = parsed(&["-u", "me", "--password-stdin"], false)
            .unwrap()
            .unwrap();
        assert_eq!(a.images, ["docker.io"]);
        let a = parsed(&["https://R.example:5000/v1/"], true)
            .unwrap()
            .unwrap();
        assert_eq!(host(&a.images[0]).unwrap(), "r.example:5000");
        for (bad, logout) in [
            (&["a.example", "b.example"][..], false),
            (&["-u", "me", "a.example"][..], true),
            (&["-o", "x", "a.example"][..], false),
            (&["not a host"][..], false),
        ] {
            let e = parsed(bad, logout).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
