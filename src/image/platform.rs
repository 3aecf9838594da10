//! Platforms (`os/arch[/variant]`): parsing, the host default, the
//! normalisation docker applies, and choosing one entry of an index.
//!
//! Normalisation: `x86_64` is `amd64`, `aarch64` is `arm64`, `arm64/v8` is
//! plain `arm64`, a bare `arm` is `arm/v7`, `armhf` is `arm/v7` and `armel`
//! is `arm/v6`. Entries for attestations (`unknown/unknown`, or annotated as
//! an attestation manifest) are never chosen. When an exact variant is not
//! in the index, an entry without a variant is the next choice, as in
//! containers/image. A pull may ask for several platforms, or for every
//! one an index has ([`Selection`]). This module knows nothing about HTTP
//! or manifests' wire format: it works on [`Platform`] values.

use std::fmt;

/// An operating system, architecture and optional variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, `arm`, …
    pub arch: String,
    /// `v7`, `v8`, … (empty when none)
    pub variant: String,
}

impl Platform {
    /// Makes a normalised platform.
    pub fn new(os: &str, arch: &str, variant: &str) -> Platform {
        let os = os.to_ascii_lowercase();
        let arch = arch.to_ascii_lowercase();
        let variant = variant.to_ascii_lowercase();
        let (arch, variant) = match (arch.as_str(), variant.as_str()) {
            ("x86_64" | "x86-64", v) => ("amd64".to_string(), v.to_string()),
            ("aarch64" | "arm64", "v8" | "8") => ("arm64".to_string(), String::new()),
            ("aarch64", v) => ("arm64".to_string(), v.to_string()),
            ("armhf", "") => ("arm".to_string(), "v7".to_string()),
            ("armel", "") => ("arm".to_string(), "v6".to_string()),
            ("arm", "") => ("arm".to_string(), "v7".to_string()),
            ("arm", v) if !v.starts_with('v') => ("arm".to_string(), format!("v{v}")),
            ("i386" | "i686" | "x86", v) => ("386".to_string(), v.to_string()),
            _ => (arch, variant),
        };
        Platform { os, arch, variant }
    }

    /// Parses `os/arch[/variant]`; the error says what is expected.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(format!(
                "platform {s:?} is not os/arch[/variant] (for example linux/amd64 or linux/arm/v7)"
            ));
        }
        Ok(Platform::new(
            parts[0],
            parts[1],
            parts.get(2).unwrap_or(&""),
        ))
    }

    /// Parses the argument of `-a/--arch`: `ARCH[/VARIANT]` on linux, or a
    /// whole platform when it has an OS.
    pub fn parse_arch(s: &str) -> Result<Platform, String> {
        if s.starts_with("linux/") || s.starts_with("windows/") {
            return Platform::parse(s);
        }
        Platform::parse(&format!("linux/{s}"))
    }

    /// The platform whose images this program pulls by default: the
    /// machine it runs on, except that macOS and Windows hosts get Linux
    /// images (which they run in a VM, as Docker Desktop does, or carry to
    /// Linux hosts): linux/arm64 on ARM Windows, even for the x86_64 exe
    /// it runs emulated.
    pub fn host() -> Platform {
        Platform::default_for(std::env::consts::OS, crate::sys::machine_arch())
    }

    /// [`Platform::host`] for Rust's names of an OS and an architecture.
    fn default_for(os: &str, arch: &str) -> Platform {
        let os = match os {
            "macos" | "windows" => "linux",
            other => other,
        };
        let (arch, variant) = match arch {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "x86" => ("386", ""),
            "powerpc64" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            other => (other, ""),
        };
        Platform::new(os, arch, variant)
    }

    /// Whether this is an attestation or otherwise unusable entry.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.arch == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// How well `candidate` serves `wanted`: `None` if it cannot, higher is
/// better.
pub fn match_score(wanted: &Platform, candidate: &Platform) -> Option<u8> {
    if candidate.is_unknown() || wanted.os != candidate.os || wanted.arch != candidate.arch {
        return None;
    }
    if wanted.variant == candidate.variant {
        Some(3)
    } else if candidate.variant.is_empty() {
        Some(2)
    } else if wanted.variant.is_empty() {
        Some(1)
    } else {
        None
    }
}

/// Picks the index of the best entry for `wanted` among `candidates`; the
/// first of equally good entries wins. `None` when nothing matches.
pub fn choose(wanted: &Platform, candidates: &[Platform]) -> Option<usize> {
    let mut best: Option<(usize, u8)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if let Some(s) = match_score(wanted, c) {
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Which images of a multi-platform index a pull takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The best image for each of these platforms, in this order (at
    /// least one; the first is the one `docker load` gets).
    Some(Vec<Platform>),
    /// Every image of the index, with its attestations; `docker load`
    /// gets the one for this host (else the first).
    All,
}

impl Selection {
    /// Parses `--platform`: `all`, or `os/arch[/variant]` separated by
    /// commas; with `arch`, the items are `-a` architectures. A platform
    /// given twice counts once.
    pub fn parse(s: &str, arch: bool) -> Result<Selection, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Selection::All);
        }
        let mut list: Vec<Platform> = Vec::new();
        for item in s.split(',').map(str::trim) {
            let p = if arch {
                Platform::parse_arch(item)?
            } else {
                Platform::parse(item)?
            };
            if !list.contains(&p) {
                list.push(p);
            }
        }
        Ok(Selection::Some(list))
    }

    /// The platform `docker load` gets: the first asked for, or this
    /// host's for `all`.
    pub fn first(&self) -> Platform {
        match self {
            Selection::Some(list) => list.first().cloned().unwrap_or_else(Platform::host),
            Selection::All => Platform::host(),
        }
    }

    /// Which of an index's images (by their `platforms`) to take, each
    /// once: every one for `all` (this host's first), else the best for
    /// each platform listed, in the list's order. `Err` names a platform
    /// listed that none serves.
    pub fn pick(&self, platforms: &[Platform]) -> Result<Vec<usize>, Platform> {
        let mut out: Vec<usize> = Vec::new();
        match self {
            Selection::All => {
                out.extend(0..platforms.len());
                if let Some(i) = choose(&Platform::host(), platforms) {
                    out.remove(i);
                    out.insert(0, i);
                }
            }
            Selection::Some(list) => {
                for wanted in list {
                    let i = choose(wanted, platforms).ok_or_else(|| wanted.clone())?;
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether more than one image may be taken from an index.
    pub fn is_several(&self) -> bool {
        !matches!(self, Selection::Some(list) if list.len() == 1)
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str("all platforms"),
            Selection::Some(list) => {
                let names: Vec<String> = list.iter().map(Platform::to_string).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        assert_eq!(Selection::parse("all", false), Ok(Selection::All));
        assert_eq!(Selection::parse("ALL", true), Ok(Selection::All));
        let s = Selection::parse("linux/amd64, linux/arm64/v8,linux/amd64", false).unwrap();
        assert_eq!(s.to_string(), "linux/amd64, linux/arm64");
        assert!(s.is_several());
        assert_eq!(s.first().to_string(), "linux/amd64");
        let a = Selection::parse("arm64,arm", true).unwrap();
        assert_eq!(a.to_string(), "linux/arm64, linux/arm/v7");
        let one = Selection::parse("linux/arm64", false).unwrap();
        assert!(!one.is_several());
        for bad in ["", "linux/amd64,", "linux", "all,linux/amd64"] {
            assert!(Selection::parse(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn picks() {
        let cands = [p("linux/arm/v7"), p("linux/amd64"), p("linux/arm64")];
        let all = Selection::All.pick(&cands).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], choose(&Platform::host(), &cands).unwrap_or(0));
        let some = Selection::parse("linux/arm64,linux/arm/v7,linux/arm64/v8", false).unwrap();
        assert_eq!(some.pick(&cands), Ok(vec![2, 0]));
        let missing = Selection::parse("linux/amd64,linux/s390x", false).unwrap();
        assert_eq!(missing.pick(&cands), Err(p("linux/s390x")));
    }

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn normalises() {
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/7").to_string(), "linux/arm/v7");
        assert_eq!(p("Linux/AMD64").to_string(), "linux/amd64");
        assert_eq!(Platform::new("linux", "arm64", "v8"), p("linux/arm64"));
    }

    #[test]
    fn parse_arch() {
        assert_eq!(
            Platform::parse_arch("arm64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse_arch("arm/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        assert_eq!(
            Platform::parse_arch("linux/s390x").unwrap().to_string(),
            "linux/s390x"
        );
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/am d64",
            "linux/$x",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_is_linux_here() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(!h.arch.is_empty());
    }

    #[test]
    fn desktop_hosts_default_to_linux_images() {
        for (os, arch, want) in [
            ("linux", "x86_64", "linux/amd64"),
            ("linux", "aarch64", "linux/arm64"),
            ("linux", "arm", "linux/arm/v7"),
            ("windows", "x86_64", "linux/amd64"),
            ("windows", "aarch64", "linux/arm64"),
            ("macos", "aarch64", "linux/arm64"),
            ("freebsd", "x86_64", "freebsd/amd64"),
        ] {
            assert_eq!(
                Platform::default_for(os, arch).to_string(),
                want,
                "{os} {arch}"
            );
        }
    }

    #[test]
    fn choose_exact_variant_first() {
        let cands = [p("linux/arm/v6"), p("linux/arm/v7"), p("linux/arm64")];
        assert_eq!(choose(&p("linux/arm/v7"), &cands), Some(1));
        assert_eq!(choose(&p("linux/arm/v6"), &cands), Some(0));
        assert_eq!(choose(&p("linux/arm64/v8"), &cands), Some(2));
        assert_eq!(choose(&p("linux/arm/v5"), &cands), None);
    }

    #[test]
    fn choose_falls_back_to_no_variant() {
        let cands = [
            Platform::new("linux", "arm", "v6"),
            Platform {
                os: "linux".into(),
                arch: "arm".into(),
                variant: String::new(),
            },
        ];
        assert_eq!(choose(&p("linux/arm/v7"), &cands), Some(1));
    }

    #[test]
    fn choose_skips_unknown() {
        let cands = [p("unknown/unknown"), p("linux/amd64")];
        assert_eq!(choose(&p("linux/amd64"), &cands), Some(1));
        assert_eq!(choose(&p("unknown/unknown"), &cands), None);
    }

    #[test]
    fn amd64_any_variant_when_none_wanted() {
        let cands = [p("linux/amd64/v3")];
        assert_eq!(choose(&p("linux/amd64"), &cands), Some(0));
        assert_eq!(choose(&p("windows/amd64"), &cands), None);
    }
}
