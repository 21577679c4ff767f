/* bench/curl_baseline.c - the transport alone, as the baseline of bench/client:
 *   seq   URL N      N x curl_easy_perform on one reused handle, body discarded
 *   multi URL N C    N requests over curl_multi with C in flight, bodies discarded
 * Environment: BENCH_UA (the User-Agent sent; default curl-direct/0.1.0),
 * BENCH_CA_FILE (CURLOPT_CAINFO, verification on), BENCH_HTTP=1.1
 * (HTTP/1.1 only; default: libcurl's, HTTP/2 where TLS offers it; the multi
 * loop waits to multiplex on a connection, as client:batch does).
 * BENCH_TURN="IN OUT READY K" (seq only): take turns with another process
 * (bench/client.lua) over FIFOs, K calls a turn; see turn_wait.
 * Prints "<requests per second> <CPU microseconds per request>", the CPU
 * being this process's user + system time (getrusage) over the N requests.
 *
 * Built with -DBENCH_TYPED (and the C core), `seq URL N typed` keeps and
 * decodes each body into a typed Job (freed at once): libcurl plus the
 * least any typed client does per call, the floor under the sequential
 * client.  And `multi URL N C typed` also keeps
 * every body and decodes it into a typed Job with the core, holding all N
 * until the end as client:batch hands them back: libcurl plus the least any
 * typed client holding its answers does, with no request building, call
 * machine or Lua.  The floor under client:batch on this machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/resource.h>
#include <curl/curl.h>
#ifdef BENCH_TYPED
#include "intuned.h"
#endif

static size_t discard(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Turns (BENCH_TURN): two contenders alternate in slices of K calls, so
 * that a change in the machine's speed lasting longer than a slice hits both
 * alike.  A byte on IN is this process's turn, a byte written to OUT hands
 * it over, one byte on READY says the warm-up is done.  The FIFOs are opened
 * read-write, which never blocks and keeps a reader on each while either
 * process lives.  Only the slices are measured. */
static int turn_in = -1, turn_out = -1;
static long turn_k;
static int turns_open(void)
{
    const char *t = getenv("BENCH_TURN");
    char in[512], out[512], ready[512];
    if (!t || !*t) return 0;
    if (sscanf(t, "%511s %511s %511s %ld", in, out, ready, &turn_k) != 4 || turn_k < 1) return -1;
    int r = open(ready, O_RDWR);
    turn_in = open(in, O_RDWR);
    turn_out = open(out, O_RDWR);
    if (r < 0 || turn_in < 0 || turn_out < 0 || write(r, "r", 1) != 1) return -1;
    close(r);
    return 1;
}
static int turn_wait(void)
{
    char b;
    return read(turn_in, &b, 1) == 1 ? 0 : -1;
}
static int turn_pass(void) { return write(turn_out, "t", 1) == 1 ? 0 : -1; }

#ifdef BENCH_TYPED
/* one in-flight handle's body; the decoded answers, held to the end */
typedef struct { char *p; size_t n, cap; } body;
static size_t keep(char *p, size_t s, size_t n, void *u)
{
    body *b = u;
    size_t k = s * n;
    if (b->n + k > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + k) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, k);
    b->n += k;
    return k;
}
/* The typed Job of the body in b, which is emptied for the next one; NULL
 * when it does not decode (said on stderr). */
static void *decode_job(body *b)
{
    itd_error e;
    void *job = itd_decode_frozen(&itd_Job, b->p, b->n, NULL, &e);
    if (!job) fprintf(stderr, "decode: %s: %s\n", e.path, e.message);
    b->n = 0;
    return job;
}
/* The same, the Job freed at once: 0, or -1 when it does not decode. */
static int decode_drop(body *b)
{
    void *job = decode_job(b);
    if (!job) return -1;
    itd_free(&itd_Job, job);
    return 0;
}
#endif

static CURL *handle(const char *url, struct curl_slist *hdrs)
{
    CURL *h = curl_easy_init();
    const char *ca = getenv("BENCH_CA_FILE"), *v = getenv("BENCH_HTTP");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    int h11 = v && strcmp(v, "1.1") == 0;
    /* as the client: wait to multiplex where HTTP/2 can be negotiated (TLS) */
    if (!h11 && strncmp(url, "https:", 6) == 0) curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    if (ca && *ca) curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, h11 ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: %s seq|multi URL N [C]\n", argv[0]); return 2; }
    const char *url = argv[2];
    long n = atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* the same request headers the client sends, a User-Agent among them:
     * libcurl 7.88 spends about 3,500 instructions a request on each custom
     * header (callgrind: 5% of the bare loop's, which sent none before).
     * BENCH_UA names it: bench/client gives one as long as the client's,
     * told apart from it in the server's logs. */
    const char *ua = getenv("BENCH_UA");
    char uah[256];
    snprintf(uah, sizeof uah, "User-Agent: %s", ua && *ua ? ua : "curl-direct/0.1.0");
    struct curl_slist *hdrs = curl_slist_append(NULL, "x-api-key: bench-key");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, uah);
    double t0, c0, t1, c1;
    if (strcmp(argv[1], "seq") == 0) {
        CURL *h = handle(url, hdrs);
#ifdef BENCH_TYPED
        /* `seq URL N typed`: each body kept and decoded into a typed Job,
         * then freed (a sequential caller drops each answer in turn) */
        int typed = argc > 4 && strcmp(argv[4], "typed") == 0;
        body sb = { NULL, 0, 0 };
        if (typed) {
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &sb);
        }
#define SEQ_DECODED() (!typed || decode_drop(&sb) == 0)
#else
#define SEQ_DECODED() 1
#endif
        if (curl_easy_perform(h) != CURLE_OK) { fprintf(stderr, "request failed\n"); return 1; } /* warm */
        if (!SEQ_DECODED()) return 1;
        int turns = turns_open();
        if (turns < 0) { fprintf(stderr, "BENCH_TURN: cannot open its FIFOs\n"); return 2; }
        if (!turns) turn_k = n;
        t0 = c0 = t1 = c1 = 0;
        for (long i = 0; i < n;) {
            if (turns && turn_wait()) { fprintf(stderr, "BENCH_TURN: lost the other process\n"); return 1; }
            double ts = now(), cs = cpu();
            for (long k = 0; k < turn_k && i < n; k++, i++) {
                if (curl_easy_perform(h) != CURLE_OK) { fprintf(stderr, "request failed\n"); return 1; }
                if (!SEQ_DECODED()) return 1;
            }
            t1 += now() - ts;
            c1 += cpu() - cs;
            if (turns && turn_pass()) { fprintf(stderr, "BENCH_TURN: lost the other process\n"); return 1; }
        }
        curl_easy_cleanup(h);
#ifdef BENCH_TYPED
        free(sb.p);
#endif
    } else {
        long c = argc > 4 ? atol(argv[4]) : 32, started = 0, done = 0;
#ifdef BENCH_TYPED
        int typed = argc > 5 && strcmp(argv[5], "typed") == 0;
        body *bodies = calloc((size_t)c, sizeof *bodies);
        void **held = calloc((size_t)n, sizeof *held);
        if (!bodies || !held) return 1;
#endif
        CURLM *m = curl_multi_init();
        curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, c);
        CURL **hs = calloc((size_t)c, sizeof *hs);
        t0 = now();
        c0 = cpu();
        for (long i = 0; i < c && started < n; i++, started++) {
            hs[i] = handle(url, hdrs);
#ifdef BENCH_TYPED
            if (typed) {
                curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, keep);
                curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, &bodies[i]);
                curl_easy_setopt(hs[i], CURLOPT_PRIVATE, &bodies[i]);
            }
#endif
            curl_multi_add_handle(m, hs[i]);
        }
        while (done < n) {
            int running, left;
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(m, &left))) {
                CURL *h = msg->easy_handle;
                if (msg->data.result != CURLE_OK) { fprintf(stderr, "request failed: %d\n", msg->data.result); return 1; }
                curl_multi_remove_handle(m, h);
#ifdef BENCH_TYPED
                if (typed) {
                    body *b = NULL;
                    curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&b);
                    if (!(held[done] = decode_job(b))) return 1;
                }
#endif
                done++;
                if (started < n) { curl_multi_add_handle(m, h); started++; }
            }
            if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
        }
        for (long i = 0; i < c; i++) if (hs[i]) curl_easy_cleanup(hs[i]);
        free(hs);
        curl_multi_cleanup(m);
        t1 = now();
        c1 = cpu();
#ifdef BENCH_TYPED
        /* the answers are the caller's until after the measure */
        for (long i = 0; i < n; i++) itd_free(&itd_Job, held[i]);
        for (long i = 0; i < c; i++) free(bodies[i].p);
        free(held);
        free(bodies);
#endif
    }
    double dt = t1 - t0, dc = c1 - c0;
    printf("%.1f %.2f\n", (double)n / dt, dc * 1e6 / (double)n);
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    return 0;
}
