/* buf.h - the one growable byte buffer of the core (in the spirit of
 * lua-cjson's strbuf): JSON writing, request building, schedule
 * descriptions, response bodies and headers, header signatures.
 *
 *   itd_buf b = ITD_BUF_INIT;            (or itd_buf_init_with: start in the caller's storage)
 *   itd_buf_put(&b, p, n); itd_buf_putc(&b, c); itd_buf_printf(&b, "%d", x);
 *   char *s = itd_buf_take(&b);         (malloc'd, NUL-terminated; NULL after an allocation failed)
 *   itd_buf_free(&b);                   (or that: after take, free does nothing)
 *
 * After an allocation failure the buffer keeps its contents, refuses every
 * further write (b.oom), and take returns NULL, so callers check once at the
 * end.  The contents are NUL-terminated after every write. */
#ifndef ITD_BUF_H
#define ITD_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct itd_buf {
    char *p;        /* NULL until the first write (unless it started in caller storage) */
    size_t n, cap;  /* bytes used (the NUL excluded), bytes allocated */
    int oom;        /* an allocation failed */
    int borrowed;   /* p is the caller's storage (never freed) */
    int wipe;       /* zero the bytes before releasing them (secrets) */
} itd_buf;

#define ITD_BUF_INIT { NULL, 0, 0, 0, 0, 0 }

/* Start in `mem` (cap bytes, > 0), growing onto the heap when it is full;
 * `wipe`: zero released bytes. */
void itd_buf_init_with(itd_buf *b, char *mem, size_t cap, int wipe);
/* Room for `more` bytes and the NUL.  0, or -1 (b->oom set). */
int itd_buf_grow(itd_buf *b, size_t more);
static inline int itd_buf_reserve(itd_buf *b, size_t more)
{
    if (b->oom) return -1;
    return more < b->cap - b->n ? 0 : itd_buf_grow(b, more);
}
static inline int itd_buf_put(itd_buf *b, const void *s, size_t n)
{
    if (itd_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}
static inline int itd_buf_putc(itd_buf *b, char c)
{
    if (itd_buf_reserve(b, 1)) return -1;
    b->p[b->n++] = c;
    b->p[b->n] = 0;
    return 0;
}
/* Empty it, keeping the allocation (and a failure: cleared). */
static inline void itd_buf_clear(itd_buf *b)
{
    b->n = 0;
    b->oom = 0;
    if (b->p) b->p[0] = 0;
}
static inline int itd_buf_puts(itd_buf *b, const char *s) { return itd_buf_put(b, s, strlen(s)); }
int itd_buf_printf(itd_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The contents as a malloc'd string ("" when empty), the buffer reset; NULL
 * (and the buffer freed) after an allocation failure. */
char *itd_buf_take(itd_buf *b);
/* Release the contents (zeroed first when b->wipe) and reset. */
void itd_buf_free(itd_buf *b);

#endif
