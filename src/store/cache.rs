//! The content-addressed blob store: `blobs/sha256/<hex>` under the cache
//! directory, where a blob arrives only after it was verified.
//!
//! Writers download into a partial file under `tmp/` (see
//! [`crate::fetch::partial`]) and [`Store::commit`] it with a rename once size and
//! digest matched, so a reader never sees half a blob and concurrent runs
//! never corrupt each other. Lookups check the size (and the digest, with
//! `--verify-cache`); a blob whose size disagrees with a manifest is
//! hashed, and kept if it matches its digest (the manifest is then wrong).
//! While open, a store holds a shared lock on `<root>/lock`, which
//! `pulltar cache prune` (`cache_admin.rs`) takes exclusively.
//!
//! The store is private: its folders are 0700 and its files 0600 on Unix
//! from the moment they are made; `blobs/` and `tmp/` made 0755 by an
//! older pulltar are made 0700 (the files in them are then out of others'
//! reach and keep their modes; the root, which may be a folder the user
//! chose, is left as it is), and a folder that belongs to another user or
//! that others may write in (but a sticky root, like `/tmp`) is refused. Every file is
//! opened without following a symbolic link (see [`crate::store::private`]).
//! This module does not download, and it does not prune (nothing is
//! removed here but a blob found to be bad, a link in its place, and the
//! leftovers of killed pulls, [`crate::store::sweep`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::store::private::{keep_private, open_file, open_lock};

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
        crate::sys::create_private_dir_all(root)
            .map_err(|e| Error::io("create the cache directory", root, e))?;
        store.create_dirs()?;
        store._in_use = Some(store.lock_shared()?);
        crate::store::sweep::sweep(&store.tmp_dir(), false);
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
        // The temp dir itself may be missing (an empty root, say): it is
        // made as any folder; only the store in it is private.
        let parent = root.parent().unwrap_or(&root);
        std::fs::create_dir_all(parent)
            .and_then(|()| crate::sys::create_private_dir(&root))
            .map_err(|e| Error::io("create the temporary cache", &root, e))?;
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

    /// Makes the store's folders that are missing and checks them all
    /// (see the module's notes).
    fn create_dirs(&self) -> Result<()> {
        let blobs = self.root.join("blobs");
        for dir in [&self.root, &blobs, &self.blobs_dir(), &self.tmp_dir()] {
            match crate::sys::create_private_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::io("create the cache directory", dir, e))
                }
                _ => keep_private(dir, *dir != self.root)?,
            }
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
        open_file(&path, fs::OpenOptions::new().read(true))
            .map_err(|e| Error::io("read the cached blob", &path, e))
    }

    /// Whether the blob is held with the expected size. A file of another
    /// size is hashed: damage (it does not match its digest) is removed
    /// and fetched again; a good blob stays, and the size the manifest
    /// gives is the error.
    pub fn has(&self, digest: &Digest, size: u64) -> Result<bool> {
        match fs::symlink_metadata(self.blob_path(digest)) {
            Ok(m) if m.is_file() && m.len() == size => Ok(true),
            Ok(m) if m.is_file() => self.held_as(digest, size),
            _ => Ok(false),
        }
    }

    /// Hashes the held blob `digest`: true when it matches its digest and
    /// has `size` bytes; a damaged one is removed (false); a good one of
    /// another size is kept, and the manifest that gave `size` is wrong.
    fn held_as(&self, digest: &Digest, size: u64) -> Result<bool> {
        match self.hash_held(digest) {
            Some(len) if len == size => Ok(true),
            Some(len) => Err(Error::Manifest {
                what: format!("the manifest's descriptor of blob {digest}"),
                reason: format!(
                    "it gives {size} bytes, but the cached blob with that digest has {len} bytes and hashes to it: the manifest is wrong (the cached blob is kept)"
                ),
            }),
            None => Ok(false),
        }
    }

    /// The size of the held blob `digest` if it hashes to its digest; a
    /// damaged one is removed (so fetched again), a missing one is None.
    fn hash_held(&self, digest: &Digest) -> Option<u64> {
        let file = self.open_blob(digest).ok()?;
        let mut reader = crate::image::digest::VerifyingReader::new(file);
        let copied = std::io::copy(&mut reader, &mut std::io::sink());
        let verifier = reader.into_verifier();
        let len = verifier.len();
        if copied.is_ok() && verifier.finish() == *digest {
            return Some(len);
        }
        if copied.is_ok() {
            log::warn!("cached blob {digest} is damaged; fetching it again");
            self.evict(digest);
        }
        None
    }

    /// Where the resumable partial copy of `digest` is kept between runs
    /// (its journal sits beside it, `.journal` for `.partial`).
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.tmp_dir().join(format!("{}.partial", digest.hex()))
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
    /// `size` bytes (if given) and that digest. A damaged one is removed,
    /// so it is fetched again; a missing one is simply false (and a good
    /// one of another size is kept).
    pub fn verify(&self, digest: &Digest, size: Option<u64>) -> bool {
        self.hash_held(digest)
            .is_some_and(|len| size.is_none_or(|s| s == len))
    }

    /// `--verify-cache`: hashes each held blob of `blobs`; a damaged one is
    /// removed (and so fetched again), a good one whose size disagrees with
    /// its descriptor is an error ([`Store::has`]). Stops on Ctrl-C.
    pub fn verify_held<'a>(&self, blobs: impl IntoIterator<Item = &'a Descriptor>) -> Result<()> {
        for blob in blobs {
            if crate::ui::interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
            if self.size_of(&blob.digest).is_some() {
                self.held_as(&blob.digest, blob.size)?;
            }
        }
        Ok(())
    }

    /// Reads a small held blob (a config) whole and checks it still hashes
    /// to its digest; a damaged one is removed, and the error says to run
    /// the pull again.
    pub fn read_checked(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&desc.digest);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self.open_blob(&desc.digest)?, &mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
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

    /// A new temporary file under `tmp/`, private, for the blob `what`
    /// (`<hex>.<kind>`) being made: its path and the file, open for
    /// writing. [`crate::store::sweep`] removes it if the process dies.
    pub fn create_temp(&self, what: &str) -> Result<(PathBuf, fs::File)> {
        let path = self.tmp_dir().join(format!(
            "{what}.{}.{}.tmp",
            std::process::id(),
            unique_suffix()
        ));
        let file = open_file(&path, fs::OpenOptions::new().write(true).create_new(true))
            .map_err(|e| Error::io("create", &path, e))?;
        Ok((path, file))
    }
}

impl Store {
    /// The file whose lock says the store is in use.
    pub fn lock_path(root: &Path) -> PathBuf {
        root.join("lock")
    }

    fn lock_shared(&self) -> Result<fs::File> {
        let path = Store::lock_path(&self.root);
        let file = open_lock(&path).map_err(|e| Error::io("open the cache lock", &path, e))?;
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
        assert!(!store.has(&d, 3).unwrap());
        let tmp = store.partial_path(&d);
        assert!(tmp.ends_with(format!("tmp/{}.partial", d.hex())));
        fs::write(&tmp, b"abc").unwrap();
        let path = store.commit(&tmp, &d).unwrap();
        assert!(path.ends_with(format!("blobs/sha256/{}", d.hex())));
        assert!(store.has(&d, 3).unwrap());
        assert!(!tmp.exists());
    }

    #[test]
    fn damage_is_evicted_and_a_good_blob_of_another_size_kept() {
        let store = Store::temporary().unwrap();
        let d = Digest::of(b"abc");
        fs::write(store.blob_path(&d), b"ab").unwrap();
        assert!(!store.has(&d, 3).unwrap());
        assert!(!store.blob_path(&d).exists());
        fs::write(store.blob_path(&d), b"abc").unwrap();
        let e = store.has(&d, 4).unwrap_err().to_string();
        assert!(
            e.contains(&d.to_string()) && e.contains("gives 4 bytes"),
            "{e}"
        );
        assert!(e.contains("has 3 bytes"), "{e}");
        assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"abc");
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
