//! Link-time options: libssh2's X25519 key exchange, Ed25519 signature check and
//! chacha20-poly1305 primitives are routed to prun's own implementations (`src/ssh/crypto.rs`:
//! curve25519-dalek, ed25519-dalek, RustCrypto's chacha20 and poly1305) instead of libssh2's
//! OpenSSL backend and portable C, with the linker's `--wrap` (a call from another libssh2
//! object to `X` goes to `__wrap_X`; `__real_X` is the original). libssh2's session creation
//! and the link's `memset` go to `src/ssh/memory.rs`, which keeps most of a session's 83 KB
//! struct off resident memory when many sessions are alive.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target == "linux" {
        for sym in [
            "ssh2_curve25519_new",
            "ssh2_curve25519_gen_k",
            "ssh2_ed25519_verify",
            "chacha_encrypt_bytes",
            "poly1305_auth",
            "ssh2_random",
            "libssh2_session_init_ex",
            "memset",
        ] {
            println!("cargo:rustc-link-arg=-Wl,--wrap={sym}");
        }
        // `__wrap_memset` is C, linked into every binary by path (not as a library of the
        // crate's lib target): --wrap=memset reaches every binary, also the test binaries that
        // do not link prun's library, and each needs the wrapper.
        println!("cargo:rerun-if-changed=src/ssh/memset_wrap.c");
        let objects = cc::Build::new()
            .file("src/ssh/memset_wrap.c")
            .flag("-fno-builtin")
            .compile_intermediates();
        for obj in objects {
            println!("cargo:rustc-link-arg={}", obj.display());
        }
    }
}
