//! A repository's tags (`GET /v2/<name>/tags/list`, first page), asked
//! only for the hint after a 404 (`resolve/hints.rs`), tried once: never
//! part of a pull's own work, and each tag cut to a printable excerpt.

use crate::error::{Error, Result};
use crate::registry::client::request::{Call, Sending};
use crate::registry::client::Registry;
use crate::registry::http_error::{http_error, read_limited, small_body_deadline};

impl Registry {
    /// The repository's tags (`GET /v2/<name>/tags/list`, first page, at
    /// most 1 MiB), for hints after a 404; an error when the registry does
    /// not allow listing.
    pub fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let url = format!("{}/v2/{}/tags/list", self.endpoint.base, self.repository);
        let what = format!("listing the tags of {}", self.repository);
        let call = Call::new("GET", &url, &what);
        let body = self.request(&what, false, |permit| {
            let mut resp = self.send(&call, permit, &mut || Ok(Sending::Nothing))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(http_error(&what, &url, status, &mut resp));
            }
            let deadline = small_body_deadline(self.read_timeout);
            read_limited(&mut resp, 1 << 20, deadline, &what, &url)
        })?;
        let list: TagList = serde_json::from_slice(&body).map_err(|e| Error::Manifest {
            what: what.clone(),
            reason: format!("not a tag list: {e}"),
        })?;
        Ok(list
            .tags
            .unwrap_or_default()
            .iter()
            .map(|t| crate::error::excerpt(t.as_bytes(), 128))
            .collect())
    }
}
