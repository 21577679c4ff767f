/* buf.c - the growable byte buffer (buf.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "buf.h"

void itd_buf_init_with(itd_buf *b, char *mem, size_t cap, int wipe)
{
    b->p = mem;
    b->n = 0;
    b->cap = cap;
    b->oom = 0;
    b->borrowed = 1;
    b->wipe = wipe;
    mem[0] = 0;
}

int itd_buf_grow(itd_buf *b, size_t more)
{
    if (b->oom) return -1;
    if (more > SIZE_MAX - b->n - 1) { b->oom = 1; return -1; }
    size_t need = b->n + more + 1, cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *p;
    if (b->borrowed || b->wipe) { /* move by hand: the old bytes are wiped or not ours */
        if (!(p = malloc(cap))) { b->oom = 1; return -1; }
        if (b->n) memcpy(p, b->p, b->n);
        if (b->p && b->wipe) memset(b->p, 0, b->cap);
        if (!b->borrowed) free(b->p);
    } else if (!(p = realloc(b->p, cap))) {
        b->oom = 1;
        return -1;
    }
    p[b->n] = 0;
    b->p = p;
    b->cap = cap;
    b->borrowed = 0;
    return 0;
}

int itd_buf_printf(itd_buf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2; tries++) {
        if (b->oom) return -1;
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return -1; }
        if (b->p && (size_t)k < room) { b->n += (size_t)k; return 0; }
        if (itd_buf_grow(b, (size_t)k)) return -1;
    }
    return -1;
}

char *itd_buf_take(itd_buf *b)
{
    if (!b->oom && (!b->p || b->borrowed)) itd_buf_grow(b, 0); /* a heap copy */
    char *p = b->oom ? NULL : b->p;
    if (!p) itd_buf_free(b);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = b->borrowed = 0;
    return p;
}

void itd_buf_free(itd_buf *b)
{
    if (b->p && b->wipe) memset(b->p, 0, b->cap);
    if (!b->borrowed) free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = b->borrowed = 0;
}
