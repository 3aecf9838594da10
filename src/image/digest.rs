//! Content digests: the validated `sha256:<64 lowercase hex>` type and the
//! streaming verifier that checks bytes against one.
//!
//! A [`Digest`] can only be made by parsing, both from user input and from
//! JSON, so a malformed digest from a registry never gets further than the
//! parser. Only [`Digest::hex`] is ever used to build a path or a tar entry
//! name. Other algorithms (sha512, …) are refused with a clear error; this
//! module does no I/O of its own beyond hashing what it is given.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 content digest, validated at construction.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>`, naming the problem if it is
    /// not one.
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(format!(
                "digest {:?} has no algorithm (expected sha256:<64 hex digits>)",
                shorten(s)
            ));
        };
        if algo != "sha256" {
            return Err(format!(
                "digest algorithm {:?} is not supported (only sha256)",
                shorten(algo)
            ));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "digest {:?} is not sha256 followed by 64 lowercase hex digits",
                shorten(s)
            ));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(data))
    }

    fn from_hasher(h: Sha256) -> Digest {
        let bytes: [u8; 32] = h.finalize().into();
        Digest {
            hex: to_hex(&bytes),
        }
    }

    /// The 64 hex digits: the only part of a digest that may become part of
    /// a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, for short displays and default file names.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl std::str::FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Digest::parse(s)
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Incremental SHA-256 plus a byte count, to check a stream against the
/// size and digest of its descriptor.
#[derive(Clone, Default)]
pub struct Verifier {
    hasher: Sha256,
    len: u64,
}

impl Verifier {
    /// A verifier that has seen no bytes.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the bytes fed against `size` and `expected`; the error says
    /// which of the two disagreed.
    pub fn check(self, expected: &Digest, size: u64) -> Result<(), String> {
        if self.len != size {
            return Err(format!("expected {size} bytes, got {}", self.len));
        }
        let actual = Digest::from_hasher(self.hasher);
        if &actual != expected {
            return Err(format!("content hashes to {actual}"));
        }
        Ok(())
    }

    /// The digest of the bytes fed so far.
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.hasher)
    }
}

/// A reader that feeds everything it reads into a [`Verifier`].
pub struct VerifyingReader<R> {
    inner: R,
    verifier: Verifier,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        VerifyingReader {
            inner,
            verifier: Verifier::new(),
        }
    }

    /// The verifier, with every byte read so far.
    pub fn into_verifier(self) -> Verifier {
        self.verifier
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.verifier.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_empty() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn parse_roundtrip() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../../../../../../../../../../../../../../../etc/passwd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_validates() {
        let ok: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(ok.to_string(), EMPTY);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), format!("\"{EMPTY}\""));
    }

    #[test]
    fn verifier_checks_size_then_hash() {
        let d = Digest::of(b"hello");
        let mut v = Verifier::new();
        v.update(b"hel");
        v.update(b"lo");
        assert!(v.clone().check(&d, 5).is_ok());
        assert!(v
            .clone()
            .check(&d, 6)
            .unwrap_err()
            .contains("expected 6 bytes"));
        let mut w = Verifier::new();
        w.update(b"hellO");
        assert!(w.check(&d, 5).unwrap_err().contains("hashes to"));
    }

    #[test]
    fn verifying_reader() {
        let mut r = VerifyingReader::new(&b"hello"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(r.into_verifier().check(&Digest::of(b"hello"), 5).is_ok());
    }
}
