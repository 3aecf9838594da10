//! The one worker pool of pulltar, for the pull's downloads
//! (`download.rs`) and the push's uploads (`upload/blobs.rs`): `threads`
//! threads on a pool of their own (never rayon's global one), each running
//! the same work until it has none left. The first error stops the others
//! (an interrupt wins over any other, for the hint it carries), and so
//! does Ctrl-C; the progress each worker makes is shown by the caller's
//! display as it goes. What a worker does is the caller's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::ui::interrupt;

/// Runs `work` on `threads` threads named `pulltar-<name>-<i>`, each given
/// the pool's stop flag (set once a worker failed, for the others to end
/// at their next step); returns the first error, or an interrupt.
pub fn run(
    threads: usize,
    name: &'static str,
    work: impl Fn(&AtomicBool) -> Result<()> + Sync,
) -> Result<()> {
    let threads = threads.max(1);
    let stop = AtomicBool::new(false);
    let first: Mutex<Option<Error>> = Mutex::new(None);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("pulltar-{name}-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {name} threads: {e}")))?;
    pool.scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| {
                let Err(e) = work(&stop) else {
                    return;
                };
                stop.store(true, Ordering::Relaxed);
                let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
                let interrupt = matches!(e, Error::Interrupted { .. });
                if interrupt || (first.is_none() && !matches!(e, Error::Aborted)) {
                    *first = Some(e);
                }
            });
        }
    });
    match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None if interrupt::interrupted() => Err(Error::Interrupted { resumable: true }),
        None => Ok(()),
    }
}
