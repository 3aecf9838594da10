//! The one reading of a size a person types, [`parse_size`]: bytes, or a
//! whole number with `K`, `M`, `G` or `T` (powers of 1024), each also
//! spelled `KB`/`KiB` and so on, in any case. `--chunk-size` and
//! `PULLTAR_MAX_BLOB_SIZE` read their sizes here, and a flag that splits
//! the archive into parts (`--split 4095M`) is to read its size here too;
//! it sits in `ui/` so that `cli/`, `fetch/` and `archive/` can all reach
//! it. Each caller checks its own bounds; this only reads the text.

/// Reads `s`, the value of `what` (a flag or variable, named in the
/// error): a positive whole number of bytes, with an optional unit.
/// Empty text, signs, fractions, zero, unknown units and sizes past 2^64
/// are refused with a message that says which and gives examples.
pub fn parse_size(what: &str, s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(refuse(what, s, "it does not start with a number"));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(refuse(what, s, &format!("{unit:?} is not a unit"))),
    };
    let n: u64 = match num.parse() {
        Ok(0) => return Err(refuse(what, s, "it is zero")),
        Ok(n) => n,
        Err(_) => return Err(refuse(what, s, "it is too large")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| refuse(what, s, "it is too large"))
}

fn refuse(what: &str, s: &str, why: &str) -> String {
    format!("{what} {s:?} is not a size: {why} (sizes look like 1048576, 512K, 4MiB or 2T)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("1", 1),
            ("1048576", 1 << 20),
            (" 7b ", 7),
            ("512K", 512 << 10),
            ("512k", 512 << 10),
            ("2KB", 2 << 10),
            ("4MiB", 4 << 20),
            ("4mib", 4 << 20),
            ("1M", 1 << 20),
            ("3MB", 3 << 20),
            ("64g", 64 << 30),
            ("1GiB", 1 << 30),
            ("4095M", 4095 << 20),
            ("2T", 2 << 40),
            ("2tb", 2 << 40),
            ("3TiB", 3 << 40),
            ("16777215T", 16777215 << 40),
        ] {
            assert_eq!(parse_size("--x", text), Ok(bytes), "{text:?}");
        }
    }

    #[test]
    fn refusals() {
        for (text, why) in [
            ("", "does not start with a number"),
            ("M", "does not start with a number"),
            ("-1M", "does not start with a number"),
            ("+1M", "does not start with a number"),
            ("0", "is zero"),
            ("0K", "is zero"),
            ("1.5G", "\".5G\" is not a unit"),
            ("1X", "\"X\" is not a unit"),
            ("1k1", "\"k1\" is not a unit"),
            ("1P", "\"P\" is not a unit"),
            ("1 M", "\" M\" is not a unit"),
            ("99999999999999999999", "too large"),
            ("16777216T", "too large"),
        ] {
            let e = parse_size("--x", text).unwrap_err();
            assert!(
                e.starts_with(&format!("--x {text:?} is not a size: ")),
                "{e}"
            );
            assert!(e.contains(why) && e.contains("512K"), "{text:?}: {e}");
        }
    }
}
