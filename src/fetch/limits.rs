//! How large a blob may be: [`max_blob_size`] (1 TiB, or
//! `PULLTAR_MAX_BLOB_SIZE`), and [`check_size`], which refuses a
//! descriptor declaring more, before anything is fetched or any file made,
//! so that an absurd size can neither fill a disk nor overflow a sum. This
//! module only reads the environment and compares numbers.

use crate::error::{Error, Result};
use crate::image::manifest::Descriptor;

/// The largest blob accepted unless `PULLTAR_MAX_BLOB_SIZE` says otherwise.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 1 << 40;

/// The largest size a descriptor may declare: `PULLTAR_MAX_BLOB_SIZE`
/// (bytes, or with a K/M/G suffix), else [`DEFAULT_MAX_BLOB_SIZE`]. The
/// bound itself is capped at 2^50 so that sums of sizes cannot overflow.
pub fn max_blob_size() -> Result<u64> {
    match std::env::var("PULLTAR_MAX_BLOB_SIZE") {
        Err(_) => Ok(DEFAULT_MAX_BLOB_SIZE),
        Ok(v) => parse_bytes(&v).map(|n| n.min(1 << 50)).ok_or_else(|| {
            Error::Usage(format!(
                "PULLTAR_MAX_BLOB_SIZE={v:?} is not a size like 2000000000, 500M, 64G or 2T"
            ))
        }),
    }
}

/// `N`, `NK`, `NM`, `NG` or `NT` (powers of 1024), at least 1.
fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let n: u64 = num.parse().ok().filter(|&n| n > 0)?;
    n.checked_mul(1 << shift)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_size_bounds() {
        assert_eq!(parse_bytes("2000"), Some(2000));
        assert_eq!(parse_bytes("64g"), Some(64 << 30));
        assert_eq!(parse_bytes("2T"), Some(2 << 40));
        for bad in [
            "",
            "0",
            "-1",
            "1.5G",
            "1P",
            "99999999999999999999",
            "16777216T",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
