//! The Windows side of [`crate::sys`], on the standard library's Windows
//! extensions and `windows-sys` (the raw Win32 declarations, which the
//! Windows build links already through `env_logger`'s console colours).

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, LocalFree, ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION,
    ERROR_SHARING_VIOLATION, ERROR_STOPPED_ON_SYMLINK, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, FILE_APPEND_DATA,
    FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_ALWAYS, SYNCHRONIZE,
};
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetConsoleProcessList, GetConsoleScreenBufferInfo, GetStdHandle,
    SetConsoleCtrlHandler, SetConsoleMode, CONSOLE_SCREEN_BUFFER_INFO, CTRL_BREAK_EVENT,
    CTRL_C_EVENT, ENABLE_ECHO_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING, STD_ERROR_HANDLE,
    STD_INPUT_HANDLE,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, OpenProcess, OpenProcessToken,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

mod certs;
pub(super) use certs::{system_root_certificates, CA_BUNDLES, SYSTEM_ROOTS_COMPLETE};

pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.seek_read(buf, offset)
}

pub(super) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.seek_write(buf, offset)
}

/// A NUL-terminated UTF-16 copy of `s`, for the `W` functions.
fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(Some(0)).collect()
}

/// Volume serial number and file index: what identifies a file.
fn file_id(file: &File) -> io::Result<(u32, u64)> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for as long as `file` lives, and `info`
    // is a live struct of the type the call fills.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    Ok((info.dwVolumeSerialNumber, index))
}

pub(super) fn is_same_file(file: &File, path: &Path) -> io::Result<bool> {
    // std opens with FILE_SHARE_READ | WRITE | DELETE: this open disturbs
    // no other holder of the file. A file being deleted cannot be opened
    // (access denied): not the same file any more.
    let other = File::open(path)?;
    Ok(file_id(file)? == file_id(&other)?)
}

/// The current user's SID as text (`S-1-5-21-…`).
fn user_sid() -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process needs no closing; the
    // token handle it gives is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // A TOKEN_USER and the SID it points to: u64 words for alignment.
    let mut buf = [0u64; 64];
    let mut size = 0u32;
    // SAFETY: `buf` has the size given; the call fills a TOKEN_USER.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buf.as_mut_ptr().cast(),
            std::mem::size_of_val(&buf) as u32,
            &mut size,
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: the token opened above.
    unsafe { CloseHandle(token) };
    if ok == 0 {
        return Err(error);
    }
    // SAFETY: filled by GetTokenInformation.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` points into `buf`; the string is LocalAlloc'ed.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated string from the call above, freed after.
    let s = unsafe {
        let len = (0..4096).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        s
    };
    Ok(s)
}

pub(super) fn open_private_append(path: &Path) -> io::Result<File> {
    // A protected DACL (not inherited from the directory) that grants
    // full control to this user and to no one else, like mode 0600.
    let sddl = wide(OsStr::new(&format!("D:P(A;;FA;;;{})", user_sid()?)));
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: `sddl` is NUL-terminated; the call allocates the descriptor
    // with LocalAlloc and stores it in `descriptor`, freed below.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor,
        bInheritHandle: 0,
    };
    let name = wide(path.as_os_str());
    // SAFETY: `name` is NUL-terminated, `attributes` and the descriptor
    // it points to live until after the call.
    let handle = unsafe {
        CreateFileW(
            name.as_ptr(),
            FILE_APPEND_DATA | SYNCHRONIZE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            OPEN_ALWAYS,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: allocated by the conversion above, used by no one now.
    unsafe { LocalFree(descriptor) };
    if handle == INVALID_HANDLE_VALUE {
        return Err(error);
    }
    // SAFETY: a handle just opened, owned by nothing else.
    Ok(unsafe { File::from_raw_handle(handle as _) })
}

pub(super) fn private_dirs() -> DirBuilder {
    // A new folder inherits its parent's ACL: under %LOCALAPPDATA% or
    // %TEMP%, the user's own.
    DirBuilder::new()
}

pub(super) fn open_private(path: &Path, options: &OpenOptions) -> io::Result<File> {
    // Opens a reparse point itself rather than what it points to, then
    // refuses a link (a symbolic link, a junction): nothing is read,
    // written or truncated through it. Another reparse point (a file of a
    // deduplicated volume, a cloud placeholder) is no link: opened again
    // the ordinary way. A new file inherits the folder's ACL.
    let file = options
        .clone()
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
        return Ok(file);
    }
    if meta.file_type().is_symlink() {
        let link = ERROR_STOPPED_ON_SYMLINK as i32;
        return Err(io::Error::from_raw_os_error(link));
    }
    drop(file);
    options.open(path)
}

pub(super) fn keep_dir_private(_dir: &Path, _ours: bool) -> io::Result<bool> {
    // Not checked: the folder's ACL, inherited from the user's profile,
    // is the user's own unless someone changed it on purpose.
    Ok(false)
}

pub(super) fn process_exists(pid: u32) -> bool {
    // SAFETY: plain calls; the handle opened is closed before returning.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            // Another user's process exists but may not be opened.
            return GetLastError() == ERROR_ACCESS_DENIED;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        ok != 0 && code == STILL_ACTIVE as u32
    }
}

/// The flag the handler sets (null until `catch_interrupts`).
static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

/// Runs on a thread the system starts. TRUE: handled; FALSE: the next
/// handler, in the end the default one, which ends the process.
unsafe extern "system" fn on_control(kind: u32) -> BOOL {
    if kind != CTRL_C_EVENT && kind != CTRL_BREAK_EVENT {
        return 0;
    }
    // SAFETY: FLAG only ever holds a `&'static AtomicBool` (or null).
    let Some(flag) = (unsafe { FLAG.load(Ordering::SeqCst).as_ref() }) else {
        return 0;
    };
    // The second Ctrl-C goes to the default handler.
    match flag.swap(true, Ordering::SeqCst) {
        false => 1,
        true => 0,
    }
}

pub(super) fn catch_interrupts(flag: &'static AtomicBool) {
    FLAG.store(
        flag as *const AtomicBool as *mut AtomicBool,
        Ordering::SeqCst,
    );
    // SAFETY: registers a function that only touches atomics. A process
    // started with Ctrl-C disabled keeps it disabled: the system does not
    // call handlers for Ctrl-C then.
    unsafe { SetConsoleCtrlHandler(Some(on_control), 1) };
}

fn stderr_handle() -> HANDLE {
    // SAFETY: no arguments to get wrong; the handle is not owned by us.
    unsafe { GetStdHandle(STD_ERROR_HANDLE) }
}

pub(super) fn terminal_size() -> Option<(u16, u16)> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: CONSOLE_SCREEN_BUFFER_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live struct of the type the call fills; a
    // handle that is not a console makes the call fail.
    let ok = unsafe { GetConsoleScreenBufferInfo(stderr_handle(), &mut info) };
    let window = info.srWindow;
    let cols = i32::from(window.Right) - i32::from(window.Left) + 1;
    let rows = i32::from(window.Bottom) - i32::from(window.Top) + 1;
    (ok != 0 && cols > 0 && rows > 0).then_some((cols as u16, rows as u16))
}

pub(super) fn set_input_echo(on: bool) -> bool {
    // SAFETY: GetStdHandle takes a constant; a handle that is not a
    // console makes GetConsoleMode fail, and nothing is changed.
    let input = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
    let mut mode = 0u32;
    // SAFETY: `mode` is a live u32 the call fills.
    if unsafe { GetConsoleMode(input, &mut mode) } == 0 {
        return false;
    }
    let mode = if on {
        mode | ENABLE_ECHO_INPUT
    } else {
        mode & !ENABLE_ECHO_INPUT
    };
    // SAFETY: the console handle checked above and a mode it reported.
    unsafe { SetConsoleMode(input, mode) != 0 }
}

pub(super) fn start_writeback(_file: &File) -> io::Result<()> {
    // Windows has no "start writing back, do not wait" call; the cache
    // manager writes lazily and the final flush does the rest.
    Err(io::ErrorKind::Unsupported.into())
}

pub(super) fn replace(from: &Path, to: &Path) -> io::Result<()> {
    let mut waited = 0u64;
    let mut pause = 10u64;
    loop {
        match std::fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if held_by_another(&e) && waited < super::REPLACE_PATIENCE_MS => {
                std::thread::sleep(Duration::from_millis(pause));
                waited += pause;
                pause = (pause * 2).min(500);
            }
            Err(e) if held_by_another(&e) => {
                let why = format!(
                    "{e}; another program may have it open (tried for {} s)",
                    waited / 1000
                );
                return Err(io::Error::new(e.kind(), why));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The errors of a file that another process has open without sharing.
fn held_by_another(e: &io::Error) -> bool {
    let held = [
        ERROR_ACCESS_DENIED,
        ERROR_SHARING_VIOLATION,
        ERROR_LOCK_VIOLATION,
    ];
    e.raw_os_error()
        .is_some_and(|c| held.iter().any(|&h| h as i32 == c))
}

pub(super) fn enable_escape_sequences() -> bool {
    let handle = stderr_handle();
    let mut mode = 0;
    // SAFETY: `mode` is a live u32; a handle that is not a console makes
    // the calls fail.
    unsafe {
        if GetConsoleMode(handle, &mut mode) == 0 {
            return false;
        }
        mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
            || SetConsoleMode(handle, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
    }
}

pub(super) fn default_cache_dir() -> Option<PathBuf> {
    let local = super::env_path("LOCALAPPDATA")
        .or_else(|| home_dir().map(|h| h.join("AppData").join("Local")))?;
    Some(local.join("pulltar"))
}

pub(super) const CACHE_DIR_VARIABLES: &str = "LOCALAPPDATA or USERPROFILE";

pub(super) fn home_dir() -> Option<PathBuf> {
    super::env_path("USERPROFILE")
}

pub(super) fn owns_console_alone() -> bool {
    let mut pids = [0u32; 2];
    // SAFETY: the buffer holds the 2 entries it is said to.
    let n = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), 2) };
    n == 1
}

/// `IsWow64Process2` (Windows 10 1511 and later): the machine a process
/// runs as, and the machine underneath.
type IsWow64Process2 = unsafe extern "system" fn(HANDLE, *mut u16, *mut u16) -> BOOL;

pub(super) fn machine_arch() -> &'static str {
    // Looked up when called, not imported, so the exe still starts on a
    // Windows 10 without it (then the build's own architecture it is).
    let kernel32 = wide(OsStr::new("kernel32.dll"));
    // SAFETY: kernel32 is loaded in every process; the name is
    // NUL-terminated; the function has the documented signature.
    let native = unsafe {
        let module = GetModuleHandleW(kernel32.as_ptr());
        let found = match module.is_null() {
            true => None,
            false => GetProcAddress(module, c"IsWow64Process2".as_ptr().cast()),
        };
        found.and_then(|f| {
            let f: IsWow64Process2 = std::mem::transmute(f);
            let (mut process, mut native) = (0u16, 0u16);
            (f(GetCurrentProcess(), &mut process, &mut native) != 0).then_some(native)
        })
    };
    // IMAGE_FILE_MACHINE_AMD64, _ARM64, _I386, _ARMNT.
    match native {
        Some(0x8664) => "x86_64",
        Some(0xAA64) => "aarch64",
        Some(0x014C) => "x86",
        Some(0x01C4) => "arm",
        _ => std::env::consts::ARCH,
    }
}

// The archive's output: pipes and devices.

/// `NUL` or `CON` as the last part (any case, any folder: both name the
/// device everywhere), or a named pipe `\\.\pipe\NAME`.
pub(super) fn is_device_name(path: &Path) -> bool {
    let text = path.as_os_str().to_string_lossy().to_ascii_lowercase();
    let last = text.rsplit(['\\', '/']).next().unwrap_or("");
    let last = last.strip_suffix(':').unwrap_or(last);
    matches!(last, "nul" | "con")
        || text.starts_with(r"\\.\pipe\")
        || text.starts_with(r"\\?\pipe\")
}

pub(super) fn special(_t: &std::fs::FileType) -> super::Node {
    super::Node::Other("neither a file nor a folder")
}

pub(super) fn is_through(file: &File) -> io::Result<bool> {
    use windows_sys::Win32::Storage::FileSystem::{GetFileType, FILE_TYPE_CHAR, FILE_TYPE_PIPE};
    // SAFETY: the handle is open for as long as `file` lives.
    let t = unsafe { GetFileType(file.as_raw_handle() as HANDLE) };
    Ok(t == FILE_TYPE_CHAR || t == FILE_TYPE_PIPE)
}
