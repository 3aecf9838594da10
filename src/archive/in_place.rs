//! Writing the archive in place, for a pull into a file: every member's
//! offset is known before any layer arrives (the layout's sizes come from
//! the descriptors), so the file is laid out at once (headers, documents
//! and the blobs already in the store written, each at its offset, by the
//! same [`crate::archive::writer::write_member`] the streaming writer
//! uses; layer regions left for the downloads), and each layer is
//! downloaded straight into its region (and, with a cache, into the store
//! beside it, from the same buffer), verified as it arrives, and never
//! copied afterwards. The bytes are those the streaming writer gives for
//! the same layout.
//!
//! Until [`InPlace::finish`] syncs and renames it, the file has a
//! temporary name in the cache's `tmp/` (when that is on the output's
//! file system, so that a pull killed outright leaves nothing beside the
//! output; the next pull removes it), else beside the output; dropped
//! before that, it is removed. This module does not download; the
//! downloader writes the regions (see
//! [`crate::fetch::partial::Partial::in_region`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::archive::layout::{Layout, Source};
use crate::archive::writer::{copy_blob, write_member, Out, TempOutput};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::store::cache::Store;

/// An archive being written in place.
pub struct InPlace {
    temp: TempOutput,
    file: Arc<File>,
    /// Pushes the regions to disk as they arrive.
    writeback: crate::archive::writeback::Writeback,
    regions: HashMap<Digest, u64>,
    size: u64,
}

impl InPlace {
    /// Lays out the archive of `layout` beside `out`: everything but the
    /// blobs of `incoming`, whose regions wait for the downloads. Every
    /// other blob must be in the store.
    pub fn create(out: &Path, layout: &Layout, incoming: &[Digest]) -> Result<InPlace> {
        let store = layout.store;
        let temp = if store.is_temporary() {
            TempOutput::new(out)
        } else {
            TempOutput::new_in(out, &store.tmp_dir())
        };
        let werr = |e| Error::io("write the archive", &temp.path, e);
        // Created and locked under another name, then renamed: another
        // pull sweeping the cache removes an unlocked archive, so the file
        // is never seen under its name without the lock (held until it is
        // renamed into place or removed; an unlocked one was left by a
        // killed pull).
        let creating = temp.path.with_extension("new");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&creating)
            .map_err(|e| Error::io("create the output file", &creating, e))?;
        let locked = file
            .try_lock()
            .map_err(|e| Error::io("lock the output file", &creating, std::io::Error::other(e)))
            .and_then(|()| {
                std::fs::rename(&creating, &temp.path)
                    .map_err(|e| Error::io("name the output file", &temp.path, e))
            });
        if let Err(e) = locked {
            drop(file);
            let _ = std::fs::remove_file(&creating);
            return Err(e);
        }
        // Zero-filled (and sparse): the padding and the end blocks.
        file.set_len(layout.size).map_err(werr)?;
        let mut regions = HashMap::new();
        let mut at = At {
            file: &file,
            path: &temp.path,
        };
        for m in &layout.members {
            match &m.source {
                Source::Blob { desc, .. } if incoming.contains(&desc.digest) => {
                    at.put(m.header.as_bytes(), m.offset).map_err(werr)?;
                    regions.insert(desc.digest.clone(), m.offset + 512);
                }
                _ => write_member(&mut at, m, store, &temp.path)?,
            }
        }
        Ok(InPlace {
            writeback: crate::archive::writeback::Writeback::start(&file),
            file: Arc::new(file),
            regions,
            size: layout.size,
            temp,
        })
    }

    /// The file, the offset of `digest`'s region in it and the file's
    /// name, if the blob is to be downloaded in place.
    pub fn region(&self, digest: &Digest) -> Option<(Arc<File>, u64, &Path)> {
        self.regions
            .get(digest)
            .map(|&at| (Arc::clone(&self.file), at, self.temp.path.as_path()))
    }

    /// Fills `desc`'s region from the store, which holds it verified (it
    /// arrived there from another pull while this one was starting).
    pub fn fill(&self, store: &Store, desc: &Descriptor) -> Result<()> {
        let Some(&offset) = self.regions.get(&desc.digest) else {
            return Ok(());
        };
        let path = &self.temp.path;
        let mut at = At {
            file: &self.file,
            path,
        };
        copy_blob(&mut at, desc, true, store, offset, path)
    }

    /// Syncs the archive (every region must have been downloaded and
    /// verified) and renames it to `out`. Returns its size.
    pub fn finish(self, out: &Path) -> Result<u64> {
        drop(self.writeback);
        self.file
            .sync_all()
            .map_err(|e| Error::io("write the archive", &self.temp.path, e))?;
        self.temp.commit(out)?;
        Ok(self.size)
    }
}

/// The archive file, written at offsets: bytes with a positioned write, a
/// copy through a descriptor of its own (so that the file position is
/// that copy's alone; from a file, in the kernel).
struct At<'a> {
    file: &'a File,
    path: &'a Path,
}

impl Out for At<'_> {
    fn put(&mut self, bytes: &[u8], at: u64) -> std::io::Result<()> {
        crate::sys::write_all_at(self.file, bytes, at)
    }

    fn copy_from<R: Read>(&mut self, mut src: R, at: u64) -> std::io::Result<u64> {
        let mut dst = OpenOptions::new().write(true).open(self.path)?;
        dst.seek(SeekFrom::Start(at))?;
        std::io::copy(&mut src, &mut dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::layout::tests::stored;
    use crate::archive::layout::Format;

    #[test]
    fn dropped_unfinished_leaves_nothing() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let (_, images) = stored(&store);
        let layout = Layout::new(&images, Format::Both, &store, &[]);
        drop(InPlace::create(&dir.root().join("x.tar"), &layout, &[]).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("x.tar"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    /// As the streaming writer does, the in-place one removes a stored
    /// blob that fails its hash, so that the next pull fetches it again.
    #[test]
    fn a_damaged_blob_is_removed_from_the_store() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let (d, images) = stored(&store);
        std::fs::write(store.blob_path(&d[2].digest), vec![8u8; 512]).unwrap();
        let layout = Layout::new(&images, Format::Both, &store, &[]);
        let out = dir.root().join("bad.tar");
        let err = InPlace::create(&out, &layout, &[]).err().unwrap();
        assert!(err.to_string().contains("it was removed"), "{err}");
        assert!(!store.blob_path(&d[2].digest).exists());
        assert!(store.blob_path(&d[1].digest).exists());
        assert!(!out.exists());
    }
}
