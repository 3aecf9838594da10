//! Small std-only helpers shared by every integration test: temp dirs that
//! clean up after themselves, a xorshift RNG, sha256/base64 encoders, a
//! bounded child-process runner, and the `pulltar` invocation itself
//! (`pull_ok`: a pull into a work dir that must succeed).
//!
//! Nothing here talks to a registry; see `registry.rs` for that.

use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Path of the binary under test (built by cargo for integration tests).
pub const PULLTAR: &str = env!("CARGO_BIN_EXE_pulltar");

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop unless
/// `PULLTAR_KEEP_TMP` is set (handy when a loader fails).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        // Short names: dockerd's unix socket path must stay under 108 bytes.
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("ptit-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// Names of the entries directly inside the directory, sorted.
    pub fn list(&self) -> Vec<String> {
        list_dir(&self.path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("PULLTAR_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// xorshift64* seeded from the clock, the pid and a counter: random enough
/// for incompressible test layers, and no `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let seed =
            t ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Rng(seed | 1)
    }

    /// A generator fixed by `seed` (through splitmix64, so that nearby
    /// seeds start far apart): the same seed gives the same numbers.
    pub fn seeded(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }

    /// A lowercase alphanumeric token, for unique labels and repo names.
    pub fn token(&mut self, len: usize) -> String {
        const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHA[(self.next_u64() % 36) as usize] as char)
            .collect()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Lowercase hex sha256 (sha2 0.11 has no LowerHex on its output).
pub fn sha256_hex(data: &[u8]) -> String {
    let out: [u8; 32] = Sha256::digest(data).into();
    hex(&out)
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// The hex part of a `sha256:<hex>` digest.
pub fn hex_of(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

/// Base64 (RFC 4648); `url` selects the URL-safe alphabet without padding.
pub fn base64(data: &[u8], url: bool) -> String {
    let alpha: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alpha[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Full path of `cmd` on PATH (or in the sbin dirs a non-root PATH may
/// lack), or a failure telling how to install it. Never a silent skip.
pub fn require_tool(cmd: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(cmd);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{cmd}` is not installed, and this test needs it: run `apt-get install -y {package}` \
         (scripts/test installs every test dependency)"
    );
}

/// What a finished child printed and returned.
#[derive(Debug)]
pub struct Output {
    /// Exit code; -1 if killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with the whole output unless the exit code is 0.
    pub fn ok(self, what: &str) -> Output {
        assert_eq!(self.code, 0, "{what} failed:\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion with stdin closed, killing it (by its own PID)
/// and failing the test if it takes longer than `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    run_with_input(cmd, None, limit)
}

/// Like `run`, with `input` written to the child's stdin (then closed).
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
        let data = data.to_vec();
        // A thread, so a child that never reads cannot block us.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut w, &data);
        });
    }
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs the binary under test with `args` in `cwd` (bounded to 3 minutes).
pub fn pulltar_in(cwd: &Path, args: &[&str]) -> Output {
    pulltar_with_stdin(cwd, args, None)
}

/// A loopback address nothing listens on, standing in for Docker Hub in
/// every run of the binary (`PULLTAR_DOCKER_HUB`), so that a pull through
/// `-r` mirrors, which falls back to Docker Hub, never leaves the machine.
pub fn no_docker_hub() -> String {
    static ADDR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ADDR.get_or_init(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    })
    .clone()
}

/// `pulltar_in` with `input` on stdin (for `--password-stdin`).
pub fn pulltar_with_stdin(cwd: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(PULLTAR);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("PULLTAR_DOCKER_HUB", no_docker_hub());
    run_with_input(&mut cmd, input, Duration::from_secs(180))
}

/// `pulltar_in` with extra environment variables (e.g. PULLTAR_RETRY_DELAY_MS).
pub fn pulltar_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PULLTAR);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("PULLTAR_DOCKER_HUB", no_docker_hub())
        .envs(env.iter().copied());
    run_with_input(&mut cmd, None, Duration::from_secs(180))
}

/// Polls `f` every `step` until it returns Some, at most `tries` times.
pub fn poll<T>(tries: u32, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..tries {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(step);
    }
    None
}

#[test]
fn base64_round_trips_and_matches_rfc4648() {
    assert_eq!(base64(b"foobar", false), "Zm9vYmFy");
    assert_eq!(base64(b"fooba", false), "Zm9vYmE=");
    assert_eq!(base64(b"foob", true), "Zm9vYg");
    assert_eq!(base64(&[0xfb, 0xff], true), "-_8");
    let mut rng = Rng::new();
    for len in 0..40 {
        let data = rng.bytes(len);
        assert_eq!(base64_decode(&base64(&data, false)), data);
        assert_eq!(base64_decode(&base64(&data, true)), data);
    }
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn seeded_rng_repeats_and_seeds_differ() {
    let draw = |seed| {
        let mut r = Rng::seeded(seed);
        (0..4).map(|_| r.next_u64()).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
    assert_ne!(draw(0), vec![0; 4]);
}

/// Stops a daemon the test started: SIGTERM to its PID (never by name),
/// a bounded wait of `tries` x 50 ms, then SIGKILL.
pub fn stop_daemon(child: &mut std::process::Child, tries: u32) {
    let pid = child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stdin(std::process::Stdio::null())
        .status();
    let gone = poll(tries, Duration::from_millis(50), || {
        child.try_wait().ok().flatten()
    });
    if gone.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `pulltar REF -o WORK/out.tar --cache-dir WORK/cache EXTRA...` and
/// insists on exit 0 and a file at the output path.
pub fn pull_ok(work: &TempDir, reference: &str, extra: &[&str]) -> PathBuf {
    let out = work.join("out.tar");
    let cache = work.join("cache");
    let mut args = vec![
        reference,
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let res = pulltar_in(work.path(), &args);
    assert_eq!(res.code, 0, "pulltar {args:?} failed:\n{res}");
    assert!(
        out.is_file(),
        "no archive at {} after exit 0:\n{res}",
        out.display()
    );
    out
}
