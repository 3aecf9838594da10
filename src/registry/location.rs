//! Where a URL points: its `host:port` ([`host_of`]), and a `Location`
//! header (absolute, or relative to the URL it came from) as an absolute
//! URL ([`resolve`]), for redirects and upload sessions. Pure string work:
//! nothing is sent, nothing checked beyond the shape.

/// `http://host:port/path?query` → `host:port`.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Resolves a `Location` against the URL it came from.
pub fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve() {
        assert_eq!(
            resolve("http://a:1/v2/x/blobs/y", "/s3/z?q=1"),
            "http://a:1/s3/z?q=1"
        );
        assert_eq!(resolve("http://a:1/v2/x", "http://b:2/z"), "http://b:2/z");
        assert_eq!(resolve("http://a:1/v2/x", "y"), "http://a:1/v2/y");
        assert_eq!(host_of("http://a:1/v2/?q"), "a:1");
    }
}
