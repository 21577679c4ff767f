/*
 * transport_curl.c - the libcurl transport: moves the bytes of requests built
 * by protocol.c, with timeouts, a deadline, retries and reconciliation.
 *
 *  - call(): one easy handle per client, reused (keep-alive connections).
 *  - batch(): a multi handle; easy handles from a pool of max_in_flight; all
 *    handles of a client share DNS, TLS sessions and connections (CURLSH).
 *  - Every attempt: CURLOPT_CONNECTTIMEOUT_MS and CURLOPT_TIMEOUT_MS bounded by
 *    what is left of the call's deadline; past the deadline the call fails
 *    with ITD_ERR_TIMEOUT.  Redirects are not followed (the key would travel).
 *  - create and trigger (not idempotent) always use a fresh connection:
 *    libcurl re-sends a request on its own when a reused connection dies
 *    before the answer starts, which would duplicate them.
 *  - "sent" (the request may have reached the server) is 0 only for DNS and
 *    connect failures, TLS handshake failures and timeouts before any byte of
 *    the request was written (CURLINFO_REQUEST_SIZE == 0); otherwise 1.
 *  - A create that was retried after an attempt that reached the server and
 *    then meets 409 is reconciled: the job is fetched and compared with the
 *    input (itd_job_matches_input); equal means the first attempt created it
 *    and the call succeeds with {id, message = "created"}.
 *  - Callbacks never print, raise or call out; hooks are called between
 *    attempts (never from inside libcurl) and see redacted requests only.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "intuned.h"

#define ITD_RESPONSE_MAX (32u * 1024u * 1024u) /* a bigger response body is an error */
#define ITD_MAX_IN_FLIGHT 1024

/* ---------------------------------------------------------------- globals */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;
static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    if (!(s > 0)) return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* ----------------------------------------------------------------- client */

/* An easy handle with what one transfer on it needs; reused across calls. */
typedef struct slot {
    CURL *easy;
    char *buf;                 /* response body */
    size_t len, cap;
    int too_big;
    char retry_after[96];
    int have_ra;
    int in_head;               /* a status line was read, the header block not ended */
    int configured;            /* the options every attempt shares are set */
    char errbuf[CURL_ERROR_SIZE];
} slot;

static slot *slot_new(void)
{
    slot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (!(s->easy = curl_easy_init())) { free(s); return NULL; }
    return s;
}

static void slot_free(slot *s)
{
    if (!s) return;
    if (s->easy) curl_easy_cleanup(s->easy);
    free(s->buf);
    free(s);
}

struct itd_client {
    char *server_url, *workspace_id, *api_key, *user_agent, *ca_file;
    itd_config cfg;
    long connect_timeout_ms, timeout_ms, deadline_ms;
    itd_retry_policy retry;
    char **extra;             /* "Name: value", validated */
    size_t nextra;
    int insecure;
    itd_hook_fn hook;
    void *hook_ud;
    slot *main;               /* call() */
    CURLSH *share;
    CURLM *multi;
    slot **pool;              /* idle slots for batch */
    size_t npool, cappool;
    /* curl header lists by content: a client's requests use one or two
     * distinct header sets, so they are built once, not per call. */
    struct { char *sig; struct curl_slist *list; } hc[4];
    size_t nhc;
    uint64_t rng;
};

void itd_client_opts_default(itd_client_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    o->deadline_ms = 120000;
    itd_retry_policy_default(&o->retry);
}

static double rnd01(itd_client *c)
{
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

static int header_name_ok(const char *h, size_t *namelen)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) return 0;
    for (const char *p = h; p < colon; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch)) return 0;
    }
    if (strpbrk(h, "\r\n")) return 0;
    *namelen = (size_t)(colon - h);
    return 1;
}

static int name_is(const char *h, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(h, name, n) == 0;
}

void itd_client_free(itd_client *c)
{
    if (!c) return;
    slot_free(c->main);
    for (size_t i = 0; i < c->npool; i++) slot_free(c->pool[i]);
    free(c->pool);
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->share) curl_share_cleanup(c->share);
    for (size_t i = 0; i < c->nhc; i++) {
        /* the lists hold the key: wipe them as the key itself is wiped */
        for (struct curl_slist *l = c->hc[i].list; l; l = l->next) memset(l->data, 0, strlen(l->data));
        curl_slist_free_all(c->hc[i].list);
        memset(c->hc[i].sig, 0, strlen(c->hc[i].sig));
        free(c->hc[i].sig);
    }
    if (c->api_key) {
        volatile char *k = c->api_key;
        while (*k) *k++ = 0;
    }
    free(c->server_url);
    free(c->workspace_id);
    free(c->api_key);
    free(c->user_agent);
    free(c->ca_file);
    for (size_t i = 0; i < c->nextra; i++) free(c->extra[i]);
    free(c->extra);
    free(c);
}

itd_client *itd_client_new(const itd_client_opts *o, itd_error *err)
{
    if (err) itd_error_clear(err);
    itd_client_opts def;
    if (!o) { itd_client_opts_default(&def); o = &def; }
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        itd_error_set(err, ITD_ERR_CONNECTION, "", "curl_global_init failed: %s", curl_easy_strerror(g_init_rc));
        return NULL;
    }
    if (!o->cfg.workspace_id || !*o->cfg.workspace_id) {
        itd_error_set(err, ITD_ERR_VALIDATION, "workspace_id",
                      "a workspace id is required (option workspace_id or INTUNED_WORKSPACE_ID)");
        return NULL;
    }
    if (!o->cfg.api_key || !*o->cfg.api_key) {
        itd_error_set(err, ITD_ERR_VALIDATION, "api_key", "an API key is required (option api_key or INTUNED_API_KEY)");
        return NULL;
    }
    itd_client *c = calloc(1, sizeof *c);
    if (!c) { itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory"); return NULL; }
    c->server_url = dupn(o->cfg.server_url ? o->cfg.server_url : ITD_DEFAULT_SERVER_URL);
    c->workspace_id = dupn(o->cfg.workspace_id);
    c->api_key = dupn(o->cfg.api_key);
    c->user_agent = dupn(o->cfg.user_agent && *o->cfg.user_agent ? o->cfg.user_agent : ITD_USER_AGENT);
    c->ca_file = dupn(o->ca_file);
    if (!c->server_url || !c->workspace_id || !c->api_key || !c->user_agent || (o->ca_file && !c->ca_file))
        goto nomem;
    c->cfg.server_url = c->server_url;
    c->cfg.workspace_id = c->workspace_id;
    c->cfg.api_key = c->api_key;
    c->cfg.user_agent = c->user_agent;
    c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 0;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    c->deadline_ms = o->deadline_ms > 0 ? o->deadline_ms : 0;
    c->retry = o->retry;
    c->insecure = o->insecure;
    c->hook = o->hook;
    c->hook_ud = o->hook_ud;
    if (o->extra_headers) {
        size_t n = 0;
        while (o->extra_headers[n]) n++;
        if (n) {
            c->extra = calloc(n, sizeof *c->extra);
            if (!c->extra) goto nomem;
        }
        for (size_t i = 0; i < n; i++) {
            const char *h = o->extra_headers[i];
            size_t nl;
            if (!header_name_ok(h, &nl)) {
                itd_error_set(err, ITD_ERR_VALIDATION, "headers", "not a valid \"Name: value\" header line (#%zu)", i + 1);
                itd_client_free(c);
                return NULL;
            }
            if (name_is(h, nl, "x-api-key") || name_is(h, nl, "content-type") || name_is(h, nl, "content-length") ||
                name_is(h, nl, "host") || name_is(h, nl, "transfer-encoding")) {
                itd_error_set(err, ITD_ERR_VALIDATION, "headers", "header %.*s cannot be overridden", (int)nl, h);
                itd_client_free(c);
                return NULL;
            }
            if (!(c->extra[i] = strdup(h))) goto nomem;
            c->nextra++;
        }
    }
    c->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ULL;
    if (!c->rng) c->rng = 1;
    c->share = curl_share_init();
    c->main = slot_new();
    if (!c->share || !c->main) goto nomem;
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    return c;
nomem:
    itd_client_free(c);
    itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
    return NULL;
}

/* ------------------------------------------------------------------- xfer */

enum { X_IDLE, X_RUNNING, X_WAITING, X_DONE };
enum { R_DONE, R_RETRY, R_AGAIN };

typedef struct xfer {
    itd_client *c;
    const itd_call *call;
    const itd_retry_policy *pol;
    itd_op op;                 /* the operation on the wire (GET while reconciling) */
    int reconciling;
    itd_request req;
    itd_request red;           /* redacted copy for hooks (only with a hook) */
    struct curl_slist *hdrs;
    int own_hdrs;              /* hdrs is this transfer's (else the client's cache) */
    int attempt;               /* attempts of the current phase */
    int total;                 /* attempts of the whole call */
    int sent_before;           /* an earlier attempt may have reached the server */
    double t0, deadline, attempt_t0, wake;
    int state;
    int started;               /* t0 and deadline set */
    slot *sl;                  /* while an attempt runs */
    itd_error *conflict;       /* the 409 being reconciled (allocated then) */
    itd_result *res;
    itd_error *err;
    itd_secrets sec;           /* what this call carried that must not come back out (borrowed) */
} xfer;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    slot *x = ud;
    size_t n = size * nmemb;
    if (x->len + n > ITD_RESPONSE_MAX) { x->too_big = 1; return 0; }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 8192;
        while (cap < x->len + n + 1) cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) return 0;
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    slot *x = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { x->have_ra = 0; x->in_head = 1; return n; } /* a new response */
    if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) { x->in_head = 0; return n; }
    static const char k[] = "retry-after:";
    if (n > sizeof k - 1 && strncasecmp(p, k, sizeof k - 1) == 0) {
        const char *v = p + sizeof k - 1;
        size_t vl = n - (sizeof k - 1);
        while (vl && (*v == ' ' || *v == '\t')) { v++; vl--; }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
        if (vl >= sizeof x->retry_after) vl = sizeof x->retry_after - 1;
        memcpy(x->retry_after, v, vl);
        x->retry_after[vl] = 0;
        x->have_ra = 1;
    }
    return n;
}

static void hook(xfer *x, const char *event, long status, double elapsed, const itd_error *e)
{
    if (x->c->hook) x->c->hook(x->c->hook_ud, event, &x->red, status, elapsed, e);
}

static void xfer_release_request(xfer *x)
{
    itd_request_free(&x->req);
    itd_request_free(&x->red);
    if (x->own_hdrs) curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    x->own_hdrs = 0;
}

static void xfer_cleanup(xfer *x)
{
    xfer_release_request(x);
    if (x->conflict) { itd_error_clear(x->conflict); free(x->conflict); x->conflict = NULL; }
    itd_secrets_free(&x->sec);
}

static int slist_add(struct curl_slist **l, const char *s)
{
    struct curl_slist *n = curl_slist_append(*l, s);
    if (!n) return -1;
    *l = n;
    return 0;
}

/* Append `n` bytes to the growable buffer *b (stack first, then heap). */
static int sig_add(char **b, size_t *len, size_t *cap, char *stack, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t cap2 = *cap * 2;
        while (cap2 < *len + n + 1) cap2 *= 2;
        char *nb = malloc(cap2);
        if (!nb) return -1;
        memcpy(nb, *b, *len);
        if (*b != stack) { memset(*b, 0, *cap); free(*b); }
        *b = nb;
        *cap = cap2;
    }
    memcpy(*b + *len, p, n);
    *len += n;
    (*b)[*len] = 0;
    return 0;
}

/* The curl header list for x->req: its lines, "\n"-separated, name the
 * list; a cached list with the same lines is shared (never freed before the
 * client), otherwise a new one is built and cached, or owned by the
 * transfer once the cache is full. */
static int xfer_headers(xfer *x)
{
    itd_client *c = x->c;
    char stack[1024], *sig = stack;
    size_t len = 0, cap = sizeof stack;
    int rc = -1;
    stack[0] = 0;
    for (size_t i = 0; i < x->req.nheaders; i++) {
        const itd_header *h = &x->req.headers[i];
        int overridden = 0;
        if (strcasecmp(h->name, "x-api-key") != 0)
            for (size_t j = 0; j < c->nextra; j++) {
                size_t nl = strlen(h->name);
                if (strncasecmp(c->extra[j], h->name, nl) == 0 && c->extra[j][nl] == ':') overridden = 1;
            }
        if (overridden) continue;
        if (strchr(h->name, '\n') || strchr(h->value, '\n')) { rc = -2; goto out; } /* refused upstream too */
        if (sig_add(&sig, &len, &cap, stack, h->name, strlen(h->name)) ||
            sig_add(&sig, &len, &cap, stack, ": ", 2) ||
            sig_add(&sig, &len, &cap, stack, h->value, strlen(h->value)) ||
            sig_add(&sig, &len, &cap, stack, "\n", 1)) goto out;
    }
    for (size_t j = 0; j < c->nextra; j++)
        if (sig_add(&sig, &len, &cap, stack, c->extra[j], strlen(c->extra[j])) ||
            sig_add(&sig, &len, &cap, stack, "\n", 1)) goto out;
    if (sig_add(&sig, &len, &cap, stack, "Expect:\n", 8)) goto out;
    /* a body-less POST: no libcurl default form content type (§1.4) */
    if (!x->req.body && strcmp(x->req.method, "POST") == 0 && sig_add(&sig, &len, &cap, stack, "Content-Type:\n", 14))
        goto out;
    for (size_t i = 0; i < c->nhc; i++)
        if (strcmp(c->hc[i].sig, sig) == 0) {
            x->hdrs = c->hc[i].list;
            x->own_hdrs = 0;
            rc = 0;
            goto out;
        }
    struct curl_slist *l = NULL;
    for (char *p = sig, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = 0;
        int bad = slist_add(&l, p);
        *nl = '\n';
        if (bad) { curl_slist_free_all(l); goto out; }
    }
    char *keep = c->nhc < sizeof c->hc / sizeof c->hc[0] ? strdup(sig) : NULL;
    if (keep) {
        c->hc[c->nhc].sig = keep;
        c->hc[c->nhc].list = l;
        c->nhc++;
        x->own_hdrs = 0;
    } else {
        x->own_hdrs = 1;
    }
    x->hdrs = l;
    rc = 0;
out:
    memset(sig, 0, cap); /* it holds the key */
    if (sig != stack) free(sig);
    return rc;
}

/* Build x->req (and its curl header list and redacted copy) for x->op. */
static int xfer_prepare(xfer *x, const itd_call_args *args, itd_error *e)
{
    itd_client *c = x->c;
    if (itd_request_build(&c->cfg, x->op, args, &x->req, e)) return -1;
    int hr = xfer_headers(x);
    if (hr == -2) {
        xfer_release_request(x);
        itd_error_clear(e);
        return itd_error_set(e, ITD_ERR_VALIDATION, "headers", "a header contains a line break");
    }
    if (hr) goto nomem;
    if (c->hook) {
        itd_request *r = &x->red;
        r->method = x->req.method;
        r->expect_status = x->req.expect_status;
        r->url = strdup(x->req.url);
        r->path = strdup(x->req.path);
        if (!r->url || !r->path || itd_request_redacted_headers(&x->req, &r->headers, &r->nheaders)) goto nomem;
        if (x->op == ITD_OP_JOBS_CREATE || x->op == ITD_OP_JOBS_UPDATE) {
            const itd_schema *s = x->op == ITD_OP_JOBS_CREATE ? &itd_JobInput : &itd_JobUpdateInput;
            const void *o = x->op == ITD_OP_JOBS_CREATE ? (const void *)args->input : (const void *)args->update;
            cJSON *t = itd_to_cjson_redacted(s, o);
            r->body = t ? cJSON_PrintUnformatted(t) : NULL;
            cJSON_Delete(t);
            if (!r->body) goto nomem;
            r->body_len = strlen(r->body);
        }
        /* the event shows none of the call's secrets, wherever a user put them */
        itd_scrub(r->url, strlen(r->url), &x->sec);
        itd_scrub(r->path, strlen(r->path), &x->sec);
        if (r->body) r->body_len = itd_scrub(r->body, r->body_len, &x->sec);
        for (size_t i = 0; i < r->nheaders; i++) itd_scrub(r->headers[i].value, strlen(r->headers[i].value), &x->sec);
    }
    return 0;
nomem:
    xfer_release_request(x);
    itd_error_clear(e);
    return itd_error_set(e, ITD_ERR_NOMEM, "", "out of memory preparing the request");
}

static long ms_left(double deadline, double now)
{
    if (!isfinite(deadline)) return -1; /* none */
    double l = (deadline - now) * 1000.0;
    return l < 1 ? 0 : (long)l;
}

/* Configure `easy` for the next attempt.  0, or -1 with `e` (deadline). */
static int xfer_setup(xfer *x, slot *sl, itd_error *e)
{
    itd_client *c = x->c;
    double now = mono_now();
    if (!x->started) {
        x->started = 1;
        x->t0 = now;
        x->deadline = c->deadline_ms ? now + c->deadline_ms / 1000.0 : INFINITY;
    }
    long left = ms_left(x->deadline, now);
    if (left == 0) {
        itd_error_set(e, ITD_ERR_TIMEOUT, "", "deadline of %ld ms exceeded", c->deadline_ms);
        return -1;
    }
    long to = c->timeout_ms;
    if (left > 0 && (to == 0 || left < to)) to = left;
    long cto = c->connect_timeout_ms;
    if (left > 0 && (cto == 0 || left < cto)) cto = left;

    x->sl = sl;
    sl->len = 0;
    sl->too_big = 0;
    sl->have_ra = 0;
    sl->in_head = 0;
    sl->errbuf[0] = 0;
    CURL *easy = sl->easy;
    if (!sl->configured) {
        /* what every attempt on this handle shares; set once per handle */
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, sl);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, sl);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, sl->errbuf);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(easy, CURLOPT_SHARE, c->share);
        if (c->insecure) {
            curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
            curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        }
        if (c->ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
        sl->configured = 1;
    }
    /* what differs between attempts: every one of these is set each time,
     * so nothing of an earlier request (method, body, fresh connection)
     * carries over */
    curl_easy_setopt(easy, CURLOPT_URL, x->req.url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, cto);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, to);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    /* libcurl silently re-sends a request when a reused keep-alive connection
     * dies before any byte of the answer arrived.  The server may have acted
     * on it (crash or proxy failure after processing), so a create or trigger
     * never goes over a reused connection: a fresh one cannot be re-sent. */
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, itd_op_idempotent(x->op) ? 0L : 1L);
    const char *m = x->req.method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0) {
        /* drop an earlier request's body pointer (it is freed), then GET;
         * setting POSTFIELDS selects POST, so HTTPGET comes after it */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m[0] == 'D' ? "DELETE" : NULL);
    } else {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, x->req.body ? x->req.body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->req.body ? x->req.body_len : 0));
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") != 0 ? m : NULL);
    }
    x->attempt++;
    x->total++;
    x->attempt_t0 = now;
    x->state = X_RUNNING;
    hook(x, "request", 0, 0, NULL);
    return 0;
}

/* libcurl's messages for a header over its limits ("Rejected 204808 bytes
 * header (max is 102400)!", "Too large response headers: ..."). */
static int names_header(const char *s)
{
    for (; *s; s++)
        if (strncasecmp(s, "header", 6) == 0) return 1;
    return 0;
}

/* Turn a libcurl failure into an error; *sent tells whether the request may
 * have reached the server.  What the server's answer causes is CONNECTION
 * or DECODE, never VALIDATION (nothing sent) or NOMEM (kept for a failed
 * allocation in this process). */
static void curl_failure(xfer *x, CURLcode rc, itd_error *e, int *sent)
{
    const char *what = curl_easy_strerror(rc);
    slot *sl = x->sl;
    const char *detail = sl->errbuf[0] ? sl->errbuf : what;
    curl_off_t reqsize = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_REQUEST_SIZE, &reqsize);
    long status = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
    *sent = 1;
    e->retryable = 0;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        *sent = 0;
        e->retryable = 1;
        itd_error_set(e, ITD_ERR_CONNECTION, "", "%s", detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        *sent = 0;
        itd_error_set(e, ITD_ERR_CONNECTION, "", "TLS: %s", detail);
        break;
    case CURLE_OPERATION_TIMEDOUT: {
        *sent = reqsize > 0;
        double now = mono_now();
        if (isfinite(x->deadline) && now >= x->deadline - 0.002) {
            itd_error_set(e, ITD_ERR_TIMEOUT, "", "deadline of %ld ms exceeded (%s)", x->c->deadline_ms, detail);
        } else {
            e->retryable = 1;
            itd_error_set(e, ITD_ERR_TIMEOUT, "", "%s", detail);
        }
        break;
    }
    case CURLE_RECV_ERROR:
        if (sl->in_head && names_header(detail)) { /* "Too large response headers" (libcurl < 8.6) */
            itd_error_set(e, ITD_ERR_DECODE, "", "response header too large (libcurl's limit is 100 KB a header, "
                          "300 KB in all; the request may have been sent): %s", detail);
            e->status = (int)status;
            break;
        }
        /* fall through */
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        *sent = 1;
        e->retryable = 1;
        itd_error_set(e, ITD_ERR_CONNECTION, "", "%s", detail);
        break;
    case CURLE_WRITE_ERROR:
        if (sl->too_big) {
            itd_error_set(e, ITD_ERR_DECODE, "", "response body larger than %u bytes", (unsigned)ITD_RESPONSE_MAX);
            e->status = (int)status;
        } else {
            itd_error_set(e, ITD_ERR_NOMEM, "", "out of memory receiving the response");
        }
        break;
    case CURLE_OUT_OF_MEMORY:
#if LIBCURL_VERSION_NUM >= 0x080600
    case CURLE_TOO_LARGE:
#endif
        /* libcurl before 8.6 answers a header line over 100 KB with
         * CURLE_OUT_OF_MEMORY: the server's doing, not ours */
        if (sl->in_head || names_header(detail)) {
            itd_error_set(e, ITD_ERR_DECODE, "", "response header too large (libcurl's limit is 100 KB a header, "
                          "300 KB in all; the request may have been sent)%s%s", sl->errbuf[0] ? ": " : "", sl->errbuf);
            e->status = (int)status;
        } else {
            itd_error_set(e, ITD_ERR_NOMEM, "", "out of memory (libcurl: %s)", detail);
        }
        break;
    case CURLE_URL_MALFORMAT:
        *sent = 0;
        itd_error_set(e, ITD_ERR_VALIDATION, "server_url", "%s", detail);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
        /* An unsupported scheme fails before anything is sent; after a
         * request went out the same code means a garbled status line
         * ("Received HTTP/0.9", "Unsupported HTTP version"). */
        if (rc == CURLE_UNSUPPORTED_PROTOCOL && reqsize <= 0) {
            *sent = 0;
            itd_error_set(e, ITD_ERR_VALIDATION, "server_url", "%s", detail);
        } else {
            *sent = 1;
            e->retryable = 1; /* for idempotent operations only: the request may have been sent */
            itd_error_set(e, ITD_ERR_CONNECTION, "", "invalid HTTP response (the request may have been sent): %s", detail);
        }
        break;
    default:
        itd_error_set(e, ITD_ERR_CONNECTION, "", "%s", detail);
        break;
    }
}

static int make_created(const char *id, itd_result *out, itd_error *e)
{
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddStringToObject(t, "id", id) || !cJSON_AddStringToObject(t, "message", "created")) {
        cJSON_Delete(t);
        return itd_error_set(e, ITD_ERR_NOMEM, "", "out of memory");
    }
    void *o = itd_decode_take(&itd_CreateJob, t, NULL, e);
    if (!o) return -1;
    out->op = ITD_OP_JOBS_CREATE;
    out->schema = &itd_CreateJob;
    out->obj = o;
    return 0;
}

static void move_error(itd_error *dst, itd_error *src)
{
    if (!dst) { itd_error_clear(src); return; }
    itd_error_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
    src->retry_after = -1;
}

/* Finish the call with error `e` (moved). */
static int xfer_fail(xfer *x, itd_error *e)
{
    e->attempts = x->total;
    itd_scrub_error(e, &x->sec); /* defence in depth: a server may echo what it got */
    move_error(x->err, e);
    x->state = X_DONE;
    xfer_release_request(x);
    return R_DONE;
}

/* Start the reconciliation GET of a create that met 409. */
static int xfer_reconcile(xfer *x, itd_error *e)
{
    if (!x->conflict && !(x->conflict = calloc(1, sizeof *x->conflict))) return xfer_fail(x, e);
    move_error(x->conflict, e);
    xfer_release_request(x);
    itd_call_args a;
    memset(&a, 0, sizeof a);
    a.project = x->call->args.project;
    a.job_id = x->call->args.input->id;
    x->op = ITD_OP_JOBS_GET;
    x->reconciling = 1;
    x->attempt = 0;
    itd_error pe;
    memset(&pe, 0, sizeof pe);
    pe.retry_after = -1;
    if (xfer_prepare(x, &a, &pe)) {
        itd_error_clear(&pe);
        move_error(&pe, x->conflict);
        return xfer_fail(x, &pe);
    }
    return R_AGAIN;
}

/* An attempt ended with `rc`.  R_DONE (result or error stored), R_RETRY
 * (x->wake set) or R_AGAIN (start the next request now). */
static int xfer_complete(xfer *x, CURLcode rc)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    int sent = 1;
    long status = 0;
    itd_result r;
    memset(&r, 0, sizeof r);
    int ok;
    double now = mono_now();
    if (rc != CURLE_OK) {
        curl_failure(x, rc, &e, &sent);
        ok = 0;
    } else {
        char *ct = NULL;
        slot *sl = x->sl;
        curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(sl->easy, CURLINFO_CONTENT_TYPE, &ct);
        itd_response resp = { status, ct, sl->have_ra ? sl->retry_after : NULL, sl->buf ? sl->buf : "", sl->len };
        ok = itd_response_parse(x->op, &resp, &r, &e) == 0;
    }
    /* before anyone sees it, the hook included */
    if (!ok) itd_scrub_error(&e, &x->sec);
    x->state = X_IDLE;
    hook(x, "response", status, now - x->attempt_t0, ok ? NULL : &e);
    if (ok) {
        if (x->reconciling) {
            int same = itd_job_matches_input(r.obj, x->call->args.input);
            itd_result_free(&r);
            if (same) {
                if (make_created(x->call->args.input->id, x->res, &e)) return xfer_fail(x, &e);
                x->state = X_DONE;
                xfer_release_request(x);
                return R_DONE;
            }
            move_error(&e, x->conflict);
            return xfer_fail(x, &e);
        }
        if (x->res) *x->res = r;
        else itd_result_free(&r);
        x->state = X_DONE;
        xfer_release_request(x);
        return R_DONE;
    }
    if (x->op == ITD_OP_JOBS_CREATE && !x->reconciling && e.kind == ITD_ERR_CONFLICT && x->sent_before)
        return xfer_reconcile(x, &e);
    if (sent) x->sent_before = 1;
    double delay = 0;
    if (itd_retry_decide(x->pol, x->op, x->attempt, &e, sent, rnd01(x->c), &delay)) {
        if (!isfinite(x->deadline) || now + delay < x->deadline) {
            hook(x, "retry", status, delay, &e);
            itd_error_clear(&e);
            x->wake = now + delay;
            x->state = X_WAITING;
            return R_RETRY;
        }
    }
    if (x->reconciling) {
        /* could not fetch the job: report the conflict, saying why */
        char why[ITD_MSG_MAX];
        itd_error_format(&e, why, sizeof why);
        itd_error_clear(&e);
        move_error(&e, x->conflict);
        size_t ml = strlen(e.message);
        snprintf(e.message + ml, sizeof e.message - ml, " (could not verify the existing job: %s)", why);
    }
    return xfer_fail(x, &e);
}

static int xfer_begin(itd_client *c, xfer *x, const itd_call *call, itd_result *res, itd_error *err)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->call = call;
    x->pol = call->retry ? call->retry : &c->retry;
    x->op = call->op;
    x->res = res;
    x->err = err;
    x->state = X_IDLE;
    if (res) memset(res, 0, sizeof *res);
    if (err) itd_error_clear(err);
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    /* borrowed from the client and the call, which outlive the transfer */
    int serr = itd_secrets_add_call(&x->sec, &c->cfg, &call->args, 0);
    for (size_t i = 0; !serr && i < c->nextra; i++) {
        const char *colon = strchr(c->extra[i], ':'); /* validated in itd_client_new */
        serr = itd_secrets_add_header(&x->sec, c->extra[i], (size_t)(colon - c->extra[i]), colon + 1, 0);
    }
    if (serr) {
        itd_error_set(&e, ITD_ERR_NOMEM, "", "out of memory");
        return xfer_fail(x, &e);
    }
    if (xfer_prepare(x, &call->args, &e)) return xfer_fail(x, &e);
    return R_AGAIN;
}

/* ------------------------------------------------------------------- call */

int itd_client_call(itd_client *c, const itd_call *call, itd_result *out, itd_error *err)
{
    if (out) memset(out, 0, sizeof *out);
    if (err) itd_error_clear(err);
    if (!c || !call) return itd_error_set(err, ITD_ERR_USAGE, "", "itd_client_call: no client or call");
    itd_error le;
    memset(&le, 0, sizeof le);
    le.retry_after = -1;
    xfer x;
    int r = xfer_begin(c, &x, call, out, &le);
    while (r != R_DONE) {
        if (r == R_RETRY) sleep_seconds(x.wake - mono_now());
        itd_error e;
        memset(&e, 0, sizeof e);
        e.retry_after = -1;
        if (xfer_setup(&x, c->main, &e)) { r = xfer_fail(&x, &e); break; }
        CURLcode rc = curl_easy_perform(c->main->easy);
        r = xfer_complete(&x, rc);
    }
    xfer_cleanup(&x);
    if (le.kind == ITD_ERR_NONE) return 0;
    move_error(err, &le);
    return -1;
}

/* ------------------------------------------------------------------ batch */

static slot *pool_get(itd_client *c)
{
    if (c->npool) return c->pool[--c->npool];
    return slot_new();
}

static void pool_put(itd_client *c, slot *e)
{
    if (!e) return;
    if (e->cap > 256 * 1024) { free(e->buf); e->buf = NULL; e->cap = e->len = 0; } /* keep idle memory small */
    if (c->npool == c->cappool) {
        size_t cap = c->cappool ? c->cappool * 2 : 16;
        slot **p = realloc(c->pool, cap * sizeof *p);
        if (!p) { slot_free(e); return; }
        c->pool = p;
        c->cappool = cap;
    }
    c->pool[c->npool++] = e;
}

size_t itd_client_batch(itd_client *c, const itd_call *calls, size_t n, size_t max_in_flight,
                        itd_result *results, itd_error *errs)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (results) memset(&results[i], 0, sizeof results[i]);
        if (errs) itd_error_clear(&errs[i]);
    }
    if (!c || !calls) {
        for (size_t i = 0; errs && i < n; i++) itd_error_set(&errs[i], ITD_ERR_USAGE, "", "itd_client_batch: no client or calls");
        return n;
    }
    if (max_in_flight < 1) max_in_flight = 1;
    if (max_in_flight > ITD_MAX_IN_FLIGHT) max_in_flight = ITD_MAX_IN_FLIGHT;
    /* results/errs are required to tell outcomes apart; use scratch if absent */
    itd_error *scratch = NULL;
    if (!errs) {
        scratch = calloc(n, sizeof *scratch);
        if (!scratch) return n;
        errs = scratch;
    }
    xfer *xs = calloc(n, sizeof *xs);
    size_t *waiting = calloc(n, sizeof *waiting);
    if (!xs || !waiting || (!c->multi && !(c->multi = curl_multi_init()))) {
        free(xs);
        free(waiting);
        for (size_t i = 0; i < n; i++) itd_error_set(&errs[i], ITD_ERR_NOMEM, "", "out of memory");
        free(scratch);
        return n;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_in_flight);
    size_t next = 0, done = 0, active = 0, nwait = 0;
    while (done < n) {
        double now = mono_now();
        /* wake retries whose delay has passed, then start new calls */
        for (size_t k = 0; k < nwait && active < max_in_flight;) {
            xfer *x = &xs[waiting[k]];
            if (x->wake > now) { k++; continue; }
            waiting[k] = waiting[--nwait];
            itd_error e;
            memset(&e, 0, sizeof e);
            e.retry_after = -1;
            slot *h = pool_get(c);
            if (!h) { itd_error_set(&e, ITD_ERR_NOMEM, "", "out of memory"); xfer_fail(x, &e); done++; continue; }
            if (xfer_setup(x, h, &e)) { pool_put(c, h); xfer_fail(x, &e); done++; continue; }
            curl_multi_add_handle(c->multi, h->easy);
            active++;
        }
        while (next < n && active < max_in_flight) {
            xfer *x = &xs[next];
            int r = xfer_begin(c, x, &calls[next], results ? &results[next] : NULL, &errs[next]);
            next++;
            if (r == R_DONE) { done++; continue; }
            itd_error e;
            memset(&e, 0, sizeof e);
            e.retry_after = -1;
            slot *h = pool_get(c);
            if (!h) { itd_error_set(&e, ITD_ERR_NOMEM, "", "out of memory"); xfer_fail(x, &e); done++; continue; }
            if (xfer_setup(x, h, &e)) { pool_put(c, h); xfer_fail(x, &e); done++; continue; }
            curl_multi_add_handle(c->multi, h->easy);
            active++;
        }
        if (done >= n) break;
        if (active == 0) {
            /* only waiting retries: sleep until the first is due */
            double first = INFINITY;
            for (size_t k = 0; k < nwait; k++)
                if (xs[waiting[k]].wake < first) first = xs[waiting[k]].wake;
            if (isfinite(first)) sleep_seconds(first - mono_now());
            continue;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        (void)mc;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURLcode rc = msg->data.result;
            xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_multi_remove_handle(c->multi, msg->easy_handle);
            slot *h = x->sl;
            active--;
            int r = xfer_complete(x, rc);
            if (r == R_AGAIN) {
                itd_error e;
                memset(&e, 0, sizeof e);
                e.retry_after = -1;
                if (xfer_setup(x, h, &e)) { pool_put(c, h); xfer_fail(x, &e); done++; continue; }
                curl_multi_add_handle(c->multi, h->easy);
                active++;
                continue;
            }
            pool_put(c, h);
            if (r == R_DONE) done++;
            else waiting[nwait++] = (size_t)(x - xs);
        }
        if (done >= n) break;
        if (active == 0) continue;
        long tmo = 1000;
        now = mono_now();
        for (size_t k = 0; k < nwait; k++) {
            long w = (long)((xs[waiting[k]].wake - now) * 1000.0) + 1;
            if (w < tmo) tmo = w < 0 ? 0 : w;
        }
        curl_multi_poll(c->multi, NULL, 0, (int)tmo, NULL);
    }
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        xfer_cleanup(&xs[i]);
        if (errs[i].kind != ITD_ERR_NONE) failed++;
    }
    free(xs);
    free(waiting);
    if (scratch) {
        for (size_t i = 0; i < n; i++) itd_error_clear(&scratch[i]);
        free(scratch);
    }
    return failed;
}
