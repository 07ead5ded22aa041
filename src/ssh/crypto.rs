//! libssh2's hot crypto, done here: the X25519 key exchange and the host key's Ed25519
//! signature check (curve25519-dalek and ed25519-dalek instead of libssh2's OpenSSL backend),
//! its random bytes (rand instead of OpenSSL), and the ChaCha20 and Poly1305 of
//! `chacha20-poly1305@openssh.com` (RustCrypto's SIMD ChaCha20, and OpenSSL's assembly
//! Poly1305 through one `EVP_MAC` context per thread, instead of libssh2's portable C).
//!
//! With OpenSSL 3 the key exchange and the signature check were more than half of prun's
//! instructions per host
//! (callgrind, 49 hosts: X25519 key generation and derivation ~1.8 M instructions a host,
//! most of it `EVP_PKEY` construction around two scalar multiplications; the host key's
//! Ed25519 signature check ~1.5 M). The build script links every libssh2 call to them here
//! (`-Wl,--wrap=ssh2_curve25519_new` and the others), so libssh2's kex.c and hostkey.c run
//! unchanged. What each function returns and allocates is what libssh2's OpenSSL backend
//! (openssl.c in libssh2-sys 0.3.4) does:
//!
//! - `ssh2_random` (every packet's padding, the key exchange's cookie): rand's thread-local
//!   CSPRNG instead of OpenSSL 3's `RAND_bytes` (locks and provider lookups: 0.16 M
//!   instructions per host saved);
//! - `ssh2_curve25519_new`: a fresh 32-byte private key (the same CSPRNG) and its public
//!   key, both allocated with the session's allocator — `malloc`: every session's allocator
//!   is [`super::memory`]'s, which is `malloc`/`free` for everything but the session struct
//!   itself — and freed by libssh2;
//! - `ssh2_curve25519_gen_k`: the shared secret into the caller's BIGNUM (computed on the
//!   Edwards form of the server's point, see [`x25519`]), refusing the all-zero result
//!   (RFC 8731 §3) as OpenSSL does;
//! - `ssh2_ed25519_verify`: 0 when the signature of the message verifies under the host key
//!   that libssh2 holds as an `EVP_PKEY` (its raw 32 bytes are read back).
//! - `chacha_encrypt_bytes`: DJB's ChaCha20 on the state libssh2 set up (key, 64-bit block
//!   counter, 64-bit nonce), the counter advanced by the blocks used; a state this cannot
//!   take (a 128-bit key, a counter past 32 bits) goes to libssh2's own (`__real_`), and so
//!   does every call in a debug build, where the generic cipher code is unoptimised.
//! - `poly1305_auth`: the one-shot tag (OpenSSL's; RustCrypto's if OpenSSL has no
//!   `POLY1305`, as under a FIPS-only configuration).
//!
//! The portable ChaCha20 and Poly1305 were a sixth of the instructions per host (callgrind:
//! 0.88 M for a 26 KB output, 0.4 M after); the CPU time they save shows on bulk output
//! (`cat` of 20 MB on 19 hosts: 43% less user CPU), not on 26 KB.

use curve25519_dalek::montgomery::MontgomeryPoint;
use libssh2_sys as raw;
use std::os::raw::c_int;
use zeroize::Zeroize;

const KEY_LEN: usize = 32;

/// Keeps the wrappers in the link: a binary that reaches libssh2's key exchange reaches
/// this too (called from the login path).
#[inline(never)]
pub fn linked() {
    std::hint::black_box((
        __wrap_ssh2_curve25519_new as *const (),
        __wrap_ssh2_curve25519_gen_k as *const (),
        __wrap_ssh2_ed25519_verify as *const (),
        __wrap_chacha_encrypt_bytes as *const (),
        __wrap_poly1305_auth as *const (),
        __wrap_ssh2_random as *const (),
    ));
}

/// # Safety
/// Called by libssh2 only: `buf` writable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_ssh2_random(buf: *mut u8, len: libc::size_t) -> c_int {
    if len == 0 {
        return 0;
    }
    if buf.is_null() {
        return -1;
    }
    // SAFETY: the caller's contract.
    fill_random(unsafe { std::slice::from_raw_parts_mut(buf, len) });
    0
}

/// Cryptographically secure random bytes: rand's thread-local generator (ChaCha12, seeded and
/// periodically reseeded from the OS, reseeded after fork) — no lock or system call per call,
/// unlike OpenSSL 3's `RAND_bytes`, which libssh2 calls for every packet's padding.
fn fill_random(buf: &mut [u8]) {
    use rand::RngCore;
    rand::thread_rng().fill_bytes(buf);
}

/// libssh2's `struct chacha_ctx` (chacha.h): DJB's state words.
#[repr(C)]
pub struct ChachaCtx {
    input: [u32; 16],
}

/// "expand 32-byte k": the state's first words for a 256-bit key.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

unsafe extern "C" {
    // libssh2's own (chacha.c), reached through --wrap
    fn __real_chacha_encrypt_bytes(x: *mut ChachaCtx, m: *const u8, c: *mut u8, bytes: usize);
}

/// # Safety
/// Called by libssh2 only: `x` a set-up state, `m` readable and `c` writable for `bytes`
/// (the same buffer, or apart).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_chacha_encrypt_bytes(
    x: *mut ChachaCtx,
    m: *const u8,
    c: *mut u8,
    bytes: usize,
) {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        // Unoptimised, the generic cipher code is ~80x slower than libssh2's C: debug builds
        // (the test suite) keep libssh2's own; the unit test compares the two.
        if cfg!(debug_assertions) || !super::fiber::deep(|| rust_chacha(x, m, c, bytes)) {
            __real_chacha_encrypt_bytes(x, m, c, bytes);
        }
    }
}

/// ChaCha20 with RustCrypto's SIMD code; `false` (nothing done) for a state it cannot take.
///
/// # Safety
/// As [`__wrap_chacha_encrypt_bytes`].
unsafe fn rust_chacha(x: *mut ChachaCtx, m: *const u8, c: *mut u8, bytes: usize) -> bool {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    if bytes == 0 {
        return true;
    }
    // SAFETY: the caller's contract.
    let ctx = unsafe { &mut *x };
    let start = u64::from(ctx.input[12]);
    let end = start + (bytes as u64).div_ceil(64);
    if ctx.input[..4] != SIGMA || ctx.input[13] != 0 || end > u64::from(u32::MAX) {
        return false;
    }
    let mut key = [0u8; 32];
    for (i, w) in ctx.input[4..12].iter().enumerate() {
        key[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    let mut iv = [0u8; 8];
    iv[..4].copy_from_slice(&ctx.input[14].to_le_bytes());
    iv[4..].copy_from_slice(&ctx.input[15].to_le_bytes());
    let mut cipher = chacha20::ChaCha20Legacy::new(&key.into(), &iv.into());
    key.zeroize();
    cipher.seek(start * 64);
    // SAFETY: the caller's contract; the copy first makes it in place.
    let buf = unsafe {
        if !std::ptr::eq(m, c) {
            std::ptr::copy(m, c, bytes);
        }
        std::slice::from_raw_parts_mut(c, bytes)
    };
    cipher.apply_keystream(buf);
    ctx.input[12] = end as u32;
    true
}

/// # Safety
/// Called by libssh2 only: `out` writable for 16 bytes, `m` readable for `inlen`, `key` for 32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_poly1305_auth(
    out: *mut u8,
    m: *const u8,
    inlen: usize,
    key: *const u8,
) {
    use poly1305::universal_hash::KeyInit;
    // SAFETY: the caller's contract.
    unsafe {
        let k: &[u8; 32] = &*key.cast::<[u8; 32]>();
        let msg = if inlen == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(m, inlen)
        };
        let out = &mut *out.cast::<[u8; 16]>();
        super::fiber::deep(|| {
            if !openssl_poly1305(k, msg, out) {
                let tag = poly1305::Poly1305::new(&(*k).into()).compute_unpadded(msg);
                out.copy_from_slice(&tag);
            }
        });
    }
}

/// OpenSSL's `POLY1305` MAC, fetched once for the process (null: not available).
fn poly1305_mac() -> *mut openssl_sys::EVP_MAC {
    static MAC: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: a fetch by name from the default library context; the object lives for the
    // process (never freed) and may be used from any thread.
    *MAC.get_or_init(|| unsafe {
        openssl_sys::EVP_MAC_fetch(std::ptr::null_mut(), c"POLY1305".as_ptr(), std::ptr::null())
            as usize
    }) as *mut openssl_sys::EVP_MAC
}

/// This thread's Poly1305 context, re-keyed for every message; freed with the thread.
struct MacCtx(*mut openssl_sys::EVP_MAC_CTX);

impl Drop for MacCtx {
    fn drop(&mut self) {
        // SAFETY: a context this thread made and no one else uses.
        unsafe { openssl_sys::EVP_MAC_CTX_free(self.0) };
    }
}

thread_local! {
    static MAC_CTX: std::cell::RefCell<Option<MacCtx>> = const { std::cell::RefCell::new(None) };
}

/// The Poly1305 tag of `msg` under the one-time `key` with OpenSSL's assembly code; false
/// (nothing written) when OpenSSL cannot. With a context kept per thread this is 0.12 µs for
/// a 32-byte packet and 16 µs for 32 KB on this project's VM, where RustCrypto's AVX2 code
/// took 0.8 µs and 29 µs: its key setup (powers of r, with intrinsics that are not inlined)
/// dominates SSH's short packets, each of which has a key of its own.
fn openssl_poly1305(key: &[u8; 32], msg: &[u8], out: &mut [u8; 16]) -> bool {
    let mac = poly1305_mac();
    if mac.is_null() {
        return false;
    }
    MAC_CTX.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return false;
        };
        if slot.is_none() {
            // SAFETY: a new context for the fetched MAC (null on failure, checked).
            let ctx = unsafe { openssl_sys::EVP_MAC_CTX_new(mac) };
            if ctx.is_null() {
                return false;
            }
            *slot = Some(MacCtx(ctx));
        }
        let ctx = slot.as_ref().map_or(std::ptr::null_mut(), |c| c.0);
        let mut len = 0usize;
        // SAFETY: this thread's context; the key, message and output buffers have the
        // lengths given.
        unsafe {
            openssl_sys::EVP_MAC_init(ctx, key.as_ptr(), key.len(), std::ptr::null()) == 1
                && openssl_sys::EVP_MAC_update(ctx, msg.as_ptr(), msg.len()) == 1
                && openssl_sys::EVP_MAC_final(ctx, out.as_mut_ptr(), &mut len, out.len()) == 1
                && len == out.len()
        }
    })
}

/// # Safety
/// Called by libssh2 only: `out_public_key`/`out_private_key` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_ssh2_curve25519_new(
    _session: *mut raw::LIBSSH2_SESSION,
    out_public_key: *mut *mut u8,
    out_private_key: *mut *mut u8,
) -> c_int {
    let mut secret = [0u8; KEY_LEN];
    fill_random(&mut secret);
    let public = super::fiber::deep(|| MontgomeryPoint::mul_base_clamped(secret).to_bytes());
    let rc = unsafe {
        if !out_private_key.is_null() && !give(out_private_key, &secret) {
            -1
        } else if !out_public_key.is_null() && !give(out_public_key, &public) {
            if !out_private_key.is_null() {
                libc::free((*out_private_key).cast());
                *out_private_key = std::ptr::null_mut();
            }
            -1
        } else {
            0
        }
    };
    secret.zeroize();
    rc
}

/// A `malloc`ed copy of `bytes` in `*out` (libssh2 frees it with the session's `free`).
unsafe fn give(out: *mut *mut u8, bytes: &[u8; KEY_LEN]) -> bool {
    // SAFETY: malloc of KEY_LEN bytes, checked, then filled.
    unsafe {
        let p = libc::malloc(KEY_LEN).cast::<u8>();
        if p.is_null() {
            return false;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, KEY_LEN);
        *out = p;
    }
    true
}

/// # Safety
/// Called by libssh2 only: `k` points at a BIGNUM pointer, the keys at 32 bytes each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_ssh2_curve25519_gen_k(
    k: *mut *mut openssl_sys::BIGNUM,
    private_key: *const u8,
    server_public_key: *const u8,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        if k.is_null() || (*k).is_null() || private_key.is_null() || server_public_key.is_null() {
            return -1;
        }
        let mut secret = [0u8; KEY_LEN];
        let mut peer = [0u8; KEY_LEN];
        std::ptr::copy_nonoverlapping(private_key, secret.as_mut_ptr(), KEY_LEN);
        std::ptr::copy_nonoverlapping(server_public_key, peer.as_mut_ptr(), KEY_LEN);
        let mut shared = super::fiber::deep(|| x25519(peer, secret));
        secret.zeroize();
        let rc = if shared == [0u8; KEY_LEN]
            || openssl_sys::BN_bin2bn(shared.as_ptr(), KEY_LEN as c_int, *k).is_null()
        {
            -1
        } else {
            0
        };
        shared.zeroize();
        rc
    }
}

/// X25519 (RFC 7748 §5): the clamped `secret` times the peer's u-coordinate, the same bytes
/// as the Montgomery ladder gives. A point on the curve goes through its Edwards form, where
/// curve25519-dalek multiplies with AVX2 when the CPU has it: 40 µs against the ladder's 54
/// here, the ladder being the largest single cost of a login. The sign chosen for the
/// Edwards point does not matter (u(kP) = u(-kP)); the peer's value is public, so the branch
/// leaks nothing. A u-coordinate on the twist (RFC 7748 accepts one; no honest server sends
/// one) and u = -1 have no Edwards form and take the ladder.
fn x25519(peer: [u8; KEY_LEN], secret: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let point = MontgomeryPoint(peer);
    match point.to_edwards(0) {
        Some(e) => e.mul_clamped(secret).to_montgomery().to_bytes(),
        None => point.mul_clamped(secret).to_bytes(),
    }
}

/// # Safety
/// Called by libssh2 only: `ed_ctx` is the host key's `EVP_PKEY`, `s` and `m` readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_ssh2_ed25519_verify(
    ed_ctx: *mut openssl_sys::EVP_PKEY,
    _session: *mut raw::LIBSSH2_SESSION,
    s: *const u8,
    s_len: libc::size_t,
    m: *const u8,
    m_len: libc::size_t,
) -> c_int {
    if ed_ctx.is_null() || s.is_null() || s_len != ed25519_dalek::SIGNATURE_LENGTH {
        return -1;
    }
    let mut public = [0u8; KEY_LEN];
    let mut len: libc::size_t = KEY_LEN;
    // SAFETY: a 32-byte buffer and its length; the key is libssh2's.
    if unsafe { openssl_sys::EVP_PKEY_get_raw_public_key(ed_ctx, public.as_mut_ptr(), &mut len) }
        != 1
        || len != KEY_LEN
    {
        return -1;
    }
    // SAFETY: the caller's contract (m may be empty).
    let (sig, msg) = unsafe {
        (
            std::slice::from_raw_parts(s, s_len),
            if m_len == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(m, m_len)
            },
        )
    };
    super::fiber::deep(|| verify(&public, sig, msg))
}

/// 0 when `sig` is `key`'s Ed25519 signature of `msg` (RFC 8032, as OpenSSL checks it: the
/// scalar canonical, no cofactor), else -1.
fn verify(key: &[u8; KEY_LEN], sig: &[u8], msg: &[u8]) -> c_int {
    use ed25519_dalek::Verifier;
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return -1;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return -1;
    };
    if vk.verify(msg, &sig).is_ok() { 0 } else { -1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1: Alice's and Bob's keys and their shared secret.
    #[test]
    fn x25519_matches_rfc7748() {
        fn hex(s: &str) -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        }
        let a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let a_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let k = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(MontgomeryPoint::mul_base_clamped(a).to_bytes(), a_pub);
        assert_eq!(MontgomeryPoint(b_pub).mul_clamped(a).to_bytes(), k);
        // through the wrappers: libssh2's types
        unsafe {
            let bn = openssl_sys::BN_new();
            let mut bnp = bn;
            assert_eq!(
                __wrap_ssh2_curve25519_gen_k(&mut bnp, a.as_ptr(), b_pub.as_ptr()),
                0
            );
            let mut back = [0u8; 32];
            assert_eq!(openssl_sys::BN_bn2binpad(bn, back.as_mut_ptr(), 32), 32);
            assert_eq!(back, k);
            // a low-order point gives the all-zero secret: refused
            assert_eq!(
                __wrap_ssh2_curve25519_gen_k(&mut bnp, a.as_ptr(), [0u8; 32].as_ptr()),
                -1
            );
            openssl_sys::BN_free(bn);
            let (mut p, mut s) = (std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(
                __wrap_ssh2_curve25519_new(std::ptr::null_mut(), &mut p, &mut s),
                0
            );
            let secret: [u8; 32] = std::slice::from_raw_parts(s, 32).try_into().unwrap();
            let public: [u8; 32] = std::slice::from_raw_parts(p, 32).try_into().unwrap();
            assert_eq!(MontgomeryPoint::mul_base_clamped(secret).to_bytes(), public);
            libc::free(p.cast());
            libc::free(s.cast());
        }
    }

    /// The Edwards route gives the ladder's bytes for every kind of u: points of the curve,
    /// random bytes (half of them on the twist), small-order points, u = -1 and non-canonical
    /// encodings (u >= p, the top bit set).
    #[test]
    fn x25519_through_edwards_gives_the_ladders_bytes() {
        let mut rng = fastrand::Rng::with_seed(25519);
        let mut bytes = || -> [u8; 32] { std::array::from_fn(|_| rng.u8(..)) };
        let p_minus = |d: u8| -> [u8; 32] {
            let mut u = [0xffu8; 32];
            u[0] = 0xed - d;
            u[31] = 0x7f;
            u
        };
        let mut peers: Vec<[u8; 32]> = Vec::new();
        for _ in 0..64 {
            peers.push(MontgomeryPoint::mul_base_clamped(bytes()).to_bytes());
            peers.push(bytes());
        }
        let mut one = [0u8; 32];
        one[0] = 1;
        // small order (RFC 7748's and libsodium's blocklist), 0, 1, p-1, p, p+1, all ones
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(&[
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ]);
        let mut p_plus_one = p_minus(0);
        p_plus_one[0] = 0xee;
        peers.extend([
            [0u8; 32],
            one,
            order8,
            p_minus(1),
            p_minus(0),
            p_plus_one,
            [0xff; 32],
        ]);
        let mut took_twist = 0;
        for peer in peers {
            let k = bytes();
            took_twist += usize::from(MontgomeryPoint(peer).to_edwards(0).is_none());
            assert_eq!(
                x25519(peer, k),
                MontgomeryPoint(peer).mul_clamped(k).to_bytes(),
                "u = {peer:02x?}"
            );
        }
        assert!(took_twist > 10, "the twist's fallback was exercised");
    }

    unsafe extern "C" {
        fn __real_poly1305_auth(out: *mut u8, m: *const u8, inlen: usize, key: *const u8);
        fn chacha_keysetup(x: *mut ChachaCtx, k: *const u8, kbits: u32);
        fn chacha_ivsetup(x: *mut ChachaCtx, iv: *const u8, counter: *const u8);
    }

    /// The Rust ChaCha20 and Poly1305 give libssh2's own results, byte for byte, for the
    /// lengths and counters SSH uses and odd ones (both are in this binary through --wrap).
    #[test]
    fn chacha_and_poly1305_match_libssh2s_own() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [1usize, 4, 32, 63, 64, 65, 200, 4096, 32_768 + 13] {
            let key: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
            let iv: Vec<u8> = (0..8).map(|_| rng.u8(..)).collect();
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            for counter in [
                None,
                Some([1u8, 0, 0, 0, 0, 0, 0, 0]),
                Some([0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
                Some([0, 0, 0, 0, 1, 0, 0, 0]),
            ] {
                let ctr = counter.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
                unsafe {
                    let mut a = ChachaCtx { input: [0; 16] };
                    chacha_keysetup(&mut a, key.as_ptr(), 256);
                    chacha_ivsetup(&mut a, iv.as_ptr(), ctr);
                    let mut b = ChachaCtx { input: a.input };
                    let mut want = vec![0u8; len];
                    __real_chacha_encrypt_bytes(&mut a, data.as_ptr(), want.as_mut_ptr(), len);
                    let mut got = data.clone(); // in place, as libssh2 calls it for the poly key
                    if !rust_chacha(&mut b, got.as_ptr(), got.as_mut_ptr(), len) {
                        __real_chacha_encrypt_bytes(&mut b, data.as_ptr(), got.as_mut_ptr(), len);
                    }
                    assert!(got == want, "len {len} counter {counter:?}");
                    assert_eq!(a.input, b.input, "the state after, len {len}");
                }
            }
            let mut want = [0u8; 16];
            let mut got = [0u8; 16];
            unsafe {
                __real_poly1305_auth(want.as_mut_ptr(), data.as_ptr(), len, key.as_ptr());
                __wrap_poly1305_auth(got.as_mut_ptr(), data.as_ptr(), len, key.as_ptr());
            }
            assert_eq!(got, want, "poly1305 len {len}");
            let k: [u8; 32] = key.as_slice().try_into().unwrap();
            let mut openssl = [0u8; 16];
            assert!(
                openssl_poly1305(&k, &data, &mut openssl),
                "OpenSSL's Poly1305"
            );
            assert_eq!(openssl, want, "OpenSSL's poly1305 len {len}");
        }
        // an empty message, and the RustCrypto fallback agrees too
        let k = [9u8; 32];
        let mut a = [0u8; 16];
        assert!(openssl_poly1305(&k, &[], &mut a));
        use poly1305::universal_hash::KeyInit;
        assert_eq!(
            a[..],
            poly1305::Poly1305::new(&k.into()).compute_unpadded(&[])[..]
        );
    }

    /// RFC 8032 §7.1 test 2 (one-byte message), and a flipped bit.
    #[test]
    fn ed25519_verify_matches_rfc8032() {
        fn hex(s: &str) -> Vec<u8> {
            (0..s.len() / 2)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        }
        let key: [u8; 32] = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
            .try_into()
            .unwrap();
        let sig = hex(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        assert_eq!(verify(&key, &sig, &[0x72]), 0);
        assert_eq!(verify(&key, &sig, &[0x73]), -1);
        let mut bad = sig.clone();
        bad[63] ^= 0x10; // S no longer canonical
        assert_eq!(verify(&key, &bad, &[0x72]), -1);
        assert_eq!(verify(&key, &sig[..63], &[0x72]), -1);
    }
}
