/*
 * runner.c - executing job runs: simulated API calls, the job's retry policy
 * and maxConcurrentRequests, sink delivery, and the scheduler.
 *
 * A fixed pool of worker threads takes work from the list of active runs:
 * a payload whose call may start (its run PENDING, under the run's
 * concurrency limit, its retry back-off elapsed), or a finished payload whose
 * result still has to be delivered.  Calls and deliveries run without g_lock;
 * a run is kept alive meanwhile by a reference count, so deleting its job
 * never frees it under a worker.  Deliveries happen here, never inside the
 * HTTP handler, so a webhook pointing at the emulator's own receiver works.
 *
 * Simulated calls: the result is derived from apiName + parameters only
 * (same payload, same result).  An apiName starting with "fail" or named by
 * --fail-api always fails; "flaky:N..." fails its first N attempts.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "emu.h"

static emu_run *g_active;        /* runs with work left, FIFO; guarded by g_lock */
static pthread_t *g_workers;
static int g_nworkers;
static pthread_t g_sched;
static int g_sched_started;
static int g_stopping;           /* guarded by g_lock */

void runner_enqueue(emu_run *r)
{
    if (!r->active) {
        emu_run **pp = &g_active;
        while (*pp) pp = &(*pp)->anext;
        *pp = r;
        r->anext = NULL;
        r->active = 1;
    }
    pthread_cond_broadcast(&g_work_cv);
}

void runner_deactivate(emu_run *r)
{
    if (!r->active) return;
    emu_run **pp = &g_active;
    while (*pp && *pp != r) pp = &(*pp)->anext;
    if (*pp) *pp = r->anext;
    r->active = 0;
    r->anext = NULL;
}

void runner_finish_if_done(emu_run *r)
{
    if (!r->active) return;
    int busy = r->in_flight > 0, all_done = 1, ok = 0;
    for (size_t i = 0; i < r->n; i++) {
        const emu_pstate *p = &r->ps[i];
        if (p->state == P_OK || p->state == P_FAIL) {
            if (p->delivery == 0 || p->delivery == 5) busy = 1;
            if (p->state == P_OK) ok++;
        } else {
            all_done = 0;
        }
    }
    if (strcmp(r->status, "TERMINATED") == 0) {
        if (!busy) runner_deactivate(r);
        return;
    }
    if (!all_done || busy) return;
    /* COMPLETED even when some payloads failed (the reference's example run has
     * failures_count 1); FAILED when there were payloads and none succeeded. */
    snprintf(r->status, sizeof r->status, "%s", r->n > 0 && ok == 0 ? "FAILED" : "COMPLETED");
    r->end_time = r->updated = emu_now();
    runner_deactivate(r);
}

void runner_pause_job(const char *project, const char *job_id, emu_writes *w)
{
    for (emu_run *r = g_active; r; r = r->anext)
        if (strcmp(r->status, "PENDING") == 0 && strcmp(r->job_id, job_id) == 0 && strcmp(r->project, project) == 0) {
            snprintf(r->status, sizeof r->status, "PAUSED");
            r->updated = emu_now();
            store_run_save(r, w);
        }
}

void runner_resume_job(const char *project, const char *job_id, emu_writes *w)
{
    for (emu_run *r = g_active; r; r = r->anext)
        if (strcmp(r->status, "PAUSED") == 0 && strcmp(r->job_id, job_id) == 0 && strcmp(r->project, project) == 0) {
            snprintf(r->status, sizeof r->status, "PENDING");
            r->updated = emu_now();
            store_run_save(r, w);
        }
    pthread_cond_broadcast(&g_work_cv);
}

void runner_terminate(emu_run *r, emu_writes *w)
{
    snprintf(r->status, sizeof r->status, "TERMINATED");
    r->end_time = r->updated = emu_now();
    runner_finish_if_done(r);
    store_run_save(r, w);
}

/* ------------------------------------------------------------ simulated calls */

static int max_attempts(const emu_run *r, const itd_payload *p)
{
    if (p->retry && p->retry->has_maximumAttempts && p->retry->maximumAttempts >= 1)
        return (int)fmin(p->retry->maximumAttempts, 1000);
    const itd_configuration *c = r->snap->configuration;
    if (c && c->retry && c->retry->has_maximumAttempts && c->retry->maximumAttempts >= 1)
        return (int)fmin(c->retry->maximumAttempts, 1000);
    return 1;   /* no retry policy: one attempt */
}

/* Wait before retry number `i` (0-based): initialInterval * coefficient^i,
 * capped by maximumInterval (reference §4.8), in seconds, time-scaled. */
static double retry_delay(const emu_run *r, int i)
{
    const itd_configuration *c = r->snap->configuration;
    const itd_retry *rt = c ? c->retry : NULL;
    double initial = 1000, coeff = 1, cap = -1;
    if (rt) {
        if (rt->initialInterval.kind == ITD_NS_NUMBER) initial = rt->initialInterval.num;
        else if (rt->initialInterval.kind == ITD_NS_STRING) itd_duration_ms(rt->initialInterval.str, &initial);
        if (rt->has_backoffCoefficient && rt->backoffCoefficient > 0) coeff = rt->backoffCoefficient;
        if (rt->maximumInterval.kind == ITD_NS_NUMBER) cap = rt->maximumInterval.num;
        else if (rt->maximumInterval.kind == ITD_NS_STRING) itd_duration_ms(rt->maximumInterval.str, &cap);
    }
    double ms = initial * pow(coeff, i);
    if (cap >= 0 && ms > cap) ms = cap;
    if (!(ms >= 0) || ms > 86400000.0) ms = 86400000.0;
    return ms * g_opts.time_scale / 1000.0;
}

static int call_fails(const char *api, int attempt)
{
    if (strncmp(api, "fail", 4) == 0) return 1;
    for (size_t i = 0; i < g_opts.nfail_apis; i++)
        if (strcmp(api, g_opts.fail_apis[i]) == 0) return 1;
    if (strncmp(api, "flaky:", 6) == 0) {
        char *end;
        long n = strtol(api + 6, &end, 10);
        if (end != api + 6) return attempt <= n;
    }
    return 0;
}

/* The JobSinkResultPayload of a finished payload, through the core's schema. */
static char *build_result(const emu_run *r, size_t i, int ok, int attempts)
{
    const itd_payload *p = r->snap->payload.items[i];
    char pid[40], api_run[80], digest[20];
    emu_stable_uuid(r->project, pid);
    snprintf(api_run, sizeof api_run, "apirun-%s-%zu", r->id + 4, i + 1);
    char *params = p->parameters ? itd_json_print(p->parameters, NULL) : NULL;
    uint64_t h = emu_hash(p->apiName, strlen(p->apiName) + 1, 0);
    if (params) h = emu_hash(params, strlen(params), h);
    free(params);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)h);

    cJSON *o = cJSON_CreateObject();
    cJSON *info = cJSON_AddObjectToObject(o, "apiInfo");
    cJSON_AddStringToObject(info, "name", p->apiName);
    if (p->parameters) cJSON_AddItemToObject(info, "parameters", cJSON_Duplicate(p->parameters, 1));
    cJSON *res = cJSON_AddObjectToObject(info, "result");
    if (ok) {
        cJSON *val = cJSON_AddObjectToObject(res, "result");
        cJSON_AddStringToObject(val, "apiName", p->apiName);
        cJSON_AddItemToObject(val, "parameters", p->parameters ? cJSON_Duplicate(p->parameters, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(val, "digest", digest);
        cJSON_AddStringToObject(res, "status", "completed");
        cJSON_AddNumberToObject(res, "statusCode", 200);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "Simulated failure of %.100s after %d attempt(s)", p->apiName, attempts);
        cJSON_AddStringToObject(res, "error", "SimulatedFailure");
        cJSON_AddStringToObject(res, "message", msg);
        cJSON_AddStringToObject(res, "status", "failed");
        cJSON_AddNumberToObject(res, "statusCode", 500);
    }
    cJSON_AddStringToObject(info, "runId", api_run);
    cJSON_AddStringToObject(o, "workspaceId", g_opts.workspace);
    cJSON *proj = cJSON_AddObjectToObject(o, "project");
    cJSON_AddStringToObject(proj, "id", pid);
    cJSON_AddStringToObject(proj, "name", r->project);
    if (r->snap->authSession && r->snap->authSession->id)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "authSession"), "id", r->snap->authSession->id);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "projectJob"), "id", r->job_id);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "projectJobRun"), "id", r->id);

    itd_error err = { 0 };
    itd_sink_result *sr = itd_decode_take(&itd_JobSinkResultPayload, o, NULL, &err);
    if (!sr) {
        fprintf(stderr, "intuned-emulator: internal: sink result invalid: %s\n", err.message);
        itd_error_clear(&err);
        return NULL;
    }
    char *json = itd_encode(&itd_JobSinkResultPayload, sr, NULL);
    itd_free(&itd_JobSinkResultPayload, sr);
    return json;
}

/* ------------------------------------------------------------ delivery */

/* Webhook targets are loopback only, and the host must be a literal that no
 * resolver ever sees (a name that merely looks like loopback goes to DNS,
 * where search domains or wildcard records can send it off the machine):
 *   127.x.y.z, four decimal parts 0..255 without leading zeros  accepted
 *   localhost (any case; libcurl answers it itself), [::1]       accepted
 *   127.0.0.999, 127.1.2.3.4: not an IPv4 literal, a DNS name    refused
 *   127.0.0.1., localhost.: trailing dot, an absolute DNS name   refused
 *   0x7f.1, 2130706433, 127.1, 127.000.000.001: numeric
 *     shorthands that parsers read differently (hex, octal);
 *     only the canonical spelling is taken                       refused
 *   [0:0::1], [::1%25lo]: not the canonical spelling of ::1      refused
 * At connect time the address must be loopback too (open_socket), and
 * proxies from the environment are never used.
 *
 * A target on the emulator's own port may only be its receiver
 * (/_receiver/...): a sink aimed at its own API (say .../trigger) would
 * make every delivery start a new run, without end. */
static const char WHY_NOT_LOOPBACK[] = "refused: the webhook URL must be http(s) with a loopback literal host "
                                     "(127.x.y.z in canonical dotted-quad form, localhost or [::1])";
static const char WHY_SELF[] = "refused: the webhook URL points at the emulator's own API or control endpoints "
                               "(on its own port only /_receiver/NAME is allowed)";
static const char WHY_CONNECT_FAR[] = "refused: the webhook host connected to a non-loopback address";
static const char WHY_CONNECT_SELF[] = "refused: the webhook connected to the emulator's own port outside /_receiver/";
static const char WHY_NO_ANSWER[] = "no 2xx answer from the webhook";

static int own_port(void)
{
    if (g_opts.port > 0) return g_opts.port;
    const char *p = strrchr(g_origin, ':');   /* g_origin is set before any worker starts */
    return p ? atoi(p + 1) : 0;
}

static int canonical_loopback_v4(const char *h)
{
    int parts = 0, first = -1;
    while (parts < 4) {
        int v = 0, digits = 0;
        while (h[digits] >= '0' && h[digits] <= '9') {
            if (digits == 3) return 0;
            v = v * 10 + (h[digits] - '0');
            digits++;
        }
        if (digits == 0 || v > 255 || (digits > 1 && h[0] == '0')) return 0;
        if (first < 0) first = v;
        parts++;
        h += digits;
        if (parts < 4) {
            if (*h != '.') return 0;
            h++;
        }
    }
    return *h == 0 && first == 127;
}

/* The host as written in the URL (after any userinfo, before the port), so
 * that a spelling libcurl normalizes (0x7f.1 -> 127.0.0.1) is seen as typed. */
static int raw_host(const char *url, char *out, size_t n)
{
    const char *a = strstr(url, "://");
    if (!a) return -1;
    a += 3;
    size_t alen = strcspn(a, "/?#");
    for (size_t i = alen; i > 0; i--)
        if (a[i - 1] == '@') { alen -= i; a += i; break; }
    size_t hlen;
    if (alen && a[0] == '[') {
        const char *e = memchr(a, ']', alen);
        if (!e) return -1;
        hlen = (size_t)(e - a) + 1;
    } else {
        const char *e = memchr(a, ':', alen);
        hlen = e ? (size_t)(e - a) : alen;
    }
    if (hlen == 0 || hlen >= n) return -1;
    memcpy(out, a, hlen);
    out[hlen] = 0;
    return 0;
}

typedef struct wh_target {
    char *url;        /* normalized by libcurl: what is requested (curl_free) */
    int port;
    int receiver;     /* the path is under /_receiver/ */
} wh_target;

/* 0 and *t filled, or -1 with *why (a static text). */
static int webhook_target(const char *url, wh_target *t, const char **why)
{
    memset(t, 0, sizeof *t);
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL, *port = NULL, *path = NULL, raw[300];
    int rc = -1;
    *why = WHY_NOT_LOOPBACK;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK
        && curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK
        && raw_host(url, raw, sizeof raw) == 0 && strcasecmp(raw, host) == 0
        && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0)
        && (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || canonical_loopback_v4(host))) {
        t->port = atoi(port);
        /* the path as requested: libcurl has removed dot segments already */
        t->receiver = strncmp(path, "/_receiver/", 11) == 0;
        if (t->port == own_port() && !t->receiver) {
            *why = WHY_SELF;
        } else if (curl_url_get(u, CURLUPART_URL, &t->url, 0) == CURLUE_OK) {
            *why = NULL;
            rc = 0;
        }
    }
    curl_free(host);
    curl_free(scheme);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

int runner_webhook_is_self(const char *url)
{
    wh_target t;
    const char *why;
    int rc = webhook_target(url, &t, &why);
    curl_free(t.url);
    return rc != 0 && why == WHY_SELF;
}

/* Set when the runner stops: transfers in progress give up (progress callback). */
static volatile int g_abort_io;

static int abort_check(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
    return __atomic_load_n(&g_abort_io, __ATOMIC_RELAXED) ? 1 : 0;
}

typedef struct wh_conn { int own, receiver; const char *why; } wh_conn;

/* The address libcurl is about to connect to (after any name lookup). */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    wh_conn *x = ud;
    (void)purpose;
    int loop = 0, port = 0;
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->addr;
        loop = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        port = ntohs(in->sin_port);
    } else if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->addr;
        static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        loop = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)
               || (memcmp(in6->sin6_addr.s6_addr, v4mapped, 12) == 0 && in6->sin6_addr.s6_addr[12] == 127);
        port = ntohs(in6->sin6_port);
    }
    if (!loop) { x->why = WHY_CONNECT_FAR; return CURL_SOCKET_BAD; }
    if (port == x->own && !x->receiver) { x->why = WHY_CONNECT_SELF; return CURL_SOCKET_BAD; }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t discard(char *p, size_t s, size_t n, void *ud) { (void)p; (void)ud; return s * n; }

/* One POST; the HTTP status, or -1 when no answer came (x->why set when
 * the connection was refused by the guard). */
static long post_once(const wh_target *t, const cJSON *headers, const char *body, wh_conn *x)
{
    CURL *c = curl_easy_init();
    if (!c) return -1;
    struct curl_slist *h = NULL, *s;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: intuned-emulator/" ITD_VERSION);
    h = curl_slist_append(h, "Expect:");
    for (const cJSON *it = headers ? headers->child : NULL; it && h; it = it->next) {
        char *v = cJSON_IsString(it) ? NULL : itd_json_print(it, NULL);
        const char *val = cJSON_IsString(it) ? it->valuestring : v;
        if (val && !strpbrk(it->string, "\r\n: ") && !strpbrk(val, "\r\n") && it->string[0]) {
            size_t n = strlen(it->string) + strlen(val) + 3;
            char *line = emu_xmalloc(n);
            snprintf(line, n, "%s: %s", it->string, val);
            s = curl_slist_append(h, line);
            free(line);
            if (s) h = s;
        }
        free(v);
    }
    long status = -1;
    x->own = own_port();
    x->receiver = t->receiver;
    x->why = NULL;
    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PROXY, "");   /* never through a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_check);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* A bucket or key part that would climb out of the S3 directory is refused. */
static int safe_part(const char *s, int allow_slash)
{
    if (!s) return 1;
    if (s[0] == '/') return 0;
    if (!allow_slash && (strchr(s, '/') || !s[0] || strcmp(s, ".") == 0)) return 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.')) return 0;
        if (!e) break;
        p = e + 1;
    }
    return 1;
}

/* S3 sink: <s3-dir>/<bucket>/<prefix><jobId>/<runId>/<apiRunId>.json (our layout). */
static int write_s3(const itd_sink *s, const emu_run *r, size_t i, const char *body)
{
    const char *prefix = s->prefix ? s->prefix : "";
    if (!safe_part(s->bucket, 0) || !safe_part(prefix, 1)) return -1;
    char dir[4096], path[4200], tmp[4300];
    int n = snprintf(dir, sizeof dir, "%s/%s/%s%s/%s", g_opts.s3_dir, s->bucket, prefix, r->job_id, r->id);
    if (n < 0 || (size_t)n >= sizeof dir || mkdirs(dir)) return -1;
    snprintf(path, sizeof path, "%s/apirun-%s-%zu.json", dir, r->id + 4, i + 1);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int bad = fputs(body, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return 0;
}

static int api_wanted(const itd_sink *s, const char *api)
{
    if (!cJSON_IsArray(s->apisToSend)) return 1;
    for (const cJSON *it = s->apisToSend->child; it; it = it->next)
        if (cJSON_IsString(it) && strcmp(it->valuestring, api) == 0) return 1;
    return 0;
}

static void wait_until(double when);

/* Waits `ms` unless the runner stops first (SIGTERM must not wait out a
 * back-off); 1 when it stopped. */
static int backoff_wait(double ms)
{
    double until = emu_now() + ms / 1000.0;
    pthread_mutex_lock(&g_lock);
    while (!g_stopping && emu_now() < until) wait_until(until);
    int stop = g_stopping;
    pthread_mutex_unlock(&g_lock);
    return stop;
}

/* Deliver one result: 1 delivered, 2 failed (*why says why), 3 skipped,
 * 4 no sink, 0 interrupted by the runner stopping (still pending).
 * *attempts counts the POSTs (or writes) made. */
static int deliver(const emu_run *r, size_t i, const char *body, int failed, long *attempts, const char **why)
{
    const itd_sink *s = r->snap->sink;
    const itd_payload *p = r->snap->payload.items[i];
    *why = NULL;
    if (!s) return 4;
    if ((failed && s->has_skipOnFail && s->skipOnFail) || !api_wanted(s, p->apiName)) return 3;
    if (!body) { *why = "internal: no result document"; return 2; }
    if (s->kind == ITD_SINK_S3) {
        (*attempts)++;
        int rc = write_s3(s, r, i, body);
        emu_log("run %s: payload %zu: S3 write %s", r->id, i + 1, rc ? "failed" : "done");
        if (rc) *why = "S3 write failed";
        return rc ? 2 : 1;
    }
    wh_target t;
    if (!s->url || webhook_target(s->url, &t, why) != 0) {
        if (!*why) *why = WHY_NOT_LOOPBACK;
        emu_log("run %s: payload %zu: webhook %s", r->id, i + 1, *why);
        return 2;
    }
    int max = g_opts.delivery_attempts > 0 ? g_opts.delivery_attempts : 1, rc = 2;
    *why = WHY_NO_ANSWER;
    for (int k = 0; k < max; k++) {
        wh_conn x = { 0, 0, NULL };
        (*attempts)++;
        long st = post_once(&t, s->headers, body, &x);
        emu_log("run %s: payload %zu: webhook attempt %d -> %ld%s%s", r->id, i + 1, k + 1, st,
                x.why ? ": " : "", x.why ? x.why : "");
        if (st >= 200 && st < 300) { rc = 1; *why = NULL; break; }
        if (x.why) { *why = x.why; break; }   /* refused by the guard: retrying cannot help */
        /* stopping (during the POST or its back-off): the result stays pending */
        if (backoff_wait(k + 1 < max ? 1000.0 * pow(2, k) * g_opts.time_scale : 0)) { rc = 0; *why = NULL; break; }
    }
    curl_free(t.url);
    return rc;
}

/* ------------------------------------------------------------ workers */

static void wait_until(double when)
{
    if (when < 0) { pthread_cond_wait(&g_work_cv, &g_lock); return; }
    struct timespec ts;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - floor(when)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    pthread_cond_timedwait(&g_work_cv, &g_lock, &ts);   /* CLOCK_REALTIME, like emu_now */
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_stopping) {
        double now = emu_now(), wake = -1;
        emu_run *r = NULL;
        size_t idx = 0;
        int kind = 0;   /* 1 call, 2 delivery */
        for (emu_run *x = g_active; x && !kind; x = x->anext) {
            for (size_t i = 0; i < x->n; i++)
                if ((x->ps[i].state == P_OK || x->ps[i].state == P_FAIL) && x->ps[i].delivery == 0) {
                    r = x; idx = i; kind = 2; break;
                }
            if (kind || strcmp(x->status, "PENDING") != 0) continue;
            if (x->limit && x->in_flight >= x->limit) continue;
            for (size_t i = 0; i < x->n; i++)
                if (x->ps[i].state == P_WAIT) {
                    if (x->ps[i].ready_at <= now) { r = x; idx = i; kind = 1; break; }
                    if (wake < 0 || x->ps[i].ready_at < wake) wake = x->ps[i].ready_at;
                }
        }
        if (!kind) { wait_until(wake); continue; }

        emu_writes w = { NULL };
        emu_pstate *p = &r->ps[idx];
        r->refs++;
        if (kind == 1) {
            p->state = P_RUNNING;
            int attempt = ++p->attempts;
            if (++r->in_flight > r->max_in_flight) r->max_in_flight = r->in_flight;
            const itd_payload *pl = r->snap->payload.items[idx];
            int maxa = max_attempts(r, pl);
            pthread_mutex_unlock(&g_lock);

            emu_sleep_ms(g_opts.api_latency_ms);
            int ok = !call_fails(pl->apiName, attempt);
            char *result = NULL;
            if (ok || attempt >= maxa) result = build_result(r, idx, ok, attempt);

            pthread_mutex_lock(&g_lock);
            r->in_flight--;
            r->updated = emu_now();
            if (ok || attempt >= maxa || strcmp(r->status, "TERMINATED") == 0) {
                if (!result) result = build_result(r, idx, ok, attempt);
                p->state = ok ? P_OK : P_FAIL;
                p->result = result;
                p->delivery = r->snap->sink ? 0 : 4;
                emu_log("run %s: payload %zu (%s) %s after %d attempt(s)", r->id, idx + 1, pl->apiName,
                        ok ? "completed" : "failed", attempt);
            } else {
                p->state = P_WAIT;
                p->ready_at = emu_now() + retry_delay(r, attempt - 1);
                emu_log("run %s: payload %zu (%s) attempt %d failed, retrying", r->id, idx + 1, pl->apiName, attempt);
            }
            pthread_cond_broadcast(&g_work_cv);   /* a concurrency slot is free */
        } else {
            p->delivery = 5;   /* delivering */
            const char *body = p->result;   /* immutable once set */
            int failed = p->state == P_FAIL;
            pthread_mutex_unlock(&g_lock);
            long attempts = 0;
            const char *why = NULL;
            int rc = deliver(r, idx, body, failed, &attempts, &why);
            pthread_mutex_lock(&g_lock);
            p->delivery = rc;
            p->delivery_error = rc == 2 ? why : NULL;
            r->delivery_attempts += attempts;
            if (rc == 1) r->deliveries_ok++;
            else if (rc == 2) r->deliveries_failed++;
            else if (rc == 3) r->deliveries_skipped++;
            r->updated = emu_now();
        }
        if (!r->gone) {
            runner_finish_if_done(r);
            store_run_save(r, &w);
        }
        store_run_release(r);
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* The scheduler: starts SCHEDULED runs when a job's next_run_time comes. */
static void *scheduler(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_stopping) {
        emu_writes w = { NULL };
        double now = emu_now();
        store_schedule_tick(now, &w);
        double due = store_next_due();
        pthread_mutex_unlock(&g_lock);
        emu_persist(&w);
        pthread_mutex_lock(&g_lock);
        if (g_stopping) break;
        /* wake at the next due time, but at least every second (jobs change) */
        double until = emu_now() + 1.0;
        if (due >= 0 && due < until) until = due;
        wait_until(until);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int runner_start(void)
{
    g_nworkers = g_opts.workers > 0 ? g_opts.workers : 1;
    g_workers = emu_xcalloc((size_t)g_nworkers, sizeof *g_workers);
    for (int i = 0; i < g_nworkers; i++)
        if (pthread_create(&g_workers[i], NULL, worker, NULL) != 0) { g_nworkers = i; return -1; }
    if (pthread_create(&g_sched, NULL, scheduler, NULL) != 0) return -1;
    g_sched_started = 1;
    return 0;
}

void runner_stop(void)
{
    __atomic_store_n(&g_abort_io, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&g_lock);
    g_stopping = 1;
    pthread_cond_broadcast(&g_work_cv);
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < g_nworkers; i++) pthread_join(g_workers[i], NULL);
    if (g_sched_started) pthread_join(g_sched, NULL);
    free(g_workers);
    g_workers = NULL;
    g_nworkers = 0;
}
