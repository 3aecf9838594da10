//! Reading an archive back without extracting it: the tar's members are
//! indexed once ([`Archive::open`]: each name and where its bytes lie in
//! the file, seeking past the data), and any member is later read from its
//! place ([`Archive::read`] for a small document, bounded;
//! [`Archive::open_region`] for a blob, streamed; [`Archive::hash`] for the
//! digest of a file no manifest names), by any number of threads, each
//! with its own file handle.
//!
//! Names are taken as loaders take them: a leading `./` or `/` is dropped,
//! and symbolic and hard links inside the archive are followed (`docker
//! save` links duplicate layers; skopeo's `layer.tar` files are links), at
//! most [`MAX_LINKS`] deep, never outside the archive. A file that is not
//! a tar is named for what it is: a compressed archive (to decompress
//! first), or not an archive at all. This module does not interpret the
//! members (`contents.rs` and `tree.rs` do) and writes nothing.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::digest::{Digest, Verifier};

/// How many links one name may go through.
pub const MAX_LINKS: usize = 8;

/// Where a member's bytes lie in the archive file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The offset of the first byte.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
}

/// What a name in the tar leads to.
#[derive(Clone, Debug)]
enum Target {
    File(Region),
    /// A symbolic or hard link, to this (normalised) name.
    Link(String),
}

/// An archive, its members indexed.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    members: HashMap<String, Target>,
}

impl Archive {
    /// Indexes the members of the tar at `path`.
    pub fn open(path: &Path) -> Result<Archive> {
        let mut file = File::open(path).map_err(|e| Error::io("open the archive", path, e))?;
        let mut magic = [0u8; 6];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io("read", path, e))?;
        if let Some(kind) = compression(&magic[..n]) {
            return Err(not_an_archive(
                path,
                &format!("it is a {kind}-compressed file; decompress it first (a tar inside is what pulltar push reads)"),
            ));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("read", path, e))?;
        let mut tar = tar::Archive::new(file);
        let mut members = HashMap::new();
        let bad = |e: std::io::Error| {
            // The tar library's message may quote the file's bytes.
            let why = crate::error::excerpt(e.to_string().as_bytes(), 60);
            not_an_archive(path, &format!("not a tar archive ({why})"))
        };
        let entries = tar.entries_with_seek().map_err(bad)?;
        for entry in entries {
            let entry = entry.map_err(bad)?;
            let raw = entry.path_bytes();
            let Some(name) = normalise("", &String::from_utf8_lossy(&raw)) else {
                continue;
            };
            let kind = entry.header().entry_type();
            let member = if kind.is_symlink() || kind.is_hard_link() {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = String::from_utf8_lossy(&target).into_owned();
                // A symbolic link is relative to its directory, a hard
                // link to the archive's root.
                let dir = match name.rsplit_once('/') {
                    Some((d, _)) if kind.is_symlink() => d,
                    _ => "",
                };
                match normalise(dir, &target) {
                    Some(t) => Target::Link(t),
                    None => continue,
                }
            } else if kind.is_file() || kind == tar::EntryType::Continuous {
                Target::File(Region {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                })
            } else {
                continue;
            };
            members.insert(name, member);
        }
        if members.is_empty() {
            return Err(not_an_archive(
                path,
                "it holds no files (is it a tar archive?)",
            ));
        }
        Ok(Archive {
            path: path.to_path_buf(),
            members,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the member `name`'s bytes lie, links followed; `None` when
    /// there is no such file.
    pub fn region(&self, name: &str) -> Option<Region> {
        let mut name = name.to_string();
        for _ in 0..=MAX_LINKS {
            match self.members.get(&name)? {
                Target::File(r) => return Some(*r),
                Target::Link(target) => name = target.clone(),
            }
        }
        None
    }

    /// Where the blob `digest` lies (`blobs/sha256/<hex>`).
    pub fn blob(&self, digest: &Digest) -> Option<Region> {
        self.region(&crate::archive::layout::blob_name(digest))
    }

    /// Whether the archive has the file `name`.
    pub fn has(&self, name: &str) -> bool {
        self.region(name).is_some()
    }

    /// Reads the member `name` whole: `None` when there is none, an error
    /// when it is larger than `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(region) = self.region(name) else {
            return Ok(None);
        };
        if region.size > limit {
            return Err(Error::Manifest {
                what: format!("{name} in {}", self.path.display()),
                reason: format!(
                    "it has {} bytes, more than the {limit} such a document may have",
                    region.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(region.size as usize);
        self.open_region(region)?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &self.path, e))?;
        if bytes.len() as u64 != region.size {
            return Err(self.truncated());
        }
        Ok(Some(bytes))
    }

    /// A reader of the bytes of `region`, on a file handle of its own.
    pub fn open_region(&self, region: Region) -> Result<impl Read> {
        let mut file =
            File::open(&self.path).map_err(|e| Error::io("open the archive", &self.path, e))?;
        file.seek(SeekFrom::Start(region.offset))
            .map_err(|e| Error::io("read", &self.path, e))?;
        Ok(file.take(region.size))
    }

    /// The digest of the bytes of `region`, hashed from the archive, and
    /// their first bytes (what a compression shows). Stops on Ctrl-C.
    pub fn hash(&self, region: Region) -> Result<(Digest, Vec<u8>)> {
        let mut reader = self.open_region(region)?;
        let mut verifier = Verifier::new();
        let mut start = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", &self.path, e)),
            };
            if start.len() < 8 {
                start.extend_from_slice(&buf[..n.min(8)]);
            }
            verifier.update(&buf[..n]);
            if crate::ui::interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
        }
        if verifier.len() != region.size {
            return Err(self.truncated());
        }
        Ok((verifier.finish(), start))
    }

    /// The error for an archive that ends before a member does.
    pub fn truncated(&self) -> Error {
        not_an_archive(&self.path, "it ends before its last file does (cut short?)")
    }
}

/// `name` as loaders read it, inside `dir`: no `./`, `.` or empty parts,
/// `..` taken back; `None` for one that leaves the archive or is empty.
fn normalise(dir: &str, name: &str) -> Option<String> {
    let mut parts: Vec<&str> = if name.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The compression whose magic bytes `start` begins with, if any.
fn compression(start: &[u8]) -> Option<&'static str> {
    match start {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("xz"),
        _ => None,
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn not_an_archive(path: &Path, why: &str) -> Error {
    Error::Manifest {
        what: path.display().to_string(),
        reason: format!(
            "not an image archive: {why}; pulltar push reads a tar from pulltar, docker save, podman save or skopeo (docker-archive: or oci-archive:)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cache::Store;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            match link {
                Some(l) => b.append_link(&mut h, name, l).unwrap(),
                None => b.append_data(&mut h, name, *data).unwrap(),
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn members_links_and_reads() {
        let dir = Store::temporary().unwrap();
        let path = dir.root().join("a.tar");
        let long = format!("{}/layer.tar", "d".repeat(120));
        let bytes = tar_of(&[
            ("./manifest.json", tar::EntryType::Regular, b"[]", None),
            (&long, tar::EntryType::Regular, b"layer bytes", None),
            (
                "x/link.tar",
                tar::EntryType::Symlink,
                b"",
                Some(&format!("../{long}")),
            ),
            ("hard", tar::EntryType::Link, b"", Some("manifest.json")),
            ("loop", tar::EntryType::Symlink, b"", Some("loop")),
            (
                "out",
                tar::EntryType::Symlink,
                b"",
                Some("../../etc/passwd"),
            ),
            ("dir/", tar::EntryType::Directory, b"", None),
        ]);
        std::fs::write(&path, &bytes).unwrap();
        let a = Archive::open(&path).unwrap();
        assert_eq!(a.read("manifest.json", 10).unwrap().unwrap(), b"[]");
        assert_eq!(a.read("hard", 10).unwrap().unwrap(), b"[]");
        let r = a.region("x/link.tar").unwrap();
        assert_eq!(r, a.region(&long).unwrap());
        let mut got = Vec::new();
        a.open_region(r).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got, b"layer bytes");
        assert!(a.region("loop").is_none() && a.region("out").is_none());
        assert!(a.region("dir").is_none() && !a.has("missing"));
        assert!(a.read("x/link.tar", 4).is_err());
        assert_eq!(a.read("missing", 4).unwrap(), None);
    }

    #[test]
    fn not_archives() {
        let dir = Store::temporary().unwrap();
        for (name, data, why) in [
            (
                "junk",
                b"hello, this is no archive at all\n".repeat(40),
                "not a tar",
            ),
            ("gz", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0], "gzip"),
            ("zst", vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0], "zstd"),
            ("empty", Vec::new(), "no files"),
            ("zeros", vec![0u8; 2048], "no files"),
        ] {
            let path = dir.root().join(name);
            std::fs::write(&path, data).unwrap();
            let e = Archive::open(&path).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{name}: {e}");
            let e = e.to_string();
            assert!(
                e.contains(why) && e.contains("not an image archive"),
                "{name}: {e}"
            );
        }
        let e = Archive::open(&dir.root().join("nothing")).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
    }

    #[test]
    fn names() {
        assert_eq!(normalise("", "./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalise("x/y", "../z").as_deref(), Some("x/z"));
        assert_eq!(normalise("x", "/abs").as_deref(), Some("abs"));
        assert_eq!(normalise("", "../a"), None);
        assert_eq!(normalise("", "./"), None);
    }
}
