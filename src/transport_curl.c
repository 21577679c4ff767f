/*
 * transport_curl.c - the libcurl transport: moves the bytes of the requests
 * the call machine (call.c) asks for and feeds it what came back.  Every
 * rule of a call (attempts, deadline, backoff, Retry-After, never-duplicate,
 * reconciliation, scrubbing, events) is the machine's; this file only maps
 * libcurl's outcomes to a response or a failure.
 *
 *  - call(): one easy handle per client, reused (keep-alive connections).
 *  - batch(): a multi handle; easy handles from a pool of max_in_flight; all
 *    handles of a client share DNS and TLS sessions (CURLSH), not the
 *    connection cache: the sequential handle and the multi keep their own.
 *    With a shared cache, libcurl 7.88 left the transfers of an HTTP/2 batch
 *    that wait to multiplex (CURLOPT_PIPEWAIT) waiting long after the
 *    connection was ready (bench/client: 4-7k req/s instead of 19-26k).
 *  - Every attempt: CURLOPT_TIMEOUT_MS from step.timeout (the per-attempt
 *    timeout bounded by the deadline), CURLOPT_CONNECTTIMEOUT_MS the client's
 *    bounded by it too.  Redirects are not followed (the key would travel).
 *  - step.fresh (create, trigger): CURLOPT_FRESH_CONNECT, since libcurl
 *    re-sends a request on its own when a reused connection dies before the
 *    answer starts, which would duplicate them.
 *  - "sent" (the request may have reached the server) is 0 only for DNS and
 *    connect failures, TLS handshake failures and timeouts before any byte of
 *    the request was written (CURLINFO_REQUEST_SIZE == 0); otherwise 1.
 *  - Callbacks never print, raise or call out; the machine's events go to the
 *    hook between steps, never from inside libcurl.  Response headers are
 *    collected only when there is a hook (the events show them).
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
#include <curl/curl.h>
#include "transport.h"
#include "buf.h"
#include "call.h"
#include "protocol.h"

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
    itd_buf body;              /* response body */
    int too_big;
    char retry_after[96];
    int have_ra;
    int in_head;               /* a status line was read, the header block not ended */
    int configured;            /* the options every attempt shares are set */
    int want_headers;          /* collect every response header (for hook events) */
    itd_buf hdr;               /* "name\0value\0" pairs of the last response */
    size_t nh;
    itd_header *hv;            /* views into hdr, built when fed */
    size_t hvcap;
    char errbuf[CURL_ERROR_SIZE];
    char msg[CURL_ERROR_SIZE + 200];
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
    itd_buf_free(&s->body);
    itd_buf_free(&s->hdr);
    free(s->hv);
    free(s);
}

struct itd_client {
    char *server_url, *workspace_id, *api_key, *user_agent, *ca_file;
    itd_config cfg;
    long connect_timeout_ms, timeout_ms, deadline_ms;
    itd_retry_policy retry;
    char **extra;             /* "Name: value", validated, NULL-terminated */
    size_t nextra;
    int insecure;
    int http2;                /* CURL_HTTP_VERSION_2TLS, else 1.1 */
    int pipewait;             /* batch: wait to multiplex on a connection (h2 over TLS) */
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
    itd_rng rng;
};

void itd_client_opts_default(itd_client_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    o->deadline_ms = 120000;
    o->http2 = 1;
    itd_retry_policy_default(&o->retry);
}

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

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
    c->http2 = o->http2 != 0;
    /* HTTP/2 is only negotiated over TLS (ALPN): over plain http a batch's
     * handles must not wait for a connection that can never multiplex */
    c->pipewait = c->http2 && strncasecmp(c->server_url, "https://", 8) == 0;
    c->hook = o->hook;
    c->hook_ud = o->hook_ud;
    size_t n = 0;
    while (o->extra_headers && o->extra_headers[n]) n++;
    if (!(c->extra = calloc(n + 1, sizeof *c->extra))) goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *h = o->extra_headers[i];
        if (itd_header_line_check(h, err)) {
            if (strncmp(err->message, "not a valid", 11) == 0) {
                size_t ml = strlen(err->message);
                snprintf(err->message + ml, sizeof err->message - ml, " (#%zu)", i + 1);
            }
            itd_client_free(c);
            return NULL;
        }
        if (!(c->extra[i] = strdup(h))) goto nomem;
        c->nextra++;
    }
    itd_rng_seed(&c->rng, itd_rng_auto_seed() ^ (uint64_t)(uintptr_t)c);
    c->share = curl_share_init();
    c->main = slot_new();
    if (!c->share || !c->main) goto nomem;
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return c;
nomem:
    itd_client_free(c);
    itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
    return NULL;
}

/* ------------------------------------------------------------- callbacks */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    slot *x = ud;
    size_t n = size * nmemb;
    if (x->body.n + n > ITD_RESPONSE_MAX) { x->too_big = 1; return 0; }
    return itd_buf_put(&x->body, p, n) ? 0 : n;
}

/* Keep one "Name: value" line as "name\0value\0" (events only). */
static void keep_header(slot *x, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || x->hdr.oom) return;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) { v++; vl--; }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    if (itd_buf_reserve(&x->hdr, nl + vl + 2)) return;
    itd_buf_put(&x->hdr, p, nl);
    itd_buf_putc(&x->hdr, 0);
    itd_buf_put(&x->hdr, v, vl);
    itd_buf_putc(&x->hdr, 0);
    x->nh++;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    slot *x = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response */
        x->have_ra = 0;
        x->in_head = 1;
        itd_buf_clear(&x->hdr);
        x->nh = 0;
        return n;
    }
    if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) { x->in_head = 0; return n; }
    if (x->want_headers) keep_header(x, p, n);
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

/* ------------------------------------------------------------- headers */

static int slist_add(struct curl_slist **l, const char *s)
{
    struct curl_slist *n = curl_slist_append(*l, s);
    if (!n) return -1;
    *l = n;
    return 0;
}

/* The curl header list for request `q` (the machine merged the extra
 * headers in): its lines, "\n"-separated, name the list; a cached list with
 * the same lines is shared (never freed before the client), otherwise a new
 * one is built and cached, or owned by the caller (*own = 1) once the cache
 * is full.  NULL on OOM. */
static struct curl_slist *headers_for(itd_client *c, const itd_request *q, int *own)
{
    char stack[1024];
    itd_buf b;
    itd_buf_init_with(&b, stack, sizeof stack, 1); /* it holds the key: wiped */
    struct curl_slist *out = NULL;
    *own = 0;
    for (size_t i = 0; i < q->nheaders; i++) {
        const itd_header *h = &q->headers[i];
        itd_buf_puts(&b, h->name);
        itd_buf_put(&b, ": ", 2);
        itd_buf_puts(&b, h->value);
        itd_buf_putc(&b, '\n');
    }
    /* no "Expect: 100-continue" before a body; a request without one never
     * gets it, and each header in the list costs libcurl a scan per request */
    if (q->body) itd_buf_puts(&b, "Expect:\n");
    /* a body-less POST: no libcurl default form content type (§1.4) */
    if (!q->body && strcmp(q->method, "POST") == 0) itd_buf_puts(&b, "Content-Type:\n");
    if (b.oom) goto out;
    char *sig = b.p;
    for (size_t i = 0; i < c->nhc; i++)
        if (strcmp(c->hc[i].sig, sig) == 0) { out = c->hc[i].list; goto out; }
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
    } else {
        *own = 1;
    }
    out = l;
out:
    itd_buf_free(&b);
    return out;
}

/* ------------------------------------------------------------------- xfer */

/* One call: its machine and, while an attempt runs, its easy handle. */
typedef struct xfer {
    itd_client *c;
    itd_call_m *m;
    slot *sl;
    struct curl_slist *hdrs;
    int own_hdrs;
    double wake;
    itd_hook_fn hook;          /* the call's, else the client's; NULL: none */
    void *hook_ud;
    itd_result *res;
    itd_error *err;            /* the outcome goes here (a single call), */
    itd_error **errp;          /* or boxed here when the call failed (a batch) */
} xfer;

static void xfer_drop_headers(xfer *x)
{
    if (x->own_hdrs) {
        for (struct curl_slist *l = x->hdrs; l; l = l->next) memset(l->data, 0, strlen(l->data));
        curl_slist_free_all(x->hdrs);
    }
    x->hdrs = NULL;
    x->own_hdrs = 0;
}

static void hooks(xfer *x)
{
    const itd_event *ev;
    while ((ev = itd_call_event(x->m)) != NULL)
        if (x->hook) x->hook(x->hook_ud, ev);
}

static double ms_to_s(long ms, long client_ms)
{
    long v = ms > 0 ? ms : ms < 0 ? 0 : client_ms;
    return v / 1000.0;
}

/* Create the machine of `call`.  0, or -1 with *x->err set (nothing sent). */
static int xfer_begin(itd_client *c, xfer *x, const itd_call *call, itd_result *res, itd_error *err)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->res = res;
    x->err = err;
    x->hook = call->hook ? call->hook : c->hook;
    x->hook_ud = call->hook ? call->hook_ud : c->hook_ud;
    itd_call_policy pol;
    memset(&pol, 0, sizeof pol);
    pol.timeout = ms_to_s(call->timeout_ms, c->timeout_ms);
    pol.deadline = ms_to_s(call->deadline_ms, c->deadline_ms);
    pol.retry = call->retry ? *call->retry : c->retry;
    pol.quiet = x->hook == NULL;
    const char **merged = NULL;
    pol.extra_headers = (const char *const *)c->extra;
    if (call->extra_headers && call->extra_headers[0]) {
        size_t n = 0;
        while (call->extra_headers[n]) n++;
        if (!(merged = malloc((c->nextra + n + 1) * sizeof *merged)))
            return itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
        memcpy(merged, c->extra, c->nextra * sizeof *merged);
        memcpy(merged + c->nextra, call->extra_headers, (n + 1) * sizeof *merged);
        pol.extra_headers = merged;
    }
    x->m = itd_call_new(&c->cfg, call->op, &call->args, &pol, itd_rng_next(&c->rng), mono_now(), err);
    free(merged);
    return x->m ? 0 : -1;
}

/* Configure `sl` for the SEND step `st`. */
static int xfer_setup(xfer *x, slot *sl, const itd_step *st)
{
    itd_client *c = x->c;
    const itd_request *q = st->request;
    xfer_drop_headers(x);
    if (!(x->hdrs = headers_for(c, q, &x->own_hdrs))) return -1;
    long to = 0;
    if (st->timeout > 0) {
        to = (long)(st->timeout * 1000.0);
        if (to < 1) to = 1;
    }
    long cto = c->connect_timeout_ms;
    if (to > 0 && (cto == 0 || to < cto)) cto = to;

    x->sl = sl;
    itd_buf_clear(&sl->body);
    sl->too_big = 0;
    sl->have_ra = 0;
    sl->in_head = 0;
    itd_buf_clear(&sl->hdr);
    sl->nh = 0;
    sl->want_headers = x->hook != NULL;
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
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                         c->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
        /* a batch's transfers share one HTTP/2 connection rather than each
         * opening its own before the first handshake said it multiplexes */
        if (c->pipewait) curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
        sl->configured = 1;
    }
    /* what differs between attempts: every one of these is set each time,
     * so nothing of an earlier request (method, body, fresh connection)
     * carries over */
    curl_easy_setopt(easy, CURLOPT_URL, q->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, cto);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, to);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, st->fresh ? 1L : 0L);
    const char *m = q->method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0) {
        /* drop an earlier request's body pointer (it is freed), then GET;
         * setting POSTFIELDS selects POST, so HTTPGET comes after it */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m[0] == 'D' ? "DELETE" : NULL);
    } else {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") != 0 ? m : NULL);
    }
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

/* What a libcurl failure was, for the machine.  What the server's answer
 * causes is CONNECTION or DECODE, never VALIDATION (nothing sent) or NOMEM
 * (kept for a failed allocation in this process). */
static void curl_failure(slot *sl, CURLcode rc, itd_failure *f)
{
    const char *what = curl_easy_strerror(rc);
    const char *detail = sl->errbuf[0] ? sl->errbuf : what;
    curl_off_t reqsize = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_REQUEST_SIZE, &reqsize);
    long status = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
    char *msg = sl->msg;
    size_t ml = sizeof sl->msg;
    memset(f, 0, sizeof *f);
    f->kind = ITD_ERR_CONNECTION;
    f->sent = 1;
    f->message = msg;
    snprintf(msg, ml, "%s", detail);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        f->sent = 0;
        f->retryable = 1;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        f->sent = 0;
        snprintf(msg, ml, "TLS: %s", detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        f->kind = ITD_ERR_TIMEOUT;
        f->sent = reqsize > 0;
        f->retryable = 1; /* unless it was the deadline: the machine knows */
        break;
    case CURLE_RECV_ERROR:
        if (sl->in_head && names_header(detail)) { /* "Too large response headers" (libcurl < 8.6) */
            f->kind = ITD_ERR_DECODE;
            f->status = status;
            snprintf(msg, ml, "response header too large (libcurl's limit is 100 KB a header, "
                     "300 KB in all; the request may have been sent): %s", detail);
            break;
        }
        /* fall through */
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        f->retryable = 1;
        break;
    case CURLE_WRITE_ERROR:
        if (sl->too_big) {
            f->kind = ITD_ERR_DECODE;
            f->status = status;
            snprintf(msg, ml, "response body larger than %u bytes", (unsigned)ITD_RESPONSE_MAX);
        } else {
            f->kind = ITD_ERR_NOMEM;
            snprintf(msg, ml, "out of memory receiving the response");
        }
        break;
    case CURLE_OUT_OF_MEMORY:
#if LIBCURL_VERSION_NUM >= 0x080600
    case CURLE_TOO_LARGE:
#endif
        /* libcurl before 8.6 answers a header line over 100 KB with
         * CURLE_OUT_OF_MEMORY: the server's doing, not ours */
        if (sl->in_head || names_header(detail)) {
            f->kind = ITD_ERR_DECODE;
            f->status = status;
            snprintf(msg, ml, "response header too large (libcurl's limit is 100 KB a header, "
                     "300 KB in all; the request may have been sent)%s%s", sl->errbuf[0] ? ": " : "", sl->errbuf);
        } else {
            f->kind = ITD_ERR_NOMEM;
            snprintf(msg, ml, "out of memory (libcurl: %s)", detail);
        }
        break;
    case CURLE_URL_MALFORMAT:
        f->kind = ITD_ERR_VALIDATION;
        f->sent = 0;
        f->path = "server_url";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
        /* An unsupported scheme fails before anything is sent; after a
         * request went out the same code means a garbled status line
         * ("Received HTTP/0.9", "Unsupported HTTP version"). */
        if (rc == CURLE_UNSUPPORTED_PROTOCOL && reqsize <= 0) {
            f->kind = ITD_ERR_VALIDATION;
            f->sent = 0;
            f->path = "server_url";
        } else {
            f->retryable = 1; /* for idempotent operations only: the request may have been sent */
            snprintf(msg, ml, "invalid HTTP response (the request may have been sent): %s", detail);
        }
        break;
    default:
        break;
    }
}

/* Feed the machine the outcome `rc` of the attempt on x->sl. */
static void xfer_feed(xfer *x, CURLcode rc)
{
    slot *sl = x->sl;
    double now = mono_now();
    if (rc != CURLE_OK) {
        itd_failure f;
        curl_failure(sl, rc, &f);
        itd_call_feed_failure(x->m, now, &f);
        return;
    }
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(sl->easy, CURLINFO_CONTENT_TYPE, &ct);
    itd_response_in r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.content_type = ct;
    r.retry_after = sl->have_ra ? sl->retry_after : NULL;
    r.body = sl->body.p ? sl->body.p : "";
    r.body_len = sl->body.n;
    if (sl->want_headers && sl->nh) {
        if (sl->nh > sl->hvcap) {
            itd_header *hv = realloc(sl->hv, sl->nh * sizeof *hv);
            if (hv) { sl->hv = hv; sl->hvcap = sl->nh; }
        }
        if (sl->nh <= sl->hvcap) {
            char *p = sl->hdr.p;
            for (size_t i = 0; i < sl->nh; i++) {
                sl->hv[i].name = p;
                p += strlen(p) + 1;
                sl->hv[i].value = p;
                p += strlen(p) + 1;
            }
            r.headers = sl->hv;
            r.nheaders = sl->nh;
        }
    }
    itd_call_feed_response(x->m, now, &r);
}

/* The attempt could not start (no header list, no handle). */
static void feed_nomem(xfer *x)
{
    itd_failure f;
    memset(&f, 0, sizeof f);
    f.kind = ITD_ERR_NOMEM;
    f.message = "out of memory preparing the transfer";
    itd_call_feed_failure(x->m, mono_now(), &f);
}

/* Hand the machine's result to the caller and drop it. */
static void xfer_end(xfer *x)
{
    xfer_drop_headers(x);
    if (x->m) {
        hooks(x);
        itd_error le;
        memset(&le, 0, sizeof le);
        le.retry_after = -1;
        itd_result r;
        if (itd_call_result(x->m, &r, &le) == 0) {
            if (x->res) *x->res = r;
            else itd_result_free(&r);
        }
        if (x->err) {
            itd_error_clear(x->err);
            *x->err = le;
        } else if (x->errp && le.kind != ITD_ERR_NONE) {
            *x->errp = itd_error_box(&le);
        } else {
            itd_error_clear(&le);
        }
    }
    itd_call_free(x->m);
    x->m = NULL;
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
    if (xfer_begin(c, &x, call, out, &le)) {
        if (err) *err = le;
        else itd_error_clear(&le);
        return -1;
    }
    for (;;) {
        itd_step st;
        itd_step_kind k = itd_call_next(x.m, mono_now(), &st);
        hooks(&x);
        if (k == ITD_STEP_DONE) break;
        if (k == ITD_STEP_WAIT) { sleep_seconds(st.delay); continue; }
        if (xfer_setup(&x, c->main, &st)) feed_nomem(&x);
        else xfer_feed(&x, curl_easy_perform(c->main->easy));
        hooks(&x);
    }
    xfer_end(&x);
    if (le.kind == ITD_ERR_NONE) return 0;
    if (err) *err = le;
    else itd_error_clear(&le);
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
    if (e->body.cap > 256 * 1024) itd_buf_free(&e->body); /* keep idle memory small */
    if (c->npool == c->cappool) {
        size_t cap = c->cappool ? c->cappool * 2 : 16;
        slot **p = realloc(c->pool, cap * sizeof *p);
        if (!p) { slot_free(e); return; }
        c->pool = p;
        c->cappool = cap;
    }
    c->pool[c->npool++] = e;
}

enum { B_SENT, B_WAIT, B_DONE };

/* Run x's machine until it sends (handle `h` added to the multi), waits or
 * is done.  `h` is the handle x may use (NULL: take one from the pool). */
static int batch_advance(itd_client *c, xfer *x, slot *h)
{
    for (;;) {
        itd_step st;
        double now = mono_now();
        itd_step_kind k = itd_call_next(x->m, now, &st);
        hooks(x);
        if (k == ITD_STEP_DONE) break;
        if (k == ITD_STEP_WAIT) {
            x->wake = now + st.delay;
            if (h) pool_put(c, h);
            return B_WAIT;
        }
        if (!h) h = pool_get(c);
        /* the attempt starts, or the machine hears why it could not */
        if (h && xfer_setup(x, h, &st) == 0 && curl_multi_add_handle(c->multi, h->easy) == CURLM_OK)
            return B_SENT;
        feed_nomem(x);
        hooks(x);
    }
    if (h) pool_put(c, h);
    xfer_end(x);
    return B_DONE;
}

/* The same error for each of n calls that never started. */
static void fail_all(itd_error **errs, size_t n, itd_err_kind kind, const char *msg)
{
    itd_error e = ITD_ERROR_INIT;
    for (size_t i = 0; i < n; i++) {
        itd_error_set(&e, kind, "", "%s", msg);
        errs[i] = itd_error_box(&e);
    }
}

size_t itd_client_batch(itd_client *c, const itd_call *calls, size_t n, size_t max_in_flight,
                        itd_result *results, itd_error **errs)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (results) memset(&results[i], 0, sizeof results[i]);
        if (errs) errs[i] = NULL;
    }
    if (!c || !calls) {
        if (errs) fail_all(errs, n, ITD_ERR_USAGE, "itd_client_batch: no client or calls");
        return n;
    }
    if (max_in_flight < 1) max_in_flight = 1;
    if (max_in_flight > ITD_MAX_IN_FLIGHT) max_in_flight = ITD_MAX_IN_FLIGHT;
    /* the outcomes are needed to count the failures: a scratch array of
     * pointers when the caller gave none */
    itd_error **scratch = NULL;
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
        fail_all(errs, n, ITD_ERR_NOMEM, "out of memory");
        free(scratch);
        return n;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_in_flight);
    size_t next = 0, done = 0, active = 0, nwait = 0;
    int ended = 0; /* transfers the last curl_multi_perform ended */
    while (done < n) {
        double now = mono_now();
        size_t started = 0; /* transfers added to the multi in this round */
        /* wake retries whose delay has passed, then start new calls */
        for (size_t k = 0; k < nwait && active < max_in_flight;) {
            xfer *x = &xs[waiting[k]];
            if (x->wake > now) { k++; continue; }
            waiting[k] = waiting[--nwait];
            int r = batch_advance(c, x, NULL);
            if (r == B_SENT) active++, started++;
            else if (r == B_DONE) done++;
            else waiting[nwait++] = (size_t)(x - xs);
        }
        while (next < n && active < max_in_flight) {
            xfer *x = &xs[next];
            int r = B_DONE;
            itd_error be = ITD_ERROR_INIT;
            if (xfer_begin(c, x, &calls[next], results ? &results[next] : NULL, &be) == 0) {
                x->err = NULL; /* from here the outcome is boxed */
                x->errp = &errs[next];
                r = batch_advance(c, x, NULL);
            } else {
                errs[next] = itd_error_box(&be);
            }
            next++;
            if (r == B_SENT) active++, started++;
            else if (r == B_DONE) done++;
            else waiting[nwait++] = (size_t)(x - xs);
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
        /* Wait for the sockets after the round's new transfers are added, as
         * the bare libcurl loop does; and not at all when the last perform
         * ended transfers and none was added since.  libcurl 7.88 can leave
         * HTTP/2 streams whose data it has already read without a wake-up
         * (no socket event, its own timer 10 s away): waiting then cost the
         * whole poll timeout, often several times a batch (an HTTP/2 batch
         * of 10,000 took 1.4-5 s instead of 0.3 s in one run of two).  A
         * perform runs them. */
        if (!(ended && !started)) {
            long tmo = 1000;
            now = mono_now();
            for (size_t k = 0; k < nwait; k++) {
                long w = (long)((xs[waiting[k]].wake - now) * 1000.0) + 1;
                if (w < tmo) tmo = w < 0 ? 0 : w;
            }
            curl_multi_poll(c->multi, NULL, 0, (int)tmo, NULL);
        }
        ended = 0;
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        (void)mc;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            ended++;
            CURLcode rc = msg->data.result;
            xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_multi_remove_handle(c->multi, msg->easy_handle);
            active--;
            xfer_feed(x, rc);
            hooks(x);
            int r = batch_advance(c, x, x->sl); /* the next attempt may reuse the handle */
            if (r == B_SENT) active++;
            else if (r == B_DONE) done++;
            else waiting[nwait++] = (size_t)(x - xs);
        }
    }
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        xfer_end(&xs[i]);
        if (errs[i]) failed++;
    }
    free(xs);
    free(waiting);
    if (scratch) {
        for (size_t i = 0; i < n; i++) itd_error_free(scratch[i]);
        free(scratch);
    }
    return failed;
}

