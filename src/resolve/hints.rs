//! The hint a missing tag deserves: when the manifest a reference names
//! is not found (404), the tags the repository does have (`GET
//! /v2/<name>/tags/list`, when the registry allows listing, through the
//! client the lookup already used), or that the repository itself is
//! unknown.
//!
//! Best effort: any failure while looking returns the original error
//! unchanged. This module retries nothing and never changes an exit code.

use crate::error::Error;
use crate::image::reference::Reference;
use crate::registry::mirrors::Hosts;

/// How many tags a hint lists.
const SHOWN: usize = 20;

/// `err`, with the repository's tags as a hint when it is the 404 of the
/// manifest `reference` names.
pub fn missing_manifest(err: Error, registry: &Hosts, reference: &Reference) -> Error {
    if !matches!(err, Error::Http { status: 404, .. }) {
        return err;
    }
    let name = reference.familiar_name();
    let hint = match registry.first().tags() {
        Ok(mut tags) if !tags.is_empty() => {
            tags.sort();
            let more = tags.len().saturating_sub(SHOWN);
            tags.truncate(SHOWN);
            let more = match more {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            format!("{name} has these tags: {}{more}", tags.join(", "))
        }
        Ok(_) => format!("{name} has no tags"),
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
