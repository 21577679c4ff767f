/*
 * deliver.c - sink delivery: a finished payload's JobSinkResultPayload goes
 * to the job's webhook (POST, retried with back-off, loopback targets only)
 * or to a file under the S3 directory.  Workers call it without g_lock
 * (runner.c), so a webhook pointing at the emulator's own receiver works.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
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
#include "deliver.h"

/* ------------------------------------------------------------ the webhook guard */

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

int deliver_webhook_is_self(const char *url)
{
    wh_target t;
    const char *why;
    int rc = webhook_target(url, &t, &why);
    curl_free(t.url);
    return rc != 0 && why == WHY_SELF;
}

/* ------------------------------------------------------------ webhook POSTs */

/* Set once at shutdown (deliver_abort): a transfer in progress gives up at
 * once (its multi handle is woken; the progress callback is a second
 * guard), and so do waits (d_cv).  d_cv runs on CLOCK_MONOTONIC so that a
 * step of the wall clock neither stretches nor cuts a back-off. */
static int g_abort_io;            /* __atomic */
static pthread_mutex_t d_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t d_cv;       /* initialized by d_init */
static pthread_once_t d_once = PTHREAD_ONCE_INIT;

/* A transfer in progress, for deliver_abort to wake; on g_xfers under d_lock. */
typedef struct wh_xfer { CURLM *multi; struct wh_xfer *next; } wh_xfer;
static wh_xfer *g_xfers;

static void d_init(void)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0) abort();
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (pthread_cond_init(&d_cv, &a) != 0) abort();
    pthread_condattr_destroy(&a);
}

static int aborted(void) { return __atomic_load_n(&g_abort_io, __ATOMIC_ACQUIRE); }

void deliver_abort(void)
{
    pthread_once(&d_once, d_init);
    pthread_mutex_lock(&d_lock);
    __atomic_store_n(&g_abort_io, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&d_cv);
#if LIBCURL_VERSION_NUM >= 0x074400   /* curl_multi_wakeup: 7.68.0 */
    for (wh_xfer *x = g_xfers; x; x = x->next) curl_multi_wakeup(x->multi);
#endif
    pthread_mutex_unlock(&d_lock);
}

int deliver_sleep(double seconds)
{
    pthread_once(&d_once, d_init);
    if (!(seconds > 0)) return aborted();
    if (seconds > 1e9) seconds = 1e9;   /* 30 years: keeps tv_sec in range */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&d_lock);
    while (!aborted() && pthread_cond_timedwait(&d_cv, &d_lock, &ts) == 0) {}   /* woken, or spurious */
    pthread_mutex_unlock(&d_lock);
    return aborted();
}

static int abort_check(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
    return aborted() ? 1 : 0;
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

/* curl_easy_perform, but through a multi handle that deliver_abort can
 * wake: libcurl calls the progress callback only about once a second while
 * a transfer waits for an answer, too late for a shutdown (the aim is half
 * a second).  Without curl_multi_wakeup the poll is short instead. */
static CURLcode perform(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x074400
    const int poll_ms = 1000;
#else
    const int poll_ms = 50;
#endif
    wh_xfer me = { curl_multi_init(), NULL };
    if (!me.multi) return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(me.multi, c) != CURLM_OK) { curl_multi_cleanup(me.multi); return CURLE_OUT_OF_MEMORY; }
    pthread_mutex_lock(&d_lock);   /* registered before the first check: no wakeup is missed */
    me.next = g_xfers;
    g_xfers = &me;
    pthread_mutex_unlock(&d_lock);
    CURLcode res = CURLE_ABORTED_BY_CALLBACK;
    int done = 0, running = 1;
    while (!done && !aborted()) {
        if (curl_multi_perform(me.multi, &running) != CURLM_OK) { res = CURLE_FAILED_INIT; break; }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(me.multi, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) { res = msg->data.result; done = 1; }
        if (!done && !running) { res = CURLE_FAILED_INIT; break; }   /* not expected: no answer */
        if (!done && curl_multi_poll(me.multi, NULL, 0, poll_ms, NULL) != CURLM_OK) { res = CURLE_FAILED_INIT; break; }
    }
    pthread_mutex_lock(&d_lock);
    for (wh_xfer **pp = &g_xfers; *pp; pp = &(*pp)->next)
        if (*pp == &me) { *pp = me.next; break; }
    pthread_mutex_unlock(&d_lock);
    curl_multi_remove_handle(me.multi, c);
    curl_multi_cleanup(me.multi);
    return res;
}

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
    /* loopback: a connect either succeeds or is refused at once; a full
     * backlog is the only wait, and it need not last */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* ------------------------------------------------------------ S3 files */

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


/* ------------------------------------------------------------ one result */

/* Waits `ms` unless shutdown comes first (SIGTERM must not wait out a
 * back-off); 1 when it came. */
static int backoff_wait(double ms)
{
    return deliver_sleep(ms / 1000.0);
}

int deliver_result(const emu_run *r, size_t i, const char *body, int failed, long *attempts, const char **why)
{
    const itd_sink *s = r->snap->sink;
    const itd_payload *p = r->snap->payload.items[i];
    *why = NULL;
    if (!s) return DELIVER_NO_SINK;
    if ((failed && s->has_skipOnFail && s->skipOnFail) || !api_wanted(s, p->apiName)) return DELIVER_SKIPPED;
    if (!body) { *why = "internal: no result document"; return DELIVER_FAILED; }
    if (s->kind == ITD_SINK_S3) {
        (*attempts)++;
        int rc = write_s3(s, r, i, body);
        emu_log("run %s: payload %zu: S3 write %s", r->id, i + 1, rc ? "failed" : "done");
        if (rc) *why = "S3 write failed";
        return rc ? DELIVER_FAILED : DELIVER_OK;
    }
    wh_target t;
    if (!s->url || webhook_target(s->url, &t, why) != 0) {
        if (!*why) *why = WHY_NOT_LOOPBACK;
        emu_log("run %s: payload %zu: webhook %s", r->id, i + 1, *why);
        return DELIVER_FAILED;
    }
    int max = g_opts.delivery_attempts > 0 ? g_opts.delivery_attempts : 1, rc = DELIVER_FAILED;
    *why = WHY_NO_ANSWER;
    for (int k = 0; k < max; k++) {
        wh_conn x = { 0, 0, NULL };
        if (aborted()) { rc = DELIVER_INTERRUPTED; *why = NULL; break; }   /* no POST made: still pending */
        (*attempts)++;
        long st = post_once(&t, s->headers, body, &x);
        emu_log("run %s: payload %zu: webhook attempt %d -> %ld%s%s", r->id, i + 1, k + 1, st,
                x.why ? ": " : "", x.why ? x.why : "");
        if (st >= 200 && st < 300) { rc = DELIVER_OK; *why = NULL; break; }
        if (x.why) { *why = x.why; break; }   /* refused by the guard: retrying cannot help */
        /* stopping (during the POST or its back-off): the result stays pending */
        if (backoff_wait(k + 1 < max ? 1000.0 * pow(2, k) * g_opts.time_scale : 0)) { rc = DELIVER_INTERRUPTED; *why = NULL; break; }
    }
    curl_free(t.url);
    return rc;
}


/* ------------------------------------------------------------ the S3 directory */

static int g_s3_tmp;   /* 1: s3_dir is our mkdtemp: removed at exit when still empty */

int deliver_init(void)
{
    if (g_opts.s3_dir) return 0;
    if (g_opts.data_dir) {
        size_t n = strlen(g_opts.data_dir) + 4;
        g_opts.s3_dir = emu_xmalloc(n);
        snprintf(g_opts.s3_dir, n, "%s/s3", g_opts.data_dir);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/intuned-emulator-s3-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) { perror("intuned-emulator: mkdtemp"); return -1; }
    g_opts.s3_dir = emu_strdup(tmpl);
    g_s3_tmp = 1;
    return 0;
}

void deliver_shutdown(void)
{
    if (g_s3_tmp) rmdir(g_opts.s3_dir);   /* fails, and keeps it, when S3 sinks wrote there */
    free(g_opts.s3_dir);
    g_opts.s3_dir = NULL;
    g_s3_tmp = 0;
}
