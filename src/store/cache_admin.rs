//! `pulltar cache ls` and `pulltar cache prune [--older-than AGE]`: what
//! the blob store holds (each blob's digest, size and age, the partial
//! downloads under `tmp/`, and the totals), and removing blobs and stale
//! partial downloads, reporting the space freed.
//!
//! Prune takes the store's lock (`<root>/lock`) exclusively, so it waits
//! for no one and breaks no one: when a pull is using the store it stops
//! with an error saying so, and a pull that starts meanwhile waits until
//! prune is done. A partial download is also skipped while its own
//! journal lock (`partial.rs`) is held; what killed pulls left in `tmp/`
//! goes too ([`crate::store::sweep`]). Only files named by 64 hex digits
//! (and archives written in place) are touched. A cache folder that
//! belongs to another user or that others may write in is refused, as a
//! pull refuses it. The age of a blob is the time since it was stored (its
//! modification time). This module never downloads.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::store::cache::Store;
use crate::store::private::{keep_private, open_lock};
use crate::ui::counters::{duration, human_bytes};

/// One file of the store.
#[derive(Debug)]
pub struct Entry {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Time since it was last written.
    pub age: Duration,
}

/// Whether `s` is 64 lowercase hex digits (a SHA-256 digest's hex).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn entries(dir: &Path, suffix: &str) -> Vec<Entry> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(hex) = name.strip_suffix(suffix) else {
            continue;
        };
        let Ok(meta) = e.metadata() else { continue };
        if !is_hex64(hex) || !meta.is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        out.push(Entry {
            digest: format!("sha256:{hex}"),
            path: e.path(),
            size: meta.len(),
            age,
        });
    }
    out.sort_by(|a, b| a.age.cmp(&b.age).then(a.digest.cmp(&b.digest)));
    out
}

/// The verified blobs, newest first.
pub fn blobs(root: &Path) -> Vec<Entry> {
    entries(&root.join("blobs").join("sha256"), "")
}

/// The partial downloads (`tmp/<hex>.partial`), newest first.
pub fn partials(root: &Path) -> Vec<Entry> {
    entries(&root.join("tmp"), ".partial")
}

/// The text of `pulltar cache ls`.
pub fn ls(root: &Path) -> String {
    let mut out = format!("Cache: {}\n", root.display());
    let blobs = blobs(root);
    if !blobs.is_empty() {
        out.push_str(&format!("{:<71} {:>10}  {:>7}\n", "DIGEST", "SIZE", "AGE"));
    }
    for b in &blobs {
        out.push_str(&format!(
            "{:<71} {:>10}  {:>7}\n",
            b.digest,
            human_bytes(b.size),
            duration(b.age.as_secs())
        ));
    }
    let partials = partials(root);
    for p in &partials {
        out.push_str(&format!(
            "{:<71} {:>10}  {:>7}  (partial download)\n",
            p.digest,
            human_bytes(p.size),
            duration(p.age.as_secs())
        ));
    }
    out.push_str(&format!(
        "Total: {} blobs, {}",
        blobs.len(),
        human_bytes(blobs.iter().map(|b| b.size).sum())
    ));
    if !partials.is_empty() {
        out.push_str(&format!(
            "; {} partial downloads, {}",
            partials.len(),
            human_bytes(partials.iter().map(|p| p.size).sum())
        ));
    }
    out.push('\n');
    out
}

/// What prune removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Blobs removed.
    pub blobs: usize,
    /// Partial downloads removed.
    pub partials: usize,
    /// Partial downloads left because a pull holds them.
    pub busy: usize,
    /// Bytes freed.
    pub freed: u64,
    /// Blobs kept (younger than the limit).
    pub kept: usize,
}

/// Removes blobs and partial downloads at least `older_than` old (all of
/// them without a limit). Fails without removing anything while a pull
/// uses the store.
pub fn prune(root: &Path, older_than: Option<Duration>) -> Result<Pruned> {
    let mut done = Pruned::default();
    for (dir, ours) in [(root.to_path_buf(), false), (root.join("tmp"), true)] {
        if dir.is_dir() {
            keep_private(&dir, ours)?;
        }
    }
    if !root.join("blobs").is_dir() && !root.join("tmp").is_dir() {
        return Ok(done);
    }
    let lock_path = Store::lock_path(root);
    let lock =
        open_lock(&lock_path).map_err(|e| Error::io("open the cache lock", &lock_path, e))?;
    if lock.try_lock().is_err() {
        return Err(Error::Io {
            action: "prune the cache",
            path: root.to_path_buf(),
            source: std::io::Error::other(
                "a pull is using it right now; run the prune again when it has finished",
            ),
        });
    }
    let old = |e: &Entry| older_than.is_none_or(|limit| e.age >= limit);
    for b in blobs(root) {
        if old(&b) {
            if fs::remove_file(&b.path).is_ok() {
                done.blobs += 1;
                done.freed += b.size;
            }
        } else {
            done.kept += 1;
        }
    }
    for p in partials(root) {
        let journal = p.path.with_extension("journal");
        // The journal's lock is the partial's owner (partial.rs).
        let held = crate::sys::open_private(&journal, fs::OpenOptions::new().append(true))
            .ok()
            .filter(|j| j.try_lock().is_err());
        if held.is_some() {
            done.busy += 1;
            continue;
        }
        if old(&p) {
            let _ = fs::remove_file(&journal);
            if fs::remove_file(&p.path).is_ok() {
                done.partials += 1;
                done.freed += p.size;
            }
        }
    }
    // What killed pulls left (no pull holds any of it now: the store's
    // lock is ours).
    let (count, bytes) = crate::store::sweep::sweep(&root.join("tmp"), true);
    done.partials += count;
    done.freed += bytes;
    drop(lock);
    Ok(done)
}

/// The report line of `pulltar cache prune`.
pub fn report(p: &Pruned) -> String {
    let mut s = format!(
        "Removed {} blobs and {} partial downloads: {} freed",
        p.blobs,
        p.partials,
        human_bytes(p.freed)
    );
    if p.kept > 0 {
        s.push_str(&format!("; kept {} newer blobs", p.kept));
    }
    if p.busy > 0 {
        s.push_str(&format!("; {} partial downloads in use were left", p.busy));
    }
    s.push('\n');
    s
}

/// Parses an age like `30d`, `12h`, `45m`, `90s` or `2w`.
pub fn parse_age(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("--older-than {s:?} is not an age like 30d, 12h, 45m or 2w"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "--older-than {s:?} needs a unit: s, m, h, d or w (30d, 12h)"
            ))
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("--older-than {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "30", "d", "3x", "-1d", "99999999999999999999w"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ls_and_prune() {
        let root = std::env::temp_dir().join(format!(
            "pulltar-admin-{}-{}",
            std::process::id(),
            crate::store::cache::unique_suffix()
        ));
        let store = Store::open(&root).unwrap();
        let d = Digest::of(b"abc");
        fs::write(store.blob_path(&d), b"abc").unwrap();
        fs::write(root.join("blobs/sha256/not-a-digest"), b"x").unwrap();
        let partial = store.partial_path(&Digest::of(b"p"));
        fs::write(&partial, b"12345").unwrap();
        let text = ls(&root);
        assert!(text.contains(&d.to_string()), "{text}");
        assert!(
            text.contains("Total: 1 blobs, 3 B; 1 partial downloads, 5 B"),
            "{text}"
        );
        // A store in use cannot be pruned.
        assert!(prune(&root, None).is_err());
        drop(store);
        let p = prune(&root, Some(Duration::from_secs(3600))).unwrap();
        assert_eq!((p.blobs, p.kept, p.partials), (0, 1, 0));
        let p = prune(&root, None).unwrap();
        assert_eq!((p.blobs, p.partials, p.freed), (1, 1, 8));
        assert!(root.join("blobs/sha256/not-a-digest").exists());
        // An archive a killed pull was writing in place goes too, and a
        // layer it was decompressing.
        let killed = root.join("tmp/out.tar.1.2.archive");
        fs::write(&killed, b"1234567").unwrap();
        let expanding = root.join(format!("tmp/{}.tar.1.2.tmp", d.hex()));
        fs::write(&expanding, b"123").unwrap();
        let p = prune(&root, None).unwrap();
        assert_eq!((p.partials, p.freed), (2, 10));
        assert!(!killed.exists() && !expanding.exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn stale_archives_go_and_held_ones_stay() {
        let store = Store::temporary().unwrap();
        let held = store.tmp_dir().join("a.tar.1.1.archive");
        let stale = store.tmp_dir().join("b.tar.2.2.archive");
        let other = store.tmp_dir().join("c.partial");
        for p in [&held, &stale, &other] {
            fs::write(p, b"x").unwrap();
        }
        let lock = fs::File::open(&held).unwrap();
        lock.try_lock().unwrap();
        crate::store::sweep::sweep(&store.tmp_dir(), false);
        assert!(held.exists() && other.exists());
        assert!(!stale.exists());
        drop(lock);
        crate::store::sweep::sweep(&store.tmp_dir(), false);
        assert!(!held.exists());
    }
}
