//! Registries that ask for credentials, each holding an image: an
//! htpasswd Basic one ([`BasicRegistry`], for `BUSER`/`BPASS`) and a
//! Docker-Hub-style token one ([`TokenRegistry`], the token server of
//! `token_server.rs`: `public/*` anonymous, anything else for
//! `tester:s3cret`), and `STALE`, the wrong password stored credentials
//! hold in the tests. Where credentials come from is tested in `auth/`.

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::registry::Registry;
use crate::support::token_server::{TokenServer, PASSWORD, REFRESH_TOKEN, USER};
use crate::support::user_env::{assert_no_secrets, userpass};
use crate::support::util::{require_tool, run, Output, TempDir};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub const BUSER: &str = "ptuser";
pub const BPASS: &str = "pt-Basic-Pw-93kq";
/// A wrong password, as stale stored credentials would hold.
pub const STALE: &str = "pt-Stale-Pw-51xz";

/// A registry with htpasswd Basic auth for `BUSER`/`BPASS`, holding
/// `team/app:v1`.
pub struct BasicRegistry {
    pub reg: Registry,
    pub img: Image,
    _dir: TempDir,
}

impl BasicRegistry {
    pub fn start() -> BasicRegistry {
        let dir = TempDir::new("htpw");
        let mut cmd = Command::new(require_tool("htpasswd", "apache2-utils"));
        cmd.args(["-Bbn", BUSER, BPASS]);
        let out = run(&mut cmd, Duration::from_secs(30)).ok("htpasswd -Bbn");
        std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
        let basic = format!("Basic {}", userpass(BUSER, BPASS));
        let reg = Registry::start_htpasswd(&dir.join("htpasswd"), Arc::new(move |_| basic.clone()));
        let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
        BasicRegistry {
            reg,
            img,
            _dir: dir,
        }
    }

    pub fn reference(&self) -> String {
        format!("{}/team/app:v1", self.reg.host())
    }

    /// The registry accepted credentials (its "authorized request" line)
    /// and never refused any ("authentication failure").
    pub fn assert_authorized(&self) {
        let log = self.reg.log();
        assert!(
            log.contains("authorized request") && log.contains("/v2/team/app/manifests/v1"),
            "no authorized manifest request:\n{log}"
        );
        assert!(
            !log.contains("authentication failure"),
            "the registry refused credentials:\n{log}"
        );
    }
}

pub(crate) struct TokenRegistry {
    pub(crate) tokens: TokenServer,
    pub(crate) reg: Registry,
    pub(crate) img: Image,
    repo: &'static str,
}

impl TokenRegistry {
    /// A token registry holding `repo:v1` (`public/app` or `private/app`).
    pub(crate) fn start(repo: &'static str) -> TokenRegistry {
        let tokens = TokenServer::start();
        let reg = Registry::start_with(
            Some(tokens.registry_auth()),
            Some(tokens.issuer.push_auth()),
        );
        let img = push_simple(&reg, repo, "v1", Flavor::Docker);
        TokenRegistry {
            tokens,
            reg,
            img,
            repo,
        }
    }

    pub(crate) fn reference(&self) -> String {
        format!("{}/{}:v1", self.reg.host(), self.repo)
    }

    /// The token server's log: request lines, `grant=…` for a POST,
    /// ` auth=basic` when Basic credentials came.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.tokens.requests.lock().unwrap().clone()
    }

    /// No secret, and no part of any token the server issued, in `res`.
    pub(crate) fn assert_nothing_leaked(&self, res: &Output) {
        assert_no_secrets(res, USER, &[PASSWORD, STALE, REFRESH_TOKEN]);
        for t in self.tokens.issued.lock().unwrap().iter() {
            let sig = t.rsplit('.').next().unwrap();
            assert!(
                !res.stderr.contains(&sig[..40]) && !res.stdout.contains(&sig[..40]),
                "a bearer token leaked:\n{res}"
            );
        }
    }
}
