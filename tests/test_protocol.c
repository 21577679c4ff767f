/* C tests of the protocol layer (no I/O): URLs and percent-encoding, refused
 * parameters, headers and bodies per operation, response classification,
 * Retry-After, retry decisions, reconciliation, and the conformance cases. */
#include <dirent.h>
#include <math.h>
#include "intuned.h"
#include "t.h"

static const itd_config CFG = { "http://127.0.0.1:1/api/v1/workspace/", "ws-123", "test-key", NULL };

static const char *hdr(const itd_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

static void test_uri(void)
{
    char *s = itd_uri_component("my project/\xc3\xa4+&?#%");
    CHECK_STR(s, "my%20project%2F%C3%A4%2B%26%3F%23%25");
    free(s);
    s = itd_uri_component("job id:1;=@,$!'()*~._-");
    CHECK_STR(s, "job%20id%3A1%3B%3D%40%2C%24!'()*~._-");
    free(s);
    s = itd_uri_component("AZaz09\x7f\x01\xff");
    CHECK_STR(s, "AZaz09%7F%01%FF");
    free(s);
    s = itd_uri_component("");
    CHECK_STR(s, "");
    free(s);
}

static void test_paths(void)
{
    itd_request r;
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_call_args a = { 0 };
    a.project = "my project/\xc3\xa4+&?#%";
    a.job_id = "job id:1;=@,$!'()*~._-";
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_GET, &a, &r, &e) == 0);
    CHECK_STR(r.path, "/ws-123/projects/my%20project%2F%C3%A4%2B%26%3F%23%25/jobs/job%20id%3A1%3B%3D%40%2C%24!'()*~._-");
    CHECK_STR(r.url, "http://127.0.0.1:1/api/v1/workspace/ws-123/projects/my%20project%2F%C3%A4%2B%26%3F%23%25/jobs/job%20id%3A1%3B%3D%40%2C%24!'()*~._-");
    CHECK_STR(r.method, "GET");
    CHECK(r.expect_status == 200);
    CHECK(r.body == NULL);
    CHECK_STR(hdr(&r, "x-api-key"), "test-key");
    CHECK_STR(hdr(&r, "accept"), "application/json");
    CHECK(hdr(&r, "content-type") == NULL);
    CHECK(strncmp(hdr(&r, "user-agent"), "lua-intuned/", 12) == 0);
    itd_request_free(&r);

    /* second recorded example, terminate */
    itd_config c2 = { "https://x.test/base///", "ws/with space", "k", "ua/1" };
    itd_call_args b = { 0 };
    b.project = "p q";
    b.job_id = "j/k";
    b.run_id = "r#1";
    CHECK(itd_request_build(&c2, ITD_OP_RUNS_TERMINATE, &b, &r, &e) == 0);
    CHECK_STR(r.path, "/ws%2Fwith%20space/projects/p%20q/jobs/j%2Fk/runs/r%231/terminate");
    CHECK_STR(r.url, "https://x.test/base/ws%2Fwith%20space/projects/p%20q/jobs/j%2Fk/runs/r%231/terminate");
    CHECK_STR(r.method, "POST");
    CHECK(r.body == NULL && hdr(&r, "content-type") == NULL);
    CHECK_STR(hdr(&r, "user-agent"), "ua/1");
    itd_request_free(&r);

    /* every operation: method, path suffix, status */
    struct { itd_op op; const char *method; const char *path; int st; } t[] = {
        { ITD_OP_JOBS_LIST, "GET", "/w/projects/p/jobs", 200 },
        { ITD_OP_JOBS_GET, "GET", "/w/projects/p/jobs/j", 200 },
        { ITD_OP_JOBS_DELETE, "DELETE", "/w/projects/p/jobs/j", 204 },
        { ITD_OP_JOBS_PAUSE, "POST", "/w/projects/p/jobs/j/pause", 200 },
        { ITD_OP_JOBS_RESUME, "POST", "/w/projects/p/jobs/j/resume", 200 },
        { ITD_OP_JOBS_TRIGGER, "POST", "/w/projects/p/jobs/j/trigger", 200 },
        { ITD_OP_RUNS_LIST, "GET", "/w/projects/p/jobs/j/runs", 200 },
        { ITD_OP_RUNS_GET, "GET", "/w/projects/p/jobs/j/runs/r", 200 },
        { ITD_OP_RUNS_TERMINATE, "POST", "/w/projects/p/jobs/j/runs/r/terminate", 200 },
    };
    itd_config c3 = { NULL, "w", "k", NULL };
    itd_call_args x = { 0 };
    x.project = "p";
    x.job_id = "j";
    x.run_id = "r";
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK(itd_request_build(&c3, t[i].op, &x, &r, &e) == 0);
        CHECK_STR(r.method, t[i].method);
        CHECK_STR(r.path, t[i].path);
        CHECK(r.expect_status == t[i].st);
        CHECK(strncmp(r.url, ITD_DEFAULT_SERVER_URL, strlen(ITD_DEFAULT_SERVER_URL)) == 0);
        CHECK(r.body == NULL && hdr(&r, "content-type") == NULL && hdr(&r, "accept") != NULL);
        CHECK_STR(itd_op_name(t[i].op), itd_op_name((itd_op)itd_op_from_name(itd_op_name(t[i].op))));
        itd_request_free(&r);
    }
    /* runs list query (the newest API) */
    x.page_number = "0";
    x.page_size = "10";
    x.sort_by = "start_time,desc/status asc";
    CHECK(itd_request_build(&c3, ITD_OP_RUNS_LIST, &x, &r, &e) == 0);
    CHECK_STR(r.path, "/w/projects/p/jobs/j/runs?pageNumber=0&pageSize=10&sortBy=start_time%2Cdesc%2Fstatus%20asc");
    itd_request_free(&r);
    x.page_number = x.sort_by = NULL;
    CHECK(itd_request_build(&c3, ITD_OP_RUNS_LIST, &x, &r, &e) == 0);
    CHECK_STR(r.path, "/w/projects/p/jobs/j/runs?pageSize=10");
    itd_request_free(&r);

    CHECK(itd_op_from_name("jobs.runs:list") == ITD_OP_RUNS_LIST);
    CHECK(itd_op_from_name("jobs:nope") == -1);
    CHECK(itd_op_idempotent(ITD_OP_JOBS_GET) && itd_op_idempotent(ITD_OP_JOBS_DELETE) &&
          itd_op_idempotent(ITD_OP_JOBS_UPDATE) && itd_op_idempotent(ITD_OP_JOBS_PAUSE) &&
          itd_op_idempotent(ITD_OP_RUNS_TERMINATE));
    CHECK(!itd_op_idempotent(ITD_OP_JOBS_CREATE) && !itd_op_idempotent(ITD_OP_JOBS_TRIGGER));
    itd_error_clear(&e);
}

static void refused(const itd_config *cfg, itd_op op, const itd_call_args *a, const char *path)
{
    itd_request r;
    itd_error e;
    memset(&e, 0, sizeof e);
    CHECK(itd_request_build(cfg, op, a, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_VALIDATION);
    CHECK_STR(e.path, path);
    CHECK(strstr(e.message, "test-key") == NULL);
    CHECK(r.url == NULL && r.headers == NULL);
    itd_error_clear(&e);
}

static void test_refusals(void)
{
    itd_call_args a = { 0 };
    a.project = "p";
    a.job_id = "j";
    itd_config c = CFG;
    c.workspace_id = NULL;
    refused(&c, ITD_OP_JOBS_GET, &a, "workspace_id");
    c.workspace_id = "";
    refused(&c, ITD_OP_JOBS_GET, &a, "workspace_id");
    c.workspace_id = "..";
    refused(&c, ITD_OP_JOBS_GET, &a, "workspace_id");
    c = CFG;
    c.api_key = "";
    refused(&c, ITD_OP_JOBS_GET, &a, "api_key");
    c.api_key = NULL;
    refused(&c, ITD_OP_JOBS_GET, &a, "api_key");
    c.api_key = "test-key\r\nX-Evil: 1";
    refused(&c, ITD_OP_JOBS_GET, &a, "api_key");
    a.job_id = "";
    refused(&CFG, ITD_OP_JOBS_GET, &a, "job_id");
    a.job_id = ".";
    refused(&CFG, ITD_OP_JOBS_PAUSE, &a, "job_id");
    a.job_id = "..";
    refused(&CFG, ITD_OP_JOBS_DELETE, &a, "job_id");
    a.job_id = NULL;
    refused(&CFG, ITD_OP_RUNS_LIST, &a, "job_id");
    a.job_id = "j";
    a.project = "";
    refused(&CFG, ITD_OP_JOBS_LIST, &a, "project");
    a.project = "..";
    refused(&CFG, ITD_OP_JOBS_LIST, &a, "project");
    a.project = "p";
    refused(&CFG, ITD_OP_RUNS_TERMINATE, &a, "run_id");
    a.run_id = ".";
    refused(&CFG, ITD_OP_RUNS_GET, &a, "run_id");
    refused(&CFG, ITD_OP_JOBS_CREATE, &a, "input");
    refused(&CFG, ITD_OP_JOBS_UPDATE, &a, "update");
    /* "..." and ".x" are fine */
    a.job_id = "...";
    itd_request r;
    itd_error e;
    memset(&e, 0, sizeof e);
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_GET, &a, &r, &e) == 0);
    CHECK_STR(r.path, "/ws-123/projects/p/jobs/...");
    itd_request_free(&r);
    itd_error_clear(&e);
}

static void test_bodies(void)
{
    const char *in = "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"a\",\"parameters\":{\"z\":1,\"a\":2}}],"
                     "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},"
                     "\"sink\":{\"url\":\"https://h.test/x\",\"type\":\"webhook\",\"headers\":{\"Authorization\":\"Bearer s\"}}}";
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_job_input *ji = itd_job_input_decode(in, strlen(in), &e);
    CHECK(ji != NULL);
    if (!ji) { fprintf(stderr, "%s: %s\n", e.path, e.message); return; }
    itd_call_args a = { 0 };
    a.project = "p";
    a.input = ji;
    itd_request r;
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_CREATE, &a, &r, &e) == 0);
    CHECK_STR(r.method, "POST");
    CHECK(r.expect_status == 201);
    CHECK_STR(r.path, "/ws-123/projects/p/jobs");
    CHECK_STR(hdr(&r, "content-type"), "application/json");
    /* compact, schema order, defaults applied, parameters in the caller's order */
    CHECK_STR(r.body, "{\"id\":\"job-0001\",\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\","
                      "\"headers\":{\"Authorization\":\"Bearer s\"},\"skipOnFail\":false},"
                      "\"payload\":[{\"apiName\":\"a\",\"parameters\":{\"z\":1,\"a\":2}}],"
                      "\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}");
    CHECK(r.body_len == strlen(r.body));
    itd_header *rh;
    size_t nrh;
    CHECK(itd_request_redacted_headers(&r, &rh, &nrh) == 0);
    CHECK(nrh == r.nheaders);
    for (size_t i = 0; i < nrh; i++) {
        if (strcasecmp(rh[i].name, "x-api-key") == 0) CHECK_STR(rh[i].value, "***");
        CHECK(strstr(rh[i].value, "test-key") == NULL);
    }
    itd_headers_free(rh, nrh);
    itd_request_free(&r);
    itd_job_input_free(ji);

    const char *up = "{\"payload\":[{\"apiName\":\"a\",\"parameters\":{}}],\"configuration\":{}}";
    itd_job_update_input *u = itd_decode(&itd_JobUpdateInput, up, strlen(up), NULL, &e);
    CHECK(u != NULL);
    if (u) {
        itd_call_args b = { 0 };
        b.project = "p";
        b.job_id = "j";
        b.update = u;
        CHECK(itd_request_build(&CFG, ITD_OP_JOBS_UPDATE, &b, &r, &e) == 0);
        CHECK_STR(r.method, "PUT");
        CHECK(r.expect_status == 200);
        CHECK_STR(r.path, "/ws-123/projects/p/jobs/j");
        CHECK_STR(hdr(&r, "content-type"), "application/json");
        CHECK(r.body && strstr(r.body, "\"requestTimeout\":600") != NULL);
        itd_request_free(&r);
        itd_free(&itd_JobUpdateInput, u);
    }
    itd_error_clear(&e);
}

static int parse(itd_op op, long st, const char *ct, const char *ra, const char *body, itd_result *res, itd_error *e)
{
    itd_response resp = { st, ct, ra, body, body ? strlen(body) : 0 };
    return itd_response_parse(op, &resp, res, e);
}

static void test_responses(void)
{
    itd_result res;
    itd_error e;
    memset(&e, 0, sizeof e);
    /* success */
    CHECK(parse(ITD_OP_JOBS_PAUSE, 200, "application/json; charset=utf-8", NULL,
                "{\"id\":\"j\",\"message\":\"Paused\"}", &res, &e) == 0);
    CHECK(res.schema == &itd_PauseJob && res.op == ITD_OP_JOBS_PAUSE);
    CHECK_STR(((itd_action *)res.obj)->message, "Paused");
    itd_result_free(&res);
    CHECK(parse(ITD_OP_JOBS_CREATE, 201, "Application/JSON", NULL, "{\"id\":\"j\",\"message\":\"created\"}", &res, &e) == 0);
    CHECK(res.schema == &itd_CreateJob);
    itd_result_free(&res);
    /* delete: 204, body and content type ignored */
    CHECK(parse(ITD_OP_JOBS_DELETE, 204, NULL, NULL, NULL, &res, &e) == 0);
    CHECK(res.obj == NULL && res.op == ITD_OP_JOBS_DELETE);
    CHECK(parse(ITD_OP_JOBS_DELETE, 204, "text/plain", NULL, "whatever", &res, &e) == 0);
    /* wrong success status */
    CHECK(parse(ITD_OP_JOBS_CREATE, 200, "application/json", NULL, "{\"id\":\"j\"}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_API && e.status == 200 && !e.retryable);
    CHECK(parse(ITD_OP_JOBS_DELETE, 200, "application/json", NULL, "{}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_API);
    /* wrong content type on the success status: decode */
    CHECK(parse(ITD_OP_JOBS_GET, 200, "text/html", NULL, "<html>", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE && e.status == 200);
    CHECK(e.body && strcmp(e.body, "<html>") == 0);
    CHECK(parse(ITD_OP_JOBS_GET, 200, NULL, NULL, "{}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE);
    CHECK(parse(ITD_OP_JOBS_GET, 200, "application/jsonx", NULL, "{}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE);
    /* not JSON / not the model */
    CHECK(parse(ITD_OP_JOBS_GET, 200, "application/json", NULL, "{\"id\":", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE);
    CHECK(parse(ITD_OP_JOBS_PAUSE, 200, "application/json", NULL, "{\"id\":5}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_DECODE && strcmp(e.path, "id") == 0);
    /* error statuses */
    struct { long st; itd_err_kind k; int retryable; } m[] = {
        { 400, ITD_ERR_INVALID_INPUT, 0 }, { 401, ITD_ERR_UNAUTHORIZED, 0 }, { 403, ITD_ERR_API, 0 },
        { 404, ITD_ERR_NOT_FOUND, 0 }, { 409, ITD_ERR_CONFLICT, 0 }, { 422, ITD_ERR_API, 0 },
        { 429, ITD_ERR_RATE_LIMITED, 1 }, { 500, ITD_ERR_SERVER, 0 }, { 502, ITD_ERR_SERVER, 1 },
        { 503, ITD_ERR_SERVER, 1 }, { 504, ITD_ERR_SERVER, 1 }, { 501, ITD_ERR_SERVER, 0 },
        { 302, ITD_ERR_API, 0 }, { 418, ITD_ERR_API, 0 },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        CHECK(parse(ITD_OP_JOBS_GET, m[i].st, "text/plain", NULL, "oops", &res, &e) == -1);
        CHECK(e.kind == m[i].k);
        CHECK(e.status == m[i].st);
        CHECK(e.retryable == m[i].retryable);
        if (m[i].st != 302) {
            char want[32];
            snprintf(want, sizeof want, "HTTP %ld", m[i].st);
            CHECK_STR(e.message, want);
        }
        CHECK(e.body_len == 4);
    }
    /* typed bodies: message, details, data kept */
    size_t n;
    char path[512];
    snprintf(path, sizeof path, "%s/examples/error-400.json", ITD_FIXTURES_DIR);
    char *b400 = t_slurp(path, &n);
    CHECK(b400 != NULL);
    if (b400) {
        CHECK(parse(ITD_OP_JOBS_CREATE, 400, "application/json", NULL, b400, &res, &e) == -1);
        CHECK(e.kind == ITD_ERR_INVALID_INPUT);
        CHECK_STR(e.message, "Invalid job configuration: payload[1].apiName is required");
        CHECK(cJSON_IsObject(e.details));
        CHECK_STR(cJSON_GetObjectItem(e.details, "field")->valuestring, "payload[1].apiName");
        CHECK(cJSON_GetObjectItem(e.data, "requestId") != NULL);
        char line[600];
        CHECK_STR(itd_error_format(&e, line, sizeof line),
                  "invalid_input (400): Invalid job configuration: payload[1].apiName is required");
        free(b400);
    }
    CHECK(parse(ITD_OP_JOBS_GET, 404, "application/json", NULL,
                "{\"code\":\"not-found\",\"message\":\"No job\\nwith id x\",\"retirable\":false}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_NOT_FOUND);
    CHECK_STR(e.message, "No job with id x");
    /* a JSON error body whose message is not a string: lenient */
    CHECK(parse(ITD_OP_JOBS_GET, 401, "application/json", NULL, "{\"message\":5}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_UNAUTHORIZED);
    CHECK_STR(e.message, "HTTP 401");
    CHECK(e.data != NULL);
    /* body bounded */
    char *big = malloc(ITD_ERROR_BODY_MAX * 3 + 1);
    memset(big, 'x', ITD_ERROR_BODY_MAX * 3);
    big[ITD_ERROR_BODY_MAX * 3] = 0;
    CHECK(parse(ITD_OP_JOBS_GET, 500, "text/plain", NULL, big, &res, &e) == -1);
    CHECK(e.body_len == ITD_ERROR_BODY_MAX && strlen(e.body) == ITD_ERROR_BODY_MAX);
    free(big);
    /* Retry-After carried */
    CHECK(parse(ITD_OP_JOBS_GET, 429, "application/json", "2", "{\"message\":\"slow down\"}", &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_RATE_LIMITED && fabs(e.retry_after - 2) < 1e-9);
    CHECK(parse(ITD_OP_JOBS_GET, 503, NULL, NULL, NULL, &res, &e) == -1);
    CHECK(e.retry_after < 0);
    itd_error_clear(&e);
}

static void test_retry_after(void)
{
    CHECK(itd_retry_after_seconds("120", 0) == 120);
    CHECK(fabs(itd_retry_after_seconds(" 1.5 ", 0) - 1.5) < 1e-9);
    CHECK(fabs(itd_retry_after_seconds(".25", 0) - 0.25) < 1e-9);
    CHECK(itd_retry_after_seconds("0", 0) == 0);
    double now = 784111777.0; /* Sun, 06 Nov 1994 08:49:37 GMT */
    CHECK(itd_retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", now) == 0);
    CHECK(itd_retry_after_seconds("Sun, 06 Nov 1994 08:50:07 GMT", now) == 30);
    CHECK(itd_retry_after_seconds("Sunday, 06-Nov-94 08:50:37 GMT", now) == 60);
    CHECK(itd_retry_after_seconds("Sun Nov  6 08:49:47 1994", now) == 10);
    CHECK(itd_retry_after_seconds("Sat, 05 Nov 1994 08:49:37 GMT", now) == 0); /* past: now */
    CHECK(itd_retry_after_seconds("Wed, 01 Jan 2031 00:00:00 GMT", 1924992000.0 - 5) == 5);
    const char *junk[] = { "", "  ", "soon", "-1", "1s", "1.2.3", "1e3", "+5", "Sun, 06 Nov 1994 08:49:37 UTC",
                           "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:00:00 GMT", NULL };
    for (const char **j = junk; *j; j++) {
        if (itd_retry_after_seconds(*j, now) != -1) fprintf(stderr, "accepted junk Retry-After \"%s\"\n", *j);
        CHECK(itd_retry_after_seconds(*j, now) == -1);
    }
    CHECK(itd_retry_after_seconds(NULL, now) == -1);
}

static itd_error mkerr(itd_err_kind k, int status, int retryable, double ra)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    e.kind = k;
    e.status = status;
    e.retryable = retryable;
    e.retry_after = ra;
    return e;
}

static void test_retry(void)
{
    itd_retry_policy p;
    itd_retry_policy_default(&p);
    CHECK(p.enabled == 1 && p.max_attempts == 4 && p.initial_delay == 0.5 && p.max_delay == 30 &&
          p.multiplier == 2 && p.jitter == 0.5);
    double d;
    itd_error e503 = mkerr(ITD_ERR_SERVER, 503, 1, -1), e503ra = mkerr(ITD_ERR_SERVER, 503, 1, 3);
    itd_error e500 = mkerr(ITD_ERR_SERVER, 500, 0, -1), e502 = mkerr(ITD_ERR_SERVER, 502, 1, -1);
    itd_error e504 = mkerr(ITD_ERR_SERVER, 504, 1, -1), e429 = mkerr(ITD_ERR_RATE_LIMITED, 429, 1, -1);
    itd_error econn = mkerr(ITD_ERR_CONNECTION, 0, 1, -1), eto = mkerr(ITD_ERR_TIMEOUT, 0, 1, -1);
    itd_error etls = mkerr(ITD_ERR_CONNECTION, 0, 0, -1), e404 = mkerr(ITD_ERR_NOT_FOUND, 404, 0, -1);
    itd_error e400 = mkerr(ITD_ERR_INVALID_INPUT, 400, 0, -1), e409 = mkerr(ITD_ERR_CONFLICT, 409, 0, -1);

    /* idempotent: 429/502/503/504, connection, timeout; not 500/4xx */
    itd_op idem[] = { ITD_OP_JOBS_GET, ITD_OP_JOBS_LIST, ITD_OP_JOBS_DELETE, ITD_OP_JOBS_PAUSE,
                      ITD_OP_JOBS_RESUME, ITD_OP_JOBS_UPDATE, ITD_OP_RUNS_LIST, ITD_OP_RUNS_GET, ITD_OP_RUNS_TERMINATE };
    for (size_t i = 0; i < sizeof idem / sizeof idem[0]; i++) {
        itd_op op = idem[i];
        CHECK(itd_retry_decide(&p, op, 1, &e429, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &e502, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &e503, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &e504, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &econn, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &eto, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e500, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e404, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e400, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &etls, 0, 0.5, &d));
    }
    /* create / trigger: never after the request may have been processed */
    itd_op nonidem[] = { ITD_OP_JOBS_CREATE, ITD_OP_JOBS_TRIGGER };
    for (size_t i = 0; i < 2; i++) {
        itd_op op = nonidem[i];
        CHECK(!itd_retry_decide(&p, op, 1, &e500, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e502, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e504, 1, 0.5, &d));
        CHECK(!itd_retry_decide(&p, op, 1, &e503, 1, 0.5, &d));    /* bare 503: maybe a proxy */
        CHECK(!itd_retry_decide(&p, op, 1, &econn, 1, 0.5, &d));   /* dropped after sending */
        CHECK(!itd_retry_decide(&p, op, 1, &eto, 1, 0.5, &d));     /* read timeout */
        CHECK(!itd_retry_decide(&p, op, 1, &e409, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &econn, 0, 0.5, &d));    /* never left */
        CHECK(itd_retry_decide(&p, op, 1, &eto, 0, 0.5, &d));      /* connect timeout */
        CHECK(itd_retry_decide(&p, op, 1, &e429, 1, 0.5, &d));
        CHECK(itd_retry_decide(&p, op, 1, &e503ra, 1, 0.5, &d));
        CHECK(d == 3);
    }
    /* attempts, disabled */
    CHECK(itd_retry_decide(&p, ITD_OP_JOBS_GET, 3, &e503, 1, 0.5, &d));
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 4, &e503, 1, 0.5, &d));
    itd_retry_policy off = p;
    off.enabled = 0;
    CHECK(!itd_retry_decide(&off, ITD_OP_JOBS_GET, 1, &e503, 1, 0.5, &d));
    CHECK(!itd_retry_decide(NULL, ITD_OP_JOBS_GET, 1, &e503, 1, 0.5, &d));
    /* backoff: 0.5, 1, 2 ... with jitter in [base*(1-j), base) and a cap */
    itd_retry_policy big = p;
    big.max_attempts = 20;
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 1, &e503, 1, 0, &d) && fabs(d - 0.25) < 1e-9);
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 2, &e503, 1, 0, &d) && fabs(d - 0.5) < 1e-9);
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 3, &e503, 1, 0.999999, &d) && d < 2 && d > 1.99);
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 15, &e503, 1, 0.999999, &d) && d <= 30 && d > 29.9);
    big.jitter = 0;
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 3, &e503, 1, 0.3, &d) && d == 2);
    /* Retry-After is a floor */
    itd_error e429ra = mkerr(ITD_ERR_RATE_LIMITED, 429, 1, 7.5);
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 1, &e429ra, 1, 0.3, &d) && d == 7.5);
    e429ra.retry_after = 0.1;
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 3, &e429ra, 1, 0.3, &d) && d == 2);
}

/* Retry-After is bounded: parsed without overflow and clamped to 2^31-1
 * seconds, and not waited for past max(max_delay, 120 s) (literals here,
 * not the macros, so the test also builds against older headers). */
static void test_retry_after_limits(void)
{
    const double CLAMP = 2147483647.0;
    double now = 1748779200.0; /* 2025-06-01T12:00:00Z */
    CHECK(itd_retry_after_seconds("99999999", now) == 99999999.0);
    CHECK(itd_retry_after_seconds("123456789012345678901234567890123456789012345678901234567890", now) == CLAMP);
    CHECK(itd_retry_after_seconds("0000000000000000000000000000000000000000000000000000000000000000", now) == 0);
    CHECK(itd_retry_after_seconds("9999999999999999999999999999999999999999999999999999999999999999", now) == CLAMP);
    CHECK(itd_retry_after_seconds("99999999999999999999999999999999999999999999999999999999999999999", now) == -1); /* 65 chars */
    CHECK(itd_retry_after_seconds("2147483648", now) == CLAMP);
    CHECK(itd_retry_after_seconds("2147483646.5", now) == 2147483646.5);
    CHECK(itd_retry_after_seconds("99999999999999999999.5", now) == CLAMP);
    CHECK(itd_retry_after_seconds(" 5", now) == 5);
    CHECK(itd_retry_after_seconds("5 ", now) == 5);
    CHECK(fabs(itd_retry_after_seconds("2.5", now) - 2.5) < 1e-12);
    CHECK(fabs(itd_retry_after_seconds("0.001", now) - 0.001) < 1e-12);
    const char *junk[] = { "1e400", "1e3", "-5", "-0", "5abc", "5 5", "0x10", "inf", "nan", "1..5", ".", "+1", NULL };
    for (const char **j = junk; *j; j++) {
        if (itd_retry_after_seconds(*j, now) != -1) fprintf(stderr, "accepted junk Retry-After \"%s\"\n", *j);
        CHECK(itd_retry_after_seconds(*j, now) == -1);
    }
    /* HTTP dates: year 9999 (in every form that has four digits) is clamped; past ones are 0 */
    CHECK(itd_retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT", now) == CLAMP);
    CHECK(itd_retry_after_seconds("Fri Dec 31 23:59:59 9999", now) == CLAMP);
    CHECK(itd_retry_after_seconds("Mon, 01 Jan 0001 00:00:00 GMT", now) == 0);
    CHECK(itd_retry_after_seconds("Thu, 01 Jan 1970 00:00:00 GMT", now) == 0);
    CHECK(itd_retry_after_seconds("Sat, 31 May 2025 12:00:00 GMT", now) == 0);
    CHECK(itd_retry_after_seconds("Sunday, 01-Jun-25 12:00:10 GMT", now) == 10);
    CHECK(itd_retry_after_seconds("Sun, 01 Jun 2025 12:02:00 GMT", now) == 120);
    CHECK(itd_retry_after_seconds("Sun, 01 Jun 20250 12:02:00 GMT", now) == -1);

    /* retry_decide: a Retry-After over the ceiling ends the retries */
    itd_retry_policy p;
    itd_retry_policy_default(&p);     /* max_delay 30: the ceiling is 120 s */
    double d = -1;
    itd_error e = mkerr(ITD_ERR_RATE_LIMITED, 429, 1, 99999999.0);
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d) && d == 0);
    e.retry_after = CLAMP;
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    e.retry_after = 1e300;
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    e.retry_after = INFINITY;
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    e.retry_after = 120.5;
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    e.retry_after = 120;
    CHECK(itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d) && d == 120);
    e.retry_after = NAN;              /* from the binding: treated as absent */
    CHECK(itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0, &d) && fabs(d - 0.25) < 1e-9);
    itd_error e503 = mkerr(ITD_ERR_SERVER, 503, 1, 99999999.0);
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_CREATE, 1, &e503, 1, 0.5, &d));
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_LIST, 1, &e503, 1, 0.5, &d));
    /* a small max_delay does not lower the ceiling; a larger one raises it */
    itd_retry_policy small = p;
    small.max_delay = 0.2;
    e.retry_after = 1;
    CHECK(itd_retry_decide(&small, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d) && d == 1);
    e.retry_after = 99999999.0;
    CHECK(!itd_retry_decide(&small, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    itd_retry_policy big = p;
    big.max_delay = 600;
    e.retry_after = 500;
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d) && d == 500);
    e.retry_after = 601;
    CHECK(!itd_retry_decide(&big, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    /* a huge max_delay: the delay stays castable to time_t */
    big.max_delay = 1e300;
    big.initial_delay = 1e300;
    big.jitter = 0;
    itd_error e502 = mkerr(ITD_ERR_SERVER, 502, 1, -1);
    CHECK(itd_retry_decide(&big, ITD_OP_JOBS_GET, 1, &e502, 1, 0.5, &d) && d <= CLAMP);

    /* end to end through response parsing */
    itd_response r = { 429, "application/json", "99999999", "{}", 2 };
    itd_result res;
    memset(&e, 0, sizeof e);
    CHECK(itd_response_parse(ITD_OP_JOBS_GET, &r, &res, &e) == -1);
    CHECK(e.kind == ITD_ERR_RATE_LIMITED && e.retry_after == 99999999.0);
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    itd_error_clear(&e);
    r.retry_after = "Fri, 31 Dec 9999 23:59:59 GMT";
    CHECK(itd_response_parse(ITD_OP_JOBS_GET, &r, &res, &e) == -1);
    CHECK(e.retry_after == CLAMP);
    CHECK(!itd_retry_decide(&p, ITD_OP_JOBS_GET, 1, &e, 1, 0.5, &d));
    itd_error_clear(&e);
}

static itd_job *job_from(const char *json)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_job *j = itd_job_decode(json, strlen(json), &e);
    if (!j) fprintf(stderr, "job: %s: %s\n", e.path, e.message);
    itd_error_clear(&e);
    return j;
}

static itd_job_input *input_from(const char *json)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_job_input *j = itd_job_input_decode(json, strlen(json), &e);
    if (!j) fprintf(stderr, "input: %s: %s\n", e.path, e.message);
    itd_error_clear(&e);
    return j;
}

static void test_reconcile(void)
{
    const char *in = "{\"id\":\"nightly-1\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}},{\"apiName\":\"b\"}],"
                     "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\"},"
                     "\"configuration\":{\"runMode\":\"Order-Irrelevant\",\"maxConcurrentRequests\":3,"
                     "\"retry\":{\"maximumAttempts\":3,\"initialInterval\":\"2s\",\"maximumInterval\":\"10m\"}}}";
    const char *same = "{\"id\":\"nightly-1\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}},{\"apiName\":\"b\",\"parameters\":{}}],"
                       "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\",\"skipOnFail\":false},"
                       "\"configuration\":{\"runMode\":\"Order-Irrelevant\",\"maxConcurrentRequests\":3,"
                       "\"retry\":{\"maximumAttempts\":3,\"backoffCoefficient\":1,\"initialInterval\":2000,\"maximumInterval\":600000}},"
                       "\"created_at\":\"2024-09-01T12:00:00.000Z\",\"next_run_time\":null,\"last_run_time\":null,"
                       "\"state\":{\"status\":\"ACTIVE\"},\"projectId\":\"p\"}";
    itd_job_input *ji = input_from(in);
    itd_job *j = job_from(same);
    CHECK(ji && j);
    if (!ji || !j) return;
    CHECK(itd_job_matches_input(j, ji) == 1);
    itd_job_free(j);
    const char *diffs[] = {
        "\"id\":\"nightly-2\"",
        "\"parameters\":{\"a\":2}",
        "\"apiName\":\"scrapeX\"",
        "\"url\":\"https://h.test/y\"",
        "\"maxConcurrentRequests\":4",
        "\"initialInterval\":2001",
        "\"maximumAttempts\":4",
    };
    const char *orig[] = { "\"id\":\"nightly-1\"", "\"parameters\":{\"a\":1}", "\"apiName\":\"scrape\"",
                           "\"url\":\"https://h.test/x\"", "\"maxConcurrentRequests\":3", "\"initialInterval\":2000",
                           "\"maximumAttempts\":3" };
    for (size_t i = 0; i < sizeof diffs / sizeof diffs[0]; i++) {
        char buf[2048];
        const char *at = strstr(same, orig[i]);
        CHECK(at != NULL);
        if (!at) continue;
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - same), same, diffs[i], at + strlen(orig[i]));
        itd_job *d = job_from(buf);
        CHECK(d != NULL);
        if (d) {
            if (itd_job_matches_input(d, ji) != 0) fprintf(stderr, "should differ: %s\n", diffs[i]);
            CHECK(itd_job_matches_input(d, ji) == 0);
            itd_job_free(d);
        }
    }
    /* a job without sink vs an input with one; extra payload */
    const char *nosink = "{\"id\":\"nightly-1\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}},{\"apiName\":\"b\"}],"
                         "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"state\":{},\"projectId\":\"p\"}";
    j = job_from(nosink);
    CHECK(j && itd_job_matches_input(j, ji) == 0);
    itd_job_free(j);
    /* the newest API's answer: no runMode, retry {maximumAttempts} only: compare what is there */
    const char *head = "{\"id\":\"nightly-1\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}},{\"apiName\":\"b\"}],"
                       "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\"},"
                       "\"configuration\":{\"maxConcurrentRequests\":3,\"retry\":{\"maximumAttempts\":3}},"
                       "\"state\":\"ACTIVE\",\"project_id\":\"p\",\"created_at\":\"x\"}";
    j = job_from(head);
    CHECK(j != NULL);
    if (j) {
        CHECK(itd_job_matches_input(j, ji) == 1);
        itd_job_free(j);
    }
    CHECK(itd_job_matches_input(NULL, ji) == 0);
    itd_job_input_free(ji);
}

/* The conformance cases, at the C level: request path/method/headers/body. */
static void test_conformance(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/conformance", ITD_FIXTURES_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    struct dirent *de;
    int cases = 0;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *src = t_slurp(path, NULL);
        cJSON *doc = src ? cJSON_Parse(src) : NULL;
        free(src);
        CHECK(doc != NULL);
        if (!doc) continue;
        cases++;
        cJSON *call = cJSON_GetObjectItem(doc, "call"), *ex = cJSON_GetObjectItem(doc, "expect_request");
        itd_config cfg = { "http://h.test/api/v1/workspace", cJSON_GetStringValue(cJSON_GetObjectItem(call, "workspace_id")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(call, "api_key")), NULL };
        int op = itd_op_from_name(cJSON_GetStringValue(cJSON_GetObjectItem(call, "op")));
        CHECK(op >= 0);
        itd_call_args a = { 0 };
        a.project = cJSON_GetStringValue(cJSON_GetObjectItem(call, "project"));
        a.job_id = cJSON_GetStringValue(cJSON_GetObjectItem(call, "job_id"));
        a.run_id = cJSON_GetStringValue(cJSON_GetObjectItem(call, "run_id"));
        itd_job_input *in = NULL;
        itd_error e;
        memset(&e, 0, sizeof e);
        cJSON *input = cJSON_GetObjectItem(call, "input");
        if (input) {
            in = itd_decode_take(&itd_JobInput, cJSON_Duplicate(input, 1), NULL, &e);
            CHECK(in != NULL);
            a.input = in;
        }
        itd_request r;
        int rc = itd_request_build(&cfg, (itd_op)op, &a, &r, &e);
        CHECK(rc == 0);
        if (rc == 0) {
            CHECK_STR(r.method, cJSON_GetStringValue(cJSON_GetObjectItem(ex, "method")));
            CHECK_STR(r.path, cJSON_GetStringValue(cJSON_GetObjectItem(ex, "path")));
            cJSON *h = cJSON_GetObjectItem(ex, "headers");
            for (cJSON *it = h ? h->child : NULL; it; it = it->next) CHECK_STR(hdr(&r, it->string), it->valuestring);
            cJSON *ct = cJSON_GetObjectItem(ex, "content_type");
            if (cJSON_IsString(ct)) CHECK_STR(hdr(&r, "content-type"), ct->valuestring);
            else CHECK(hdr(&r, "content-type") == NULL);
            cJSON *bj = cJSON_GetObjectItem(ex, "body_json");
            if (cJSON_IsNull(bj) || !bj) CHECK(r.body == NULL);
            else {
                cJSON *got = r.body ? cJSON_Parse(r.body) : NULL;
                int eq = cJSON_Compare(got, bj, 1);
                if (!eq) fprintf(stderr, "%s: body %s\n", de->d_name, r.body ? r.body : "(none)");
                CHECK(eq);
                cJSON_Delete(got);
            }
            itd_request_free(&r);
        }
        /* the response */
        cJSON *resp = cJSON_GetObjectItem(doc, "response");
        cJSON *body = cJSON_GetObjectItem(resp, "body");
        char *btxt = body && !cJSON_IsNull(body) ? cJSON_PrintUnformatted(body) : NULL;
        itd_response rr = { (long)cJSON_GetNumberValue(cJSON_GetObjectItem(resp, "status")),
                            cJSON_GetStringValue(cJSON_GetObjectItem(resp, "content_type")), NULL, btxt,
                            btxt ? strlen(btxt) : 0 };
        itd_result res;
        rc = itd_response_parse((itd_op)op, &rr, &res, &e);
        if (rc) fprintf(stderr, "%s: %s: %s\n", de->d_name, e.path, e.message);
        CHECK(rc == 0);
        if (rc == 0 && res.obj) {
            /* re-encode and compare with the wire body */
            char *again = itd_encode(res.schema, res.obj, NULL);
            cJSON *x = cJSON_Parse(again), *y = cJSON_Parse(btxt);
            CHECK(cJSON_Compare(x, y, 1));
            cJSON_Delete(x);
            cJSON_Delete(y);
            free(again);
        }
        itd_result_free(&res);
        free(btxt);
        if (in) itd_job_input_free(in);
        itd_error_clear(&e);
        cJSON_Delete(doc);
    }
    closedir(d);
    CHECK(cases >= 6);
}

/* api_version: the create body of the newest API (key order of SDK
 * v0.5.2's JobInputV2), the form checked against the version, the events'
 * copy in the same form, and reconciliation of either form. */
static void test_api_versions(void)
{
    itd_api_version v = ITD_APIV_NEWEST;
    CHECK(itd_api_version_parse("v0.3.12", &v) == 0 && v == ITD_APIV_V0_3_12);
    CHECK(itd_api_version_parse("0.3.12", &v) == 0 && v == ITD_APIV_V0_3_12);
    CHECK(itd_api_version_parse("newest", &v) == 0 && v == ITD_APIV_NEWEST);
    CHECK(itd_api_version_parse("v0.5.2", &v) == 0 && v == ITD_APIV_NEWEST);
    CHECK(itd_api_version_parse("0.5", &v) == -1 && itd_api_version_parse(NULL, &v) == -1);
    CHECK_STR(itd_api_version_name(ITD_APIV_V0_3_12), "v0.3.12");
    CHECK_STR(itd_api_version_name(ITD_APIV_NEWEST), "newest");
    const itd_op_def *create = itd_op_def_of(ITD_OP_JOBS_CREATE), *update = itd_op_def_of(ITD_OP_JOBS_UPDATE);
    CHECK(itd_op_request(create, ITD_APIV_V0_3_12) == &itd_JobInput);
    CHECK(itd_op_request(create, ITD_APIV_NEWEST) == &itd_JobInputNewest);
    CHECK(itd_op_request(update, ITD_APIV_V0_3_12) == &itd_JobUpdateInput);
    CHECK(itd_op_request(update, ITD_APIV_NEWEST) == &itd_JobUpdateInput);
    CHECK(itd_op_request(itd_op_def_of(ITD_OP_JOBS_GET), ITD_APIV_NEWEST) == NULL);

    /* keys given out of order; defaults of the newest API filled in */
    const char *in = "{\"auth_session\":{\"id\":\"as-1\"},\"proxy\":\"http://proxy.test:3128\","
                     "\"sink\":{\"apisToSend\":[\"a\"],\"url\":\"https://h.test/x\",\"type\":\"webhook\","
                     "\"headers\":{\"X-Token\":\"hook-secret-1\"}},"
                     "\"schedule\":{\"calendars\":[{\"hour\":{\"start\":8,\"end\":18}}],\"jitter\":\"5m\"},"
                     "\"configuration\":{\"maxConcurrentRequests\":2,\"retry\":{}},"
                     "\"payload\":[{\"apiName\":\"a\",\"retry\":{\"maximumAttempts\":2},\"parameters\":{\"k\":1}}],"
                     "\"id\":\"job-new-1\"}";
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_job_update_input *ji = itd_decode(&itd_JobInputNewest, in, strlen(in), NULL, &e);
    CHECK(ji != NULL);
    if (!ji) { fprintf(stderr, "%s: %s\n", e.path, e.message); return; }
    static const char want[] =
        "{\"id\":\"job-new-1\",\"payload\":[{\"parameters\":{\"k\":1},\"requestTimeout\":600,"
        "\"retry\":{\"maximumAttempts\":2},\"apiName\":\"a\"}],"
        "\"configuration\":{\"retry\":{\"maximumAttempts\":3},\"maxConcurrentRequests\":2,\"requestTimeout\":600},"
        "\"schedule\":{\"jitter\":\"5m\",\"calendars\":[{\"hour\":{\"start\":8,\"end\":18}}]},"
        "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\",\"headers\":{\"X-Token\":\"hook-secret-1\"},"
        "\"skipOnFail\":false,\"apisToSend\":[\"a\"]},"
        "\"proxy\":\"http://proxy.test:3128\",\"auth_session\":{\"id\":\"as-1\",\"checkAttempts\":3,\"createAttempts\":3}}";
    itd_call_args a = { 0 };
    a.project = "p";
    a.input = ji;
    itd_request r;
    /* a newest body for a v0.3.12 client is refused, naming both forms */
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_CREATE, &a, &r, &e) == -1);
    CHECK(e.kind == ITD_ERR_VALIDATION);
    CHECK_STR(e.path, "input");
    CHECK(strstr(e.message, "\"v0.3.12\" sends a JobInput, got a JobInputNewest") != NULL);
    itd_error_clear(&e);
    a.api_version = ITD_APIV_NEWEST;
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_CREATE, &a, &r, &e) == 0);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.path, "/ws-123/projects/p/jobs");
    CHECK_STR(r.body, want);
    CHECK(r.body_len == strlen(want));
    CHECK_STR(hdr(&r, "content-type"), "application/json");
    itd_request_free(&r);

    /* the call machine sends those bytes; its events carry the same form, secrets hidden */
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    itd_call_m *m = itd_call_new(&CFG, ITD_OP_JOBS_CREATE, &a, &pol, 1, 0, &e);
    CHECK(m != NULL);
    if (m) {
        itd_step st;
        CHECK(itd_call_next(m, 0, &st) == ITD_STEP_SEND);
        CHECK_STR(st.request->body, want);
        const itd_event *ev = itd_call_event(m);
        CHECK(ev && ev->kind == ITD_EV_REQUEST && ev->body);
        if (ev && ev->body) {
            CHECK(strstr(ev->body, "hook-secret-1") == NULL);
            static const char head[] = "{\"id\":\"job-new-1\",\"payload\":[{\"parameters\"";
            CHECK(strncmp(ev->body, head, sizeof head - 1) == 0);
            CHECK(strstr(ev->body, "\"auth_session\":{\"id\":\"as-1\"") != NULL);
            CHECK(strstr(ev->body, "runMode") == NULL);
        }
        itd_call_free(m);
    }
    /* and a v0.3.12 body for a newest client is refused too */
    const char *old = "{\"id\":\"job-old-1\",\"payload\":[{\"apiName\":\"a\"}],\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
    itd_job_input *oi = itd_job_input_decode(old, strlen(old), &e);
    CHECK(oi != NULL);
    itd_call_args b = { 0 };
    b.project = "p";
    b.input = oi;
    b.api_version = ITD_APIV_NEWEST;
    CHECK(itd_request_build(&CFG, ITD_OP_JOBS_CREATE, &b, &r, &e) == -1);
    CHECK(strstr(e.message, "\"newest\" sends a JobInputNewest, got a JobInput") != NULL);
    itd_error_clear(&e);
    CHECK_STR(itd_input_id(oi), "job-old-1");
    CHECK_STR(itd_input_id(ji), "job-new-1");
    CHECK(itd_input_sink(oi) == NULL);
    CHECK(itd_input_sink(ji) == ji->sink);
    CHECK(itd_input_id(NULL) == NULL && itd_input_sink(NULL) == NULL);

    /* reconciliation compares a newest body with the stored job */
    const char *stored = "{\"id\":\"job-new-1\",\"payload\":[{\"parameters\":{\"k\":1},\"requestTimeout\":600,"
                         "\"apiName\":\"a\"}],\"configuration\":{\"retry\":{\"maximumAttempts\":3},"
                         "\"maxConcurrentRequests\":2,\"requestTimeout\":600},"
                         "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\"},"
                         "\"state\":\"ACTIVE\",\"project_id\":\"p\",\"created_at\":\"2025-01-01T00:00:00Z\"}";
    itd_job *job = itd_job_decode(stored, strlen(stored), &e);
    CHECK(job != NULL);
    CHECK(itd_job_matches_input(job, ji) == 1);
    CHECK(itd_job_matches_input(job, oi) == 0); /* another id */
    ji->configuration->maxConcurrentRequests = 5;
    CHECK(itd_job_matches_input(job, ji) == 0);
    itd_job_free(job);
    itd_job_input_free(oi);
    itd_free(&itd_JobInputNewest, ji);
}


/* The Run API and Auth Sessions: the reference's paths and encoding, the
 * delete's Accept, bodies with the SDK's defaults, responses by status,
 * and the secrets of the bodies collected for scrubbing. */
static void test_run_auth(void)
{
    itd_config cfg = { "https://h.test/api/v1/workspace", "team a/b", "test-key", NULL };
    itd_call_args a = { 0 };
    a.project = "shop/EU & UK";
    a.auth_session_id = "login#2";
    a.operation_id = "op 3+4";
    a.run_id = "Kq3xW9zTfP2mLr8vYb1cA";
    static const struct { itd_op op; const char *method, *path, *accept; int status; } rows[] = {
        { ITD_OP_RUN_START, "POST", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/run/start", NULL, 201 },
        { ITD_OP_RUN_RESULT, "GET", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/run/Kq3xW9zTfP2mLr8vYb1cA/result", NULL, 200 },
        { ITD_OP_AUTH_SESSIONS_LIST, "GET", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions", NULL, 200 },
        { ITD_OP_AUTH_SESSIONS_GET, "GET", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232", NULL, 200 },
        { ITD_OP_AUTH_SESSIONS_DELETE, "DELETE", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232", "*/*", 204 },
        { ITD_OP_AUTH_SESSIONS_CREATE, "POST", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/create", NULL, 201 },
        { ITD_OP_AUTH_SESSIONS_CREATE_RESULT, "GET",
          "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/create/op%203%2B4/result", NULL, 200 },
        { ITD_OP_AUTH_SESSIONS_UPDATE, "POST", "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232/update",
          NULL, 201 },
        { ITD_OP_AUTH_SESSIONS_UPDATE_RESULT, "GET",
          "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232/update/op%203%2B4/result", NULL, 200 },
        { ITD_OP_AUTH_SESSIONS_VALIDATE, "POST",
          "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232/validate/start", NULL, 201 },
        { ITD_OP_AUTH_SESSIONS_VALIDATE_RESULT, "GET",
          "/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232/validate/op%203%2B4/result", NULL, 200 },
    };
    itd_error e = ITD_ERROR_INIT;
    const char *bodies[] = { "{\"api\":\"a\",\"parameters\":{}}", "{\"parameters\":{\"password\":\"pw-secret-77\"}}",
                             "{\"parameters\":{}}", "{}" };
    const itd_schema *bs[] = { &itd_RunStartInput, &itd_AuthSessionCreateInput, &itd_AuthSessionUpdateInput,
                               &itd_AuthSessionValidateInput };
    void *objs[4];
    for (int k = 0; k < 4; k++) {
        objs[k] = itd_decode(bs[k], bodies[k], strlen(bodies[k]), NULL, &e);
        CHECK(objs[k] != NULL);
        if (!objs[k]) { fprintf(stderr, "%s\n", e.message); return; }
    }
    static const char *const want_body[] = {
        "{\"parameters\":{},\"saveTrace\":true,\"requestTimeout\":600,\"api\":\"a\"}",
        "{\"parameters\":{\"password\":\"pw-secret-77\"},\"createAttempts\":3,\"checkAttempts\":3,\"saveTrace\":true}",
        "{\"parameters\":{},\"createAttempts\":3,\"checkAttempts\":3,\"saveTrace\":true}",
        "{\"autoRecreate\":true,\"checkAttempts\":3,\"createAttempts\":3,\"requestTimeout\":600}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const itd_op_def *d = itd_op_def_of(rows[i].op);
        a.input = NULL;
        int bk = -1;
        for (int k = 0; k < 4; k++) if (d->request == bs[k]) bk = k;
        if (bk >= 0) a.input = objs[bk];
        itd_request r;
        CHECK(itd_request_build(&cfg, rows[i].op, &a, &r, &e) == 0);
        CHECK_STR(r.method, rows[i].method);
        CHECK_STR(r.path, rows[i].path);
        CHECK(r.expect_status == rows[i].status);
        CHECK_STR(hdr(&r, "accept"), rows[i].accept ? rows[i].accept : "application/json");
        CHECK(itd_op_idempotent(rows[i].op) == (strcmp(rows[i].method, "POST") != 0));
        if (bk >= 0) {
            CHECK_STR(r.body, want_body[bk]);
            CHECK_STR(hdr(&r, "content-type"), "application/json");
        } else {
            CHECK(r.body == NULL && hdr(&r, "content-type") == NULL);
        }
        itd_request_free(&r);
        /* a body of another schema is refused, nothing built */
        if (bk >= 0) {
            a.input = objs[(bk + 1) % 4];
            CHECK(itd_request_build(&cfg, rows[i].op, &a, &r, &e) == -1);
            CHECK(e.kind == ITD_ERR_VALIDATION);
            CHECK_STR(e.path, "input");
            itd_error_clear(&e);
        }
    }
    /* responses: the exact status, every 4xx/5xx untyped but classified */
    {
        itd_result res;
        const char *okb = "{\"status\":\"pending\",\"operationId\":\"o\"}";
        itd_response ok = { 201, "application/json; charset=utf-8", NULL, okb, strlen(okb) };
        CHECK(itd_response_parse(ITD_OP_AUTH_SESSIONS_VALIDATE, &ok, &res, &e) == 0);
        CHECK(res.schema == &itd_OperationStarted && strcmp(((itd_operation_started *)res.obj)->operationId, "o") == 0);
        itd_result_free(&res);
        const char *lb = "[{\"id\":\"a\",\"type\":\"RUNTIME\",\"status\":\"READY\"}]";
        itd_response list = { 200, "application/json", NULL, lb, strlen(lb) };
        CHECK(itd_response_parse(ITD_OP_AUTH_SESSIONS_LIST, &list, &res, &e) == 0);
        CHECK(res.obj && ((itd_auth_session_list *)res.obj)->items.n == 1);
        itd_result_free(&res);
        const char *nb = "{\"code\":\"not-found\",\"message\":\"No run\"}";
        itd_response nf = { 404, "application/json", NULL, nb, strlen(nb) };
        CHECK(itd_response_parse(ITD_OP_RUN_RESULT, &nf, &res, &e) == -1);
        CHECK(e.kind == ITD_ERR_NOT_FOUND && e.status == 404 && strcmp(e.message, "No run") == 0);
        itd_error_clear(&e);
        itd_response gone = { 204, NULL, NULL, NULL, 0 };
        CHECK(itd_response_parse(ITD_OP_AUTH_SESSIONS_DELETE, &gone, &res, &e) == 0 && res.obj == NULL);
        itd_response empty = { 200, "application/json", NULL, "", 0 };
        CHECK(itd_response_parse(ITD_OP_RUN_RESULT, &empty, &res, &e) == -1 && e.kind == ITD_ERR_DECODE);
        itd_error_clear(&e);
    }
    /* secrets of the bodies: credentials, proxy and sink secrets are scrubbed by value */
    {
        const char *in = "{\"api\":\"a\",\"parameters\":{\"page\":\"public-value\"},\"proxy\":\"http://u:proxy-pw-1@p:8\","
                         "\"authSession\":{\"runtimeInput\":{\"pw\":\"runtime-pw-2\",\"n\":{\"deep\":\"deep-pw-3\"}}},"
                         "\"sink\":{\"type\":\"webhook\",\"url\":\"https://h.test/x\",\"headers\":{\"X-A\":\"hook-pw-4\"}}}";
        itd_run_start_input *run = itd_decode(&itd_RunStartInput, in, strlen(in), NULL, &e);
        CHECK(run != NULL);
        itd_secrets sec;
        itd_secrets_init(&sec);
        itd_call_args b = { 0 };
        b.input = run;
        CHECK(itd_secrets_add_call(&sec, &cfg, &b, 0) == 0);
        b.input = objs[1];
        CHECK(itd_secrets_add_call(&sec, &cfg, &b, 0) == 0);
        char text[256];
        snprintf(text, sizeof text, "http://u:proxy-pw-1@p:8|runtime-pw-2|deep-pw-3|hook-pw-4|pw-secret-77|public-value");
        itd_scrub(text, strlen(text), &sec);
        CHECK_STR(text, "***|***|***|***|***|public-value");
        itd_secrets_free(&sec);
        if (run) itd_free(&itd_RunStartInput, run);
    }
    for (int k = 0; k < 4; k++) itd_free(bs[k], objs[k]);
}

int main(void)
{
    test_run_auth();
    test_api_versions();
    test_uri();
    test_paths();
    test_refusals();
    test_bodies();
    test_responses();
    test_retry_after();
    test_retry();
    test_retry_after_limits();
    test_reconcile();
    test_conformance();
    return T_DONE();
}
