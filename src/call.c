/*
 * call.c - the call machine (call.h): the whole life of one API call without
 * I/O, and every retry rule of the library.
 *
 * Decisions (reference §3, §7; README "Retries that never duplicate"):
 *  - Retries (itd_retry_decide): idempotent operations (list, get, update
 *    (PUT), delete, pause, resume, terminate, runs list/get) are retried on
 *    429/502/503/504, connection failures and timeouts.  Create and trigger
 *    are retried only when the server cannot have acted on them: the request
 *    provably never left (sent == 0: DNS or connect failure, connect timeout),
 *    a 429 (a rate limiter refuses before the request is processed), or a 503
 *    that carries Retry-After (deliberate load shedding / maintenance; a bare
 *    503 may come from a proxy whose upstream died mid-request).  Never on
 *    500/502/504 or a connection dropped after sending: those may have
 *    created the job or started the run.  A 500 is an application failure a
 *    retry is not expected to fix, so `retryable` is set for 429, 502, 503
 *    and 504 only (itd_status_retryable).
 *  - Delay before retry n (n = attempt of the phase, 1-based):
 *    min(max_delay, initial_delay * multiplier^(n-1)) * (1 - jitter + jitter * rnd),
 *    then raised to Retry-After when the server sent one (a floor: retrying
 *    sooner only meets another 429/503).  Retry-After is honoured up to
 *    max(max_delay, ITD_RETRY_AFTER_MAX = 120 s); a longer one ends the
 *    retries at once and the error (with retry_after) goes to the caller:
 *    without that ceiling `deadline = false` and "Retry-After: 99999999"
 *    slept for years.  A wait that would pass the deadline is not started:
 *    the call ends with the error of the last attempt.
 *  - The deadline runs from itd_call_new.  An attempt gets what is left of it
 *    (or the per-attempt timeout, whichever is less); a timeout at the
 *    deadline, or no time left for the next attempt, is kind timeout
 *    "deadline of N ms exceeded (...)", not retryable.
 *  - Create and trigger go out on fresh connections (step.fresh): a client
 *    that re-sends on a dead kept-alive connection by itself would duplicate
 *    them.
 *  - A create retried after an attempt that may have reached the server, then
 *    answered 409, is reconciled: the stored job is fetched (a GET with its own
 *    retries) and compared with the input (itd_job_matches_input).  The same
 *    job means the first attempt created it: success {id, message =
 *    "created"}.  Another job is the 409 conflict; a GET that fails is the
 *    conflict too, saying it could not be verified and why.
 *  - Every secret the call carried (API key, secret-like extra header
 *    values, the input's sink secrets) is scrubbed from errors and events
 *    before anyone sees them (scrub.c), whatever the server echoed.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "call.h"
#include "codec.h"
#include "ops.h"
#include "scrub.h"

/* ------------------------------------------------------------------- rng */

void itd_rng_seed(itd_rng *r, uint64_t seed)
{
    /* xorshift must not start at 0; mix the seed so near seeds diverge */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

uint64_t itd_rng_next(itd_rng *r)
{
    uint64_t x = r->s ? r->s : 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 2685821657736338717ULL;
}

double itd_rng_double(itd_rng *r) { return (double)(itd_rng_next(r) >> 11) / 9007199254740992.0; }

/* The jitter's seed, not a secret: the clock to the nanosecond, a stack
 * address (threads differ) and a static one (processes that do not share a
 * layout differ).  No getpid(): it is a system call, and the nginx
 * transport seeds a machine per call (strace showed one per request). */
uint64_t itd_rng_auto_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    static int here;
    int local = 0;
    return ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)&local << 20) ^
           (uint64_t)(uintptr_t)&here;
}

/* ---------------------------------------------------------- retry policy */

void itd_retry_policy_default(itd_retry_policy *p)
{
    if (!p) return;
    p->enabled = 1;
    p->max_attempts = 4;
    p->initial_delay = 0.5;
    p->max_delay = 30;
    p->multiplier = 2;
    p->jitter = 0.5;
}

int itd_status_retryable(long st) { return st == 429 || st == 502 || st == 503 || st == 504; }

int itd_retry_decide(const itd_retry_policy *p, itd_op op, int attempt,
                     const itd_error *err, int sent, double rnd, double *delay)
{
    if (delay) *delay = 0;
    if (!p || !p->enabled || !err || (int)op < 0 || op >= ITD_OP__COUNT) return 0;
    if (attempt < 1 || attempt >= p->max_attempts) return 0;
    int idem = itd_op_idempotent(op);
    int ok = 0;
    switch (err->kind) {
    case ITD_ERR_CONNECTION:
    case ITD_ERR_TIMEOUT:
        /* `retryable` is cleared for failures a retry cannot fix (TLS
         * verification, the overall deadline) */
        ok = err->retryable && (!sent || idem);
        break;
    case ITD_ERR_RATE_LIMITED:
        ok = 1; /* refused before processing: safe for every operation */
        break;
    case ITD_ERR_SERVER:
        if (err->status == 502 || err->status == 504) ok = idem;
        else if (err->status == 503) ok = idem || err->retry_after >= 0;
        break;
    default:
        ok = 0;
    }
    if (!ok) return 0;
    double init = p->initial_delay >= 0 && isfinite(p->initial_delay) ? p->initial_delay : 0.5;
    double maxd = p->max_delay >= 0 && isfinite(p->max_delay) ? p->max_delay : 30;
    /* a server asking for longer than the ceiling is not waited for (the
     * caller gets the error and its retry_after); NaN counts as absent */
    if (err->retry_after >= 0 && !(err->retry_after <= (maxd > ITD_RETRY_AFTER_MAX ? maxd : ITD_RETRY_AFTER_MAX)))
        return 0;
    double mult = p->multiplier >= 1 && isfinite(p->multiplier) ? p->multiplier : 1;
    double jit = p->jitter > 0 && isfinite(p->jitter) ? (p->jitter > 1 ? 1 : p->jitter) : 0;
    if (!(rnd >= 0 && rnd < 1)) rnd = 0.5;
    double d = init * pow(mult, attempt - 1);
    if (!(d <= maxd)) d = maxd;
    d *= 1 - jit + jit * rnd;
    if (err->retry_after >= 0 && err->retry_after > d) d = err->retry_after;
    if (d > ITD_RETRY_AFTER_CLAMP) d = ITD_RETRY_AFTER_CLAMP; /* a huge max_delay: keep the sleep castable */
    if (delay) *delay = d;
    return 1;
}

/* ---------------------------------------------------------- extra headers */

static int name_is(const char *h, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(h, name, n) == 0;
}

/* Length of the token name before ':', or 0 when `h` is not "Name: value". */
static size_t header_name_len(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strpbrk(h, "\r\n")) return 0;
    for (const char *p = h; p < colon; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch)) return 0;
    }
    return (size_t)(colon - h);
}

int itd_header_line_check(const char *h, itd_error *err)
{
    size_t nl = h ? header_name_len(h) : 0;
    if (!nl) return itd_error_set(err, ITD_ERR_VALIDATION, "headers", "not a valid \"Name: value\" header line");
    if (name_is(h, nl, "x-api-key") || name_is(h, nl, "content-type") || name_is(h, nl, "content-length") ||
        name_is(h, nl, "host") || name_is(h, nl, "transfer-encoding"))
        return itd_error_set(err, ITD_ERR_VALIDATION, "headers", "header %.*s cannot be overridden", (int)nl, h);
    return 0;
}

/* ------------------------------------------------------------ the machine */

enum { S_READY, S_SENT, S_WAIT, S_RECONCILE, S_DONE };
#define ITD_CALL_EVS 3 /* the most one call into the machine queues: response, retry; request */

typedef struct evslot {
    itd_event ev;
    itd_error err;             /* shallow copy */
    itd_header *rh;            /* response headers (owned) */
    size_t nrh;
    char *rbody;               /* owned */
} evslot;

struct itd_call_m {
    itd_config cfg;            /* strings in `blk` */
    itd_call_policy pol;       /* extra_headers: see extra */
    itd_op op;                 /* the call's operation */
    itd_op wire;               /* the operation on the wire (GET while reconciling) */
    const itd_call_args *args; /* borrowed */
    char **extra;              /* merged extra header lines, in `blk` */
    size_t nextra;
    char *blk;                 /* one block: extra[] then the strings */
    size_t blk_len;
    itd_secrets sec;
    itd_rng rng;
    double t0, deadline;       /* deadline: INFINITY when none */
    long deadline_ms;
    int state;
    double wake, attempt_t0;
    int attempt, total, sent_before, reconciling;
    itd_request req;           /* what goes on the wire */
    itd_request red;           /* its redacted copy for events (unless quiet) */
    int have_last;
    itd_error last;            /* the error of the last attempt (scrubbed) */
    itd_error conflict;        /* the 409 being reconciled */
    int failed;
    itd_result res;
    itd_error err;             /* the call's error when failed */
    evslot *evs;               /* ITD_CALL_EVS of them, unless quiet */
    int nev, evpos;
};

/* Spare machines per thread: a machine is over 3 KB, and a malloc of that
 * size makes glibc consolidate its fast bins every time, so calls reuse the
 * memory of ended ones (zeroed; nothing of those calls is kept): one after
 * another, and as many as a batch or an nginx worker has in flight, up to
 * SPARES (about 100 KB kept idle at most).  A pthread key, not __thread, so
 * that a thread's spares are freed when it ends. */
#define SPARES 32
typedef struct spares {
    int n;
    itd_call_m *m[SPARES];
} spares;
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int spare_ok;

static void spares_free(void *p)
{
    spares *s = p;
    for (int i = 0; i < s->n; i++) free(s->m[i]);
    free(s);
}

static void spare_init(void) { spare_ok = pthread_key_create(&spare_key, spares_free) == 0; }

static itd_call_m *machine_alloc(void)
{
    pthread_once(&spare_once, spare_init);
    spares *s = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (s && s->n) return s->m[--s->n]; /* zeroed when kept */
    return calloc(1, sizeof(itd_call_m));
}

static void machine_release(itd_call_m *m)
{
    memset(m, 0, sizeof *m);
    spares *s = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (spare_ok && !s && (s = calloc(1, sizeof *s)) && pthread_setspecific(spare_key, s) != 0) {
        free(s);
        s = NULL;
    }
    if (s && s->n < SPARES) {
        s->m[s->n++] = m;
        return;
    }
    free(m);
}

void itd_call_policy_default(itd_call_policy *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->timeout = 30;
    p->deadline = 120;
    itd_retry_policy_default(&p->retry);
}

static void err_init(itd_error *e)
{
    *e = (itd_error)ITD_ERROR_INIT;
}

static void move_error(itd_error *dst, itd_error *src)
{
    itd_error_clear(dst);
    *dst = *src;
    err_init(src);
}

static void events_clear(itd_call_m *m)
{
    for (int i = 0; i < m->nev; i++) {
        evslot *s = &m->evs[i];
        itd_headers_free(s->rh, s->nrh);
        free(s->rbody);
        memset(s, 0, sizeof *s);
    }
    m->nev = m->evpos = 0;
}

/* A new event of `kind` for the current attempt, or NULL (quiet). */
static evslot *event_new(itd_call_m *m, itd_event_kind kind)
{
    if (!m->evs || m->nev >= ITD_CALL_EVS) return NULL;
    evslot *s = &m->evs[m->nev++];
    memset(s, 0, sizeof *s);
    itd_event *e = &s->ev;
    e->kind = kind;
    e->attempt = m->total;
    e->op = itd_op_name(m->wire);
    e->method = m->red.method;
    e->url = m->red.url;
    e->path = m->red.path;
    e->headers = m->red.headers;
    e->nheaders = m->red.nheaders;
    e->body = m->red.body;
    e->body_len = m->red.body_len;
    return s;
}

static void event_error(evslot *s, const itd_error *err)
{
    if (!s || !err) return;
    s->err = *err;
    s->err.details = s->err.data = NULL;
    s->err.body = NULL;
    s->err.body_len = 0;
    s->ev.error = &s->err;
}

static void release_request(itd_call_m *m)
{
    itd_request_free(&m->req);
    itd_request_free(&m->red);
}

/* The redacted copy of m->req for events: secret headers "***", a create or
 * update body without its sink secrets (by key), none of the call's secrets
 * anywhere (by value). */
static int build_redacted(itd_call_m *m)
{
    itd_request *r = &m->red;
    r->method = m->req.method;
    r->expect_status = m->req.expect_status;
    r->url = strdup(m->req.url);
    r->path = strdup(m->req.path);
    if (!r->url || !r->path || itd_request_redacted_headers(&m->req, &r->headers, &r->nheaders)) return -1;
    const itd_op_def *d = itd_op_def_of(m->wire);
    const itd_arg_def *body = d && d->body ? itd_arg_find(d->body) : NULL;
    const void *obj = body ? itd_arg_obj(body, m->args) : NULL;
    if (obj) { /* the schema the request was encoded with (itd_request_build checked it) */
        cJSON *t = itd_to_cjson_redacted(itd_op_request(d, m->args->api_version), obj);
        r->body = t ? itd_json_print(t, NULL) : NULL;
        cJSON_Delete(t);
        if (!r->body) return -1;
        r->body_len = strlen(r->body);
    }
    itd_scrub(r->url, strlen(r->url), &m->sec);
    itd_scrub(r->path, strlen(r->path), &m->sec);
    if (r->body) r->body_len = itd_scrub(r->body, r->body_len, &m->sec);
    for (size_t i = 0; i < r->nheaders; i++) itd_scrub(r->headers[i].value, strlen(r->headers[i].value), &m->sec);
    return 0;
}

static int has_extra(const itd_call_m *m, const char *name)
{
    size_t nl = strlen(name);
    for (size_t j = 0; j < m->nextra; j++)
        if (strncasecmp(m->extra[j], name, nl) == 0 && m->extra[j][nl] == ':') return 1;
    return 0;
}

/* m->req for m->wire with `args`: the protocol's request, its headers that
 * an extra header replaces dropped, the extra headers appended. */
static int build_request(itd_call_m *m, const itd_call_args *args, itd_error *e)
{
    release_request(m);
    if (itd_request_build(&m->cfg, m->wire, args, &m->req, e)) return -1;
    if (m->nextra) {
        itd_request *q = &m->req;
        size_t w = 0;
        for (size_t i = 0; i < q->nheaders; i++) {
            if (strcasecmp(q->headers[i].name, "x-api-key") != 0 && has_extra(m, q->headers[i].name)) {
                free(q->headers[i].name);
                free(q->headers[i].value);
                continue;
            }
            q->headers[w++] = q->headers[i];
        }
        q->nheaders = w;
        itd_header *h = realloc(q->headers, (w + m->nextra) * sizeof *h);
        if (!h) goto nomem;
        q->headers = h;
        for (size_t j = 0; j < m->nextra; j++) {
            const char *line = m->extra[j], *colon = strchr(line, ':'), *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            char *name = strndup(line, (size_t)(colon - line)), *value = strdup(v);
            if (!name || !value) { free(name); free(value); goto nomem; }
            h[q->nheaders].name = name;
            h[q->nheaders].value = value;
            q->nheaders++;
        }
    }
    if (!m->pol.quiet && build_redacted(m)) goto nomem;
    return 0;
nomem:
    release_request(m);
    itd_error_clear(e);
    return itd_error_set(e, ITD_ERR_NOMEM, "", "out of memory preparing the request");
}

static char *put(char **p, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

itd_call_m *itd_call_new(const itd_config *cfg, itd_op op, const itd_call_args *args,
                         const itd_call_policy *pol, uint64_t seed, double now, itd_error *err)
{
    if (err) itd_error_clear(err);
    if (!cfg) {
        itd_error_set(err, ITD_ERR_USAGE, "", "itd_call_new: no config");
        return NULL;
    }
    itd_call_policy dp;
    if (!pol) { itd_call_policy_default(&dp); pol = &dp; }
    static const itd_call_args none;
    if (!args) args = &none;
    itd_error e;
    err_init(&e);
    size_t nx = 0, strs = 0;
    for (; pol->extra_headers && pol->extra_headers[nx]; nx++) {
        if (itd_header_line_check(pol->extra_headers[nx], &e)) {
            size_t ml = strlen(e.message);
            if (strncmp(e.message, "not a valid", 11) == 0)
                snprintf(e.message + ml, sizeof e.message - ml, " (#%zu)", nx + 1);
            if (err) move_error(err, &e);
            return NULL;
        }
        strs += strlen(pol->extra_headers[nx]) + 1;
    }
    const char *const cs[] = { cfg->server_url, cfg->workspace_id, cfg->api_key, cfg->user_agent };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) strs += cs[i] ? strlen(cs[i]) + 1 : 0;
    itd_call_m *m = machine_alloc();
    char *blk = m ? malloc(nx * sizeof(char *) + strs + 1) : NULL;
    if (!blk) {
        if (m) machine_release(m);
        itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    m->blk = blk;
    m->blk_len = nx * sizeof(char *) + strs + 1;
    m->extra = (char **)(void *)blk;
    char *p = blk + nx * sizeof(char *);
    m->cfg.server_url = put(&p, cfg->server_url);
    m->cfg.workspace_id = put(&p, cfg->workspace_id);
    m->cfg.api_key = put(&p, cfg->api_key);
    m->cfg.user_agent = put(&p, cfg->user_agent);
    /* a header named again later replaces the earlier one (client's, then call's) */
    for (size_t i = 0; i < nx; i++) {
        const char *h = pol->extra_headers[i];
        size_t nl = header_name_len(h);
        int later = 0;
        for (size_t j = i + 1; j < nx && !later; j++)
            later = header_name_len(pol->extra_headers[j]) == nl && strncasecmp(pol->extra_headers[j], h, nl) == 0;
        if (!later) m->extra[m->nextra++] = put(&p, h);
    }
    m->pol = *pol;
    m->pol.extra_headers = NULL;
    if (!pol->quiet && !(m->evs = calloc(ITD_CALL_EVS, sizeof *m->evs))) {
        itd_call_free(m); /* wipes the copied key */
        itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    m->op = m->wire = op;
    m->args = args;
    itd_rng_seed(&m->rng, seed);
    m->t0 = now;
    m->deadline = pol->deadline > 0 ? now + pol->deadline : INFINITY;
    m->deadline_ms = (long)(pol->deadline * 1000.0 + 0.5);
    m->state = S_READY;
    err_init(&m->last);
    err_init(&m->conflict);
    err_init(&m->err);
    /* the secrets point into the machine's copies and into `args` (which outlives it) */
    int serr = itd_secrets_add_call(&m->sec, &m->cfg, args, 0);
    for (size_t i = 0; !serr && i < m->nextra; i++) {
        const char *colon = strchr(m->extra[i], ':');
        serr = itd_secrets_add_header(&m->sec, m->extra[i], (size_t)(colon - m->extra[i]), colon + 1, 0);
    }
    if (serr) itd_error_set(&e, ITD_ERR_NOMEM, "", "out of memory");
    else if (!build_request(m, args, &e)) return m;
    itd_scrub_error(&e, &m->sec);
    if (err) move_error(err, &e);
    else itd_error_clear(&e);
    itd_call_free(m);
    return NULL;
}

void itd_call_free(itd_call_m *m)
{
    if (!m) return;
    events_clear(m);
    free(m->evs);
    release_request(m);
    itd_result_free(&m->res);
    itd_error_clear(&m->last);
    itd_error_clear(&m->conflict);
    itd_error_clear(&m->err);
    itd_secrets_free(&m->sec);
    /* the block holds the key */
    volatile char *b = m->blk;
    for (size_t i = 0; i < m->blk_len; i++) b[i] = 0;
    free(m->blk);
    machine_release(m);
}

/* End the call with error `e` (moved). */
static void finish_error(itd_call_m *m, itd_error *e)
{
    e->attempts = m->total;
    itd_scrub_error(e, &m->sec); /* defence in depth: a server may echo what it got */
    move_error(&m->err, e);
    m->failed = 1;
    m->state = S_DONE; /* the request stays: the last events point into it */
}

static void finish_result(itd_call_m *m, itd_result *r)
{
    m->res = *r;
    memset(r, 0, sizeof *r);
    m->failed = 0;
    m->state = S_DONE;
}

static void deadline_error(itd_call_m *m, const char *detail)
{
    itd_error e;
    err_init(&e);
    itd_error_set(&e, ITD_ERR_TIMEOUT, "", "deadline of %ld ms exceeded (%s)", m->deadline_ms, detail);
    finish_error(m, &e);
}

itd_step_kind itd_call_next(itd_call_m *m, double now, itd_step *step)
{
    memset(step, 0, sizeof *step);
    step->kind = ITD_STEP_DONE;
    if (!m) return ITD_STEP_DONE;
    events_clear(m);
    if (m->state == S_SENT) {
        /* misuse: a SEND step was not answered by a feed */
        itd_error e;
        err_init(&e);
        itd_error_set(&e, ITD_ERR_USAGE, "", "itd_call_next: the last request was not fed its outcome");
        finish_error(m, &e);
    }
    if (m->state == S_DONE) return ITD_STEP_DONE;
    if (m->state == S_WAIT) {
        if (now < m->wake) {
            step->kind = ITD_STEP_WAIT;
            step->delay = m->wake - now;
            return ITD_STEP_WAIT;
        }
        m->state = S_READY;
    }
    if (m->state == S_RECONCILE) {
        /* did the earlier attempt create it?  Fetch the job and compare. */
        itd_call_args a;
        memset(&a, 0, sizeof a);
        a.project = m->args->project;
        a.job_id = itd_input_id(m->args->input);
        m->wire = ITD_OP_JOBS_GET;
        m->reconciling = 1;
        m->attempt = 0;
        itd_error e;
        err_init(&e);
        if (build_request(m, &a, &e)) {
            itd_error_clear(&e);
            move_error(&e, &m->conflict);
            finish_error(m, &e);
            return ITD_STEP_DONE;
        }
        m->state = S_READY;
    }
    double left = m->deadline - now;
    if (left < 0.001) {
        char why[ITD_MSG_MAX + 64], last[ITD_MSG_MAX];
        if (m->have_last) snprintf(why, sizeof why, "waiting to retry after: %s", itd_error_format(&m->last, last, sizeof last));
        else snprintf(why, sizeof why, "before attempt %d", m->total + 1);
        deadline_error(m, why);
        return ITD_STEP_DONE;
    }
    double to = m->pol.timeout > 0 ? m->pol.timeout : 0;
    if (isfinite(left) && (to == 0 || left < to)) to = left;
    m->attempt++;
    m->total++;
    m->attempt_t0 = now;
    m->state = S_SENT;
    step->kind = ITD_STEP_SEND;
    step->request = &m->req;
    step->timeout = to;
    step->fresh = !itd_op_idempotent(m->wire);
    event_new(m, ITD_EV_REQUEST);
    return ITD_STEP_SEND;
}

/* Longest secret of the call (to bound what is scrubbed before a cut). */
static size_t longest_secret(const itd_secrets *s)
{
    size_t best = 0;
    for (size_t i = 0; i < s->n; i++) {
        const itd_secret *x = i < ITD_SECRETS_INLINE ? &s->inl[i] : &s->more[i - ITD_SECRETS_INLINE];
        if (x->len > best) best = x->len;
    }
    return best;
}

/* The response part of a RESPONSE event: headers with secret-like names
 * "***", the body by key (JSON) then by value, cut to ITD_EVENT_BODY_MAX. */
static void event_response(itd_call_m *m, evslot *s, const itd_response_in *r)
{
    if (!s) return;
    if (r->nheaders && (s->rh = calloc(r->nheaders, sizeof *s->rh)) != NULL) {
        for (size_t i = 0; i < r->nheaders; i++) {
            const itd_header *h = &r->headers[i];
            const char *name = h->name ? h->name : "";
            s->rh[i].name = strdup(name);
            s->rh[i].value = strdup(itd_header_is_secret(name, strlen(name)) ? "***" : h->value ? h->value : "");
            s->nrh = i + 1;
            if (!s->rh[i].name || !s->rh[i].value) break;
            itd_scrub(s->rh[i].value, strlen(s->rh[i].value), &m->sec);
        }
        s->ev.resp_headers = s->rh;
        s->ev.n_resp_headers = s->nrh;
        if (s->nrh && (!s->rh[s->nrh - 1].name || !s->rh[s->nrh - 1].value)) s->ev.n_resp_headers--;
    }
    const char *b = r->body ? r->body : "";
    size_t n = r->body ? r->body_len : 0;
    char *text = NULL;
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    if (i < n && (b[i] == '{' || b[i] == '[') && n <= ITD_MAX_DOCUMENT_BYTES) {
        cJSON *t = itd_json_parse(b, n, NULL, NULL);
        if (t) {
            itd_redact_json(t);
            text = itd_json_print(t, &n);
            cJSON_Delete(t);
            if (!text) return; /* no memory: no body rather than one not redacted by key */
        }
    }
    if (!text) {
        /* every secret starting before the cut lies whole in the copy */
        size_t keep = ITD_EVENT_BODY_MAX + longest_secret(&m->sec);
        if (n > keep) n = keep;
        if (!(text = malloc(n + 1))) return;
        memcpy(text, b, n);
        text[n] = 0;
    }
    n = itd_scrub(text, n, &m->sec);
    if (n > ITD_EVENT_BODY_MAX) n = ITD_EVENT_BODY_MAX;
    text[n] = 0;
    s->rbody = text;
    s->ev.resp_body = text;
    s->ev.resp_body_len = n;
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

/* An attempt ended: with result `r` (ok) or error `e` (scrubbed already). */
static void attempt_done(itd_call_m *m, double now, int ok, itd_result *r, itd_error *e, int sent)
{
    if (ok) {
        if (!m->reconciling) { finish_result(m, r); return; }
        int same = m->args->input && itd_job_matches_input(r->obj, m->args->input);
        itd_result_free(r);
        itd_result c;
        memset(&c, 0, sizeof c);
        if (!same) move_error(e, &m->conflict);
        else if (!make_created(itd_input_id(m->args->input), &c, e)) { finish_result(m, &c); return; }
        finish_error(m, e);
        return;
    }
    if (m->op == ITD_OP_JOBS_CREATE && !m->reconciling && e->kind == ITD_ERR_CONFLICT && m->sent_before &&
        itd_input_id(m->args->input)) {
        move_error(&m->conflict, e);
        m->state = S_RECONCILE;
        return;
    }
    if (sent) m->sent_before = 1;
    double delay = 0;
    if (itd_retry_decide(&m->pol.retry, m->wire, m->attempt, e, sent, itd_rng_double(&m->rng), &delay) &&
        (!isfinite(m->deadline) || now + delay < m->deadline)) {
        evslot *s = event_new(m, ITD_EV_RETRY);
        if (s) {
            s->ev.status = e->status;
            s->ev.delay = delay;
        }
        move_error(&m->last, e);
        m->have_last = 1;
        event_error(s, &m->last);
        m->wake = now + delay;
        m->state = S_WAIT;
        return;
    }
    if (m->reconciling) {
        /* could not fetch the job: report the conflict, saying why */
        char why[ITD_MSG_MAX];
        itd_error_format(e, why, sizeof why);
        itd_error_clear(e);
        move_error(e, &m->conflict);
        size_t ml = strlen(e->message);
        snprintf(e->message + ml, sizeof e->message - ml, " (could not verify the existing job: %s)", why);
    }
    finish_error(m, e);
}

void itd_call_feed_response(itd_call_m *m, double now, const itd_response_in *resp)
{
    if (!m || m->state != S_SENT) return;
    events_clear(m);
    m->state = S_READY;
    static const itd_response_in empty;
    if (!resp) resp = &empty;
    itd_response pr = { resp->status, resp->content_type, resp->retry_after, resp->body ? resp->body : "",
                        resp->body ? resp->body_len : 0 };
    itd_result r;
    itd_error e;
    err_init(&e);
    int ok = itd_response_parse(m->wire, &pr, &r, &e) == 0;
    if (!ok) itd_scrub_error(&e, &m->sec); /* before anyone sees it, the events included */
    evslot *s = event_new(m, ITD_EV_RESPONSE);
    if (s) {
        s->ev.status = resp->status;
        s->ev.elapsed = now - m->attempt_t0;
        event_response(m, s, resp);
        if (!ok) event_error(s, &e);
    }
    attempt_done(m, now, ok, &r, &e, 1);
}

void itd_call_feed_failure(itd_call_m *m, double now, const itd_failure *f)
{
    if (!m || m->state != S_SENT) return;
    events_clear(m);
    m->state = S_READY;
    static const itd_failure unknown = { ITD_ERR_CONNECTION, 1, 0, 0, "no response", NULL };
    if (!f) f = &unknown;
    itd_error e;
    err_init(&e);
    const char *msg = f->message && *f->message ? f->message : "no response";
    itd_err_kind k = f->kind;
    if (k != ITD_ERR_TIMEOUT && k != ITD_ERR_DECODE && k != ITD_ERR_VALIDATION && k != ITD_ERR_NOMEM)
        k = ITD_ERR_CONNECTION;
    int sent = f->sent ? 1 : 0;
    if (k == ITD_ERR_TIMEOUT && isfinite(m->deadline) && now >= m->deadline - 0.002) {
        itd_error_set(&e, ITD_ERR_TIMEOUT, "", "deadline of %ld ms exceeded (%s)", m->deadline_ms, msg);
    } else {
        itd_error_set(&e, k, f->path ? f->path : "", "%s", msg);
        e.retryable = (k == ITD_ERR_TIMEOUT || k == ITD_ERR_CONNECTION) && f->retryable;
    }
    e.status = (int)f->status;
    itd_scrub_error(&e, &m->sec);
    evslot *s = event_new(m, ITD_EV_RESPONSE);
    if (s) {
        s->ev.status = f->status;
        s->ev.elapsed = now - m->attempt_t0;
        event_error(s, &e);
    }
    attempt_done(m, now, 0, NULL, &e, sent);
}

int itd_call_result(itd_call_m *m, itd_result *out, itd_error *err)
{
    if (out) memset(out, 0, sizeof *out);
    if (err) itd_error_clear(err);
    if (!m) return itd_error_set(err, ITD_ERR_USAGE, "", "itd_call_result: no machine");
    events_clear(m);
    if (m->state != S_DONE) return itd_error_set(err, ITD_ERR_USAGE, "", "itd_call_result: the call is not done");
    if (!m->failed) {
        if (out) { *out = m->res; memset(&m->res, 0, sizeof m->res); }
        else itd_result_free(&m->res);
        return 0;
    }
    if (err) move_error(err, &m->err);
    return -1;
}

int itd_call_attempts(const itd_call_m *m) { return m ? m->total : 0; }

const itd_event *itd_call_event(itd_call_m *m)
{
    if (!m || m->evpos >= m->nev) return NULL;
    return &m->evs[m->evpos++].ev;
}
