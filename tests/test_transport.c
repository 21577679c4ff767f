/* C tests of the libcurl transport against a small scripted HTTP/1.1 server
 * running in threads of this process: wire details, connection reuse,
 * retries (nothing duplicated), reconciliation, timeouts and deadline,
 * batch concurrency and order, hooks. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "intuned.h"
#include "call_cases.h"

/* ------------------------------------------------------------ the server */

enum { A_REPLY, A_DROP, A_DELAY, A_RAW /* send `body` as the whole response, close */ };

typedef struct step {
    int action;
    int status;
    const char *ctype;
    const char *body;      /* NULL: the default answer's body */
    const char *retry_after;
    int delay_ms;
    const char *header;    /* one more response header line, or NULL */
} step;

typedef struct seen {
    char method[8];
    char path[512];
    char headers[2048];
    char body[4096];
} seen;

static struct {
    pthread_mutex_t mu;
    int port;
    step script[32];
    int nscript, next;
    seen log[4096];
    int nlog;
    int accepts;
    int inflight, max_inflight;
    int fail_first;        /* batch: the first N requests answer 503 */
    int default_delay_ms;
} S;

static void reset_server(void)
{
    pthread_mutex_lock(&S.mu);
    S.nscript = S.next = S.nlog = S.accepts = S.inflight = S.max_inflight = S.fail_first = 0;
    S.default_delay_ms = 0;
    pthread_mutex_unlock(&S.mu);
}

static void script(step s)
{
    pthread_mutex_lock(&S.mu);
    S.script[S.nscript++] = s;
    pthread_mutex_unlock(&S.mu);
}

#define JOB_FMT CC_JOB_FMT

static void default_answer(const seen *q, int *status, char *body, size_t blen)
{
    cc_default_answer(q->method, q->path, status, body, blen);
}

static int read_request(int fd, char *buf, size_t cap, size_t *have, seen *q)
{
    char *end;
    for (;;) {
        buf[*have] = 0;
        if ((end = strstr(buf, "\r\n\r\n")) != NULL) break;
        if (*have + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (r <= 0) return -1;
        *have += (size_t)r;
    }
    size_t hlen = (size_t)(end - buf) + 4;
    memset(q, 0, sizeof *q);
    sscanf(buf, "%7s %511s", q->method, q->path);
    char *hs = strstr(buf, "\r\n") + 2;
    snprintf(q->headers, sizeof q->headers, "%.*s", (int)(end - hs), hs);
    size_t clen = 0;
    for (char *l = q->headers; l && *l;) {
        if (strncasecmp(l, "content-length:", 15) == 0) clen = (size_t)atol(l + 15);
        l = strstr(l, "\r\n");
        if (l) l += 2;
    }
    while (*have < hlen + clen) {
        if (*have + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (r <= 0) return -1;
        *have += (size_t)r;
    }
    snprintf(q->body, sizeof q->body, "%.*s", (int)clen, buf + hlen);
    memmove(buf, buf + hlen + clen, *have - hlen - clen);
    *have -= hlen + clen;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static __thread char buf[65536];
    static __thread char body[16384];
    size_t have = 0;
    seen q;
    while (read_request(fd, buf, sizeof buf, &have, &q) == 0) {
        step st = { A_REPLY, 0, "application/json", NULL, NULL, 0, NULL };
        int from_script = 0, fail = 0, dd;
        pthread_mutex_lock(&S.mu);
        if (S.nlog < (int)(sizeof S.log / sizeof S.log[0])) S.log[S.nlog++] = q;
        if (S.next < S.nscript) { st = S.script[S.next++]; from_script = 1; }
        else if (S.fail_first > 0) { S.fail_first--; fail = 1; }
        /* A raw answer is copied while the lock is held: the test may free
         * its buffer as soon as the client has given up, while this thread
         * is still sending. */
        char *raw = st.action == A_RAW && st.body ? strdup(st.body) : NULL;
        if (++S.inflight > S.max_inflight) S.max_inflight = S.inflight;
        dd = S.default_delay_ms;
        pthread_mutex_unlock(&S.mu);
        if (!from_script && dd) sleep_ms(dd);
        if (st.action == A_DELAY) sleep_ms(st.delay_ms);
        if (st.action == A_DROP || st.action == A_RAW) {
            pthread_mutex_lock(&S.mu);
            S.inflight--;
            pthread_mutex_unlock(&S.mu);
            if (raw) {
                send(fd, raw, strlen(raw), MSG_NOSIGNAL);
                shutdown(fd, SHUT_WR);
                sleep_ms(50); /* let the client read it before the close */
                free(raw);
            }
            break;
        }
        int status = st.status;
        const char *ct = st.ctype;
        if (fail) { status = 503; snprintf(body, sizeof body, "{\"message\":\"busy\"}"); }
        else if (st.body) snprintf(body, sizeof body, "%s", st.body);
        else {
            int ds;
            default_answer(&q, &ds, body, sizeof body);
            if (!status) status = ds;
        }
        char head[1024];
        size_t bl = strlen(body);
        int hn = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\n%s%s%s%s%s%s%s%sContent-Length: %zu\r\n\r\n", status,
                          ct ? "Content-Type: " : "", ct ? ct : "", ct ? "\r\n" : "",
                          st.retry_after ? "Retry-After: " : "", st.retry_after ? st.retry_after : "",
                          st.retry_after ? "\r\n" : "", st.header ? st.header : "", st.header ? "\r\n" : "", bl);
        pthread_mutex_lock(&S.mu);
        S.inflight--;
        pthread_mutex_unlock(&S.mu);
        if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) < 0 || (bl && send(fd, body, bl, MSG_NOSIGNAL) < 0)) break;
    }
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&S.mu);
        S.accepts++;
        pthread_mutex_unlock(&S.mu);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static int start_server(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 256)) return -1;
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    S.port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, accept_main, (void *)(intptr_t)ls);
    pthread_detach(t);
    return 0;
}

/* ----------------------------------------------------------- helpers */

static char server_url[128];
static int hook_events, hook_leaks;

/* the table runner's (see cc_run), or NULL */
static cc_outcome *g_out;
static const cc_case *g_case;

static void hook(void *ud, const itd_event *ev)
{
    (void)ud;
    hook_events++;
    for (size_t i = 0; i < ev->nheaders; i++)
        if (strstr(ev->headers[i].value, "secret-key-123")) hook_leaks++;
    if (ev->body && strstr(ev->body, "s3cr3t")) hook_leaks++;
    if (g_out) cc_record_event(g_out, g_case, ev);
}

static itd_client *client(long timeout_ms, long deadline_ms, int attempts)
{
    itd_client_opts o;
    itd_client_opts_default(&o);
    o.cfg.server_url = server_url;
    o.cfg.workspace_id = "ws-1";
    o.cfg.api_key = "secret-key-123";
    o.timeout_ms = timeout_ms;
    o.deadline_ms = deadline_ms;
    o.connect_timeout_ms = 2000;
    o.retry.initial_delay = 0.01;
    o.retry.max_delay = 0.05;
    o.retry.max_attempts = attempts;
    o.hook = hook;
    static const char *const extra[] = { "X-Trace: t-1", NULL };
    o.extra_headers = extra;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_client *c = itd_client_new(&o, &e);
    if (!c) fprintf(stderr, "client: %s\n", e.message);
    itd_error_clear(&e);
    return c;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int has_header(const seen *q, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = q->headers; *p; p++)
        if (strncasecmp(p, line, n) == 0) return 1;
    return 0;
}

static itd_job_input *INPUT;

static int call(itd_client *c, itd_op op, const char *job, itd_result *res, itd_error *e)
{
    itd_call k;
    memset(&k, 0, sizeof k);
    k.op = op;
    k.args.project = "p";
    k.args.job_id = job;
    k.args.run_id = "r1";
    k.args.input = INPUT;
    return itd_client_call(c, &k, res, e);
}

static int nlog(void)
{
    pthread_mutex_lock(&S.mu);
    int n = S.nlog;
    pthread_mutex_unlock(&S.mu);
    return n;
}

/* ------------------------------------------------------------- tests */

static void test_wire(void)
{
    reset_server();
    itd_client *c = client(5000, 0, 4);
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
    CHECK(r.schema == &itd_Job && r.obj && strcmp(((itd_job *)r.obj)->id, "job-1") == 0);
    itd_result_free(&r);
    CHECK(nlog() == 1);
    seen *q = &S.log[0];
    CHECK_STR(q->method, "GET");
    CHECK_STR(q->path, "/api/v1/workspace/ws-1/projects/p/jobs/job-1");
    CHECK(has_header(q, "x-api-key: secret-key-123"));
    CHECK(has_header(q, "Accept: application/json"));
    CHECK(has_header(q, "User-Agent: lua-intuned/"));
    CHECK(has_header(q, "X-Trace: t-1"));
    CHECK(!has_header(q, "Content-Type"));

    /* body-less POST: Content-Length 0, no Content-Type, no Expect */
    CHECK(call(c, ITD_OP_JOBS_PAUSE, "job-1", &r, &e) == 0);
    CHECK(r.schema == &itd_PauseJob);
    itd_result_free(&r);
    q = &S.log[1];
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/api/v1/workspace/ws-1/projects/p/jobs/job-1/pause");
    CHECK(has_header(q, "Content-Length: 0"));
    CHECK(!has_header(q, "Content-Type"));
    CHECK(!has_header(q, "Expect"));

    /* create: JSON body */
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == 0);
    CHECK(r.schema == &itd_CreateJob);
    itd_result_free(&r);
    q = &S.log[2];
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/api/v1/workspace/ws-1/projects/p/jobs");
    CHECK(has_header(q, "Content-Type: application/json"));
    char *want = itd_encode(&itd_JobInput, INPUT, NULL);
    CHECK_STR(q->body, want);
    free(want);

    /* delete 204, terminate, runs list, list */
    CHECK(call(c, ITD_OP_JOBS_DELETE, "job-1", &r, &e) == 0);
    CHECK(r.obj == NULL && e.kind == ITD_ERR_NONE);
    CHECK_STR(S.log[3].method, "DELETE");
    CHECK(call(c, ITD_OP_RUNS_TERMINATE, "job-1", &r, &e) == 0);
    itd_result_free(&r);
    CHECK(!has_header(&S.log[4], "Content-Type"));
    CHECK(call(c, ITD_OP_RUNS_LIST, "job-1", &r, &e) == 0);
    CHECK(r.schema == &itd_JobRunList);
    itd_result_free(&r);
    CHECK(call(c, ITD_OP_JOBS_LIST, NULL, &r, &e) == 0);
    CHECK(r.schema == &itd_JobList);
    itd_result_free(&r);
    /* one easy handle serves every call: nothing of an earlier request
     * (body, method, custom verb) may carry over to the next */
    CHECK(!has_header(&S.log[3], "Content-Length") && !has_header(&S.log[3], "Content-Type") && !S.log[3].body[0]);
    CHECK_STR(S.log[4].method, "POST");
    CHECK_STR(S.log[5].method, "GET");
    CHECK(!has_header(&S.log[5], "Content-Length") && !S.log[5].body[0]);
    CHECK_STR(S.log[6].method, "GET");
    CHECK_STR(S.log[6].path, "/api/v1/workspace/ws-1/projects/p/jobs");

    /* one connection, plus the fresh one create must use */
    CHECK(S.accepts == 2);
    for (int i = 0; i < 5; i++) {
        CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
        itd_result_free(&r);
    }
    CHECK(S.accepts == 2);
    CHECK(hook_leaks == 0 && hook_events >= 14 + 10);

    /* wrong content type: decode; error statuses: kinds */
    script((step){ A_REPLY, 200, "text/html", "<html>", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE && e.status == 200 && e.attempts == 1);
    script((step){ A_REPLY, 404, "application/json", "{\"message\":\"No job with id job-1\"}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_NOT_FOUND && e.status == 404);
    CHECK_STR(e.message, "No job with id job-1");
    /* the key never shows in an error, even when the server echoes it */
    script((step){ A_REPLY, 401, "application/json", "{\"message\":\"bad key secret-key-123\"}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_UNAUTHORIZED && strstr(e.message, "secret-key-123") == NULL &&
          strstr(e.body, "secret-key-123") == NULL);
    /* validation: nothing sent */
    int before = nlog();
    CHECK(call(c, ITD_OP_JOBS_GET, "..", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_VALIDATION && e.attempts == 0 && nlog() == before);
    itd_error_clear(&e);
    itd_client_free(c);
}

static void test_retries(void)
{
    itd_client *c = client(5000, 0, 4);
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);

    /* idempotent: 503, 502 then success */
    reset_server();
    script((step){ A_REPLY, 503, "application/json", "{}", NULL, 0, NULL });
    script((step){ A_REPLY, 502, "text/plain", "bad gateway", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
    CHECK(nlog() == 3);
    itd_result_free(&r);
    /* 500: not retried */
    reset_server();
    script((step){ A_REPLY, 500, "application/json", "{\"message\":\"boom\"}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_SERVER && e.attempts == 1 && nlog() == 1);
    /* gives up after max_attempts */
    reset_server();
    for (int i = 0; i < 6; i++) script((step){ A_REPLY, 503, "application/json", "{}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_SERVER && e.attempts == 4 && nlog() == 4);
    /* dropped connection: GET retried */
    reset_server();
    script((step){ A_DROP, 0, NULL, NULL, NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
    CHECK(nlog() == 2);
    itd_result_free(&r);

    /* create / trigger never repeated once they may have been processed */
    int st[] = { 500, 502, 503, 504 };
    for (int i = 0; i < 4; i++) {
        reset_server();
        script((step){ A_REPLY, st[i], "application/json", "{}", NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
        CHECK(e.status == st[i] && e.attempts == 1 && nlog() == 1);
        reset_server();
        script((step){ A_REPLY, st[i], "application/json", "{}", NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_TRIGGER, "job-1", &r, &e) == -1);
        CHECK(e.status == st[i] && e.attempts == 1 && nlog() == 1);
    }
    reset_server();
    script((step){ A_DROP, 0, NULL, NULL, NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONNECTION && e.attempts == 1 && nlog() == 1);
    reset_server();
    script((step){ A_DROP, 0, NULL, NULL, NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_TRIGGER, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONNECTION && e.attempts == 1 && nlog() == 1);
    /* 429 and 503 with Retry-After: the server did not process it */
    reset_server();
    script((step){ A_REPLY, 429, "application/json", "{\"message\":\"slow\"}", "0.2", 0, NULL });
    double t0 = now_s();
    CHECK(call(c, ITD_OP_JOBS_TRIGGER, "job-1", &r, &e) == 0);
    CHECK(now_s() - t0 >= 0.2); /* Retry-After honoured */
    CHECK(nlog() == 2);
    itd_result_free(&r);
    reset_server();
    script((step){ A_REPLY, 503, "application/json", "{}", "0", 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == 0);
    CHECK(nlog() == 2);
    itd_result_free(&r);

    /* reconciliation: 429, then 409 (the first went through after all) */
    reset_server();
    script((step){ A_REPLY, 429, "application/json", "{}", "0", 0, NULL });
    script((step){ A_REPLY, 409, "application/json", "{\"message\":\"Job already exists\"}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == 0);
    CHECK(r.schema == &itd_CreateJob && r.obj && strcmp(((itd_action *)r.obj)->id, "job-0001") == 0 &&
          strcmp(((itd_action *)r.obj)->message, "created") == 0);
    itd_result_free(&r);
    CHECK(nlog() == 3);
    CHECK_STR(S.log[2].method, "GET");
    CHECK_STR(S.log[2].path, "/api/v1/workspace/ws-1/projects/p/jobs/job-0001");
    /* ... and a different stored job is a conflict */
    reset_server();
    script((step){ A_REPLY, 429, "application/json", "{}", "0", 0, NULL });
    script((step){ A_REPLY, 409, "application/json", "{\"message\":\"Job already exists\"}", NULL, 0, NULL });
    static char other[2048];
    snprintf(other, sizeof other, JOB_FMT, "job-0001");
    char *pos = strstr(other, "scrape");
    memcpy(pos, "scrapX", 6);
    script((step){ A_REPLY, 200, "application/json", other, NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONFLICT && e.status == 409 && e.attempts == 3);
    CHECK_STR(e.message, "Job already exists");
    /* a first-attempt 409 is a plain conflict: no GET */
    reset_server();
    script((step){ A_REPLY, 409, "application/json", "{\"message\":\"Job already exists\"}", NULL, 0, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONFLICT && nlog() == 1);

    /* per-call override: retries off */
    reset_server();
    script((step){ A_REPLY, 503, "application/json", "{}", NULL, 0, NULL });
    itd_retry_policy off;
    itd_retry_policy_default(&off);
    off.enabled = 0;
    itd_call k;
    memset(&k, 0, sizeof k);
    k.op = ITD_OP_JOBS_GET;
    k.args.project = "p";
    k.args.job_id = "j";
    k.retry = &off;
    CHECK(itd_client_call(c, &k, &r, &e) == -1);
    CHECK(e.attempts == 1 && nlog() == 1);
    itd_error_clear(&e);
    itd_client_free(c);
}

static void test_connect_failures(void)
{
    /* a closed port: nothing was sent, so even create is retried */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    itd_client_opts o;
    itd_client_opts_default(&o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api", ntohs(a.sin_port));
    o.cfg.server_url = url;
    o.cfg.workspace_id = "w";
    o.cfg.api_key = "k";
    o.retry.initial_delay = 0.001;
    o.retry.max_attempts = 3;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_client *c = itd_client_new(&o, &e);
    itd_result r;
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONNECTION && e.attempts == 3 && e.retryable);
    itd_client_free(c);
    /* client creation refuses a missing workspace id or key */
    o.cfg.workspace_id = "";
    CHECK(itd_client_new(&o, &e) == NULL && e.kind == ITD_ERR_VALIDATION);
    o.cfg.workspace_id = "w";
    o.cfg.api_key = NULL;
    CHECK(itd_client_new(&o, &e) == NULL && e.kind == ITD_ERR_VALIDATION);
    o.cfg.api_key = "k";
    static const char *const bad[] = { "x-api-key: other", NULL };
    o.extra_headers = bad;
    CHECK(itd_client_new(&o, &e) == NULL && e.kind == ITD_ERR_VALIDATION);
    static const char *const bad2[] = { "X-A: 1\r\nX-B: 2", NULL };
    o.extra_headers = bad2;
    CHECK(itd_client_new(&o, &e) == NULL && e.kind == ITD_ERR_VALIDATION);
    itd_error_clear(&e);
}

static void test_timeouts(void)
{
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);
    /* per-attempt timeout: GET retried, create not (the request was sent) */
    itd_client *c = client(150, 0, 2);
    reset_server();
    script((step){ A_DELAY, 200, NULL, NULL, NULL, 400, NULL });
    script((step){ A_DELAY, 200, NULL, NULL, NULL, 400, NULL });
    double t0 = now_s();
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_TIMEOUT && e.attempts == 2);
    CHECK(now_s() - t0 < 1.0);
    sleep_ms(500);
    reset_server();
    script((step){ A_DELAY, 201, NULL, NULL, NULL, 400, NULL });
    CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_TIMEOUT && e.attempts == 1);
    sleep_ms(500);
    itd_client_free(c);

    /* deadline: stops retrying instead of sleeping past it */
    c = client(5000, 300, 10);
    reset_server();
    for (int i = 0; i < 10; i++) script((step){ A_REPLY, 503, "application/json", "{}", "1", 0, NULL });
    t0 = now_s();
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_SERVER && e.attempts == 1 && fabs(e.retry_after - 1) < 1e-9);
    CHECK(now_s() - t0 < 0.25);
    /* deadline cuts a slow attempt: TIMEOUT */
    reset_server();
    script((step){ A_DELAY, 200, NULL, NULL, NULL, 1000, NULL });
    t0 = now_s();
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_TIMEOUT);
    CHECK(strstr(e.message, "deadline") != NULL);
    CHECK(now_s() - t0 < 0.6);
    sleep_ms(800);
    itd_error_clear(&e);
    itd_client_free(c);
}

static void test_batch(void)
{
    enum { N = 300 };
    itd_client *c = client(5000, 0, 4);
    static itd_call calls[N];
    static itd_result res[N];
    static itd_error *errs[N];
    static char ids[N][32];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "job-%04d", i);
        calls[i].op = i % 3 == 0 ? ITD_OP_JOBS_TRIGGER : ITD_OP_JOBS_GET;
        calls[i].args.project = "p";
        calls[i].args.job_id = i == 7 ? ".." : ids[i];
    }
    reset_server();
    S.default_delay_ms = 2;
    size_t failed = itd_client_batch(c, calls, N, 8, res, errs);
    CHECK(failed == 1);
    CHECK(errs[7] && errs[7]->kind == ITD_ERR_VALIDATION);
    int inorder = 1;
    for (int i = 0; i < N; i++) {
        if (i == 7) continue;
        if (errs[i] || !res[i].obj) { inorder = 0; continue; }
        const char *id = calls[i].op == ITD_OP_JOBS_TRIGGER ? ((itd_action *)res[i].obj)->id : ((itd_job *)res[i].obj)->id;
        if (strcmp(id, ids[i]) != 0) inorder = 0;
    }
    CHECK(inorder);
    CHECK(nlog() == N - 1);
    CHECK(S.max_inflight <= 8 && S.max_inflight >= 2);
    CHECK(S.accepts <= 8 + N / 3); /* triggers use fresh connections */
    /* the calls that succeeded hold no error at all */
    int boxed = 0;
    for (int i = 0; i < N; i++) boxed += errs[i] != NULL;
    CHECK(boxed == 1);
    for (int i = 0; i < N; i++) { itd_result_free(&res[i]); itd_error_free(errs[i]); }

    /* with failures: GETs retried, triggers answered 503 are not */
    reset_server();
    S.fail_first = 20;
    failed = itd_client_batch(c, calls, N, 16, res, errs);
    int trig_fail = 0, get_fail = 0;
    for (int i = 0; i < N; i++) {
        if (i == 7) continue;
        if (errs[i]) {
            if (calls[i].op == ITD_OP_JOBS_TRIGGER) { trig_fail++; CHECK(errs[i]->status == 503 && errs[i]->attempts == 1); }
            else get_fail++;
        }
    }
    CHECK(get_fail == 0);
    CHECK((size_t)trig_fail + 1 == failed);
    CHECK(nlog() == N - 1 + (20 - trig_fail));
    for (int i = 0; i < N; i++) { itd_result_free(&res[i]); itd_error_free(errs[i]); }
    S.default_delay_ms = 0;

    /* batch reconciliation */
    reset_server();
    itd_call one[2];
    memset(one, 0, sizeof one);
    one[0].op = ITD_OP_JOBS_CREATE;
    one[0].args.project = "p";
    one[0].args.input = INPUT;
    one[1] = one[0];
    script((step){ A_REPLY, 429, "application/json", "{}", "0", 0, NULL });
    script((step){ A_REPLY, 409, "application/json", "{\"message\":\"exists\"}", NULL, 0, NULL });
    failed = itd_client_batch(c, one, 1, 4, res, errs);
    CHECK(failed == 0 && res[0].schema == &itd_CreateJob && errs[0] == NULL);
    CHECK(nlog() == 3 && strcmp(S.log[2].method, "GET") == 0);
    itd_result_free(&res[0]);
    itd_error_free(errs[0]);

    /* no arrays: the count of failures all the same */
    CHECK(itd_client_batch(c, calls, 8, 4, NULL, NULL) == 1);
    /* no client: every call's error says so */
    itd_error *ue[2];
    CHECK(itd_client_batch(NULL, calls, 2, 4, NULL, ue) == 2);
    CHECK(ue[0] && ue[0]->kind == ITD_ERR_USAGE && ue[1] && ue[1]->kind == ITD_ERR_USAGE);
    itd_error_free(ue[0]);
    itd_error_free(ue[1]);
    itd_client_free(c);
}

/* What a broken server answers is CONNECTION or DECODE and says the request
 * may have been sent: never VALIDATION ("nothing was sent", so a create
 * would look safe to repeat) nor NOMEM. */
static void test_hostile_responses(void)
{
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_client *c = client(5000, 0, 4);
    static const char *const garbled[] = {
        "HTXP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/9.7 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 2x1 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "garbage\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof garbled / sizeof garbled[0]; i++) {
        reset_server();
        for (int k = 0; k < 4; k++) script((step){ A_RAW, 0, NULL, garbled[i], NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
        if (e.kind != ITD_ERR_CONNECTION) fprintf(stderr, "garbled %zu: %s: %s\n", i, itd_err_kind_name(e.kind), e.message);
        CHECK(e.kind == ITD_ERR_CONNECTION);
        CHECK(e.path[0] == 0);
        CHECK(strstr(e.message, "may have been sent") != NULL);
        CHECK(e.attempts == 1 && nlog() == 1);   /* create: not repeated */
        /* an idempotent call is retried, and succeeds once the server recovers */
        reset_server();
        script((step){ A_RAW, 0, NULL, garbled[i], NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
        CHECK(nlog() == 2);
        itd_result_free(&r);
    }
    /* a 200 KB header line, and 300 headers of 1 KB */
    size_t big = 200 * 1024;
    char *one = malloc(big + 256), *many = malloc(320 * 1100 + 256);
    int n = sprintf(one, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Big: ");
    memset(one + n, 'a', big);
    sprintf(one + n + big, "\r\nContent-Length: 2\r\n\r\n{}");
    n = sprintf(many, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n");
    for (int i = 0; i < 300; i++) {
        n += sprintf(many + n, "X-H%d: ", i);
        memset(many + n, 'b', 1024);
        n += 1024;
        n += sprintf(many + n, "\r\n");
    }
    sprintf(many + n, "Content-Length: 2\r\n\r\n{}");
    const char *huge[] = { one, many };
    for (int i = 0; i < 2; i++) {
        reset_server();
        for (int k = 0; k < 4; k++) script((step){ A_RAW, 0, NULL, huge[i], NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
        if (e.kind != ITD_ERR_DECODE) fprintf(stderr, "huge %d: %s: %s\n", i, itd_err_kind_name(e.kind), e.message);
        CHECK(e.kind == ITD_ERR_DECODE);
        CHECK(strstr(e.message, "header too large") != NULL && strstr(e.message, "may have been sent") != NULL);
        CHECK(e.attempts == 1 && nlog() == 1);
        reset_server();
        for (int k = 0; k < 4; k++) script((step){ A_RAW, 0, NULL, huge[i], NULL, 0, NULL });
        CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
        CHECK(e.kind == ITD_ERR_DECODE && e.attempts == 1); /* the same answer would come again */
    }
    free(one);
    free(many);
    itd_error_clear(&e);
    itd_client_free(c);

    /* an unsupported scheme is still VALIDATION: nothing was sent */
    itd_client_opts o;
    itd_client_opts_default(&o);
    o.cfg.server_url = "ftp2://127.0.0.1:1/api/";
    o.cfg.workspace_id = "w";
    o.cfg.api_key = "k";
    c = itd_client_new(&o, &e);
    CHECK(c != NULL);
    if (c) {
        CHECK(call(c, ITD_OP_JOBS_CREATE, NULL, &r, &e) == -1);
        CHECK(e.kind == ITD_ERR_VALIDATION && strcmp(e.path, "server_url") == 0 && e.attempts == 1);
        itd_client_free(c);
    }
    itd_error_clear(&e);
}

/* Retry-After past the ceiling, with no deadline: the call ends at once */
static void test_retry_after_ceiling(void)
{
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_client *c = client(5000, 0, 4); /* deadline 0: none */
    alarm(60); /* a regression would sleep for years: end the test instead */
    static const char *const ras[] = { "99999999", "123456789012345678901234567890123456789012345678901234567890",
                                      "Fri, 31 Dec 9999 23:59:59 GMT" };
    for (size_t i = 0; i < sizeof ras / sizeof ras[0]; i++) {
        reset_server();
        script((step){ A_REPLY, 429, "application/json", "{}", ras[i], 0, NULL });
        double t0 = now_s();
        CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == -1);
        CHECK(now_s() - t0 < 5);
        CHECK(e.kind == ITD_ERR_RATE_LIMITED && e.attempts == 1 && e.retry_after >= 99999999.0);
        CHECK(e.retry_after <= 2147483647.0);
        CHECK(nlog() == 1);
    }
    /* within the ceiling (max_delay 0.05 here) it is still a floor */
    reset_server();
    script((step){ A_REPLY, 503, "application/json", "{}", "0.3", 0, NULL });
    double t0 = now_s();
    CHECK(call(c, ITD_OP_JOBS_GET, "job-1", &r, &e) == 0);
    CHECK(now_s() - t0 >= 0.29);
    alarm(0);
    itd_result_free(&r);
    itd_error_clear(&e);
    itd_client_free(c);
}

/* ------------------------------------------------ the call-machine table */

static itd_job_input *CC_IN[3];
static char closed_url[128];

/* Play one case of tests/call_cases.h through the libcurl transport against
 * the scripted server (the same table tests/test_call.c plays through a
 * fake transport). */
static void cc_run(const cc_case *k, cc_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->err.retry_after = -1;
    reset_server();
    int maxdelay = 0;
    for (int i = 0; i < CC_MAX_STEPS && k->script[i].action; i++) {
        const cc_step *c = &k->script[i];
        if (c->action == CC_REFUSED) continue; /* k->closed_port: nothing listens */
        step st = { A_REPLY, c->status, c->ctype ? c->ctype : "application/json", c->body, c->retry_after, 0,
                    c->header };
        if (c->action == CC_DROP) st.action = A_DROP;
        if (c->action == CC_DELAY) {
            st.action = A_DELAY;
            st.delay_ms = c->delay_ms;
            if (c->delay_ms > maxdelay) maxdelay = c->delay_ms;
        }
        script(st);
    }
    itd_client_opts opts;
    itd_client_opts_default(&opts);
    opts.cfg.server_url = k->closed_port ? closed_url : server_url;
    opts.cfg.workspace_id = "ws-1";
    opts.cfg.api_key = CC_KEY;
    opts.timeout_ms = k->timeout_ms ? k->timeout_ms : 5000;
    opts.deadline_ms = k->deadline_ms > 0 ? k->deadline_ms : 0;
    opts.connect_timeout_ms = 2000;
    cc_policy(k, &opts.retry);
    opts.hook = hook;
    opts.extra_headers = CC_CLIENT_HEADERS;
    itd_client *c = itd_client_new(&opts, &o->err);
    CHECK(c != NULL);
    if (!c) return;
    itd_call call;
    memset(&call, 0, sizeof call);
    call.op = k->op;
    call.args.project = "p";
    call.args.job_id = k->job_id ? k->job_id : "job-1";
    call.args.run_id = "r1";
    call.args.input = CC_IN[k->input];
    if (k->deadline_ms < 0) call.deadline_ms = -k->deadline_ms;
    if (k->call_headers) call.extra_headers = CC_CALL_HEADERS;
    pthread_mutex_lock(&S.mu);
    int acc0 = S.accepts;
    pthread_mutex_unlock(&S.mu);
    g_out = o;
    g_case = k;
    double t0 = now_s();
    o->rc = itd_client_call(c, &call, &o->res, &o->err);
    o->elapsed = now_s() - t0;
    g_out = NULL;
    itd_client_free(c);
    pthread_mutex_lock(&S.mu);
    o->requests = S.nlog;
    o->fresh = S.accepts - acc0;
    for (int i = 0; i < S.nlog; i++) {
        const seen *q = &S.log[i];
        size_t n = strlen(q->path);
        if (strcmp(q->method, "POST") == 0 &&
            ((n >= 5 && strcmp(q->path + n - 5, "/jobs") == 0) || (n >= 8 && strcmp(q->path + n - 8, "/trigger") == 0)))
            o->nonidem++;
        if (k->req_header && !cc_has_line(q->headers, k->req_header)) o->header_missing++;
        if (k->no_req_header && cc_has_line(q->headers, k->no_req_header)) o->header_present++;
    }
    if (S.nlog) snprintf(o->last_method, sizeof o->last_method, "%s", S.log[S.nlog - 1].method);
    pthread_mutex_unlock(&S.mu);
    if (maxdelay) sleep_ms(maxdelay + 100); /* the server's late answer finds the connection gone */
}

static void test_call_table(void)
{
    cc_init();
    for (int i = 0; i < 3; i++) {
        itd_error e;
        memset(&e, 0, sizeof e);
        CC_IN[i] = itd_job_input_decode(CC_INPUTS[i], strlen(CC_INPUTS[i]), &e);
        CHECK(CC_IN[i] != NULL);
        if (!CC_IN[i]) return;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    snprintf(closed_url, sizeof closed_url, "http://127.0.0.1:%d/api/v1/workspace", ntohs(a.sin_port));
    for (size_t i = 0; i < CC_NCASES; i++) {
        cc_outcome o;
        cc_run(&CC_CASES[i], &o);
        cc_check(&CC_CASES[i], &o, "the libcurl transport");
    }
    for (int i = 0; i < 3; i++) itd_job_input_free(CC_IN[i]);
}

int main(void)
{
    (void)t_slurp;
    pthread_mutex_init(&S.mu, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (start_server()) { fprintf(stderr, "cannot start the test server\n"); return 1; }
    snprintf(server_url, sizeof server_url, "http://127.0.0.1:%d/api/v1/workspace/", S.port);
    const char *in = "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}}],"
                     "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},"
                     "\"sink\":null}";
    itd_error e;
    memset(&e, 0, sizeof e);
    INPUT = itd_job_input_decode(in, strlen(in), &e);
    if (!INPUT) { fprintf(stderr, "input: %s %s\n", e.path, e.message); return 1; }
    test_wire();
    test_retries();
    test_connect_failures();
    test_timeouts();
    test_batch();
    test_hostile_responses();
    test_retry_after_ceiling();
    test_call_table();
    itd_job_input_free(INPUT);
    return T_DONE();
}
