//! Double-click use: started with no arguments and a terminal on standard
//! input (on Windows, typically from Explorer, in a console window of its
//! own), pulltar asks for the image, the platform (its default shown) and
//! where to save the archive (the current folder by default), then pulls
//! as `pulltar IMAGE --platform P -o WHERE` would. A window that closes
//! when the program ends waits for Enter first ([`hold_window`]), so the
//! result or the error can be read.
//!
//! It never asks when any argument is given or standard input is not a
//! terminal (a script, a pipe, CI): those get the usual usage error. Each
//! question is asked at most [`TRIES`] times; an end of input is a usage
//! error.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::args::{usage, Args};
use crate::cli::commands::{self, Command};
use crate::cli::targets::output_path;
use crate::error::{Error, Result};
use crate::image::platform::Platform;
use crate::image::reference::Reference;

/// How many times a question is asked before giving up.
pub const TRIES: usize = 5;

/// Set once the questions were asked (see [`hold_window`]).
static ASKED: AtomicBool = AtomicBool::new(false);

/// Whether to ask: no argument at all, and a terminal on standard input.
pub fn wanted(raw: &[OsString]) -> bool {
    raw.is_empty() && std::io::stdin().is_terminal()
}

/// Asks the questions on the terminal and runs the pull they describe.
pub fn run() -> Result<()> {
    ASKED.store(true, Ordering::SeqCst);
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("find the current directory", ".", e))?;
    let args = questions(
        &mut std::io::stdin().lock(),
        &mut std::io::stderr(),
        &cwd,
        &Platform::host(),
    )?;
    commands::run(Command::Pull(Box::new(args)))
}

/// Before the process exits: if the questions were asked in a console
/// window that closes with the program (Windows, started from Explorer),
/// waits for Enter.
pub fn hold_window() {
    if ASKED.load(Ordering::SeqCst) && crate::sys::owns_console_alone() {
        eprint!("\nPress Enter to close this window.");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
}

/// The pull's arguments from the answers read from `input` (the questions
/// go to `out`); `cwd` is the default folder, `host` the default platform.
pub fn questions(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    cwd: &Path,
    host: &Platform,
) -> Result<Args> {
    let _ = writeln!(
        out,
        "pulltar {}: pulls a container image into one .tar file that docker load,\n\
         podman load, skopeo and containerd accept. (pulltar --help lists every option.)\n",
        env!("CARGO_PKG_VERSION")
    );
    let reference = ask(input, out, "Image (for example nginx:1.25): ", |a| {
        Reference::parse(a).map_err(|e| e.to_string())
    })?;
    let question = format!("Platform [{host}]: ");
    let platform = ask(input, out, &question, |a| match a {
        "" => Ok(None),
        a => Platform::parse_arch(a).map(Some),
    })?;
    let question = format!("Save in [{}]: ", cwd.display());
    let output = ask(input, out, &question, |a| {
        let a = unquote(a);
        let chosen = match a {
            "" => cwd.to_path_buf(),
            a => PathBuf::from(a),
        };
        output_path(Some(&chosen), &reference, cwd, false)
            .map(|_| chosen)
            .map_err(|e| e.to_string())
    })?;
    let _ = writeln!(out);
    Ok(Args {
        images: vec![reference.original().to_string()],
        platform: platform.map(|p| p.to_string()),
        output: Some(output),
        ..Args::default()
    })
}

/// Asks `question` until `check` accepts the answer (trimmed), at most
/// [`TRIES`] times.
fn ask<T>(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    question: &str,
    check: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<T> {
    let mut last = String::new();
    for _ in 0..TRIES {
        let _ = write!(out, "{question}");
        let _ = out.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return Err(usage("no answer (end of input)")),
            Ok(_) => {}
            Err(e) => return Err(usage(format!("cannot read the answer: {e}"))),
        }
        match check(line.trim()) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let _ = writeln!(out, "  {e}");
                last = e;
            }
        }
    }
    Err(usage(format!(
        "no usable answer after {TRIES} tries: {last}"
    )))
}

/// A path as Explorer's "Copy as path" gives it, without the quotes.
fn unquote(a: &str) -> &str {
    a.strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(text: &str) -> (Result<Args>, String) {
        let mut out = Vec::new();
        let host = Platform::parse("linux/amd64").unwrap();
        let r = questions(&mut text.as_bytes(), &mut out, Path::new("/tmp"), &host);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn defaults_for_empty_answers() {
        let (a, shown) = answers("alpine:3.20\n\n\n");
        let a = a.unwrap();
        assert_eq!(a.images, ["alpine:3.20"]);
        assert_eq!(a.platform, None);
        assert_eq!(a.output.as_deref(), Some(Path::new("/tmp")));
        assert!(shown.contains("Platform [linux/amd64]: "), "{shown}");
        assert!(shown.contains("Save in [/tmp]: "), "{shown}");
    }

    #[test]
    fn a_wrong_answer_is_asked_again() {
        let (a, shown) = answers("Not An Image\nnginx\narm64\n/no/such/dir/x.tar\n\"/tmp\"\n");
        let a = a.unwrap();
        assert_eq!(a.images, ["nginx"]);
        assert_eq!(a.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(a.output.as_deref(), Some(Path::new("/tmp")));
        assert_eq!(shown.matches("Image (").count(), 2, "{shown}");
        assert_eq!(shown.matches("Save in [").count(), 2, "{shown}");
        let (a, _) = answers("nginx\nlinux/arm/v7\n\r\n");
        assert_eq!(a.unwrap().platform.as_deref(), Some("linux/arm/v7"));
    }

    #[test]
    fn no_answer_or_only_wrong_ones_is_a_usage_error() {
        for text in ["", "nginx\n", &"BAD\n".repeat(TRIES), "nginx\nlinux/\n"] {
            let (a, _) = answers(text);
            let e = a.err().unwrap_or_else(|| panic!("{text:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{text:?}: {e}");
        }
    }
}
