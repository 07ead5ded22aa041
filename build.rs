//! Link-time options: libssh2's X25519 key exchange, Ed25519 signature check and
//! chacha20-poly1305 primitives are routed to prun's own implementations (`src/ssh/crypto.rs`:
//! curve25519-dalek, ed25519-dalek, RustCrypto's chacha20 and poly1305) instead of libssh2's
//! OpenSSL backend and portable C, with the linker's `--wrap` (a call from another libssh2
//! object to `X` goes to `__wrap_X`; `__real_X` is the original).

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
        ] {
            println!("cargo:rustc-link-arg=-Wl,--wrap={sym}");
        }
    }
}
