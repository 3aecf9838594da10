//! The Unix side of [`crate::sys`]: the standard library's Unix extensions
//! and a few C library calls declared here directly (`signal(2)`,
//! `ioctl(2)`, `geteuid(2)`, `kill(2)` and, on Linux,
//! `sync_file_range(2)`), the only foreign code in the program on Unix.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.read_at(buf, offset)
}

pub(super) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.write_at(buf, offset)
}

pub(super) fn is_same_file(file: &File, path: &Path) -> io::Result<bool> {
    let (a, b) = (file.metadata()?, std::fs::metadata(path)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

pub(super) fn open_private_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

pub(super) fn private_dirs() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    builder
}

/// `O_NOFOLLOW`, whose value differs between systems and architectures:
/// Linux's generic one, its ARM and PowerPC one, and the BSDs' and macOS's.
const O_NOFOLLOW: i32 = match (
    cfg!(any(target_os = "linux", target_os = "android")),
    ARM_PPC,
) {
    (true, false) => 0x20000,
    (true, true) => 0x8000,
    (false, _) => 0x100,
};
const ARM_PPC: bool = cfg!(any(
    target_arch = "arm",
    target_arch = "aarch64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "m68k"
));

pub(super) fn open_private(path: &Path, options: &OpenOptions) -> io::Result<File> {
    options
        .clone()
        .custom_flags(O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

extern "C" {
    fn geteuid() -> u32;
    fn kill(pid: i32, sig: i32) -> i32;
}

pub(super) fn keep_dir_private(dir: &Path, ours: bool) -> io::Result<bool> {
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { geteuid() };
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    if owner != me && owner != 0 {
        return refuse(format!("it belongs to another user (uid {owner})"));
    }
    // In a sticky folder (/tmp, a tmpfs) no one else may remove or rename
    // what pulltar makes there, and what it makes is checked in turn.
    let shared = !ours && mode & 0o1000 != 0;
    if !shared && (mode & 0o002 != 0 || (owner != me && mode & 0o020 != 0)) {
        return refuse(format!("other users may write in it (mode {mode:04o})"));
    }
    if !ours || owner != me || mode & 0o077 == 0 {
        return Ok(false);
    }
    // pulltar's own folder, open to its group or to everyone for reading:
    // made private (an older pulltar created it under the umask).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(true)
}

pub(super) fn process_exists(pid: u32) -> bool {
    const EPERM: i32 = 1;
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    pid > 0
        && (unsafe { kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(EPERM))
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

/// The flag the handler sets (null until `catch_interrupts`).
static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(signum: i32) {
    let flag = FLAG.load(Ordering::SeqCst);
    // SAFETY: FLAG only ever holds a `&'static AtomicBool` (or null).
    if let Some(flag) = unsafe { flag.as_ref() } {
        flag.store(true, Ordering::SeqCst);
    }
    // SAFETY: signal(2) is async-signal-safe; restoring the default
    // disposition makes a second Ctrl-C end the process at once.
    unsafe {
        signal(signum, SIG_DFL);
    }
}

pub(super) fn catch_interrupts(flag: &'static AtomicBool) {
    FLAG.store(
        flag as *const AtomicBool as *mut AtomicBool,
        Ordering::SeqCst,
    );
    let handler = on_signal as extern "C" fn(i32) as usize;
    for sig in [SIGINT, SIGTERM] {
        // SAFETY: the handler only stores to atomics and calls signal(2),
        // both async-signal-safe.
        unsafe {
            if signal(sig, handler) == SIG_IGN {
                signal(sig, SIG_IGN);
            }
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct Winsize {
    rows: u16,
    cols: u16,
    xpixel: u16,
    ypixel: u16,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const TIOCGWINSZ: std::ffi::c_ulong = 0x5413;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const TIOCGWINSZ: std::ffi::c_ulong = 0x4008_7468;

extern "C" {
    fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
}

pub(super) fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = Winsize::default();
    // SAFETY: TIOCGWINSZ writes one `struct winsize` (four u16) to the
    // pointer, which points to a live, correctly laid out value.
    let rc = unsafe { ioctl(2, TIOCGWINSZ, &mut ws as *mut Winsize) };
    (rc == 0 && ws.cols > 0).then_some((ws.cols, ws.rows))
}

extern "C" {
    fn tcgetattr(fd: i32, termios: *mut u8) -> i32;
    fn tcsetattr(fd: i32, action: i32, termios: *const u8) -> i32;
}

/// `struct termios`, held as words of `tcflag_t` (`c_lflag` is the
/// fourth: 32 bits on Linux, the C `unsigned long` on the BSDs and macOS),
/// with room to spare for the fields after it.
#[cfg(any(target_os = "linux", target_os = "android"))]
type TcFlag = u32;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
type TcFlag = std::ffi::c_ulong;

pub(super) fn set_input_echo(on: bool) -> bool {
    const ECHO: TcFlag = 0o10;
    let mut t = [0 as TcFlag; 64];
    // SAFETY: the buffer is larger than any `struct termios` and aligned
    // for its flags; tcgetattr fails on a descriptor that is not a tty.
    if unsafe { tcgetattr(0, t.as_mut_ptr().cast()) } != 0 {
        return false;
    }
    if on {
        t[3] |= ECHO;
    } else {
        t[3] &= !ECHO;
    }
    // SAFETY: the same buffer, filled by tcgetattr; TCSANOW is 0.
    unsafe { tcsetattr(0, 0, t.as_ptr().cast()) == 0 }
}

#[cfg(target_os = "linux")]
pub(super) fn start_writeback(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const SYNC_FILE_RANGE_WRITE: u32 = 2;
    extern "C" {
        fn sync_file_range(fd: i32, offset: i64, nbytes: i64, flags: u32) -> i32;
    }
    // SAFETY: a plain system call on a descriptor `file` keeps open.
    let r = unsafe { sync_file_range(file.as_raw_fd(), 0, 0, SYNC_FILE_RANGE_WRITE) };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn start_writeback(_file: &File) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

pub(super) fn replace(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

pub(super) fn enable_escape_sequences() -> bool {
    true
}

pub(super) fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = super::env_path("XDG_CACHE_HOME") {
        return Some(x.join("pulltar"));
    }
    home_dir().map(|h| h.join(".cache").join("pulltar"))
}

pub(super) const CACHE_DIR_VARIABLES: &str = "HOME or XDG_CACHE_HOME";

pub(super) fn home_dir() -> Option<PathBuf> {
    super::env_path("HOME")
}

pub(super) const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub(super) fn system_root_certificates() -> Vec<Vec<u8>> {
    Vec::new()
}

pub(super) const SYSTEM_ROOTS_COMPLETE: bool = true;

pub(super) fn owns_console_alone() -> bool {
    false
}

pub(super) fn machine_arch() -> &'static str {
    std::env::consts::ARCH
}

// The archive's output: pipes and devices.

pub(super) fn is_device_name(_path: &Path) -> bool {
    false
}

pub(super) fn special(t: &std::fs::FileType) -> super::Node {
    use super::Node;
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() || t.is_char_device() {
        Node::Through
    } else if t.is_socket() {
        Node::Other("a socket")
    } else if t.is_block_device() {
        Node::Other("a block device")
    } else {
        Node::Other("neither a file nor a directory")
    }
}

pub(super) fn is_through(file: &File) -> io::Result<bool> {
    Ok(special(&file.metadata()?.file_type()) == super::Node::Through)
}
