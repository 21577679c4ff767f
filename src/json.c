/*
 * json.c - a strict, fast JSON text parser producing cJSON trees.
 *
 * cJSON's own parser scans every string twice and sends every number through
 * a copy and strtod; parsing was two thirds of a typed decode.  This one makes
 * a single pass, takes integers without strtod, and builds the same cJSON
 * nodes (so everything else in the codec is unchanged).  It is strict RFC 8259:
 * no trailing commas, no comments, no control characters in strings, no
 * lone surrogates; and it refuses "\u0000" (a cJSON string cannot hold NUL).
 * Strings must be well-formed UTF-8 (RFC 8259 §8.1, RFC 3629): overlong
 * forms, surrogates encoded in UTF-8 (ED A0..BF ..), code points above
 * U+10FFFF, truncated sequences and stray continuation bytes are refused
 * with the offset of the sequence's first byte, so nothing malformed is
 * echoed back to a server or a caller.  A \u escape of a lone surrogate
 * (high without a low one after it, or a low one alone) is refused too: it
 * has no UTF-8 form.  Error offsets never pass the end of the input: a
 * document cut inside a string reports the end.  The other way, trees are
 * written by json_write.c (itd_json_print), whose numbers read back exactly.
 * The lexer's state and scanners are in json_lex.h, shared with codec.c's
 * one-pass decode of answers.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "codec.h"
#include "json.h"
#include "json_lex.h"

struct itd_arena_block {
    itd_arena_block *next;
    size_t used, cap;
    double data[]; /* storage, aligned for cJSON nodes */
};

/* One spare block per thread: a document's first block is kept for the next
 * document, since a malloc of a block this size is slow every time.  A
 * pthread key (not __thread) so that a thread's spare is freed when it ends. */
#define SPARE_MAX (64u * 1024u)
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static void spare_init(void) { pthread_key_create(&spare_key, free); }

static itd_arena_block *spare_take(size_t cap)
{
    pthread_once(&spare_once, spare_init);
    itd_arena_block *b = pthread_getspecific(spare_key);
    if (!b || b->cap < cap) return NULL;
    pthread_setspecific(spare_key, NULL);
    return b;
}

static int spare_give(itd_arena_block *b)
{
    if (b->cap != SPARE_MAX || pthread_getspecific(spare_key)) return 0;
    return pthread_setspecific(spare_key, b) == 0;
}

static void *arena_grow(itd_arena *a, size_t n, size_t first);

/* The common case inline: room in the current block. */
static inline void *arena_alloc(itd_arena *a, size_t n, size_t first)
{
    n = (n + 15) & ~(size_t)15;
    itd_arena_block *b = a->head;
    if (b && b->cap - b->used >= n) {
        void *p = (char *)b->data + b->used;
        b->used += n;
        return p;
    }
    return arena_grow(a, n, first);
}

/* A new block for n bytes (n rounded already), then the allocation. */
static void *arena_grow(itd_arena *a, size_t n, size_t first)
{
    itd_arena_block *b = a->head;
    size_t cap = b ? b->cap * 2 : first;
    if (cap < n) cap = n;
    int parse = a->first == 0;
    if (parse && !b && cap < SPARE_MAX) cap = SPARE_MAX; /* a first block the next document can reuse */
    itd_arena_block *nb = parse && !b ? spare_take(cap) : NULL;
    if (!nb) nb = malloc(sizeof *nb + cap);
    if (!nb) return NULL;
    nb->next = b;
    nb->used = n;
    nb->cap = cap;
    a->head = nb;
    return nb->data;
}

itd_arena *itd_arena_new(size_t first)
{
    itd_arena tmp = { NULL, NULL, first ? first : 1024 };
    itd_arena *a = arena_alloc(&tmp, sizeof *a, tmp.first);
    if (!a) return NULL;
    *a = tmp; /* from here the header in the block is the arena */
    return a;
}

void *itd_arena_alloc(itd_arena *a, size_t n)
{
    return arena_alloc(a, n, a->first);
}

void itd_arena_free(itd_arena *a)
{
    if (!a) return;
    itd_arena_block *b = a->head; /* `a` is inside the last block of the chain */
    while (b) {
        itd_arena_block *next = b->next;
        free(b);
        b = next;
    }
}

size_t itd_arena_bytes(const itd_arena *a)
{
    size_t n = 0;
    for (const itd_arena_block *b = a ? a->head : NULL; b; b = b->next) n += sizeof *b + b->cap;
    return n;
}

static void free_values(cJSON *n)
{
    for (; n; n = n->next) {
        free(n->valuestring);
        n->valuestring = NULL;
        if (n->child) free_values(n->child);
    }
}

void itd_json_release(cJSON *tree, itd_arena *a)
{
    if (!a->vals) free_values(tree);
    itd_arena_block *b = a->head;
    while (b) {
        itd_arena_block *next = b->next;
        if (next || !spare_give(b)) free(b); /* the first block may be kept */
        b = next;
    }
    a->head = NULL;
}



/* Nodes and keys: from the arena when there is one. */
static void *alloc(itd_jlex *ps, size_t n)
{
    return ps->arena ? arena_alloc(ps->arena, n, ps->first) : malloc(n);
}

static int fail(itd_jlex *ps, const char *at, const char *msg)
{
    if (!ps->err) { ps->err = msg; ps->err_at = at; }
    return -1;
}

static cJSON *new_node(itd_jlex *ps, int type)
{
    cJSON *n = alloc(ps, sizeof *n);
    if (!n) { fail(ps, ps->p, "out of memory"); return NULL; }
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

/* Where parse_string puts a string: keys in the parse arena, values in the
 * frozen decode's arena when there is one, else malloc (the codec moves
 * them into the objects it builds). */
static int str_pooled(const itd_jlex *ps, int is_key)
{
    return ps->insitu || (ps->arena && (is_key || ps->arena->vals));
}

static char *str_alloc(itd_jlex *ps, size_t n, int is_key)
{
    if (!str_pooled(ps, is_key)) return malloc(n);
    return is_key ? alloc(ps, n) : itd_arena_alloc(ps->arena->vals, n);
}

/* Give back a string parse_string made (arena memory is not freed alone). */
static void drop(itd_jlex *ps, char *s, int is_key)
{
    if (!str_pooled(ps, is_key)) free(s);
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0
 * with *why set (NULL: well-formed up to `end`, which cuts it).  Table 3-7
 * of the Unicode standard: the second byte's range depends on the lead,
 * which rules out overlongs, UTF-8 surrogates and code points past U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end, const char **why)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0xC0) { *why = "invalid UTF-8 in string (stray continuation byte)"; return 0; }
    if (c < 0xC2) { *why = "invalid UTF-8 in string (overlong encoding)"; return 0; }
    if (c < 0xE0) n = 2;
    else if (c < 0xF0) { n = 3; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
    else if (c < 0xF5) { n = 4; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
    else { *why = "invalid UTF-8 in string (byte 0xF5..0xFF: above U+10FFFF or never valid)"; return 0; }
    size_t have = (size_t)(end - p) < n ? (size_t)(end - p) : n;
    if (have > 1 && (p[1] < lo || p[1] > hi)) {
        if (p[1] < 0x80 || p[1] > 0xBF) *why = "invalid UTF-8 in string (truncated sequence)";
        else if (c == 0xED) *why = "invalid UTF-8 in string (UTF-16 surrogate encoded in UTF-8)";
        else if (c == 0xF4) *why = "invalid UTF-8 in string (code point above U+10FFFF)";
        else *why = "invalid UTF-8 in string (overlong encoding)";
        return 0;
    }
    for (size_t i = 2; i < have; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) { *why = "invalid UTF-8 in string (truncated sequence)"; return 0; }
    if (have < n) { *why = NULL; return 0; } /* well-formed so far, cut by the end of the input */
    return n;
}

size_t itd_utf8_check(const char *s, size_t n)
{
    const unsigned char *b = (const unsigned char *)s, *p = b, *end = b + n;
    while (p < end) {
        if (*p < 0x80) { p++; continue; }
        const char *why = NULL;
        size_t k = utf8_seq(p, end, &why);
        if (!k) return (size_t)(p - b);
        p += k;
    }
    return n;
}

/* Parse a string starting after the opening quote.  Returns it in place when
 * the text is the parser's own copy, else a copy (see str_alloc). */
/* The rest of a string from p (where the fast scan stopped): UTF-8,
 * escapes, errors, and the copies of the strings not parsed in place. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
char *itd_jlex_string_rest(itd_jlex *ps, int is_key, const char *s, const char *p)
{
    for (;;) {
        if (p >= ps->end || (unsigned char)*p < 0x80) break;
        const char *why;
        size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)ps->end, &why);
        if (!k) { fail(ps, why ? p : ps->end, why ? why : "unterminated string"); return NULL; }
        p = scan_plain(p + k, ps->end);
    }
    if (p >= ps->end) { fail(ps, p, "unterminated string"); return NULL; }
    if ((unsigned char)*p < 0x20) { fail(ps, p, "control character in string"); return NULL; }
    if (*p == '"') {
        size_t n = (size_t)(p - s);
        if (ps->insitu) { /* the closing quote becomes the string's end */
            *(char *)p = 0;
            ps->p = p + 1;
            return (char *)s;
        }
        char *out = str_alloc(ps, n + 1, is_key);
        if (!out) { fail(ps, s, "out of memory"); return NULL; }
        memcpy(out, s, n);
        out[n] = 0;
        ps->p = p + 1;
        return out;
    }
    /* slow path with escapes: the output is never longer than the input */
    const char *q = p;
    /* an escape takes two bytes, but never step past the end (a lone
     * backslash at the end is an unterminated string, reported at the end) */
    while (q < ps->end && *q != '"') q += *q == '\\' && ps->end - q > 1 ? 2 : 1;
    if (q >= ps->end) { fail(ps, ps->end, "unterminated string"); return NULL; }
    /* in place, the output never overtakes the input it is read from */
    char *out = ps->insitu ? (char *)s : str_alloc(ps, (size_t)(q - s) + 1, is_key), *o = out;
    if (!out) { fail(ps, s, "out of memory"); return NULL; }
    if (!ps->insitu) memcpy(o, s, (size_t)(p - s));
    o += p - s;
    while (p < ps->end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) { drop(ps, out, is_key); fail(ps, p, "control character in string"); return NULL; }
        if (c >= 0x80) {
            const char *why;
            size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)ps->end, &why);
            if (!k) { drop(ps, out, is_key); fail(ps, why ? p : ps->end, why ? why : "unterminated string"); return NULL; }
            memmove(o, p, k); /* o may trail p by less than k when in place */
            o += k;
            p += k;
            continue;
        }
        if (c != '\\') { *o++ = (char)c; p++; continue; }
        if (p + 1 >= ps->end) { drop(ps, out, is_key); fail(ps, p, "unterminated string"); return NULL; }
        char e = p[1];
        p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - p < 4 || hex4(p, &cp)) { drop(ps, out, is_key); fail(ps, p, "bad \\u escape"); return NULL; }
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    drop(ps, out, is_key); fail(ps, p - 6, "lone UTF-16 surrogate in \\u escape"); return NULL;
                }
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                drop(ps, out, is_key); fail(ps, p - 6, "lone UTF-16 surrogate in \\u escape"); return NULL;
            }
            if (cp == 0) { drop(ps, out, is_key); fail(ps, p - 6, "\\u0000 in a string is not supported"); return NULL; }
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: drop(ps, out, is_key); fail(ps, p - 1, "bad escape in string"); return NULL;
        }
    }
    *o = 0;
    ps->p = p + 1;
    return out;
}

int itd_jlex_number(itd_jlex *ps, double *out)
{
    const char *s = ps->p, *p = s;
    int neg = 0, is_int = 1;
    if (p < ps->end && *p == '-') { neg = 1; p++; }
    if (p >= ps->end || *p < '0' || *p > '9') return fail(ps, s, "bad number");
    uint64_t v = 0;
    int digits = 0;
    if (*p == '0') {
        p++;
        digits = 1;
        if (p < ps->end && *p >= '0' && *p <= '9') return fail(ps, s, "bad number: leading zeros are not allowed");
    }
    else while (p < ps->end && *p >= '0' && *p <= '9') { v = v * 10 + (uint64_t)(*p - '0'); p++; digits++; }
    if (p < ps->end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9') return fail(ps, p, "bad number: digits expected after '.'");
        while (p < ps->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) p++;
        if (p >= ps->end || *p < '0' || *p > '9') return fail(ps, p, "bad number: digits expected in exponent");
        while (p < ps->end && *p >= '0' && *p <= '9') p++;
    }
    double d;
    if (is_int && digits <= 15) {
        d = (double)v; /* exact */
        if (neg) d = -d;
    } else {
        /* strtod reads the locale's decimal point (a program may have called
         * setlocale): JSON's '.' is written as that point before calling it. */
        const char *dp = localeconv()->decimal_point;
        size_t dpn = dp && dp[0] ? strlen(dp) : 1;
        if (dpn > 8) return fail(ps, s, "number: unusable locale decimal point");
        char buf[96], *tmp = buf;
        size_t len = (size_t)(p - s), need = len + dpn + 1, k = 0;
        if (need > sizeof buf && !(tmp = malloc(need))) return fail(ps, s, "out of memory");
        for (const char *q = s; q < p; q++) {
            if (*q == '.' && dpn && dp && dp[0] && !(dp[0] == '.' && dpn == 1)) { memcpy(tmp + k, dp, dpn); k += dpn; }
            else tmp[k++] = *q;
        }
        tmp[k] = 0;
        errno = 0;
        d = strtod(tmp, NULL);
        if (tmp != buf) free(tmp);
        if (!isfinite(d)) return fail(ps, s, "number out of range");
    }
    *out = d;
    ps->p = p;
    return 0;
}

static int expect_word(itd_jlex *ps, const char *w, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return fail(ps, ps->p, "unexpected character");
    ps->p += n;
    return 0;
}

static void append(cJSON *parent, cJSON *child)
{
    if (!parent->child) {
        parent->child = child;
        child->prev = child; /* cJSON keeps the last element in child->prev */
    } else {
        cJSON *last = parent->child->prev;
        last->next = child;
        child->prev = last;
        parent->child->prev = child;
    }
}

static cJSON *parse_value(itd_jlex *ps);

static cJSON *parse_container(itd_jlex *ps, int object)
{
    cJSON *n = new_node(ps, object ? cJSON_Object : cJSON_Array);
    if (!n) return NULL;
    if (++ps->depth > ITD_MAX_DEPTH) { fail(ps, ps->p, "nested too deeply (more than 1000 levels)"); return n; }
    ps->p++; /* [ or { */
    itd_jlex_ws(ps);
    char close = object ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return n; }
    for (;;) {
        char *key = NULL;
        if (object) {
            itd_jlex_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') { fail(ps, ps->p, "object key expected"); return n; }
            ps->p++;
            if (!(key = itd_jlex_string(ps, 1))) return n;
            itd_jlex_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') { drop(ps, key, 1); fail(ps, ps->p, "':' expected"); return n; }
            ps->p++;
        }
        cJSON *v = parse_value(ps);
        if (v) {
            v->string = key;
            append(n, v);
        } else {
            drop(ps, key, 1);
        }
        if (ps->err) return n;
        itd_jlex_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
        fail(ps, ps->p, object ? "',' or '}' expected" : "',' or ']' expected");
        return n;
    }
    ps->depth--;
    return n;
}

static cJSON *parse_value(itd_jlex *ps)
{
    itd_jlex_ws(ps);
    if (ps->p >= ps->end) { fail(ps, ps->p, "unexpected end of document"); return NULL; }
    cJSON *n;
    switch (*ps->p) {
    case '{': return parse_container(ps, 1);
    case '[': return parse_container(ps, 0);
    case '"': {
        if (!(n = new_node(ps, cJSON_String))) return NULL;
        ps->p++;
        n->valuestring = itd_jlex_string(ps, 0);
        return n;
    }
    case 't':
        if (expect_word(ps, "true", 4)) return NULL;
        return new_node(ps, cJSON_True);
    case 'f':
        if (expect_word(ps, "false", 5)) return NULL;
        return new_node(ps, cJSON_False);
    case 'n':
        if (expect_word(ps, "null", 4)) return NULL;
        return new_node(ps, cJSON_NULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            if (!(n = new_node(ps, cJSON_Number))) return NULL;
            double d = 0;
            itd_jlex_number(ps, &d);
            n->valuedouble = d;
            n->valueint = d >= INT32_MAX ? INT32_MAX : d <= (double)INT32_MIN ? INT32_MIN : (int)d;
            return n;
        }
        fail(ps, ps->p, "unexpected character");
        return NULL;
    }
}

cJSON *itd_json_parse(const char *text, size_t len, size_t *err_offset, const char **err_msg)
{
    itd_jlex ps = { text, text + len, text, NULL, NULL, 0, NULL, 0, 0 };
    cJSON *root = parse_value(&ps);
    if (!ps.err) {
        itd_jlex_ws(&ps);
        if (ps.p < ps.end) fail(&ps, ps.p, "unexpected data after the document");
    }
    if (ps.err) {
        cJSON_Delete(root);
        if (err_offset) *err_offset = (size_t)(ps.err_at - text);
        if (err_msg) *err_msg = ps.err;
        return NULL;
    }
    return root;
}

/* The first block of a parse arena: nodes take about 6x the text, so one
 * block usually holds the document. */
static size_t first_block(size_t len)
{
    return len < (1u << 17) ? len * 6 + 1024 : (1u << 20);
}

int itd_jlex_open(itd_jlex *ps, const char *text, size_t len, itd_arena *a)
{
    /* the strings' home is the doc arena: the text is copied there once
     * and parsed in place (keys and values end where their quotes were) */
    char *copy = itd_arena_alloc(a->vals, len + ITD_JLEX_PAD);
    if (!copy) return -1;
    if (len) memcpy(copy, text, len);
    memset(copy + len, 0, ITD_JLEX_PAD);
    *ps = (itd_jlex){ copy, copy + len, copy, NULL, NULL, 0, a, first_block(len), 1 };
    return 0;
}

cJSON *itd_jlex_value(itd_jlex *ps)
{
    return parse_value(ps);
}

cJSON *itd_json_parse_arena(const char *text, size_t len, itd_arena *a, size_t *err_offset, const char **err_msg)
{
    itd_jlex ps = { text, text + len, text, NULL, NULL, 0, a, first_block(len), 0 };
    if (a->vals && itd_jlex_open(&ps, text, len, a)) {
        if (err_offset) *err_offset = 0;
        if (err_msg) *err_msg = "out of memory";
        return NULL;
    }
    cJSON *root = parse_value(&ps);
    if (!ps.err) {
        itd_jlex_ws(&ps);
        if (ps.p < ps.end) fail(&ps, ps.p, "unexpected data after the document");
    }
    if (ps.err) {
        itd_json_release(root, a);
        if (err_offset) *err_offset = (size_t)(ps.err_at - ps.start);
        if (err_msg) *err_msg = ps.err;
        return NULL;
    }
    return root;
}
