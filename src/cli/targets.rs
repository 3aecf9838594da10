//! What to pull and where to: the image references from the command line
//! and from `-f` lists ([`references`]), and the archive's path
//! ([`output_path`]). Nothing is contacted; only what the user typed and
//! the files named are read.

use std::path::{Path, PathBuf};

use crate::cli::args::{usage, Args};
use crate::error::Result;
use crate::image::reference::Reference;
use crate::pull::STDOUT;

/// The references from the command line, then from each `-f` file (one
/// per line; `#` starts a comment; blank lines are skipped). A reference
/// given twice is pulled once.
pub fn references(args: &Args, cwd: &Path) -> Result<Vec<Reference>> {
    let mut refs: Vec<Reference> = Vec::new();
    let mut add = |r: Reference| {
        if !refs.iter().any(|x| x.original() == r.original()) {
            refs.push(r);
        }
    };
    for image in &args.images {
        add(Reference::parse(image)?);
    }
    for file in &args.image_files {
        let path = cwd.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            usage(format!(
                "cannot read the image list {}: {e}",
                file.display()
            ))
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let r = Reference::parse(line)
                .map_err(|e| usage(format!("{}, line {}: {e}", file.display(), n + 1)))?;
            add(r);
        }
    }
    if refs.is_empty() {
        return Err(usage(format!(
            "no image given: the image list{} holds no references",
            if args.image_files.len() > 1 { "s" } else { "" }
        )));
    }
    Ok(refs)
}

/// Where the archive goes: `-o FILE`, `-o DIR/` (`DIR\` on Windows too,
/// or an existing directory) with the default name inside, or the default
/// name in `cwd`.
/// The directory must exist, so that a typo fails before any download.
/// `-o -` is standard output ([`STDOUT`]), refused when that is a terminal.
pub fn output_path(
    output: Option<&Path>,
    reference: &Reference,
    cwd: &Path,
    stdout_is_terminal: bool,
) -> Result<PathBuf> {
    let default_name = reference.default_file_name();
    let path = match output {
        None => cwd.join(&default_name),
        Some(o) if o.as_os_str() == STDOUT => {
            if stdout_is_terminal {
                return Err(usage(
                    "-o - writes a binary archive to standard output, which is a terminal here; pipe it (| docker load) or redirect it to a file",
                ));
            }
            return Ok(PathBuf::from(STDOUT));
        }
        Some(o) => {
            let full = cwd.join(o);
            let names_dir = o
                .as_os_str()
                .to_string_lossy()
                .ends_with(std::path::is_separator);
            if names_dir || full.is_dir() {
                if !full.is_dir() {
                    return Err(usage(format!(
                        "output directory {} does not exist",
                        o.display()
                    )));
                }
                full.join(&default_name)
            } else {
                full
            }
        }
    };
    let parent = path.parent().unwrap_or(cwd);
    if !parent.is_dir() {
        return Err(usage(format!(
            "the directory of the output {} does not exist",
            path.display()
        )));
    }
    if path.is_dir() {
        return Err(usage(format!(
            "the output {} is a directory",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::pull_args;
    use crate::store::cache::Store;

    #[test]
    fn several_images_and_lists() {
        let dir = Store::temporary().unwrap();
        let list = dir.root().join("images.txt");
        std::fs::write(
            &list,
            "# base images\nalpine:3.20\n\n  redis:7  # cache\nnginx\n",
        )
        .unwrap();
        let cwd = dir.root();
        let refs_of = |v: &[&str]| references(&pull_args(v), cwd);
        let refs = refs_of(&["nginx", "-f", "images.txt", "-o", "b.tar"]).unwrap();
        let names: Vec<&str> = refs.iter().map(|r| r.original()).collect();
        assert_eq!(names, ["nginx", "alpine:3.20", "redis:7"]);
        std::fs::write(&list, "alpine\n\nBAD REF\n").unwrap();
        let e = refs_of(&["-f", "images.txt", "-o", "x.tar"]).unwrap_err();
        assert!(e.to_string().contains("images.txt, line 3"), "{e}");
        std::fs::write(&list, "# nothing\n").unwrap();
        assert_eq!(refs_of(&["-f", "images.txt"]).unwrap_err().exit_code(), 2);
        assert_eq!(refs_of(&["-f", "missing.txt"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn stdout_output() {
        let r = Reference::parse("nginx").unwrap();
        let cwd = Path::new("/tmp");
        let o = output_path(Some(Path::new("-")), &r, cwd, false).unwrap();
        assert_eq!(o, Path::new(STDOUT));
        let e = output_path(Some(Path::new("-")), &r, cwd, true).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("terminal"), "{e}");
        let file = output_path(Some(Path::new("./-")), &r, cwd, true).unwrap();
        assert_eq!(file, Path::new("/tmp/./-"));
    }
}
