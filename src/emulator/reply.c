/*
 * reply.c - how answers go out: JSON bodies and the ApiError form of errors
 * (encoded by the core's schemas), injected faults applied to an answer
 * (drop, malformed, truncated, wrong content type, dripped), and the
 * decoding of request paths.
 *
 * Paths arrive undecoded (http.c's unescape callback is a no-op) so that an
 * id holding "%2F" is one segment; each segment is percent-decoded after the
 * split.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "reply.h"
#include "stats.h"

/* ------------------------------------------------------------ answers */

/* The drip fault of the request this thread is answering (one thread per
 * connection), or NULL: set around the operation, read by new_response. */
static __thread const emu_fault *tl_drip;

void reply_set_drip(const emu_fault *f) { tl_drip = f; }
#define DRIP_MAX_PAUSE_MS 200.0   /* pauses of one dripped answer, in all */

/* The body of an answer sent by a callback: dripped, or truncated (a fault). */
typedef struct drip_body { char *body; size_t len, piece; double pause_ms, slept_ms; } drip_body;

static ssize_t drip_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    drip_body *d = cls;
    if (pos >= d->len) return MHD_CONTENT_READER_END_OF_STREAM;
    if (pos > 0 && d->slept_ms + d->pause_ms <= DRIP_MAX_PAUSE_MS) {
        emu_sleep_ms(d->pause_ms);
        d->slept_ms += d->pause_ms;
    }
    size_t n = d->len - (size_t)pos;
    if (n > d->piece) n = d->piece;
    if (n > max) n = max;
    memcpy(buf, d->body + pos, n);
    return (ssize_t)n;
}

static void drip_free(void *cls)
{
    drip_body *d = cls;
    free(d->body);
    free(d);
}

/* MHD_create_response_from_buffer, or under a drip fault a response whose
 * body comes from drip_reader (MUST_FREE: the response takes buf). */
struct MHD_Response *reply_response(size_t len, void *buf, enum MHD_ResponseMemoryMode mode)
{
    if (!tl_drip || len == 0) return MHD_create_response_from_buffer(len, buf, mode);
    drip_body *d = emu_xcalloc(1, sizeof *d);
    if (mode == MHD_RESPMEM_MUST_FREE) d->body = buf;
    else { d->body = emu_xmalloc(len); memcpy(d->body, buf, len); }
    d->len = len;
    d->piece = tl_drip->drip_bytes > 0 ? (size_t)tl_drip->drip_bytes : 8;
    d->pause_ms = tl_drip->drip_ms;
    struct MHD_Response *r = MHD_create_response_from_callback(tl_drip->drip_chunked ? MHD_SIZE_UNKNOWN : len, 1024,
                                                               drip_reader, d, drip_free);
    if (!r) drip_free(d);
    return r;
}

enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *ctype, char *body, size_t len,
                                 const char *h1, const char *v1)
{
    /* body is malloc'd (or NULL): the response takes it */
    struct MHD_Response *r = reply_response(len, body ? body : (char *)"",
                                          body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) { if (!tl_drip || !len) free(body); return MHD_NO; }
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (h1 && v1) MHD_add_response_header(r, h1, v1);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json)
{
    if (!json) return send_body(c, 500, "text/plain", emu_strdup("out of memory"), 13, NULL, NULL);
    return send_body(c, status, "application/json", json, strlen(json), NULL, NULL);
}

enum MHD_Result send_cjson(struct MHD_Connection *c, unsigned status, cJSON *t)
{
    char *s = t ? itd_json_print(t, NULL) : NULL;
    cJSON_Delete(t);
    return send_json(c, status, s);
}

static unsigned long g_corr;
static pthread_mutex_t corr_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *error_code(unsigned status)
{
    switch (status) {
    case 400: return "bad-request";
    case 401: return "unauthorized";
    case 404: return "not-found";
    case 405: return "method-not-allowed";
    case 409: return "conflict";
    case 413: return "payload-too-large";
    case 429: return "too-many-requests";
    case 502: return "bad-gateway";
    case 503: return "service-unavailable";
    default: return status >= 500 ? "internal-server-error" : "error";
    }
}

/* Error bodies: the reference's `message` (+ `details` for 400) and the newest
 * API's typed keys, encoded by the core's ApiError schema; in newest mode in
 * the order of that API's table (reference §8.2).  `details` is taken. */
char *error_json(unsigned status, const char *message, cJSON *details)
{
    char corr[48];
    pthread_mutex_lock(&corr_lock);
    unsigned long n = ++g_corr;
    pthread_mutex_unlock(&corr_lock);
    snprintf(corr, sizeof corr, "emu-%08lx", n);
    const char *category = status >= 500 || status == 429 ? "infrastructure" : "user";
    int retirable = status == 429 || status >= 500;
    if (g_opts.newest) {
        cJSON *o = cJSON_CreateObject();
        if (!o) abort();
        cJSON_AddStringToObject(o, "code", error_code(status));
        cJSON_AddStringToObject(o, "category", category);
        cJSON_AddStringToObject(o, "message", message);
        cJSON_AddBoolToObject(o, "retirable", retirable);
        if (details) cJSON_AddItemToObject(o, "details", details);
        cJSON_AddStringToObject(o, "correlationId", corr);
        char *json = itd_json_print(o, NULL);
        cJSON_Delete(o);
        return json;
    }
    itd_api_error e;
    memset(&e, 0, sizeof e);
    e.h.schema = &itd_ApiError;
    e.message = (char *)message;
    e.details = details;
    e.code = (char *)error_code(status);
    e.category = (char *)category;
    e.retirable = retirable;
    e.has_retirable = 1;
    e.correlationId = corr;
    char *json = itd_encode(&itd_ApiError, &e, NULL);
    cJSON_Delete(details);
    return json;
}

enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *message)
{
    return send_json(c, status, error_json(status, message, NULL));
}

enum MHD_Result send_action(struct MHD_Connection *c, unsigned status, const itd_schema *s,
                                   const char *id, const char *run_id, const char *message)
{
    itd_action a;
    memset(&a, 0, sizeof a);
    a.h.schema = s;
    a.id = (char *)id;
    a.jobRunId = (char *)run_id;
    a.message = (char *)message;
    return send_json(c, status, itd_encode(s, &a, NULL));
}

/* A cJSON tree through a response schema (validation), then its encoding. */
enum MHD_Result send_model(struct MHD_Connection *c, const itd_schema *s, cJSON *tree)
{
    itd_error err = ITD_ERROR_INIT;
    void *obj = itd_decode_take(s, tree, NULL, &err);
    if (!obj) {
        char msg[ITD_MSG_MAX + ITD_PATH_MAX + 200];
        snprintf(msg, sizeof msg, "internal: %s does not fit the model: %s: %s", itd_schema_name(s), err.path, err.message);
        itd_error_clear(&err);
        return send_error(c, 500, msg);
    }
    char *json = itd_encode(s, obj, NULL);
    itd_free(s, obj);
    return send_json(c, 200, json);
}

/* A tree built in its final form (the newest API's documents): validated by
 * decoding a copy through the schema, answered as built. */
enum MHD_Result send_checked(struct MHD_Connection *c, unsigned status, const itd_schema *s, cJSON *tree)
{
    itd_error err = ITD_ERROR_INIT;
    cJSON *copy = tree ? cJSON_Duplicate(tree, 1) : NULL;
    void *obj = copy ? itd_decode_take(s, copy, NULL, &err) : NULL;
    if (!obj) {
        char msg[ITD_MSG_MAX + ITD_PATH_MAX + 200];
        snprintf(msg, sizeof msg, "internal: %s does not fit the model: %s: %s", itd_schema_name(s), err.path, err.message);
        itd_error_clear(&err);
        cJSON_Delete(tree);
        return send_error(c, 500, msg);
    }
    itd_free(s, obj);
    return send_cjson(c, status, tree);
}

enum MHD_Result send_bad_field(struct MHD_Connection *c, const char *message, const char *field, const char *issue)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "field", field);
    cJSON_AddStringToObject(d, "issue", issue);
    return send_json(c, 400, error_json(400, message, d));
}

enum MHD_Result send_invalid(struct MHD_Connection *c, const char *what, const itd_error *err)
{
    char msg[ITD_MSG_MAX + ITD_PATH_MAX + 300];
    if (err->path[0]) snprintf(msg, sizeof msg, "Invalid %s: %s: %s", what, err->path, err->message);
    else snprintf(msg, sizeof msg, "Invalid %s: %s", what, err->message);
    return send_bad_field(c, msg, err->path, err->message);
}

/* ------------------------------------------------------------ injected faults */

static ssize_t trunc_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    drip_body *t = cls;
    size_t half = t->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;   /* close before the promised length */
    size_t n = half - (size_t)pos;
    if (n > max) n = max;
    memcpy(buf, t->body + pos, n);
    return (ssize_t)n;
}

enum MHD_Result reply_fault(struct MHD_Connection *c, const emu_fault *f, unsigned success)
{
    stats_fault();
    if (f->status) {
        char msg[96];
        snprintf(msg, sizeof msg, "Injected fault: HTTP %d", f->status);
        const char *ra = f->retry_after[0] ? f->retry_after : (f->status == 429 ? "1" : NULL);
        char *body = error_json((unsigned)f->status, msg, NULL);
        return send_body(c, (unsigned)f->status, "application/json", body, strlen(body),
                         ra ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, ra);
    }
    const char *doc = "{\"id\":\"emulated-fault\",\"message\":\"this body is a fault injected by intuned-emulator\"}";
    switch (f->kind) {
    case FK_DROP:
        return MHD_NO;   /* libmicrohttpd closes the connection without an answer */
    case FK_MALFORMED: {
        const char *bad = "{\"id\":\"emulated-fault\",\"message\": created,}";
        return send_body(c, success, "application/json", emu_strdup(bad), strlen(bad), NULL, NULL);
    }
    case FK_CONTENT_TYPE:
        return send_body(c, success, "text/html; charset=utf-8", emu_strdup(doc), strlen(doc), NULL, NULL);
    case FK_TRUNCATED: {
        drip_body *t = emu_xcalloc(1, sizeof *t);
        t->body = emu_strdup(doc);
        t->len = strlen(doc);
        struct MHD_Response *r = MHD_create_response_from_callback(t->len, 64, trunc_reader, t, drip_free);
        if (!r) { drip_free(t); return MHD_NO; }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result rc = MHD_queue_response(c, success, r);
        MHD_destroy_response(r);
        return rc;
    }
    default:
        return send_error(c, 500, "Injected fault");
    }
}

/* ------------------------------------------------------------ paths */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

char *pct_decode(const char *s, size_t n, int plus_is_space)
{
    char *out = emu_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int a = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0)) { free(out); return NULL; }
            out[k++] = (char)(a * 16 + b);
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out[k++] = ' ';
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = 0;
    /* Decoded parts are echoed in JSON answers (a 404 names the job id), and
     * JSON text is UTF-8: refuse what is not, rather than answer bad JSON. */
    if (itd_utf8_check(out, k) != k) { free(out); return NULL; }
    return out;
}

void segs_free(segs *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    s->n = 0;
}

int split_path(const char *p, segs *out)
{
    out->n = 0;
    size_t len = strlen(p);
    if (len && p[len - 1] == '/') len--;   /* one trailing slash is tolerated */
    size_t i = 0;
    while (i <= len) {
        const char *e = memchr(p + i, '/', len - i);
        size_t n = e ? (size_t)(e - (p + i)) : len - i;
        if (out->n == MAX_SEGS) { segs_free(out); return -2; }
        char *d = pct_decode(p + i, n, 0);
        if (!d) { segs_free(out); return -1; }
        out->v[out->n++] = d;
        i += n + 1;
    }
    return 0;
}

int is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(in6->sin6_addr.s6_addr, v4mapped, 12) == 0) return in6->sin6_addr.s6_addr[12] == 127;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

cJSON *reply_parse_body(const req *q)
{
    /* the strict parser: what is echoed back in an error must be UTF-8 */
    return q->len ? itd_json_parse(q->body, q->len, NULL, NULL) : NULL;
}

