//! `pulltar push [OPTIONS] ARCHIVE DEST`: its help, its arguments (read by
//! the pull's flag parser, so connection and credential flags mean the
//! same; a flag only a pull takes is refused by name) and the validated
//! [`Plan`]: the archive (which must exist), `DEST` parsed
//! ([`Destination`]), and how the registry is reached
//! ([`crate::cli::connection`]).
//!
//! Nothing is contacted and the archive is not opened here; the push is
//! [`crate::push`]'s.

use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::cli::args::{self, usage, Args, Parsed};
use crate::cli::connection::connection;
use crate::error::Result;
use crate::image::destination::Destination;
use crate::image::reference::Reference;
use crate::push::Plan;

/// `pulltar push --help`.
pub const HELP: &str = "\
Usage: pulltar push [OPTIONS] ARCHIVE DEST

Pushes the images of ARCHIVE into a registry with the digests they had
where they were pulled: a pulltar archive carries the registry's own
manifests and indexes, and they are pushed byte for byte, configs and
layers as pulled. Archives of other tools (docker save, podman save,
skopeo's docker-archive: and oci-archive:) push too; a manifest is written
for an image that has none (its config, the image ID, unchanged).

DEST is REGISTRY[/PREFIX]: each image goes to REGISTRY/PREFIX/<its
repository path>:<each of its tags>, e.g. 127.0.0.1:5000/team/app:v2 ->
team/app:v2, nginx:1.25 -> library/nginx:1.25. For an archive of one
image, DEST may be a full REGISTRY/REPO:TAG.

  -t, --threads N              uploads at once (default 8, 1-128)
      --chunk-size SIZE        chunk size once the registry or a proxy
                               refuses a whole blob (HTTP 413; default 1M)
      --retries N              failed attempts in a row, without progress,
                               before giving up (default 5)
      --read-timeout SECS      cut and retry a connection silent this long
      --ca-cert FILE, --insecure, --proxy URL
                               TLS and proxies, as for a pull
  -u, --username USER          user name (with --password-stdin); else
      --password-stdin         PULLTAR_USERNAME/PULLTAR_PASSWORD, else
                               docker's config.json (auths, credHelpers,
                               credsStore)
      --dry-run                list on standard output what would be
                               written where (each blob to upload, mount
                               or skip; each manifest and name with its
                               digest) and write nothing; the archive and
                               the registry's login are checked as for a
                               push; with -q, only the exit code tells
  -q, --quiet, -v, --debug, --log-file FILE
                               as for a pull

Each name pushed is printed on standard output as NAME@DIGEST. Blobs the
registry has are not sent again; an interrupted push goes on where it
stopped when run again.

Examples:
  pulltar --platform all nginx:1.25 -o nginx.tar        # outside
  pulltar push nginx.tar registry.internal:5000         # inside
  pulltar push -u ci --password-stdin app.tar harbor.example/mirror < pw
  pulltar push app.tar 127.0.0.1:5000/team/app:v3
  pulltar push --dry-run nginx.tar registry.internal:5000  # what would go

Exit codes: 0 pushed (--dry-run: the push would be tried); 1 the push
failed (--dry-run: the archive, the login or the registry did); 2 the
command line is wrong; 130 interrupted (run the same command again to go
on).
";

/// The flags only a pull takes, and their names.
fn pull_only(a: &Args) -> Option<&'static str> {
    [
        (a.output.is_some(), "-o/--output"),
        (!a.image_files.is_empty(), "-f/--file"),
        (a.format.is_some(), "--format"),
        (a.keep_zstd, "--keep-zstd"),
        (a.uncompressed, "--uncompressed"),
        (a.verify_cache, "--verify-cache"),
        (a.platform.is_some(), "--platform"),
        (a.arch.is_some(), "-a/--arch"),
        (a.cache_dir.is_some(), "--cache-dir"),
        (a.no_cache, "--no-cache"),
        (!a.mirrors.is_empty(), "-r/--registry"),
        (a.mirrors_only, "--mirrors-only"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name))
}

/// Reads the arguments after `push`: `None` asks for the help.
pub fn parse(raw: Vec<OsString>) -> Result<Option<Box<Args>>> {
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let form = "pulltar push [OPTIONS] ARCHIVE DEST (see 'pulltar push --help')";
    let dry_run = raw.iter().any(|a| a == "--dry-run");
    let raw: Vec<OsString> = raw.into_iter().filter(|a| a != "--dry-run").collect();
    if raw.is_empty() {
        return Err(usage(format!("no archive given: {form}")));
    }
    let mut args = match args::parse(raw)? {
        Parsed::Pull(a) => a,
        _ => return Ok(None),
    };
    args.dry_run = dry_run;
    if let Some(flag) = pull_only(&args) {
        return Err(usage(format!(
            "{flag} is a pull's flag; pulltar push sends an archive as it is: {form}"
        )));
    }
    if args.images.len() != 2 {
        return Err(usage(format!(
            "pulltar push takes an archive and a destination, got {} argument(s): {form}",
            args.images.len()
        )));
    }
    Ok(Some(args))
}

/// Validates `args` into a push plan (paths relative to `cwd`; `stdin`
/// is read only for `--password-stdin`).
pub fn plan(args: &Args, cwd: &Path, stdin: &mut dyn BufRead) -> Result<Plan> {
    let archive = cwd.join(PathBuf::from(&args.images[0]));
    if !archive.is_file() {
        return Err(usage(format!(
            "the archive {} is not a file",
            archive.display()
        )));
    }
    let dest = Destination::parse(&args.images[1]).map_err(usage)?;
    // Any name on DEST's registry says whose credentials `-u` gives.
    let on_dest = Reference::parse("pulltar")
        .map_err(|e| usage(e.to_string()))
        .and_then(|r| dest.target(Some(&r)).map_err(usage))?;
    let c = connection(args, &[on_dest], cwd, stdin)?;
    Ok(Plan {
        archive,
        dest,
        registry: c.registry,
        threads: c.threads,
        chunk: c.chunk,
        quiet: args.quiet,
        dry_run: args.dry_run,
    })
}

/// What a push does before contacting a registry: logging, Ctrl-C, the
/// password prompt, the plan.
pub fn prepare(args: &Args) -> Result<Plan> {
    crate::cli::plan::prepare_with(args, plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cache::Store;

    fn parsed(v: &[&str]) -> Result<Option<Box<Args>>> {
        parse(v.iter().map(OsString::from).collect())
    }

    #[test]
    fn arguments() {
        assert!(parsed(&["--help"]).unwrap().is_none());
        let a = parsed(&[
            "-t",
            "3",
            "-u",
            "me",
            "--password-stdin",
            "a.tar",
            "r.example",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.images, ["a.tar", "r.example"]);
        assert_eq!(a.threads, Some(3));
        assert!(!a.dry_run);
        let a = parsed(&["a.tar", "--dry-run", "r.example"])
            .unwrap()
            .unwrap();
        assert_eq!((a.images.len(), a.dry_run), (2, true));
        for (bad, why) in [
            (&["a.tar"][..], "got 1"),
            (&[][..], "no archive"),
            (&["a.tar", "r.example", "x"][..], "got 3"),
            (&["--format", "oci", "a.tar", "r.example"][..], "--format"),
            (
                &["--platform", "all", "a.tar", "r.example"][..],
                "--platform",
            ),
            (&["-o", "x", "a.tar", "r.example"][..], "-o/--output"),
            (&["--bogus", "a.tar", "r.example"][..], "bogus"),
        ] {
            let e = parsed(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn plans() {
        let dir = Store::temporary().unwrap();
        std::fs::write(dir.root().join("a.tar"), b"x").unwrap();
        let a = parsed(&["--chunk-size", "2M", "a.tar", "r.example:5000/team"])
            .unwrap()
            .unwrap();
        let p = plan(&a, dir.root(), &mut &b""[..]).unwrap();
        assert_eq!(p.archive, dir.root().join("a.tar"));
        assert_eq!(p.chunk, 2 << 20);
        assert!(matches!(p.dest, Destination::Prefix { ref prefix, .. } if prefix == "team"));
        for (bad, why) in [
            (&["missing.tar", "r.example"][..], "not a file"),
            (&["a.tar", "myrepo"][..], "registry host"),
        ] {
            let a = parsed(bad).unwrap().unwrap();
            let e = plan(&a, dir.root(), &mut &b""[..]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }
}
