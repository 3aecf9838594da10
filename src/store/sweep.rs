//! What killed pulls leave in the store's `tmp/`: archives that were being
//! written in place (`<name>.<pid>.<n>.archive`) and blobs that were being
//! made (`<hex>.tar.<pid>.<n>.tmp` for a decompressed layer,
//! `<hex>.config.<pid>.<n>.tmp` for a converted config). Partial downloads
//! are not leftovers: the next pull resumes them (`cache_admin.rs` prunes
//! them).
//!
//! A pull sweeps when it opens the store, while other pulls may be at
//! work: an archive goes when no process holds its lock (a pull writing
//! one holds it until the rename); a temporary goes when the process named
//! in it is gone and it was not written for a minute (a pull in another
//! PID namespace sharing the cache is still writing its temporaries), or
//! when it was not written for a day (its PID given to another process).
//! `pulltar cache prune`, which holds the store's lock alone, sweeps all
//! of them. Only names of those shapes are touched.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::store::cache::ARCHIVE_SUFFIX;
use crate::store::cache_admin::is_hex64;

/// A temporary whose process is gone is left this long after its last
/// write.
const GONE_FOR: Duration = Duration::from_secs(60);

/// A temporary is left at most this long after its last write.
const UNTOUCHED_FOR: Duration = Duration::from_secs(86_400);

/// Removes the leftovers in `tmp` (all of them with `everything`, else
/// those no running pull can own); returns how many, and their bytes.
pub fn sweep(tmp: &Path, everything: bool) -> (usize, u64) {
    let (mut count, mut bytes) = (0, 0);
    let Ok(entries) = fs::read_dir(tmp) else {
        return (count, bytes);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        let stale = if path.extension().is_some_and(|x| x == ARCHIVE_SUFFIX) {
            everything || fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok())
        } else if let Some(pid) = temp_owner(&name) {
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            everything
                || idle >= UNTOUCHED_FOR
                || (idle >= GONE_FOR
                    && pid != std::process::id()
                    && !crate::sys::process_exists(pid))
        } else {
            false
        };
        if stale && fs::remove_file(&path).is_ok() {
            log::debug!(
                "removed {}, left by a pull that was stopped",
                path.display()
            );
            count += 1;
            bytes += meta.len();
        }
    }
    (count, bytes)
}

/// The process that made the temporary `name`
/// (`<64 hex>.<kind>.<pid>.<n>.tmp`), or None for another name.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let (_n, pid, made) = (parts.next()?, parts.next()?, parts.next()?);
    let (hex, _kind) = made.split_once('.')?;
    is_hex64(hex).then(|| pid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_told_by_name() {
        let hex = "ab".repeat(32);
        assert_eq!(
            temp_owner(&format!("{hex}.tar.4242.1a2b3c0.tmp")),
            Some(4242)
        );
        assert_eq!(temp_owner(&format!("{hex}.config.7.x.tmp")), Some(7));
        for other in [
            format!("{hex}.partial"),
            format!("{hex}.tar.x.1.tmp"),
            format!("{}.tar.1.1.tmp", "AB".repeat(32)),
            "out.tar.1.1.tmp".to_string(),
            format!("{hex}.1.1.tmp"),
        ] {
            assert_eq!(temp_owner(&other), None, "{other}");
        }
    }

    #[test]
    fn a_dead_pulls_temporaries_go_a_live_ones_stay() {
        let store = crate::store::cache::Store::temporary().unwrap();
        let tmp = store.tmp_dir();
        let hex = "cd".repeat(32);
        // A process that has ended: its PID is free (until reused).
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = tmp.join(format!("{hex}.tar.{dead}.1.tmp"));
        let mine = tmp.join(format!("{hex}.tar.{}.2.tmp", std::process::id()));
        let fresh = tmp.join(format!("{hex}.config.{dead}.3.tmp"));
        let other = tmp.join(format!("{hex}.partial"));
        for p in [&gone, &mine, &fresh, &other] {
            fs::write(p, b"12345").unwrap();
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for p in [&gone, &mine] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(sweep(&tmp, false), (1, 5));
        assert!(!gone.exists() && mine.exists() && fresh.exists() && other.exists());
        assert_eq!(sweep(&tmp, true), (2, 10));
        assert!(other.exists());
    }
}
