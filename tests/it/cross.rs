//! The release binaries, run for real: each target's pulltar is built once
//! per test run (`cargo build --release --locked --target T`, the build
//! `scripts/release` makes, settings from `.cargo/config.toml`), or taken
//! from `PULLTAR_BIN_<TRIPLE>` (say `PULLTAR_BIN_X86_64_PC_WINDOWS_GNU` =
//! a file from `dist/`). Three runners:
//!
//! - [`EmptyRoot`]: the static x86_64 binary alone in a directory it is
//!   `chroot`ed into, with an empty environment: no `/etc`, no libraries,
//!   no certificates, no `/tmp`;
//! - [`qemu`]: the aarch64 binary under `qemu-aarch64-static`;
//! - [`Wine`]: the Windows exe under Wine, in a fresh `WINEPREFIX` per
//!   test (a hard-linked copy of one prefix made per Wine version and kept
//!   under `target/`, since making one takes 10–15 s), with the stand-in
//!   for `bcryptprimitives.dll` from `tests/wine/` that Wine 8 lacks.
//!
//! A missing target, cross compiler or runner fails the test with what to
//! install (`scripts/test` installs it all).

use crate::containerd::Containerd;
use crate::dockerd::Dockerd;
use crate::images::Image;
use crate::loaders::verify_everywhere;
use crate::util::{require_tool, run, run_with_input, Output, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A release target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    StaticX86_64,
    Aarch64,
    Windows,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::StaticX86_64 => "x86_64-unknown-linux-musl",
            Target::Aarch64 => "aarch64-unknown-linux-musl",
            Target::Windows => "x86_64-pc-windows-gnu",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Target::Windows => "pulltar.exe",
            _ => "pulltar",
        }
    }

    /// The C compiler (and linker) the target needs, and its package.
    fn compiler(self) -> (&'static str, &'static str) {
        match self {
            Target::StaticX86_64 => ("musl-gcc", "musl-tools"),
            Target::Aarch64 => ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
            Target::Windows => ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
        }
    }

    /// The variable naming a ready binary instead of building one.
    fn override_var(self) -> String {
        let t = self.triple().to_uppercase().replace('-', "_");
        format!("PULLTAR_BIN_{t}")
    }
}

/// The `target/` directory this test binary was built in.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/it-<hash>
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The pulltar binary for `t`, built at most once per test run (the
/// first test that needs it waits for the build; a failure is reported
/// to every test that needs the target).
pub fn binary(t: Target) -> PathBuf {
    static BUILT: [OnceLock<Result<PathBuf, String>>; 3] = [const { OnceLock::new() }; 3];
    let cell = &BUILT[t as usize];
    match cell.get_or_init(|| build(t)) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn build(t: Target) -> Result<PathBuf, String> {
    let triple = t.triple();
    if let Some(p) = std::env::var_os(t.override_var()) {
        let p = PathBuf::from(p);
        return match p.is_file() {
            true => Ok(p),
            false => Err(format!(
                "{} = {}: no such file",
                t.override_var(),
                p.display()
            )),
        };
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", triple])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = String::from_utf8_lossy(&libdir.stdout).trim().to_string();
    if libdir.is_empty() || !Path::new(&libdir).is_dir() {
        return Err(format!(
            "the Rust standard library for {triple} is not installed: run \
             `rustup target add {triple}` (scripts/test does)"
        ));
    }
    let (cc, package) = t.compiler();
    require_tool(cc, package);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--locked", "--target", triple])
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let start = Instant::now();
    let out = run(&mut cmd, Duration::from_secs(40 * 60));
    if out.code != 0 {
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error") || l.trim_start().starts_with("-->"))
            .collect();
        return Err(format!(
            "cargo build --release --target {triple} failed:\n{}\n\n{out}",
            errors.join("\n")
        ));
    }
    eprintln!("built pulltar for {triple} in {:.1?}", start.elapsed());
    let bin = target_dir()
        .join(triple)
        .join("release")
        .join(t.file_name());
    match bin.is_file() {
        true => Ok(bin),
        false => Err(format!("cargo built no {}", bin.display())),
    }
}

/// The static x86_64 binary alone in a root directory.
pub struct EmptyRoot {
    dir: TempDir,
    chroot: PathBuf,
}

impl EmptyRoot {
    /// A directory holding only `/pulltar` (the static build).
    pub fn new() -> EmptyRoot {
        let chroot = require_tool("chroot", "coreutils");
        let id = run(Command::new("id").arg("-u"), Duration::from_secs(10)).ok("id -u");
        assert_eq!(
            id.stdout.trim(),
            "0",
            "the empty-root test needs root, for chroot(2) (CI runs as root)"
        );
        let dir = TempDir::new("root");
        std::fs::copy(binary(Target::StaticX86_64), dir.join("pulltar")).unwrap();
        EmptyRoot { dir, chroot }
    }

    /// Where `/name` inside the root is on the host.
    pub fn host_path(&self, name: &str) -> PathBuf {
        self.dir.join(name.trim_start_matches('/'))
    }

    /// Copies `file` into the root as `/name`.
    pub fn put(&self, file: &Path, name: &str) {
        std::fs::copy(file, self.host_path(name)).unwrap();
    }

    /// What the root directory holds at its top.
    pub fn list(&self) -> Vec<String> {
        self.dir.list()
    }

    /// `/pulltar ARGS` chrooted into the directory, with no environment
    /// at all (3 minutes at most).
    pub fn pulltar(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.chroot);
        cmd.env_clear()
            .arg(self.dir.path())
            .arg("/pulltar")
            .args(args)
            .current_dir(self.dir.path());
        run(&mut cmd, Duration::from_secs(180))
    }
}

/// `qemu-aarch64-static <aarch64 pulltar>`, ready for arguments; the
/// environment is the test's, less what would change pulltar's choices.
pub fn qemu() -> Command {
    let qemu = require_tool("qemu-aarch64-static", "qemu-user-static");
    let mut cmd = Command::new(qemu);
    cmd.arg(binary(Target::Aarch64));
    quiet_env(&mut cmd);
    cmd
}

/// Removes the variables that change what pulltar does (logging, the
/// cache and config locations, credentials, proxies, trust).
fn quiet_env(cmd: &mut Command) {
    for k in [
        "RUST_LOG",
        "PULLTAR_USERNAME",
        "PULLTAR_PASSWORD",
        "DOCKER_CONFIG",
        "XDG_CACHE_HOME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(k);
    }
}

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
        for name in crate::util::list_dir(&template) {
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
        let user = crate::util::list_dir(&users)
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
            let _ = crate::util::run(&mut cmd, Duration::from_secs(30));
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

/// The archive against every Linux loader: its contents, skopeo and
/// podman ([`verify_everywhere`]), `docker load` into a test-started
/// dockerd (image ID = config digest, layers = diff_ids) and `ctr images
/// import` into a test-started containerd.
pub fn loads_everywhere(tar: &Path, img: &Image, reference: &str) {
    verify_everywhere(tar, img, &[reference.to_string()]);
    let docker = Dockerd::start();
    let info = docker.load_and_inspect(tar, reference);
    assert_eq!(
        info["Id"],
        img.config_digest.as_str(),
        "docker image ID: {info}"
    );
    let layers: Vec<String> = serde_json::from_value(info["RootFS"]["Layers"].clone()).unwrap();
    assert_eq!(layers, img.diff_ids(), "docker RootFS.Layers");
    drop(docker);
    let containerd = Containerd::start();
    containerd.import_and_check(tar, &[reference.to_string()], &img.config_digest);
}
