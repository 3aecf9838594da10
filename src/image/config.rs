//! The image config, as far as pulltar reads it: its platform (`os`,
//! `architecture`, `variant`) and `rootfs.diff_ids`, one per layer; and
//! the bound on its size ([`check_config_size`], before it is fetched).
//!
//! Parsing only: the config's bytes are kept verbatim elsewhere, and its
//! digest (the image ID) is never computed from this parsed form.

use serde::Deserialize;

use crate::error::Error;
use crate::image::digest::Digest;
use crate::image::manifest::{Descriptor, MAX_CONFIG_BYTES};
use crate::image::platform::Platform;

/// The fields of an image config that pulling needs.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageConfig {
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: String,
    /// The layer chain.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Deserialize)]
pub struct RootFs {
    /// Digests of the uncompressed layers, base first.
    pub diff_ids: Vec<Digest>,
}

/// Refuses a config descriptor larger than [`MAX_CONFIG_BYTES`], before
/// anything is fetched.
pub fn check_config_size(desc: &Descriptor) -> Result<(), Error> {
    if desc.size > MAX_CONFIG_BYTES {
        return Err(Error::Manifest {
            what: format!("config {}", desc.digest),
            reason: format!(
                "its declared size {} is larger than the {MAX_CONFIG_BYTES} bytes allowed",
                desc.size
            ),
        });
    }
    Ok(())
}

impl ImageConfig {
    /// The image's platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, &self.variant)
    }

    /// Parses a config blob; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Manifest {
            what: what.to_string(),
            reason: format!("not a valid image config: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn config_fields() {
        let c = ImageConfig::parse(
            format!(r#"{{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{{"type":"layers","diff_ids":["{D}"]}}}}"#).as_bytes(),
            "c",
        )
        .unwrap();
        assert_eq!(c.platform().to_string(), "linux/arm64");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
    }
}
