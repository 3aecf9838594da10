//! Writing the archive in place, for a pull into a file: every entry's
//! offset is known before any layer arrives (sizes come from the
//! descriptors), so the file is laid out at once — headers, documents and
//! the blobs already in the store written, layer regions left for the
//! downloads — and each layer is downloaded straight into its region
//! (and, with a cache, into the store beside it, from the same buffer),
//! verified as it arrives, and never copied afterwards.
//!
//! The bytes are the same as [`crate::archive::writer::write`] gives for the same
//! contents (same members, same headers, same order). Until
//! [`InPlace::finish`] syncs and renames it, the file has a temporary name
//! in the cache's `tmp/` (when that is on the output's file system, so
//! that a pull killed outright leaves nothing beside the output; the next
//! pull removes it), else beside the output; dropped before that, it is
//! removed. This module does not
//! download; the downloader writes the regions (see
//! [`crate::fetch::partial::Partial::in_region`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::archive::writer::{
    damaged, member_header, members, padding, Contents, Member, TempOutput,
};
use crate::error::{Error, Result};
use crate::image::digest::{Digest, Verifier};
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
    /// Lays out the archive of `contents` beside `out`: everything but the
    /// blobs of `incoming`, whose regions wait for the downloads. Every
    /// other blob must be in the store: copied in the kernel with a size
    /// check when `contents` trusts it (as the streaming writer does), else
    /// hashed as it is copied.
    pub fn create(out: &Path, contents: Contents, incoming: &[Digest]) -> Result<InPlace> {
        let store = contents.store;
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
        let members = members(contents.images, contents.format);
        let mut at = 0u64;
        let mut placed = Vec::with_capacity(members.len());
        for m in &members {
            placed.push(at);
            at += 512 + m.size() + padding(m.size()) as u64;
        }
        let size = at + 1024;
        // Zero-filled (and sparse): the padding and the end blocks.
        file.set_len(size).map_err(werr)?;
        let mut regions = HashMap::new();
        for (m, &offset) in members.iter().zip(&placed) {
            let h = member_header(m).map_err(werr)?;
            crate::sys::write_all_at(&file, h.as_bytes(), offset).map_err(werr)?;
            match m {
                Member::Dir(_) => {}
                Member::Doc(..) | Member::Kept(..) => {
                    let bytes = m.bytes().unwrap_or_default();
                    crate::sys::write_all_at(&file, bytes, offset + 512).map_err(werr)?
                }
                Member::Blob(b) if incoming.contains(&b.digest) => {
                    regions.insert(b.digest.clone(), offset + 512);
                }
                Member::Blob(b) if contents.trusted.contains(&b.digest) => {
                    copy_trusted(contents.store, b, &temp.path, offset + 512)?;
                }
                Member::Blob(b) => {
                    let src = contents.store.open_blob(&b.digest)?;
                    let verifier = copy_at(src.take(b.size), &file, offset + 512).map_err(werr)?;
                    verifier
                        .check(&b.digest, b.size)
                        .map_err(|detail| Error::Verify {
                            digest: b.digest.to_string(),
                            detail,
                        })?;
                }
            }
        }
        Ok(InPlace {
            temp,
            writeback: crate::archive::writeback::Writeback::start(&file),
            file: Arc::new(file),
            regions,
            size,
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
        match self.regions.get(&desc.digest) {
            Some(&at) => copy_trusted(store, desc, &self.temp.path, at),
            None => Ok(()),
        }
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

/// Copies the stored blob `desc` into the archive at `offset`, in the
/// kernel (`copy_file_range`, through a descriptor of its own so that the
/// file position is this copy's alone), checking its size.
fn copy_trusted(store: &Store, desc: &Descriptor, archive: &Path, offset: u64) -> Result<()> {
    let src = store.open_blob(&desc.digest)?;
    let werr = |e| Error::io("write the archive", archive, e);
    let mut dst = OpenOptions::new().write(true).open(archive).map_err(werr)?;
    dst.seek(SeekFrom::Start(offset)).map_err(werr)?;
    let copied = std::io::copy(&mut src.take(desc.size), &mut dst).map_err(werr)?;
    if copied != desc.size {
        let detail = format!("{copied} bytes instead of {}", desc.size);
        return Err(damaged(store, desc, &detail));
    }
    Ok(())
}

/// Copies `src` into `file` from `offset`, hashing it.
fn copy_at(mut src: impl Read, file: &File, mut offset: u64) -> std::io::Result<Verifier> {
    let mut verifier = Verifier::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(verifier),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crate::sys::write_all_at(file, &buf[..n], offset)?;
        verifier.update(&buf[..n]);
        offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::index::tests::{desc, entry_of};
    use crate::archive::writer::{write, Format};

    #[test]
    fn same_bytes_as_the_streaming_writer() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let data: Vec<Vec<u8>> = vec![b"{}".to_vec(), vec![7u8; 1000], vec![9u8; 512]];
        let d: Vec<_> = data.iter().map(|x| desc(x)).collect();
        for (x, dd) in data.iter().zip(&d) {
            std::fs::write(store.blob_path(&dd.digest), x).unwrap();
        }
        let images = [entry_of(
            d[0].clone(),
            vec![d[1].clone(), d[2].clone(), d[1].clone()],
        )];
        let config = [d[0].digest.clone()];
        for (format, trusted) in [
            (Format::Both, &[][..]),
            (Format::Docker, &[][..]),
            (Format::Oci, &[][..]),
            (Format::Both, &config[..]),
        ] {
            let contents = Contents {
                images: &images,
                format,
                store: &store,
                trusted,
            };
            let streamed = dir.root().join("streamed.tar");
            write(&streamed, contents).unwrap();
            let placed = dir
                .root()
                .join(format!("placed-{format:?}-{}.tar", trusted.len()));
            let incoming = [d[1].digest.clone(), d[2].digest.clone()];
            let inplace = InPlace::create(&placed, contents, &incoming).unwrap();
            assert!(!placed.exists(), "nothing at the output before finish");
            for (x, dd) in data.iter().zip(&d).skip(1) {
                let (file, at, _) = inplace.region(&dd.digest).unwrap();
                crate::sys::write_all_at(&file, x, at).unwrap();
            }
            assert!(inplace.region(&d[0].digest).is_none());
            inplace.finish(&placed).unwrap();
            assert_eq!(
                std::fs::read(&streamed).unwrap(),
                std::fs::read(&placed).unwrap()
            );
        }
        // Dropped unfinished: no file left beside the output.
        let contents = Contents {
            images: &images,
            format: Format::Both,
            store: &store,
            trusted: &[],
        };
        drop(InPlace::create(&dir.root().join("x.tar"), contents, &[]).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("x.tar"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
