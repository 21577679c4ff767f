/* fuzz_emulator: the emulator's request handling, over a loopback socket.
 *
 * The emulator has no socket-free entry point, so LLVMFuzzerInitialize
 * starts it in-process once, as main.c would (in memory, port 0 on
 * 127.0.0.1, no scheduler, no simulated latency, back-off waits scaled to 0,
 * one delivery attempt, S3 sinks in a scratch directory removed at exit),
 * and every input is sent to it as HTTP requests, each on its own
 * connection, with 5 s send/receive timeouts.  main.c is compiled with its
 * main() renamed (-Dmain=emulator_main) so libFuzzer's main is the one linked.
 *
 * Input: up to 4 requests separated by a line "@@@".  A request is
 *   METHOD [noauth|badauth|chunked|raw]...\n
 *   target\n            ("~" at its start stands for /api/v1/workspace/ws-local/projects)
 *   body                (the rest)
 * The harness adds Host, x-api-key (the right one unless noauth/badauth),
 * Content-Type: application/json, Content-Length (or chunked encoding) and
 * Connection: close.  With "raw" the text after the first line is sent as it
 * is.  Bytes of the target that cannot appear in a request line are
 * percent-encoded; a method that is not a token becomes GET.
 *
 * Checks: every answer is an HTTP/1.1 status line; a 500 is only an injected
 * fault (never "internal: ... does not fit the model"); an answer that says
 * application/json and has its whole Content-Length is JSON, and an error
 * status carries an ApiError body.  ASan/UBSan watch the server threads.
 * The store keeps what earlier inputs created (there is no reset), so a
 * crash may need the inputs before it: see fuzz/README.md.  Fault rules an
 * input adds are cleared when they could slow the next requests (latency,
 * drip) and after every input. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "emu.h"
#include "faults.h"
#include "http.h"
#include "runner.h"
#include "scheduler.h"
#include "store.h"
#include "fuzz.h"

#define BASE "/api/v1/workspace/ws-local/projects"
#define MAX_ANSWER (1u << 20)

static int g_port;
/* FUZZ_EMULATOR_LAX_UTF8=1: take answers whose only fault is invalid UTF-8
 * (a known finding, fuzz/regressions/emulator/invalid-utf8-*), to fuzz past it */
static int g_lax_utf8;
static char g_s3[256];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    http_stop();
    scheduler_stop();
    runner_stop();
    store_shutdown();
    if (g_s3[0]) nftw(g_s3, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    g_lax_utf8 = getenv("FUZZ_EMULATOR_LAX_UTF8") && strcmp(getenv("FUZZ_EMULATOR_LAX_UTF8"), "1") == 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_s3, sizeof g_s3, "%s/fuzz-emulator-s3-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_s3)) { perror("fuzz_emulator: mkdtemp"); exit(1); }
    g_opts.host = "127.0.0.1";
    g_opts.port = 0;
    g_opts.api_key = "test-key";
    g_opts.workspace = "ws-local";
    g_opts.data_dir = NULL;
    g_opts.s3_dir = emu_strdup(g_s3);
    g_opts.seed = 1;
    g_opts.time_scale = 0;
    g_opts.api_latency_ms = 0;
    g_opts.max_body = 65536;
    g_opts.conn_timeout = 5;
    g_opts.max_conns = 64;
    g_opts.delivery_attempts = 1;
    g_opts.workers = 2;
    g_opts.no_scheduler = 1;
    g_opts.fail_apis = calloc(1, sizeof *g_opts.fail_apis);
    if (store_init() || runner_start() || http_start() || scheduler_start()) {
        fprintf(stderr, "fuzz_emulator: the emulator did not start\n");
        exit(1);
    }
    const char *colon = strrchr(g_origin, ':');
    g_port = colon ? atoi(colon + 1) : 0;
    if (g_port <= 0) { fprintf(stderr, "fuzz_emulator: no port in %s\n", g_origin); exit(1); }
    atexit(cleanup);
    return 0;
}

typedef struct buf { char *p; size_t n, cap; } buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Send one request, read the whole answer (the server closes: Connection: close). */
static size_t exchange(const buf *req, buf *ans)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)g_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    if (rc != 0 && errno == EINTR) {
        /* a signal (libFuzzer's own timer) cut the wait short; the
         * connection goes on being made: wait for it and take its outcome */
        struct pollfd pw = { fd, POLLOUT, 0 };
        int pr;
        do pr = poll(&pw, 1, 5000);
        while (pr < 0 && errno == EINTR);
        int soerr = pr == 1 ? 0 : ETIMEDOUT;
        socklen_t sl = sizeof soerr;
        if (pr == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = soerr ? -1 : 0;
        errno = soerr;
    }
    FUZZ_CHECK(rc == 0, "connect: %s", strerror(errno));
    size_t off = 0;
    while (off < req->n) {
        ssize_t w = send(fd, req->p + off, req->n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* the server may answer (413, 400) and close before reading all */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char tmp[16384];
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            FUZZ_CHECK(errno != EAGAIN && errno != EWOULDBLOCK, "no answer within 5 s (%zu bytes so far)", ans->n);
            break; /* ECONNRESET: the server closed without reading everything */
        }
        if (ans->n + (size_t)r <= MAX_ANSWER) put(ans, tmp, (size_t)r);
    }
    close(fd);
    return ans->n;
}

static int faults_active(void)
{
    cJSON *l = faults_list();
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n > 0;
}

static void clear_slow_faults(void)
{
    cJSON *l = faults_list();
    char *s = cJSON_PrintUnformatted(l);
    if (s && (strstr(s, "latency") || strstr(s, "drip"))) faults_clear();
    free(s);
    cJSON_Delete(l);
}

static const char *header(const char *head, size_t hlen, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + hlen;) {
        const char *e = memchr(p, '\n', (size_t)(head + hlen - p));
        if (!e) break;
        if ((size_t)(e - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *ve = e;
            if (ve > v && ve[-1] == '\r') ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = e + 1;
    }
    return NULL;
}

static void check_answer(const buf *a, int faulted)
{
    if (a->n == 0) return; /* dropped: a fault, or a request so broken the server just closed */
    FUZZ_CHECK(a->n >= 12 && memcmp(a->p, "HTTP/1.1 ", 9) == 0, "not a status line: %.60s", a->p);
    int st = atoi(a->p + 9);
    FUZZ_CHECK(st >= 100 && st <= 599, "status %d", st);
    const char *end = strstr(a->p, "\r\n\r\n");
    if (!end) return; /* cut short (truncated fault) */
    size_t hlen = (size_t)(end - a->p) + 2;
    const char *body = end + 4;
    size_t blen = a->n - (size_t)(body - a->p);
    if (st == 500) FUZZ_CHECK(faulted || !strstr(body, "internal:"), "emulator error: %.600s", body);
    size_t ctl = 0, cll = 0;
    const char *ct = header(a->p, hlen, "Content-Type", &ctl);
    const char *cl = header(a->p, hlen, "Content-Length", &cll);
    if (faulted || !ct || !cl || ctl < 16 || strncasecmp(ct, "application/json", 16) != 0) return;
    if ((size_t)strtoul(cl, NULL, 10) != blen) return;
    size_t off;
    const char *why;
    cJSON *t = itd_json_parse(body, blen, &off, &why);
    if (!t && g_lax_utf8 && why && strstr(why, "UTF-8")) t = cJSON_ParseWithLength(body, blen);
    FUZZ_CHECK(t, "status %d, application/json body is not JSON (%s at %zu): %.300s", st, why, off, body);
    if (st >= 400) {
        itd_error err = ITD_ERROR_INIT;
        void *e = itd_decode_take(&itd_ApiError, t, NULL, &err); /* takes the tree */
        FUZZ_CHECK(e, "status %d body is not an ApiError (%s): %.300s", st, err.message, body);
        itd_free(&itd_ApiError, e);
    } else {
        cJSON_Delete(t);
    }
}

static int token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+.^_`|~-", c);
}

static void one_request(const uint8_t *p, size_t n)
{
    fz_cursor cur = { p, n };
    size_t llen;
    char *line = fz_field(&cur, '\n', &llen);
    char method[17] = "GET";
    int noauth = 0, badauth = 0, chunked = 0, raw = 0;
    char *save = NULL, *w = strtok_r(line, " ", &save);
    if (w) {
        size_t ml = strlen(w);
        int ok = ml > 0 && ml < sizeof method;
        for (size_t i = 0; ok && i < ml; i++) ok = token_char((unsigned char)w[i]);
        if (ok) memcpy(method, w, ml + 1);
        while ((w = strtok_r(NULL, " ", &save)) != NULL) {
            if (!strcmp(w, "noauth")) noauth = 1;
            else if (!strcmp(w, "badauth")) badauth = 1;
            else if (!strcmp(w, "chunked")) chunked = 1;
            else if (!strcmp(w, "raw")) raw = 1;
        }
    }
    buf req = { 0 }, ans = { 0 };
    if (raw) {
        put(&req, cur.p, cur.n);
    } else {
        size_t tlen;
        char *target = fz_field(&cur, '\n', &tlen);
        size_t blen;
        char *body = fz_rest(&cur, &blen);
        puts_(&req, method);
        puts_(&req, " ");
        const char *t = target;
        if (*t == '~') { puts_(&req, BASE); t++; }
        else if (*t != '/') puts_(&req, "/");
        for (; *t; t++) {
            unsigned char c = (unsigned char)*t;
            if (c <= 0x20 || c >= 0x7f) {
                char e[4];
                snprintf(e, sizeof e, "%%%02X", c);
                puts_(&req, e);
            } else {
                put(&req, t, 1);
            }
        }
        puts_(&req, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if (!noauth) puts_(&req, badauth ? "x-api-key: wrong-key\r\n" : "x-api-key: test-key\r\n");
        if (blen || chunked) puts_(&req, "Content-Type: application/json\r\n");
        if (chunked) {
            char h[64];
            size_t half = blen / 2;
            puts_(&req, "Transfer-Encoding: chunked\r\n\r\n");
            if (half) { snprintf(h, sizeof h, "%zx\r\n", half); puts_(&req, h); put(&req, body, half); puts_(&req, "\r\n"); }
            if (blen - half) {
                snprintf(h, sizeof h, "%zx\r\n", blen - half);
                puts_(&req, h);
                put(&req, body + half, blen - half);
                puts_(&req, "\r\n");
            }
            puts_(&req, "0\r\n\r\n");
        } else {
            char h[64];
            if (blen) { snprintf(h, sizeof h, "Content-Length: %zu\r\n", blen); puts_(&req, h); }
            puts_(&req, "\r\n");
            put(&req, body, blen);
        }
        free(target);
        free(body);
    }
    int faulted = faults_active();
    exchange(&req, &ans);
    check_answer(&ans, faulted);
    clear_slow_faults();
    free(req.p);
    free(ans.p);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200000) return 0;
    static const char sep[] = "\n@@@\n";
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < 4 && p < end; k++) {
        const uint8_t *q = p;
        const uint8_t *hit = NULL;
        while (q + sizeof sep - 1 <= end) {
            if (memcmp(q, sep, sizeof sep - 1) == 0) { hit = q; break; }
            q++;
        }
        size_t n = hit ? (size_t)(hit - p) : (size_t)(end - p);
        one_request(p, n);
        if (!hit) break;
        p = hit + sizeof sep - 1;
    }
    faults_clear();
    return 0;
}
