//! What differs between operating systems, in one place (as the standard
//! library's `sys` does): the rest of the program calls these functions
//! and never tests `cfg(unix)` or `cfg(windows)` itself. Each function has
//! a Unix side (`unix.rs`, which declares the few C library calls it makes)
//! and a Windows side (`windows.rs`, on `windows-sys`).
//!
//! Takes in: open files, paths, the process's console. Gives out: the same
//! behaviour on both (or, where Windows has no equivalent, a documented
//! no-op). Never: decides what to fetch, formats anything for a person.
//!
//! | need | Unix | Windows |
//! |---|---|---|
//! | positioned I/O | `pread`/`pwrite` (`FileExt`) | `seek_read`/`seek_write` |
//! | is this open file still the one at this path | device + inode | volume serial + file index |
//! | owner-only new file | mode 0600 | a protected DACL granting the owner only |
//! | a cache folder, a cache file | mode 0700, 0600 | the ACL the profile folder passes down |
//! | opening a cache file | `O_NOFOLLOW`: never through a symbolic link | a reparse point is opened itself, then refused |
//! | whose is a cache folder | the user's (or root's), no one else may write in it (but a sticky one); 0700 made of 0755 | not checked (the profile folder's ACL) |
//! | is a process running | `kill(pid, 0)` | `OpenProcess` and its exit code |
//! | Ctrl-C | SIGINT and SIGTERM | the console control handler (Ctrl-C, Ctrl-Break) |
//! | terminal size | `ioctl(TIOCGWINSZ)` | the console screen buffer's window |
//! | early writeback | `sync_file_range(WRITE)` (Linux) | none: the final flush does it all |
//! | replace a file by a rename | `rename(2)` | a rename retried briefly while another process (an antivirus scan) holds the target |
//! | an output to write through, not replace | a named pipe, a character device (`/dev/null`) | `NUL`, `CON`, `\\.\pipe\NAME` (by name; other devices are not recognised) |
//! | escape sequences on the terminal | always | turned on (virtual terminal processing) where the console can |
//! | default cache | `$XDG_CACHE_HOME/pulltar`, `~/.cache/pulltar` | `%LOCALAPPDATA%\pulltar` |
//! | home (for `.docker/config.json`) | `$HOME` | `%USERPROFILE%` |
//! | system CA certificates | the bundle files (`/etc/ssl/certs/…`), which `tls.rs` reads | the `ROOT` store (with Group Policy and enterprise roots) |
//! | started from a file manager (a console of its own) | never | the console has no other process |
//! | the machine's architecture | the program's | the machine's (an x86_64 exe runs emulated on ARM Windows) |

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// Reads into `buf` from `offset` of `file` (fewer bytes at the end of
/// the file, 0 past it). Safe to call from several threads on one `File`;
/// on Windows it moves the file's cursor, which no caller relies on.
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    imp::read_at(file, buf, offset)
}

/// Fills `buf` from `offset` of `file`; an error if the file ends first
/// (see [`read_at`]).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let len = buf.len();
    all_at(len, io::ErrorKind::UnexpectedEof, |done| {
        imp::read_at(file, &mut buf[done..], offset + done as u64)
    })
}

/// Writes all of `buf` at `offset` of `file` (see [`read_at`]).
pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    all_at(buf.len(), io::ErrorKind::WriteZero, |done| {
        imp::write_at(file, &buf[done..], offset + done as u64)
    })
}

/// Calls `step` with the bytes done so far until `len` are done; a step
/// that does nothing is an error of kind `short`, an interrupted one is
/// tried again.
fn all_at(
    len: usize,
    short: io::ErrorKind,
    mut step: impl FnMut(usize) -> io::Result<usize>,
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        match step(done) {
            Ok(0) => return Err(short.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `file` is the file that `path` names now (it may have been
/// removed or replaced since it was opened). A path that cannot be opened
/// or examined is not the same file.
pub fn is_same_file(file: &File, path: &Path) -> bool {
    imp::is_same_file(file, path).unwrap_or(false)
}

/// Opens `path` for appending, creating it readable and writable by its
/// owner only (an existing file keeps its permissions).
pub fn open_private_append(path: &Path) -> io::Result<File> {
    imp::open_private_append(path)
}

/// Creates the folder `path` (not its parents), which must not exist yet,
/// entered by its owner only (0700 on Unix; on Windows it inherits the
/// ACL of its parent, in the user's profile).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    imp::private_dirs().create(path)
}

/// Creates `path` and any missing parents as [`create_private_dir`] does;
/// folders that exist are left as they are.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    imp::private_dirs().recursive(true).create(path)
}

/// Opens `path` with `options`, never through a symbolic link at its last
/// component (nor, on Windows, any reparse point): a link there is an
/// error, and the file it points to is not touched (not even truncated).
/// A file it creates is readable and writable by its owner only (0600 on
/// Unix; on Windows it inherits the folder's ACL).
pub fn open_private(path: &Path, options: &OpenOptions) -> io::Result<File> {
    imp::open_private(path, options)
}

/// Whether `path` is a symbolic link itself (what [`open_private`] refuses).
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Makes sure the folder `dir` may hold private files, as ssh does for
/// `~/.ssh`: on Unix an error (PermissionDenied, saying why) when it
/// belongs to another user than this one and root, or when someone else
/// may write in it. A folder the program made itself (`ours`) that others
/// may read or enter is made 0700, and true returned; one the user chose
/// is never changed, and may be a sticky folder all may write in (`/tmp`,
/// a tmpfs), where no one else may remove or rename what is made in it.
/// Always fine on Windows, where the folder's ACL comes from the user's
/// profile.
pub fn keep_dir_private(dir: &Path, ours: bool) -> io::Result<bool> {
    imp::keep_dir_private(dir, ours)
}

/// Whether a process `pid` is running now (any process: the number may
/// have been given to another since).
pub fn process_exists(pid: u32) -> bool {
    imp::process_exists(pid)
}

/// From now on the first Ctrl-C (or SIGINT or SIGTERM on Unix) sets
/// `flag` and nothing else; the next one ends the process the system's
/// default way. A Ctrl-C the process was started ignoring (a background
/// job, `nohup`, a Windows process group started without Ctrl-C) stays
/// ignored.
pub fn catch_interrupts(flag: &'static AtomicBool) {
    imp::catch_interrupts(flag)
}

/// Columns and rows of the terminal on standard error, if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    imp::terminal_size()
}

/// Turns the echo of the terminal on standard input off (`false`) or
/// back on, for a password prompt; whether it could (standard input is a
/// terminal).
pub fn set_input_echo(on: bool) -> bool {
    imp::set_input_echo(on)
}

/// Asks the system to start writing `file`'s dirty pages to disk without
/// waiting for them. An error (Unsupported where there is no such call)
/// means: stop asking.
pub fn start_writeback(file: &File) -> io::Result<()> {
    imp::start_writeback(file)
}

/// Renames `from` to `to`, replacing `to` if it exists, atomically. On
/// Windows another process that has `to` open (an antivirus scan, an
/// indexer, a viewer) makes the rename fail for a moment: it is retried
/// for up to about [`REPLACE_PATIENCE_MS`] milliseconds.
pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    imp::replace(from, to)
}

/// How long [`replace`] keeps retrying on Windows, in milliseconds.
pub const REPLACE_PATIENCE_MS: u64 = 5_000;

/// Whether escape sequences (cursor moves, line clears) written to
/// standard error are interpreted, turning that on where the console
/// allows it (Windows 10 and later). Call it only when standard error is
/// a terminal; when it answers false, print plain lines.
pub fn enable_escape_sequences() -> bool {
    imp::enable_escape_sequences()
}

/// The default cache directory: `$XDG_CACHE_HOME/pulltar`, else
/// `~/.cache/pulltar` on Unix; `%LOCALAPPDATA%\pulltar` on Windows.
pub fn default_cache_dir() -> Option<PathBuf> {
    imp::default_cache_dir()
}

/// The variables [`default_cache_dir`] reads, for a message saying what
/// to set when none is.
pub const CACHE_DIR_VARIABLES: &str = imp::CACHE_DIR_VARIABLES;

/// The user's home directory (where `.docker/config.json` lives):
/// `$HOME` on Unix, `%USERPROFILE%` on Windows.
pub fn home_dir() -> Option<PathBuf> {
    imp::home_dir()
}

/// The files where the system keeps the certificate authorities it
/// trusts, as PEM bundles, in the order the common Linux distributions
/// (Debian, Red Hat, SUSE, Alpine and others) keep them; none on
/// Windows, whose store [`system_root_certificates`] reads.
pub const CA_BUNDLES: &[&str] = imp::CA_BUNDLES;

/// The certificate authorities the system trusts for TLS servers, each
/// as DER, from the system's certificate store where it has one
/// (Windows); empty on Unix, where `tls.rs` reads [`CA_BUNDLES`].
pub fn system_root_certificates() -> Vec<Vec<u8>> {
    imp::system_root_certificates()
}

/// Whether [`system_root_certificates`] is all the system trusts. Windows
/// fetches many roots from Windows Update the first time a server needs
/// one, so its store alone can miss public roots: the bundled ones must
/// join it there.
pub const SYSTEM_ROOTS_COMPLETE: bool = imp::SYSTEM_ROOTS_COMPLETE;

/// Whether the program was started in a console of its own (on Windows,
/// by a double-click in Explorer: the window closes when the program
/// ends, so it should wait for Enter before it does). Never on Unix.
pub fn owns_console_alone() -> bool {
    imp::owns_console_alone()
}

/// The machine's architecture, in Rust's names (`x86_64`, `aarch64`, …):
/// the program's own on Unix; on Windows the machine's, which differs
/// when ARM Windows runs an x86_64 exe under emulation.
pub fn machine_arch() -> &'static str {
    imp::machine_arch()
}

/// An environment variable, unless unset or empty.
fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

// The archive's output (`-o`): what a path names, and a pipe or device
// opened to write the archive through.

/// What a path names, links followed, for the archive's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// Nothing: neither the path nor the target of the link it is exists.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A named pipe or a character device (`/dev/null`, a terminal), to
    /// write through and never replace. On Windows, by name: `NUL` and
    /// `CON` (any case, in any folder) and the named pipes `\\.\pipe\NAME`.
    Through,
    /// Anything else (a socket, a block device), as a message names it.
    Other(&'static str),
}

/// What `path` names (see [`Node`]); an error when it cannot be examined
/// (a loop of links, no permission).
pub fn node_at(path: &Path) -> io::Result<Node> {
    if imp::is_device_name(path) {
        return Ok(Node::Through);
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Node::Missing),
        Err(e) => Err(e),
        Ok(m) if m.is_file() => Ok(Node::File),
        Ok(m) if m.is_dir() => Ok(Node::Dir),
        Ok(m) => Ok(imp::special(&m.file_type())),
    }
}

/// Opens the pipe or device at `path` for writing (a named pipe: once a
/// reader has opened it, waiting until then), nothing created or
/// truncated. Whatever else is there now (a file put there since it was
/// examined) is an error, and left as it is.
pub fn open_through(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    match imp::is_through(&file)? {
        true => Ok(file),
        false => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a named pipe or a device (any more)",
        )),
    }
}

#[cfg(test)]
mod tests;
