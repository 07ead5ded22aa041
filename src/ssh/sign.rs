//! Public-key authentication that keeps OpenSSL's key decoder out of the per-host path.
//!
//! Given a key from memory, libssh2 parses the private key with `PEM_read_bio_PrivateKey`
//! twice per session (once to derive the public key, once to sign) before falling back to its
//! own OpenSSH-format parser. With OpenSSL 3 each call builds an `OSSL_DECODER` context — a
//! walk over every provider's decoders under global locks — which was half of prun's client
//! CPU per host. So: ed25519 keys are parsed once per run (ssh-key) and sign through
//! `libssh2_userauth_publickey` with a callback (ed25519-dalek, ~20 µs); for the other key
//! types the public key is handed over, which saves libssh2 one of the two decodes.

use super::keys::KeyFile;
use libssh2_sys as raw;
use signature::Signer;
use ssh2::{Error, ErrorCode, Session};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uchar, c_void};

type SignFn = unsafe extern "C" fn(
    session: *mut raw::LIBSSH2_SESSION,
    sig: *mut *mut c_uchar,
    sig_len: *mut libc::size_t,
    data: *const c_uchar,
    data_len: libc::size_t,
    abstract_: *mut *mut c_void,
) -> c_int;

unsafe extern "C" {
    // In libssh2 (userauth.c) but not bound by libssh2-sys.
    fn libssh2_userauth_publickey(
        session: *mut raw::LIBSSH2_SESSION,
        username: *const c_char,
        pubkeydata: *const c_uchar,
        pubkeydata_len: libc::size_t,
        sign_callback: Option<SignFn>,
        abstract_: *mut *mut c_void,
    ) -> c_int;
}

/// libssh2's sign callback: `*abstract_` is the `ed25519_dalek::SigningKey` to sign with. The
/// signature is allocated with `malloc`, which is how the session frees it (its allocator is
/// [`super::memory`]'s: `free` for everything but the session struct).
unsafe extern "C" fn sign_cb(
    _session: *mut raw::LIBSSH2_SESSION,
    sig: *mut *mut c_uchar,
    sig_len: *mut libc::size_t,
    data: *const c_uchar,
    data_len: libc::size_t,
    abstract_: *mut *mut c_void,
) -> c_int {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: libssh2 passes back the `abstract_` pointer we gave it, which points at a
        // live `SigningKey` for the duration of the call, and `data` of `data_len`.
        let key = unsafe { &*(*abstract_ as *const ed25519_dalek::SigningKey) };
        let msg = unsafe { std::slice::from_raw_parts(data, data_len) };
        let Ok(s) = key.try_sign(msg) else {
            return -1;
        };
        let bytes = s.to_bytes();
        // SAFETY: a fresh malloc of bytes.len(), filled before it is handed to libssh2.
        unsafe {
            let p = libc::malloc(bytes.len()) as *mut c_uchar;
            if p.is_null() {
                return -1;
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            *sig = p;
            *sig_len = bytes.len();
        }
        0
    });
    r.unwrap_or(-1)
}

/// One public-key authentication attempt with `key` (non-blocking aware: EAGAIN comes back as
/// an error with that code, and the call is repeated with the same arguments).
pub fn userauth(sess: &Session, user: &str, key: &KeyFile) -> Result<(), Error> {
    userauth_as(sess, user, key, None)
}

/// [`userauth`] offering `cert` (a certificate of the key, wire format) instead of the plain
/// key.
pub fn userauth_cert(sess: &Session, user: &str, key: &KeyFile, cert: &[u8]) -> Result<(), Error> {
    userauth_as(sess, user, key, Some(cert))
}

fn userauth_as(
    sess: &Session,
    user: &str,
    key: &KeyFile,
    cert: Option<&[u8]>,
) -> Result<(), Error> {
    if key.signer.is_none()
        && let Some(c) = cert
    {
        // libssh2 signs: hand it the certificate as the public key
        let line = ssh_key::Certificate::from_bytes(c)
            .ok()
            .and_then(|c| c.to_openssh().ok());
        return sess.userauth_pubkey_memory(
            user,
            line.as_deref(),
            &key.private,
            key.passphrase.as_ref().map(crate::secret::Secret::expose),
        );
    }
    if let Some(signer) = &key.signer {
        let blob = cert.unwrap_or(key.public_blob().unwrap_or_default());
        let user = CString::new(user).map_err(|_| Error::from_errno(ErrorCode::Session(-34)))?;
        let mut abstract_ = signer as *const ed25519_dalek::SigningKey as *mut c_void;
        let guard = sess.raw();
        let raw_sess = &*guard as *const raw::LIBSSH2_SESSION as *mut raw::LIBSSH2_SESSION;
        // SAFETY: valid session (its lock held), NUL-terminated user, blob and the signer live
        // for the whole call; the callback only reads them.
        let rc = unsafe {
            libssh2_userauth_publickey(
                raw_sess,
                user.as_ptr(),
                blob.as_ptr(),
                blob.len(),
                Some(sign_cb),
                &mut abstract_,
            )
        };
        return match rc {
            0 => Ok(()),
            raw::LIBSSH2_ERROR_EAGAIN => Err(Error::new(ErrorCode::Session(rc), "would block")),
            _ => Err(Error::from_session_error_raw(raw_sess, rc)),
        };
    }
    sess.userauth_pubkey_memory(
        user,
        key.public_line.as_deref(),
        &key.private,
        key.passphrase.as_ref().map(crate::secret::Secret::expose),
    )
}
