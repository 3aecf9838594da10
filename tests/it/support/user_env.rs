//! The world a pulltar run sees, for the credential and proxy tests: a
//! temp HOME (so the real `~/.docker` never counts), an optional docker
//! config, fake `docker-credential-*` helpers on PATH that log how they
//! were called, and no credential, proxy or TLS variables inherited from
//! the test's own environment; plus the check that no secret was printed.

use crate::support::util::{base64, run_with_input, Output, TempDir, PULLTAR};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `user:pass` base64, as in an `auth` entry or a Basic header.
pub fn userpass(user: &str, pass: &str) -> String {
    base64(format!("{user}:{pass}").as_bytes(), false)
}

/// A pulltar user's world in a temp dir: its own HOME (so the real
/// `~/.docker` never counts), an optional docker config dir, fake
/// credential helpers on PATH, and no credential or proxy variables from
/// the test's environment.
pub struct Client {
    pub work: TempDir,
    env: Vec<(String, String)>,
    runs: AtomicU32,
}

impl Client {
    pub fn new() -> Client {
        let work = TempDir::new("client");
        for d in ["home", "bin"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        let path = format!(
            "{}:{}",
            work.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let home = work.join("home").display().to_string();
        Client {
            env: vec![("HOME".into(), home), ("PATH".into(), path)],
            work,
            runs: AtomicU32::new(0),
        }
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Writes `config` as `$DOCKER_CONFIG/config.json` and sets DOCKER_CONFIG.
    pub fn docker_config(&mut self, config: &Value) {
        let dir = self.work.join("dockercfg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        self.set_env("DOCKER_CONFIG", &dir.display().to_string());
    }

    /// Writes `config` as `~/.docker/config.json` (no DOCKER_CONFIG).
    pub fn home_docker_config(&self, config: &Value) {
        let dir = self.work.join("home/.docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    }

    /// Installs `docker-credential-NAME` on PATH: it logs `ACTION INPUT`
    /// to `helper-NAME.log` and answers `get` with `user`/`secret`.
    pub fn helper(&self, name: &str, user: &str, secret: &str) {
        let log = self.work.join(&format!("helper-{name}.log"));
        let script = format!(
            "#!/bin/sh\ninput=$(cat)\nprintf '%s %s\\n' \"$1\" \"$input\" >> '{}'\n\
             [ \"$1\" = get ] || exit 1\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}}\\n' \
             \"$input\" '{user}' '{secret}'\n",
            log.display()
        );
        let path = self.work.join(&format!("bin/docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What helper `name` was called with, one `ACTION INPUT` a call.
    pub fn helper_calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.work.join(&format!("helper-{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `pulltar REF -o OUT --no-cache EXTRA…` with this environment (plus
    /// `extra_env`); returns the result and OUT.
    pub fn pull(
        &self,
        reference: &str,
        extra: &[&str],
        extra_env: &[(&str, &str)],
        stdin: Option<&[u8]>,
    ) -> (Output, PathBuf) {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let out = self.work.join(&format!("out-{n}.tar"));
        let out_arg = out.to_str().unwrap();
        let mut args = vec![reference, "-o", out_arg, "--no-cache"];
        args.extend_from_slice(extra);
        (self.run(&args, extra_env, stdin), out)
    }

    /// `pulltar ARGS` with this environment (plus `extra_env`).
    pub fn run(&self, args: &[&str], extra_env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(PULLTAR);
        cmd.args(args).current_dir(self.work.path());
        for var in [
            "RUST_LOG",
            "DOCKER_CONFIG",
            "PULLTAR_USERNAME",
            "PULLTAR_PASSWORD",
            "SSL_CERT_FILE",
        ] {
            cmd.env_remove(var);
        }
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
            cmd.env_remove(var).env_remove(var.to_lowercase());
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(extra_env.iter().copied());
        run_with_input(&mut cmd, stdin, Duration::from_secs(180))
    }

    /// `pull` with `--debug` and `RUST_LOG=trace`: the loudest logging.
    pub fn pull_loud(&self, reference: &str, extra: &[&str]) -> (Output, PathBuf) {
        let args: Vec<&str> = extra.iter().copied().chain(["--debug"]).collect();
        self.pull(reference, &args, &[("RUST_LOG", "trace")], None)
    }
}

/// None of `secrets` (nor `user:secret` in base64 for `user`) in the output.
pub fn assert_no_secrets(res: &Output, user: &str, secrets: &[&str]) {
    for s in secrets {
        for (what, text) in [("stdout", &res.stdout), ("stderr", &res.stderr)] {
            assert!(!text.contains(s), "the secret {s:?} is in {what}:\n{res}");
            let b64 = userpass(user, s);
            assert!(!text.contains(&b64), "base64 of {user}:{s} is in {what}");
        }
    }
}
