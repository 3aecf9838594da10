//! A real CNCF distribution registry (`docker-registry serve CONFIG`) run as
//! a child process on 127.0.0.1, one per test, with its storage in a temp
//! dir and blob deletion enabled; plus the few registry API calls the tests
//! need to push and delete content (via one ureq agent).
//!
//! The registry picks its own port (`http.addr: 127.0.0.1:0`) and we read
//! it back from its "listening on" log line, so there is no port race.

use crate::support::util::{digest_of, poll, require_tool, TempDir};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// Produces an `Authorization` header value for pushing to a repository
/// (used when the registry sits behind token auth).
pub type PushAuth = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Token-auth settings for the registry config (`auth: token:`).
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub cert_pem: std::path::PathBuf,
}

pub struct Registry {
    child: Child,
    pub port: u16,
    dir: TempDir,
    push_auth: Option<PushAuth>,
}

pub fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .build()
            .into()
    })
}

impl Registry {
    /// An open registry (no auth).
    pub fn start() -> Registry {
        Registry::start_with(None, None)
    }

    pub fn start_with(token: Option<TokenAuth>, push_auth: Option<PushAuth>) -> Registry {
        let auth = match &token {
            None => String::new(),
            Some(t) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.cert_pem.display()
            ),
        };
        Registry::start_config(auth, push_auth)
    }

    /// An open registry that also accepts and serves Docker schema 1
    /// manifests (`compatibility.schema1.enabled`).
    pub fn start_schema1() -> Registry {
        Registry::start_config(
            "compatibility:\n  schema1:\n    enabled: true\n".into(),
            None,
        )
    }

    /// A registry with Basic auth from the bcrypt `htpasswd` file (challenge
    /// `Basic realm="pulltar-test"`); pushes use `push_auth`.
    pub fn start_htpasswd(htpasswd: &std::path::Path, push_auth: PushAuth) -> Registry {
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: pulltar-test\n    path: {}\n",
            htpasswd.display()
        );
        Registry::start_config(auth, Some(push_auth))
    }

    /// Starts the registry with `auth` (an `auth:` YAML section, another
    /// top-level section, or empty).
    fn start_config(auth: String, push_auth: Option<PushAuth>) -> Registry {
        let bin = require_tool("docker-registry", "docker-registry");
        let dir = TempDir::new("reg");
        // No `storage.cache` section: a blob-descriptor cache could keep
        // answering for a deleted blob (the deletion test checks this).
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:0\n  secret: pulltar-test-secret\n{auth}",
            dir.join("storage").display()
        );
        let cfg_path = dir.join("config.yml");
        std::fs::write(&cfg_path, config).unwrap();
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry");
        let mut reg = Registry {
            child,
            port: 0,
            dir,
            push_auth,
        };
        let port = poll(200, Duration::from_millis(50), || {
            let text = std::fs::read_to_string(&log_path).ok()?;
            let at = text.find("listening on 127.0.0.1:")? + "listening on 127.0.0.1:".len();
            let digits: String = text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u16>().ok()
        });
        reg.port = port.unwrap_or_else(|| panic!("registry did not start:\n{}", reg.log()));
        let url = reg.url("/v2/");
        let ready = poll(100, Duration::from_millis(50), || {
            let resp = agent().get(&url).call().ok()?;
            // 401 is "ready" too when token auth is on.
            matches!(resp.status().as_u16(), 200 | 401).then_some(())
        });
        assert!(
            ready.is_some(),
            "registry never answered GET /v2/:\n{}",
            reg.log()
        );
        reg
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The filesystem storage root (`docker/registry/v2/...` below it);
    /// the redirect front's blob server serves files from here.
    pub fn storage_dir(&self) -> std::path::PathBuf {
        self.dir.join("storage")
    }

    /// The registry's own log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn authed<B>(&self, req: ureq::RequestBuilder<B>, repo: &str) -> ureq::RequestBuilder<B> {
        match &self.push_auth {
            Some(f) => req.header("Authorization", f(repo)),
            None => req,
        }
    }

    fn expect(
        &self,
        what: &str,
        resp: Result<Response<Body>, ureq::Error>,
        want: u16,
    ) -> Response<Body> {
        let mut resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
        if resp.status().as_u16() != want {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            panic!(
                "{what}: HTTP {} (wanted {want}): {body}\n{}",
                resp.status(),
                self.log()
            );
        }
        resp
    }

    /// Monolithic upload: POST an upload session, PUT the bytes with
    /// `digest=`. Returns the blob's digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = digest_of(data);
        let what = format!("upload of {digest} to {repo}");
        let post = self.authed(
            agent().post(self.url(&format!("/v2/{repo}/blobs/uploads/"))),
            repo,
        );
        let resp = self.expect(&what, post.send(&[][..]), 202);
        let loc = resp
            .headers()
            .get("location")
            .expect("upload Location")
            .to_str()
            .unwrap()
            .to_string();
        let loc = if loc.starts_with('/') {
            self.url(&loc)
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = agent()
            .put(format!("{loc}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream");
        self.expect(&what, self.authed(put, repo).send(data), 201);
        digest
    }

    /// PUT a manifest under `reference` (a tag or its digest); checks that
    /// the registry computed the same digest. Returns the digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let digest = digest_of(body);
        let what = format!("manifest PUT {repo}:{reference}");
        let put = agent()
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type);
        let resp = self.expect(&what, self.authed(put, repo).send(body), 201);
        let got = resp
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            got.as_deref(),
            Some(digest.as_str()),
            "{what}: registry digest differs"
        );
        digest
    }

    pub fn delete_blob(&self, repo: &str, digest: &str) {
        let del = self.authed(
            agent().delete(self.url(&format!("/v2/{repo}/blobs/{digest}"))),
            repo,
        );
        self.expect(&format!("DELETE blob {digest}"), del.call(), 202);
    }

    /// HTTP status of `GET /v2/REPO/blobs/DIGEST` (no redirects followed).
    pub fn blob_status(&self, repo: &str, digest: &str) -> u16 {
        let get = self.authed(
            agent().get(self.url(&format!("/v2/{repo}/blobs/{digest}"))),
            repo,
        );
        get.call().expect("blob GET").status().as_u16()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by PID (Child::kill), never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn registry_starts_and_answers_v2() {
    let reg = Registry::start();
    let resp = agent().get(reg.url("/v2/")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let pid = reg.child.id();
    drop(reg);
    let alive = std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("zombie");
    assert!(!alive, "registry child {pid} still running after drop");
}
