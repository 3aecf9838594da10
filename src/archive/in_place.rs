//! Writing the archive in place, for a pull that keeps no cache
//! (`--no-cache`) into a file: every entry's offset is known before any
//! layer arrives (sizes come from the descriptors), so the file is laid out
//! at once — headers, documents and the small blobs already in the store
//! written, layer regions left for the downloads — and each layer is
//! downloaded straight into its region, verified there, and never copied.
//!
//! The bytes are the same as [`crate::archive::writer::write`] gives for the same
//! contents (same members, same headers, same order). The file has the
//! temporary name beside the output until [`InPlace::finish`] syncs and
//! renames it; dropped before that, it is removed. This module does not
//! download; the downloader writes the regions (see
//! [`crate::fetch::partial::Partial::in_region`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::archive::writer::{member_header, members, padding, Contents, Member, TempOutput};
use crate::error::{Error, Result};
use crate::image::digest::{Digest, Verifier};

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
    /// other blob must be in the store (it is hashed as it is copied).
    pub fn create(out: &Path, contents: Contents, incoming: &[Digest]) -> Result<InPlace> {
        let temp = TempOutput::new(out);
        let werr = |e| Error::io("write the archive", &temp.path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .map_err(|e| Error::io("create the output file", &temp.path, e))?;
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
                Member::Doc(_, bytes) => {
                    crate::sys::write_all_at(&file, bytes, offset + 512).map_err(werr)?
                }
                Member::Kept(_, bytes) => {
                    crate::sys::write_all_at(&file, bytes, offset + 512).map_err(werr)?
                }
                Member::Blob(b) if incoming.contains(&b.digest) => {
                    regions.insert(b.digest.clone(), offset + 512);
                }
                Member::Blob(b) => {
                    let path = contents.store.blob_path(&b.digest);
                    let src = File::open(&path)
                        .map_err(|e| Error::io("read the cached blob", &path, e))?;
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
    use crate::store::cache::Store;

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
        for format in [Format::Both, Format::Docker, Format::Oci] {
            let contents = Contents {
                images: &images,
                format,
                store: &store,
                trusted: &[],
            };
            let streamed = dir.root().join("streamed.tar");
            write(&streamed, contents).unwrap();
            let placed = dir.root().join(format!("placed-{format:?}.tar"));
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
