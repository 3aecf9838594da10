//! What to pull and where to: the image references from the command line
//! and from `-f` lists ([`references`]), and the archive's output
//! ([`output_path`]: a file, through symlinks to their target; a named
//! pipe or a device to write through; standard output). Nothing is
//! contacted and nothing written; only what the user typed, the files
//! named and what the output path names are read.

use std::path::{Path, PathBuf};

use crate::archive::writer::Output;
use crate::cli::args::{usage, Args};
use crate::error::Result;
use crate::image::reference::Reference;
use crate::pull::STDOUT;
use crate::sys::Node;

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
/// A symlink is followed: its target, existing or not, is the file (whose
/// directory must exist). A named pipe or a device is written through;
/// anything else that is not a file (a socket) is refused.
pub fn output_path(
    output: Option<&Path>,
    reference: &Reference,
    cwd: &Path,
    stdout_is_terminal: bool,
) -> Result<Output> {
    let default_name = reference.default_file_name();
    let path = match output {
        None => cwd.join(&default_name),
        Some(o) if o.as_os_str() == STDOUT => {
            if stdout_is_terminal {
                return Err(usage(
                    "-o - writes a binary archive to standard output, which is a terminal here; pipe it (| docker load) or redirect it to a file",
                ));
            }
            return Ok(Output::Stdout);
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
    let shown = path.display();
    let node = crate::sys::node_at(&path)
        .map_err(|e| usage(format!("cannot examine the output {shown}: {e}")))?;
    let file = match node {
        Node::Through => return Ok(Output::Through(path)),
        Node::Dir => return Err(usage(format!("the output {shown} is a directory"))),
        Node::Other(what) => {
            return Err(usage(format!(
                "the output {shown} is {what}, which an archive cannot replace; name a file, a directory, a named pipe or a device (or -o - for standard output)"
            )))
        }
        Node::File | Node::Missing => link_target(&path)?,
    };
    if !file.parent().unwrap_or(cwd).is_dir() {
        return Err(usage(match file == path {
            true => format!("the directory of the output {shown} does not exist"),
            false => format!(
                "the output {shown} is a link to {}, whose directory does not exist",
                file.display()
            ),
        }));
    }
    Ok(Output::File(file))
}

/// The file a chain of symlinks at `path` ends on (`path` itself when it
/// is no link), existing or not, so that the archive replaces the link's
/// target beside it and the link stays a link.
fn link_target(path: &Path) -> Result<PathBuf> {
    let mut file = path.to_path_buf();
    // As many links as Linux follows before it gives up (ELOOP).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&file) {
            Ok(m) if m.file_type().is_symlink() => {}
            _ => return Ok(file),
        }
        let target = std::fs::read_link(&file)
            .map_err(|e| usage(format!("cannot read the link {}: {e}", file.display())))?;
        file = file.parent().unwrap_or(Path::new("")).join(target);
    }
    Err(usage(format!(
        "the output {} is a chain of too many links",
        path.display()
    )))
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
        assert_eq!(o, Output::Stdout);
        let e = output_path(Some(Path::new("-")), &r, cwd, true).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("terminal"), "{e}");
        let file = output_path(Some(Path::new("./-")), &r, cwd, true).unwrap();
        assert_eq!(file, Output::File(PathBuf::from("/tmp/./-")));
    }
}
