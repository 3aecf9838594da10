//! Drawing the progress display: the terminal's size (asked of the system
//! on each redraw, by [`crate::sys::terminal_size`], so a resize takes
//! effect at once), the text of each blob line and of the total line cut
//! to the width, the escape sequences that rewrite them in place (cursor
//! up, clear to end of line, clear below), and the one drawing thread:
//! about 8 frames a second on a terminal, a plain summary line every 10 s
//! elsewhere.
//!
//! It only reads the [`counters`](crate::ui::counters); it never blocks a
//! download thread (the screen lock is taken only by this thread and by
//! log lines).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::ui::counters::{duration, human_bytes, Mode, Screen, Shared, Slot, State};

/// Prints whole lines (already ending in `\n`) above the bars (the
/// screen lock first, then stderr's, as the drawing thread takes them).
pub(crate) fn print(sh: &Shared, text: &[u8]) {
    if sh.mode == Mode::Tty && !sh.stop.load(Ordering::Relaxed) {
        let mut screen = sh.screen.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = screen.clear_sequence();
        buf.extend_from_slice(text);
        buf.extend_from_slice(frame(sh, &mut screen).as_bytes());
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&buf);
        let _ = err.flush();
    } else {
        // After the last frame: print below it, and keep the drawing
        // thread (if still finishing) from moving back over the text.
        let mut screen = sh.screen.lock().unwrap_or_else(|p| p.into_inner());
        screen.forget();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text);
        let _ = err.flush();
    }
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Columns and rows of the terminal on stderr; `COLUMNS`, else 80×24,
/// when it cannot be asked.
pub(crate) fn terminal_size() -> (usize, usize) {
    if let Some((cols, rows)) = crate::sys::terminal_size() {
        return (usize::from(cols), usize::from(rows.max(4)));
    }
    let cols = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
        .unwrap_or(80);
    (cols, 24)
}

/// Cuts `s` to at most `width` characters.
fn cut(s: &str, width: usize) -> &str {
    match s.char_indices().nth(width) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// One blob's line, at most `width` characters (in a push's words when
/// `pushing`).
pub(crate) fn blob_line(s: &Slot, now_ms: u64, width: usize, pushing: bool) -> String {
    let state = s.state();
    let bytes = s.bytes.load(Ordering::Relaxed).min(s.size);
    let pct = (bytes * 100).checked_div(s.size).unwrap_or(100);
    let began = s.began_ms.load(Ordering::Relaxed);
    let ended = match state {
        State::Done => s.ended_ms.load(Ordering::Relaxed),
        _ => now_ms,
    };
    let speed = match state {
        State::Downloading | State::Retrying | State::Done if ended > began => {
            format!("{}/s", human_bytes(bytes * 1000 / (ended - began)))
        }
        _ => String::new(),
    };
    let what = match state {
        State::Queued => "queued".to_string(),
        State::Downloading if pushing => "uploading".to_string(),
        State::Downloading => match s.segments.load(Ordering::Relaxed) {
            0 | 1 => "downloading".to_string(),
            n => format!("downloading, {n} segments"),
        },
        State::Verifying => "verifying".to_string(),
        State::Done => "done".to_string(),
        State::Cached if pushing => "in the registry".to_string(),
        State::Cached => "cached".to_string(),
        State::Retrying => {
            let why = s.reason.lock().unwrap_or_else(|p| p.into_inner());
            format!("retrying: {why}")
        }
    };
    let head = format!("{} {:>9} ", s.digest.short(), human_bytes(s.size));
    let tail = format!(" {pct:>3}% {speed:>11}  {what}");
    // The bar's width leaves room for a state of STATE_ROOM characters, so
    // that bars line up whatever each state says.
    const STATE_ROOM: usize = 24;
    let fixed = head.len() + tail.len() - what.len() + STATE_ROOM + 2;
    let room = width.saturating_sub(fixed);
    let line = if room >= 10 {
        let bar = room.min(40);
        let full = (bar as u64 * pct / 100) as usize;
        format!(
            "{head}[{}{}]{tail}",
            "#".repeat(full),
            "-".repeat(bar - full)
        )
    } else if head.len() + tail.len() <= width {
        format!("{head}{}", tail.trim_start())
    } else {
        format!("{head}{pct:>3}% {what}")
    };
    cut(&line, width).to_string()
}

/// The total line: bytes, blobs done, speed, ETA, elapsed.
fn total_line(sh: &Shared, slots: &[std::sync::Arc<Slot>], screen: &Screen, now_ms: u64) -> String {
    let total: u64 = slots.iter().map(|s| s.size).sum();
    let have: u64 = slots
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed).min(s.size))
        .sum();
    let speed = match (screen.samples.front(), screen.samples.back()) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) * 1000 / (b.0 - a.0),
        _ => 0,
    };
    let eta = if speed > 0 && total > have {
        format!("  ETA {}", duration((total - have) / speed))
    } else {
        String::new()
    };
    format!(
        "Total {} / {}  {}/{} blobs  {}/s{eta}  {}",
        human_bytes(have),
        human_bytes(total),
        sh.blobs_done.load(Ordering::Relaxed),
        sh.blobs_total.load(Ordering::Relaxed),
        human_bytes(speed),
        duration(now_ms / 1000)
    )
}

/// The hosts of mirror lists and their speeds over the last 3 s (`None`
/// without a mirror list).
fn hosts_line(sh: &Shared, screen: &mut Screen, now_ms: u64) -> Option<String> {
    let hosts = sh.hosts.read().unwrap_or_else(|p| p.into_inner()).clone();
    if hosts.is_empty() {
        return None;
    }
    let bytes: Vec<u64> = hosts
        .iter()
        .map(|(_, b)| b.load(Ordering::Relaxed))
        .collect();
    let samples = &mut screen.host_samples;
    samples.push_back((now_ms, bytes));
    while samples.len() > 2 && now_ms - samples[0].0 > 3000 {
        samples.pop_front();
    }
    let (first, last) = (samples.front()?, samples.back()?);
    let dt = last.0.saturating_sub(first.0).max(1);
    let each: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let was = first.1.get(i).copied().unwrap_or(0);
            let now = last.1.get(i).copied().unwrap_or(was);
            format!(
                "{name} {}/s",
                human_bytes(now.saturating_sub(was) * 1000 / dt)
            )
        })
        .collect();
    Some(format!("From {}", each.join(", ")))
}

/// The next frame, from the top of the bars: every line cleared to its
/// end, then everything below cleared. Records how many lines it drew.
pub(crate) fn frame(sh: &Shared, screen: &mut Screen) -> String {
    let slots: Vec<std::sync::Arc<Slot>> =
        sh.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
    if slots.is_empty() {
        return String::new();
    }
    let now = sh.ms();
    screen
        .samples
        .push_back((now, sh.bytes_downloaded.load(Ordering::Relaxed)));
    while screen.samples.len() > 2 && now - screen.samples[0].0 > 3000 {
        screen.samples.pop_front();
    }
    let (cols, rows) = terminal_size();
    // One column spare: a line that fills the last column makes some
    // terminals wrap.
    let width = cols.saturating_sub(1).max(1);
    let room = rows.saturating_sub(3).max(1);
    let mut shown: Vec<usize> = (0..slots.len()).collect();
    let mut hidden = 0;
    if slots.len() > room {
        // Running blobs first, then queued, then finished ones.
        let rank = |s: &Slot| match s.state() {
            State::Downloading | State::Verifying | State::Retrying => 0,
            State::Queued => 1,
            State::Done | State::Cached => 2,
        };
        shown.sort_by_key(|&i| rank(&slots[i]));
        shown.truncate(room - 1);
        shown.sort_unstable();
        hidden = slots.len() - shown.len();
    }
    let mut lines: Vec<String> = shown
        .into_iter()
        .map(|i| blob_line(&slots[i], now, width, sh.pushing))
        .collect();
    if hidden > 0 {
        lines.push(format!("... and {hidden} more blobs"));
    }
    lines.extend(hosts_line(sh, screen, now));
    lines.push(total_line(sh, &slots, screen, now));
    screen.lines = lines.len();
    let mut out = String::new();
    for line in &lines {
        out.push_str(cut(line, width));
        out.push_str("\x1b[K\n");
    }
    out + "\x1b[J"
}

/// The plain periodic summary line.
fn plain_line(sh: &Shared, screen: &mut Screen) -> String {
    let slots = sh.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
    let now = sh.ms();
    screen
        .samples
        .push_back((now, sh.bytes_downloaded.load(Ordering::Relaxed)));
    while screen.samples.len() > 2 {
        screen.samples.pop_front();
    }
    let total = total_line(sh, &slots, screen, now);
    match hosts_line(sh, screen, now) {
        Some(hosts) => format!("  ... {total}\n  ... {hosts}\n"),
        None => format!("  ... {total}\n"),
    }
}

fn plain_interval() -> Duration {
    std::env::var("PULLTAR_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
}

/// The drawing thread's body: redraws until the display is stopped, then
/// draws the last frame (on a terminal) and returns.
pub(crate) fn draw_loop(sh: &Shared) {
    let tick = Duration::from_millis(125);
    let interval = plain_interval();
    let mut since = Duration::ZERO;
    loop {
        let stopping = sh.stop.load(Ordering::Relaxed);
        match sh.mode {
            Mode::Tty => {
                let mut screen = sh.screen.lock().unwrap_or_else(|p| p.into_inner());
                let mut buf = screen.up_sequence();
                buf.push_str(&frame(sh, &mut screen));
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(buf.as_bytes());
                let _ = err.flush();
            }
            Mode::Plain if since >= interval && !stopping => {
                since = Duration::ZERO;
                let busy =
                    sh.blobs_done.load(Ordering::Relaxed) < sh.blobs_total.load(Ordering::Relaxed);
                if busy {
                    let mut screen = sh.screen.lock().unwrap_or_else(|p| p.into_inner());
                    let line = plain_line(sh, &mut screen);
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
            }
            _ => {}
        }
        if stopping {
            return;
        }
        std::thread::sleep(tick);
        since += tick;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;
    use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};
    use std::sync::Mutex;

    fn slot(size: u64, bytes: u64, state: State) -> Slot {
        Slot {
            digest: Digest::of(b"x"),
            size,
            state: AtomicU8::new(state as u8),
            bytes: AtomicU64::new(bytes),
            segments: AtomicU32::new(4),
            began_ms: AtomicU64::new(0),
            ended_ms: AtomicU64::new(0),
            reason: Mutex::new("HTTP 503, in 1.0 s".into()),
        }
    }

    #[test]
    fn lines_fit_every_width() {
        for state in [
            State::Queued,
            State::Downloading,
            State::Verifying,
            State::Done,
            State::Cached,
            State::Retrying,
        ] {
            for width in [1, 10, 20, 39, 60, 79, 200] {
                let line = blob_line(
                    &slot(2_000_000, 500_000, state),
                    1000,
                    width,
                    width % 2 == 0,
                );
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn wide_line_has_everything() {
        let line = blob_line(
            &slot(2_000_000, 500_000, State::Downloading),
            1000,
            120,
            false,
        );
        assert!(
            line.starts_with(&Digest::of(b"x").short().to_string()),
            "{line}"
        );
        assert!(line.contains("2.0 MB"), "{line}");
        assert!(line.contains("[##"), "{line}");
        assert!(line.contains(" 25%"), "{line}");
        assert!(line.contains("500.0 KB/s"), "{line}");
        assert!(line.ends_with("downloading, 4 segments"), "{line}");
        let narrow = blob_line(&slot(2_000_000, 500_000, State::Retrying), 1000, 40, false);
        assert!(narrow.contains("25% retrying"), "{narrow}");
        let up = blob_line(
            &slot(2_000_000, 500_000, State::Downloading),
            1000,
            120,
            true,
        );
        assert!(up.ends_with("uploading"), "{up}");
    }
}
