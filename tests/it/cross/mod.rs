//! The release binaries run as a user would: the static Linux one in an
//! empty root and the aarch64 one under qemu (`linux`), and the Windows
//! exe under Wine (`windows`; on a console: `windows_console`; its files,
//! credentials and names: `windows_files`). The runners are in
//! `support/` (`targets`, `wine`, `wine_procs`).

mod linux;
mod windows;
mod windows_console;
mod windows_files;
