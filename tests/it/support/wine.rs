//! The Windows exe under Wine: a fresh `WINEPREFIX` per test ([`Wine`]; a
//! hard-linked copy of one prefix made per Wine version and kept under
//! `target/`, since making one takes 10–15 s), with the stand-in for
//! `bcryptprimitives.dll` that Wine 8 lacks, and the small Windows helper
//! programs of `tests/wine/` (a file holder, a credential helper), all
//! built with MinGW once per test run. Paths are handed over as Windows
//! sees them ([`win_path`]: `Z:\tmp\…`).

use crate::support::targets::{binary, quiet_env, target_dir, Target};
use crate::support::util::{require_tool, run, run_with_input, Output, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `Z:\tmp\…` for a Unix path: how Wine maps `/` (drive `Z:`).
pub fn win_path(p: &Path) -> String {
    let unix = p.to_str().expect("a UTF-8 path");
    assert!(unix.starts_with('/'), "not absolute: {unix}");
    format!("Z:{}", unix.replace('/', "\\"))
}

/// A fresh Wine prefix for one test; its wineserver (and every Windows
/// process of the prefix) is stopped on drop.
pub struct Wine {
    prefix: TempDir,
    wine: PathBuf,
    wineserver: PathBuf,
}

impl Wine {
    pub fn new() -> Wine {
        let (wine, wineserver) = wine_tools();
        let template = template_prefix();
        let prefix = TempDir::new("wine");
        // Hard links for the 700 MB of DLLs (never written to), copies of
        // the registry files and timestamps Wine rewrites.
        let dest = prefix.join("p");
        let mut cp = Command::new("cp");
        cp.arg("-al").arg(&template).arg(&dest);
        run(&mut cp, Duration::from_secs(120)).ok("cp -al of the Wine prefix");
        for name in crate::support::util::list_dir(&template) {
            let from = template.join(&name);
            if from.is_file() {
                let to = dest.join(&name);
                std::fs::remove_file(&to).unwrap();
                std::fs::copy(&from, &to).unwrap();
            }
        }
        let system32 = dest.join("drive_c/windows/system32/bcryptprimitives.dll");
        std::fs::copy(standin_dll(), system32).unwrap();
        Wine {
            prefix,
            wine,
            wineserver,
        }
    }

    /// The prefix (`WINEPREFIX`).
    pub fn prefix(&self) -> PathBuf {
        self.prefix.join("p")
    }

    /// `%USERPROFILE%` of the prefix's user, on the host.
    pub fn user_profile(&self) -> PathBuf {
        let users = self.prefix().join("drive_c/users");
        let user = crate::support::util::list_dir(&users)
            .into_iter()
            .find(|u| u != "Public")
            .expect("a user in the Wine prefix");
        users.join(user)
    }

    /// Copies `exe` into the prefix's `C:\windows\system32`, where
    /// programs are found by name.
    pub fn install(&self, exe: &Path) {
        let name = exe.file_name().unwrap();
        let to = self.prefix().join("drive_c/windows/system32").join(name);
        std::fs::copy(exe, to).unwrap();
    }

    /// `%LOCALAPPDATA%` of the prefix's user, on the host.
    pub fn local_app_data(&self) -> PathBuf {
        self.user_profile().join("AppData/Local")
    }

    /// `wine <Windows pulltar>` in `cwd`, ready for arguments.
    pub fn pulltar(&self, cwd: &Path) -> Command {
        self.exe(&binary(Target::Windows), cwd)
    }

    /// `wine EXE` in `cwd`, in this prefix, ready for arguments.
    pub fn exe(&self, exe: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(&self.wine);
        cmd.arg(exe).current_dir(cwd);
        self.env(&mut cmd);
        cmd
    }

    /// Runs the exe with `args` in `cwd` (and `input` on stdin), bounded
    /// to 3 minutes.
    pub fn run(&self, cwd: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut cmd = self.pulltar(cwd);
        cmd.args(args);
        run_with_input(&mut cmd, input, Duration::from_secs(180))
    }

    fn env(&self, cmd: &mut Command) {
        quiet_env(cmd);
        cmd.env("WINEPREFIX", self.prefix())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    }
}

impl Wine {
    /// Ends the Wine server of this prefix (and every Windows process it
    /// runs); the next `wine` starts a new one.
    pub fn stop_server(&self) {
        // `wineserver -k` ends the server of this prefix only; -w waits
        // until it has gone.
        for flag in ["-k", "-w"] {
            let mut cmd = Command::new(&self.wineserver);
            cmd.arg(flag).env("WINEPREFIX", self.prefix());
            let _ = crate::support::util::run(&mut cmd, Duration::from_secs(30));
        }
    }

    /// Runs the exe as [`Wine::run`] does, with Windows' ROOT certificate
    /// store holding the CAs of `ca` (PEM) and nothing else. Wine fills
    /// that store from the host's bundle, once per Wine server: so the
    /// server is started afresh in a mount namespace where
    /// `/etc/ssl/certs/ca-certificates.crt` is `ca` (bind-mounted; nothing
    /// changes outside the namespace), and stopped after. Needs root.
    pub fn run_with_store_roots(&self, cwd: &Path, args: &[&str], ca: &Path) -> Output {
        let unshare = require_tool("unshare", "util-linux");
        let id = run(Command::new("id").arg("-u"), Duration::from_secs(10)).ok("id -u");
        assert_eq!(
            id.stdout.trim(),
            "0",
            "showing Wine a certificate store needs root, for a mount namespace (CI runs as root)"
        );
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        assert!(
            Path::new(bundle).is_file(),
            "no {bundle} to stand in for: apt-get install ca-certificates"
        );
        let inner = {
            let mut c = self.pulltar(cwd);
            c.args(args);
            c
        };
        let mut cmd = Command::new(unshare);
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind \"$1\" {bundle} && shift && exec \"$@\""
            ))
            .arg("sh")
            .arg(ca)
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(cwd);
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        self.stop_server();
        let out = run(&mut cmd, Duration::from_secs(180));
        self.stop_server();
        out
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        self.stop_server();
    }
}

fn wine_tools() -> (PathBuf, PathBuf) {
    let package = "--no-install-recommends wine64 wine";
    (
        require_tool("wine", package),
        require_tool("wineserver", package),
    )
}

/// A Wine prefix made once per Wine version, kept under `target/` (it is
/// only ever copied).
fn template_prefix() -> PathBuf {
    static TEMPLATE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match TEMPLATE.get_or_init(make_template) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn make_template() -> Result<PathBuf, String> {
    let (wine, wineserver) = wine_tools();
    let version = run(
        Command::new(&wine).arg("--version"),
        Duration::from_secs(30),
    );
    let version: String = version
        .stdout
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = target_dir().join("wine-prefix").join(&version);
    if dir.join("system.reg").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(dir.parent().unwrap()).map_err(|e| e.to_string())?;
    let temp = dir.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    let start = Instant::now();
    let boot = |program: &Path, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("WINEPREFIX", &temp)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
        run(&mut cmd, Duration::from_secs(300))
    };
    let out = boot(&wine, &["wineboot", "--init"]);
    let _ = boot(&wineserver, &["-w"]);
    if out.code != 0 || !temp.join("system.reg").is_file() {
        return Err(format!("wineboot could not make a Wine prefix:\n{out}"));
    }
    eprintln!("made a Wine prefix in {:.1?}", start.elapsed());
    if std::fs::rename(&temp, &dir).is_err() {
        // Another test run made it meanwhile.
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(dir)
}

/// `bcryptprimitives.dll` built from `tests/wine/` (once per test run).
fn standin_dll() -> PathBuf {
    static DLL: OnceLock<PathBuf> = OnceLock::new();
    DLL.get_or_init(|| {
        mingw(
            "bcryptprimitives.dll",
            &["bcryptprimitives.c", "bcryptprimitives.def"],
            &["-shared", "-static-libgcc", "-ladvapi32"],
        )
    })
    .clone()
}

/// `holdfile.exe` built from `tests/wine/` (once per test run): holds a
/// file open without letting anyone replace it until a line arrives.
pub fn holdfile_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| mingw("holdfile.exe", &["holdfile.c"], &["-municode"]))
        .clone()
}

/// `docker-credential-desktop.exe` built from `tests/wine/credhelper.c`
/// (once per test run): answers `get` with `PT_HELPER_USER` and
/// `PT_HELPER_SECRET`, as Docker Desktop's helper answers from its store.
pub fn credhelper_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| mingw("docker-credential-desktop.exe", &["credhelper.c"], &[]))
        .clone()
}

/// Builds `name` under `target/wine-standin/` from `sources` in
/// `tests/wine/` with the MinGW compiler and `flags`.
fn mingw(name: &str, sources: &[&str], flags: &[&str]) -> PathBuf {
    let gcc = require_tool("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wine");
    let dir = target_dir().join("wine-standin");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let temp = dir.join(format!("{}.{name}", std::process::id()));
    let mut cmd = Command::new(gcc);
    cmd.args(["-O2", "-s", "-o"]).arg(&temp);
    for s in sources {
        cmd.arg(src.join(s));
    }
    cmd.args(flags);
    run(&mut cmd, Duration::from_secs(120)).ok(&format!("building {name}"));
    std::fs::rename(&temp, &out).unwrap();
    out
}

/// Whether Windows accepts `name` as a file name: none of `<>:"/\|?*` or
/// the control characters, no trailing dot or space, not a device name
/// (`CON`, `NUL`, `COM1`, … even with an extension), at most 255 chars.
pub fn valid_on_ntfs(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    !name.is_empty()
        && name.chars().count() <= 255
        && !name.chars().any(|c| c < ' ' || "<>:\"/\\|?*".contains(c))
        && !name.ends_with(['.', ' '])
        && !device
}
