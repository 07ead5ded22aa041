//! Link-time options: libssh2's X25519 key exchange and Ed25519 signature check are routed to
//! prun's own implementations (`src/ssh/curve.rs`, curve25519-dalek) instead of libssh2's
//! OpenSSL backend, with the linker's `--wrap` (a call from libssh2's kex.c or hostkey.c to
//! `ssh2_X` goes to `__wrap_ssh2_X`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target == "linux" {
        for sym in [
            "ssh2_curve25519_new",
            "ssh2_curve25519_gen_k",
            "ssh2_ed25519_verify",
        ] {
            println!("cargo:rustc-link-arg=-Wl,--wrap={sym}");
        }
    }
}
