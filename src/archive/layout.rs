//! The archive's layout, computed once for both writers: every member of
//! the tar in order, with its offset, its complete header and where its
//! bytes come from ([`Layout::new`]). The streaming writer
//! ([`crate::archive::writer`]) writes the members one after another; the
//! in-place writer ([`crate::archive::in_place`]) writes each at its
//! offset; both write a member with [`crate::archive::writer::write_member`],
//! so the same images give the same bytes either way.
//!
//! The tar (names are chosen by us; docker's loaders follow
//! `manifest.json`, containerd and skopeo's `oci-archive:` follow
//! `index.json`; the documents are [`crate::archive::documents`]'s):
//! ```text
//! blobs/, blobs/sha256/        the directories
//! blobs/sha256/<hex>           for each named entry in turn: its images'
//!                              configs and layers (as pulled, or
//!                              decompressed and named by their diff_id)
//!                              and its other blobs; its images' manifests
//!                              and its index (OCI layout only); the
//!                              registry's documents kept for a push
//! oci-layout, index.json       the OCI layout (unless --format docker)
//! manifest.json, repositories  docker's (unless --format oci)
//! ```
//! Each blob is in it once. Members are regular files and directories
//! only (no links), ustar headers with plain relative names, mode
//! 0644/0755, owner 0 and mtime 0, each padded to 512 bytes, two zero
//! blocks at the end: the same images always give the same bytes. Only
//! validated digests' hex becomes part of a name. This module computes;
//! it reads and writes nothing.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::archive::documents::{manifest_json, oci_index_json, repositories_json};
use crate::archive::entries::ImageEntry;
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::store::cache::Store;

/// Which formats the archive holds, over one set of blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// docker's `manifest.json` and `repositories` and the OCI image
    /// layout (`oci-layout`, `index.json`, manifests).
    #[default]
    Both,
    /// `manifest.json` and `repositories` only.
    Docker,
    /// The OCI layout only.
    Oci,
}

impl Format {
    /// Whether docker's `manifest.json` is written.
    pub fn docker(self) -> bool {
        self != Format::Oci
    }

    /// Whether the OCI layout is written.
    pub fn oci(self) -> bool {
        self != Format::Docker
    }
}

/// Where a member's bytes come from.
#[derive(Debug)]
pub enum Source<'a> {
    /// None: a directory.
    Dir,
    /// A document in memory, built for the archive or kept as the
    /// registry sent it.
    Bytes(Cow<'a, [u8]>),
    /// A blob from the store: copied with a size check only when
    /// `trusted` (verified by this run, or checked by size), else hashed as
    /// it is copied.
    Blob {
        /// The blob.
        desc: &'a Descriptor,
        /// Whether it is copied unhashed.
        trusted: bool,
    },
}

impl Source<'_> {
    /// The member's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Source::Dir => 0,
            Source::Bytes(b) => b.len() as u64,
            Source::Blob { desc, .. } => desc.size,
        }
    }
}

/// One member of the tar, where it lies in the archive.
#[derive(Debug)]
pub struct TarMember<'a> {
    /// The offset of its header; its bytes follow at `offset + 512`.
    pub offset: u64,
    /// Its header.
    pub header: tar::Header,
    /// Where its bytes come from.
    pub source: Source<'a>,
}

/// The whole archive laid out.
pub struct Layout<'a> {
    /// The members, in order.
    pub members: Vec<TarMember<'a>>,
    /// Where the blobs are.
    pub store: &'a Store,
    /// The archive's size, the end blocks included.
    pub size: u64,
}

impl<'a> Layout<'a> {
    /// The layout of `entries` in `format`, their blobs in `store`, those
    /// of `trusted` to be copied with a size check only.
    pub fn new(
        entries: &'a [ImageEntry],
        format: Format,
        store: &'a Store,
        trusted: &[Digest],
    ) -> Layout<'a> {
        let mut named: Vec<(String, Source)> = vec![
            ("blobs/".into(), Source::Dir),
            ("blobs/sha256/".into(), Source::Dir),
        ];
        let mut seen: HashSet<&Digest> = HashSet::new();
        for entry in entries {
            for desc in entry.blobs() {
                if seen.insert(&desc.digest) {
                    let trusted = trusted.contains(&desc.digest);
                    named.push((blob_name(&desc.digest), Source::Blob { desc, trusted }));
                }
            }
            let oci = entry.images.iter().map(|i| &i.manifest).chain(&entry.index);
            let oci = oci.filter(|_| format.oci()).map(|(d, b)| (&d.digest, b));
            let kept = entry.documents.iter().map(|d| (&d.digest, &d.bytes));
            for (digest, bytes) in oci.chain(kept) {
                if seen.insert(digest) {
                    named.push((blob_name(digest), Source::Bytes(Cow::Borrowed(bytes))));
                }
            }
        }
        let mut doc =
            |name: &str, bytes: Cow<'a, [u8]>| named.push((name.into(), Source::Bytes(bytes)));
        if format.oci() {
            doc("oci-layout", Cow::Borrowed(OCI_LAYOUT));
            doc("index.json", Cow::Owned(oci_index_json(entries)));
        }
        if format.docker() {
            doc("manifest.json", Cow::Owned(manifest_json(entries)));
            if let Some(repos) = repositories_json(entries) {
                doc("repositories", Cow::Owned(repos));
            }
        }
        let mut at = 0;
        let members = named
            .into_iter()
            .map(|(name, source)| {
                let member = TarMember {
                    offset: at,
                    header: header(&name, &source),
                    source,
                };
                at += 512 + member.source.size() + padding(member.source.size()) as u64;
                member
            })
            .collect();
        Layout {
            members,
            store,
            size: at + 1024,
        }
    }
}

/// The ustar header of the member `name`.
fn header(name: &str, source: &Source) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    if let Source::Dir = source {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
    }
    h.set_size(source.size());
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    // The names are this module's own and a validated digest's hex, all
    // ASCII, relative and under 100 bytes: setting one cannot fail.
    h.set_path(name)
        .expect("an archive member's name fits a header");
    h.set_cksum();
    h
}

/// The zero bytes after `size` bytes of data, up to a 512-byte block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// The `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The path of a blob inside the archive.
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::archive::entries::tests::{desc, entry_of};
    use crate::archive::in_place::InPlace;
    use crate::archive::writer::{write, Sink};

    /// A config and two layers in `store` (one of 1000 bytes, one of a
    /// block exactly), and an image over them that names the first layer
    /// twice (also used by `in_place.rs`'s tests).
    pub(crate) fn stored(store: &Store) -> (Vec<Descriptor>, Vec<ImageEntry>) {
        let data: [&[u8]; 3] = [b"{}", &[7u8; 1000], &[9u8; 512]];
        let d: Vec<_> = data.iter().map(|x| desc(x)).collect();
        for (x, dd) in data.iter().zip(&d) {
            std::fs::write(store.blob_path(&dd.digest), x).unwrap();
        }
        let layers = vec![d[1].clone(), d[2].clone(), d[1].clone()];
        let images = vec![entry_of(d[0].clone(), layers)];
        (d, images)
    }

    #[test]
    fn offsets_and_headers() {
        let store = Store::temporary().unwrap();
        let (d, images) = stored(&store);
        let layout = Layout::new(&images, Format::Both, &store, &[d[0].digest.clone()]);
        let m = &layout.members;
        let names: Vec<String> = m
            .iter()
            .map(|m| m.header.path().unwrap().to_string_lossy().into_owned())
            .collect();
        let manifest = &images[0].images[0].manifest.0;
        let b = |d: &Descriptor| blob_name(&d.digest);
        let docs = ["oci-layout", "index.json", "manifest.json", "repositories"];
        let mut want = vec!["blobs/".into(), "blobs/sha256/".into()];
        want.extend([b(&d[0]), b(&d[1]), b(&d[2]), b(manifest)]);
        want.extend(docs.map(String::from));
        assert_eq!(names, want);
        // Header, data, padding: the config's 2 bytes take a block, the
        // 1000-byte layer two, the 512-byte one one.
        let offsets: Vec<u64> = m.iter().map(|m| m.offset).collect();
        assert_eq!(offsets[..6], [0, 512, 1024, 2048, 3584, 4608]);
        let mut end = 0;
        for m in m {
            assert_eq!(m.offset, end);
            let h = &m.header;
            let size = m.source.size();
            assert_eq!(h.size().unwrap(), size);
            assert_eq!((h.mtime().unwrap(), h.uid().unwrap()), (0, 0));
            assert_eq!(h.cksum().unwrap(), {
                let mut again = h.clone();
                again.set_cksum();
                again.cksum().unwrap()
            });
            let dir = matches!(m.source, Source::Dir);
            assert_eq!(h.entry_type().is_dir(), dir);
            assert_eq!(h.mode().unwrap(), if dir { 0o755 } else { 0o644 });
            end = m.offset + 512 + size.div_ceil(512) * 512;
        }
        assert_eq!(layout.size, end + 1024);
        let trusted: Vec<bool> = m[2..5]
            .iter()
            .map(|m| matches!(m.source, Source::Blob { trusted: true, .. }))
            .collect();
        assert_eq!(trusted, [true, false, false]);
        let docker = Layout::new(&images, Format::Docker, &store, &[]);
        assert_eq!(
            docker.members.len(),
            m.len() - 3,
            "no manifest blob, no OCI files"
        );
    }

    /// The streaming and the in-place writer give the same bytes, each
    /// member's header at the layout's offset.
    #[test]
    fn both_writers_give_the_same_bytes() {
        let store = Store::temporary().unwrap();
        let dir = Store::temporary().unwrap();
        let (d, images) = stored(&store);
        let config = [d[0].digest.clone()];
        let incoming = [d[1].digest.clone(), d[2].digest.clone()];
        for (format, trusted) in [
            (Format::Both, &[][..]),
            (Format::Docker, &[][..]),
            (Format::Oci, &[][..]),
            (Format::Both, &config[..]),
        ] {
            let layout = Layout::new(&images, format, &store, trusted);
            let streamed = dir.root().join("streamed.tar");
            assert_eq!(write(Sink::File(&streamed), &layout).unwrap(), layout.size);
            let placed = dir
                .root()
                .join(format!("placed-{format:?}-{}.tar", trusted.len()));
            let inplace = InPlace::create(&placed, &layout, &incoming).unwrap();
            assert!(!placed.exists(), "nothing at the output before finish");
            for dd in &d[1..] {
                let (file, at, _) = inplace.region(&dd.digest).unwrap();
                let bytes = std::fs::read(store.blob_path(&dd.digest)).unwrap();
                crate::sys::write_all_at(&file, &bytes, at).unwrap();
            }
            assert!(inplace.region(&d[0].digest).is_none());
            assert_eq!(inplace.finish(&placed).unwrap(), layout.size);
            let bytes = std::fs::read(&streamed).unwrap();
            assert_eq!(bytes, std::fs::read(&placed).unwrap(), "{format:?}");
            assert_eq!(bytes.len() as u64, layout.size);
            for m in &layout.members {
                let at = m.offset as usize;
                assert_eq!(&bytes[at..at + 512], m.header.as_bytes());
            }
        }
    }
}
