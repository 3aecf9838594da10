//! The content-addressed blob store: `blobs/sha256/<hex>` under the cache
//! directory, where a blob arrives only after it was verified.
//!
//! Writers download into a partial file under `tmp/` (see
//! [`crate::fetch::partial`]) and [`Store::commit`] it with a rename once size and
//! digest matched, so a reader never sees half a blob and concurrent runs
//! never corrupt each other. Lookups check the size (and the digest, with
//! `--verify-cache`). While open, a store holds a shared lock on
//! `<root>/lock`, which `pulltar cache prune` (`cache_admin.rs`) takes
//! exclusively. This module does not download, and it does not prune
//! (nothing is removed here but a blob found to be bad).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;

/// A blob store rooted at a directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    remove_on_drop: bool,
    /// A shared lock on `<root>/lock` while the store is open, so that
    /// `pulltar cache prune` (which takes it exclusively) never removes a
    /// blob under a running pull.
    _in_use: Option<fs::File>,
}

/// The end of the name of an archive being written in `tmp/` (a pull
/// writing one holds its lock; one left unlocked is a killed pull's).
pub const ARCHIVE_SUFFIX: &str = "archive";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating as needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let mut store = Store {
            root: root.to_path_buf(),
            remove_on_drop: false,
            _in_use: None,
        };
        store.create_dirs()?;
        store._in_use = Some(store.lock_shared()?);
        Ok(store)
    }

    /// A store in a new temporary directory, removed when dropped
    /// (`--no-cache`).
    pub fn temporary() -> Result<Store> {
        let root = std::env::temp_dir().join(format!(
            "pulltar-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        crate::ui::interrupt::remove_on_forced_exit(&root);
        let store = Store {
            root,
            remove_on_drop: true,
            _in_use: None,
        };
        store.create_dirs()?;
        Ok(store)
    }

    /// The default location: `$XDG_CACHE_HOME/pulltar`, else
    /// `~/.cache/pulltar`; `%LOCALAPPDATA%\pulltar` on Windows.
    pub fn default_root() -> Option<PathBuf> {
        crate::sys::default_cache_dir()
    }

    fn create_dirs(&self) -> Result<()> {
        for dir in [self.blobs_dir(), self.tmp_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|e| Error::io("create the cache directory", &dir, e))?;
        }
        Ok(())
    }

    /// Whether this is a `--no-cache` store, gone when the pull ends.
    pub fn is_temporary(&self) -> bool {
        self.remove_on_drop
    }

    /// The directory holding the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where unfinished files live: partial blobs and their journals, and
    /// archives being written in place.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the verified blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Opens the stored blob `digest` for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<fs::File> {
        let path = self.blob_path(digest);
        fs::File::open(&path).map_err(|e| Error::io("read the cached blob", &path, e))
    }

    /// Whether the blob is held with the expected size. A file of the
    /// wrong size is removed, as it can only be damage.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == size => true,
            Ok(m) if m.is_file() => {
                log::warn!(
                    "cached blob {digest} has {} bytes instead of {size}; fetching it again",
                    m.len()
                );
                let _ = fs::remove_file(&path);
                false
            }
            _ => false,
        }
    }

    /// Where the resumable partial copy of `digest` is kept between runs
    /// (its journal sits beside it, `.journal` for `.partial`).
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.tmp_dir().join(format!("{}.partial", digest.hex()))
    }

    /// Removes the archives that pulls which were killed left in `tmp/`:
    /// those no process holds locked.
    pub fn remove_stale_archives(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != ARCHIVE_SUFFIX) {
                continue;
            }
            let unheld = fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok());
            if unheld {
                log::debug!(
                    "removing {}, left by a pull that was stopped",
                    path.display()
                );
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Moves a verified temporary file into place. When another pull
    /// holds the same blob open there (Windows refuses to replace an open
    /// file), its copy, verified too, is kept and `temp` removed.
    pub fn commit(&self, temp: &Path, digest: &Digest) -> Result<PathBuf> {
        let dest = self.blob_path(digest);
        match crate::sys::replace(temp, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if temp.is_file() && dest.is_file() => {
                let _ = fs::remove_file(temp);
                Ok(dest)
            }
            Err(e) => Err(Error::io("move the verified blob into", &dest, e)),
        }
    }

    /// Removes a blob that failed verification.
    pub fn evict(&self, digest: &Digest) {
        let _ = fs::remove_file(self.blob_path(digest));
    }

    /// The size of the blob `digest` if the store holds it (for blobs
    /// pulltar made itself, like a decompressed layer, whose size no
    /// manifest gives).
    pub fn size_of(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Hashes the held blob `digest` (`--verify-cache`): true when it has
    /// `size` bytes (if given) and that digest. A bad one is removed, so it
    /// is fetched again; a missing one is simply false.
    pub fn verify(&self, digest: &Digest, size: Option<u64>) -> bool {
        let path = self.blob_path(digest);
        let Ok(file) = fs::File::open(&path) else {
            return false;
        };
        let mut reader = crate::image::digest::VerifyingReader::new(file);
        let copied = std::io::copy(&mut reader, &mut std::io::sink());
        let verifier = reader.into_verifier();
        let len = verifier.len();
        let ok = copied.is_ok() && size.is_none_or(|s| s == len) && verifier.finish() == *digest;
        if !ok && copied.is_ok() {
            log::warn!("cached blob {digest} is damaged; fetching it again");
            let _ = fs::remove_file(&path);
        }
        ok
    }

    /// `--verify-cache`: hashes each held blob of `blobs`; a damaged one is
    /// removed (and so fetched again). Stops on Ctrl-C.
    pub fn verify_held<'a>(&self, blobs: impl IntoIterator<Item = &'a Descriptor>) -> Result<()> {
        for blob in blobs {
            if crate::ui::interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
            if self.size_of(&blob.digest).is_some() {
                self.verify(&blob.digest, Some(blob.size));
            }
        }
        Ok(())
    }

    /// Reads a small held blob (a config) whole and checks it still hashes
    /// to its digest; a damaged one is removed, and the error says to run
    /// the pull again.
    pub fn read_checked(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&desc.digest);
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        if Digest::of(&bytes) != desc.digest {
            self.evict(&desc.digest);
            return Err(Error::Verify {
                digest: desc.digest.to_string(),
                detail: "the cached copy changed on disk; it was removed, run the pull again"
                    .into(),
            });
        }
        Ok(bytes)
    }

    /// A new temporary file name under `tmp/`, for a blob being made.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir().join(format!(
            "{what}.{}.{}.tmp",
            std::process::id(),
            unique_suffix()
        ))
    }
}

impl Store {
    /// The file whose lock says the store is in use.
    pub fn lock_path(root: &Path) -> PathBuf {
        root.join("lock")
    }

    fn lock_shared(&self) -> Result<fs::File> {
        let path = Store::lock_path(&self.root);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open the cache lock", &path, e))?;
        if file.try_lock_shared().is_err() {
            log::warn!("the cache is being pruned; waiting");
            file.lock_shared()
                .map_err(|e| Error::io("lock the cache", &path, e))?;
        }
        Ok(file)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = fs::remove_dir_all(&self.root);
            crate::ui::interrupt::forget(&self.root);
        }
    }
}

/// A value unlikely to repeat within or across processes.
pub fn unique_suffix() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_lookup() {
        let store = Store::temporary().unwrap();
        let d = Digest::of(b"abc");
        assert!(!store.has(&d, 3));
        let tmp = store.partial_path(&d);
        assert!(tmp.ends_with(format!("tmp/{}.partial", d.hex())));
        fs::write(&tmp, b"abc").unwrap();
        let path = store.commit(&tmp, &d).unwrap();
        assert!(path.ends_with(format!("blobs/sha256/{}", d.hex())));
        assert!(store.has(&d, 3));
        assert!(!tmp.exists());
    }

    #[test]
    fn wrong_size_is_evicted() {
        let store = Store::temporary().unwrap();
        let d = Digest::of(b"abc");
        fs::write(store.blob_path(&d), b"ab").unwrap();
        assert!(!store.has(&d, 3));
        assert!(!store.blob_path(&d).exists());
    }

    #[test]
    fn temporary_is_removed() {
        let store = Store::temporary().unwrap();
        let root = store.root().to_path_buf();
        assert!(root.join("blobs/sha256").is_dir());
        drop(store);
        assert!(!root.exists());
    }
}
