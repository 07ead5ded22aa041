/*
 * The link's `memset` (build.rs links every binary with -Wl,--wrap=memset and this object):
 * the C half of src/ssh/memory.rs, in C so that every binary of the crate has it, also test
 * binaries that do not link prun's library.
 *
 * One call is skipped: the `memset` that libssh2_session_init_ex makes over a session struct
 * that memory.rs placed on a fresh anonymous mapping (zero already), announced with
 * prun_memset_skip_once on the same thread just before. Writing those zeros would make all
 * 21 pages of the struct resident; left alone, only the pages libssh2 touches are.
 */
#include <stddef.h>

void *__real_memset(void *s, int c, size_t n);

static __thread void *skip_once;

void prun_memset_skip_once(void *p) { skip_once = p; }

void *__wrap_memset(void *s, int c, size_t n) {
    if (n >= 16384 && c == 0 && s != NULL && s == skip_once) {
        skip_once = NULL;
        return s;
    }
    return __real_memset(s, c, n);
}
