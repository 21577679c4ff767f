/*
 * http1.c - an HTTP/1.x response head from bytes (http1.h).  The nginx
 * transport reads with cosockets and hands the bytes here: a head parsed in
 * Lua took a fifth of a call's time inside nginx (a pattern per header line).
 *
 * The request side writes what intuned.http1 used to join in Lua.
 *
 * A head is read whole each time more bytes come (heads are small, and the
 * caps bound the work): the limits are checked on the bytes so far, so a
 * hostile server is refused as soon as a line or the heads pass them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "http1.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "HTTP/d.d ddd...": 0 with the numbers, else -1. */
static int status_line(const char *l, size_t n, itd_http1_head *h)
{
    if (n < 12 || memcmp(l, "HTTP/", 5) != 0 || !is_digit(l[5]) || l[6] != '.' || !is_digit(l[7]) || l[8] != ' ' ||
        !is_digit(l[9]) || !is_digit(l[10]) || !is_digit(l[11]))
        return -1;
    h->major = l[5] - '0';
    h->minor = l[7] - '0';
    h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return 0;
}

/* A header line "name: value" to fn; other shapes are skipped. */
static void header_line(const char *l, size_t n, itd_http1_header_fn fn, void *ud)
{
    size_t i = 0;
    while (i < n && l[i] != ':' && !is_space(l[i])) i++;
    if (i == 0) return;
    size_t nlen = i;
    while (i < n && is_space(l[i])) i++;
    if (i >= n || l[i] != ':') return;
    i++;
    while (i < n && is_space(l[i])) i++;
    size_t e = n;
    while (e > i && is_space(l[e - 1])) e--;
    fn(ud, l, nlen, l + i, e - i);
}

/* The content of the line at p (no CR LF) in *n; its end (after the LF) in
 * *next.  0 when the bytes end before its LF. */
static int next_line(const char *buf, size_t len, size_t p, size_t *n, size_t *next)
{
    const char *nl = memchr(buf + p, '\n', len - p);
    if (!nl) return 0;
    size_t ll = (size_t)(nl - (buf + p));
    *n = ll && buf[p + ll - 1] == '\r' ? ll - 1 : ll;
    *next = (size_t)(nl - buf) + 1;
    return 1;
}

int itd_http1_parse_head(const char *buf, size_t len, const itd_http1_limits *lim, size_t counted,
                         itd_http1_head *head, itd_http1_header_fn fn, void *ud, char *why, size_t whylen)
{
    static const itd_http1_limits dflt = ITD_HTTP1_LIMITS_INIT;
    if (!lim) lim = &dflt;
    if (!why || !whylen) {
        static char none[1];
        why = none;
        whylen = sizeof none;
    }
    why[0] = 0;
    size_t p = 0, total = counted;
    size_t done = 0, done_counted = counted; /* the complete 1xx heads */
    for (;;) { /* one head a turn: 1xx answers, then the final one */
        size_t start = p, nheaders = 0;
        itd_http1_head h = { 0, 0, 0, 0, 0 };
        for (size_t line = 0;; line++) {
            size_t n, next;
            if (!next_line(buf, len, p, &n, &next)) {
                /* + 1: the CR that may come before the LF */
                if (len - p > lim->max_line + 1) goto line_too_long;
                if (head) {
                    head->end = done;
                    head->counted = done_counted;
                }
                return ITD_HTTP1_MORE;
            }
            if (n > lim->max_line) goto line_too_long;
            total += n + 2;
            if (total > lim->max_head) {
                snprintf(why, whylen, "response headers larger than %zu bytes", lim->max_head);
                return ITD_HTTP1_MALFORMED;
            }
            const char *l = buf + p;
            p = next;
            if (line == 0) {
                if (status_line(l, n, &h)) {
                    snprintf(why, whylen, "malformed status line");
                    return ITD_HTTP1_MALFORMED;
                }
            } else if (n == 0) {
                break;
            } else if (++nheaders > lim->max_headers) {
                snprintf(why, whylen, "too many response headers");
                return ITD_HTTP1_MALFORMED;
            }
        }
        if (h.status >= 200 || h.status == 101) {
            if (fn) {
                size_t q = start, n, next;
                next_line(buf, len, start, &n, &q); /* the status line */
                while (next_line(buf, len, q, &n, &next) && n > 0) {
                    header_line(buf + q, n, fn, ud);
                    q = next;
                }
            }
            h.end = p;
            h.counted = total;
            if (head) *head = h;
            return ITD_HTTP1_DONE;
        }
        done = p;
        done_counted = total;
    }
line_too_long:
    snprintf(why, whylen, "response header line longer than %zu bytes", lim->max_line);
    return ITD_HTTP1_MALFORMED;
}

/* ---------------------------------------------------------------- request */

typedef struct out {
    char *dst;
    size_t cap, n;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->n < o->cap) memcpy(o->dst + o->n, s, o->cap - o->n < n ? o->cap - o->n : n);
    o->n += n;
}

static void puts0(out *o, const char *s)
{
    put(o, s, strlen(s));
}

size_t itd_http1_request(const itd_request *q, char *dst, size_t cap)
{
    if (!q || !q->url) return 0;
    const char *url = q->url;
    int tls;
    if (strncasecmp(url, "http://", 7) == 0) tls = 0;
    else if (strncasecmp(url, "https://", 8) == 0) tls = 1;
    else return 0;
    const char *auth = url + (tls ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    const char *target = auth + alen;
    size_t tlen = strcspn(target, "#");
    /* the Host header: the authority, less a port the scheme implies */
    size_t hlen = alen;
    const char *colon = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (auth[i - 1] == ':') { colon = auth + i - 1; break; }
        if (auth[i - 1] == ']') break;
    }
    if (colon) {
        const char *port = colon + 1;
        size_t plen = (size_t)(auth + alen - port);
        if ((tls && plen == 3 && memcmp(port, "443", 3) == 0) || (!tls && plen == 2 && memcmp(port, "80", 2) == 0))
            hlen = (size_t)(colon - auth);
    }
    out o = { dst, dst ? cap : 0, 0 };
    const char *method = q->method ? q->method : "GET";
    puts0(&o, method);
    put(&o, " ", 1);
    if (tlen) put(&o, target, tlen);
    else put(&o, "/", 1);
    put(&o, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; i < q->nheaders; i++) {
        puts0(&o, q->headers[i].name);
        put(&o, ": ", 2);
        puts0(&o, q->headers[i].value);
        put(&o, "\r\n", 2);
    }
    put(&o, "host: ", 6);
    put(&o, auth, hlen);
    put(&o, "\r\n", 2);
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        char cl[48];
        int k = snprintf(cl, sizeof cl, "content-length: %zu\r\n", q->body ? q->body_len : 0);
        put(&o, cl, (size_t)k);
    }
    put(&o, "\r\n", 2);
    if (q->body && q->body_len) put(&o, q->body, q->body_len);
    return o.n;
}
