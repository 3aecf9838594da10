//! Resumable partial blobs: `tmp/<hex>.partial` (the blob's bytes at their
//! offsets, in a file of the blob's full size) and `tmp/<hex>.journal` (the
//! byte ranges already written), both in the store, so that an interrupted
//! pull — Ctrl-C, a kill, a crash — continues where it stopped on the next
//! run.
//!
//! A range is journaled only after its bytes were written to the file, so
//! the journal never claims bytes the file lacks when the process dies. The
//! journal is not synced on every record: after a power loss it may still
//! claim bytes the disk lost, which is why nothing is trusted until the
//! whole blob hashes to its digest ([`Partial::verify`]); a mismatch after a
//! resume makes the caller start the blob again. The journal file also
//! carries an exclusive lock, so two processes sharing a store never write
//! the same partial blob. A blob downloaded straight into an archive
//! written in place (see [`crate::archive::in_place`]) is written to its
//! partial file and to its region of the archive at once
//! ([`Partial::copy_into`]); with `--no-cache` the region alone is the
//! partial blob, without a journal. Each blob is hashed as it arrives,
//! out-of-order segments included, so that verifying it once the last byte
//! is in has next to nothing left to read.
//! Both files are private (0600 on Unix) and opened without following a
//! symbolic link ([`crate::store::private::open_file`]): a link planted in
//! `tmp/` is removed, and the file it points to never truncated.
//! This module does no networking and does not decide what to fetch next.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::archive::writeback::Writeback;
use crate::error::{Error, Result};
pub use crate::fetch::rangeset::RangeSet;
use crate::image::digest::{Digest, Verifier};
use crate::store::cache::Store;
use crate::store::private::open_file;

/// One partial blob, locked for this process.
pub struct Partial {
    digest: Digest,
    size: u64,
    path: PathBuf,
    journal_path: PathBuf,
    file: Arc<File>,
    /// Where the blob starts in `file` (0 but for a region of the archive).
    base: u64,
    /// `None` for a region of the archive: nothing to resume.
    journal: Option<Mutex<File>>,
    /// A second place every byte is written to: the blob's region of an
    /// archive written in place, beside the partial file in the store.
    copy: Option<(Arc<File>, u64, PathBuf)>,
    /// The blob hashed as it arrives, so that [`Partial::verify`] has
    /// next to nothing left to read back.
    inline: Mutex<Inline>,
    /// What the journal said was already written when the blob was opened.
    pub done: RangeSet,
    /// Starts the partial file's disk writes as it fills, so that the sync
    /// before it enters the store has little left to wait for.
    _writeback: Option<Writeback>,
}

/// Partial files smaller than this are synced without early writeback.
const WRITEBACK_FROM: u64 = 4 << 20;

/// The hash of a blob's first bytes, kept as they are written: the thread
/// whose write continues the hashed bytes hashes it, then reads back and
/// hashes whatever other segments already wrote right after it, so the
/// hash keeps up with out-of-order segments.
struct Inline {
    /// `[0, hashed)` is hashed.
    hashed: u64,
    /// The hash; `None` while a thread reads back bytes beyond `hashed`.
    verifier: Option<Verifier>,
    /// How far the hash reaches once the read-back in progress is done: a
    /// write below this starts the hash over.
    claimed: u64,
    /// Bytes written this run, not yet hashed.
    written: RangeSet,
    /// Counts the restarts, so that a read-back in progress across one is
    /// dropped.
    generation: u64,
}

impl Inline {
    fn new() -> Inline {
        Inline {
            hashed: 0,
            verifier: Some(Verifier::new()),
            claimed: 0,
            written: RangeSet::default(),
            generation: 0,
        }
    }

    fn restart(&mut self) {
        let generation = self.generation + 1;
        *self = Inline::new();
        self.generation = generation;
    }
}

fn header(digest: &Digest, size: u64) -> String {
    format!("pulltar-partial 1 {digest} {size}\n")
}

impl Partial {
    /// Opens (or starts) the partial blob of `digest`, waiting for another
    /// process that holds it. Returns `None` if, once the lock is held, the
    /// blob turns out to be in the store already.
    pub fn open(store: &Store, digest: &Digest, size: u64) -> Result<Option<Partial>> {
        let path = store.partial_path(digest);
        let journal_path = path.with_extension("journal");
        let ioerr = |action, e| Error::io(action, &journal_path, e);
        // The lock is on the journal's inode: if the holder removed the
        // journal while we waited, ours is stale and we open again.
        let mut journal = None;
        for _ in 0..16 {
            let mut options = OpenOptions::new();
            let j = open_file(&journal_path, options.read(true).append(true).create(true))
                .map_err(|e| ioerr("open the download journal", e))?;
            if j.try_lock().is_err() {
                log::info!(
                    "blob {}: another pulltar is downloading it; waiting",
                    digest.short()
                );
                j.lock()
                    .map_err(|e| ioerr("lock the download journal", e))?;
            }
            let same = crate::sys::is_same_file(&j, &journal_path);
            if same {
                journal = Some(j);
                break;
            }
        }
        let Some(mut journal) = journal else {
            return Err(Error::io(
                "lock the download journal",
                &journal_path,
                std::io::Error::other("it keeps being replaced by another process"),
            ));
        };
        if store.has(digest, size)? {
            drop(journal);
            return Ok(None);
        }
        let done = read_journal(&mut journal, digest, size);
        let mut options = OpenOptions::new();
        let file = open_file(&path, options.read(true).write(true).create(true))
            .map_err(|e| Error::io("open the partial blob", &path, e))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut partial = Partial {
            digest: digest.clone(),
            size,
            path,
            journal_path,
            file: Arc::new(file),
            base: 0,
            journal: Some(Mutex::new(journal)),
            copy: None,
            inline: Mutex::new(Inline::new()),
            done,
            _writeback: None,
        };
        if size >= WRITEBACK_FROM {
            partial._writeback = Some(Writeback::start(&partial.file));
        }
        if partial.done.covered() == 0 || len != size {
            partial.reset()?;
        }
        Ok(Some(partial))
    }

    /// The blob `digest` of `size` bytes, to be written at `base` in `file`
    /// (named `path`): a region of an archive written in place.
    pub fn in_region(
        file: Arc<File>,
        base: u64,
        path: &Path,
        digest: &Digest,
        size: u64,
    ) -> Partial {
        Partial {
            digest: digest.clone(),
            size,
            path: path.to_path_buf(),
            journal_path: path.to_path_buf(),
            file,
            base,
            journal: None,
            copy: None,
            inline: Mutex::new(Inline::new()),
            done: RangeSet::default(),
            _writeback: None,
        }
    }

    /// Forgets every written byte: an empty journal and a zero-filled file
    /// of the blob's size (a region is simply written again).
    pub fn reset(&mut self) -> Result<()> {
        self.done = RangeSet::default();
        self.inline
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .restart();
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let werr = |e| Error::io("reset the partial blob", &self.path, e);
        self.file.set_len(0).map_err(werr)?;
        self.file.set_len(self.size).map_err(werr)?;
        let j = journal.get_mut().unwrap_or_else(|p| p.into_inner());
        j.set_len(0)
            .and_then(|_| j.write_all(header(&self.digest, self.size).as_bytes()))
            .map_err(|e| Error::io("reset the download journal", &self.journal_path, e))
    }

    /// Also writes every byte into `file` from `base` (named `path`): the
    /// blob's region of an archive written in place. The bytes the journal
    /// holds from an earlier run are copied there now.
    pub fn copy_into(&mut self, file: Arc<File>, base: u64, path: &Path) -> Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        for (start, end) in self.done.ranges() {
            let mut at = start;
            while at < end {
                let n = buf.len().min((end - at) as usize);
                crate::sys::read_exact_at(&self.file, &mut buf[..n], self.base + at)
                    .map_err(|e| Error::io("read the partial blob", &self.path, e))?;
                crate::sys::write_all_at(&file, &buf[..n], base + at)
                    .map_err(|e| Error::io("write the archive", path, e))?;
                at += n as u64;
            }
        }
        self.copy = Some((file, base, path.to_path_buf()));
        Ok(())
    }

    /// Writes `buf` at `offset` (in both places, when there are two), and
    /// hashes it when it continues the bytes hashed so far, with whatever
    /// was already written right after it; a write below the hashed bytes
    /// starts the hash over.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        crate::sys::write_all_at(&self.file, buf, self.base + offset)
            .map_err(|e| Error::io("write the partial blob", &self.path, e))?;
        if let Some((file, base, path)) = &self.copy {
            crate::sys::write_all_at(file, buf, base + offset)
                .map_err(|e| Error::io("write the archive", path, e))?;
        }
        let end = offset + buf.len() as u64;
        let mut inline = self.inline.lock().unwrap_or_else(|p| p.into_inner());
        if offset < inline.claimed {
            // Bytes already hashed are written again (the blob restarted):
            // what was hashed may no longer be what the file holds.
            inline.restart();
        }
        if offset != inline.hashed || inline.verifier.is_none() {
            inline.written.insert(offset, end);
            return Ok(());
        }
        let Some(mut verifier) = inline.verifier.take() else {
            return Ok(());
        };
        verifier.update(buf);
        inline.hashed = end;
        inline.claimed = end;
        // Read back and hash what other segments wrote right after it.
        loop {
            let from = inline.hashed;
            let to = inline.written.end_from(from);
            if to <= from {
                inline.verifier = Some(verifier);
                return Ok(());
            }
            inline.claimed = to;
            let generation = inline.generation;
            drop(inline);
            let read = self.hash_back(&mut verifier, from, to);
            inline = self.inline.lock().unwrap_or_else(|p| p.into_inner());
            if inline.generation != generation {
                return Ok(());
            }
            if read.is_err() {
                // Left for verify() to read back (and report).
                inline.claimed = from;
                inline.verifier = Some(verifier);
                return Ok(());
            }
            inline.written.remove_below(to);
            inline.hashed = to;
        }
    }

    /// Feeds the file's bytes `[from, to)` to `verifier`.
    fn hash_back(&self, verifier: &mut Verifier, from: u64, to: u64) -> std::io::Result<()> {
        // A segment's buffer's worth at a time: any thread may catch up.
        let mut buf = vec![0u8; (to - from).min(256 << 10) as usize];
        let mut at = from;
        while at < to {
            let n = buf.len().min((to - at) as usize);
            crate::sys::read_exact_at(&self.file, &mut buf[..n], self.base + at)?;
            verifier.update(&buf[..n]);
            at += n as u64;
        }
        Ok(())
    }

    /// Journals `[start, end)` as written (call only after `write_at`).
    pub fn record(&self, start: u64, end: u64) -> Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        if start >= end {
            return Ok(());
        }
        let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
        j.write_all(format!("{start} {end}\n").as_bytes())
            .map_err(|e| Error::io("write the download journal", &self.journal_path, e))
    }

    /// Checks the blob against its digest and size: what was hashed as it
    /// arrived, then the rest read back from the file (call once every
    /// segment has stopped).
    pub fn verify(&self) -> std::result::Result<(), String> {
        let (mut offset, mut verifier) = {
            let mut inline = self.inline.lock().unwrap_or_else(|p| p.into_inner());
            let hashed = inline.hashed;
            let verifier = inline.verifier.take();
            inline.restart();
            match verifier {
                Some(v) => (hashed, v),
                None => (0, Verifier::new()),
            }
        };
        let mut buf = vec![0u8; 1 << 20];
        while offset < self.size {
            let want = buf.len().min((self.size - offset) as usize);
            let n = crate::sys::read_at(&self.file, &mut buf[..want], self.base + offset)
                .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            if n == 0 {
                break;
            }
            verifier.update(&buf[..n]);
            offset += n as u64;
        }
        verifier.check(&self.digest, self.size)
    }

    /// Syncs the verified file and moves it into the store; removes the
    /// journal. A region of the archive stays where it is (the archive is
    /// synced as a whole).
    pub fn commit(self, store: &Store) -> Result<()> {
        if self.journal.is_none() {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| Error::io("write the partial blob", &self.path, e))?;
        store.commit(&self.path, &self.digest)?;
        let _ = fs::remove_file(&self.journal_path);
        Ok(())
    }

    /// Removes the partial file and its journal (bad data); a region of
    /// the archive goes with the archive.
    pub fn discard(self) {
        if self.journal.is_none() {
            return;
        }
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(&self.journal_path);
    }
}

/// The ranges a journal records for this digest and size; nothing if its
/// header does not match. A torn last line (no newline) is ignored.
fn read_journal(journal: &mut File, digest: &Digest, size: u64) -> RangeSet {
    let mut done = RangeSet::default();
    let mut text = String::new();
    if BufReader::new(&*journal)
        .take(64 << 20)
        .read_to_string(&mut text)
        .is_err()
    {
        return done;
    }
    let mut lines = text.split_inclusive('\n');
    if lines.next() != Some(header(digest, size).as_str()) {
        return done;
    }
    for line in lines {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let mut parts = line.split(' ');
        let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
            if a < b && b <= size {
                done.insert(a, b);
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn write_resume_verify_commit() {
        let store = Store::temporary().unwrap();
        let data = blob(10_000);
        let d = Digest::of(&data);
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        assert_eq!(p.done.covered(), 0);
        p.write_at(&data[5000..], 5000).unwrap();
        p.record(5000, 10_000).unwrap();
        p.write_at(&data[..100], 0).unwrap();
        // Not journaled: lost on reopen, as after a kill.
        drop(p);
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        assert_eq!(p.done.missing(10_000), vec![(0, 5000)]);
        assert!(p.verify().is_err());
        p.write_at(&data[..5000], 0).unwrap();
        p.record(0, 5000).unwrap();
        p.verify().unwrap();
        p.commit(&store).unwrap();
        assert!(store.has(&d, 10_000).unwrap());
        assert!(Partial::open(&store, &d, 10_000).unwrap().is_none());
    }

    #[test]
    fn inline_hash_follows_the_file() {
        let store = Store::temporary().unwrap();
        let data = blob(10_000);
        let d = Digest::of(&data);
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        // Out of order: the frontier segment, then one further on.
        p.write_at(&data[6000..], 6000).unwrap();
        p.write_at(&data[..3000], 0).unwrap();
        p.write_at(&data[3000..6000], 3000).unwrap();
        p.verify().unwrap();
        drop(p);
        // Hashed bytes written again with other data: the file is what
        // counts.
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        p.write_at(&data, 0).unwrap();
        p.write_at(b"XXXX", 100).unwrap();
        assert!(p.verify().is_err());
        p.write_at(&data[100..104], 100).unwrap();
        p.verify().unwrap();
    }

    #[test]
    fn journal_for_another_size_is_ignored() {
        let store = Store::temporary().unwrap();
        let d = Digest::of(b"x");
        let p = Partial::open(&store, &d, 100).unwrap().unwrap();
        p.record(0, 50).unwrap();
        drop(p);
        let p = Partial::open(&store, &d, 200).unwrap().unwrap();
        assert_eq!(p.done.covered(), 0);
    }

    #[test]
    fn torn_and_bogus_lines_are_ignored() {
        let store = Store::temporary().unwrap();
        let d = Digest::of(b"x");
        let p = Partial::open(&store, &d, 100).unwrap().unwrap();
        p.record(0, 10).unwrap();
        {
            let mut j = p.journal.as_ref().unwrap().lock().unwrap();
            j.write_all(b"20 30 40\n50 500\n7 x\n60 7").unwrap();
        }
        drop(p);
        let p = Partial::open(&store, &d, 100).unwrap().unwrap();
        assert_eq!(p.done.missing(100), vec![(10, 100)]);
    }

    #[test]
    fn hash_keeps_up_with_out_of_order_segments() {
        let store = Store::temporary().unwrap();
        let data = blob(10_000);
        let d = Digest::of(&data);
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        p.write_at(&data[7000..], 7000).unwrap();
        p.write_at(&data[2000..4000], 2000).unwrap();
        p.write_at(&data[4000..7000], 4000).unwrap();
        assert_eq!(p.inline.lock().unwrap().hashed, 0);
        // The write at the frontier hashes everything written after it.
        p.write_at(&data[..2000], 0).unwrap();
        assert_eq!(p.inline.lock().unwrap().hashed, 10_000);
        p.verify().unwrap();
        drop(p);
        // A write below the hashed bytes starts over, and is caught.
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        p.write_at(&data, 0).unwrap();
        p.write_at(b"XX", 9000).unwrap();
        assert_eq!(p.inline.lock().unwrap().hashed, 0);
        assert!(p.verify().is_err());
    }

    #[test]
    fn copy_into_a_region_after_a_resume() {
        let store = Store::temporary().unwrap();
        let data = blob(10_000);
        let d = Digest::of(&data);
        let p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        p.write_at(&data[..4000], 0).unwrap();
        p.record(0, 4000).unwrap();
        drop(p);
        let region = store.root().join("archive");
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&region)
                .unwrap(),
        );
        file.set_len(10_100).unwrap();
        let mut p = Partial::open(&store, &d, 10_000).unwrap().unwrap();
        p.copy_into(Arc::clone(&file), 100, &region).unwrap();
        p.write_at(&data[4000..], 4000).unwrap();
        p.verify().unwrap();
        p.commit(&store).unwrap();
        assert!(store.has(&d, 10_000).unwrap());
        assert_eq!(std::fs::read(&region).unwrap()[100..], data[..]);
    }
}
