/* C tests of scrub.c: the by-value scrub of a call's secrets (strings,
 * buffers with NUL bytes, cJSON keys and values, errors), the by-key
 * redaction of free-form JSON (tostring of runs with a configuration
 * snapshot, error bodies), and the libcurl transport against a server that
 * echoes every request back in a 400: neither the error nor the hook's
 * events may carry a secret. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "intuned.h"
#include "t.h"

static const char KEY[] = "echo-api-key-4242";
static const char S3[] = "s3-secret-AbCdEf0123";
static const char WH[] = "wh-header-secret-777";
static const char BEARER[] = "bearer-credential-9876";

/* ------------------------------------------------------------ helpers */

static int contains(const char *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; hay && i + l <= n; i++)
        if (memcmp(hay + i, needle, l) == 0) return 1;
    return 0;
}

static int leaks(const char *s)
{
    if (!s) return 0;
    size_t n = strlen(s);
    return contains(s, n, KEY) || contains(s, n, S3) || contains(s, n, WH) || contains(s, n, BEARER);
}

static int json_leaks(const cJSON *j)
{
    if (!j) return 0;
    char *t = cJSON_PrintUnformatted(j);
    int r = !t || leaks(t);
    free(t);
    return r;
}

/* ------------------------------------------------------------ unit tests */

static void test_scrub(void)
{
    itd_secrets s;
    itd_secrets_init(&s);
    CHECK(itd_secrets_add(&s, "abcd", 4, 0) == 0);
    CHECK(itd_secrets_add(&s, "abcd1234", 8, 1) == 0);
    CHECK(itd_secrets_add(&s, "xyz", 3, 0) == 0);      /* too short: ignored */
    CHECK(itd_secrets_add(&s, "abcd1234", 8, 0) == 0); /* duplicate: ignored */
    CHECK(s.n == 2);
    char b1[] = "xxabcd1234yy abcd xyz";
    size_t n = itd_scrub(b1, strlen(b1), &s);
    CHECK_STR(b1, "xx***yy *** xyz"); /* the longest secret wins, short ones stay */
    CHECK(n == strlen(b1));
    char b2[] = { 'a', 0, 'a', 'b', 'c', 'd', '1', '2', '3', '4', 'z', 0 };
    n = itd_scrub(b2, 11, &s);
    CHECK(n == 6 && memcmp(b2, "a\0***z", 6) == 0); /* NUL bytes do not stop it */
    CHECK(itd_secrets_in("..abcd..", 8, &s) == 1);
    CHECK(itd_secrets_in("..abc..", 7, &s) == 0);
    char b3[] = "nothing here";
    CHECK(itd_scrub(b3, strlen(b3), &s) == strlen("nothing here"));
    CHECK_STR(b3, "nothing here");
    itd_secrets_free(&s);
    CHECK(s.n == 0);

    /* many secrets (past the inline ones) and JSON-escaped forms */
    itd_secrets m;
    itd_secrets_init(&m);
    char names[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "secret-%02d", i);
        CHECK(itd_secrets_add(&m, names[i], strlen(names[i]), 1) == 0);
    }
    CHECK(itd_secrets_add(&m, "pa\"ss\\word", 10, 1) == 0);
    char b4[] = "a secret-19 b secret-03 c {\"p\":\"pa\\\"ss\\\\word\"}";
    itd_scrub(b4, strlen(b4), &m);
    CHECK_STR(b4, "a *** b *** c {\"p\":\"***\"}");
    itd_secrets_free(&m);
}

static void test_header_names(void)
{
    const char *yes[] = { "x-api-key", "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
                          "X-Auth-Token", "X-Secret", "X-Session-Id", NULL };
    const char *no[] = { "Accept", "User-Agent", "X-Trace", "Content-Type", NULL };
    for (int i = 0; yes[i]; i++) CHECK(itd_header_is_secret(yes[i], strlen(yes[i])));
    for (int i = 0; no[i]; i++) CHECK(!itd_header_is_secret(no[i], strlen(no[i])));
}

static itd_job_input *input_with(const char *sink_json)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"id\":\"secret-job\",\"payload\":[{\"apiName\":\"a\"}],"
             "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"sink\":%s}", sink_json);
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_job_input *in = itd_job_input_decode(doc, strlen(doc), &e);
    if (!in) fprintf(stderr, "input: %s\n", e.message);
    itd_error_clear(&e);
    return in;
}

static char S3_SINK[256], WH_SINK[256];

static void test_call_secrets(void)
{
    itd_job_input *s3 = input_with(S3_SINK), *wh = input_with(WH_SINK);
    CHECK(s3 && wh);
    if (!s3 || !wh) { itd_job_input_free(s3); itd_job_input_free(wh); return; }
    itd_config cfg = { NULL, "ws", KEY, NULL };
    itd_call_args a;
    memset(&a, 0, sizeof a);
    a.input = s3;
    itd_secrets s;
    itd_secrets_init(&s);
    CHECK(itd_secrets_add_call(&s, &cfg, &a, 0) == 0);
    a.input = wh;
    CHECK(itd_secrets_add_call(&s, &cfg, &a, 0) == 0);
    CHECK(itd_secrets_add_header(&s, "Authorization", 13, " Bearer bearer-credential-9876", 1) == 0);
    CHECK(itd_secrets_add_header(&s, "X-Trace", 7, "trace-value-1", 1) == 0); /* not secret-like */
    char text[512];
    snprintf(text, sizeof text, "%s|%s|%s|Bearer %s|%s|trace-value-1", KEY, S3, WH, BEARER, BEARER);
    itd_scrub(text, strlen(text), &s);
    CHECK_STR(text, "***|***|***|***|***|trace-value-1");
    itd_secrets_free(&s);
    itd_job_input_free(s3);
    itd_job_input_free(wh);
}

static void test_scrub_error(void)
{
    itd_secrets s;
    itd_secrets_init(&s);
    itd_secrets_add(&s, KEY, strlen(KEY), 0);
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_error_set(&e, ITD_ERR_INVALID_INPUT, "a.echo-api-key-4242", "bad key echo-api-key-4242!");
    char doc[256];
    snprintf(doc, sizeof doc, "{\"%s\":{\"list\":[\"x %s y\",1,{\"%s\":true}]}}", KEY, KEY, KEY);
    e.data = cJSON_Parse(doc);
    e.details = cJSON_Parse(doc);
    e.body = strdup(doc);
    e.body_len = strlen(doc);
    itd_scrub_error(&e, &s);
    CHECK_STR(e.message, "bad key ***!");
    CHECK_STR(e.path, "a.***");
    CHECK(!json_leaks(e.data) && !json_leaks(e.details) && !leaks(e.body));
    CHECK(e.body_len == strlen(e.body));
    char *t = cJSON_PrintUnformatted(e.data);
    CHECK_STR(t, "{\"***\":{\"list\":[\"x *** y\",1,{\"***\":true}]}}");
    free(t);
    itd_error_clear(&e);
    itd_secrets_free(&s);
}

static void test_redact_json(void)
{
    const char *doc =
        "{\"configuration\":{},\"sink\":{\"type\":\"webhook\",\"url\":\"u\",\"headers\":{\"X-A\":\"v1\",\"B\":\"v2\"}},"
        "\"other\":[{\"type\":\"s3\",\"secretAccessKey\":\"k1\",\"bucket\":\"b\"},{\"type\":\"webhook\",\"headers\":{\"C\":\"v3\"}}],"
        "\"headers\":{\"Authorization\":\"a1\",\"Accept\":\"json\"},\"secret_access_key\":null,\"parameters\":{\"headers\":\"h\"}}";
    cJSON *t = cJSON_Parse(doc);
    CHECK(itd_redact_json(t) == 5);
    char *s = cJSON_PrintUnformatted(t);
    CHECK_STR(s, "{\"configuration\":{},\"sink\":{\"type\":\"webhook\",\"url\":\"u\",\"headers\":{\"X-A\":\"***\",\"B\":\"***\"}},"
                 "\"other\":[{\"type\":\"s3\",\"secretAccessKey\":\"***\",\"bucket\":\"b\"},{\"type\":\"webhook\",\"headers\":{\"C\":\"***\"}}],"
                 "\"headers\":{\"Authorization\":\"***\",\"Accept\":\"json\"},\"secret_access_key\":null,\"parameters\":{\"headers\":\"h\"}}");
    CHECK(itd_redact_json(t) == 0); /* idempotent */
    free(s);
    cJSON_Delete(t);
}

/* A run of the newest API: its configuration snapshot carries the job's sink. */
static void test_snapshot_tostring(void)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"id\":\"r1\",\"job_id\":\"j\",\"project_id\":\"p\",\"workspace_id\":\"w\",\"start_time\":\"t\","
             "\"status\":\"PENDING\",\"type\":\"MANUAL\",\"job_configuration_snapshot\":{\"configuration\":{},"
             "\"sink\":%s},\"later\":{\"sink\":%s}}", S3_SINK, WH_SINK);
    itd_error e;
    memset(&e, 0, sizeof e);
    void *run = itd_decode(&itd_JobRun, doc, strlen(doc), NULL, &e);
    CHECK(run != NULL);
    if (!run) { fprintf(stderr, "run: %s\n", e.message); itd_error_clear(&e); return; }
    cJSON *red = itd_to_cjson_redacted(&itd_JobRun, run);
    CHECK(red && !json_leaks(red));
    char *rs = cJSON_PrintUnformatted(red);
    CHECK(rs && strstr(rs, "\"secretAccessKey\":\"***\"") && strstr(rs, "\"X-Hook\":\"***\""));
    free(rs);
    cJSON_Delete(red);
    char *exact = itd_encode(&itd_JobRun, run, NULL); /* to_json keeps the data exact */
    CHECK(exact && strstr(exact, S3) && strstr(exact, WH));
    free(exact);
    itd_free(&itd_JobRun, run);
}

/* An error body with another sink's secret: hidden in data, details and body. */
static void test_response_parse(void)
{
    char body[512];
    snprintf(body, sizeof body, "{\"message\":\"bad\",\"details\":{\"job\":{\"sink\":%s}}}", S3_SINK);
    itd_response resp = { 409, "application/json", NULL, body, strlen(body) };
    itd_result r;
    itd_error e;
    memset(&e, 0, sizeof e);
    CHECK(itd_response_parse(ITD_OP_JOBS_GET, &resp, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_CONFLICT);
    CHECK_STR(e.message, "bad");
    CHECK(!json_leaks(e.data) && !json_leaks(e.details) && e.body && !leaks(e.body));
    CHECK(e.body && strstr(e.body, "\"secretAccessKey\":\"***\""));
    itd_error_clear(&e);
}

/* ------------------------------------------------- the echoing server */

static int g_port;

static size_t esc(char *o, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { o[k++] = '\\'; o[k++] = (char)c; }
        else if (c < 0x20) k += (size_t)snprintf(o + k, cap - k, "\\u%04x", c);
        else o[k++] = (char)c;
    }
    o[k] = 0;
    return k;
}

static const char *header_of(const char *req, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    size_t nl = strlen(name);
    for (const char *l = strstr(req, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl;
            while (*v == ' ') v++;
            size_t n = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)n, v);
            break;
        }
    }
    return out;
}

/* Answer every request with 400 and a body that echoes it: the key as a
 * message, as a JSON key, the whole request as a string in details. */
static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static __thread char buf[16384], ebuf[40000], out[48000];
    size_t have = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (have + 1 >= sizeof buf) goto done;
            ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (r <= 0) goto done;
            have += (size_t)r;
            buf[have] = 0;
        }
        char cl[32];
        size_t hlen = (size_t)(end - buf) + 4, clen = (size_t)atol(header_of(buf, "content-length", cl, sizeof cl));
        while (have < hlen + clen) {
            if (have + 1 >= sizeof buf) goto done;
            ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (r <= 0) goto done;
            have += (size_t)r;
            buf[have] = 0;
        }
        char key[256], ekey[600];
        header_of(buf, "x-api-key", key, sizeof key);
        esc(ekey, sizeof ekey, key, strlen(key));
        esc(ebuf, sizeof ebuf, buf, hlen + clen);
        int bl = snprintf(out, sizeof out, "{\"message\":\"rejected key %s\",\"details\":{\"%s\":\"%s\"},\"%s\":1}",
                          ekey, ekey, ebuf, ekey);
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", bl);
        if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) < 0 || send(fd, out, (size_t)bl, MSG_NOSIGNAL) < 0) break;
        memmove(buf, buf + hlen + clen, have - hlen - clen);
        have -= hlen + clen;
        buf[have] = 0;
    }
done:
    close(fd);
    return NULL;
}

static void *echo_accept(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        pthread_t t;
        pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static int start_echo(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64)) return -1;
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    g_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, echo_accept, (void *)(intptr_t)ls);
    pthread_detach(t);
    return 0;
}

/* What the hook saw: every event's request and error, flattened. */
static int g_events, g_event_leaks, g_echoed;

static void hook(void *ud, const itd_event *ev)
{
    (void)ud;
    g_events++;
    g_event_leaks += leaks(ev->url) + leaks(ev->path) + leaks(ev->body);
    for (size_t i = 0; i < ev->nheaders; i++) g_event_leaks += leaks(ev->headers[i].value);
    /* the response as the event shows it: the echo carries every secret */
    for (size_t i = 0; i < ev->n_resp_headers; i++) g_event_leaks += leaks(ev->resp_headers[i].value);
    if (ev->resp_body) g_event_leaks += leaks(ev->resp_body);
    const itd_error *err = ev->error;
    if (err) {
        char line[1024];
        g_event_leaks += leaks(err->message) + leaks(itd_error_format(err, line, sizeof line));
        g_event_leaks += leaks(err->body) + json_leaks(err->details) + json_leaks(err->data);
        if (ev->kind == ITD_EV_RESPONSE && strstr(err->message, "rejected key ***")) g_echoed++;
    }
}

static void test_transport_echo(void)
{
    if (start_echo()) { CHECK(!"echo server"); return; }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/workspace", g_port);
    itd_client_opts o;
    itd_client_opts_default(&o);
    o.cfg.server_url = url;
    o.cfg.workspace_id = "ws-1";
    o.cfg.api_key = KEY;
    o.timeout_ms = 5000;
    o.hook = hook;
    static const char *const extra[] = { "Authorization: Bearer bearer-credential-9876", "X-Trace: t-1", NULL };
    o.extra_headers = extra;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_client *c = itd_client_new(&o, &e);
    CHECK(c != NULL);
    if (!c) return;
    itd_job_input *s3 = input_with(S3_SINK), *wh = input_with(WH_SINK);
    itd_job_input *inputs[] = { s3, wh, NULL };
    for (int i = 0; i < 3; i++) {
        itd_call call;
        memset(&call, 0, sizeof call);
        call.op = i < 2 ? ITD_OP_JOBS_CREATE : ITD_OP_JOBS_GET;
        call.args.project = "p";
        call.args.job_id = "j1";
        call.args.input = inputs[i];
        itd_result r;
        CHECK(itd_client_call(c, &call, &r, &e) == -1);
        CHECK(e.kind == ITD_ERR_INVALID_INPUT);
        char line[1024];
        CHECK(!leaks(e.message) && !leaks(itd_error_format(&e, line, sizeof line)) && !leaks(e.path));
        CHECK(e.body && !leaks(e.body));
        CHECK(e.details && !json_leaks(e.details));
        CHECK(e.data && !json_leaks(e.data));
        /* the echo was there to scrub: the key became a "***" key */
        CHECK(cJSON_GetObjectItemCaseSensitive(e.data, "***") != NULL);
        itd_error_clear(&e);
    }
    /* a batch takes the same path */
    itd_call calls[2];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < 2; i++) {
        calls[i].op = ITD_OP_JOBS_CREATE;
        calls[i].args.project = "p";
        calls[i].args.input = inputs[i];
    }
    itd_result rs[2];
    itd_error *es[2];
    CHECK(itd_client_batch(c, calls, 2, 2, rs, es) == 2);
    for (int i = 0; i < 2; i++) {
        CHECK(es[i] && es[i]->kind == ITD_ERR_INVALID_INPUT);
        CHECK(!leaks(es[i]->message) && !leaks(es[i]->body) && !json_leaks(es[i]->details) && !json_leaks(es[i]->data));
        itd_error_free(es[i]);
    }
    CHECK(g_events == 10);      /* request + response for each of the 5 calls */
    CHECK(g_echoed == 5);
    CHECK(g_event_leaks == 0);
    itd_client_free(c);
    itd_job_input_free(s3);
    itd_job_input_free(wh);
}

int main(void)
{
    (void)t_slurp; /* t.h's, unused here */
    snprintf(S3_SINK, sizeof S3_SINK,
             "{\"type\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"b\",\"accessKeyId\":\"AKIA1\",\"secretAccessKey\":\"%s\"}",
             S3);
    snprintf(WH_SINK, sizeof WH_SINK, "{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:1/x\",\"headers\":{\"X-Hook\":\"%s\"}}",
             WH);
    test_scrub();
    test_header_names();
    test_call_secrets();
    test_scrub_error();
    test_redact_json();
    test_snapshot_tostring();
    test_response_parse();
    test_transport_echo();
    return T_DONE();
}
