//! The store's files and folders are the user's alone: how they are
//! opened and checked. Every file is opened without following a symbolic
//! link, and a folder of the store must belong to the user (or root) and
//! be writable by no one else, as ssh asks of `~/.ssh`; the modes
//! themselves (0700, 0600) and the checks are [`crate::sys`]'s. This
//! module decides what to do about what it finds (remove a link, refuse a
//! folder); it does not decide which files the store holds.
//!
//! An archive written in place in `tmp/` is not the store's: it is created
//! with the mode the umask gives, as `cp` creates a file, out of others'
//! reach while it is there (`tmp/` is 0700), and renamed to `-o` with it.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// Opens (creating, without truncating) the store's lock file `path`.
pub fn open_lock(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    open_file(path, options.create(true).truncate(false).write(true))
}

/// Opens the store's file `path` with `options`, never through a symbolic
/// link: the file a link points to is never read, written or truncated.
/// A link found in its place is removed (with a warning) and the file
/// opened again: the store makes no links, and what it keeps in `tmp/`
/// and under `blobs/` it may remove at any time (the next pull resumes a
/// partial blob, or fetches a blob again), so replacing a link someone
/// planted loses nothing and keeps the pull going; the folder itself was
/// checked to be the user's ([`keep_private`]).
pub fn open_file(path: &Path, options: &fs::OpenOptions) -> std::io::Result<fs::File> {
    match crate::sys::open_private(path, options) {
        Err(_) if crate::sys::is_link(path) => {
            log::warn!(
                "{} is a symbolic link, which pulltar did not make; it is removed (what it points to is left alone)",
                path.display()
            );
            fs::remove_file(path)?;
            crate::sys::open_private(path, options)
        }
        other => other,
    }
}

/// Checks that the store's folder `dir` may hold private files (its owner
/// and mode), making a 0755 folder the store made (`ours`: `blobs/`,
/// `tmp/`) 0700; the root, which the user may have chosen, is never
/// changed. A clear error otherwise, saying what to do.
pub fn keep_private(dir: &Path, ours: bool) -> Result<()> {
    match crate::sys::keep_dir_private(dir, ours) {
        Ok(true) => {
            log::info!("{}: made private (mode 0700)", dir.display());
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => Err(Error::Hinted {
            error: Box::new(Error::io("use the cache directory", dir, e)),
            hint: format!(
                "the cache holds the layers pulled, which may be private, and pulltar writes into the files it finds there: it must belong to you and be writable by you alone. Fix it (chown, chmod 700 {}) or give another with --cache-dir",
                dir.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cache::Store;

    #[test]
    fn a_link_in_place_of_a_file_is_replaced_not_followed() {
        let store = Store::temporary().unwrap();
        let victim = store.root().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = store.tmp_dir().join("x.journal");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        #[cfg(windows)]
        if std::os::windows::fs::symlink_file(&victim, &planted).is_err() {
            return; // no right to make links: nothing to test
        }
        let mut options = fs::OpenOptions::new();
        let mut f = open_file(&planted, options.write(true).create(true).truncate(true)).unwrap();
        std::io::Write::write_all(&mut f, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&planted).unwrap(), b"new");
        assert!(!crate::sys::is_link(&planted));
    }
}
