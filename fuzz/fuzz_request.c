/* fuzz_request: itd_request_build with a fuzzed operation, arguments and
 * configuration.  Input layout:
 *   [0] operation (modulo ITD_OP__COUNT + 1; the last value is an unknown one)
 *   [1] which strings are absent (NULL): 0x01 server_url, 0x02 user_agent,
 *       0x04 page_number, 0x08 page_size, 0x10 sort_by, 0x20 input,
 *       0x40 workspace_id, 0x80 api_key
 *   then NUL-separated: server_url, workspace_id, api_key, user_agent,
 *   project, job_id, run_id, page_number, page_size, sort_by, and the rest:
 *   the input as JSON, decoded into JobInput (JobUpdateInput for update).
 * Checks, for a request that builds: the path percent-decodes back to the
 * arguments segment by segment, using only encodeURIComponent's unreserved
 * characters and %XX; the URL is the trimmed server URL + path; no header
 * carries CR or LF; x-api-key is the key, redacted to "***"; the body decodes
 * to the input again.  For one that does not: a kind, a message, and the same
 * message whatever the API key's text (it never leaks into errors). */
#include <ctype.h>
#include "intuned.h"
#include "fuzz.h"

static const char *op_method(int op)
{
    switch (op) {
    case ITD_OP_JOBS_CREATE: case ITD_OP_JOBS_PAUSE: case ITD_OP_JOBS_RESUME: case ITD_OP_JOBS_TRIGGER:
    case ITD_OP_RUNS_TERMINATE: return "POST";
    case ITD_OP_JOBS_UPDATE: return "PUT";
    case ITD_OP_JOBS_DELETE: return "DELETE";
    default: return "GET";
    }
}

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode one percent-encoded component of [s, s+n); checks the character set. */
static char *decode_component(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            FUZZ_CHECK(i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0, "bad escape in \"%.*s\"", (int)n, s);
            *o++ = (char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
            i += 2;
        } else {
            FUZZ_CHECK((c < 0x80 && isalnum(c)) || strchr("-_.!~*'()", c), "unencoded 0x%02x in \"%.*s\"", c, (int)n, s);
            *o++ = (char)c;
        }
    }
    *o = 0;
    return out;
}

/* Consume "/<component>" from *p and compare it with `want`. */
static void expect_segment(const char **p, const char *want, const char *what)
{
    FUZZ_CHECK(**p == '/', "%s: '/' expected at \"%s\"", what, *p);
    (*p)++;
    size_t n = strcspn(*p, "/?");
    char *got = decode_component(*p, n);
    FUZZ_CHECK(strcmp(got, want) == 0, "%s: path has \"%s\", argument \"%s\"", what, got, want);
    free(got);
    *p += n;
}

static void expect_literal(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    FUZZ_CHECK(strncmp(*p, lit, n) == 0, "\"%s\" expected at \"%s\"", lit, *p);
    *p += n;
}

static int key_class(const char *k)
{
    return !k ? 0 : !*k ? 1 : strpbrk(k, "\r\n") ? 2 : 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20)) return 0;
    fz_cursor cur = { data, size };
    /* the Jobs API's rows, whose paths this oracle knows (plus one unknown
     * op); the Run API and Auth Sessions rows are checked against recorded
     * requests by tests/test_protocol.c and spec/conformance_run_auth_spec.lua */
    enum { JOB_OPS = ITD_OP_RUNS_TERMINATE + 1 };
    int op = fz_byte(&cur) % (JOB_OPS + 1);
    if (op == JOB_OPS) op = 99;
    unsigned absent = fz_byte(&cur);
    char *f[10];
    for (int i = 0; i < 10; i++) f[i] = fz_field(&cur, 0, NULL);
    size_t jlen;
    char *json = fz_rest(&cur, &jlen);

    itd_config cfg = { (absent & 0x01) ? NULL : f[0], (absent & 0x40) ? NULL : f[1],
                       (absent & 0x80) ? NULL : f[2], (absent & 0x02) ? NULL : f[3] };
    itd_call_args args = { 0 };
    args.project = f[4];
    args.job_id = f[5];
    args.run_id = f[6];
    args.page_number = (absent & 0x04) ? NULL : f[7];
    args.page_size = (absent & 0x08) ? NULL : f[8];
    args.sort_by = (absent & 0x10) ? NULL : f[9];
    itd_job_input *in = NULL;
    itd_job_update_input *up = NULL;
    if (!(absent & 0x20)) {
        if (op == ITD_OP_JOBS_UPDATE) up = itd_decode(&itd_JobUpdateInput, json, jlen, NULL, NULL);
        else in = itd_decode(&itd_JobInput, json, jlen, NULL, NULL);
    }
    args.input = in;
    args.update = up;

    itd_request r;
    itd_error err = ITD_ERROR_INIT;
    int rc = itd_request_build(&cfg, (itd_op)op, &args, &r, &err);
    if (rc == 0) {
        FUZZ_CHECK(op != 99, "unknown op built");
        FUZZ_CHECK(strcmp(r.method, op_method(op)) == 0, "%s: method %s", itd_op_name((itd_op)op), r.method);
        FUZZ_CHECK(r.expect_status == (op == ITD_OP_JOBS_CREATE ? 201 : op == ITD_OP_JOBS_DELETE ? 204 : 200),
                   "expect %d", r.expect_status);
        /* URL = trimmed server URL + path */
        const char *base = cfg.server_url ? cfg.server_url : ITD_DEFAULT_SERVER_URL;
        size_t blen = strlen(base);
        while (blen && base[blen - 1] == '/') blen--;
        FUZZ_CHECK(blen && strncmp(r.url, base, blen) == 0 && strcmp(r.url + blen, r.path) == 0, "url %s, path %s",
                   r.url, r.path);
        FUZZ_CHECK(!strpbrk(r.path, " \r\n"), "space or line break in the path");
        const char *p = r.path;
        expect_segment(&p, cfg.workspace_id, "workspace_id");
        expect_literal(&p, "/projects");
        expect_segment(&p, args.project, "project");
        expect_literal(&p, "/jobs");
        if (op != ITD_OP_JOBS_LIST && op != ITD_OP_JOBS_CREATE) expect_segment(&p, args.job_id, "job_id");
        if (op == ITD_OP_JOBS_PAUSE) expect_literal(&p, "/pause");
        if (op == ITD_OP_JOBS_RESUME) expect_literal(&p, "/resume");
        if (op == ITD_OP_JOBS_TRIGGER) expect_literal(&p, "/trigger");
        if (op == ITD_OP_RUNS_LIST || op == ITD_OP_RUNS_GET || op == ITD_OP_RUNS_TERMINATE) expect_literal(&p, "/runs");
        if (op == ITD_OP_RUNS_GET || op == ITD_OP_RUNS_TERMINATE) expect_segment(&p, args.run_id, "run_id");
        if (op == ITD_OP_RUNS_TERMINATE) expect_literal(&p, "/terminate");
        if (op == ITD_OP_RUNS_LIST) {
            const char *names[] = { "pageNumber", "pageSize", "sortBy" };
            const char *vals[] = { args.page_number, args.page_size, args.sort_by };
            int first = 1;
            for (int i = 0; i < 3; i++) {
                if (!vals[i]) continue;
                expect_literal(&p, first ? "?" : "&");
                expect_literal(&p, names[i]);
                expect_literal(&p, "=");
                size_t n = strcspn(p, "&");
                char *got = decode_component(p, n);
                FUZZ_CHECK(strcmp(got, vals[i]) == 0, "%s: query has \"%s\", argument \"%s\"", names[i], got, vals[i]);
                free(got);
                p += n;
                first = 0;
            }
        }
        FUZZ_CHECK(*p == 0, "path has more: \"%s\"", p);
        for (const char *seg = r.path; (seg = strchr(seg, '/')) != NULL; seg++) {
            size_t n = strcspn(seg + 1, "/?");
            FUZZ_CHECK(!((n == 1 && seg[1] == '.') || (n == 2 && seg[1] == '.' && seg[2] == '.')),
                       "dot segment in %s", r.path);
        }
        /* headers */
        int saw_key = 0, saw_ct = 0;
        for (size_t i = 0; i < r.nheaders; i++) {
            FUZZ_CHECK(!strpbrk(r.headers[i].name, "\r\n") && !strpbrk(r.headers[i].value, "\r\n"),
                       "line break in header %s", r.headers[i].name);
            if (strcmp(r.headers[i].name, "x-api-key") == 0) {
                saw_key = 1;
                FUZZ_CHECK(strcmp(r.headers[i].value, cfg.api_key) == 0, "x-api-key is not the key");
            }
            if (strcmp(r.headers[i].name, "Content-Type") == 0) saw_ct = 1;
        }
        FUZZ_CHECK(saw_key, "no x-api-key header");
        FUZZ_CHECK(saw_ct == (r.body != NULL), "Content-Type %s a body", saw_ct ? "without" : "missing with");
        itd_header *rh = NULL;
        size_t nrh = 0;
        FUZZ_CHECK(itd_request_redacted_headers(&r, &rh, &nrh) == 0 && nrh == r.nheaders, "redacted headers");
        for (size_t i = 0; i < nrh; i++) {
            if (strcmp(rh[i].name, "x-api-key") == 0) FUZZ_CHECK(strcmp(rh[i].value, "***") == 0, "key not redacted");
            else FUZZ_CHECK(strcmp(rh[i].value, r.headers[i].value) == 0, "%s changed by redaction", rh[i].name);
        }
        itd_headers_free(rh, nrh);
        /* body */
        if (op == ITD_OP_JOBS_CREATE || op == ITD_OP_JOBS_UPDATE) {
            const itd_schema *s = op == ITD_OP_JOBS_CREATE ? &itd_JobInput : &itd_JobUpdateInput;
            FUZZ_CHECK(r.body && r.body_len == strlen(r.body), "body");
            itd_error e2 = ITD_ERROR_INIT;
            void *back = itd_decode(s, r.body, r.body_len, NULL, &e2);
            FUZZ_CHECK(back, "the body does not decode as %s: %s: %.300s", itd_schema_name(s), e2.message, r.body);
            char *again = itd_encode(s, back, NULL);
            FUZZ_CHECK(again && strcmp(again, r.body) == 0, "body not stable");
            free(again);
            itd_free(s, back);
        } else {
            FUZZ_CHECK(!r.body, "%s has a body", itd_op_name((itd_op)op));
        }
        itd_request_free(&r);
    } else {
        FUZZ_CHECK(rc == -1, "rc %d", rc);
        FUZZ_CHECK(err.message[0], "refused without a message");
        FUZZ_CHECK(err.kind == ITD_ERR_VALIDATION || err.kind == ITD_ERR_USAGE, "kind %s", itd_err_kind_name(err.kind));
        FUZZ_CHECK(!r.url && !r.path && !r.headers && !r.body, "refused but output left set");
        /* The same request with another key of the same kind must fail the same way. */
        static const char *const other[] = { NULL, "", "other\r", "other-key" };
        itd_config c2 = cfg;
        c2.api_key = other[key_class(cfg.api_key)];
        itd_request r2;
        itd_error err2 = ITD_ERROR_INIT;
        FUZZ_CHECK(itd_request_build(&c2, (itd_op)op, &args, &r2, &err2) == -1, "another key builds");
        FUZZ_CHECK(strcmp(err.message, err2.message) == 0 && strcmp(err.path, err2.path) == 0,
                   "the key shows in the error: \"%s\" vs \"%s\"", err.message, err2.message);
        itd_error_clear(&err2);
    }
    itd_error_clear(&err);

    char *enc = itd_uri_component(args.project);
    FUZZ_CHECK(enc, "uri_component");
    char *dec = decode_component(enc, strlen(enc));
    FUZZ_CHECK(strcmp(dec, args.project) == 0, "uri_component does not round-trip");
    free(dec);
    free(enc);

    itd_free(&itd_JobInput, in);
    itd_free(&itd_JobUpdateInput, up);
    for (int i = 0; i < 10; i++) free(f[i]);
    free(json);
    return 0;
}
