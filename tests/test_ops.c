/* C tests of the operation table (ops.c): every row builds the request it
 * describes (method, path, success status, body, query), its responses are
 * read with its status and schema, and the emulator's router (itd_op_route,
 * the matcher src/emulator/http.c calls) sends the path the request builder
 * made back to the same row, with the same arguments. */
#include <ctype.h>
#include <strings.h>
#include "intuned.h"
#include "t.h"

static const itd_config CFG = { "http://127.0.0.1:1/api/v1/workspace", "ws 1/ä", "test-key", NULL };

/* Sample arguments with characters that need encoding. */
#define PROJECT "my project/\xc3\xa4+&?#%"
#define JOB "job id:1;=@,$!'()*~._-"
#define RUN "r#1/2"

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Split a built path ("/a/b%2Fc?q=1") into decoded segments, as a server
 * does: the query cut off, "%XX" decoded.  Returns the count; segs owned. */
static size_t split(const char *path, char **segs, size_t max)
{
    size_t n = 0, len = strcspn(path, "?");
    const char *p = path + 1, *end = path + len;
    while (p <= end && n < max) {
        const char *e = memchr(p, '/', (size_t)(end - p));
        if (!e) e = end;
        char *d = malloc((size_t)(e - p) + 1);
        size_t k = 0;
        for (const char *q = p; q < e; q++) {
            if (*q == '%' && q + 2 < e && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
                d[k++] = (char)(hexval(q[1]) * 16 + hexval(q[2]));
                q += 2;
            } else {
                d[k++] = *q;
            }
        }
        d[k] = 0;
        segs[n++] = d;
        p = e + 1;
    }
    return n;
}

static void free_segs(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++) free(segs[i]);
}

static int has_header(const itd_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return 1;
    return 0;
}

static itd_job_input *g_input;
static itd_job_update_input *g_update;
/* bodies of the Run API and Auth Sessions rows, by request schema */
static const itd_schema *g_bschema[4];
static void *g_bodies[4];

/* Point a->input at a body of row i's request schema. */
static void body_for(int i, itd_call_args *a)
{
    const itd_schema *s = itd_ops[i].request;
    for (size_t k = 0; k < 4; k++)
        if (g_bschema[k] == s) itd_arg_set_obj(itd_arg_find("input"), a, g_bodies[k]);
    if (s == &itd_JobInput) itd_arg_set_obj(itd_arg_find("input"), a, g_input);
}

/* Arguments for every row: each PATH and BODY argument the table knows. */
static void sample_args(itd_call_args *a)
{
    memset(a, 0, sizeof *a);
    itd_arg_set_str(itd_arg_find("project"), a, PROJECT);
    itd_arg_set_str(itd_arg_find("job_id"), a, JOB);
    itd_arg_set_str(itd_arg_find("run_id"), a, RUN);
    itd_arg_set_obj(itd_arg_find("input"), a, g_input);
    itd_arg_set_obj(itd_arg_find("update"), a, g_update);
    itd_arg_set_str(itd_arg_find("auth_session_id"), a, "login #2/x");
    itd_arg_set_str(itd_arg_find("operation_id"), a, "op 3+4");
    CHECK(a->project && a->job_id && a->run_id && a->input == g_input && a->update == g_update);
    CHECK(a->auth_session_id && a->operation_id);
}

static void test_table(void)
{
    int newest = 0;
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        const itd_op_def *d = itd_op_def_of((itd_op)i);
        CHECK(d == &itd_ops[i]);
        CHECK(d->name && d->group && d->method_name && d->method && d->path && d->path[0] == '/');
        CHECK(itd_op_from_name(d->name) == i);
        CHECK_STR(itd_op_name((itd_op)i), d->name);
        CHECK(itd_op_idempotent((itd_op)i) == d->idempotent);
        /* the name is group:method_name */
        char want[64];
        snprintf(want, sizeof want, "%s:%s", d->group, d->method_name);
        CHECK_STR(d->name, want);
        CHECK(d->success >= 200 && d->success <= 299);
        CHECK(!d->body == !d->request);
        if (d->body) CHECK(itd_arg_find(d->body) && itd_arg_find(d->body)->where == ITD_ARG_BODY);
        CHECK(!d->list_of || d->response);
        for (size_t q = 0; q < ITD_OP_QUERY_MAX && d->query[q]; q++)
            CHECK(itd_arg_find(d->query[q]) && itd_arg_find(d->query[q])->where == ITD_ARG_QUERY);
        CHECK(d->api == ITD_API_BOTH || d->api == ITD_API_NEWEST);
        if (d->api == ITD_API_NEWEST) newest++;
        /* names are unique, and so are (method, path) pairs */
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(itd_ops[j].name, d->name) != 0);
            CHECK(strcmp(itd_ops[j].method, d->method) != 0 || strcmp(itd_ops[j].path, d->path) != 0);
        }
    }
    /* reference §8.1: update and get-one-run exist in the newest API only;
     * so do the auth-session update (its path moved) and validate */
    CHECK(newest == 6);
    CHECK(itd_ops[ITD_OP_JOBS_UPDATE].api == ITD_API_NEWEST && itd_ops[ITD_OP_RUNS_GET].api == ITD_API_NEWEST);
    CHECK_STR(itd_api_name(ITD_API_NEWEST), "newest");
    CHECK_STR(itd_api_name(ITD_API_BOTH), "both");
    CHECK(itd_op_def_of((itd_op)-1) == NULL && itd_op_def_of(ITD_OP__COUNT) == NULL);
    /* the reference's statuses and methods (§2, §8.1) */
    CHECK(itd_ops[ITD_OP_JOBS_CREATE].success == 201 && itd_ops[ITD_OP_JOBS_DELETE].success == 204);
    CHECK_STR(itd_ops[ITD_OP_JOBS_UPDATE].method, "PUT");
    CHECK_STR(itd_ops[ITD_OP_RUNS_TERMINATE].path, "/{workspace}/projects/{project}/jobs/{job_id}/runs/{run_id}/terminate");
    /* the arguments, with their Lua spellings */
    CHECK(itd_arg_find("nope") == NULL && itd_arg_find(NULL) == NULL);
    CHECK_STR(itd_arg_find("run_id")->names[2], "jobRunId");
    CHECK_STR(itd_arg_find("page_number")->wire, "pageNumber");
    CHECK(itd_arg_find("page_size")->numbers == 1 && itd_arg_find("sort_by")->numbers == 0);
}

/* Every row: the request matches the row, and the router sends it back. */
static void test_rows_build_and_route(void)
{
    itd_call_args a;
    sample_args(&a);
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        const itd_op_def *d = &itd_ops[i];
        itd_request r;
        itd_error e = ITD_ERROR_INIT;
        body_for(i, &a);
        int rc = itd_request_build(&CFG, (itd_op)i, &a, &r, &e);
        CHECK(rc == 0);
        if (rc) { fprintf(stderr, "%s: %s\n", d->name, e.message); itd_error_clear(&e); continue; }
        CHECK_STR(r.method, d->method);
        CHECK(r.expect_status == d->success);
        CHECK(!r.body == !d->request);
        CHECK(has_header(&r, "content-type") == (d->request != NULL));
        CHECK(strchr(r.path, '{') == NULL && strchr(r.path, '}') == NULL);
        static const char prefix[] = "/ws%201%2F%C3%A4/projects/my%20project%2F%C3%A4%2B%26%3F%23%25/";
        CHECK(strncmp(r.path, prefix, sizeof prefix - 1) == 0);

        /* the segments have the template's shape */
        char *segs[16];
        size_t n = split(r.path, segs, 16);
        size_t tn = 0;
        for (const char *p = d->path; *p; p++) tn += *p == '/';
        CHECK(n == tn);

        itd_route m;
        CHECK(itd_op_route((const char *const *)segs, n, d->method, &m) == i);
        CHECK(m.op == i);
        CHECK_STR(m.workspace, CFG.workspace_id);
        CHECK_STR(m.args.project, PROJECT);
        const char *pa[ITD_OP_ARGS_MAX];
        size_t np = itd_op_path_args(d, pa, ITD_OP_ARGS_MAX);
        CHECK(np >= 1 && strcmp(pa[0], "project") == 0);
        for (size_t k = 0; k < np; k++) {
            const itd_arg_def *ad = itd_arg_find(pa[k]);
            CHECK_STR(itd_arg_str(ad, &m.args), itd_arg_str(ad, &a));
        }
        /* the other path arguments stay unset */
        for (const itd_arg_def *ad = itd_args; ad->names; ad++) {
            if (ad->where != ITD_ARG_PATH) continue;
            int in_tpl = 0;
            for (size_t k = 0; k < np; k++) in_tpl |= strcmp(pa[k], ad->names[0]) == 0;
            CHECK((itd_arg_str(ad, &m.args) != NULL) == in_tpl);
        }
        CHECK(strstr(m.allow, d->method) != NULL);

        /* another method on the same path: no operation unless a row has
         * it, and the Allow list names this row's method */
        itd_route m2;
        int other = itd_op_route((const char *const *)segs, n, "PATCH", &m2);
        CHECK(other == -1);
        CHECK(strstr(m2.allow, d->method) != NULL);
        CHECK_STR(m2.allow, m.allow);
        /* one segment more, or one less: no row of this shape */
        itd_route m3;
        if (n > 1) {
            itd_op_route((const char *const *)segs, n - 1, d->method, &m3);
            CHECK(m3.op != i);
        }
        /* an empty parameter matches nothing */
        char *keep = segs[2];
        segs[2] = (char *)"";
        CHECK(itd_op_route((const char *const *)segs, n, d->method, &m3) == -1);
        CHECK(m3.allow[0] == 0);
        segs[2] = keep;
        free_segs(segs, n);

        /* each path parameter, empty or a dot segment, is refused (nothing built) */
        for (size_t k = 0; k < np; k++) {
            const itd_arg_def *ad = itd_arg_find(pa[k]);
            const char *bad[] = { NULL, "", ".", ".." };
            for (size_t b = 0; b < 4; b++) {
                itd_call_args a2 = a;
                itd_arg_set_str(ad, &a2, bad[b]);
                itd_request r2;
                itd_error e2 = ITD_ERROR_INIT;
                CHECK(itd_request_build(&CFG, (itd_op)i, &a2, &r2, &e2) == -1);
                CHECK(e2.kind == ITD_ERR_VALIDATION);
                CHECK_STR(e2.path, ad->names[0]);
                itd_error_clear(&e2);
            }
        }
        /* a row with a body refuses to build without it */
        if (d->body) {
            itd_call_args a2 = a;
            itd_arg_set_obj(itd_arg_find(d->body), &a2, NULL);
            itd_request r2;
            itd_error e2 = ITD_ERROR_INIT;
            CHECK(itd_request_build(&CFG, (itd_op)i, &a2, &r2, &e2) == -1);
            CHECK(e2.kind == ITD_ERR_VALIDATION);
            CHECK_STR(e2.path, d->body);
            itd_error_clear(&e2);
        }
        itd_request_free(&r);
    }
}

/* The query: only the rows that list query arguments send one, in order. */
static void test_query(void)
{
    itd_call_args a;
    sample_args(&a);
    a.page_number = "0";
    a.page_size = "10";
    a.sort_by = "start_time,desc/status,asc";
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        itd_request r;
        itd_error e = ITD_ERROR_INIT;
        body_for(i, &a);
        CHECK(itd_request_build(&CFG, (itd_op)i, &a, &r, &e) == 0);
        const char *q = r.path ? strchr(r.path, '?') : NULL;
        if (itd_ops[i].query[0]) CHECK_STR(q, "?pageNumber=0&pageSize=10&sortBy=start_time%2Cdesc%2Fstatus%2Casc");
        else CHECK(q == NULL);
        itd_request_free(&r);
        itd_error_clear(&e);
    }
}

/* Responses: the row's exact status and schema. */
static void test_responses(void)
{
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        const itd_op_def *d = &itd_ops[i];
        itd_result res;
        itd_error e = ITD_ERROR_INIT;
        /* another 2xx is an error naming the row's status */
        itd_response other = { d->success == 200 ? 202 : 200, "application/json", NULL, "{}", 2 };
        CHECK(itd_response_parse((itd_op)i, &other, &res, &e) == -1);
        CHECK(e.kind == ITD_ERR_API);
        char want[16];
        snprintf(want, sizeof want, "answers %d", d->success);
        CHECK(strstr(e.message, want) != NULL);
        itd_error_clear(&e);
        if (!d->response) {
            /* nothing to read: no content type needed, the body ignored */
            itd_response ok = { d->success, NULL, NULL, "not json", 8 };
            CHECK(itd_response_parse((itd_op)i, &ok, &res, &e) == 0);
            CHECK(res.obj == NULL && res.schema == NULL);
            itd_result_free(&res);
            continue;
        }
        /* the exact status with another content type: decode error */
        itd_response text = { d->success, "text/plain", NULL, "{}", 2 };
        CHECK(itd_response_parse((itd_op)i, &text, &res, &e) == -1);
        CHECK(e.kind == ITD_ERR_DECODE);
        itd_error_clear(&e);
        /* a body that is not the schema's: decode error (a list wants an array) */
        itd_response bad = { d->success, "application/json", NULL, "7", 1 };
        CHECK(itd_response_parse((itd_op)i, &bad, &res, &e) == -1);
        CHECK(e.kind == ITD_ERR_DECODE);
        itd_error_clear(&e);
        if (d->list_of) {
            /* a list: the items are list_of objects at list_off */
            itd_response ok = { d->success, "application/json", NULL, "[]", 2 };
            CHECK(itd_response_parse((itd_op)i, &ok, &res, &e) == 0);
            CHECK(res.schema == d->response && res.obj != NULL);
            if (res.obj) {
                const itd_array *items = (const itd_array *)((const char *)res.obj + d->list_off);
                CHECK(items->n == 0);
            }
            itd_result_free(&res);
        }
    }
    /* one list with an item: it is an object of list_of */
    size_t n = 0;
    char *jobs = t_slurp(ITD_FIXTURES_DIR "/examples/jobs-list.json", &n);
    CHECK(jobs != NULL);
    itd_result res;
    itd_error e = ITD_ERROR_INIT;
    itd_response ok = { 200, "application/json", NULL, jobs, n };
    CHECK(jobs && itd_response_parse(ITD_OP_JOBS_LIST, &ok, &res, &e) == 0);
    if (jobs && res.obj) {
        const itd_array *items = (const itd_array *)((const char *)res.obj + itd_ops[ITD_OP_JOBS_LIST].list_off);
        CHECK(items->n >= 1);
        for (size_t i = 0; i < items->n; i++)
            CHECK(((itd_obj *)items->items[i])->schema == itd_ops[ITD_OP_JOBS_LIST].list_of);
    }
    itd_result_free(&res);
    itd_error_clear(&e);
    free(jobs);
}

/* The router on shapes no row has, as the emulator answers them (404). */
static void test_router_misses(void)
{
    itd_route m;
    const char *none[] = { "ws", "projects", "p", "jobs", "j", "nope" };
    CHECK(itd_op_route(none, 6, "POST", &m) == -1 && m.allow[0] == 0);
    const char *runs[] = { "ws", "projects", "p", "jobs", "j", "runs" };
    CHECK(itd_op_route(runs, 6, "POST", &m) == -1);
    CHECK_STR(m.allow, "GET");
    const char *jobs[] = { "ws", "projects", "p", "jobs" };
    CHECK(itd_op_route(jobs, 4, "DELETE", &m) == -1);
    CHECK_STR(m.allow, "GET, POST");
    const char *job[] = { "ws", "projects", "p", "jobs", "j" };
    CHECK(itd_op_route(job, 5, "POST", &m) == -1);
    CHECK_STR(m.allow, "GET, PUT, DELETE");
    CHECK(itd_op_route(job, 5, "PUT", &m) == ITD_OP_JOBS_UPDATE);
    const char *proj[] = { "ws", "project", "p", "jobs" };
    CHECK(itd_op_route(proj, 4, "GET", &m) == -1 && m.allow[0] == 0);
    CHECK(itd_op_route(jobs, 3, "GET", &m) == -1 && m.allow[0] == 0);
    const char *term[] = { "ws", "projects", "p", "jobs", "j", "runs", "r", "terminate" };
    CHECK(itd_op_route(term, 8, "POST", &m) == ITD_OP_RUNS_TERMINATE);
    CHECK_STR(m.args.run_id, "r");
    term[7] = "stop";
    CHECK(itd_op_route(term, 8, "POST", &m) == -1 && m.allow[0] == 0);
}

int main(void)
{
    itd_error e = ITD_ERROR_INIT;
    size_t n = 0;
    char *in = t_slurp(ITD_FIXTURES_DIR "/examples/jobinput-minimal.json", &n);
    CHECK(in != NULL);
    g_input = in ? itd_job_input_decode(in, n, &e) : NULL;
    free(in);
    CHECK(g_input != NULL);
    const char *up = "{\"payload\":[{\"apiName\":\"a\",\"parameters\":{}}],\"configuration\":{}}";
    g_update = itd_decode(&itd_JobUpdateInput, up, strlen(up), NULL, &e);
    CHECK(g_update != NULL);
    if (!g_input || !g_update) { fprintf(stderr, "%s\n", e.message); return 1; }
    static const struct { const itd_schema *s; const char *json; } bodies[4] = {
        { &itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{}}" },
        { &itd_AuthSessionCreateInput, "{\"parameters\":{}}" },
        { &itd_AuthSessionUpdateInput, "{\"parameters\":{}}" },
        { &itd_AuthSessionValidateInput, "{}" },
    };
    for (size_t k = 0; k < 4; k++) {
        g_bschema[k] = bodies[k].s;
        g_bodies[k] = itd_decode(bodies[k].s, bodies[k].json, strlen(bodies[k].json), NULL, &e);
        CHECK(g_bodies[k] != NULL);
        if (!g_bodies[k]) { fprintf(stderr, "%s\n", e.message); return 1; }
    }
    test_table();
    test_rows_build_and_route();
    test_query();
    test_responses();
    test_router_misses();
    itd_job_input_free(g_input);
    itd_free(&itd_JobUpdateInput, g_update);
    for (size_t k = 0; k < 4; k++) itd_free(g_bschema[k], g_bodies[k]);
    return T_DONE();
}
