//! Logging in over a transport: handshake (host key algorithms ordered by what known_hosts
//! already has), the host key check against known_hosts before any credential is offered,
//! then authentication (key files, every agent identity, default keys, password and
//! keyboard-interactive). Non-blocking through [`super::io`]; each phase's end reported.
//! Used for targets and bastions alike.

use super::Ctx;
use super::fail::{Fail, fail, ssh_fail, step_fail};
use super::io::{LIBSSH2_TIMEOUT, NonBlockingOnDrop, Patience, StepError, code, nonblocking};
use super::keys::KeyFile;
use super::known_hosts::{self, Policy, Verdict};
use super::transport::Transport;
use crate::cancel::Cancel;
use crate::event::{FailureKind, Phase};
use crate::target::Target;
use ssh2::{MethodType, Session};
use std::os::unix::io::{AsRawFd, RawFd};

/// Host key algorithms prun negotiates (no certificates: see ssh2-notes §4), best first.
const HOSTKEY_ALGS: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// What logging in learned, kept even when it fails part way (a host key check's note
/// explains a later auth failure).
#[derive(Debug, Default)]
pub(crate) struct LoginInfo {
    pub(crate) kex: Option<String>,
    pub(crate) cipher: Option<String>,
    pub(crate) auth_method: Option<String>,
    pub(crate) notes: Vec<String>,
}

/// Handshake, host key check and authentication over `transport`, each phase's end passed
/// to `mark`; the session is non-blocking from the handshake on. For targets and bastions.
pub(crate) fn secure(
    transport: Transport,
    target: &Target,
    ctx: &Ctx<'_>,
    deadline: Patience,
    mark: &mut dyn FnMut(Phase),
    info: &mut LoginInfo,
) -> Result<(Session, RawFd, NonBlockingOnDrop), Fail> {
    let cancel = ctx.cancel;
    let mut sess = Session::new().map_err(|e| ssh_fail(Phase::Handshake, &e, FailureKind::Io))?;
    // every read bounded by the step's deadline and the cancel, even while data keeps coming
    super::bound::install(&sess);
    let fd = match transport {
        Transport::Tcp(tcp) => {
            let _ = tcp.set_nodelay(true);
            let fd = tcp.as_raw_fd();
            sess.set_tcp_stream(tcp);
            fd
        }
        Transport::Forwarded(sock, _) => {
            let fd = sock.as_raw_fd();
            sess.set_tcp_stream(sock);
            fd
        }
        Transport::Proxied(stream) => {
            let fd = stream.as_raw_fd();
            sess.set_tcp_stream(stream);
            fd
        }
    };
    super::crypto::linked();
    super::memory::linked();
    let lookup = target.host_key_name.as_str();
    let host_keys = target.known_hosts.for_host(lookup);
    let prefs = hostkey_prefs(
        &host_keys.algorithms(),
        host_keys.cert_authority().is_some(),
    );
    sess.method_pref(MethodType::HostKey, &prefs)
        .map_err(|e| ssh_fail(Phase::Handshake, &e, FailureKind::Kex))?;
    // Bounded drop on every early return: a failed blocking session must not hang in free().
    let guard = NonBlockingOnDrop(sess.clone());
    // Non-blocking from here on, each step driven by `nonblocking` against its deadline (the
    // agent exchange excepted, see `authenticate`).
    sess.set_blocking(false);
    let mut hs = sess.clone();
    super::bound::take_closed();
    nonblocking(fd, &sess, deadline, cancel, || hs.handshake()).map_err(|e| {
        let mut f = step_fail(Phase::Handshake, e, FailureKind::Kex, cancel);
        if f.failure.kind == FailureKind::Kex && super::bound::take_closed() {
            // libssh2 says "key exchange failed" for a dropped connection too
            f = fail(
                Phase::Handshake,
                FailureKind::Io,
                "connection closed or reset by the server during key exchange",
            );
        }
        if matches!(f.failure.kind, FailureKind::Banner | FailureKind::Io) {
            ctx.gate.dropped(); // sshd MaxStartups: slow down new connections
        }
        f
    })?;
    info.kex = sess.methods(MethodType::Kex).map(str::to_string);
    info.cipher = sess.methods(MethodType::CryptCs).map(str::to_string);
    mark(Phase::Handshake);

    // host key, before any credential is offered
    // on the scratch stack: its 2 KB frame never waits, and would be a fiber's deepest
    let changed =
        super::fiber::deep(|| check_host_key(&sess, target, &host_keys, &mut info.notes))?;
    mark(Phase::Hostkey);

    // auth: never a password to a host whose key changed (like OpenSSH)
    info.auth_method = Some(authenticate(&sess, fd, target, ctx, deadline, !changed)?);
    mark(Phase::Auth);
    Ok((sess, fd, guard))
}

/// Certificate host key algorithms, offered first when known_hosts trusts a CA for the host
/// (as OpenSSH does); libssh2 verifies the handshake signature with the key inside the
/// certificate, prun the certificate itself ([`check_host_cert`]).
const CERT_ALGS: [&str; 6] = [
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
];

fn hostkey_prefs(known: &[String], ca: bool) -> String {
    let mut out: Vec<&str> = Vec::new();
    if ca {
        out.extend(CERT_ALGS);
    }
    for k in known {
        let algs: &[&str] = match k.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256"],
            other => match HOSTKEY_ALGS.iter().find(|a| **a == other) {
                Some(a) => std::slice::from_ref(a),
                None => &[],
            },
        };
        for a in algs {
            if !out.contains(a) {
                out.push(a);
            }
        }
    }
    for a in HOSTKEY_ALGS {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.join(",")
}

/// Check the server's host key against known_hosts under the host's policy. `Ok(true)`: the
/// key does not match what known_hosts says, and the policy (`off`) lets the connection go
/// on anyway; then no password may be sent.
#[inline(never)]
fn check_host_key(
    sess: &Session,
    target: &Target,
    host_keys: &known_hosts::HostKeys<'_>,
    notes: &mut Vec<String>,
) -> Result<bool, Fail> {
    let policy = target.host_key_policy;
    let lookup = target.host_key_name.as_str();
    let Some((blob, _)) = sess.host_key() else {
        return Err(fail(
            Phase::Hostkey,
            FailureKind::Kex,
            "server presented no host key",
        ));
    };
    let kh = &*target.known_hosts;
    let alg = known_hosts::blob_algorithm(blob).unwrap_or("unknown");
    if alg.ends_with("-cert-v01@openssh.com") {
        return check_host_cert(blob, target, host_keys).map(|()| false);
    }
    let fp = known_hosts::fingerprint(blob);
    let mut verdict = host_keys.check(blob);
    if verdict == Verdict::Unknown && policy == Policy::AcceptNew {
        verdict = kh.accept(lookup, blob).map_err(|e| {
            fail(
                Phase::Hostkey,
                FailureKind::Io,
                format!(
                    "cannot record host key in {}: {e}",
                    kh.write_path().display()
                ),
            )
        })?;
        if verdict == Verdict::Unknown {
            notes.push(format!(
                "added {lookup} {alg} {fp} to {}",
                kh.write_path().display()
            ));
            return Ok(false);
        }
    }
    match verdict {
        Verdict::Known => Ok(false),
        Verdict::Revoked { where_ } => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyMismatch,
            format!("host key {alg} {fp} for {lookup} is REVOKED ({where_})"),
        )),
        Verdict::Unknown if policy == Policy::Off => {
            notes.push(format!(
                "host key {alg} {fp} for {lookup} NOT verified (host key checking is off)"
            ));
            Ok(false)
        }
        Verdict::Changed { where_ } if policy == Policy::Off => {
            notes.push(format!(
                "HOST KEY CHANGED for {lookup}: server sent {alg} {fp}, which does not match \
                 {where_}; connecting anyway (host key checking is off), with password and \
                 keyboard-interactive authentication disabled"
            ));
            Ok(true)
        }
        Verdict::Changed { where_ } => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyMismatch,
            format!(
                "HOST KEY CHANGED for {lookup}: server sent {alg} {fp}, which does not match \
                 {where_}; refusing to connect (if the change is expected: ssh-keygen -R '{lookup}')"
            ),
        )),
        Verdict::Unknown => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyUnknown,
            match host_keys.cert_authority() {
                Some(ca) => format!(
                    "host key for {lookup} is not known ({alg} {fp}): known_hosts trusts a \
                     certificate authority for it ({ca}), but the server presented a plain \
                     key, not a certificate (sshd_config HostCertificate); add the host's \
                     plain key to known_hosts (ssh-keyscan) or run with --host-key-check \
                     accept-new"
                ),
                None => format!(
                    "host key for {lookup} is not known ({alg} {fp}); to trust it, \
                     run with --host-key-check accept-new or add it to known_hosts"
                ),
            },
        )),
    }
}

/// A host certificate the server presented (only when known_hosts trusts a CA for the
/// host): signed by a trusted `@cert-authority` key (Ed25519, ECDSA P-256/P-384 or RSA), neither it nor the CA `@revoked`, a host
/// certificate, valid now, for this host (its principals name the host: HostKeyAlias, else
/// the address), with no critical options. Any miss refuses the host, saying which.
fn check_host_cert(
    blob: &[u8],
    target: &Target,
    host_keys: &known_hosts::HostKeys<'_>,
) -> Result<(), Fail> {
    use ssh_key::certificate::{CertType, Certificate};
    let lookup = target.host_key_name.as_str();
    let refuse = |why: String| {
        fail(
            Phase::Hostkey,
            FailureKind::HostkeyUnknown,
            format!("host certificate for {lookup} refused: {why}"),
        )
    };
    let cert =
        Certificate::from_bytes(blob).map_err(|e| refuse(format!("it cannot be parsed ({e})")))?;
    let key_blob = |k: &ssh_key::public::KeyData| {
        ssh_key::PublicKey::from(k.clone())
            .to_bytes()
            .unwrap_or_default()
    };
    let ca_blob = key_blob(cert.signature_key());
    let ca_fp = known_hosts::fingerprint(&ca_blob);
    let Some((_, ca_line)) = host_keys
        .cert_authorities()
        .into_iter()
        .find(|(b, _)| *b == ca_blob.as_slice())
    else {
        return Err(refuse(format!(
            "it is signed by {} {ca_fp}, which no @cert-authority line for this host trusts",
            cert.signature_key().algorithm()
        )));
    };
    if let Some(line) = host_keys.revoked(&ca_blob) {
        return Err(refuse(format!("its CA {ca_fp} is REVOKED ({line})")));
    }
    let inner = key_blob(cert.public_key());
    if let Some(line) = host_keys.revoked(&inner) {
        return Err(refuse(format!(
            "its key {} is REVOKED ({line})",
            known_hosts::fingerprint(&inner)
        )));
    }
    if cert.cert_type() != CertType::Host {
        return Err(refuse(
            "it is a user certificate, not a host certificate".into(),
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let at = |t: u64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.min(253_402_300_799)),
        )
    };
    if now < cert.valid_after() {
        return Err(refuse(format!(
            "it is valid only from {}",
            at(cert.valid_after())
        )));
    }
    if now >= cert.valid_before() {
        return Err(refuse(format!("it expired at {}", at(cert.valid_before()))));
    }
    let name = if target.host_key_name == known_hosts::lookup_name(&target.address, target.port) {
        target.address.as_str()
    } else {
        target.host_key_name.as_str()
    };
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == name) {
        return Err(refuse(format!(
            "its principals ({}) do not include {name}",
            principals.join(", ")
        )));
    }
    if !cert.critical_options().is_empty() {
        return Err(refuse(
            "it has critical options, which host certificates do not use".into(),
        ));
    }
    let ca_fp256 = cert.signature_key().fingerprint(ssh_key::HashAlg::Sha256);
    cert.validate_at(now, [&ca_fp256]).map_err(|_| {
        refuse(format!(
            "the signature of CA {ca_fp} ({ca_line}) does not verify"
        ))
    })?;
    Ok(())
}

#[inline(never)]
fn authenticate(
    sess: &Session,
    fd: RawFd,
    target: &Target,
    ctx: &Ctx<'_>,
    deadline: Patience,
    allow_password: bool,
) -> Result<String, Fail> {
    let user = target.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let on_err = |e: &ssh2::Error, what: &str, errors: &mut Vec<String>| -> Result<(), Fail> {
        match code(e) {
            LIBSSH2_TIMEOUT => Err(fail(
                Phase::Auth,
                FailureKind::Timeout,
                "timed out in auth (--connect-timeout)",
            )),
            // -18: key refused; -19: refused/unverified; -16: key file unusable
            -18 | -19 | -16 => {
                if code(e) == -16 {
                    errors.push(format!("{what}: {}", e.message()));
                }
                Ok(())
            }
            -13 | -7 | -43 => Err(fail(
                Phase::Auth,
                FailureKind::Auth,
                format!(
                    "server closed the connection during auth after {} key(s) were tried \
                     (too many keys for its MaxAuthTries?)",
                    errors.len() + 1
                ),
            )),
            _ => {
                errors.push(format!("{what}: {} ({})", e.message(), code(e)));
                Ok(())
            }
        }
    };
    // Offer one key file (its certificate first, when it has one); Ok(true) when it
    // authenticated.
    let by_cert = std::cell::Cell::new(false);
    let try_key = |key: &KeyFile, errors: &mut Vec<String>| -> Result<bool, Fail> {
        let cert = target
            .certificates
            .iter()
            .find(|(k, _)| key.public_blob() == Some(k.as_slice()))
            .map(|(_, c)| c.as_slice())
            .or(key.cert.as_deref());
        if let Some(cert) = cert {
            match nonblocking(fd, sess, deadline, ctx.cancel, || {
                super::sign::userauth_cert(sess, user, key, cert)
            }) {
                Ok(()) if sess.authenticated() => {
                    by_cert.set(true);
                    return Ok(true);
                }
                Ok(()) => {}
                Err(StepError::Ssh(e)) => {
                    on_err(&e, &format!("{} (certificate)", key.display), errors)?
                }
                Err(e) => return Err(step_fail(Phase::Auth, e, FailureKind::Auth, ctx.cancel)),
            }
        }
        match nonblocking(fd, sess, deadline, ctx.cancel, || {
            super::sign::userauth(sess, user, key)
        }) {
            Ok(()) => Ok(sess.authenticated()),
            Err(StepError::Ssh(e)) => on_err(&e, &key.display, errors).map(|()| false),
            Err(e) => Err(step_fail(Phase::Auth, e, FailureKind::Auth, ctx.cancel)),
        }
    };

    for key in target.identities.iter().filter(|k| !k.encrypted) {
        tried.push(key.display.clone());
        if try_key(key, &mut errors)? {
            let how = if by_cert.get() {
                "certificate"
            } else {
                "publickey"
            };
            return Ok(format!("{how} {}", key.display));
        }
    }
    if ctx.settings.use_agent && !target.identities_only {
        // The agent signs over its own local socket (a quick exchange); the server's answer
        // is waited for like every other step (non-blocking, the deadline and the cancel
        // kept; on the event engine the fiber suspends).
        match agent_auth(sess, fd, user, deadline, ctx.cancel) {
            Ok((Some(m), _)) => return Ok(m),
            Ok((None, n)) => tried.push(format!("{n} agent key(s)")),
            Err(StepError::Ssh(e)) => errors.push(format!("agent: {}", e.message())),
            Err(e) => return Err(step_fail(Phase::Auth, e, FailureKind::Auth, ctx.cancel)),
        }
    }
    for key in ctx.default_keys.iter().filter(|_| !target.identities_only) {
        if target.identities.iter().any(|k| k.path == key.path) {
            continue;
        }
        tried.push(key.display.clone());
        if try_key(key, &mut errors)? {
            let how = if by_cert.get() {
                "certificate"
            } else {
                "publickey"
            };
            return Ok(format!("{how} {}", key.display));
        }
    }
    if ctx.settings.password.is_some() && !allow_password {
        errors.push(
            "password authentication disabled: the host key changed (as OpenSSH does)".into(),
        );
    }
    if let Some(pw) = ctx.settings.password.as_ref().filter(|_| allow_password)
        && let Some(how) = by_password(
            sess,
            fd,
            user,
            pw,
            ctx,
            deadline,
            &mut tried,
            &mut |e, what| on_err(e, what, &mut errors),
        )?
    {
        return Ok(how);
    }
    Err(denied(user, &ctx.settings.locked_keys, &tried, &errors))
}

/// Password, then keyboard-interactive answered with the same password (what PAM-backed
/// servers offer instead); OpenSSH's order after public keys. `Some(method)` when it logged
/// in. Out of line, as [`denied`]: [`authenticate`]'s frame stays small, and it is on every
/// fiber's stack while a key is offered (see [`super::fiber`]).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn by_password(
    sess: &Session,
    fd: RawFd,
    user: &str,
    pw: &crate::secret::Secret,
    ctx: &Ctx<'_>,
    deadline: Patience,
    tried: &mut Vec<String>,
    on_err: &mut dyn FnMut(&ssh2::Error, &str) -> Result<(), Fail>,
) -> Result<Option<String>, Fail> {
    tried.push("password".into());
    match nonblocking(fd, sess, deadline, ctx.cancel, || {
        sess.userauth_password(user, pw.expose())
    }) {
        Ok(()) if sess.authenticated() => return Ok(Some("password".into())),
        Ok(()) => {}
        Err(StepError::Ssh(e)) => on_err(&e, "password")?,
        Err(e) => return Err(step_fail(Phase::Auth, e, FailureKind::Auth, ctx.cancel)),
    }
    tried.push("keyboard-interactive".into());
    let mut answer = PasswordPrompt(pw.expose());
    match nonblocking(fd, sess, deadline, ctx.cancel, || {
        sess.userauth_keyboard_interactive(user, &mut answer)
    }) {
        Ok(()) if sess.authenticated() => Ok(Some("keyboard-interactive".into())),
        Ok(()) => Ok(None),
        Err(StepError::Ssh(e)) => on_err(&e, "keyboard-interactive").map(|()| None),
        Err(e) => Err(step_fail(Phase::Auth, e, FailureKind::Auth, ctx.cancel)),
    }
}

/// Why no way of logging in worked: what was tried, and what went wrong on the way.
#[cold]
#[inline(never)]
fn denied(user: &str, locked: &[String], tried: &[String], errors: &[String]) -> Fail {
    let mut msg = if tried.is_empty() && !locked.is_empty() {
        format!(
            "no keys to offer for {user}: {} passphrase-protected and no passphrase was \
             given (set PRUN_KEY_PASSPHRASE, run on a terminal, or add it to ssh-agent)",
            match locked.len() {
                1 => format!("{} is", locked[0]),
                _ => format!("{} are", locked.join(", ")),
            }
        )
    } else if tried.is_empty() {
        format!(
            "no keys to offer for {user}: give --identity FILE, set identity_file in the \
             inventory, start ssh-agent, or create ~/.ssh/id_ed25519"
        )
    } else {
        format!(
            "permission denied for {user}: no key was accepted (tried {})",
            tried.join(", ")
        )
    };
    if !errors.is_empty() {
        msg.push_str(&format!("; {}", errors.join("; ")));
    }
    fail(Phase::Auth, FailureKind::Auth, msg)
}

/// Answers every keyboard-interactive prompt with the password.
struct PasswordPrompt<'a>(&'a str);

impl ssh2::KeyboardInteractivePrompt for PasswordPrompt<'_> {
    fn prompt<'b>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[ssh2::Prompt<'b>],
    ) -> Vec<String> {
        prompts.iter().map(|_| self.0.to_string()).collect()
    }
}

/// Try every agent identity in turn (libssh2's `userauth_agent` tries only the first).
/// Out of line: [`authenticate`]'s frame is under every key offered (see [`super::fiber`]).
#[inline(never)]
fn agent_auth(
    sess: &Session,
    fd: RawFd,
    user: &str,
    deadline: Patience,
    cancel: &Cancel,
) -> Result<(Option<String>, usize), StepError> {
    let mut agent = sess.agent().map_err(StepError::Ssh)?;
    agent.connect().map_err(StepError::Ssh)?;
    agent.list_identities().map_err(StepError::Ssh)?;
    let ids = agent.identities().map_err(StepError::Ssh)?;
    let mut n = 0;
    for id in &ids {
        n += 1;
        match nonblocking(fd, sess, deadline, cancel, || agent.userauth(user, id)) {
            Ok(()) if sess.authenticated() => {
                let _ = agent.disconnect();
                return Ok((Some(format!("agent {}", id.comment())), n));
            }
            Ok(()) => {}
            Err(StepError::Ssh(e)) if matches!(code(&e), -18 | -19) => {}
            Err(e) => {
                let _ = agent.disconnect();
                return Err(e);
            }
        }
    }
    let _ = agent.disconnect();
    Ok((None, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostkey_prefs_put_known_types_first() {
        assert!(hostkey_prefs(&[], false).starts_with("ssh-ed25519,"));
        assert!(hostkey_prefs(&[], true).starts_with("ssh-ed25519-cert-v01@openssh.com,"));
        let p = hostkey_prefs(&["ssh-rsa".into()], false);
        assert!(
            p.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-ed25519"),
            "{p}"
        );
        assert!(!p.contains("cert"));
        assert_eq!(p.split(',').count(), HOSTKEY_ALGS.len());
    }
}
