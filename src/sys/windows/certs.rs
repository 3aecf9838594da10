//! The system's trusted certificate authorities on Windows, for
//! [`crate::sys::system_root_certificates`]: the current user's `ROOT`
//! store (which shows the machine's, Group Policy's and the enterprise's
//! roots too), each certificate that may serve TLS servers, as DER.

use std::ffi::OsStr;

use windows_sys::Win32::Foundation::{GetLastError, CRYPT_E_NOT_FOUND};
use windows_sys::Win32::Security::Cryptography::{
    CertCloseStore, CertEnumCertificatesInStore, CertFreeCertificateContext,
    CertGetEnhancedKeyUsage, CertOpenSystemStoreW, CERT_CONTEXT, CTL_USAGE,
};

use super::wide;

/// The object identifier of TLS server authentication.
const SERVER_AUTH: &[u8] = b"1.3.6.1.5.5.7.3.1";

/// Whether the store allows `cert` for TLS servers: either it restricts
/// no use (no extended key usage at all), or server authentication is
/// among the uses it allows.
///
/// # Safety
/// `cert` must point to a live certificate context.
unsafe fn usable_for_servers(cert: *const CERT_CONTEXT) -> bool {
    let mut size = 0u32;
    // SAFETY: asks for the size only.
    if unsafe { CertGetEnhancedKeyUsage(cert, 0, std::ptr::null_mut(), &mut size) } == 0 {
        // SAFETY: no arguments.
        return unsafe { GetLastError() } == CRYPT_E_NOT_FOUND as u32;
    }
    // u64 words: the buffer holds a CTL_USAGE (pointer aligned) followed
    // by the identifiers it points to.
    let mut buf = vec![0u64; (size as usize).div_ceil(8)];
    let usage = buf.as_mut_ptr().cast::<CTL_USAGE>();
    // SAFETY: `buf` has the `size` bytes the first call asked for.
    if unsafe { CertGetEnhancedKeyUsage(cert, 0, usage, &mut size) } == 0 {
        return false;
    }
    // SAFETY: filled by the call above.
    let usage = unsafe { &*usage };
    if usage.cUsageIdentifier == 0 {
        // No identifiers: valid for every use if no restriction was
        // found, for none if the restrictions left nothing.
        // SAFETY: no arguments.
        return unsafe { GetLastError() } == CRYPT_E_NOT_FOUND as u32;
    }
    (0..usage.cUsageIdentifier as usize).any(|i| {
        // SAFETY: `cUsageIdentifier` NUL-terminated strings, in `buf`.
        let oid = unsafe { std::ffi::CStr::from_ptr((*usage.rgpszUsageIdentifier.add(i)).cast()) };
        oid.to_bytes() == SERVER_AUTH
    })
}

/// Stops reading a store that holds more than this (a sane one has a few
/// hundred).
const MAX_STORE_CERTIFICATES: usize = 10_000;

pub(in crate::sys) const CA_BUNDLES: &[&str] = &[];

pub(in crate::sys) fn system_root_certificates() -> Vec<Vec<u8>> {
    let name = wide(OsStr::new("ROOT"));
    // SAFETY: `name` is NUL-terminated. The current user's ROOT store
    // shows the machine's roots, Group Policy's and the enterprise's too.
    let store = unsafe { CertOpenSystemStoreW(0, name.as_ptr()) };
    if store.is_null() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut cert: *mut CERT_CONTEXT = std::ptr::null_mut();
    for _ in 0..MAX_STORE_CERTIFICATES {
        // SAFETY: `cert` is null or the previous context of this store,
        // which this call frees.
        cert = unsafe { CertEnumCertificatesInStore(store, cert) };
        if cert.is_null() {
            break;
        }
        // SAFETY: a live context from the store.
        let (der, usable) = unsafe {
            let c = &*cert;
            let der = std::slice::from_raw_parts(c.pbCertEncoded, c.cbCertEncoded as usize);
            (der.to_vec(), usable_for_servers(cert))
        };
        if usable {
            found.push(der);
        }
    }
    // SAFETY: a context left by a loop stopped at the limit, then the
    // store opened above.
    unsafe {
        if !cert.is_null() {
            CertFreeCertificateContext(cert);
        }
        CertCloseStore(store, 0);
    }
    found
}

pub(in crate::sys) const SYSTEM_ROOTS_COMPLETE: bool = false;
