//! Which certificate authorities the client trusts: the system's store
//! where there is one (`SSL_CERT_FILE`, `SSL_CERT_DIR`, Windows' certificate
//! store, or the usual bundle files of Debian, Red Hat, SUSE, Alpine and
//! others), else the Mozilla roots built into the binary, so that it works
//! on a minimal host without `/etc/ssl`; plus the CAs of `--ca-cert`. On
//! Windows the bundled roots join the store's, since Windows fetches many
//! public roots only when a server first needs one. Also tells certificate
//! failures apart from other TLS failures.
//!
//! This module only builds the trust settings; `transport.rs` makes the
//! connections. `--insecure` (no verification at all) is applied there.

use std::fs;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, RootCerts};

use crate::error::{Error, Result};

/// The roots to trust, given the `--ca-cert` files.
pub fn roots(extra: &[PathBuf]) -> Result<RootCerts> {
    let mut certs = Vec::new();
    for path in extra {
        let found = read_pem(path)?;
        if found.is_empty() {
            return Err(Error::Usage(format!(
                "--ca-cert {}: no PEM certificate in it",
                path.display()
            )));
        }
        certs.extend(found);
    }
    let (system, source, complete) = system_certs();
    if system.is_empty() && certs.is_empty() {
        log::debug!("no system CA store; using the bundled Mozilla roots");
        return Ok(RootCerts::WebPki);
    }
    if system.is_empty() {
        log::debug!("no system CA store; using the bundled Mozilla roots and --ca-cert");
        certs.extend(bundled());
    } else {
        log::debug!("trusting {} CA certificates from {source}", system.len());
        certs.extend(system);
        if !complete {
            log::debug!("and the bundled Mozilla roots beside them");
            certs.extend(bundled());
        }
    }
    Ok(RootCerts::new_with_certs(&certs))
}

fn bundled() -> impl Iterator<Item = Certificate<'static>> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
}

/// The system's CA certificates, where they come from, and whether they
/// are all it trusts.
fn system_certs() -> (Vec<Certificate<'static>>, String, bool) {
    let from_env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut store = Vec::new();
    let mut complete = true;
    if let Some(f) = from_env("SSL_CERT_FILE") {
        files.push(f);
    } else {
        store = crate::sys::system_root_certificates();
        if !store.is_empty() {
            complete = crate::sys::SYSTEM_ROOTS_COMPLETE;
        } else if let Some(b) = crate::sys::CA_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
        {
            files.push(b.to_path_buf());
        }
    }
    if let Some(dir) = from_env("SSL_CERT_DIR") {
        if let Ok(entries) = fs::read_dir(&dir) {
            // As OpenSSL reads a CA directory: the `<hash>.<n>` files only
            // (not a bundle kept beside them).
            let mut in_dir: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| is_hash_name(&n.to_string_lossy()))
                })
                .filter(|p| p.is_file())
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        }
    }
    let mut source: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if !store.is_empty() {
        source.insert(0, "the system's certificate store".into());
    }
    let mut seen = std::collections::HashSet::new();
    let certs = store
        .into_iter()
        .map(|der| Certificate::from_der(&der).to_owned())
        .chain(files.iter().flat_map(|f| match read_pem(f) {
            Ok(c) => c,
            Err(e) => {
                log::debug!("skipping {}: {e}", f.display());
                Vec::new()
            }
        }))
        .filter(|c| seen.insert(c.der().to_vec()))
        .collect();
    (certs, source.join(", "), complete)
}

/// `5ad8a5d6.0`: eight hex digits, a dot, a number.
fn is_hash_name(name: &str) -> bool {
    let Some((hash, n)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// The certificates in a PEM file.
fn read_pem(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = fs::read(path).map_err(|e| Error::io("read the certificate file", path, e))?;
    Ok(ureq::tls::parse_pem(&bytes)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect())
}

/// Whether a transport error is the server's certificate being refused
/// (as opposed to, say, TLS spoken to a plain-HTTP port). ureq hands
/// rustls' errors over either as they are or inside an I/O error.
pub fn is_certificate_error(e: &ureq::Error) -> bool {
    let is_cert = |r: &rustls::Error| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_)
        )
    };
    match e {
        ureq::Error::Rustls(r) => is_cert(r),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(is_cert),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_in_both_wrappings() {
        let cert = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(is_certificate_error(&ureq::Error::Rustls(cert())));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert());
        assert!(is_certificate_error(&ureq::Error::Io(io)));
        let other = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert!(!is_certificate_error(&ureq::Error::Io(other)));
        assert!(!is_certificate_error(&ureq::Error::ConnectionFailed));
    }

    #[test]
    fn bundled_or_system_roots_without_flags() {
        assert!(roots(&[]).is_ok());
    }

    #[test]
    fn ca_directory_names() {
        assert!(is_hash_name("5ad8a5d6.0"));
        assert!(is_hash_name("002C0B4F.12"));
        assert!(!is_hash_name("ca-certificates.crt"));
        assert!(!is_hash_name("5ad8a5d6.pem"));
        assert!(!is_hash_name("5ad8a5d.0"));
    }

    #[test]
    fn ca_cert_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("pulltar-tls-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        fs::write(&f, "not a certificate\n").unwrap();
        let e = roots(&[f]).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let missing = roots(&[dir.join("missing.pem")]).unwrap_err();
        assert!(missing.to_string().contains("missing.pem"), "{missing}");
        let _ = fs::remove_dir_all(&dir);
    }
}
