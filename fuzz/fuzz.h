/* fuzz.h - shared by the fuzz targets: a check that aborts (so libFuzzer
 * records the input as a crash) and a cursor to cut an input into fields. */
#ifndef ITD_FUZZ_H
#define ITD_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <math.h>
#include <cjson/cJSON.h>

#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

typedef struct fz_cursor {
    const uint8_t *p;
    size_t n;
} fz_cursor;

static inline uint8_t fz_byte(fz_cursor *c)
{
    if (!c->n) return 0;
    c->n--;
    return *c->p++;
}

/* The bytes up to the next `sep` (or the end) as a malloc'd NUL-terminated
 * string; the separator is consumed.  Never NULL (aborts on OOM: a fuzz run
 * has no use for OOM paths here). */
static inline char *fz_field(fz_cursor *c, uint8_t sep, size_t *len)
{
    const uint8_t *e = c->n ? memchr(c->p, sep, c->n) : NULL;
    size_t n = e ? (size_t)(e - c->p) : c->n;
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    c->n -= n;
    if (e) { c->p++; c->n--; }
    if (len) *len = n;
    return s;
}

/* The rest of the input as a NUL-terminated copy. */
static inline char *fz_rest(fz_cursor *c, size_t *len)
{
    char *s = malloc(c->n + 1);
    if (!s) abort();
    if (c->n) memcpy(s, c->p, c->n);
    s[c->n] = 0;
    if (len) *len = c->n;
    c->p += c->n;
    c->n = 0;
    return s;
}

/* Ordered, exact tree equality.  cJSON_Compare looks keys up by name, so two
 * trees with a duplicated key compare unequal even to themselves. */
static inline int fz_tree_equal_ex(const cJSON *a, const cJSON *b, int approx)
{
    if (!a || !b) return a == b;
    if ((a->type & 0xff) != (b->type & 0xff)) return 0;
    if (cJSON_IsNumber(a)) {
        if (!approx) return a->valuedouble == b->valuedouble;
        /* cJSON prints 15 digits when they read back within its epsilon */
        double x = a->valuedouble, y = b->valuedouble, m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
        return x == y || fabs(x - y) <= m * 4 * DBL_EPSILON;
    }
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a)) return 1;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) return 0;
        if (!fz_tree_equal_ex(x, y, approx)) return 0;
    }
    return !x && !y;
}
static inline int fz_tree_equal(const cJSON *a, const cJSON *b) { return fz_tree_equal_ex(a, b, 0); }
#endif
