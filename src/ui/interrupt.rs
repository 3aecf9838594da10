//! Ctrl-C and SIGTERM: the first one sets a flag that downloads and the
//! archive writer check between reads, so the pull stops at once with its
//! partial blobs journaled and no file at the output path; a second one
//! ends the process the default way. A pull stuck in a blocking network
//! call (a server that stalls the manifest or a blob, under the read
//! timeout) cannot see the flag, so a watcher thread ends the process with
//! exit code 130 when the pull has not stopped [`GRACE`] after the signal
//! (the journal lags at most a few hundred KiB, which the rerun fetches
//! again). Before that exit it removes the temporary files registered
//! with [`remove_on_forced_exit`] (an archive being written, a `--no-cache`
//! store), which the pull's own cleanup would have removed.
//!
//! This module only records that a signal came (and offers a sleep that
//! ends early when one does). Catching it is [`crate::sys::catch_interrupts`]:
//! SIGINT and SIGTERM on Unix, the console's Ctrl-C and Ctrl-Break on
//! Windows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Temporary files and directories to remove if the watcher ends the
/// process.
static TEMPORARY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers `path` (a file or a directory) to be removed if a pull stuck
/// after a signal is ended by the watcher.
pub fn remove_on_forced_exit(path: &Path) {
    TEMPORARY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.to_path_buf());
}

/// Unregisters `path` (it was removed, or kept on purpose).
pub fn forget(path: &Path) {
    TEMPORARY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| p != path);
}

fn remove_temporary() {
    let paths = std::mem::take(&mut *TEMPORARY.lock().unwrap_or_else(|p| p.into_inner()));
    for p in paths {
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// How long a pull may take to stop by itself after a signal.
pub const GRACE: Duration = Duration::from_secs(2);

/// Installs the handler for SIGINT and SIGTERM, except for a signal the
/// process was started ignoring (a background job's SIGINT, `nohup`), and
/// the watcher that ends a pull stuck in a network call.
pub fn install() {
    let _ = std::thread::Builder::new()
        .name("pulltar-interrupt".into())
        .spawn(|| {
            while !interrupted() {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(GRACE);
            remove_temporary();
            eprintln!("pulltar: interrupted; run the same command again to resume");
            std::process::exit(130);
        });
    crate::sys::catch_interrupts(&INTERRUPTED);
}

/// Whether SIGINT or SIGTERM has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps for `wait`, waking early with an error when a signal arrives
/// ([`Error::Interrupted`]) or `abort` is set ([`Error::Aborted`]).
pub fn sleep(wait: Duration, abort: Option<&AtomicBool>) -> Result<()> {
    let until = Instant::now() + wait;
    loop {
        if abort.is_some_and(|a| a.load(Ordering::Relaxed)) {
            return Err(Error::Aborted);
        }
        if interrupted() {
            return Err(Error::Interrupted { resumable: true });
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}
