//! Hints learned after a failure, by asking the registry once more: when
//! a manifest is not found (404), the tags the repository does have
//! (`GET /v2/<name>/tags/list`, when the registry allows listing), or
//! that the repository itself is unknown.
//!
//! Best effort: any failure while looking returns the original error
//! unchanged. This module retries nothing and never changes an exit code.

use crate::error::Error;
use crate::image::reference::Reference;
use crate::registry::client::{self, Registry};

/// How many tags a hint lists.
const SHOWN: usize = 20;

/// `err`, with the repository's tags as a hint when it is a manifest 404
/// of one of `references`.
pub fn after_failure(err: Error, references: &[Reference], options: &client::Options) -> Error {
    let Error::Http {
        status: 404, what, ..
    } = &err
    else {
        return err;
    };
    if !what.starts_with("fetching the manifest") {
        return err;
    }
    // The reference whose manifest was missing (with one image, that one).
    let failed = references.iter().find(|r| {
        *what
            == format!(
                "fetching the manifest {}:{}",
                r.repository(),
                r.manifest_key()
            )
    });
    let Some(reference) = failed.or(references.first().filter(|_| references.len() == 1)) else {
        return err;
    };
    let tags = Registry::connect(reference, options).and_then(|r| r.tags());
    let hint = match tags {
        Ok(mut tags) if !tags.is_empty() => {
            tags.sort();
            let more = tags.len().saturating_sub(SHOWN);
            tags.truncate(SHOWN);
            format!(
                "{} has these tags: {}{}",
                reference.familiar_name(),
                tags.join(", "),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            )
        }
        Ok(_) => format!("{} has no tags", reference.familiar_name()),
        Err(Error::Http { status: 404, .. }) => format!(
            "the repository {} does not exist on {} (or is not visible with these credentials)",
            reference.repository(),
            reference.registry()
        ),
        Err(e) => {
            log::debug!("listing the tags for a hint failed: {e}");
            return err;
        }
    };
    Error::Hinted {
        error: Box::new(err),
        hint,
    }
}
