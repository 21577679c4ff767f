/*
 * json_write.c - compact JSON text from a cJSON tree, with exact numbers.
 *
 * cJSON_PrintUnformatted writes 15 significant digits whenever they read
 * back within an epsilon of the value, so 0.30000000000000004 went out as
 * 0.3 and 9007199254740991 as 9.00719925474099e+15 (another integer).  This
 * writer gives the same layout as cJSON's (same key order, no spaces, the
 * same string escapes: '"', '\\', \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx, everything else as it is) but numbers read back to the same
 * double: integral values below 1e15 as integers, others with the fewest of
 * 15, 16 or 17 significant digits that strtod gives back exactly.  -0 is
 * written "-0" (it reads back as -0) and NaN and infinities "null", as
 * cJSON 1.7.15 writes them.  Raw nodes
 * (cJSON_Raw: text that is JSON already, the emulator's stored results) are
 * copied as they are.  One growable buffer (buf.h); the tree is walked with an
 * explicit stack, so depth costs no C stack.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codec.h"
#include "json.h"
#include "buf.h"

typedef itd_buf jbuf;
#define put(b, s, n) ((void)itd_buf_put((b), (s), (n)))
#define putc1(b, c) ((void)itd_buf_putc((b), (c)))

static void put_string(jbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    putc1(b, '"');
    if (s) {
        const unsigned char *p = (const unsigned char *)s;
        for (;;) {
            const unsigned char *run = p;
            while (*p >= 0x20 && *p != '"' && *p != '\\') p++;
            put(b, (const char *)run, (size_t)(p - run));
            if (!*p) break;
            char e[6] = { '\\', 0, 0, 0, 0, 0 };
            size_t n = 2;
            switch (*p) {
            case '"': e[1] = '"'; break;
            case '\\': e[1] = '\\'; break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            default:
                e[1] = 'u'; e[2] = '0'; e[3] = '0';
                e[4] = hex[*p >> 4]; e[5] = hex[*p & 15];
                n = 6;
            }
            put(b, e, n);
            p++;
        }
    }
    putc1(b, '"');
}

size_t itd_json_dot(char *s, size_t n)
{
    size_t i = 0;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' || s[i] == 'e' || s[i] == 'E')) i++;
    if (i == n || s[i] == '.') return n;
    /* a locale's decimal point (',' or a multibyte one): one '.' instead */
    size_t j = i;
    while (j < n && !((s[j] >= '0' && s[j] <= '9') || s[j] == '-' || s[j] == '+' || s[j] == 'e' || s[j] == 'E')) j++;
    s[i] = '.';
    memmove(s + i + 1, s + j, n - j);
    n -= j - i - 1;
    s[n] = 0;
    return n;
}

size_t itd_json_number(double d, char *out)
{
    if (!isfinite(d)) { memcpy(out, "null", 5); return 4; }
    if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d) {
        /* integral: digits without snprintf */
        if (d == 0 && signbit(d)) { memcpy(out, "-0", 3); return 2; }
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char tmp[24], *q = tmp + sizeof tmp;
        do { *--q = (char)('0' + u % 10); u /= 10; } while (u);
        if (v < 0) *--q = '-';
        size_t n = (size_t)(tmp + sizeof tmp - q);
        memcpy(out, q, n);
        out[n] = 0;
        return n;
    }
    /* Wider than ITD_JSON_NUMBER_MAX: a locale's decimal point may take a
     * few bytes before itd_json_dot makes it one '.'. */
    char tmp[64];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        /* strtod reads the current locale's decimal point, as snprintf wrote it */
        if (prec == 17 || strtod(tmp, NULL) == d) break;
    }
    if (n < 0 || (size_t)n >= sizeof tmp) { memcpy(out, "null", 5); return 4; } /* cannot happen */
    size_t len = itd_json_dot(tmp, (size_t)n);
    if (len >= ITD_JSON_NUMBER_MAX) { memcpy(out, "null", 5); return 4; } /* cannot happen */
    memcpy(out, tmp, len + 1);
    return len;
}

/* One value without its children: a scalar, or an empty container. */
static int put_scalar(jbuf *b, const cJSON *it)
{
    switch (it->type & 0xff) {
    case cJSON_NULL: put(b, "null", 4); return 0;
    case cJSON_False: put(b, "false", 5); return 0;
    case cJSON_True: put(b, "true", 4); return 0;
    case cJSON_Number: {
        char num[ITD_JSON_NUMBER_MAX];
        put(b, num, itd_json_number(it->valuedouble, num));
        return 0;
    }
    case cJSON_String: put_string(b, it->valuestring); return 0;
    case cJSON_Raw:
        if (!it->valuestring) return -1; /* cJSON refuses it too */
        put(b, it->valuestring, strlen(it->valuestring));
        return 0;
    case cJSON_Array: put(b, "[]", 2); return 0;
    case cJSON_Object: put(b, "{}", 2); return 0;
    default: return -1; /* cJSON_Invalid */
    }
}

char *itd_json_print(const cJSON *item, size_t *len)
{
    if (!item) return NULL;
    jbuf b = ITD_BUF_INIT;
    const cJSON **stack = NULL; /* the open containers, outermost first */
    size_t depth = 0, scap = 0;
    const cJSON *it = item;
    int bad = 0;
    for (;;) {
        int type = it->type & 0xff;
        if ((type == cJSON_Array || type == cJSON_Object) && it->child) {
            if (depth == scap) {
                size_t ncap = scap ? scap * 2 : 16;
                const cJSON **ns = realloc((void *)stack, ncap * sizeof *ns);
                if (!ns) { b.oom = 1; break; }
                stack = ns;
                scap = ncap;
            }
            stack[depth++] = it;
            putc1(&b, type == cJSON_Array ? '[' : '{');
            it = it->child;
            if (type == cJSON_Object) { put_string(&b, it->string); putc1(&b, ':'); }
            continue;
        }
        if (put_scalar(&b, it)) { bad = 1; break; }
        /* the next sibling, or close containers until there is one */
        while (depth && !it->next) {
            it = stack[--depth];
            putc1(&b, (it->type & 0xff) == cJSON_Array ? ']' : '}');
        }
        if (!depth || b.oom) break;
        it = it->next;
        putc1(&b, ',');
        if ((stack[depth - 1]->type & 0xff) == cJSON_Object) { put_string(&b, it->string); putc1(&b, ':'); }
    }
    free((void *)stack);
    if (bad) b.oom = 1;
    size_t n = b.n;
    char *out = itd_buf_take(&b);
    if (out && len) *len = n;
    return out;
}
