/* call_cases.h - the call machine's rules as one table of scripted
 * exchanges, run by tests/test_call.c through a fake transport (no sockets,
 * a fake clock) and by tests/test_transport.c through the libcurl transport
 * against its loopback server: a rule cannot pass in one and fail in the
 * other.  Each runner provides
 *     static void cc_run(const cc_case *k, cc_outcome *o);
 * and calls cc_check on what came out. */
#ifndef ITD_CALL_CASES_H
#define ITD_CALL_CASES_H
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "intuned.h"
#include "t.h"

/* ------------------------------------------------------------ secrets */

#define CC_KEY "secret-key-123"
#define CC_BEARER "bearer-cred-5678"       /* client header Authorization: Bearer ... */
#define CC_CALL_TOKEN "call-token-999"     /* per-call header X-Call-Token */
#define CC_S3 "s3-secret-value-42"         /* the create input's S3 secretAccessKey */
#define CC_WH "webhook-header-77"          /* the create input's webhook header value */
#define CC_STORED "stored-s3-secret-31"    /* a stored job's S3 secret a GET answers (by-key rule) */

static const char *const CC_CLIENT_HEADERS[] = { "Authorization: Bearer " CC_BEARER, "X-Trace: t-1", NULL };
static const char *const CC_CALL_HEADERS[] = { "X-Call-Token: " CC_CALL_TOKEN, "X-Trace: t-2", NULL };

static int cc_leaks(const char *s, size_t n)
{
    static const char *const all[] = { CC_KEY, CC_BEARER, CC_CALL_TOKEN, CC_S3, CC_WH, CC_STORED };
    if (!s) return 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t l = strlen(all[i]);
        for (size_t j = 0; j + l <= n; j++)
            if (memcmp(s + j, all[i], l) == 0) return 1;
    }
    return 0;
}
static int cc_leaks_s(const char *s) { return s ? cc_leaks(s, strlen(s)) : 0; }
static int cc_leaks_json(const cJSON *j)
{
    if (!j) return 0;
    char *t = cJSON_PrintUnformatted(j);
    int r = t ? cc_leaks_s(t) : 0;
    free(t);
    return r;
}

/* ------------------------------------------------------------- inputs */

enum { CC_IN_PLAIN = 0, CC_IN_S3, CC_IN_WEBHOOK };
static const char *const CC_INPUTS[] = {
    "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}}],"
    "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"sink\":null}",
    "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}}],"
    "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"sink\":{\"type\":\"s3\",\"region\":\"us-east-1\","
    "\"bucket\":\"b\",\"accessKeyId\":\"AKIA1\",\"secretAccessKey\":\"" CC_S3 "\"}}",
    "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}}],"
    "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"sink\":{\"type\":\"webhook\","
    "\"url\":\"https://hooks.example.test/x\",\"headers\":{\"X-Hook\":\"" CC_WH "\"}}}",
};

/* ------------------------------------------------- the default answers */

static const char CC_JOB_FMT[] =
    "{\"id\":\"%s\",\"payload\":[{\"apiName\":\"scrape\",\"parameters\":{\"a\":1}}],"
    "\"configuration\":{\"runMode\":\"Order-Irrelevant\"},\"created_at\":\"2024-09-01T12:00:00.000Z\","
    "\"next_run_time\":null,\"last_run_time\":null,\"state\":{\"status\":\"ACTIVE\"},\"projectId\":\"p\"}";

/* What the scripted servers answer when the script says nothing: the
 * operation's success for (method, path). */
static void cc_default_answer(const char *method, const char *p, int *status, char *body, size_t blen)
{
    const char *jobs = strstr(p, "/jobs");
    const char *id = jobs && jobs[5] == '/' ? jobs + 6 : NULL;
    char jid[128] = "";
    if (id) { size_t n = strcspn(id, "/?"); snprintf(jid, sizeof jid, "%.*s", (int)n, id); }
    size_t pl = strlen(p);
#define CC_ENDS(s) (pl >= strlen(s) && strcmp(p + pl - strlen(s), s) == 0)
    *status = 200;
    if (strcmp(method, "POST") == 0 && CC_ENDS("/jobs")) { *status = 201; snprintf(body, blen, "{\"id\":\"x\",\"message\":\"created\"}"); }
    else if (CC_ENDS("/pause")) snprintf(body, blen, "{\"id\":\"%s\",\"message\":\"Paused\"}", jid);
    else if (CC_ENDS("/resume")) snprintf(body, blen, "{\"id\":\"%s\",\"message\":\"Resumed\"}", jid);
    else if (CC_ENDS("/trigger")) snprintf(body, blen, "{\"id\":\"%s\",\"message\":\"Triggered\"}", jid);
    else if (CC_ENDS("/terminate")) snprintf(body, blen, "{\"message\":\"Job run terminated\"}");
    else if (CC_ENDS("/runs")) snprintf(body, blen, "[]");
    else if (strcmp(method, "DELETE") == 0) { *status = 204; body[0] = 0; }
    else if (CC_ENDS("/jobs")) snprintf(body, blen, "[]");
    else snprintf(body, blen, CC_JOB_FMT, jid);
#undef CC_ENDS
}

/* -------------------------------------------------------------- cases */

typedef enum { CC_REPLY = 1, CC_DROP /* closed after the request arrived */, CC_REFUSED /* not sent */,
               CC_DELAY /* answer after delay_ms */ } cc_action;

typedef struct cc_step {
    cc_action action;
    int status;                /* 0: the default answer's */
    const char *ctype;         /* NULL: application/json */
    const char *body;          /* NULL: the default answer's */
    const char *retry_after;
    const char *header;        /* one more response header line ("Name: value"), or NULL */
    int delay_ms;              /* CC_DELAY */
} cc_step;

#define CC_MAX_STEPS 8

typedef struct cc_case {
    const char *name;
    itd_op op;
    const char *job_id;        /* NULL: "job-1" */
    int input;                 /* CC_IN_* (create) */
    /* policy: max attempts 4, delays 0.01 .. 0.05, multiplier 2, jitter 0.5 unless said */
    int attempts;              /* 0: 4 */
    int retry_off;
    int custom_delays;         /* use initial, maxd, jitter below */
    double initial, maxd, jitter;
    long timeout_ms;           /* 0: 5000 */
    long deadline_ms;          /* 0: none; > 0 the client's; < 0 the call's (of -deadline_ms) */
    int call_headers;          /* send CC_CALL_HEADERS with the call */
    int closed_port;           /* nothing listens: every attempt is refused */
    cc_step script[CC_MAX_STEPS];
    /* expectations */
    int ok;
    itd_err_kind kind;
    int status;
    int attempts_made;
    const char *msg_has;       /* in the error message */
    int requests;              /* requests that reached the server (-1: unchecked) */
    const char *last_method;   /* of the last request that reached it */
    const char *result_id;     /* ok: the result's id */
    const char *result_msg;
    double min_s, max_s;       /* elapsed (0: unchecked) */
    double retry_after_min;    /* error's retry_after at least this (0: unchecked) */
    const char *events;        /* "q1r1w1q2r2": request/response/retry with attempt numbers */
    double delay_lo[3], delay_hi[3]; /* delays of the first retry events (hi 0: unchecked) */
    int ev_status;             /* status of the first response event (0: unchecked) */
    int ev_body_len;           /* length of its body (0: unchecked) */
    const char *ev_header;     /* a response header name it must carry */
    const char *req_header;    /* a line every request carries ("Name: value") */
    const char *no_req_header; /* a header name no request carries */
} cc_case;

#define R(st, b) { CC_REPLY, st, NULL, b, NULL, NULL, 0 }
#define RA(st, ra) { CC_REPLY, st, NULL, "{}", ra, NULL, 0 }
#define DROP { CC_DROP, 0, NULL, NULL, NULL, NULL, 0 }
#define REFUSED { CC_REFUSED, 0, NULL, NULL, NULL, NULL, 0 }
#define SLOW(ms) { CC_DELAY, 0, NULL, NULL, NULL, NULL, ms }

static const char CC_BIG_TEXT[] =
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
static char CC_BIG_BODY[10001];      /* 10,000 bytes of text (filled by cc_init) */
static char CC_OTHER_JOB[2048];      /* a stored job-0001 that is not the one sent */
static char CC_STORED_JOB[2048];     /* a job whose S3 sink carries CC_STORED */
/* what a server echoing every secret of the call answers (S3 / webhook input) */
static const char CC_ECHO_S3[] =
    "{\"message\":\"rejected key " CC_KEY " with " CC_BEARER "\",\"details\":[{\"got\":\"" CC_S3 " "
    CC_CALL_TOKEN "\"}]}";
static const char CC_ECHO_WH[] =
    "{\"message\":\"rejected key " CC_KEY " with " CC_BEARER "\",\"details\":[{\"got\":\"" CC_WH " "
    CC_CALL_TOKEN "\",\"sink\":{\"type\":\"webhook\",\"headers\":{\"X-Hook\":\"" CC_WH "\"}}}]}";

static void cc_init(void)
{
    size_t n = 0;
    while (n < sizeof CC_BIG_BODY - 1) {
        size_t k = sizeof CC_BIG_TEXT - 1;
        if (k > sizeof CC_BIG_BODY - 1 - n) k = sizeof CC_BIG_BODY - 1 - n;
        memcpy(CC_BIG_BODY + n, CC_BIG_TEXT, k);
        n += k;
    }
    CC_BIG_BODY[n] = 0;
    snprintf(CC_OTHER_JOB, sizeof CC_OTHER_JOB, CC_JOB_FMT, "job-0001");
    char *pos = strstr(CC_OTHER_JOB, "scrape");
    memcpy(pos, "scrapX", 6);
    snprintf(CC_STORED_JOB, sizeof CC_STORED_JOB,
             "{\"id\":\"job-1\",\"payload\":[{\"apiName\":\"scrape\"}],\"configuration\":{\"runMode\":\"Order-Irrelevant\"},"
             "\"sink\":{\"type\":\"s3\",\"region\":\"r\",\"bucket\":\"b\",\"accessKeyId\":\"A\",\"secretAccessKey\":\"" CC_STORED "\"},"
             "\"created_at\":\"2024-09-01T12:00:00.000Z\",\"next_run_time\":null,\"last_run_time\":null,"
             "\"state\":{\"status\":\"ACTIVE\"},\"projectId\":\"p\"}");
}

static const cc_case CC_CASES[] = {
    { .name = "get: 429 with Retry-After, then 200", .op = ITD_OP_JOBS_GET,
      .script = { RA(429, "0.2") }, .ok = 1, .attempts_made = 2, .requests = 2, .result_id = "job-1",
      .min_s = 0.2, .max_s = 3, .events = "q1r1w1q2r2", .delay_lo = { 0.2 }, .delay_hi = { 0.2 } },
    { .name = "get: 503, 502, 504 retried, then 200", .op = ITD_OP_JOBS_GET,
      .script = { RA(503, NULL), R(502, "bad gateway"), R(504, "{}") }, .ok = 1, .attempts_made = 4,
      .requests = 4, .events = "q1r1w1q2r2w2q3r3w3q4r4" },
    { .name = "get: 500 is not retried", .op = ITD_OP_JOBS_GET, .script = { R(500, "{\"message\":\"boom\"}") },
      .kind = ITD_ERR_SERVER, .status = 500, .attempts_made = 1, .requests = 1, .msg_has = "boom", .events = "q1r1" },
    { .name = "get: gives up after max_attempts", .op = ITD_OP_JOBS_GET,
      .script = { RA(503, NULL), RA(503, NULL), RA(503, NULL), RA(503, NULL), RA(503, NULL) },
      .kind = ITD_ERR_SERVER, .status = 503, .attempts_made = 4, .requests = 4 },
    { .name = "get: a dropped connection is retried", .op = ITD_OP_JOBS_GET, .script = { DROP }, .ok = 1,
      .attempts_made = 2, .requests = 2, .events = "q1r1w1q2r2" },
    { .name = "get: a slow attempt times out and is retried", .op = ITD_OP_JOBS_GET, .timeout_ms = 150,
      .attempts = 2, .script = { SLOW(400), SLOW(400) }, .kind = ITD_ERR_TIMEOUT, .attempts_made = 2,
      .requests = 2, .max_s = 1.5 },
    { .name = "create: 503 without Retry-After is not retried", .op = ITD_OP_JOBS_CREATE,
      .script = { RA(503, NULL) }, .kind = ITD_ERR_SERVER, .status = 503, .attempts_made = 1, .requests = 1,
      .events = "q1r1" },
    { .name = "create: 500, 502, 504 are not retried", .op = ITD_OP_JOBS_CREATE, .script = { R(502, "{}") },
      .kind = ITD_ERR_SERVER, .status = 502, .attempts_made = 1, .requests = 1 },
    { .name = "trigger: 504 is not retried", .op = ITD_OP_JOBS_TRIGGER, .script = { R(504, "{}") },
      .kind = ITD_ERR_SERVER, .status = 504, .attempts_made = 1, .requests = 1 },
    { .name = "create: 503 with Retry-After is retried", .op = ITD_OP_JOBS_CREATE, .script = { RA(503, "0") },
      .ok = 1, .attempts_made = 2, .requests = 2, .last_method = "POST" },
    { .name = "trigger: 429 is retried", .op = ITD_OP_JOBS_TRIGGER, .script = { RA(429, "0.05") }, .ok = 1,
      .attempts_made = 2, .requests = 2, .min_s = 0.05, .result_id = "job-1" },
    { .name = "trigger: a connection dropped after sending is not retried", .op = ITD_OP_JOBS_TRIGGER,
      .script = { DROP }, .kind = ITD_ERR_CONNECTION, .attempts_made = 1, .requests = 1, .events = "q1r1" },
    { .name = "create: a connection dropped after sending is not retried", .op = ITD_OP_JOBS_CREATE,
      .script = { DROP }, .kind = ITD_ERR_CONNECTION, .attempts_made = 1, .requests = 1 },
    { .name = "create: a slow attempt (sent) times out and is not retried", .op = ITD_OP_JOBS_CREATE,
      .timeout_ms = 150, .script = { SLOW(400) }, .kind = ITD_ERR_TIMEOUT, .attempts_made = 1, .requests = 1 },
    { .name = "create: connect failures (not sent) are retried", .op = ITD_OP_JOBS_CREATE, .attempts = 3,
      .closed_port = 1, .script = { REFUSED, REFUSED, REFUSED }, .kind = ITD_ERR_CONNECTION, .attempts_made = 3,
      .requests = 0, .events = "q1r1w1q2r2w2q3r3" },
    { .name = "create: 409 after a retried attempt, the stored job is the one sent", .op = ITD_OP_JOBS_CREATE,
      .script = { RA(429, "0"), R(409, "{\"message\":\"Job already exists\"}") }, .ok = 1, .attempts_made = 3,
      .requests = 3, .last_method = "GET", .result_id = "job-0001", .result_msg = "created",
      .events = "q1r1w1q2r2q3r3" },
    { .name = "create: 409 after a retried attempt, another stored job", .op = ITD_OP_JOBS_CREATE,
      .script = { RA(429, "0"), R(409, "{\"message\":\"Job already exists\"}"), R(200, CC_OTHER_JOB) },
      .kind = ITD_ERR_CONFLICT, .status = 409, .attempts_made = 3, .requests = 3, .last_method = "GET",
      .msg_has = "Job already exists" },
    { .name = "create: 409 after a retried attempt, the job cannot be fetched", .op = ITD_OP_JOBS_CREATE,
      .script = { RA(503, "0"), R(409, "{\"message\":\"Job already exists\"}"), R(404, "{\"message\":\"gone\"}") },
      .kind = ITD_ERR_CONFLICT, .status = 409, .attempts_made = 3, .requests = 3, .last_method = "GET",
      .msg_has = "could not verify the existing job: not_found (404): gone" },
    { .name = "create: 409 on the first attempt is a plain conflict", .op = ITD_OP_JOBS_CREATE,
      .script = { R(409, "{\"message\":\"Job already exists\"}") }, .kind = ITD_ERR_CONFLICT, .status = 409,
      .attempts_made = 1, .requests = 1 },
    { .name = "get: the deadline ends the call instead of a wait past it", .op = ITD_OP_JOBS_GET,
      .deadline_ms = 300, .attempts = 10, .script = { RA(503, "1") }, .kind = ITD_ERR_SERVER, .status = 503,
      .attempts_made = 1, .requests = 1, .max_s = 0.25, .retry_after_min = 1 },
    { .name = "get: the deadline cuts a slow attempt", .op = ITD_OP_JOBS_GET, .deadline_ms = 300,
      .script = { SLOW(1000) }, .kind = ITD_ERR_TIMEOUT, .attempts_made = 1, .requests = 1,
      .msg_has = "deadline of 300 ms exceeded (", .max_s = 0.9 },
    { .name = "get: a per-call deadline cuts a slow attempt", .op = ITD_OP_JOBS_GET, .deadline_ms = -250,
      .script = { SLOW(1000) }, .kind = ITD_ERR_TIMEOUT, .attempts_made = 1, .requests = 1,
      .msg_has = "deadline of 250 ms exceeded (", .max_s = 0.9 },
    { .name = "get: Retry-After above the ceiling ends the retries", .op = ITD_OP_JOBS_GET,
      .script = { RA(429, "99999999") }, .kind = ITD_ERR_RATE_LIMITED, .status = 429, .attempts_made = 1,
      .requests = 1, .retry_after_min = 99999999, .max_s = 5 },
    { .name = "get: a Retry-After date far ahead ends the retries", .op = ITD_OP_JOBS_GET,
      .script = { RA(429, "Fri, 31 Dec 9999 23:59:59 GMT") }, .kind = ITD_ERR_RATE_LIMITED, .attempts_made = 1,
      .requests = 1, .retry_after_min = 99999999 },
    { .name = "get: Retry-After within the ceiling is a floor above max_delay", .op = ITD_OP_JOBS_GET,
      .script = { RA(503, "0.3") }, .ok = 1, .attempts_made = 2, .requests = 2, .min_s = 0.29 },
    { .name = "get: retry disabled", .op = ITD_OP_JOBS_GET, .retry_off = 1, .script = { RA(503, NULL) },
      .kind = ITD_ERR_SERVER, .attempts_made = 1, .requests = 1, .events = "q1r1" },
    { .name = "get: backoff with jitter stays in bounds", .op = ITD_OP_JOBS_GET, .custom_delays = 1,
      .initial = 0.02, .maxd = 0.05, .jitter = 0.5, .script = { RA(503, NULL), RA(503, NULL), RA(503, NULL) },
      .ok = 1, .attempts_made = 4, .requests = 4, .delay_lo = { 0.01, 0.02, 0.025 }, .delay_hi = { 0.02, 0.04, 0.05 } },
    { .name = "get: no jitter gives the exact backoff", .op = ITD_OP_JOBS_GET, .custom_delays = 1,
      .initial = 0.01, .maxd = 0.03, .jitter = 0, .script = { RA(503, NULL), RA(503, NULL), RA(503, NULL) },
      .ok = 1, .attempts_made = 4, .requests = 4, .delay_lo = { 0.01, 0.02, 0.03 }, .delay_hi = { 0.01, 0.02, 0.03 } },
    { .name = "get: success status with another content type is decode, not retried", .op = ITD_OP_JOBS_GET,
      .script = { { CC_REPLY, 200, "text/html", "<html>", NULL, NULL, 0 } }, .kind = ITD_ERR_DECODE, .status = 200,
      .attempts_made = 1, .requests = 1 },
    { .name = "get: validation sends nothing", .op = ITD_OP_JOBS_GET, .job_id = "..", .kind = ITD_ERR_VALIDATION,
      .attempts_made = 0, .requests = 0, .events = "" },
    { .name = "create: secrets echoed by the server are scrubbed (S3 input)", .op = ITD_OP_JOBS_CREATE,
      .input = CC_IN_S3, .call_headers = 1,
      .script = { { CC_REPLY, 400, NULL, CC_ECHO_S3, NULL, "X-Echo: " CC_KEY " " CC_BEARER " " CC_CALL_TOKEN, 0 } },
      .kind = ITD_ERR_INVALID_INPUT, .status = 400, .attempts_made = 1, .requests = 1, .msg_has = "rejected key ***",
      .ev_status = 400, .ev_header = "x-echo", .req_header = "X-Call-Token: " CC_CALL_TOKEN },
    { .name = "create: secrets echoed by the server are scrubbed (webhook input)", .op = ITD_OP_JOBS_CREATE,
      .input = CC_IN_WEBHOOK, .call_headers = 1,
      .script = { { CC_REPLY, 429, NULL, CC_ECHO_WH, "0", "Set-Cookie: s=" CC_KEY, 0 },
                  { CC_REPLY, 400, "text/plain", CC_ECHO_WH, NULL, NULL, 0 } },
      .kind = ITD_ERR_INVALID_INPUT, .status = 400, .attempts_made = 2, .requests = 2,
      .events = "q1r1w1q2r2", .ev_status = 429, .ev_header = "set-cookie" },
    { .name = "get: a stored job's secrets stay out of the response event (by key)", .op = ITD_OP_JOBS_GET,
      .script = { R(200, CC_STORED_JOB) }, .ok = 1, .attempts_made = 1, .requests = 1, .result_id = "job-1",
      .ev_status = 200, .ev_header = "content-type" },
    { .name = "get: the response event carries status, headers and a bounded body", .op = ITD_OP_JOBS_GET,
      .script = { { CC_REPLY, 500, "text/plain", CC_BIG_BODY, NULL, "X-Request-Id: rq-1", 0 } },
      .kind = ITD_ERR_SERVER, .status = 500, .attempts_made = 1, .requests = 1, .ev_status = 500,
      .ev_body_len = ITD_EVENT_BODY_MAX, .ev_header = "x-request-id" },
    { .name = "get: per-call headers go out, a later one replaces the client's", .op = ITD_OP_JOBS_GET,
      .call_headers = 1, .ok = 1, .attempts_made = 1, .requests = 1, .req_header = "X-Trace: t-2" },
    { .name = "get: client headers go out", .op = ITD_OP_JOBS_GET, .ok = 1, .attempts_made = 1, .requests = 1,
      .req_header = "X-Trace: t-1", .no_req_header = "X-Call-Token" },
};
#define CC_NCASES (sizeof CC_CASES / sizeof CC_CASES[0])

#undef R
#undef RA
#undef DROP
#undef REFUSED
#undef SLOW

/* ------------------------------------------------------------ outcome */

typedef struct cc_outcome {
    int rc;
    itd_result res;
    itd_error err;
    int requests;              /* that reached the server */
    char last_method[8];
    int nonidem, fresh;        /* create/trigger requests, and how many went on a fresh connection */
    int header_missing;        /* requests without case.req_header */
    int header_present;        /* requests with case.no_req_header */
    double elapsed;
    char events[256];
    double delays[8];
    int ndelays;
    int ev_status, ev_body_len, ev_has_header, nresp;
    int leaks;                 /* secrets seen in events */
} cc_outcome;

static int cc_has_line(const char *headers, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = headers; *p; p++)
        if ((p == headers || p[-1] == '\n') && strncasecmp(p, line, n) == 0) return 1;
    return 0;
}

/* What a hook sees, folded into the outcome (both runners call it). */
static void cc_record_event(cc_outcome *o, const cc_case *k, const itd_event *ev)
{
    size_t l = strlen(o->events);
    snprintf(o->events + l, sizeof o->events - l, "%c%d",
             ev->kind == ITD_EV_REQUEST ? 'q' : ev->kind == ITD_EV_RESPONSE ? 'r' : 'w', ev->attempt);
    o->leaks += cc_leaks_s(ev->url) + cc_leaks_s(ev->path) + cc_leaks(ev->body, ev->body ? ev->body_len : 0);
    for (size_t i = 0; i < ev->nheaders; i++) o->leaks += cc_leaks_s(ev->headers[i].value);
    for (size_t i = 0; i < ev->n_resp_headers; i++) o->leaks += cc_leaks_s(ev->resp_headers[i].value);
    o->leaks += cc_leaks(ev->resp_body, ev->resp_body ? ev->resp_body_len : 0);
    if (ev->error) {
        char line[1024];
        o->leaks += cc_leaks_s(ev->error->message) + cc_leaks_s(itd_error_format(ev->error, line, sizeof line));
    }
    if (ev->kind == ITD_EV_RETRY && o->ndelays < 8) o->delays[o->ndelays++] = ev->delay;
    if (ev->kind == ITD_EV_RESPONSE && ev->resp_body && o->nresp++ == 0) {
        o->ev_status = (int)ev->status;
        o->ev_body_len = (int)ev->resp_body_len;
        for (size_t i = 0; k->ev_header && i < ev->n_resp_headers; i++)
            if (strcasecmp(ev->resp_headers[i].name, k->ev_header) == 0) o->ev_has_header = 1;
        if (ev->resp_body_len > ITD_EVENT_BODY_MAX) o->leaks += 1000; /* not bounded */
    }
}

static void cc_check(const cc_case *k, cc_outcome *o, const char *transport)
{
    int before = t_failed;
    if (k->ok) {
        CHECK(o->rc == 0);
        if (k->result_id) {
            const char *id = o->res.obj ? (k->op == ITD_OP_JOBS_GET ? ((itd_job *)o->res.obj)->id
                                                                    : ((itd_action *)o->res.obj)->id) : NULL;
            CHECK_STR(id, k->result_id);
        }
        if (k->result_msg) CHECK_STR(o->res.obj ? ((itd_action *)o->res.obj)->message : NULL, k->result_msg);
    } else {
        CHECK(o->rc == -1);
        CHECK(o->err.kind == k->kind);
        if (k->status) CHECK(o->err.status == k->status);
        if (k->msg_has) CHECK(strstr(o->err.message, k->msg_has) != NULL);
        if (k->retry_after_min > 0) CHECK(o->err.retry_after >= k->retry_after_min && o->err.retry_after <= 2147483647.0);
        char line[1024];
        CHECK(!cc_leaks_s(o->err.message) && !cc_leaks_s(itd_error_format(&o->err, line, sizeof line)) &&
              !cc_leaks_s(o->err.path) && !cc_leaks(o->err.body, o->err.body ? o->err.body_len : 0) &&
              !cc_leaks_json(o->err.details) && !cc_leaks_json(o->err.data));
    }
    CHECK(o->err.attempts == (k->ok ? 0 : k->attempts_made));
    if (k->requests >= 0) CHECK(o->requests == k->requests);
    if (k->last_method) CHECK_STR(o->last_method, k->last_method);
    CHECK(o->fresh >= o->nonidem); /* create and trigger never on a reused connection */
    CHECK(o->header_missing == 0 && o->header_present == 0);
    if (k->min_s > 0) CHECK(o->elapsed >= k->min_s - 0.005);
    if (k->max_s > 0) CHECK(o->elapsed <= k->max_s);
    if (k->events) CHECK_STR(o->events, k->events);
    for (int i = 0; i < 3; i++) {
        if (!(k->delay_hi[i] > 0)) continue;
        CHECK(o->ndelays > i);
        if (o->ndelays > i) CHECK(o->delays[i] >= k->delay_lo[i] - 1e-9 && o->delays[i] <= k->delay_hi[i] + 1e-9);
    }
    if (k->ev_status) CHECK(o->ev_status == k->ev_status);
    if (k->ev_body_len) CHECK(o->ev_body_len == k->ev_body_len);
    if (k->ev_header) CHECK(o->ev_has_header);
    CHECK(o->leaks == 0);
    if (t_failed != before)
        fprintf(stderr, "  ^ case \"%s\" through %s: rc %d, %s (%d): %s; attempts %d, requests %d, events %s\n",
                k->name, transport, o->rc, itd_err_kind_name(o->err.kind), o->err.status, o->err.message,
                o->err.attempts, o->requests, o->events);
    itd_result_free(&o->res);
    itd_error_clear(&o->err);
}

/* The retry policy and call of a case (`headers` for the call's extra headers). */
static void cc_policy(const cc_case *k, itd_retry_policy *p)
{
    itd_retry_policy_default(p);
    p->initial_delay = 0.01;
    p->max_delay = 0.05;
    p->max_attempts = k->attempts ? k->attempts : 4;
    if (k->custom_delays) {
        p->initial_delay = k->initial;
        p->max_delay = k->maxd;
        p->jitter = k->jitter;
    }
    if (k->retry_off) p->enabled = 0;
}

#endif
