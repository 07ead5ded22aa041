//! Where libssh2 keeps a session: past a hundred or so sessions alive at once, on pages of its
//! own, only the touched ones resident.
//!
//! libssh2's session struct is 83 KB (libssh2-sys 0.3.4), most of it two fixed 35,000-byte
//! packet buffers (`transportpacket.buf` and `.outbuf`), and `libssh2_session_init_ex`
//! zeroes all of it with `memset`. From `malloc` that makes every page resident at once: at
//! `-p 1000` the sessions alone were 83 MB of prun's 116 MB. A login touches three or four of
//! those pages; a command's output touches more, which stay resident until the session ends
//! (a held login keeps them).
//!
//! So the build script links libssh2's `libssh2_session_init_ex` (called by the ssh2 crate's
//! `Session::new`, with libssh2's default allocators) to [`__wrap_libssh2_session_init_ex`],
//! which creates the session with this module's allocator instead:
//!
//! - while fewer than [`LEAN_AT`] sessions are alive, the session struct comes from `malloc`
//!   as before: reused heap pages cost no page faults, and that many sessions are a few MB;
//! - beyond that, or from the first session of a run with more lanes than that
//!   ([`expect_at_once`]), the session struct gets a private anonymous mapping of its own, zero
//!   already, and `init_ex`'s `memset` of it is skipped (the link's `memset` is
//!   `__wrap_memset` in `memset_wrap.c`, which passes every other call on). Its pages
//!   become resident only as libssh2 touches them: ~12 KB a session instead of 83 KB, for an `mmap`, a `munmap` and a
//!   page fault per page touched (~0.1 ms of CPU a session on this project's 2-core VM,
//!   where a fault costs ~8 µs);
//! - every other allocation of the session is `malloc`/`realloc`/`free`, as before — which
//!   [`super::crypto`] and [`super::sign`] rely on when they hand libssh2 `malloc`ed memory.
//!
//! `free` knows the session struct without knowing its layout: libssh2 passes
//! `&session->abstract` with every call, at a fixed offset into the struct (read once with
//! `libssh2_session_abstract`). A tag just past the struct (inside the block, which is
//! allocated a little longer) says which of the two kinds it is. After the tag the block
//! holds the session's read-ahead buffer for its banner ([`super::bound::Ahead`]), found
//! the same way from the `&session->abstract` that libssh2 passes to the receive function
//! ([`ahead_of`]; not from the pointer's value, which the ssh2 crate swaps during
//! keyboard-interactive logins); it lives and dies with the session.

use libssh2_sys as raw;
use std::cell::Cell;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sessions alive at once from which on a new one gets pages of its own.
pub const LEAN_AT: usize = 128;

thread_local! {
    /// Set by [`__wrap_libssh2_session_init_ex`] for its first allocation: the session.
    static SESSION_NEXT: Cell<bool> = const { Cell::new(false) };
}

/// The session struct's size as libssh2 asked for it (the same for every session).
static SESSION_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Where `abstract` is in the struct (`usize::MAX` until the first session was made).
static ABSTRACT_OFFSET: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Sessions made here and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Sessions the run means to have at once (its lanes; see [`expect_at_once`]).
static EXPECTED: AtomicUsize = AtomicUsize::new(0);

/// The tag past a session struct: on its own pages, or from malloc.
const TAG_MAPPED: u64 = 0x7072_756e_6d61_7070; // "prunmapp"
const TAG_HEAP: u64 = 0x7072_756e_6865_6170; // "prunheap"

unsafe extern "C" {
    fn __real_libssh2_session_init_ex(
        alloc: Option<raw::LIBSSH2_ALLOC_FUNC>,
        free: Option<raw::LIBSSH2_FREE_FUNC>,
        realloc: Option<raw::LIBSSH2_REALLOC_FUNC>,
        abstrakt: *mut c_void,
    ) -> *mut raw::LIBSSH2_SESSION;
    /// In `memset_wrap.c`: the next `memset(p, 0, n)` on this thread is skipped.
    fn prun_memset_skip_once(p: *mut c_void);
}

/// Keeps the wrappers in the link (see [`super::crypto::linked`]).
#[inline(never)]
pub fn linked() {
    std::hint::black_box(__wrap_libssh2_session_init_ex as *const ());
}

/// The run will have up to `n` sessions at once: past [`LEAN_AT`], every session is on pages of
/// its own from the first (else the first `LEAN_AT` would keep ~10 MB of heap).
pub fn expect_at_once(n: usize) {
    EXPECTED.store(n, Ordering::Relaxed);
}

/// Sessions alive now (made through the ssh2 crate and not yet freed).
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Where the tag is, past a struct of `bytes`.
fn tag_at(bytes: usize) -> usize {
    bytes.next_multiple_of(8)
}

/// Where the session's read-ahead buffer ([`super::bound::Ahead`]) is, past the tag.
fn ahead_at(bytes: usize) -> usize {
    (tag_at(bytes) + 8).next_multiple_of(std::mem::align_of::<super::bound::Ahead>())
}

/// The block for a struct of `bytes`: the struct, its tag and its read-ahead buffer.
fn block_len(bytes: usize) -> usize {
    ahead_at(bytes) + std::mem::size_of::<super::bound::Ahead>()
}

fn mapped_len(bytes: usize) -> usize {
    block_len(bytes).next_multiple_of(page_size())
}

/// # Safety
/// Called through the ssh2 crate's `Session::new` (or any libssh2 caller): the arguments are
/// `libssh2_session_init_ex`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_libssh2_session_init_ex(
    alloc: Option<raw::LIBSSH2_ALLOC_FUNC>,
    free: Option<raw::LIBSSH2_FREE_FUNC>,
    realloc: Option<raw::LIBSSH2_REALLOC_FUNC>,
    abstrakt: *mut c_void,
) -> *mut raw::LIBSSH2_SESSION {
    if alloc.is_some() || free.is_some() || realloc.is_some() {
        // a caller with allocators of its own keeps them
        return unsafe { __real_libssh2_session_init_ex(alloc, free, realloc, abstrakt) };
    }
    SESSION_NEXT.set(true);
    // SAFETY: libssh2's own function with this module's allocators.
    let session = unsafe {
        __real_libssh2_session_init_ex(
            Some(session_alloc),
            Some(session_free),
            Some(session_realloc),
            abstrakt,
        )
    };
    SESSION_NEXT.set(false);
    // SAFETY: clears the skip (init_ex made its memset, or failed before it).
    unsafe { prun_memset_skip_once(std::ptr::null_mut()) };
    if !session.is_null() {
        // SAFETY: a live session.
        let field = unsafe { raw::libssh2_session_abstract(session) };
        ABSTRACT_OFFSET.store(field as usize - session as usize, Ordering::Relaxed);
    }
    session
}

/// The read-ahead buffer of the session whose `abstract` field is at `abstrakt` (what
/// libssh2 passes to its callbacks), if the session was made here.
///
/// # Safety
/// `abstrakt` is null or the `&session->abstract` of a live session, made by the ssh2 crate
/// (every session of prun is: its `Session::new` gives no allocators, so
/// [`__wrap_libssh2_session_init_ex`] makes it here); the caller uses the buffer for that
/// session only, while libssh2 is in one of its calls.
pub(crate) unsafe fn ahead_of<'a>(
    abstrakt: *mut *mut c_void,
) -> Option<&'a mut super::bound::Ahead> {
    let offset = ABSTRACT_OFFSET.load(Ordering::Relaxed);
    if abstrakt.is_null() || offset == usize::MAX {
        return None;
    }
    let bytes = SESSION_BYTES.load(Ordering::Relaxed);
    let base = (abstrakt as usize).checked_sub(offset)? as *mut u8;
    // SAFETY: the caller's contract: a session block made by session_alloc, block_len(bytes)
    // long, with its tag (checked) and its Ahead after it.
    unsafe {
        let tag = base.add(tag_at(bytes)).cast::<u64>().read();
        if tag != TAG_MAPPED && tag != TAG_HEAP {
            return None;
        }
        base.add(ahead_at(bytes))
            .cast::<super::bound::Ahead>()
            .as_mut()
    }
}

/// Is `ptr` the session struct whose `abstract` field is at `abstrakt`?
fn is_session_block(ptr: *mut c_void, abstrakt: *mut *mut c_void, offset: usize) -> bool {
    offset != usize::MAX && (ptr as usize).wrapping_add(offset) == abstrakt as usize
}

extern "C" fn session_alloc(count: libc::size_t, _abstract: *mut *mut c_void) -> *mut c_void {
    if !SESSION_NEXT.replace(false) {
        // SAFETY: plain malloc.
        return unsafe { libc::malloc(count) };
    }
    SESSION_BYTES.store(count, Ordering::Relaxed);
    let alive = LIVE.fetch_add(1, Ordering::Relaxed);
    let lean = alive >= LEAN_AT || EXPECTED.load(Ordering::Relaxed) > LEAN_AT;
    let (p, tag) = if lean {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len(count),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let p = if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p
        };
        // SAFETY: only stores the pointer; init_ex's next call is the memset of this block.
        unsafe { prun_memset_skip_once(p) };
        (p, TAG_MAPPED)
    } else {
        // SAFETY: plain malloc.
        (unsafe { libc::malloc(block_len(count)) }, TAG_HEAP)
    };
    if p.is_null() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        return p; // libssh2 reports the failed allocation
    }
    // SAFETY: inside the block just made, 8-aligned (both kinds are at least 16-aligned);
    // so is the empty read-ahead buffer after it.
    unsafe {
        p.cast::<u8>().add(tag_at(count)).cast::<u64>().write(tag);
        p.cast::<u8>()
            .add(ahead_at(count))
            .cast::<super::bound::Ahead>()
            .write(super::bound::Ahead::EMPTY);
    }
    p
}

extern "C" fn session_free(ptr: *mut c_void, abstrakt: *mut *mut c_void) {
    if ptr.is_null() {
        return;
    }
    if !is_session_block(ptr, abstrakt, ABSTRACT_OFFSET.load(Ordering::Relaxed)) {
        // SAFETY: everything else of the session came from malloc.
        return unsafe { libc::free(ptr) };
    }
    LIVE.fetch_sub(1, Ordering::Relaxed);
    let bytes = SESSION_BYTES.load(Ordering::Relaxed);
    // SAFETY: the tag session_alloc wrote past the struct.
    let tag = unsafe { ptr.cast::<u8>().add(tag_at(bytes)).cast::<u64>().read() };
    if tag == TAG_MAPPED {
        // SAFETY: the mapping session_alloc made; libssh2 is done with it.
        unsafe { libc::munmap(ptr, mapped_len(bytes)) };
    } else {
        debug_assert_eq!(tag, TAG_HEAP);
        // SAFETY: the malloc'ed block session_alloc made.
        unsafe { libc::free(ptr) };
    }
}

extern "C" fn session_realloc(
    ptr: *mut c_void,
    count: libc::size_t,
    _abstract: *mut *mut c_void,
) -> *mut c_void {
    // libssh2 never reallocates the session struct itself
    // SAFETY: a malloc'ed block (or null).
    unsafe { libc::realloc(ptr, count) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages of `[base, base + len)`, from mincore.
    fn resident(base: *mut u8, len: usize) -> usize {
        let page = page_size();
        let mut vec = vec![0u8; len / page];
        // SAFETY: a mapped range and a vector of one byte per page.
        assert_eq!(
            unsafe { libc::mincore(base.cast(), len, vec.as_mut_ptr()) },
            0
        );
        vec.iter().filter(|&&b| b & 1 != 0).count()
    }

    fn base(sess: &ssh2::Session) -> *mut u8 {
        let guard = sess.raw();
        &*guard as *const raw::LIBSSH2_SESSION as *mut u8
    }

    fn tag(sess: &ssh2::Session) -> u64 {
        let at = tag_at(SESSION_BYTES.load(Ordering::Relaxed));
        // SAFETY: the tag session_alloc wrote past the struct.
        unsafe { base(sess).add(at).cast::<u64>().read() }
    }

    #[test]
    fn sessions_past_lean_at_are_on_their_own_pages_mostly_not_resident() {
        let mut sessions = Vec::new();
        let lean = loop {
            let sess = ssh2::Session::new().expect("session");
            match tag(&sess) {
                TAG_MAPPED => break sess,
                t => assert_eq!(t, TAG_HEAP, "session {} untagged", sessions.len()),
            }
            sessions.push(sess);
            assert!(
                sessions.len() <= LEAN_AT,
                "{} sessions, none lean",
                sessions.len()
            );
        };
        assert!(live() > sessions.len());
        let bytes = SESSION_BYTES.load(Ordering::Relaxed);
        assert!(
            bytes > 60_000,
            "session struct of {bytes} bytes: not created here?"
        );
        let at = base(&lean);
        assert_eq!(
            at as usize % page_size(),
            0,
            "the session is not on its own pages"
        );
        let len = mapped_len(bytes);
        let res = resident(at, len);
        assert!(
            res <= 3,
            "{res} of {} session pages resident",
            len / page_size()
        );
        // libssh2 sees its zeroed struct: a fresh session works (no banner, no socket)
        for sess in sessions.iter().chain([&lean]) {
            assert!(sess.banner().is_none());
            sess.set_timeout(1234);
            assert_eq!(sess.timeout(), 1234);
            assert!(!sess.authenticated());
        }
        drop(sessions);
        drop(lean); // munmap: a wrong length or address would fail under the next session
        let again = ssh2::Session::new().expect("session");
        assert!(again.banner().is_none());
    }

    #[test]
    fn free_knows_the_session_block_by_its_abstract_field() {
        let block = 0x10_0000usize as *mut c_void;
        let field = |off: usize| (0x10_0000usize + off) as *mut *mut c_void;
        assert!(is_session_block(block, field(0), 0));
        assert!(is_session_block(block, field(24), 24));
        assert!(!is_session_block(block, field(24), 0));
        assert!(
            !is_session_block(block, field(0), usize::MAX),
            "offset not yet known"
        );
    }

    #[test]
    fn memset_still_sets_everything_else() {
        unsafe extern "C" {
            fn __wrap_memset(s: *mut c_void, c: std::os::raw::c_int, n: usize) -> *mut c_void;
        }
        let mut v = vec![7u8; 64 * 1024];
        // SAFETY: a buffer of that length.
        unsafe { __wrap_memset(v.as_mut_ptr().cast(), 0, v.len()) };
        assert!(v.iter().all(|&b| b == 0));
        // announced for another block: this one is still set
        v.fill(7);
        let mut other = [0u8; 8];
        // SAFETY: only stores the pointer; cleared below.
        unsafe { prun_memset_skip_once(other.as_mut_ptr().cast()) };
        // SAFETY: a buffer of that length.
        unsafe { __wrap_memset(v.as_mut_ptr().cast(), 0, v.len()) };
        assert!(v.iter().all(|&b| b == 0));
        // SAFETY: as above.
        unsafe {
            prun_memset_skip_once(std::ptr::null_mut());
            __wrap_memset(v.as_mut_ptr().cast(), 0x41, 10);
        }
        assert_eq!(&v[..11], b"AAAAAAAAAA\0");
    }

    #[test]
    fn blocks_have_room_for_the_tag() {
        for bytes in [1, 8, 82_944, 83_000, 4096 * 20] {
            assert!(tag_at(bytes) >= bytes && tag_at(bytes).is_multiple_of(8));
            assert!(mapped_len(bytes) >= block_len(bytes));
            assert!(ahead_at(bytes) >= tag_at(bytes) + 8);
            assert!(mapped_len(bytes).is_multiple_of(page_size()));
        }
    }
}
