//! Writing the archive from verified blobs in the store, as
//! [`crate::archive::layout`] lays it out: streamed ([`write`]) to where
//! `-o` names ([`Output`]: a file; a named pipe or a device, written
//! through; standard output), each member after the other; and, for both
//! writers, one member ([`write_member`]) into anything that takes bytes
//! at an offset ([`Out`]).
//!
//! A blob the layout trusts is copied in the kernel (`copy_file_range`,
//! when both ends are files) with a size check; any other is hashed again
//! as it is copied. One found damaged fails the write and is removed from
//! the store, so that the next pull fetches it again. A file archive goes
//! to a temporary name ([`TempOutput`]) and is renamed over the output
//! only when complete and synced. This module does not download and does
//! not decompress.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::layout::{padding, Layout, Source, TarMember};
use crate::error::{Error, Result};
use crate::image::digest::VerifyingReader;
use crate::image::manifest::Descriptor;
use crate::store::cache::{unique_suffix, Store};

/// Where the archive goes (`-o`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file, written under a temporary name beside it and renamed over
    /// it (for a symlink `-o` named: the link's target, so the link stays).
    File(PathBuf),
    /// A named pipe or a device (`/dev/null`), written through as
    /// standard output is, never replaced.
    Through(PathBuf),
    /// Standard output (`-o -`).
    Stdout,
}

/// An [`Output`] opened.
pub enum Sink<'a> {
    /// A file, created by [`write`].
    File(&'a Path),
    /// A stream, and its name for messages.
    Stream(Box<dyn Write + 'a>, &'a Path),
}

impl Output {
    /// The path named; none for standard output.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Output::File(p) | Output::Through(p) => Some(p),
            Output::Stdout => None,
        }
    }

    /// Opens a pipe or device (a named pipe: once its reader has opened
    /// it) or standard output; a file is only created by [`write`].
    pub fn open(&self) -> Result<Sink<'_>> {
        Ok(match self {
            Output::File(p) => Sink::File(p),
            Output::Stdout => {
                Sink::Stream(Box::new(std::io::stdout()), Path::new("standard output"))
            }
            Output::Through(p) => Sink::Stream(
                Box::new(
                    crate::sys::open_through(p).map_err(|e| Error::io("open the output", p, e))?,
                ),
                p,
            ),
        })
    }
}

/// Writes the archive laid out in `layout` into `sink`. Returns its size.
/// A file is written atomically. A stream (for a pipe into `docker
/// load`) cut by a failure part way leaves its reader a cut-off archive,
/// which every loader rejects; all blobs are in the store, verified,
/// before the first byte is written.
pub fn write(sink: Sink, layout: &Layout) -> Result<u64> {
    match sink {
        Sink::File(out) => write_file(out, layout),
        Sink::Stream(w, name) => {
            write_to(BufWriter::with_capacity(1 << 20, w), layout, name)?;
            Ok(layout.size)
        }
    }
}

/// Writes the archive at `out`, atomically.
fn write_file(out: &Path, layout: &Layout) -> Result<u64> {
    let temp = TempOutput::new(out);
    let file =
        File::create(&temp.path).map_err(|e| Error::io("create the output file", &temp.path, e))?;
    let werr = |e| Error::io("write the archive", &temp.path, e);
    let writeback = crate::archive::writeback::Writeback::start(&file);
    let buffered = write_to(BufWriter::with_capacity(1 << 20, file), layout, &temp.path)?;
    drop(writeback);
    let file = buffered.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)?;
    drop(file);
    temp.commit(out)?;
    Ok(layout.size)
}

/// Writes the whole archive into `w`, member after member, and flushes
/// it; `name` names the destination in errors.
fn write_to<W: Write>(w: W, layout: &Layout, name: &Path) -> Result<W> {
    let werr = |e| Error::io("write the archive", name, e);
    let mut out = Stream { w, at: 0 };
    for m in &layout.members {
        if crate::ui::interrupt::interrupted() {
            return Err(Error::Interrupted { resumable: true });
        }
        write_member(&mut out, m, layout.store, name)?;
        let size = m.source.size();
        out.put(&[0u8; 512][..padding(size)], m.offset + 512 + size)
            .map_err(werr)?;
    }
    out.put(&[0u8; 1024], layout.size - 1024).map_err(werr)?;
    out.w.flush().map_err(werr)?;
    Ok(out.w)
}

/// Where a member's bytes go: `at` is their offset in the archive.
pub(crate) trait Out {
    /// Writes `bytes` at `at`.
    fn put(&mut self, bytes: &[u8], at: u64) -> std::io::Result<()>;
    /// Copies all of `src` to `at`; returns how many bytes that was.
    fn copy_from<R: Read>(&mut self, src: R, at: u64) -> std::io::Result<u64>;
}

/// A stream that takes the members in order.
struct Stream<W> {
    w: W,
    /// How far it has been written.
    at: u64,
}

impl<W: Write> Out for Stream<W> {
    fn put(&mut self, bytes: &[u8], at: u64) -> std::io::Result<()> {
        debug_assert_eq!(at, self.at, "the layout's offsets run in order");
        self.w.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    fn copy_from<R: Read>(&mut self, mut src: R, at: u64) -> std::io::Result<u64> {
        debug_assert_eq!(at, self.at, "the layout's offsets run in order");
        // std's io::copy flushes a BufWriter and then copies file to file
        // in the kernel; into other writers it copies through a buffer.
        let n = std::io::copy(&mut src, &mut self.w)?;
        self.at += n;
        Ok(n)
    }
}

/// Writes `m`'s header and bytes (not its padding) into `out`; `name`
/// names the archive in errors.
pub(crate) fn write_member(
    out: &mut impl Out,
    m: &TarMember,
    store: &Store,
    name: &Path,
) -> Result<()> {
    let werr = |e| Error::io("write the archive", name, e);
    out.put(m.header.as_bytes(), m.offset).map_err(werr)?;
    match &m.source {
        Source::Dir => Ok(()),
        Source::Bytes(bytes) => out.put(bytes, m.offset + 512).map_err(werr),
        Source::Blob { desc, trusted } => {
            copy_blob(out, desc, *trusted, store, m.offset + 512, name)
        }
    }
}

/// Copies the stored blob `desc` to `at` in `out`: with a size check when
/// `trusted`, else hashed as it goes. A blob found damaged is removed
/// from the store.
pub(crate) fn copy_blob(
    out: &mut impl Out,
    desc: &Descriptor,
    trusted: bool,
    store: &Store,
    at: u64,
    name: &Path,
) -> Result<()> {
    let werr = |e| Error::io("write the archive", name, e);
    let file = store.open_blob(&desc.digest)?.take(desc.size);
    let damage = if trusted {
        let copied = out.copy_from(file, at).map_err(werr)?;
        (copied != desc.size).then(|| format!("{copied} bytes instead of {}", desc.size))
    } else {
        let mut reader = VerifyingReader::new(file);
        out.copy_from(&mut reader, at).map_err(werr)?;
        reader.into_verifier().check(&desc.digest, desc.size).err()
    };
    let Some(detail) = damage else {
        return Ok(());
    };
    store.evict(&desc.digest);
    Err(Error::Verify {
        digest: desc.digest.to_string(),
        detail: format!(
            "the cached copy is damaged ({detail}); it was removed, run the pull again"
        ),
    })
}

/// The archive's temporary file, removed unless committed: beside the
/// output, or in a directory of the caller's on the same file system.
pub(crate) struct TempOutput {
    pub(crate) path: PathBuf,
    committed: bool,
}

impl TempOutput {
    pub(crate) fn new(out: &Path) -> TempOutput {
        TempOutput::at(out.with_file_name(format!(
            ".{}.{}.{}.partial",
            file_name(out),
            std::process::id(),
            unique_suffix()
        )))
    }

    /// In `dir` when a file there can be renamed to the output's
    /// directory (the same file system), else beside the output. A pull
    /// killed outright then leaves nothing beside the output.
    pub(crate) fn new_in(out: &Path, dir: &Path) -> TempOutput {
        let path = dir.join(format!(
            "{}.{}.{}.{}",
            file_name(out),
            std::process::id(),
            unique_suffix(),
            crate::store::cache::ARCHIVE_SUFFIX
        ));
        let probe = out.with_file_name(format!(
            ".{}.{}.{}.probe",
            file_name(out),
            std::process::id(),
            unique_suffix()
        ));
        // Not under the archive's name: another pull sweeping the cache's
        // stale archives would take it for one.
        let test = path.with_extension("probe");
        let created = fs::File::options().write(true).create_new(true).open(&test);
        let same_fs = created.and_then(|_| fs::rename(&test, &probe)).is_ok();
        let _ = fs::remove_file(&test);
        let _ = fs::remove_file(&probe);
        if same_fs {
            TempOutput::at(path)
        } else {
            log::debug!(
                "the cache is on another file system than {}: the archive is written beside it",
                out.display()
            );
            TempOutput::new(out)
        }
    }

    fn at(path: PathBuf) -> TempOutput {
        crate::ui::interrupt::remove_on_forced_exit(&path);
        TempOutput {
            path,
            committed: false,
        }
    }

    pub(crate) fn commit(mut self, out: &Path) -> Result<()> {
        crate::sys::replace(&self.path, out)
            .map_err(|e| Error::io("rename the archive to", out, e))?;
        self.committed = true;
        Ok(())
    }
}

/// The output's file name, for the temporary names beside or for it.
fn file_name(out: &Path) -> String {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pulltar".into())
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
        crate::ui::interrupt::forget(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::entries::tests::{desc, entry_of};
    use crate::archive::entries::{Image, ImageEntry};
    use crate::archive::layout::{blob_name, Format};
    use crate::image::digest::Digest;

    fn stored(store: &Store, data: &[u8]) -> Descriptor {
        let d = desc(data);
        fs::write(store.blob_path(&d.digest), data).unwrap();
        d
    }

    fn entry(store: &Store) -> ImageEntry {
        let l1 = stored(store, b"layer one");
        let l2 = stored(store, b"layer two");
        entry_of(stored(store, b"{}"), vec![l1.clone(), l2, l1])
    }

    fn image(entry: &ImageEntry) -> &Image {
        &entry.images[0]
    }

    fn listing(path: &Path) -> Vec<(String, u64, u64, u32)> {
        let mut a = tar::Archive::new(File::open(path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.size().unwrap(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn layout_and_determinism() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let named = entry(&store);
        let image = image(&named);
        let out = dir.root().join("a.tar");
        let images = std::slice::from_ref(&named);
        write_file(&out, &Layout::new(images, Format::Both, &store, &[])).unwrap();
        let names: Vec<String> = listing(&out).into_iter().map(|e| e.0).collect();
        let b = |d: &Descriptor| blob_name(&d.digest);
        let mut expected = vec![
            "blobs/".to_string(),
            "blobs/sha256/".to_string(),
            b(&image.config),
            b(&image.layers[0]),
            b(&image.layers[1]),
            b(&image.manifest.0),
            "oci-layout".to_string(),
            "index.json".to_string(),
            "manifest.json".to_string(),
            "repositories".to_string(),
        ];
        assert_eq!(names, expected);
        assert!(listing(&out).iter().all(|e| e.2 == 0));
        let docker = dir.root().join("docker.tar");
        write_file(&docker, &Layout::new(images, Format::Docker, &store, &[])).unwrap();
        let names: Vec<String> = listing(&docker).into_iter().map(|e| e.0).collect();
        let mut classic = expected.clone();
        classic.retain(|n| !n.contains("oci-layout") && !n.contains("index.json"));
        classic.retain(|n| *n != b(&image.manifest.0));
        assert_eq!(names, classic);
        let oci = dir.root().join("oci.tar");
        write_file(&oci, &Layout::new(images, Format::Oci, &store, &[])).unwrap();
        let names: Vec<String> = listing(&oci).into_iter().map(|e| e.0).collect();
        expected.truncate(expected.len() - 2);
        assert_eq!(names, expected);
        let out2 = dir.root().join("b.tar");
        write_file(&out2, &Layout::new(images, Format::Both, &store, &[])).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&out2).unwrap());
        // Blobs verified by the run are copied in the kernel: same bytes.
        let fresh: Vec<Digest> = std::iter::once(&image.config)
            .chain(&image.layers)
            .map(|d| d.digest.clone())
            .collect();
        let out3 = dir.root().join("c.tar");
        write_file(&out3, &Layout::new(images, Format::Both, &store, &fresh)).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&out3).unwrap());
        let leftovers: Vec<_> = fs::read_dir(dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn damaged_blob_fails_and_leaves_nothing() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let named = entry(&store);
        let image = image(&named);
        fs::write(store.blob_path(&image.layers[1].digest), b"layer tw0").unwrap();
        let out = dir.root().join("bad.tar");
        let images = std::slice::from_ref(&named);
        let err = write_file(&out, &Layout::new(images, Format::Both, &store, &[])).unwrap_err();
        assert!(
            err.to_string()
                .contains(&image.layers[1].digest.to_string()),
            "{err}"
        );
        assert!(!out.exists());
        assert!(!store.blob_path(&image.layers[1].digest).exists());
        assert_eq!(
            fs::read_dir(dir.root()).unwrap().count(),
            2,
            "only blobs/ and tmp/"
        );
    }
}
