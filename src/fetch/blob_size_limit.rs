//! How large a blob may be: [`max_blob_size`] (1 TiB, or
//! `PULLTAR_MAX_BLOB_SIZE`), and [`check_size`], which refuses a
//! descriptor declaring more, before anything is fetched or any file made,
//! so that an absurd size can neither fill a disk nor overflow a sum. This
//! module only reads the environment and compares numbers.

use crate::error::{Error, Result};
use crate::image::manifest::Descriptor;
use crate::ui::size::parse_size;

/// The largest blob accepted unless `PULLTAR_MAX_BLOB_SIZE` says otherwise.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 1 << 40;

/// The largest size a descriptor may declare: `PULLTAR_MAX_BLOB_SIZE`
/// (read by [`parse_size`]), else [`DEFAULT_MAX_BLOB_SIZE`]. The bound
/// itself is capped at 2^50 so that sums of sizes cannot overflow.
pub fn max_blob_size() -> Result<u64> {
    match std::env::var("PULLTAR_MAX_BLOB_SIZE") {
        Err(_) => Ok(DEFAULT_MAX_BLOB_SIZE),
        Ok(v) => parse_size("PULLTAR_MAX_BLOB_SIZE", &v)
            .map(|n| n.min(1 << 50))
            .map_err(Error::Usage),
    }
}

/// Refuses a descriptor whose declared size is over `max`.
pub fn check_size(desc: &Descriptor, max: u64) -> Result<()> {
    if desc.size <= max {
        return Ok(());
    }
    Err(Error::Manifest {
        what: format!("blob {}", desc.digest),
        reason: format!(
            "its declared size of {} bytes is larger than the {max} bytes allowed (set PULLTAR_MAX_BLOB_SIZE to pull larger blobs)",
            desc.size
        ),
    })
}
