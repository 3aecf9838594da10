//! The grammar of the parts of an image reference, as docker checks it:
//! path components are lowercase `[a-z0-9]` runs joined by `.`, `_`, `__`
//! or dashes, and a repository is 1 to 255 characters; tags are
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a registry is `host[:port]` or
//! `[v6][:port]`, its host-name labels letters, digits and inner dashes, its
//! port a number that fits in 16 bits.
//!
//! Each check returns a reason a person can act on. It does not split a
//! reference into its parts, apply Docker Hub's defaults or quote the whole
//! input; `reference.rs` does.

/// Checks a tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or
/// `-`.
pub(crate) fn check_tag(t: &str) -> Result<(), String> {
    let ok_first = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok_rest = |c: char| ok_first(c) || c == '.' || c == '-';
    if t.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if t.len() > 128 {
        return Err(format!(
            "the tag is {} characters long (at most 128)",
            t.len()
        ));
    }
    let mut chars = t.chars();
    if !chars.next().is_some_and(ok_first) || !chars.all(ok_rest) {
        return Err(format!(
            "tag {t:?} may only contain letters, digits, '_', '.' and '-', and may not start with '.' or '-'"
        ));
    }
    Ok(())
}

/// Checks `host[:port]` (or `[v6]:port`) as a registry name.
pub fn check_registry(r: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("registry {r:?} has an unclosed '['"));
        };
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("registry {r:?} is not a valid IPv6 address"));
        }
        match after {
            "" => (None, None),
            p if p.starts_with(':') => (None, Some(&p[1..])),
            _ => return Err(format!("registry {r:?} has text after ']'")),
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !h.split('.').all(label_ok) {
            return Err(format!("registry host {h:?} is not a valid host name"));
        }
    }
    if let Some(p) = port {
        if p.is_empty()
            || !p.chars().all(|c| c.is_ascii_digit())
            || !p.parse::<u16>().is_ok_and(|n| n > 0)
        {
            return Err(format!(
                "registry port {p:?} is not a number from 1 to 65535"
            ));
        }
    }
    Ok(())
}

/// Checks a repository path: 1 to 255 characters, lowercase, each
/// `/`-separated component by [`check_component`].
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".into());
    }
    if path.len() > 255 {
        return Err(format!(
            "the repository name is {} characters long (at most 255)",
            path.len()
        ));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    for comp in path.split('/') {
        check_component(comp)?;
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn check_component(comp: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bad = || {
        Err(format!(
            "path component {comp:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
        ))
    };
    if comp.is_empty() {
        return Err("the repository name has an empty path component".into());
    }
    let (mut sep, mut prev_alnum) = (String::new(), false);
    for c in comp.chars() {
        if alnum(c) {
            if !sep.is_empty() {
                let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|s| s == '-');
                if !ok || !prev_alnum {
                    return bad();
                }
                sep.clear();
            }
            prev_alnum = true;
        } else if matches!(c, '.' | '_' | '-') {
            if !prev_alnum && sep.is_empty() {
                return bad();
            }
            sep.push(c);
        } else {
            return bad();
        }
    }
    if !sep.is_empty() {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_separators() {
        for ok in ["a.b", "a_b", "a__b", "a---b", "a-b/c.d_e", "x/y/z"] {
            check_path(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn uppercase_reason() {
        let err = check_path("Nginx").unwrap_err();
        assert!(err.contains("lowercase"), "{err}");
    }
}
