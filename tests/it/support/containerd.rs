//! A private containerd (Debian's containerd 1.6) started by a test: a
//! config with the CRI plugin disabled, root, state, temp, the opt dir and
//! every socket (grpc, ttrpc, debug) in a temp dir, no TCP listener, no
//! systemd. Ready when `ctr version` answers; stopped on drop with SIGTERM
//! to its PID, then SIGKILL if it lingers. Images go to namespace `test`
//! through `ctr images import --all-platforms --snapshotter native`.

use crate::support::images::{image_of_layers, raw_layer, Flavor, Image, AMD64, DOCKER_LAYER_TAR};
use crate::support::util::{hex_of, poll, require_tool, run, Output, Rng, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Containerd {
    child: Child,
    dir: TempDir,
    ctr: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        let bin = require_tool("containerd", "containerd");
        let ctr = require_tool("ctr", "containerd");
        // Short names: the grpc socket path must stay under 108 bytes.
        let dir = TempDir::new("ctd");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let q = |name: &str| format!("{:?}", dir.join(name).display().to_string());
        let config = format!(
            "version = 2\nroot = {}\nstate = {}\ntemp = {}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = {}\n[ttrpc]\n  address = {}\n[debug]\n  address = {}\n\
             [plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = {}\n",
            q("root"),
            q("state"),
            q("tmp"),
            q("c.sock"),
            q("c.sock.ttrpc"),
            q("debug.sock"),
            q("opt"),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start containerd");
        let mut c = Containerd { child, dir, ctr };
        let ready = poll(300, Duration::from_millis(50), || {
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!("containerd exited with {st}:\n{}", c.log());
            }
            (c.ctr(&["version"], 10).code == 0).then_some(())
        });
        assert!(
            ready.is_some(),
            "containerd did not come up in 15 s:\n{}",
            c.log()
        );
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The grpc socket (`ctr -a` takes it).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a SOCK -n test ARGS`, killed after `limit_secs`.
    pub fn ctr(&self, args: &[&str], limit_secs: u64) -> Output {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("-a")
            .arg(self.socket())
            .args(["-n", "test"])
            .args(args);
        run(&mut cmd, Duration::from_secs(limit_secs))
    }

    /// `ctr images import --all-platforms --snapshotter native TAR` (which
    /// also unpacks, so each layer is checked against its diff_id).
    pub fn import(&self, tar: &Path) -> Output {
        let tar = tar.to_str().unwrap();
        self.ctr(
            &[
                "images",
                "import",
                "--all-platforms",
                "--snapshotter",
                "native",
                tar,
            ],
            300,
        )
    }

    /// `ctr images ls`: (name, target digest) of every image, in its order.
    pub fn images(&self) -> Vec<(String, String)> {
        let out = self.ctr(&["images", "ls"], 60).ok("ctr images ls");
        let mut lines = out.stdout.lines();
        let header = lines.next().unwrap_or_default();
        assert!(
            header.starts_with("REF") && header.contains("DIGEST"),
            "unexpected ctr images ls header:\n{out}"
        );
        lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                assert!(
                    cols.len() >= 3 && cols[2].starts_with("sha256:"),
                    "unexpected ctr images ls line {l:?}:\n{out}"
                );
                (cols[0].to_string(), cols[2].to_string())
            })
            .collect()
    }

    /// `ctr images check --snapshotter native`: there is at least one
    /// image, every one is `complete` (all its content is in the store) and
    /// unpacked (the import applied each layer and matched its diff_id).
    pub fn check(&self) {
        let out = self
            .ctr(&["images", "check", "--snapshotter", "native"], 120)
            .ok("ctr images check");
        let mut lines = out.stdout.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"],
            "unexpected ctr images check header:\n{out}"
        );
        let rows: Vec<Vec<&str>> = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(!rows.is_empty(), "ctr images check lists no image:\n{out}");
        for cols in rows {
            // REF TYPE DIGEST complete (n/n) SIZE/SIZE true
            assert_eq!(
                cols.get(3).copied(),
                Some("complete"),
                "image {} is not complete:\n{out}",
                cols[0]
            );
            assert_eq!(
                cols.last().copied(),
                Some("true"),
                "image {} is not unpacked:\n{out}",
                cols[0]
            );
        }
    }

    /// The bytes of a blob in the content store (`ctr content get`), as text.
    pub fn content(&self, digest: &str) -> String {
        self.ctr(&["content", "get", digest], 60)
            .ok(&format!("ctr content get {digest}"))
            .stdout
    }

    /// The config digest of image `name`: its target manifest's
    /// `config.digest` (through a one-entry index if the target is one).
    pub fn config_digest(&self, name: &str) -> String {
        let target = self
            .images()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no image {name} in containerd"))
            .1;
        let mut digest = target;
        for _ in 0..4 {
            let doc: Value = serde_json::from_str(&self.content(&digest))
                .unwrap_or_else(|e| panic!("content {digest} is not JSON: {e}"));
            if let Some(c) = doc["config"]["digest"].as_str() {
                return c.to_string();
            }
            let entries = doc["manifests"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                entries.len(),
                1,
                "target {digest} of {name} is neither a manifest nor a one-entry index: {doc}"
            );
            digest = entries[0]["digest"].as_str().unwrap().to_string();
        }
        panic!("no manifest within 4 levels below {name}");
    }

    /// Imports `tar`, then insists the store holds exactly `expected_names`
    /// (sorted as given), that `images check` calls each complete, and that
    /// each image's config digest is `expected_config_digest`.
    pub fn import_and_check(
        &self,
        tar: &Path,
        expected_names: &[String],
        expected_config_digest: &str,
    ) {
        let out = self.import(tar);
        assert_eq!(
            out.code,
            0,
            "ctr images import failed:\n{out}\n{}",
            self.log()
        );
        for name in expected_names {
            assert!(
                out.stdout.contains(&format!("unpacking {name} (")),
                "ctr import did not unpack {name}:\n{out}"
            );
        }
        let mut names: Vec<String> = self.images().into_iter().map(|(n, _)| n).collect();
        names.sort();
        let mut want = expected_names.to_vec();
        want.sort();
        assert_eq!(names, want, "image names after import:\n{out}");
        self.check();
        for name in expected_names {
            assert_eq!(
                self.config_digest(name),
                expected_config_digest,
                "config digest of {name} in containerd"
            );
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        crate::support::util::stop_daemon(&mut self.child, 200);
    }
}

#[test]
fn containerd_starts_on_private_sockets_and_stops() {
    let c = Containerd::start();
    let out = c.ctr(&["version"], 10).ok("ctr version");
    assert!(out.stdout.contains("Server:"), "ctr version:\n{out}");
    assert!(c.images().is_empty(), "a fresh store has no images");
    let import = c.import(&c.dir.join("config.toml"));
    assert_ne!(import.code, 0, "importing a non-tar must fail:\n{import}");
    let plugins = c.ctr(&["plugins", "ls"], 10).ok("ctr plugins ls");
    assert!(
        plugins.stdout.contains("io.containerd.grpc.v1")
            && !plugins.stdout.contains("io.containerd.grpc.v1.cri")
            && !plugins
                .stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("cri")),
        "the CRI plugin must not load:\n{plugins}"
    );
    assert!(c.socket().exists() && c.dir.join("c.sock.ttrpc").exists());
    let pid = c.pid();
    drop(c);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("zombie"),
        "containerd {pid} still running after drop"
    );
}

/// A minimal docker-archive (manifest.json, `<hex>.json`, `<hex>/layer.tar`)
/// of `img` tagged `tag`, its layer files in `order` (indexes into layers).
fn hand_made_archive(path: &Path, img: &Image, tag: &str, order: &[usize]) {
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, data).unwrap();
    };
    let config = format!("{}.json", hex_of(&img.config_digest));
    add(&config, &img.config);
    let mut layers = Vec::new();
    for &i in order {
        let name = format!("{}/layer.tar", hex_of(&img.layers[i].digest));
        add(&name, &img.layers[i].blob);
        layers.push(name);
    }
    let manifest = serde_json::json!([{"Config": config, "RepoTags": [tag], "Layers": layers}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    tar.into_inner().unwrap();
}

#[test]
fn containerd_imports_hand_made_archive_and_refuses_wrong_diff_ids() {
    let mut rng = Rng::new();
    let mut two_layers = || {
        let layers = vec![
            raw_layer(&mut rng, DOCKER_LAYER_TAR, 8 * 1024),
            raw_layer(&mut rng, DOCKER_LAYER_TAR, 4 * 1024),
        ];
        image_of_layers(&mut Rng::new(), Flavor::Docker, AMD64, layers)
    };
    let img = two_layers();
    // Its own layers: containerd skips unpacking a chain it already has.
    let other = two_layers();
    let work = TempDir::new("ctdself");
    let c = Containerd::start();
    // A short RepoTag is normalised the Docker Hub way.
    let good = work.join("good.tar");
    hand_made_archive(&good, &img, "self/app:v1", &[0, 1]);
    c.import_and_check(
        &good,
        &["docker.io/self/app:v1".to_string()],
        &img.config_digest,
    );
    // Layers in the wrong order: unpacking must notice the diff_ids.
    let bad = work.join("bad.tar");
    hand_made_archive(&bad, &other, "self/bad:v1", &[1, 0]);
    let out = c.import(&bad);
    assert_ne!(out.code, 0, "swapped layers imported:\n{out}");
    assert!(
        out.stderr.contains("wrong diff id"),
        "why the import failed:\n{out}"
    );
}
