//! Starting the disk writes of the archive while it is still being
//! written, so that the `fsync` before its rename waits for the last few
//! megabytes instead of the whole file: a thread asks the kernel, every
//! 100 ms, to begin writing back the file's dirty pages
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait).
//!
//! Only a hint to the kernel: correctness still rests on the final
//! `fsync`; where the call fails (another OS, an odd file system) nothing
//! changes (Windows has no such call: there the thread stops at once).
//! The call itself is [`crate::sys::start_writeback`].

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Writeback of one file, started again and again until dropped.
pub struct Writeback {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts pushing `file`'s dirty pages to disk in the background (on
    /// a duplicate of its descriptor).
    pub fn start(file: &File) -> Writeback {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = file.try_clone().ok().and_then(|f| {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pulltar-writeback".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if crate::sys::start_writeback(&f).is_err() {
                            return;
                        }
                        std::thread::park_timeout(Duration::from_millis(100));
                    }
                })
                .ok()
        });
        Writeback { stop, thread }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn runs_and_stops() {
        let dir = crate::store::cache::Store::temporary().unwrap();
        let path = dir.root().join("f");
        let mut f = File::create(&path).unwrap();
        let wb = Writeback::start(&f);
        for _ in 0..64 {
            f.write_all(&[1u8; 64 << 10]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(150));
        drop(wb);
        f.sync_all().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * (64 << 10));
    }
}
