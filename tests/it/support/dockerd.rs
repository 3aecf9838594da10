//! A private Docker engine (Debian's docker.io 20.10) started by a test:
//! vfs storage, no iptables or bridge, a unix socket in a temp dir, its own
//! data and exec roots. Stopped on drop with SIGTERM to its PID (so it also
//! stops the containerd it started), then SIGKILL if it lingers.

use crate::support::util::{poll, require_tool, run, Output, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Dockerd {
    child: Child,
    dir: TempDir,
    client: PathBuf,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        let bin = require_tool("dockerd", "docker.io");
        require_tool("runc", "runc");
        // Prefer Debian's client (same release as the engine) over any
        // newer `docker` earlier on PATH.
        let debian = Path::new("/usr/bin/docker");
        let client = if debian.is_file() {
            debian.to_path_buf()
        } else {
            require_tool("docker", "docker.io")
        };
        let dir = TempDir::new("dk");
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new(bin)
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
            ])
            .args([
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
            ])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--host")
            .arg(format!("unix://{}", dir.join("d.sock").display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start dockerd");
        let mut d = Dockerd { child, dir, client };
        let ready = poll(300, Duration::from_millis(50), || {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("dockerd exited with {st}:\n{}", d.log());
            }
            let out = d.docker(&["version", "--format", "{{.Server.Version}}"]);
            (out.code == 0).then_some(())
        });
        assert!(
            ready.is_some(),
            "dockerd did not come up in 15 s:\n{}",
            d.log()
        );
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.client);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.dir.join("d.sock").display()))
            .args(args);
        run(&mut cmd, Duration::from_secs(300))
    }

    /// `docker load -i T`, then `docker image inspect` of `reference`.
    pub fn load_and_inspect(&self, tar: &Path, reference: &str) -> Value {
        let out = self.docker(&["load", "-i", tar.to_str().unwrap()]);
        assert_eq!(out.code, 0, "docker load failed:\n{out}\n{}", self.log());
        let out = self
            .docker(&["image", "inspect", reference])
            .ok("docker image inspect");
        let v: Value = serde_json::from_str(&out.stdout).expect("docker inspect JSON");
        v[0].clone()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        crate::support::util::stop_daemon(&mut self.child, 300);
    }
}
