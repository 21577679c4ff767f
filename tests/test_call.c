/* C tests of the call machine (call.h) by scripted exchanges: no sockets, a
 * fake clock.  The table of rules is tests/call_cases.h, which
 * tests/test_transport.c runs through the libcurl transport as well; the
 * tests after it look at what only the machine shows (steps, seeds, a late
 * wake, misuse). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "call_cases.h"

static const itd_config CFG = { "http://api.test/api/v1/workspace", "ws-1", CC_KEY, NULL };
static itd_job_input *INPUTS[3];

/* ------------------------------------------------------ the fake transport */

static void header_lines(const itd_request *q, char *buf, size_t n)
{
    buf[0] = 0;
    for (size_t i = 0; i < q->nheaders; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s: %s\r\n", q->headers[i].name, q->headers[i].value);
    }
}

static int non_idempotent(const itd_request *q)
{
    size_t n = strlen(q->path);
    return strcmp(q->method, "POST") == 0 &&
           ((n >= 5 && strcmp(q->path + n - 5, "/jobs") == 0) || (n >= 8 && strcmp(q->path + n - 8, "/trigger") == 0));
}

static void drain(itd_call_m *m, const cc_case *k, cc_outcome *o)
{
    const itd_event *ev;
    while ((ev = itd_call_event(m)) != NULL) cc_record_event(o, k, ev);
}

/* Play one case against the machine: a SEND takes the next script step
 * (the default answer once the script is over), a WAIT moves the clock. */
static void cc_run(const cc_case *k, cc_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->err.retry_after = -1;
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    pol.timeout = (k->timeout_ms ? k->timeout_ms : 5000) / 1000.0;
    pol.deadline = k->deadline_ms ? labs(k->deadline_ms) / 1000.0 : 0;
    cc_policy(k, &pol.retry);
    const char *hdrs[8];
    size_t nh = 0;
    for (size_t i = 0; CC_CLIENT_HEADERS[i]; i++) hdrs[nh++] = CC_CLIENT_HEADERS[i];
    for (size_t i = 0; k->call_headers && CC_CALL_HEADERS[i]; i++) hdrs[nh++] = CC_CALL_HEADERS[i];
    hdrs[nh] = NULL;
    pol.extra_headers = hdrs;
    itd_call_args a;
    memset(&a, 0, sizeof a);
    a.project = "p";
    a.job_id = k->job_id ? k->job_id : "job-1";
    a.run_id = "r1";
    a.input = INPUTS[k->input];
    double t0 = 1000.0, now = t0;
    itd_call_m *m = itd_call_new(&CFG, k->op, &a, &pol, 42, now, &o->err);
    if (!m) { o->rc = -1; return; }
    int next = 0;
    for (int guard = 0; guard < 100; guard++) {
        itd_step st;
        itd_step_kind kind = itd_call_next(m, now, &st);
        drain(m, k, o);
        if (kind == ITD_STEP_DONE) break;
        if (kind == ITD_STEP_WAIT) { now += st.delay; continue; }
        const itd_request *q = st.request;
        cc_step s = { CC_REPLY, 0, NULL, NULL, NULL, NULL, 0 };
        if (next < CC_MAX_STEPS && k->script[next].action) s = k->script[next++];
        if (k->closed_port) s.action = CC_REFUSED;
        char lines[4096];
        header_lines(q, lines, sizeof lines);
        if (s.action != CC_REFUSED) {
            o->requests++;
            snprintf(o->last_method, sizeof o->last_method, "%s", q->method);
            if (non_idempotent(q)) { o->nonidem++; o->fresh += st.fresh; }
            if (k->req_header && !cc_has_line(lines, k->req_header)) o->header_missing++;
            if (k->no_req_header && cc_has_line(lines, k->no_req_header)) o->header_present++;
        }
        if (s.action == CC_REFUSED) {
            now += 0.001;
            itd_failure f = { ITD_ERR_CONNECTION, 0, 1, 0, "Failed to connect to api.test port 80: Connection refused", NULL };
            itd_call_feed_failure(m, now, &f);
        } else if (s.action == CC_DROP) {
            now += 0.001;
            itd_failure f = { ITD_ERR_CONNECTION, 1, 1, 0, "Empty reply from server", NULL };
            itd_call_feed_failure(m, now, &f);
        } else if (s.action == CC_DELAY && st.timeout > 0 && s.delay_ms / 1000.0 > st.timeout) {
            now += st.timeout;
            itd_failure f = { ITD_ERR_TIMEOUT, 1, 1, 0, "Operation timed out after 150 milliseconds with 0 bytes received", NULL };
            itd_call_feed_failure(m, now, &f);
        } else {
            now += s.action == CC_DELAY ? s.delay_ms / 1000.0 : 0.001;
            int status = 0;
            char body[4096];
            cc_default_answer(q->method, q->path, &status, body, sizeof body);
            if (s.status) status = s.status;
            itd_header h[2] = { { (char *)"Content-Type", (char *)(s.ctype ? s.ctype : "application/json") },
                                { NULL, NULL } };
            char hn[128], hv[512];
            size_t nrh = 1;
            if (s.header) {
                const char *colon = strchr(s.header, ':');
                snprintf(hn, sizeof hn, "%.*s", (int)(colon - s.header), s.header);
                snprintf(hv, sizeof hv, "%s", colon + 2);
                h[1].name = hn;
                h[1].value = hv;
                nrh = 2;
            }
            itd_response_in r = { status, h, nrh, h[0].value, s.retry_after, s.body ? s.body : body,
                                  strlen(s.body ? s.body : body) };
            itd_call_feed_response(m, now, &r);
        }
        drain(m, k, o);
    }
    o->elapsed = now - t0;
    o->rc = itd_call_result(m, &o->res, &o->err);
    CHECK(itd_call_event(m) == NULL);
    itd_call_free(m);
}

/* ------------------------------------------------------- machine-only */

static itd_call_m *new_get(const itd_call_policy *pol, uint64_t seed, double now)
{
    static itd_call_args a = { .project = "p", .job_id = "job-1", .api_version = ITD_APIV_V0_3_12 };
    itd_error e = ITD_ERROR_INIT;
    itd_call_m *m = itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, pol, seed, now, &e);
    CHECK(m != NULL);
    itd_error_clear(&e);
    return m;
}

static void feed_status(itd_call_m *m, double now, long status, const char *ra)
{
    itd_response_in r = { status, NULL, 0, "application/json", ra, "{}", 2 };
    itd_call_feed_response(m, now, &r);
}

/* The delays a fixed seed gives for three 503s. */
static void delays_for(uint64_t seed, double d[3])
{
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    pol.retry.initial_delay = 1;
    pol.retry.max_delay = 100;
    pol.deadline = 0;
    itd_call_m *m = new_get(&pol, seed, 0);
    double now = 0;
    for (int i = 0; i < 3; i++) {
        itd_step st;
        CHECK(itd_call_next(m, now, &st) == ITD_STEP_SEND);
        feed_status(m, now, 503, NULL);
        CHECK(itd_call_next(m, now, &st) == ITD_STEP_WAIT);
        d[i] = st.delay;
        now += st.delay;
    }
    itd_call_free(m);
}

static void test_jitter_seed(void)
{
    double a[3], b[3], c[3];
    delays_for(7, a);
    delays_for(7, b);
    delays_for(8, c);
    CHECK(a[0] == b[0] && a[1] == b[1] && a[2] == b[2]); /* a seed replays */
    CHECK(a[0] != c[0] || a[1] != c[1] || a[2] != c[2]);
    for (int i = 0; i < 3; i++) {
        double base = pow(2, i);
        CHECK(a[i] >= base * 0.5 && a[i] < base); /* jitter 0.5: [d/2, d) */
    }
    itd_rng r1, r2;
    itd_rng_seed(&r1, 0);
    itd_rng_seed(&r2, 0);
    int in_range = 1, same = 1;
    double lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        double x = itd_rng_double(&r1);
        if (!(x >= 0 && x < 1)) in_range = 0;
        if (x != itd_rng_double(&r2)) same = 0;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    CHECK(in_range && same && lo < 0.01 && hi > 0.99);
    CHECK(itd_rng_auto_seed() != 0);
}

static void test_late_wake(void)
{
    /* the transport overslept a wait: the deadline has passed by then */
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    pol.deadline = 0.3;
    pol.retry.initial_delay = 0.1;
    pol.retry.jitter = 0;
    itd_call_m *m = new_get(&pol, 1, 10);
    itd_step st;
    CHECK(itd_call_next(m, 10, &st) == ITD_STEP_SEND);
    CHECK(fabs(st.timeout - 0.3) < 1e-9); /* the attempt gets what is left of the deadline */
    CHECK(st.fresh == 0);
    feed_status(m, 10.01, 503, NULL);
    CHECK(itd_call_next(m, 10.01, &st) == ITD_STEP_WAIT && fabs(st.delay - 0.1) < 1e-9);
    CHECK(itd_call_next(m, 10.05, &st) == ITD_STEP_WAIT && fabs(st.delay - 0.06) < 1e-9); /* woken early */
    CHECK(itd_call_next(m, 10.5, &st) == ITD_STEP_DONE);
    itd_result r;
    itd_error e = ITD_ERROR_INIT;
    CHECK(itd_call_result(m, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_TIMEOUT && e.attempts == 1 && !e.retryable);
    CHECK(strstr(e.message, "deadline of 300 ms exceeded (waiting to retry after: server (503)") != NULL);
    itd_error_clear(&e);
    itd_call_free(m);

    /* a second attempt gets only the rest of the deadline */
    m = new_get(&pol, 1, 0);
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_SEND);
    feed_status(m, 0.1, 503, NULL);
    CHECK(itd_call_next(m, 0.2, &st) == ITD_STEP_SEND);
    CHECK(fabs(st.timeout - 0.1) < 1e-9);
    itd_call_free(m);
}

static void test_steps_and_misuse(void)
{
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    pol.quiet = 1;
    static itd_call_args a = { .project = "p", .job_id = "job-1", .api_version = ITD_APIV_V0_3_12 };
    itd_error e = ITD_ERROR_INIT;
    /* create and trigger are sent on fresh connections; others are not */
    itd_call_m *m = itd_call_new(&CFG, ITD_OP_JOBS_TRIGGER, &a, &pol, 1, 0, &e);
    itd_step st;
    CHECK(m && itd_call_next(m, 0, &st) == ITD_STEP_SEND && st.fresh == 1 && fabs(st.timeout - 30) < 1e-9);
    CHECK(itd_call_event(m) == NULL); /* quiet */
    CHECK(strcmp(st.request->method, "POST") == 0 && strstr(st.request->url, "/jobs/job-1/trigger") != NULL);
    /* asking again without feeding the outcome is a usage error */
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_DONE);
    itd_result r;
    CHECK(itd_call_result(m, &r, &e) == -1 && e.kind == ITD_ERR_USAGE);
    itd_call_free(m);
    /* a certificate that does not verify is not retried; nor a bad URL */
    m = itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, &pol, 1, 0, &e);
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_SEND);
    itd_failure tls = { ITD_ERR_CONNECTION, 0, 0, 0, "TLS: certificate verify failed", NULL };
    itd_call_feed_failure(m, 0, &tls);
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_DONE && itd_call_attempts(m) == 1);
    CHECK(itd_call_result(m, &r, &e) == -1 && e.kind == ITD_ERR_CONNECTION && !e.retryable);
    itd_call_free(m);
    m = itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, &pol, 1, 0, &e);
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_SEND);
    itd_failure url = { ITD_ERR_VALIDATION, 0, 0, 0, "Port number was not a decimal number", "server_url" };
    itd_call_feed_failure(m, 0, &url);
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_DONE);
    CHECK(itd_call_result(m, &r, &e) == -1 && e.kind == ITD_ERR_VALIDATION && strcmp(e.path, "server_url") == 0 &&
          e.attempts == 1);
    itd_call_free(m);
    /* extra headers that may not be set */
    static const char *const bad[] = { "Content-Type: text/plain", NULL };
    static const char *const bad2[] = { "X-A: 1\r\nX-B: 2", NULL };
    pol.extra_headers = bad;
    CHECK(itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, &pol, 1, 0, &e) == NULL && e.kind == ITD_ERR_VALIDATION &&
          strstr(e.message, "cannot be overridden") != NULL);
    pol.extra_headers = bad2;
    CHECK(itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, &pol, 1, 0, &e) == NULL && e.kind == ITD_ERR_VALIDATION);
    CHECK(itd_header_line_check("X-Ok: fine", &e) == 0 && itd_header_line_check("Host: x", &e) == -1);
    /* a header the user gives replaces the protocol's (not the key) */
    static const char *const ua[] = { "User-Agent: mine/1", "Accept: text/plain", NULL };
    pol.extra_headers = ua;
    m = itd_call_new(&CFG, ITD_OP_JOBS_GET, &a, &pol, 1, 0, &e);
    CHECK(m && itd_call_next(m, 0, &st) == ITD_STEP_SEND);
    int uas = 0, accepts = 0, keys = 0;
    for (size_t i = 0; m && i < st.request->nheaders; i++) {
        const itd_header *h = &st.request->headers[i];
        if (strcasecmp(h->name, "User-Agent") == 0) { uas++; CHECK_STR(h->value, "mine/1"); }
        if (strcasecmp(h->name, "Accept") == 0) { accepts++; CHECK_STR(h->value, "text/plain"); }
        if (strcasecmp(h->name, "x-api-key") == 0) { keys++; CHECK_STR(h->value, CC_KEY); }
    }
    CHECK(uas == 1 && accepts == 1 && keys == 1);
    itd_call_free(m);
    itd_error_clear(&e);
}

static void test_reconcile_events(void)
{
    /* the reconciliation GET is an attempt of the call: its events say jobs:get */
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    itd_call_args a;
    memset(&a, 0, sizeof a);
    a.project = "p";
    a.input = INPUTS[CC_IN_PLAIN];
    itd_error e = ITD_ERROR_INIT;
    itd_call_m *m = itd_call_new(&CFG, ITD_OP_JOBS_CREATE, &a, &pol, 1, 0, &e);
    itd_step st;
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_SEND && st.fresh == 1);
    const itd_event *ev = itd_call_event(m);
    CHECK(ev && ev->kind == ITD_EV_REQUEST && ev->attempt == 1 && strcmp(ev->op, "jobs:create") == 0);
    CHECK(ev && ev->body && strstr(ev->body, "\"scrape\"") != NULL);
    feed_status(m, 0, 429, "0");
    CHECK(itd_call_next(m, 0, &st) == ITD_STEP_WAIT && st.delay >= 0.25 && st.delay <= 0.5);
    CHECK(itd_call_next(m, 1, &st) == ITD_STEP_SEND);
    feed_status(m, 1, 409, NULL); /* the 409 needs no wait: the GET goes at once */
    CHECK(itd_call_next(m, 1, &st) == ITD_STEP_SEND && strcmp(st.request->method, "GET") == 0 && st.fresh == 0);
    ev = itd_call_event(m);
    CHECK(ev && ev->kind == ITD_EV_REQUEST && ev->attempt == 3 && strcmp(ev->op, "jobs:get") == 0);
    CHECK(ev && strcmp(ev->path, "/ws-1/projects/p/jobs/job-0001") == 0);
    itd_header ct = { (char *)"Content-Type", (char *)"application/json" };
    char body[2048];
    snprintf(body, sizeof body, CC_JOB_FMT, "job-0001");
    itd_response_in r = { 200, &ct, 1, "application/json", NULL, body, strlen(body) };
    itd_call_feed_response(m, 1.5, &r);
    ev = itd_call_event(m);
    CHECK(ev && ev->kind == ITD_EV_RESPONSE && ev->status == 200 && ev->attempt == 3 && ev->error == NULL);
    CHECK(ev && fabs(ev->elapsed - 0.5) < 1e-9 && ev->n_resp_headers == 1 && ev->resp_body_len > 0);
    CHECK(itd_call_next(m, 1.5, &st) == ITD_STEP_DONE);
    itd_result res;
    CHECK(itd_call_result(m, &res, &e) == 0 && res.schema == &itd_CreateJob);
    itd_result_free(&res);
    itd_call_free(m);
}

int main(void)
{
    (void)t_slurp;
    cc_init();
    for (int i = 0; i < 3; i++) {
        itd_error e = ITD_ERROR_INIT;
        INPUTS[i] = itd_job_input_decode(CC_INPUTS[i], strlen(CC_INPUTS[i]), &e);
        if (!INPUTS[i]) { fprintf(stderr, "input %d: %s %s\n", i, e.path, e.message); return 1; }
    }
    for (size_t i = 0; i < CC_NCASES; i++) {
        cc_outcome o;
        cc_run(&CC_CASES[i], &o);
        cc_check(&CC_CASES[i], &o, "the fake transport");
    }
    test_jitter_seed();
    test_late_wake();
    test_steps_and_misuse();
    test_reconcile_events();
    for (int i = 0; i < 3; i++) itd_job_input_free(INPUTS[i]);
    return T_DONE();
}
