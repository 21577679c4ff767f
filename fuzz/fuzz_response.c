/* fuzz_response: itd_response_parse with the retry decision and the
 * Retry-After parser, fed a fuzzed operation, status, content type,
 * Retry-After and body.
 * Input layout (11 header bytes, then text fields):
 *   [0] operation (modulo ITD_OP__COUNT)   [1..2] status, big-endian, modulo 1000
 *   [3] flags: 0x80 sent, 0x40 no Content-Type, 0x20 no Retry-After,
 *       0x10 fuzzed retry policy (bytes 6..10), 0x08 also try a
 *       CONNECTION (0x04: TIMEOUT) error, 0x02 marked retryable
 *   [4] rnd * 256   [5] attempt - 1 (modulo 8)   [6..10] retry policy
 *   then: Content-Type '\n' Retry-After '\n' body (the rest).
 * The body is also read as an HTTP/1.x response head (http1.h), with the
 * default caps and with small ones. */
#include <math.h>
#include <time.h>
#include "intuned.h"
#include "fuzz.h"

/* The row's success status (tests/test_ops.c checks the rows against the
 * reference); parsing must take that one status and no other. */
static int expect_status(itd_op op)
{
    return itd_op_def_of(op)->success;
}

static void check_retry_after(const char *v)
{
    double r = itd_retry_after_seconds(v, 0);
    FUZZ_CHECK(r == -1 || (isfinite(r) && r >= 0), "Retry-After \"%s\" gave %g", v, r);
    /* the surrounding white space the parser trims changes nothing */
    size_t n = strlen(v);
    char *padded = malloc(n + 5);
    if (!padded) abort();
    snprintf(padded, n + 5, " \t%s \r", v);
    double r2 = itd_retry_after_seconds(padded, 0);
    FUZZ_CHECK(r2 == r, "Retry-After \"%s\" gave %g, padded %g", v, r, r2);
    free(padded);
    size_t i = 0;
    while (v[i] == ' ' || v[i] == '\t') i++;
    int digits_only = v[i] != 0;
    size_t k = i;
    for (; v[k] && v[k] != ' ' && v[k] != '\t' && v[k] != '\r' && v[k] != '\n'; k++)
        if (v[k] < '0' || v[k] > '9') digits_only = 0;
    for (size_t j = k; v[j]; j++)
        if (v[j] != ' ' && v[j] != '\t' && v[j] != '\r' && v[j] != '\n') digits_only = 0;
    double clamp = HUGE_VAL;
#ifdef ITD_RETRY_AFTER_CLAMP
    clamp = ITD_RETRY_AFTER_CLAMP;
#endif
    if (digits_only && k > i && k - i <= 64) {
        double want = strtod(v + i, NULL);
        if (want > clamp) want = clamp;
        FUZZ_CHECK(r == want, "delta-seconds \"%s\" gave %g", v, r);
    }
    if (r > 0 && r < clamp && !digits_only && !strchr(v, '.')) {
        /* an HTTP date: later `now` gives the rest of the wait, and the
         * date re-written as an IMF-fixdate means the same instant */
        double r3 = itd_retry_after_seconds(v, 1e6);
        FUZZ_CHECK(r3 == (r > 1e6 ? r - 1e6 : 0), "\"%s\": %g at 0, %g at 1e6", v, r, r3);
        if (r < 253402300800.0) {
            time_t t = (time_t)r;
            struct tm tm;
            char buf[64];
            if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
                double r4 = itd_retry_after_seconds(buf, 0);
                FUZZ_CHECK(r4 == r, "\"%s\" = %g but its IMF-fixdate \"%s\" = %g", v, r, buf, r4);
            }
        }
    }
}

typedef struct span { const char *lo, *hi; int n; } span;

static void in_span(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    span *s = ud;
    FUZZ_CHECK(nlen > 0 && name >= s->lo && name + nlen <= s->hi, "header name outside the head");
    FUZZ_CHECK(value >= s->lo && value + vlen <= s->hi, "header value outside the head");
    for (size_t i = 0; i < nlen; i++) FUZZ_CHECK(name[i] != ':' && name[i] != ' ' && name[i] != '\n', "name byte");
    if (vlen) FUZZ_CHECK(value[0] != ' ' && value[vlen - 1] != ' ' && value[vlen - 1] != '\r', "value not trimmed");
    s->n++;
}

static void check_http1(const char *b, size_t n, const itd_http1_limits *lim)
{
    itd_http1_head h;
    char why[96];
    span sp = { b, b + n, 0 };
    int r = itd_http1_parse_head(b, n, lim, 0, &h, in_span, &sp, why, sizeof why);
    if (r == ITD_HTTP1_DONE) {
        FUZZ_CHECK(h.end >= 4 && h.end <= n && b[h.end - 1] == '\n', "head end %zu of %zu", h.end, n);
        FUZZ_CHECK(h.status >= 101 && h.status <= 999 && (h.status >= 200 || h.status == 101), "status %d", h.status);
        FUZZ_CHECK((size_t)sp.n <= (lim ? lim->max_headers : 200), "%d headers", sp.n);
        /* the head alone is the same head; one byte fewer asks for more */
        itd_http1_head h2;
        FUZZ_CHECK(itd_http1_parse_head(b, h.end, lim, 0, &h2, NULL, NULL, why, sizeof why) == ITD_HTTP1_DONE &&
                   h2.end == h.end && h2.status == h.status, "head alone");
        FUZZ_CHECK(itd_http1_parse_head(b, h.end - 1, lim, 0, &h2, NULL, NULL, why, sizeof why) == ITD_HTTP1_MORE,
                   "head less its last byte");
    } else if (r == ITD_HTTP1_MORE) {
        FUZZ_CHECK(sp.n == 0, "headers seen of an incomplete head");
        FUZZ_CHECK(h.end <= n && h.counted >= h.end, "droppable %zu of %zu, counted %zu", h.end, n, h.counted);
        /* the complete 1xx heads dropped, the rest fed again: the same answer */
        itd_http1_head h2;
        FUZZ_CHECK(itd_http1_parse_head(b + h.end, n - h.end, lim, h.counted, &h2, NULL, NULL, why, sizeof why) ==
                       ITD_HTTP1_MORE && h2.end == 0 && h2.counted == h.counted, "resumed");
        size_t max_head = lim ? lim->max_head : 300 * 1024, max_line = lim ? lim->max_line : 100 * 1024;
        FUZZ_CHECK(n <= max_head + max_line + 1, "asks for more with %zu bytes", n);
    } else {
        FUZZ_CHECK(r == ITD_HTTP1_MALFORMED && why[0], "rc %d, why \"%s\"", r, why);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 11 || size > (1u << 20)) return 0;
    fz_cursor cur = { data, size };
    itd_op op = (itd_op)(fz_byte(&cur) % ITD_OP__COUNT);
    unsigned hi = fz_byte(&cur), lo = fz_byte(&cur);
    long status = (long)((hi << 8 | lo) % 1000);
    unsigned flags = fz_byte(&cur);
    double rnd = fz_byte(&cur) / 256.0;
    int attempt = 1 + fz_byte(&cur) % 8;
    uint8_t pb[5];
    for (int i = 0; i < 5; i++) pb[i] = fz_byte(&cur);
    int sent = (flags & 0x80) != 0;

    itd_retry_policy pol;
    itd_retry_policy_default(&pol);
    if (flags & 0x10) {
        pol.enabled = pb[0] & 1;
        pol.max_attempts = pb[0] >> 4;
        pol.initial_delay = pb[1] / 16.0 - 1;   /* negatives too: they must fall back to the default */
        pol.max_delay = pb[2] / 4.0 - 2;
        pol.multiplier = pb[3] / 32.0;
        pol.jitter = pb[4] / 128.0 - 0.5;
    }

    char *ct = fz_field(&cur, '\n', NULL);
    char *ra = fz_field(&cur, '\n', NULL);
    size_t blen;
    char *body = fz_rest(&cur, &blen);

    check_http1(body, blen, NULL);
    itd_http1_limits small = { 8 + pb[0] % 64, 16 + pb[1], 1 + pb[2] % 8 };
    check_http1(body, blen, &small);

    itd_response resp = { status, (flags & 0x40) ? NULL : ct, (flags & 0x20) ? NULL : ra, body, blen };
    itd_result res;
    itd_error err = ITD_ERROR_INIT;
    int rc = itd_response_parse(op, &resp, &res, &err);
    if (rc == 0) {
        FUZZ_CHECK(err.kind == ITD_ERR_NONE, "success with error kind %s", itd_err_kind_name(err.kind));
        FUZZ_CHECK(status == expect_status(op), "success for status %ld of %s", status, itd_op_name(op));
        FUZZ_CHECK(res.op == op, "result op");
        if (!itd_op_def_of(op)->response) {   /* the deletes' 204 */
            FUZZ_CHECK(!res.obj, "%s has a result object", itd_op_name(op));
        } else {
            FUZZ_CHECK(res.obj && res.schema, "no result object");
            char *e = itd_encode(res.schema, res.obj, NULL);
            FUZZ_CHECK(e, "result does not encode");
            free(e);
        }
    } else {
        FUZZ_CHECK(rc == -1, "rc %d", rc);
        FUZZ_CHECK(err.kind != ITD_ERR_NONE && err.message[0], "failure without kind/message");
        FUZZ_CHECK(err.status == (int)status, "error status %d for %ld", err.status, status);
        /* (not <= blen: a body with secrets is kept as its redacted rendering) */
        FUZZ_CHECK(err.body_len <= ITD_ERROR_BODY_MAX, "kept %zu body bytes of %zu", err.body_len, blen);
        /* not compared with the body: secrets in it are scrubbed (scrub.c) */
        if (err.body_len) FUZZ_CHECK(err.body && err.body[err.body_len] == 0, "kept body not terminated");
        if (err.retryable)
            FUZZ_CHECK(status == 429 || status == 502 || status == 503 || status == 504, "retryable %ld", status);
        if (status >= 300 && status <= 599 && status != expect_status(op)) {
            /* error statuses: the message is one line (from the body or "HTTP n") */
            for (const char *m = err.message; *m; m++)
                FUZZ_CHECK((unsigned char)*m >= 0x20 && *m != 0x7f, "control character in \"%s\"", err.message);
            if (!resp.retry_after) FUZZ_CHECK(err.retry_after == -1, "retry_after %g without the header", err.retry_after);
            else FUZZ_CHECK(err.retry_after == -1 || (isfinite(err.retry_after) && err.retry_after >= 0),
                            "retry_after %g", err.retry_after);
        }
        char line[1024];
        itd_error_format(&err, line, sizeof line);
        FUZZ_CHECK(line[0], "empty formatted error");
    }

    double delay = -1;
    int again = itd_retry_decide(&pol, op, attempt, &err, sent, rnd, &delay);
    if (rc == 0) FUZZ_CHECK(!again, "retry after success");
    if (again) {
        FUZZ_CHECK(pol.enabled && attempt < pol.max_attempts, "retry beyond the policy");
        FUZZ_CHECK(err.kind == ITD_ERR_RATE_LIMITED || err.kind == ITD_ERR_SERVER, "retry of kind %s",
                   itd_err_kind_name(err.kind));
        FUZZ_CHECK(err.status != 500, "retry of a 500");
        if (!itd_op_idempotent(op) && err.kind == ITD_ERR_SERVER)
            FUZZ_CHECK(err.status == 503 && err.retry_after >= 0, "%s retried on %d", itd_op_name(op), err.status);
        double maxd = pol.max_delay >= 0 && isfinite(pol.max_delay) ? pol.max_delay : 30;
        double cap = err.retry_after > maxd ? err.retry_after : maxd;
        FUZZ_CHECK(isfinite(delay) && delay >= 0 && delay <= cap * (1 + 1e-12), "delay %g (cap %g)", delay, cap);
    } else {
        FUZZ_CHECK(delay == 0, "no retry but delay %g", delay);
    }

    if (flags & 0x0c) {   /* the transport's own failures */
        itd_error ce = ITD_ERROR_INIT;
        ce.kind = (flags & 0x08) ? ITD_ERR_CONNECTION : ITD_ERR_TIMEOUT;
        ce.retryable = (flags & 0x02) != 0;
        ce.retry_after = -1;
        int r2 = itd_retry_decide(&pol, op, attempt, &ce, sent, rnd, &delay);
        if (r2) {
            FUZZ_CHECK(ce.retryable, "retry of a failure marked final");
            FUZZ_CHECK(!sent || itd_op_idempotent(op), "%s retried after it was sent", itd_op_name(op));
            FUZZ_CHECK(isfinite(delay) && delay >= 0, "delay %g", delay);
        }
    }

    check_retry_after(ra);
    itd_result_free(&res);
    itd_error_clear(&err);
    free(ct);
    free(ra);
    free(body);
    return 0;
}
