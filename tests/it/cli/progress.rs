//! The progress display. Under a real pseudo-terminal (`script` from
//! bsdutils, narrowed with `stty cols`), the bytes pulltar wrote are played
//! through a minimal terminal (carriage return, newline, cursor up, clear
//! to end of line and of screen) and the final screen is checked line by
//! line: one line per blob, a total line, the summary; no bar line ever
//! wraps, and frames were redrawn in place while bytes flowed. Without a
//! terminal: no escape byte at all, one line per blob, a periodic summary
//! line, the final summary; `-q` prints nothing.

use crate::support::fault_case::Case;
use crate::support::faultproxy::{Fault, Rule};
use crate::support::util::{hex_of, pulltar_env, require_tool, run, PULLTAR};
use std::process::Command;
use std::time::Duration;

/// The screen after playing `bytes`: its lines, and the rows on which a
/// line ran past `width` (and wrapped).
pub fn play(bytes: &[u8], width: usize) -> (Vec<String>, Vec<usize>) {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut r, mut c) = (0usize, 0usize);
    let mut wrapped = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let mut it = text.chars().peekable();
    while let Some(ch) = it.next() {
        match ch {
            '\r' => c = 0,
            '\n' => {
                r += 1;
                if rows.len() <= r {
                    rows.push(Vec::new());
                }
            }
            '\x1b' => {
                if it.peek() != Some(&'[') {
                    continue;
                }
                it.next();
                let mut arg = String::new();
                let fin = loop {
                    match it.next() {
                        Some(x) if ('\x40'..='\x7e').contains(&x) => break x,
                        Some(x) => arg.push(x),
                        None => break ' ',
                    }
                };
                let n: usize = arg.parse().unwrap_or(1);
                match fin {
                    'A' => r = r.saturating_sub(n),
                    'K' => rows[r].truncate(c),
                    'J' => {
                        rows[r].truncate(c);
                        rows.truncate(r + 1);
                    }
                    _ => {}
                }
            }
            ch if ch.is_control() => {}
            ch => {
                if c >= width {
                    wrapped.push(r);
                    c = 0;
                    r += 1;
                }
                while rows.len() <= r {
                    rows.push(Vec::new());
                }
                let row = &mut rows[r];
                while row.len() < c {
                    row.push(' ');
                }
                if c < row.len() {
                    row[c] = ch;
                } else {
                    row.push(ch);
                }
                c += 1;
            }
        }
    }
    let lines = rows
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .collect();
    (lines, wrapped)
}

#[test]
fn the_player_follows_cursor_moves() {
    let (lines, wrapped) = play(b"a\r\nb\r\nc\r\n\r\x1b[2AB2\x1b[K\r\nC\x1b[K\r\n\x1b[J", 10);
    assert_eq!(lines, vec!["a", "B2", "C", ""]);
    assert!(wrapped.is_empty());
    let (_, wrapped) = play(b"0123456789x", 10);
    assert_eq!(wrapped, vec![0]);
}

/// Three 1 MiB layers through a proxy sending 1 MB/s per connection: the
/// pull lasts a couple of seconds, so the display draws many frames.
fn slow_case() -> Case {
    let case = Case::big(3, 1 << 20);
    case.px.set_rate(1_000_000);
    case
}

#[test]
fn terminal_display_redraws_in_place_and_fits_a_narrow_terminal() {
    let script = require_tool("script", "bsdutils");
    let case = slow_case();
    // One failed request, whose warning must print whole above the bars.
    let blob = format!("/blobs/{}", case.img.layers[0].digest);
    case.px
        .add(Rule::new(&blob, Fault::Status(503, vec![])).times(1));
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let width = 60;
    let cmd = format!(
        "stty cols {width} rows 30; exec {PULLTAR} {} -o {} --cache-dir {} -t 2",
        case.reference(),
        case.out().display(),
        case.cache().display()
    );
    let mut c = Command::new(script);
    c.args(["-qfec", &cmd, "/dev/null"])
        .env_remove("RUST_LOG")
        .env("PULLTAR_RETRY_DELAY_MS", "300")
        .env("TERM", "xterm");
    let res = run(&mut c, Duration::from_secs(120));
    assert_eq!(res.code, 0, "pull under a pty failed:\n{res}");
    let raw = res.stdout.as_bytes();
    let (screen, wrapped) = play(raw, width);
    let shown = screen.join("\n");
    let pulled = screen
        .iter()
        .position(|l| l.starts_with("Pulled "))
        .unwrap_or_else(|| panic!("no summary on the screen:\n{shown}"));
    assert!(
        wrapped.iter().all(|&r| r >= pulled),
        "a progress line wrapped on a {width}-column terminal (rows {wrapped:?}):\n{shown}"
    );
    // Redrawn in place: many frames, each moving the cursor up over the
    // last one; while bytes flowed, blobs were shown downloading.
    let ups = res.stdout.matches("\x1b[5A").count();
    assert!(
        ups >= 3,
        "expected several in-place redraws, saw {ups}:\n{shown}"
    );
    assert!(
        res.stdout.contains("downloading"),
        "no frame showed a blob downloading:\n{:?}",
        res.stdout
    );
    // The final screen: the header, the retry warning, one line per blob
    // (config + 3 layers), all done, the total, the summary.
    let head = screen
        .iter()
        .position(|l| l.starts_with("Pulling "))
        .unwrap_or_else(|| panic!("no header:\n{shown}"));
    let short = &hex_of(&case.img.layers[0].digest)[..12];
    let warn = screen
        .iter()
        .position(|l| l.starts_with(&format!("warn: blob {short}: HTTP 503; retrying in")))
        .unwrap_or_else(|| panic!("no whole warning line:\n{shown}"));
    assert!(head < warn, "{shown}");
    let start = warn;
    let blobs: Vec<&String> = screen[start + 1..start + 5].iter().collect();
    let mut digests: Vec<&str> = case.img.layers.iter().map(|l| hex_of(&l.digest)).collect();
    digests.push(hex_of(&case.img.config_digest));
    for line in &blobs {
        assert!(
            digests.iter().any(|d| line.starts_with(&d[..12])),
            "not a blob line: {line:?}\n{shown}"
        );
        assert!(
            line.contains("100%") && line.ends_with("done"),
            "{line:?}\n{shown}"
        );
        assert!(line.chars().count() < width, "{line:?}");
    }
    let total = &screen[start + 5];
    assert!(
        total.starts_with("Total ") && total.contains("4/4 blobs"),
        "{total:?}\n{shown}"
    );
    assert_eq!(
        pulled,
        start + 6,
        "summary not right below the bars:\n{shown}"
    );
    assert!(
        screen.iter().any(|l| l.starts_with("Cache: 0/3 layers")),
        "{shown}"
    );
}

#[test]
fn without_a_terminal_there_are_plain_lines_and_no_escape_codes() {
    let case = slow_case();
    std::fs::create_dir_all(case.work.join("out")).unwrap();
    let (reference, out, cache) = (case.reference(), case.out(), case.cache());
    let args = [
        reference.as_str(),
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "-t",
        "2",
    ];
    let env = [("PULLTAR_PROGRESS_INTERVAL_MS", "300")];
    let res = pulltar_env(case.work.path(), &args, &env);
    assert_eq!(res.code, 0, "{res}");
    assert!(
        !res.stderr.contains('\x1b'),
        "escape codes in a pipe:\n{res}"
    );
    for i in 1..=4 {
        assert!(res.stderr.contains(&format!("[{i}/4] ")), "{res}");
    }
    assert!(
        res.stderr.contains("  ... Total ") && res.stderr.contains(" blobs "),
        "no periodic summary line:\n{res}"
    );
    let summary = res
        .stderr
        .lines()
        .find(|l| l.starts_with("Pulled "))
        .unwrap_or_else(|| panic!("no summary:\n{res}"));
    for part in [
        reference.as_str(),
        "(linux/amd64)",
        "sha256:",
        " downloaded (",
        out.to_str().unwrap(),
    ] {
        assert!(summary.contains(part), "{part:?} missing from {summary:?}");
    }
    assert!(res.stderr.contains("Cache: 0/3 layers, 0 B saved"), "{res}");
    // Quiet: nothing at all on success, and the cache hit needs no line.
    let mut quiet = args.to_vec();
    quiet.push("-q");
    let res = pulltar_env(case.work.path(), &quiet, &[]);
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(res.stderr, "", "-q printed something");
}

#[test]
fn retries_are_shown_with_their_reason() {
    let case = Case::big(1, 1 << 20);
    let blob = format!("/blobs/{}", case.img.layers[0].digest);
    case.px
        .add(Rule::new(&blob, Fault::Status(503, vec![])).times(1));
    let res = case.pull(&["--retries", "3"]);
    assert_eq!(res.code, 0, "{res}");
    let short = &hex_of(&case.img.layers[0].digest)[..12];
    assert!(
        res.stderr
            .contains(&format!("blob {short}: HTTP 503; retrying in")),
        "{res}"
    );
}
