/*
 * protocol.c - the Jobs API protocol without I/O: (operation, arguments) to an
 * HTTP request, (operation, status, headers, body) to a typed result or an
 * error, and the comparison a reconciled create needs.
 *
 * Decisions (reference §1, §2, §3, §7; issue 4):
 *  - Requests are refused with kind VALIDATION (nothing sent) for a missing or
 *    empty workspace id / api key / path parameter, a path parameter equal to
 *    "." or ".." (it would collapse as a dot segment), a header value carrying
 *    CR/LF, and a missing create/update body.  Messages never carry the key.
 *  - A response with the exact success status but another Content-Type is a
 *    DECODE error (the body is not declared JSON); any other 2xx, and 1xx/3xx
 *    (redirects are not followed: the key would travel to the new host), is
 *    an API error.  Delete's 204 needs no Content-Type and its body is ignored.
 *  - Error statuses: 400 invalid_input, 401 unauthorized, 404 not_found,
 *    409 conflict, rate_limited, 5xx server, anything else api.  The
 *    message is the body's `message` (JSON bodies of any content type are
 *    read leniently), else "HTTP <status>".  `retryable` comes from
 *    itd_status_retryable: call.c holds every retry rule, and the
 *    reconciliation of a retried create.
 *  - Retry-After (seconds, fractions, HTTP dates) is parsed here; values are
 *    clamped to ITD_RETRY_AFTER_CLAMP seconds.
 *  - A body is encoded with the model the call's api_version sends
 *    (itd_op_request: create's JobInput or JobInputNewest); a body object of
 *    the other form is refused (VALIDATION), never re-encoded.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "protocol.h"
#include "buf.h"
#include "call.h"
#include "codec.h"
#include "codec_internal.h"
#include "ops.h"
#include "scrub.h"

/* ------------------------------------------------------------ operations */
/* What each operation is (method, path, statuses, schemas) is the table of
 * ops.c; here it is only read. */

static int op_valid(itd_op op) { return itd_op_def_of(op) != NULL; }

const char *itd_op_name(itd_op op) { return op_valid(op) ? itd_ops[op].name : "unknown"; }

int itd_op_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < ITD_OP__COUNT; i++)
        if (strcmp(itd_ops[i].name, name) == 0) return i;
    return -1;
}

int itd_op_idempotent(itd_op op) { return op_valid(op) ? itd_ops[op].idempotent : 0; }

const char *itd_api_version_name(itd_api_version v)
{
    return v == ITD_APIV_NEWEST ? "newest" : v == ITD_APIV_V0_3_12 ? "v0.3.12" : "unknown";
}

int itd_api_version_parse(const char *s, itd_api_version *out)
{
    if (!s) return -1;
    itd_api_version v;
    if (strcmp(s, "v0.3.12") == 0 || strcmp(s, "0.3.12") == 0) v = ITD_APIV_V0_3_12;
    else if (strcmp(s, "newest") == 0 || strcmp(s, "v0.5.2") == 0) v = ITD_APIV_NEWEST;
    else return -1;
    if (out) *out = v;
    return 0;
}

/* ------------------------------------------------------------ create bodies */

static const itd_schema *input_schema(const void *in)
{
    return in ? ((const itd_obj *)in)->schema : NULL;
}

const char *itd_input_id(const void *in)
{
    const itd_schema *s = input_schema(in);
    if (s == &itd_JobInput) return ((const itd_job_input *)in)->id;
    if (s == &itd_JobInputNewest || s == &itd_JobUpdateInput) return ((const itd_job_update_input *)in)->id;
    return NULL;
}

const itd_sink *itd_input_sink(const void *in)
{
    const itd_schema *s = input_schema(in);
    if (s == &itd_JobInput) {
        const itd_job_input *j = in;
        return j->sink_null ? NULL : j->sink;
    }
    if (s == &itd_JobInputNewest || s == &itd_JobUpdateInput) {
        const itd_job_update_input *j = in;
        return j->sink_null ? NULL : j->sink;
    }
    return NULL;
}

/* ------------------------------------------------------------ small bufs */

typedef itd_buf sbuf;
#define sb_put(b, s, n) ((void)itd_buf_put((b), (s), (n)))
#define sb_puts(b, s) ((void)itd_buf_puts((b), (s)))

static void sb_uri(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (isalnum(c) && c < 0x80) { char ch = (char)c; sb_put(b, &ch, 1); continue; }
        switch (c) {
        case '-': case '_': case '.': case '!': case '~': case '*': case '\'': case '(': case ')': {
            char ch = (char)c;
            sb_put(b, &ch, 1);
            continue;
        }
        default: {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            sb_put(b, e, 3);
        }
        }
    }
}

char *itd_uri_component(const char *s)
{
    sbuf b = { 0 };
    sb_put(&b, "", 0);
    if (s) sb_uri(&b, s);
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

/* ---------------------------------------------------------------- request */

void itd_headers_free(itd_header *h, size_t n)
{
    if (!h) return;
    for (size_t i = 0; i < n; i++) { free(h[i].name); free(h[i].value); }
    free(h);
}

void itd_request_free(itd_request *r)
{
    if (!r) return;
    free(r->url);
    free(r->path);
    itd_headers_free(r->headers, r->nheaders);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

static int check_param(const char *name, const char *v, itd_error *err)
{
    if (!v || !*v)
        return itd_error_set(err, ITD_ERR_VALIDATION, name, "is required and must not be empty");
    if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
        return itd_error_set(err, ITD_ERR_VALIDATION, name,
                             "must not be \".\" or \"..\" (it would collapse as a dot segment of the URL)");
    return 0;
}

/* The builder adds at most four headers: room for them at once, not one
 * realloc a header. */
#define REQ_HEADERS 4

static int add_header(itd_request *r, const char *name, const char *value)
{
    itd_header *h = r->headers;
    if (!h) h = malloc(REQ_HEADERS * sizeof *h);
    else if (r->nheaders >= REQ_HEADERS) h = realloc(h, (r->nheaders + 1) * sizeof *h);
    if (!h) return -1;
    r->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) { free(n); free(v); return -1; }
    h[r->nheaders].name = n;
    h[r->nheaders].value = v;
    r->nheaders++;
    return 0;
}

static void err_reset(itd_error *err)
{
    if (!err) return;
    itd_error_clear(err);
}

int itd_request_build(const itd_config *cfg, itd_op op, const itd_call_args *args,
                      itd_request *out, itd_error *err)
{
    if (out) memset(out, 0, sizeof *out);
    err_reset(err);
    if (!cfg || !out) return itd_error_set(err, ITD_ERR_USAGE, "", "itd_request_build: no config or output");
    if (!op_valid(op)) return itd_error_set(err, ITD_ERR_USAGE, "", "unknown operation %d", (int)op);
    itd_call_args none;
    if (!args) { memset(&none, 0, sizeof none); args = &none; }

    if (!cfg->workspace_id || !*cfg->workspace_id)
        return itd_error_set(err, ITD_ERR_VALIDATION, "workspace_id",
                             "a workspace id is required (option workspace_id or INTUNED_WORKSPACE_ID)");
    if (check_param("workspace_id", cfg->workspace_id, err)) return -1;
    if (!cfg->api_key || !*cfg->api_key)
        return itd_error_set(err, ITD_ERR_VALIDATION, "api_key",
                             "an API key is required (option api_key or INTUNED_API_KEY)");
    if (has_crlf(cfg->api_key))
        return itd_error_set(err, ITD_ERR_VALIDATION, "api_key", "the API key contains a line break");
    const char *ua = cfg->user_agent && *cfg->user_agent ? cfg->user_agent : ITD_USER_AGENT;
    if (has_crlf(ua)) return itd_error_set(err, ITD_ERR_VALIDATION, "user_agent", "contains a line break");

    const char *base = cfg->server_url ? cfg->server_url : ITD_DEFAULT_SERVER_URL;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    if (blen == 0) return itd_error_set(err, ITD_ERR_VALIDATION, "server_url", "is empty");
    if (memchr(base, ' ', blen) || strpbrk(base, "\r\n"))
        return itd_error_set(err, ITD_ERR_VALIDATION, "server_url", "contains a space or line break");

    const itd_op_def *d = &itd_ops[op];
    /* the path from the template: each placeholder checked (in order) and encoded */
    sbuf path = { 0 };
    for (const char *t = d->path; *t;) {
        const char *open = strchr(t, '{');
        if (!open) { sb_puts(&path, t); break; }
        sb_put(&path, t, (size_t)(open - t));
        const char *close = strchr(open, '}');
        if (!close) { free(path.p); return itd_error_set(err, ITD_ERR_USAGE, "", "bad path template of %s", d->name); }
        size_t n = (size_t)(close - open - 1);
        const char *v;
        if (n == strlen(ITD_PATH_WORKSPACE) && strncmp(open + 1, ITD_PATH_WORKSPACE, n) == 0) {
            v = cfg->workspace_id; /* checked above */
        } else {
            const itd_arg_def *a = itd_arg_find_n(open + 1, n);
            if (!a || a->where != ITD_ARG_PATH) { free(path.p); return itd_error_set(err, ITD_ERR_USAGE, "", "bad path template of %s", d->name); }
            v = itd_arg_str(a, args);
            if (check_param(a->names[0], v, err)) { free(path.p); return -1; }
        }
        sb_uri(&path, v);
        t = close + 1;
    }
    const itd_arg_def *body = d->body ? itd_arg_find(d->body) : NULL;
    const void *body_obj = body ? itd_arg_obj(body, args) : NULL;
    const itd_schema *body_schema = itd_op_request(d, args->api_version);
    if (body && !body_obj) {
        free(path.p);
        return itd_error_set(err, ITD_ERR_VALIDATION, body->names[0], "%s needs a %s", d->method_name,
                             itd_schema_name(body_schema));
    }
    /* the body's form must be the one this client's API version sends */
    if (body_obj && ((const itd_obj *)body_obj)->schema != body_schema) {
        const itd_schema *got = ((const itd_obj *)body_obj)->schema;
        free(path.p);
        return itd_error_set(err, ITD_ERR_VALIDATION, body->names[0], "%s with api_version \"%s\" sends a %s, got a %s",
                             d->method_name, itd_api_version_name(args->api_version), itd_schema_name(body_schema),
                             got ? itd_schema_name(got) : "object without a schema");
    }
    int first = 1;
    for (size_t i = 0; i < ITD_OP_QUERY_MAX && d->query[i]; i++) {
        const char *v = itd_arg_str(itd_arg_find(d->query[i]), args);
        if (!v) continue;
        sb_puts(&path, first ? "?" : "&");
        sb_puts(&path, itd_arg_find(d->query[i])->wire);
        sb_puts(&path, "=");
        sb_uri(&path, v);
        first = 0;
    }
    sbuf url = { 0 };
    sb_put(&url, base, blen);
    if (path.p) sb_puts(&url, path.p);
    if (path.oom || url.oom) goto nomem;
    out->path = path.p;
    out->url = url.p;
    path.p = url.p = NULL;
    out->method = d->method;
    out->expect_status = d->success;

    if (body_obj) {
        out->body = itd_encode(body_schema, body_obj, &out->body_len);
        if (!out->body) goto nomem;
    }
    if (add_header(out, "x-api-key", cfg->api_key) || add_header(out, "Accept", d->accept ? d->accept : "application/json") ||
        add_header(out, "User-Agent", ua))
        goto nomem;
    if (out->body && add_header(out, "Content-Type", "application/json")) goto nomem;
    return 0;
nomem:
    free(path.p);
    free(url.p);
    itd_request_free(out);
    return itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory building the request");
}

static int secret_header(const char *name)
{
    return itd_header_is_secret(name, strlen(name)); /* the one list, scrub.c */
}

int itd_request_redacted_headers(const itd_request *r, itd_header **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!r || !r->nheaders) return 0;
    itd_header *h = calloc(r->nheaders, sizeof *h);
    if (!h) return -1;
    for (size_t i = 0; i < r->nheaders; i++) {
        h[i].name = strdup(r->headers[i].name);
        h[i].value = strdup(secret_header(r->headers[i].name) ? "***" : r->headers[i].value);
        if (!h[i].name || !h[i].value) { itd_headers_free(h, r->nheaders); return -1; }
    }
    *out = h;
    *n = r->nheaders;
    return 0;
}

/* --------------------------------------------------------------- response */

void itd_result_free(itd_result *r)
{
    if (!r) return;
    if (r->obj) itd_free(r->schema, r->obj);
    r->obj = NULL;
    r->schema = NULL;
}

/* "application/json", case-insensitive, optional parameters after ';'. */
static int is_json_type(const char *ct)
{
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
    ct += sizeof want - 1;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == 0 || *ct == ';';
}

static void keep_body(itd_error *err, const itd_response *resp)
{
    if (!err || !resp->body || !resp->body_len) return;
    size_t n = resp->body_len < ITD_ERROR_BODY_MAX ? resp->body_len : ITD_ERROR_BODY_MAX;
    free(err->body);
    err->body = malloc(n + 1);
    if (!err->body) { err->body_len = 0; return; }
    memcpy(err->body, resp->body, n);
    err->body[n] = 0;
    err->body_len = n;
}

/* Copy text into the one-line message: control characters become spaces. */
static void set_message_text(itd_error *err, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof err->message; i++) {
        unsigned char c = (unsigned char)s[i];
        err->message[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    err->message[i] = 0;
}

static itd_err_kind kind_for_status(long st)
{
    switch (st) {
    case 400: return ITD_ERR_INVALID_INPUT;
    case 401: return ITD_ERR_UNAUTHORIZED;
    case 404: return ITD_ERR_NOT_FOUND;
    case 409: return ITD_ERR_CONFLICT;
    case 429: return ITD_ERR_RATE_LIMITED;
    default: return st >= 500 && st <= 599 ? ITD_ERR_SERVER : ITD_ERR_API;
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int itd_response_parse(itd_op op, const itd_response *resp, itd_result *out, itd_error *err)
{
    if (out) memset(out, 0, sizeof *out);
    err_reset(err);
    if (!resp || !out) return itd_error_set(err, ITD_ERR_USAGE, "", "itd_response_parse: no response or output");
    if (!op_valid(op)) return itd_error_set(err, ITD_ERR_USAGE, "", "unknown operation %d", (int)op);
    out->op = op;
    long st = resp->status;
    const itd_op_def *def = &itd_ops[op];
    int expect = def->success;
    if (err) {
        err->status = (int)st;
        err->retry_after = resp->retry_after ? itd_retry_after_seconds(resp->retry_after, now_seconds()) : -1;
    }
    if (st == expect) {
        if (!def->response) { /* delete's 204: body ignored, no content type needed */
            err_reset(err);
            return 0;
        }
        if (!is_json_type(resp->content_type)) {
            itd_error_set(err, ITD_ERR_DECODE, "", "status %ld but Content-Type is %s%.80s%s (expected application/json)",
                          st, resp->content_type ? "\"" : "", resp->content_type ? resp->content_type : "absent",
                          resp->content_type ? "\"" : "");
            keep_body(err, resp);
            return -1;
        }
        const itd_schema *s = def->response;
        /* only read from here on (views in Lua, reconciliation): frozen */
        void *obj = itd_decode_frozen(s, resp->body ? resp->body : "", resp->body ? resp->body_len : 0, NULL, err);
        if (!obj) {
            if (err) {
                if (err->kind != ITD_ERR_NOMEM) err->kind = ITD_ERR_DECODE;
                err->status = (int)st;
            }
            keep_body(err, resp);
            return -1;
        }
        out->schema = s;
        out->obj = obj;
        err_reset(err);
        return 0;
    }
    if (!err) return -1;
    if (st >= 200 && st <= 299) {
        itd_error_set(err, ITD_ERR_API, "", "unexpected success status %ld (%s answers %d)", st, def->name, expect);
        keep_body(err, resp);
        return -1;
    }
    if (st < 100 || st > 599) {
        itd_error_set(err, ITD_ERR_API, "", "invalid HTTP status %ld", st);
        keep_body(err, resp);
        return -1;
    }
    err->kind = kind_for_status(st);
    err->retryable = itd_status_retryable(st);
    keep_body(err, resp);
    /* Error body: read leniently whatever the content type says (§3, §8.2). */
    const char *msg = NULL;
    if (resp->body && resp->body_len && resp->body_len <= ITD_MAX_DOCUMENT_BYTES) {
        size_t i = 0;
        while (i < resp->body_len && isspace((unsigned char)resp->body[i])) i++;
        if (i < resp->body_len && (resp->body[i] == '{' || resp->body[i] == '[')) {
            cJSON *tree = cJSON_ParseWithLength(resp->body, resp->body_len);
            if (tree) {
                err->data = tree;
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(tree, "message");
                if (cJSON_IsString(m) && m->valuestring[0]) msg = m->valuestring;
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(tree, "details");
                if (d) err->details = cJSON_Duplicate(d, 1);
            }
        }
    }
    err->path[0] = 0;
    if (msg) set_message_text(err, msg);
    else if (st >= 300 && st <= 399) snprintf(err->message, sizeof err->message, "HTTP %ld (redirects are not followed)", st);
    else snprintf(err->message, sizeof err->message, "HTTP %ld", st);
    itd_error_redact(err); /* an echoed sink or auth header stays out of the error (scrub.c) */
    return -1;
}

/* ------------------------------------------------------------ Retry-After */

static int month_index(const char *s)
{
    static const char *const m[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    for (int i = 0; i < 12; i++)
        if (strncmp(s, m[i], 3) == 0) return i + 1;
    return 0;
}

/* At most max_digits (<= 4 here) digits: the value cannot overflow. */
static int num(const char **p, int min_digits, int max_digits, int *out)
{
    int v = 0, n = 0;
    while (n < max_digits && isdigit((unsigned char)**p)) { v = v * 10 + (**p - '0'); (*p)++; n++; }
    if (n < min_digits) return -1;
    *out = v;
    return 0;
}

static int hms(const char **p, int *h, int *mi, int *s)
{
    if (num(p, 2, 2, h) || **p != ':') return -1;
    (*p)++;
    if (num(p, 2, 2, mi) || **p != ':') return -1;
    (*p)++;
    if (num(p, 2, 2, s)) return -1;
    return *h <= 23 && *mi <= 59 && *s <= 60 ? 0 : -1;
}

/* HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, obsolete RFC 850 and asctime. */
static int http_date(const char *p, double *epoch)
{
    int d, mo, y, h, mi, s;
    const char *comma = strchr(p, ',');
    if (comma) {
        p = comma + 1;
        if (*p++ != ' ') return -1;
        if (num(&p, 2, 2, &d)) return -1;
        if (*p == ' ') { /* IMF-fixdate: 06 Nov 1994 08:49:37 GMT */
            p++;
            if (!(mo = month_index(p))) return -1;
            p += 3;
            if (*p++ != ' ' || num(&p, 4, 4, &y) || *p++ != ' ') return -1;
        } else if (*p == '-') { /* RFC 850: 06-Nov-94 08:49:37 GMT */
            p++;
            if (!(mo = month_index(p))) return -1;
            p += 3;
            if (*p++ != '-' || num(&p, 2, 2, &y) || *p++ != ' ') return -1;
            y += y < 70 ? 2000 : 1900;
        } else return -1;
        if (hms(&p, &h, &mi, &s) || strcmp(p, " GMT") != 0) return -1;
    } else { /* asctime: Sun Nov  6 08:49:37 1994 */
        if (strlen(p) < 24 || p[3] != ' ') return -1;
        p += 4;
        if (!(mo = month_index(p))) return -1;
        p += 3;
        if (*p++ != ' ') return -1;
        if (*p == ' ') p++;
        if (num(&p, 1, 2, &d) || *p++ != ' ') return -1;
        if (hms(&p, &h, &mi, &s) || *p++ != ' ' || num(&p, 4, 4, &y) || *p) return -1;
    }
    if (d < 1 || d > 31) return -1;
    *epoch = (double)itd_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400.0 + h * 3600 + mi * 60 + s;
    return 0;
}

double itd_retry_after_seconds(const char *v, double now)
{
    if (!v) return -1;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n')) n--;
    if (n == 0 || n > 64) return -1;
    char buf[72];
    memcpy(buf, v, n);
    buf[n] = 0;
    if (isdigit((unsigned char)buf[0]) || buf[0] == '.') {
        /* delta-seconds; fractions accepted ("1.5"), nothing else */
        const char *p = buf;
        int digits = 0;
        while (isdigit((unsigned char)*p)) { p++; digits++; }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) { p++; digits++; }
        }
        if (*p || !digits) return -1;
        /* only digits and one dot: strtod cannot fail, but 60 digits make
         * 1e59, which would overflow any integer a caller converts it to */
        double s = strtod(buf, NULL);
        return s < ITD_RETRY_AFTER_CLAMP ? s : ITD_RETRY_AFTER_CLAMP;
    }
    double when;
    if (http_date(buf, &when)) return -1;
    double d = when - now; /* years are 4 digits: no overflow in the date arithmetic */
    if (!(d > 0)) return 0;
    return d < ITD_RETRY_AFTER_CLAMP ? d : ITD_RETRY_AFTER_CLAMP;
}

/* ---------------------------------------------------------- reconciliation */

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Free-form parameters: absent, {} and [] are the same "nothing". */
static int params_eq(const cJSON *a, const cJSON *b)
{
    int ae = !a || ((cJSON_IsObject(a) || cJSON_IsArray(a)) && !a->child);
    int be = !b || ((cJSON_IsObject(b) || cJSON_IsArray(b)) && !b->child);
    if (ae || be) return ae && be;
    return cJSON_Compare(a, b, 1);
}

static int numstr_ms(const itd_numstr *ns, double *ms)
{
    if (ns->kind == ITD_NS_NUMBER) { *ms = ns->num; return 0; }
    if (ns->kind == ITD_NS_STRING) return itd_duration_ms(ns->str, ms);
    return -1;
}

static int numstr_eq(const itd_numstr *a, const itd_numstr *b)
{
    if (a->kind == ITD_NS_ABSENT || b->kind == ITD_NS_ABSENT) return 1; /* compared only when both present */
    double x, y;
    if (numstr_ms(a, &x) || numstr_ms(b, &y)) return 0;
    return fabs(x - y) < 0.5;
}

static int sink_eq(const itd_sink *a, const itd_sink *b)
{
    if (!a || !b) return !a && !b;
    if (!str_eq(a->type, b->type)) return 0;
    if (a->type && strcmp(a->type, "webhook") == 0) return str_eq(a->url, b->url);
    /* s3: the destination; secrets may come back redacted */
    return str_eq(a->bucket, b->bucket) && str_eq(a->region, b->region) &&
           (!a->prefix || !b->prefix || str_eq(a->prefix, b->prefix));
}

int itd_job_matches_input(const itd_job *job, const void *in)
{
    if (!job || !in) return 0;
    /* the two forms share the parts compared: payload, sink, configuration */
    const itd_array *payload;
    const itd_configuration *ic;
    const itd_schema *s = input_schema(in);
    if (s == &itd_JobInput) {
        payload = &((const itd_job_input *)in)->payload;
        ic = ((const itd_job_input *)in)->configuration;
    } else if (s == &itd_JobInputNewest) {
        payload = &((const itd_job_update_input *)in)->payload;
        ic = ((const itd_job_update_input *)in)->configuration;
    } else {
        return 0;
    }
    if (!str_eq(job->id, itd_input_id(in))) return 0;
    /* payload: same API names and parameters, in order */
    if (job->has_payload || job->payload.n) {
        if (job->payload.n != payload->n) return 0;
        for (size_t i = 0; i < payload->n; i++) {
            const itd_payload *a = job->payload.items[i], *b = payload->items[i];
            if (!a || !b || !str_eq(a->apiName, b->apiName) || !params_eq(a->parameters, b->parameters))
                return 0;
        }
    }
    /* sink: an input without one must meet a job without one */
    const itd_sink *js = job->sink_null ? NULL : job->sink;
    if (!sink_eq(js, itd_input_sink(in))) return 0;
    /* configuration */
    const itd_configuration *jc = job->configuration;
    if (jc && ic) {
        if (jc->runMode && ic->runMode && strcmp(jc->runMode, ic->runMode) != 0) return 0;
        if (jc->has_maxConcurrentRequests != ic->has_maxConcurrentRequests) {
            if (jc->has_maxConcurrentRequests && ic->has_maxConcurrentRequests) return 0;
            /* one side silent: accept (server defaults are undocumented) */
        } else if (jc->has_maxConcurrentRequests && jc->maxConcurrentRequests != ic->maxConcurrentRequests) {
            return 0;
        }
        const itd_retry *jr = jc->retry, *ir = ic->retry;
        if (jr && ir) {
            /* required in JobRetry input (no has_ flag there) */
            if (jr->has_maximumAttempts && jr->maximumAttempts != ir->maximumAttempts) return 0;
            if (jr->has_backoffCoefficient && ir->has_backoffCoefficient &&
                jr->backoffCoefficient != ir->backoffCoefficient)
                return 0;
            /* the decoder fills in 1000 ms when the answer has no initialInterval
             * (the newest API dropped it), so a stored 1000 ms tells nothing */
            double jms;
            int j_default = numstr_ms(&jr->initialInterval, &jms) == 0 && jms == 1000;
            if (!j_default && !numstr_eq(&jr->initialInterval, &ir->initialInterval)) return 0;
            if (!numstr_eq(&jr->maximumInterval, &ir->maximumInterval)) return 0;
        } else if (ir && !jr) {
            /* the input asked for a retry policy the stored job lacks */
            return 0;
        }
    } else if (ic && !jc) {
        return 0;
    }
    return 1;
}
