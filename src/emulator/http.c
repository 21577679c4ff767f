/*
 * http.c - the HTTP side: libmicrohttpd setup, routing, the Jobs API
 * operations, the control endpoints (/_emulator/...) and the webhook
 * receiver (/_receiver/...).
 *
 * One thread per connection: a latency fault or a slow client then holds
 * only its own connection, and keep-alive connections cost a blocked thread
 * each rather than a slot in a shared poll loop.
 *
 * libmicrohttpd calls the handler first with the headers only; a response
 * queued then makes it answer "Connection: close" (it has not read the body).
 * So the first call only allocates the request context, body chunks are
 * collected by the following calls, and the answer is queued on the last
 * call, which keeps connections alive.
 *
 * Paths arrive undecoded (our unescape callback is a no-op) so that an id
 * holding "%2F" is one segment; each segment is percent-decoded after the
 * split.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "emu.h"

static struct MHD_Daemon *g_daemon;

/* ------------------------------------------------------------ stats */

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long st_conns, st_open, st_open_max, st_requests, st_creates, st_faults;
#define MAX_STAT_KEYS 96
static struct { char key[64]; unsigned long n; } st_keys[MAX_STAT_KEYS];
static size_t st_nkeys;

void stats_connection(void)
{
    pthread_mutex_lock(&st_lock);
    st_conns++;
    if (++st_open > st_open_max) st_open_max = st_open;
    pthread_mutex_unlock(&st_lock);
}
static void stats_connection_closed(void) { pthread_mutex_lock(&st_lock); st_open--; pthread_mutex_unlock(&st_lock); }
void stats_create(void) { pthread_mutex_lock(&st_lock); st_creates++; pthread_mutex_unlock(&st_lock); }
void stats_fault(void) { pthread_mutex_lock(&st_lock); st_faults++; pthread_mutex_unlock(&st_lock); }

void stats_request(const char *method, const char *op)
{
    char key[64];
    snprintf(key, sizeof key, "%.15s %.40s", method, op);
    pthread_mutex_lock(&st_lock);
    st_requests++;
    size_t i;
    for (i = 0; i < st_nkeys; i++) if (strcmp(st_keys[i].key, key) == 0) break;
    if (i == st_nkeys && st_nkeys < MAX_STAT_KEYS) {
        memcpy(st_keys[i].key, key, sizeof key);
        st_keys[i].n = 0;
        st_nkeys++;
    }
    if (i < st_nkeys) st_keys[i].n++;
    pthread_mutex_unlock(&st_lock);
}

static unsigned long stats_cut(void);

cJSON *stats_json(void)
{
    unsigned long cut = stats_cut();
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&st_lock);
    cJSON_AddNumberToObject(o, "connections", (double)st_conns);
    cJSON_AddNumberToObject(o, "open_connections", (double)st_open);
    cJSON_AddNumberToObject(o, "max_open_connections", (double)st_open_max); /* the most open at once, ever */
    cJSON_AddNumberToObject(o, "requests", (double)st_requests);
    cJSON_AddNumberToObject(o, "creates", (double)st_creates);
    cJSON_AddNumberToObject(o, "faults", (double)st_faults);
    cJSON_AddNumberToObject(o, "requests_timed_out", (double)cut);   /* cut by --request-timeout */
    cJSON *by = cJSON_AddObjectToObject(o, "by_route");
    cJSON *bm = cJSON_AddObjectToObject(o, "by_method");
    for (size_t i = 0; i < st_nkeys; i++) {
        cJSON_AddNumberToObject(by, st_keys[i].key, (double)st_keys[i].n);
        char m[16];
        sscanf(st_keys[i].key, "%15s", m);
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(bm, m);
        if (prev) cJSON_SetNumberValue(prev, prev->valuedouble + (double)st_keys[i].n);
        else cJSON_AddNumberToObject(bm, m, (double)st_keys[i].n);
    }
    pthread_mutex_unlock(&st_lock);
    cJSON_AddStringToObject(o, "s3_dir", g_opts.s3_dir ? g_opts.s3_dir : "");
    return o;
}

/* ------------------------------------------------------------ receiver */

/* Records are bounded in all: --receiver-max-bytes across every name (the
 * oldest record of any name goes first) and --receiver-max-names names (the
 * least recently used name goes first), besides MAX_RECORDS per name.  What
 * was dropped is counted, and a GET tells (X-Receiver-Dropped for the name,
 * X-Receiver-Dropped-Total for all). */
typedef struct rrec {
    cJSON *rec;
    size_t bytes;          /* estimated memory of rec */
    uint64_t seq;          /* arrival order across all names */
    struct rrec *next;
} rrec;
typedef struct receiver {
    char *name;
    rrec *head, *tail;     /* oldest first */
    size_t n;
    unsigned long dropped; /* records of this name dropped for room */
    uint64_t used;         /* last use, in g_rc_seq ticks */
    int status;            /* answer this status ... */
    long count;            /* ... for the next `count` requests */
    struct receiver *next;
} receiver;
static pthread_mutex_t rc_lock = PTHREAD_MUTEX_INITIALIZER;
static receiver *g_receivers;
static unsigned g_rc_names;
static size_t g_rc_bytes;
static unsigned long g_rc_dropped;   /* in all, evicted names included */
static uint64_t g_rc_seq;
#define MAX_RECORDS 10000

/* Frees a name and its records; counts them as dropped when `dropped`. */
static void receiver_remove(receiver *r, int dropped)
{
    for (receiver **pp = &g_receivers; *pp; pp = &(*pp)->next)
        if (*pp == r) { *pp = r->next; break; }
    for (rrec *x = r->head, *n; x; x = n) {
        n = x->next;
        g_rc_bytes -= x->bytes;
        cJSON_Delete(x->rec);
        free(x);
    }
    if (dropped) g_rc_dropped += (unsigned long)r->n;
    g_rc_names--;
    free(r->name);
    free(r);
}

static void receiver_drop_oldest(receiver *r)
{
    rrec *x = r->head;
    if (!x) return;
    r->head = x->next;
    if (!r->head) r->tail = NULL;
    r->n--;
    r->dropped++;
    g_rc_dropped++;
    g_rc_bytes -= x->bytes;
    cJSON_Delete(x->rec);
    free(x);
}

static receiver *receiver_get(const char *name, int create)
{
    for (receiver *r = g_receivers; r; r = r->next)
        if (strcmp(r->name, name) == 0) {
            if (create) r->used = ++g_rc_seq;
            return r;
        }
    if (!create) return NULL;
    unsigned max = g_opts.receiver_max_names ? g_opts.receiver_max_names : 1;
    while (g_rc_names >= max && g_receivers) {
        receiver *lru = g_receivers;
        for (receiver *r = g_receivers; r; r = r->next) if (r->used < lru->used) lru = r;
        receiver_remove(lru, 1);
    }
    receiver *r = emu_xcalloc(1, sizeof *r);
    r->name = emu_strdup(name);
    r->used = ++g_rc_seq;
    r->next = g_receivers;
    g_receivers = r;
    g_rc_names++;
    return r;
}

/* Keeps rec (taken) in r, dropping the oldest records of any name for room. */
static void receiver_add(receiver *r, cJSON *rec, size_t bytes)
{
    if (bytes > g_opts.receiver_max_bytes) {   /* never fits: counted, not kept */
        cJSON_Delete(rec);
        r->dropped++;
        g_rc_dropped++;
        return;
    }
    if (r->n >= MAX_RECORDS) receiver_drop_oldest(r);
    while (g_rc_bytes + bytes > g_opts.receiver_max_bytes) {
        receiver *oldest = NULL;
        for (receiver *x = g_receivers; x; x = x->next)
            if (x->head && (!oldest || x->head->seq < oldest->head->seq)) oldest = x;
        if (!oldest) break;
        receiver_drop_oldest(oldest);
    }
    rrec *x = emu_xcalloc(1, sizeof *x);
    x->rec = rec;
    x->bytes = bytes;
    x->seq = ++g_rc_seq;
    if (r->tail) r->tail->next = x;
    else r->head = x;
    r->tail = x;
    r->n++;
    g_rc_bytes += bytes;
}

static void receivers_free(void)
{
    pthread_mutex_lock(&rc_lock);
    while (g_receivers) receiver_remove(g_receivers, 0);
    pthread_mutex_unlock(&rc_lock);
}

/* ------------------------------------------------------------ request context */

typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
} req;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    cJSON *o = cls;
    char name[128];
    size_t i;
    for (i = 0; key[i] && i < sizeof name - 1; i++) name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = 0;
    if (!cJSON_GetObjectItemCaseSensitive(o, name)) cJSON_AddStringToObject(o, name, value ? value : "");
    return MHD_YES;
}

/* ------------------------------------------------------------ responses */

/* The drip fault of the request this thread is answering (one thread per
 * connection), or NULL: set around the operation, read by new_response. */
static __thread const emu_fault *tl_drip;
#define DRIP_MAX_PAUSE_MS 200.0   /* pauses of one dripped answer, in all */

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
static struct MHD_Response *new_response(size_t len, void *buf, enum MHD_ResponseMemoryMode mode)
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

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *ctype, char *body, size_t len,
                                 const char *h1, const char *v1)
{
    /* body is malloc'd (or NULL): the response takes it */
    struct MHD_Response *r = new_response(len, body ? body : (char *)"",
                                          body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) { if (!tl_drip || !len) free(body); return MHD_NO; }
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (h1 && v1) MHD_add_response_header(r, h1, v1);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json)
{
    if (!json) return send_body(c, 500, "text/plain", emu_strdup("out of memory"), 13, NULL, NULL);
    return send_body(c, status, "application/json", json, strlen(json), NULL, NULL);
}

static enum MHD_Result send_cjson(struct MHD_Connection *c, unsigned status, cJSON *t)
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

/* Error bodies: the reference's `message` (+ `details` for 400) and the newer
 * API's typed keys, encoded by the core's ApiError schema. `details` is taken. */
static char *error_json(unsigned status, const char *message, cJSON *details)
{
    char corr[48];
    pthread_mutex_lock(&corr_lock);
    unsigned long n = ++g_corr;
    pthread_mutex_unlock(&corr_lock);
    snprintf(corr, sizeof corr, "emu-%08lx", n);
    itd_api_error e;
    memset(&e, 0, sizeof e);
    e.h.schema = &itd_ApiError;
    e.message = (char *)message;
    e.details = details;
    e.code = (char *)error_code(status);
    e.category = (char *)(status >= 500 || status == 429 ? "infrastructure" : "user");
    e.retirable = status == 429 || status >= 500;
    e.has_retirable = 1;
    e.correlationId = corr;
    char *json = itd_encode(&itd_ApiError, &e, NULL);
    cJSON_Delete(details);
    return json;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *message)
{
    return send_json(c, status, error_json(status, message, NULL));
}

static enum MHD_Result send_action(struct MHD_Connection *c, unsigned status, const itd_schema *s,
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
static enum MHD_Result send_model(struct MHD_Connection *c, const itd_schema *s, cJSON *tree)
{
    itd_error err = { 0 };
    void *obj = itd_decode_take(s, tree, NULL, &err);
    if (!obj) {
        char msg[ITD_MSG_MAX + ITD_PATH_MAX + 200];
        snprintf(msg, sizeof msg, "internal: %s does not fit the model: %s: %s", s->name, err.path, err.message);
        itd_error_clear(&err);
        return send_error(c, 500, msg);
    }
    char *json = itd_encode(s, obj, NULL);
    itd_free(s, obj);
    return send_json(c, 200, json);
}

static enum MHD_Result send_invalid(struct MHD_Connection *c, const char *what, const itd_error *err)
{
    char msg[ITD_MSG_MAX + ITD_PATH_MAX + 300];
    if (err->path[0]) snprintf(msg, sizeof msg, "Invalid %s: %s: %s", what, err->path, err->message);
    else snprintf(msg, sizeof msg, "Invalid %s: %s", what, err->message);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "field", err->path);
    cJSON_AddStringToObject(d, "issue", err->message);
    return send_json(c, 400, error_json(400, msg, d));
}

/* ------------------------------------------------------------ faults applied */

typedef struct trunc_body { char *body; size_t len; } trunc_body;

static ssize_t trunc_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    trunc_body *t = cls;
    size_t half = t->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;   /* close before the promised length */
    size_t n = half - (size_t)pos;
    if (n > max) n = max;
    memcpy(buf, t->body + pos, n);
    return (ssize_t)n;
}

static void trunc_free(void *cls)
{
    trunc_body *t = cls;
    free(t->body);
    free(t);
}

static enum MHD_Result apply_fault(struct MHD_Connection *c, const emu_fault *f, unsigned success)
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
        trunc_body *t = emu_xcalloc(1, sizeof *t);
        t->body = emu_strdup(doc);
        t->len = strlen(doc);
        struct MHD_Response *r = MHD_create_response_from_callback(t->len, 64, trunc_reader, t, trunc_free);
        if (!r) { trunc_free(t); return MHD_NO; }
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

/* Percent-decode n bytes into a new string; NULL when malformed or holding NUL. */
static char *pct_decode(const char *s, size_t n, int plus_is_space)
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

#define MAX_SEGS 10
typedef struct segs { size_t n; char *v[MAX_SEGS]; } segs;

static void segs_free(segs *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    s->n = 0;
}

/* Split `p` (after a prefix) on '/', decoding each segment: 0, -1 malformed, -2 too many. */
static int split_path(const char *p, segs *out)
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

static int is_loopback(struct MHD_Connection *c)
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

/* ------------------------------------------------------------ API operations */

typedef struct route {
    int op;                 /* itd_op, -1 when the path and method matched no operation */
    const char *allow;      /* methods of the rows whose template fits the path (405), NULL: none */
    const char *ws, *project, *job, *run;
    itd_route m;
} route;

/* The paths and methods are the operation table's (ops.c), as the client
 * builds them. */
static void match_route(const segs *s, const char *method, route *r)
{
    memset(r, 0, sizeof *r);
    r->op = itd_op_route((const char *const *)s->v, s->n, method, &r->m);
    r->allow = r->m.allow[0] ? r->m.allow : NULL;
    r->ws = r->m.workspace;
    r->project = r->m.args.project;
    r->job = r->m.args.job_id;
    r->run = r->m.args.run_id;
}

static unsigned success_status(int op)
{
    const itd_op_def *d = itd_op_def_of((itd_op)op);
    return d ? (unsigned)d->success : 200;
}

static enum MHD_Result not_found_job(struct MHD_Connection *c, const route *r)
{
    char msg[600];
    snprintf(msg, sizeof msg, "No job with id %.200s in project %.200s", r->job, r->project);
    return send_error(c, 404, msg);
}

static enum MHD_Result not_found_run(struct MHD_Connection *c, const route *r)
{
    char msg[600];
    snprintf(msg, sizeof msg, "No run with id %.200s for job %.200s", r->run, r->job);
    return send_error(c, 404, msg);
}

static const char *query_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- HEAD's paged runs list (pageNumber, pageSize, sortBy)
 *
 * The reference (jobs-api.md §8.1) gives only the SDK's example
 * (pageNumber=0, pageSize=10, sortBy=start_time,desc/status,asc) and says
 * neither where pages start nor any bound.  Ours: pages count from 0 (the
 * example's 0), pageSize 1..PAGE_SIZE_MAX (default 10), pageNumber
 * 0..PAGE_NUMBER_MAX; anything else is a 400 naming the argument, so a
 * product of the two can never overflow. */
#define PAGE_SIZE_MAX 1000L
#define PAGE_NUMBER_MAX 1000000L
#define SORT_KEYS_MAX 4

typedef struct page_args {
    long page, size;
    int nkeys;
    const char *key[SORT_KEYS_MAX];   /* JobRun keys (static strings) */
    int desc[SORT_KEYS_MAX];
} page_args;

/* What sortBy may name: the JobRun keys that hold a string (or null). */
static const char *const sort_fields[] = { "start_time", "end_time", "created_at", "updated_at", "status", "type", "id" };

static enum MHD_Result send_bad_arg(struct MHD_Connection *c, const char *field, const char *issue)
{
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid query parameter %s: %s", field, issue);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "field", field);
    cJSON_AddStringToObject(d, "issue", issue);
    return send_json(c, 400, error_json(400, msg, d));
}

/* A whole number lo..hi written with digits only; 0, or -1 with `issue` set. */
static int page_number_arg(const char *raw, long lo, long hi, long *out, char *issue, size_t len)
{
    char *v = pct_decode(raw, strlen(raw), 1);
    int rc = -1;
    size_t n = v ? strlen(v) : 0, i;
    for (i = 0; i < n && isdigit((unsigned char)v[i]); i++) {}
    if (!v || n == 0 || i != n) snprintf(issue, len, "must be a whole number written with digits only");
    else if (n > 9 || strtol(v, NULL, 10) > hi || strtol(v, NULL, 10) < lo)
        snprintf(issue, len, "must be between %ld and %ld", lo, hi);
    else { *out = strtol(v, NULL, 10); rc = 0; }
    free(v);
    return rc;
}

/* sortBy: up to SORT_KEYS_MAX parts joined by '/', each "field[,asc|,desc]"
 * (a space may stand for the comma: "status asc"). */
static int sort_arg(const char *raw, page_args *a, char *issue, size_t len)
{
    char *v = pct_decode(raw, strlen(raw), 1);
    if (!v || !v[0] || strlen(v) > 200) {
        snprintf(issue, len, "expected field[,asc|desc] parts joined by '/', e.g. start_time,desc");
        free(v);
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *part = strtok_r(v, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        size_t fl = strcspn(part, ", ");
        const char *dir = part[fl] ? part + fl + 1 : "asc";
        size_t k;
        for (k = 0; k < sizeof sort_fields / sizeof sort_fields[0]; k++)
            if (strlen(sort_fields[k]) == fl && strncmp(sort_fields[k], part, fl) == 0) break;
        if (a->nkeys == SORT_KEYS_MAX) { snprintf(issue, len, "at most %d sort keys", SORT_KEYS_MAX); rc = -1; break; }
        if (k == sizeof sort_fields / sizeof sort_fields[0]) {
            snprintf(issue, len, "unknown sort field \"%.*s\" (known: start_time, end_time, created_at, updated_at, "
                     "status, type, id)", (int)(fl > 40 ? 40 : fl), part);
            rc = -1;
            break;
        }
        if (strcasecmp(dir, "asc") != 0 && strcasecmp(dir, "desc") != 0) {
            snprintf(issue, len, "the direction of %s must be asc or desc", sort_fields[k]);
            rc = -1;
            break;
        }
        a->key[a->nkeys] = sort_fields[k];
        a->desc[a->nkeys] = strcasecmp(dir, "desc") == 0;
        a->nkeys++;
    }
    if (rc == 0 && a->nkeys == 0) { snprintf(issue, len, "names no sort field"); rc = -1; }
    free(v);
    return rc;
}

/* Reads and checks the paging arguments; 0, or -1 with the argument's name in *field. */
static int page_args_parse(struct MHD_Connection *c, page_args *a, const char **field, char *issue, size_t len)
{
    const char *pn = query_arg(c, "pageNumber"), *ps = query_arg(c, "pageSize"), *sb = query_arg(c, "sortBy");
    memset(a, 0, sizeof *a);
    a->size = 10;
    if (pn && page_number_arg(pn, 0, PAGE_NUMBER_MAX, &a->page, issue, len)) { *field = "pageNumber"; return -1; }
    if (ps && page_number_arg(ps, 1, PAGE_SIZE_MAX, &a->size, issue, len)) { *field = "pageSize"; return -1; }
    if (sb && sort_arg(sb, a, issue, len)) { *field = "sortBy"; return -1; }
    return 0;
}

typedef struct sort_item { cJSON *doc; int idx; const page_args *a; } sort_item;

static const char *doc_str(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* By the keys in turn (times are fixed-width UTC strings, so they compare as
 * text; null, e.g. the end_time of a running run, sorts after any value),
 * then by creation order in the first key's direction: a stable order. */
static int cmp_sort_item(const void *pa, const void *pb)
{
    const sort_item *x = pa, *y = pb;
    for (int k = 0; k < x->a->nkeys; k++) {
        const char *s = doc_str(x->doc, x->a->key[k]), *t = doc_str(y->doc, x->a->key[k]);
        int d = s && t ? strcmp(s, t) : s ? -1 : t ? 1 : 0;
        if (d) return x->a->desc[k] ? -d : d;
    }
    return x->a->desc[0] ? x->idx - y->idx : y->idx - x->idx;   /* idx: newest first */
}

static cJSON *page_runs(const page_args *a, cJSON *all)
{
    int n = cJSON_GetArraySize(all);
    sort_item *v = emu_xcalloc((size_t)(n ? n : 1), sizeof *v);
    int k = 0;
    for (cJSON *it = all->child; it && k < n; it = it->next, k++) { v[k].doc = it; v[k].idx = k; v[k].a = a; }
    if (a->nkeys) qsort(v, (size_t)k, sizeof *v, cmp_sort_item);
    cJSON *items = cJSON_CreateArray();
    /* both factors are bounded (page_args_parse), so this does not overflow */
    long from = a->page * a->size;
    for (long i = from; i < (long)k && i < from + a->size; i++)
        cJSON_AddItemToArray(items, cJSON_Duplicate(v[i].doc, 1));
    free(v);
    cJSON_Delete(all);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "jobRuns", items);
    cJSON_AddNumberToObject(o, "totalCount", n);
    return o;
}

/* A webhook sink aimed at the emulator's own API or control endpoints would
 * make each delivery trigger (or change) jobs again, without end; refused
 * now, and again at delivery (runner.c) for jobs that came another way. */
static int sink_is_self(const itd_sink *s)
{
    return s && s->kind == ITD_SINK_WEBHOOK && s->url && runner_webhook_is_self(s->url);
}

static enum MHD_Result refuse_self_sink(struct MHD_Connection *c, const char *what)
{
    const char *issue = "a webhook sink must not target the emulator's own API or control endpoints "
                        "(on its own port only /_receiver/NAME)";
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid %s: sink.url: %s", what, issue);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "field", "sink.url");
    cJSON_AddStringToObject(d, "issue", issue);
    return send_json(c, 400, error_json(400, msg, d));
}

/* The client passes any number (the reference sets no bound); the emulator
 * runs at least one payload at a time, so it refuses less, saying why. */
static int check_concurrency(const itd_configuration *cfg, itd_error *err)
{
    if (!cfg || !cfg->has_maxConcurrentRequests || cfg->maxConcurrentRequests >= 1) return 0;
    return itd_error_set(err, ITD_ERR_VALIDATION, "configuration.maxConcurrentRequests",
                         "the emulator requires at least 1 (the reference gives no bound)");
}

static enum MHD_Result do_op(struct MHD_Connection *c, const route *r, req *q)
{
    emu_writes w = { NULL };
    itd_error err = { 0 };
    enum MHD_Result rc;
    emu_job *j;

    switch (r->op) {
    case ITD_OP_JOBS_LIST: {
        pthread_mutex_lock(&g_lock);
        cJSON *a = store_jobs_array(r->project);
        pthread_mutex_unlock(&g_lock);
        return send_model(c, &itd_JobList, a);
    }
    case ITD_OP_JOBS_CREATE: {
        itd_job_input *in = itd_decode(&itd_JobInput, q->body ? q->body : "", q->len, NULL, &err);
        if (!in) { rc = send_invalid(c, "job input", &err); itd_error_clear(&err); return rc; }
        if (sink_is_self(in->sink)) { itd_free(&itd_JobInput, in); return refuse_self_sink(c, "job input"); }
        if (check_concurrency(in->configuration, &err) || sched_validate(in->schedule, &err)) {   /* before g_lock: the checks bound the schedule search */
            rc = send_invalid(c, "job input", &err);
            itd_error_clear(&err);
            itd_free(&itd_JobInput, in);
            return rc;
        }
        pthread_mutex_lock(&g_lock);
        if (store_job_get(r->project, in->id)) {
            pthread_mutex_unlock(&g_lock);
            char msg[600];
            /* 409: the HTTP meaning of "already exists"; a client that retried a
             * create whose answer was lost reconciles on it */
            snprintf(msg, sizeof msg, "A job with id %.200s already exists in project %.200s", in->id, r->project);
            itd_free(&itd_JobInput, in);
            return send_error(c, 409, msg);
        }
        int bad = store_job_create(r->project, in, &w, &j, &err);
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        if (bad) { rc = send_invalid(c, "job input", &err); itd_error_clear(&err); itd_free(&itd_JobInput, in); return rc; }
        stats_create();
        rc = send_action(c, 201, &itd_CreateJob, in->id, NULL, "created");
        itd_free(&itd_JobInput, in);
        return rc;
    }
    case ITD_OP_JOBS_GET: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (!j) { pthread_mutex_unlock(&g_lock); return not_found_job(c, r); }
        struct MHD_Response *resp = new_response(j->json_len, j->json, MHD_RESPMEM_MUST_COPY);
        pthread_mutex_unlock(&g_lock);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        rc = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    case ITD_OP_JOBS_UPDATE: {
        itd_job_update_input *up = itd_decode(&itd_JobUpdateInput, q->body ? q->body : "", q->len, NULL, &err);
        if (!up) { rc = send_invalid(c, "job update", &err); itd_error_clear(&err); return rc; }
        if (sink_is_self(up->sink)) { itd_free(&itd_JobUpdateInput, up); return refuse_self_sink(c, "job update"); }
        if (check_concurrency(up->configuration, &err) || sched_validate(up->schedule, &err)) {
            rc = send_invalid(c, "job update", &err);
            itd_error_clear(&err);
            itd_free(&itd_JobUpdateInput, up);
            return rc;
        }
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        int bad = j ? store_job_update(j, up, &w, &err) : 0;
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        itd_free(&itd_JobUpdateInput, up);
        if (!j) return not_found_job(c, r);
        if (bad) { rc = send_invalid(c, "job update", &err); itd_error_clear(&err); return rc; }
        return send_action(c, 200, &itd_UpdateJob, r->job, NULL, "updated job successfully");
    }
    case ITD_OP_JOBS_DELETE: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (j) store_job_delete(j, &w);
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        if (!j) return not_found_job(c, r);
        return send_body(c, 204, NULL, NULL, 0, NULL, NULL);
    }
    case ITD_OP_JOBS_PAUSE:
    case ITD_OP_JOBS_RESUME: {
        int pause = r->op == ITD_OP_JOBS_PAUSE;
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (j) {
            /* the API takes no body, so the reason is ours */
            store_job_set_state(j, pause ? "PAUSED" : "ACTIVE", pause ? "Paused via API" : NULL, &w);
            if (pause) runner_pause_job(r->project, r->job, &w);
            else runner_resume_job(r->project, r->job, &w);
        }
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        if (!j) return not_found_job(c, r);
        return send_action(c, 200, pause ? &itd_PauseJob : &itd_ResumeJob, r->job, NULL, pause ? "Paused" : "Resumed");
    }
    case ITD_OP_JOBS_TRIGGER: {
        char run_id[64] = "";
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        int paused = j && j->obj->state && j->obj->state->status && strcmp(j->obj->state->status, "PAUSED") == 0;
        if (j && !paused) snprintf(run_id, sizeof run_id, "%s", store_run_create(j, "MANUAL", &w)->id);
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        if (!j) return not_found_job(c, r);
        if (paused) {
            /* the SDK documents that trigger fails on a paused job without a
             * status; 409 says "the resource's state forbids it" */
            char msg[400];
            snprintf(msg, sizeof msg, "Job %.200s is paused; resume it before triggering", r->job);
            return send_error(c, 409, msg);
        }
        return send_action(c, 200, &itd_TriggerJob, r->job, run_id, "Triggered");
    }
    case ITD_OP_RUNS_LIST: {
        int paged = query_arg(c, "pageNumber") || query_arg(c, "pageSize") || query_arg(c, "sortBy");
        page_args pa;
        const char *field = NULL;
        char issue[200];
        if (paged && page_args_parse(c, &pa, &field, issue, sizeof issue)) return send_bad_arg(c, field, issue);
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        cJSON *a = j ? store_runs_array(r->project, r->job, paged) : NULL;
        pthread_mutex_unlock(&g_lock);
        if (!j) return not_found_job(c, r);
        return send_model(c, &itd_JobRunList, paged ? page_runs(&pa, a) : a);
    }
    case ITD_OP_RUNS_GET: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        emu_run *run = j ? store_run_get(r->run) : NULL;
        if (run && (strcmp(run->job_id, r->job) != 0 || strcmp(run->project, r->project) != 0)) run = NULL;
        cJSON *doc = run ? store_run_doc(run, 1) : NULL;
        pthread_mutex_unlock(&g_lock);
        if (!j) return not_found_job(c, r);
        if (!run) return not_found_run(c, r);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "jobRun", doc);
        /* results: a link to the emulator's own collection of this run's results */
        cJSON *res = cJSON_AddObjectToObject(o, "results");
        char url[512], key[600], *enc = itd_uri_component(r->run);
        snprintf(url, sizeof url, "%s/_emulator/runs/%s/results", g_origin, enc ? enc : "");
        snprintf(key, sizeof key, "%.200s/%.200s/results.json", r->job, r->run);
        free(enc);
        cJSON_AddStringToObject(res, "signed_url", url);
        cJSON_AddStringToObject(res, "key", key);
        cJSON_AddStringToObject(res, "format", "json");
        return send_model(c, &itd_JobRunDetail, o);
    }
    case ITD_OP_RUNS_TERMINATE: {
        char status[16] = "";
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        emu_run *run = j ? store_run_get(r->run) : NULL;
        if (run && (strcmp(run->job_id, r->job) != 0 || strcmp(run->project, r->project) != 0)) run = NULL;
        if (run) {
            snprintf(status, sizeof status, "%s", run->status);
            if (strcmp(status, "PENDING") == 0 || strcmp(status, "PAUSED") == 0) runner_terminate(run, &w);
        }
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        if (!j) return not_found_job(c, r);
        if (!run) return not_found_run(c, r);
        if (strcmp(status, "COMPLETED") == 0 || strcmp(status, "FAILED") == 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "Job run %.200s already finished (%s)", r->run, status);
            return send_error(c, 409, msg);
        }
        return send_action(c, 200, &itd_TerminateJobRun, NULL, NULL, "Job run terminated");
    }
    }
    return send_error(c, 500, "internal: unknown operation");
}

static enum MHD_Result handle_api(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    segs s;
    int sr = split_path(path, &s);
    if (sr == -1) { stats_request(method, "bad-path"); return send_error(c, 400, "Malformed percent-encoding (or not UTF-8) in the path"); }
    if (sr == -2) { stats_request(method, "not-found"); return send_error(c, 404, "No such API path"); }
    route r;
    match_route(&s, method, &r);
    enum MHD_Result rc;
    if (r.op < 0) {
        stats_request(method, r.allow ? "method-not-allowed" : "not-found");
        if (r.allow) {
            char *body = error_json(405, "Method not allowed", NULL);
            rc = send_body(c, 405, "application/json", body, strlen(body), MHD_HTTP_HEADER_ALLOW, r.allow);
        } else {
            rc = send_error(c, 404, "No such API path");
        }
        segs_free(&s);
        return rc;
    }
    stats_request(method, itd_op_name((itd_op)r.op));

    /* faults are decided first: a faulted request never reaches the store
     * (a rule of latency or drip alone: served, late or slowly) */
    emu_fault f;
    if (faults_pick(method, path, &f)) {
        emu_log("fault on %s %s: status %d kind %s latency %g ms", method, itd_op_name((itd_op)r.op), f.status,
                faults_kind_name(f.kind), f.latency_ms);
        if (f.latency_ms > 0) emu_sleep_ms(f.latency_ms);
        if (f.kind == FK_DRIP) tl_drip = &f;   /* whatever answer follows drips */
        if (f.status || (f.kind && f.kind != FK_DRIP)) {
            rc = apply_fault(c, &f, success_status(r.op));
            tl_drip = NULL;
            segs_free(&s);
            return rc;
        }
        if (f.kind == FK_DRIP) stats_fault();
    }
    if (q->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "Request body exceeds %zu bytes", g_opts.max_body);
        rc = send_error(c, 413, msg);
    } else {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
        if (!key || strcmp(key, g_opts.api_key) != 0)
            rc = send_error(c, 401, "The API key is missing or not valid for this workspace");
        else if (strcmp(r.ws, g_opts.workspace) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "No workspace with id %.200s", r.ws);
            rc = send_error(c, 404, msg);
        } else {
            rc = do_op(c, &r, q);
        }
    }
    tl_drip = NULL;
    segs_free(&s);
    return rc;
}

/* ------------------------------------------------------------ control, receiver */

/* The receiver records what webhooks send, secret headers included, so
 * reading (GET) and clearing (DELETE) it take the API key like the API
 * does; recording (POST, what a sink does) does not, and is bounded in
 * memory (see receiver_add). */
static enum MHD_Result handle_receiver(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    segs s;
    if (split_path(path, &s) != 0 || s.n != 1 || !s.v[0][0]) {
        if (s.n) segs_free(&s);
        return send_error(c, 404, "Receiver paths are /_receiver/{name}");
    }
    const char *name = s.v[0];
    enum MHD_Result rc;
    stats_request(method, "receiver");
    int get = strcmp(method, "GET") == 0, del = strcmp(method, "DELETE") == 0;
    if (get || del) {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
        if (!key || strcmp(key, g_opts.api_key) != 0) {
            segs_free(&s);
            return send_error(c, 401, "Reading or clearing a receiver takes the API key (x-api-key)");
        }
    } else if (q->too_big) {
        segs_free(&s);
        return send_error(c, 413, "Request body too large");
    }
    pthread_mutex_lock(&rc_lock);
    receiver *rv = receiver_get(name, !get && !del);
    if (get) {
        cJSON *copy = cJSON_CreateArray();
        for (rrec *x = rv ? rv->head : NULL; x; x = x->next) cJSON_AddItemToArray(copy, cJSON_Duplicate(x->rec, 1));
        char dropped[32], total[32];
        snprintf(dropped, sizeof dropped, "%lu", rv ? rv->dropped : 0UL);
        snprintf(total, sizeof total, "%lu", g_rc_dropped);
        pthread_mutex_unlock(&rc_lock);
        char *json = itd_json_print(copy, NULL);
        cJSON_Delete(copy);
        struct MHD_Response *resp = json ? MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!resp) {
            free(json);
            rc = MHD_NO;
        } else {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(resp, "X-Receiver-Dropped", dropped);
            MHD_add_response_header(resp, "X-Receiver-Dropped-Total", total);
            rc = MHD_queue_response(c, 200, resp);
            MHD_destroy_response(resp);
        }
    } else if (del) {
        if (rv) receiver_remove(rv, 0);
        pthread_mutex_unlock(&rc_lock);
        rc = send_body(c, 204, NULL, NULL, 0, NULL, NULL);
    } else {
        unsigned status = 200;
        if (rv->count > 0) { status = (unsigned)rv->status; rv->count--; }
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "method", method);
        cJSON_AddStringToObject(rec, "path", path);
        cJSON *h = cJSON_AddObjectToObject(rec, "headers");
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, h);
        char *body = emu_xmalloc(q->len + 1);
        if (q->len) memcpy(body, q->body, q->len);
        body[q->len] = 0;
        cJSON_AddStringToObject(rec, "body", body);
        free(body);
        cJSON_AddNumberToObject(rec, "status", status);
        cJSON_AddNumberToObject(rec, "time", emu_now());
        /* memory of the record, roughly: strings plus cJSON nodes */
        size_t bytes = 512 + q->len + strlen(path) + strlen(method);
        for (const cJSON *it = h->child; it; it = it->next)
            bytes += 128 + strlen(it->string) + (it->valuestring ? strlen(it->valuestring) : 0);
        receiver_add(rv, rec, bytes);
        pthread_mutex_unlock(&rc_lock);
        char *out = status < 300 ? emu_strdup("{\"received\":true}") : error_json(status, "Receiver configured to fail", NULL);
        rc = send_json(c, status, out);
    }
    segs_free(&s);
    return rc;
}

static cJSON *parse_body(const req *q)
{
    /* the strict parser: what is echoed back in an error must be UTF-8 */
    return q->len ? itd_json_parse(q->body, q->len, NULL, NULL) : NULL;
}

static enum MHD_Result handle_control(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    if (!is_loopback(c)) return send_error(c, 404, "Not found");   /* invisible off loopback */
    stats_request(method, "control");
    if (q->too_big) return send_error(c, 413, "Request body too large");
    if (strcmp(path, "faults") == 0) {
        if (strcmp(method, "GET") == 0) return send_cjson(c, 200, faults_list());
        if (strcmp(method, "DELETE") == 0) { faults_clear(); return send_cjson(c, 200, faults_list()); }
        if (strcmp(method, "POST") == 0) {
            cJSON *t = parse_body(q);
            if (!t) return send_error(c, 400, "Expected a JSON fault rule (or an array of rules)");
            emu_fault rules[64];
            size_t n = 0;
            char msg[200] = "";
            int bad = 0;
            if (cJSON_IsArray(t)) {
                for (cJSON *it = t->child; it && !bad; it = it->next) {
                    if (n == 64) { snprintf(msg, sizeof msg, "at most 64 rules"); bad = 1; break; }
                    bad = faults_parse(it, &rules[n++], msg, sizeof msg) != 0;
                }
            } else {
                bad = faults_parse(t, &rules[n++], msg, sizeof msg) != 0;
            }
            cJSON_Delete(t);
            if (bad) return send_error(c, 400, msg);
            for (size_t i = 0; i < n; i++)
                if (faults_add(&rules[i])) return send_error(c, 409, "Too many fault rules (64); DELETE /_emulator/faults");
            return send_cjson(c, 200, faults_list());
        }
        return send_error(c, 405, "Method not allowed");
    }
    if (strcmp(path, "stats") == 0 && strcmp(method, "GET") == 0) return send_cjson(c, 200, stats_json());
    if (strcmp(path, "health") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "version", ITD_VERSION);
        return send_cjson(c, 200, o);
    }
    if (strncmp(path, "receivers/", 10) == 0 && strcmp(method, "POST") == 0) {
        char *name = pct_decode(path + 10, strlen(path + 10), 0);
        cJSON *t = parse_body(q);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(t, "status");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(t, "count");
        if (!name || !name[0] || !cJSON_IsNumber(st) || st->valuedouble < 100 || st->valuedouble > 599) {
            free(name);
            cJSON_Delete(t);
            return send_error(c, 400, "Expected {\"status\": 100..599, \"count\": N}");
        }
        pthread_mutex_lock(&rc_lock);
        receiver *rv = receiver_get(name, 1);
        rv->status = (int)st->valuedouble;
        /* clamped before the cast: (long)1e300 is undefined */
        rv->count = cJSON_IsNumber(cnt) && cnt->valuedouble >= 0 ? (long)fmin(cnt->valuedouble, 1e9) : 1;
        pthread_mutex_unlock(&rc_lock);
        free(name);
        cJSON_Delete(t);
        return send_json(c, 200, emu_strdup("{\"ok\":true}"));
    }
    if (strncmp(path, "runs/", 5) == 0 && strcmp(method, "GET") == 0) {
        segs s;
        if (split_path(path + 5, &s) != 0) return send_error(c, 404, "Not found");
        enum MHD_Result rc;
        if (s.n == 2 && strcmp(s.v[1], "results") == 0) {
            pthread_mutex_lock(&g_lock);
            emu_run *run = store_run_get(s.v[0]);
            cJSON *a = run ? store_run_results(run) : NULL;
            pthread_mutex_unlock(&g_lock);
            rc = a ? send_cjson(c, 200, a) : send_error(c, 404, "No such run");
        } else {
            rc = send_error(c, 404, "Not found");
        }
        segs_free(&s);
        return rc;
    }
    return send_error(c, 404, "Control endpoints: /_emulator/faults, /_emulator/stats, /_emulator/health, "
                              "/_emulator/receivers/{name}, /_emulator/runs/{runId}/results");
}

/* ------------------------------------------------------------ request deadline */

/* --conn-timeout closes idle connections only: a client that drips header
 * bytes is never idle and holds its slot (and thread) for good, and enough
 * such clients lock everyone out.  So every request must arrive whole
 * (headers and body) within --request-timeout seconds of its first byte: a
 * reaper thread shuts the socket of a late one down, and libmicrohttpd then
 * closes it.  Between requests a connection is idle and only --conn-timeout
 * applies; TCP_INFO tells when the next request's bytes began to arrive
 * (without it the deadline counts from the previous answer).  A new
 * connection's deadline counts from its accept. */
enum { CS_RECV = 0, CS_BUSY, CS_IDLE, CS_CUT };
typedef struct conn_slot {
    int fd;
    int state;             /* CS_*, guarded by cs_lock */
    double since;          /* CS_RECV: the request began; CS_IDLE: the answer was queued */
    struct conn_slot *prev, *next;
} conn_slot;
static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cs_cv = PTHREAD_COND_INITIALIZER;
static conn_slot *g_slots;
static pthread_t g_reaper;
static int g_reaper_on, g_reaper_stop;
static unsigned long st_cut;   /* connections cut for a late request, under cs_lock */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void slot_open(struct MHD_Connection *c, void **socket_context)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_slot *s = calloc(1, sizeof *s);
    if (!s || !ci) { free(s); return; }   /* untracked: only the idle timeout applies */
    s->fd = ci->connect_fd;
    s->state = CS_RECV;
    s->since = mono_now();
    pthread_mutex_lock(&cs_lock);
    s->next = g_slots;
    if (g_slots) g_slots->prev = s;
    g_slots = s;
    pthread_mutex_unlock(&cs_lock);
    *socket_context = s;
}

/* libmicrohttpd reports the close before it closes the socket, so the
 * reaper never shuts down a descriptor that was reused meanwhile. */
static void slot_close(void **socket_context)
{
    conn_slot *s = *socket_context;
    if (!s) return;
    pthread_mutex_lock(&cs_lock);
    if (s->prev) s->prev->next = s->next;
    else g_slots = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&cs_lock);
    free(s);
    *socket_context = NULL;
}

/* state: CS_BUSY (the request is whole), CS_IDLE (answered), or CS_RECV
 * (headers of a request whose start the reaper did not see: from now). */
static void slot_mark(struct MHD_Connection *c, int state)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_slot *s = ci ? ci->socket_context : NULL;
    if (!s) return;
    pthread_mutex_lock(&cs_lock);
    if (s->state != CS_CUT && (state != CS_RECV || s->state == CS_IDLE)) {
        s->state = state;
        s->since = mono_now();
    }
    pthread_mutex_unlock(&cs_lock);
}

/* Seconds since the socket last received data, or -1 when unknown. */
static double idle_for(int fd)
{
#ifdef TCP_INFO
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len >= sizeof ti)
        return ti.tcpi_last_data_recv / 1000.0;
#else
    (void)fd;
#endif
    return -1;
}

static void *reaper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cs_lock);
    while (!g_reaper_stop) {
        double now = mono_now(), limit = g_opts.request_timeout;
        for (conn_slot *s = g_slots; s; s = s->next) {
            if (s->state == CS_IDLE) {
                double idle = idle_for(s->fd);
                /* bytes after the answer (50 ms of slack for the clock's grain): a request began */
                if (idle < 0) s->state = CS_RECV;
                else if (now - idle > s->since + 0.05) { s->state = CS_RECV; s->since = now - idle; }
            }
            if (s->state == CS_RECV && now - s->since > limit) {
                shutdown(s->fd, SHUT_RDWR);
                s->state = CS_CUT;
                st_cut++;
                emu_log("connection closed: no whole request within %g s", limit);
            }
        }
        /* a tenth of the deadline, within 20..200 ms */
        double step = limit / 10;
        if (step < 0.02) step = 0.02;
        if (step > 0.2) step = 0.2;
        double until = emu_now() + step;
        struct timespec ts;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
        pthread_cond_timedwait(&cs_cv, &cs_lock, &ts);
    }
    pthread_mutex_unlock(&cs_lock);
    return NULL;
}

static unsigned long stats_cut(void)
{
    pthread_mutex_lock(&cs_lock);
    unsigned long n = st_cut;
    pthread_mutex_unlock(&cs_lock);
    return n;
}

/* ------------------------------------------------------------ libmicrohttpd glue */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req *q = *con_cls;
    if (!q) {
        /* first call: headers only.  A body announced above the limit is refused
         * now, without reading it (the connection then closes). */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > g_opts.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "Request body exceeds %zu bytes", g_opts.max_body);
            stats_request(method, "too-large");
            slot_mark(c, CS_BUSY);
            return send_error(c, 413, msg);
        }
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *con_cls = q;
        slot_mark(c, CS_RECV);   /* a request whose first bytes the reaper did not see */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->too_big || q->len + n > g_opts.max_body) {   /* chunked bodies: drain, answer 413 at the end */
            q->too_big = 1;
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 1024;
            while (cap < q->len + n + 1) cap *= 2;
            char *nb = realloc(q->body, cap);
            if (!nb) return MHD_NO;
            q->body = nb;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        q->body[q->len] = 0;
        return MHD_YES;
    }
    slot_mark(c, CS_BUSY);   /* whole: the deadline is met */
    emu_log("%s %s", method, url);
    size_t blen = strlen(EMU_BASE_PATH);
    if (strncmp(url, EMU_BASE_PATH, blen) == 0 && url[blen] == '/') return handle_api(c, method, url + blen + 1, q);
    if (strncmp(url, "/_emulator/", 11) == 0) return handle_control(c, method, url + 11, q);
    if (strncmp(url, "/_receiver/", 11) == 0) return handle_receiver(c, method, url + 11, q);
    stats_request(method, "not-found");
    return send_error(c, 404, "Not found: the Jobs API is under " EMU_BASE_PATH);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    req *q = *con_cls;
    if (q) { free(q->body); free(q); }
    *con_cls = NULL;
    slot_mark(c, CS_IDLE);
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) { stats_connection(); slot_open(c, socket_context); }
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) { stats_connection_closed(); slot_close(socket_context); }
}

/* Paths and query values reach us undecoded; see the top of the file. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

int http_start(void)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)g_opts.port);
    if (inet_pton(AF_INET, g_opts.host, &sin.sin_addr) != 1) {
        fprintf(stderr, "intuned-emulator: --host must be an IPv4 address, got %s\n", g_opts.host);
        return -1;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (g_opts.verbose) flags |= MHD_USE_ERROR_LOG;
    g_daemon = MHD_start_daemon(flags, (uint16_t)g_opts.port, NULL, NULL, handler, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_NOTIFY_CONNECTION, notify, NULL,
                                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)g_opts.conn_timeout,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)g_opts.max_conns,
                                MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                MHD_OPTION_END);
    if (!g_daemon) {
        fprintf(stderr, "intuned-emulator: cannot listen on %s:%d\n", g_opts.host, g_opts.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : g_opts.port;
    snprintf(g_origin, sizeof g_origin, "http://%s:%d", g_opts.host, port);
    if (g_opts.request_timeout > 0) {
        if (pthread_create(&g_reaper, NULL, reaper, NULL) != 0) {
            fprintf(stderr, "intuned-emulator: cannot start the request deadline thread\n");
            return -1;
        }
        g_reaper_on = 1;
    }
    return 0;
}

void http_stop(void)
{
    if (g_reaper_on) {
        pthread_mutex_lock(&cs_lock);
        g_reaper_stop = 1;
        pthread_cond_broadcast(&cs_cv);
        pthread_mutex_unlock(&cs_lock);
        pthread_join(g_reaper, NULL);
        g_reaper_on = 0;
    }
    if (g_daemon) MHD_stop_daemon(g_daemon);
    g_daemon = NULL;
    receivers_free();
}
