//! Writing the archive that `docker load`, `podman load`, skopeo and
//! containerd read, from verified blobs in the store.
//!
//! Layout (names are chosen by us; docker's loaders follow `manifest.json`,
//! containerd and skopeo's `oci-archive:` follow `index.json`; the
//! documents come from [`crate::archive::index`]):
//! ```text
//! blobs/sha256/<config hex>    the registry's config bytes, verbatim
//! blobs/sha256/<layer hex>     each layer as pulled (gzip stays gzip), or
//!                              decompressed (named by its diff_id), once
//! blobs/sha256/<manifest hex>  the image manifest (OCI layout only)
//! oci-layout, index.json       the OCI layout (unless --format docker)
//! manifest.json                [{"Config", "RepoTags", "Layers"}] per image
//! repositories                 {name: {tag: <top layer chain id>}} (legacy)
//! ```
//! (`--format oci` leaves out the last two.) Entries are regular files and
//! directories only (no links), with plain relative names, mode 0644/0755,
//! owner 0 and mtime 0, in a fixed order, so the same images always give
//! the same bytes. A blob the caller trusts (verified by this run, or held
//! in the store and checked by size) is copied in the kernel
//! (`copy_file_range`) with a size check; any other is hashed again as it
//! is copied, so one damaged in the store fails the write. The archive
//! goes to a temporary name beside the output and is renamed over it only
//! when complete and synced. This module does not download and does not
//! decompress.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::digest::{Digest, VerifyingReader};
use crate::image::manifest::Descriptor;
use crate::store::cache::{unique_suffix, Store};

pub use crate::archive::index::{blob_name, members, Format, Image, ImageEntry, Member};

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// What goes into an archive.
#[derive(Clone, Copy)]
pub struct Contents<'a> {
    /// The images, in order.
    pub images: &'a [ImageEntry],
    /// The layouts to write.
    pub format: Format,
    /// Where the blobs are.
    pub store: &'a Store,
    /// Blobs copied with only a size check (verified by this run, or cache
    /// hits checked by size); every other blob is hashed again.
    pub trusted: &'a [Digest],
}

/// Writes the archive at `out`, atomically. Returns its size.
pub fn write(out: &Path, contents: Contents) -> Result<u64> {
    let temp = TempOutput::new(out);
    let file =
        File::create(&temp.path).map_err(|e| Error::io("create the output file", &temp.path, e))?;
    let werr = |e| Error::io("write the archive", &temp.path, e);
    let writeback = crate::archive::writeback::Writeback::start(&file);
    let buffered = write_to(
        BufWriter::with_capacity(1 << 20, file),
        contents,
        &temp.path,
    )?;
    drop(writeback);
    let file = buffered.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)?;
    let size = file.metadata().map_err(werr)?.len();
    drop(file);
    temp.commit(out)?;
    Ok(size)
}

/// Streams the archive to standard output (`-o -`), for a pipe into
/// `docker load`. A failure part way leaves the reader a cut-off archive,
/// which every loader rejects; all blobs are in the store, verified,
/// before the first byte is written. Returns the bytes written.
pub fn write_stdout(contents: Contents) -> Result<u64> {
    let name = Path::new("standard output");
    let counted = Counting {
        inner: std::io::stdout().lock(),
        bytes: 0,
    };
    let out = write_to(BufWriter::with_capacity(1 << 20, counted), contents, name)?;
    let counted = out
        .into_inner()
        .map_err(|e| Error::io("write the archive", name, e.into_error()))?;
    Ok(counted.bytes)
}

/// Writes the whole archive into `w` and flushes it; `name` names the
/// destination in errors.
fn write_to<W: Write>(w: W, contents: Contents, name: &Path) -> Result<W> {
    let mut tar = tar::Builder::new(w);
    let werr = |e| Error::io("write the archive", name, e);
    for member in members(contents.images, contents.format) {
        if crate::ui::interrupt::interrupted() {
            return Err(Error::Interrupted { resumable: true });
        }
        match member {
            Member::Blob(blob) if contents.trusted.contains(&blob.digest) => {
                append_trusted_blob(&mut tar, blob, contents.store, name)?
            }
            Member::Blob(blob) => append_blob(&mut tar, blob, contents.store, name)?,
            Member::Dir(_) | Member::Doc(..) | Member::Kept(..) => {
                let h = member_header(&member).map_err(werr)?;
                tar.get_mut().write_all(h.as_bytes()).map_err(werr)?;
                if let Some(bytes) = member.bytes() {
                    tar.get_mut().write_all(bytes).map_err(werr)?;
                    tar.get_mut()
                        .write_all(&[0u8; 512][..padding(bytes.len() as u64)])
                        .map_err(werr)?;
                }
            }
        }
    }
    let mut w = tar.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(w)
}

/// The complete tar header of `member`.
pub(crate) fn member_header(member: &Member) -> std::io::Result<tar::Header> {
    let kind = match member {
        Member::Dir(_) => tar::EntryType::Directory,
        _ => tar::EntryType::Regular,
    };
    let mut h = header(kind, member.size());
    h.set_path(member.name())?;
    h.set_cksum();
    Ok(h)
}

/// The zero bytes after `size` bytes of data, up to a 512-byte block.
pub(crate) fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    blob: &Descriptor,
    store: &Store,
    temp: &Path,
) -> Result<()> {
    let file = store.open_blob(&blob.digest)?;
    let mut reader = VerifyingReader::new(file.take(blob.size));
    let mut h = header(tar::EntryType::Regular, blob.size);
    tar.append_data(&mut h, blob_name(&blob.digest), &mut reader)
        .map_err(|e| Error::io("write the archive", temp, e))?;
    if let Err(detail) = reader.into_verifier().check(&blob.digest, blob.size) {
        return Err(damaged(store, blob, &detail));
    }
    Ok(())
}

/// Removes a stored blob found bad while writing the archive, and says so.
pub(crate) fn damaged(store: &Store, blob: &Descriptor, detail: &str) -> Error {
    store.evict(&blob.digest);
    Error::Verify {
        digest: blob.digest.to_string(),
        detail: format!(
            "the cached copy is damaged ({detail}); it was removed, run the pull again"
        ),
    }
}

/// Appends a trusted blob: the header, the bytes straight from the
/// store's file (`copy_file_range` when the archive is a file), then the
/// padding.
fn append_trusted_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    blob: &Descriptor,
    store: &Store,
    temp: &Path,
) -> Result<()> {
    let mut file = store.open_blob(&blob.digest)?;
    let werr = |e| Error::io("write the archive", temp, e);
    let h = member_header(&Member::Blob(blob)).map_err(werr)?;
    let out = tar.get_mut();
    out.write_all(h.as_bytes()).map_err(werr)?;
    // std's io::copy flushes a BufWriter and then copies file to file in
    // the kernel; into other writers it copies through a buffer.
    let copied = std::io::copy(&mut (&mut file).take(blob.size), out).map_err(werr)?;
    if copied != blob.size {
        let detail = format!("{copied} bytes instead of {}", blob.size);
        return Err(damaged(store, blob, &detail));
    }
    out.write_all(&[0u8; 512][..padding(blob.size)])
        .map_err(werr)?;
    Ok(())
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
    use crate::archive::index::tests::{desc, entry_of};

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

    fn contents<'a>(
        images: &'a [ImageEntry],
        format: Format,
        store: &'a Store,
        trusted: &'a [Digest],
    ) -> Contents<'a> {
        Contents {
            images,
            format,
            store,
            trusted,
        }
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
        write(&out, contents(images, Format::Both, &store, &[])).unwrap();
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
        write(&docker, contents(images, Format::Docker, &store, &[])).unwrap();
        let names: Vec<String> = listing(&docker).into_iter().map(|e| e.0).collect();
        let mut classic = expected.clone();
        classic.retain(|n| !n.contains("oci-layout") && !n.contains("index.json"));
        classic.retain(|n| *n != b(&image.manifest.0));
        assert_eq!(names, classic);
        let oci = dir.root().join("oci.tar");
        write(&oci, contents(images, Format::Oci, &store, &[])).unwrap();
        let names: Vec<String> = listing(&oci).into_iter().map(|e| e.0).collect();
        expected.truncate(expected.len() - 2);
        assert_eq!(names, expected);
        let out2 = dir.root().join("b.tar");
        write(&out2, contents(images, Format::Both, &store, &[])).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&out2).unwrap());
        // Blobs verified by the run are copied in the kernel: same bytes.
        let fresh: Vec<Digest> = std::iter::once(&image.config)
            .chain(&image.layers)
            .map(|d| d.digest.clone())
            .collect();
        let out3 = dir.root().join("c.tar");
        write(&out3, contents(images, Format::Both, &store, &fresh)).unwrap();
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
        let err = write(&out, contents(images, Format::Both, &store, &[])).unwrap_err();
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
