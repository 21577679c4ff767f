/* json_lex.h - internal: the JSON lexer that json.c's tree parser and
 * codec.c's one-pass decode of server documents share: the state, the
 * scanners that run for every token (inline), and the parts of the parser
 * that either may call (a string's slow path, a number, a whole value as a
 * tree).  The rules of the text (RFC 8259, strict; json.c says which) are
 * json.c's alone. */
#ifndef ITD_JSON_LEX_H
#define ITD_JSON_LEX_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__) && !defined(ITD_NO_SSE2)
#include <emmintrin.h>
#endif
#include <cjson/cJSON.h>
#include "json.h"

typedef struct itd_jlex {
    const char *p, *end, *start;
    const char *err;      /* static message */
    const char *err_at;
    int depth;
    itd_arena *arena;     /* NULL: malloc every node */
    size_t first;         /* size of the first arena block */
    int insitu;           /* the text is our own copy: strings end in place, no copies */
} itd_jlex;

/* the scanners run for every token: inline wherever the compiler allows */
#if defined(__GNUC__)
#define ITD_HOT static inline __attribute__((always_inline))
#else
#define ITD_HOT static inline
#endif

ITD_HOT void itd_jlex_ws(itd_jlex *ps)
{
    const char *p = ps->p;
    if (p < ps->end && (unsigned char)*p > ' ') return; /* the usual case: no space at all */
    /* the next usual one: one space after ':' or ',' */
    if (p + 1 < ps->end && *p == ' ' && (unsigned char)p[1] > ' ') { ps->p = p + 1; return; }
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

/* The first byte at or after p that a string scan must look at: '"', '\\',
 * a control character or a byte >= 0x80.  Eight bytes a step where a
 * 64-bit little-endian load is cheap: a flag per byte, the lowest one exact
 * (the borrows of the subtractions only reach the bytes above it). */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ITD_SWAR 1
/* The flags of the eight bytes at p (0: none to look at). */
ITD_HOT uint64_t word_flags(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t w, q, b;
    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    return (w & high) | ((w - ones * 0x20) & ~w & high) | ((q - ones) & ~q & high) | ((b - ones) & ~b & high);
}
#endif

ITD_HOT const char *scan_plain(const char *p, const char *end)
{
#ifdef ITD_SWAR
    for (; end - p >= 8; p += 8) {
        uint64_t m = word_flags(p);
        if (m) return p + (__builtin_ctzll(m) >> 3);
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80) p++;
    return p;
}

/* The same over our own copy of the text, which has ITD_JLEX_PAD zero bytes after
 * its end: a zero is a control character, so no load reaches past them and
 * no byte loop is needed for a string's last bytes.  Sixteen bytes a step
 * with SSE2 (every x86-64 has it), else eight as above (-DITD_NO_SSE2 builds
 * that one on x86-64 too, to test it). */
#define ITD_JLEX_PAD 16
ITD_HOT const char *scan_padded(const char *p, const char *end)
{
#if defined(__SSE2__) && defined(__GNUC__) && !defined(ITD_NO_SSE2)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    (void)end;
    for (;;) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
        unsigned m = (unsigned)_mm_movemask_epi8(hit) | (unsigned)_mm_movemask_epi8(v); /* and bytes >= 0x80 */
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
#elif defined(ITD_SWAR)
    (void)end;
    for (;; p += 8) {
        uint64_t m = word_flags(p);
        if (m) return p + (__builtin_ctzll(m) >> 3);
    }
#else
    return scan_plain(p, end);
#endif
}

/* A string's slow path from p, where the fast scan stopped (UTF-8,
 * escapes, errors, copies): json.c. */
char *itd_jlex_string_rest(itd_jlex *ps, int is_key, const char *s, const char *p);

/* The string whose opening quote ps->p has just passed; NULL with ps->err
 * set on error.  In place when ps->insitu. */
ITD_HOT char *itd_jlex_string(itd_jlex *ps, int is_key)
{
    const char *s = ps->p, *p;
    /* most strings are ASCII without escapes: they end here, in place when
     * the text is our copy */
    if (ps->insitu) {
        p = scan_padded(s, ps->end);
        if (p < ps->end && *p == '"') {
            *(char *)p = 0;
            ps->p = p + 1;
            return (char *)s;
        }
    } else {
        p = scan_plain(s, ps->end);
    }
    return itd_jlex_string_rest(ps, is_key, s, p);
}

/* A number at ps->p, into *d: 0, or -1 with ps->err set. */
int itd_jlex_number(itd_jlex *ps, double *d);
/* The value at ps->p as a tree of the parse arena (ps->arena); NULL or
 * ps->err set on error. */
cJSON *itd_jlex_value(itd_jlex *ps);
/* Starts `ps` on a copy of the text in a->vals (a doc arena), parsed in
 * place; the nodes of itd_jlex_value go to `a`.  0, or -1 on OOM. */
int itd_jlex_open(itd_jlex *ps, const char *text, size_t len, itd_arena *a);
#endif
