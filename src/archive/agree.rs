//! Whether an archive's two records of its names agree, before a push:
//! docker's `manifest.json` gives each name a config (what `docker load`
//! makes of it), and what a push would put under that name must be an
//! image of that config (for an index, one of its platforms' images).
//! pulltar's own archives agree by construction (a `--platform` list's
//! `manifest.json` names the first image; decompressed layers keep the
//! config), as do `docker save`'s. This module only reads.

use std::collections::HashMap;

use crate::archive::contents::Pushable;
use crate::archive::documents::ManifestItem;
use crate::archive::reader::Archive;
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::reference::Reference;

/// Refuses an archive whose `manifest.json` gives a name a config that no
/// image pushed under that name (by `other`'s account) has: `docker load`
/// and a push would give the name different images.
pub fn agree(
    archive: &Archive,
    items: &[ManifestItem],
    out: &[Pushable],
    other: &str,
) -> Result<()> {
    let mut hashed: HashMap<u64, Digest> = HashMap::new();
    let what = || format!("manifest.json and {other} in {}", archive.path().display());
    for item in items {
        let region = archive
            .region(&item.config)
            .ok_or_else(|| Error::Manifest {
                what: what(),
                reason: format!(
                    "manifest.json names the config {:?}, not in the archive",
                    item.config
                ),
            })?;
        for name in item
            .repo_tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
        {
            let name = name.to_string();
            let configs: Vec<&Digest> = out
                .iter()
                .filter(|p| p.names.iter().any(|n| n.to_string() == name))
                .flat_map(|p| p.root.configs())
                .collect();
            if configs.iter().any(|c| archive.blob(c) == Some(region)) {
                continue;
            }
            let given = match hashed.get(&region.offset) {
                Some(d) => d.clone(),
                None => archive.hash(region)?.0,
            };
            hashed.insert(region.offset, given.clone());
            if configs.contains(&&given) {
                continue;
            }
            let theirs: Vec<String> = configs.iter().map(|d| format!("the config {d}")).collect();
            let theirs = if theirs.is_empty() {
                "no image".into()
            } else {
                theirs.join(" or ")
            };
            return Err(Error::Manifest {
                what: what(),
                reason: format!("they tell different stories: manifest.json gives {name} the config {given}, {other} gives it {theirs}; docker load and a push would give it different images, so nothing is pushed"),
            });
        }
    }
    Ok(())
}
