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
//! - [`Wine`](crate::support::wine::Wine): the Windows exe under Wine (`wine.rs`).
//!
//! A missing target, cross compiler or runner fails the test with what to
//! install (`scripts/test` installs it all).

use crate::support::containerd::Containerd;
use crate::support::dockerd::Dockerd;
use crate::support::images::Image;
use crate::support::loaders::verify_everywhere;
use crate::support::util::{require_tool, run, Output, TempDir};
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
pub(crate) fn quiet_env(cmd: &mut Command) {
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
