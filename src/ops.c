/*
 * ops.c - the operation table (ops.h): what each API operation is, as
 * data.  Request building, response parsing, the emulator's router and the
 * Lua client's methods all read these rows; nothing else lists operations.
 *
 * Adding an operation: a row in itd_ops[] (and its itd_op value in
 * intuned.h), its request/response schemas in model.c, and an entry of
 * itd_args[] only when it takes an argument no operation takes yet.
 */
#include <stddef.h>
#include <string.h>
#include "ops.h"

const char *itd_api_name(itd_api a)
{
    return a == ITD_API_NEWEST ? "newest" : a == ITD_API_BOTH ? "both" : "unknown";
}

/* ---------------------------------------------------------------- arguments */

#define ARG_OFF(m) offsetof(itd_call_args, m)
static const char *const n_project[] = { "project", "project_name", "projectName", NULL };
static const char *const n_job[] = { "job_id", "jobId", NULL };
static const char *const n_run[] = { "run_id", "runId", "jobRunId", "job_run_id", NULL };
static const char *const n_pn[] = { "page_number", "pageNumber", NULL };
static const char *const n_ps[] = { "page_size", "pageSize", NULL };
static const char *const n_sb[] = { "sort_by", "sortBy", NULL };
static const char *const n_input[] = { "input", NULL };
static const char *const n_auth[] = { "auth_session_id", "authSessionId", NULL };
static const char *const n_opid[] = { "operation_id", "operationId", NULL };
/* update's body was passed as `input` before update had its own name */
static const char *const n_update[] = { "update", "input", NULL };

const itd_arg_def itd_args[] = {
    { n_project, ITD_ARG_PATH, NULL, 0, ARG_OFF(project) },
    { n_job, ITD_ARG_PATH, NULL, 0, ARG_OFF(job_id) },
    { n_run, ITD_ARG_PATH, NULL, 0, ARG_OFF(run_id) },
    { n_pn, ITD_ARG_QUERY, "pageNumber", 1, ARG_OFF(page_number) },
    { n_ps, ITD_ARG_QUERY, "pageSize", 1, ARG_OFF(page_size) },
    { n_sb, ITD_ARG_QUERY, "sortBy", 0, ARG_OFF(sort_by) },
    { n_input, ITD_ARG_BODY, NULL, 0, ARG_OFF(input) },
    { n_update, ITD_ARG_BODY, NULL, 0, ARG_OFF(update) },
    { n_auth, ITD_ARG_PATH, NULL, 0, ARG_OFF(auth_session_id) },
    { n_opid, ITD_ARG_PATH, NULL, 0, ARG_OFF(operation_id) },
    { NULL, 0, NULL, 0, 0 },
};

const itd_arg_def *itd_arg_find_n(const char *name, size_t len)
{
    if (!name) return NULL;
    for (const itd_arg_def *d = itd_args; d->names; d++)
        if (strlen(d->names[0]) == len && strncmp(d->names[0], name, len) == 0) return d;
    return NULL;
}

const itd_arg_def *itd_arg_find(const char *name) { return name ? itd_arg_find_n(name, strlen(name)) : NULL; }

/* The members are pointers of different types (const char *, const
 * itd_job_input *, ...); memcpy reads and writes them without aliasing one
 * type through another. */
const char *itd_arg_str(const itd_arg_def *d, const itd_call_args *a)
{
    if (!d || !a || d->where == ITD_ARG_BODY) return NULL;
    const char *v;
    memcpy(&v, (const char *)a + d->off, sizeof v);
    return v;
}

void itd_arg_set_str(const itd_arg_def *d, itd_call_args *a, const char *v)
{
    if (d && a && d->where != ITD_ARG_BODY) memcpy((char *)a + d->off, &v, sizeof v);
}

const void *itd_arg_obj(const itd_arg_def *d, const itd_call_args *a)
{
    if (!d || !a || d->where != ITD_ARG_BODY) return NULL;
    const void *v;
    memcpy(&v, (const char *)a + d->off, sizeof v);
    return v;
}

void itd_arg_set_obj(const itd_arg_def *d, itd_call_args *a, const void *obj)
{
    if (d && a && d->where == ITD_ARG_BODY) memcpy((char *)a + d->off, &obj, sizeof obj);
}

/* --------------------------------------------------------------- operations */

#define JOBS "/{" ITD_PATH_WORKSPACE "}/projects/{project}/jobs"
#define JOB JOBS "/{job_id}"
#define LIST(st, m) offsetof(st, m)
/* Run API and Auth Sessions (their reference §1.2): `run` is singular, and
 * the starts' paths are irregular (create and update have no /start). */
#define PROJ "/{" ITD_PATH_WORKSPACE "}/projects/{project}"
#define ASES PROJ "/auth-sessions"
#define ASE ASES "/{auth_session_id}"

/* In the API reference's order (§2, §8.1): core.operations lists them so. */
const itd_op_def itd_ops[ITD_OP__COUNT] = {
    [ITD_OP_JOBS_LIST] = { .name = "jobs:list", .group = "jobs", .method_name = "list", .method = "GET",
                           .path = JOBS, .success = 200, .idempotent = 1, .api = ITD_API_BOTH,
                           .response = &itd_JobList, .list_of = &itd_Job, .list_off = LIST(itd_job_list, items) },
    [ITD_OP_JOBS_CREATE] = { .name = "jobs:create", .group = "jobs", .method_name = "create", .method = "POST",
                             .path = JOBS, .success = 201, .idempotent = 0, .api = ITD_API_BOTH,
                             .body = "input", .request = &itd_JobInput, .request_newest = &itd_JobInputNewest,
                             .response = &itd_CreateJob },
    [ITD_OP_JOBS_GET] = { .name = "jobs:get", .group = "jobs", .method_name = "get", .method = "GET",
                          .path = JOB, .success = 200, .idempotent = 1, .api = ITD_API_BOTH,
                          .response = &itd_Job },
    [ITD_OP_JOBS_UPDATE] = { .name = "jobs:update", .group = "jobs", .method_name = "update", .method = "PUT",
                             .path = JOB, .success = 200, .idempotent = 1, .api = ITD_API_NEWEST,
                             .body = "update", .request = &itd_JobUpdateInput, .response = &itd_UpdateJob },
    [ITD_OP_JOBS_DELETE] = { .name = "jobs:delete", .group = "jobs", .method_name = "delete", .method = "DELETE",
                             .path = JOB, .success = 204, .idempotent = 1, .api = ITD_API_BOTH,
                             .response = NULL /* 204: the body is ignored */ },
    [ITD_OP_JOBS_PAUSE] = { .name = "jobs:pause", .group = "jobs", .method_name = "pause", .method = "POST",
                            .path = JOB "/pause", .success = 200, .idempotent = 1, .api = ITD_API_BOTH,
                            .response = &itd_PauseJob },
    [ITD_OP_JOBS_RESUME] = { .name = "jobs:resume", .group = "jobs", .method_name = "resume", .method = "POST",
                             .path = JOB "/resume", .success = 200, .idempotent = 1, .api = ITD_API_BOTH,
                             .response = &itd_ResumeJob },
    [ITD_OP_JOBS_TRIGGER] = { .name = "jobs:trigger", .group = "jobs", .method_name = "trigger", .method = "POST",
                              .path = JOB "/trigger", .success = 200, .idempotent = 0, .api = ITD_API_BOTH,
                              .response = &itd_TriggerJob },
    [ITD_OP_RUNS_LIST] = { .name = "jobs.runs:list", .group = "jobs.runs", .method_name = "list", .method = "GET",
                           .path = JOB "/runs", .success = 200, .idempotent = 1, .api = ITD_API_BOTH,
                           .response = &itd_JobRunList, .list_of = &itd_JobRun,
                           .list_off = LIST(itd_run_list, jobRuns),
                           /* the newest API's paging; v0.3.12 sends no query (§1.1) */
                           .query = { "page_number", "page_size", "sort_by", NULL } },
    [ITD_OP_RUNS_GET] = { .name = "jobs.runs:get", .group = "jobs.runs", .method_name = "get", .method = "GET",
                          .path = JOB "/runs/{run_id}", .success = 200, .idempotent = 1, .api = ITD_API_NEWEST,
                          .response = &itd_JobRunDetail },
    [ITD_OP_RUNS_TERMINATE] = { .name = "jobs.runs:terminate", .group = "jobs.runs", .method_name = "terminate",
                                .method = "POST", .path = JOB "/runs/{run_id}/terminate", .success = 200,
                                .idempotent = 1, .api = ITD_API_BOTH, .response = &itd_TerminateJobRun },
    /* The Run API and Auth Sessions.  The client sends the newest API's
     * bodies; `api` says where v0.3.12 has the same path (its bodies differ:
     * no defaults, run start's `api` first).  The starts are not idempotent:
     * each one starts a run or an operation. */
    [ITD_OP_RUN_START] = { .name = "runs:start", .group = "runs", .method_name = "start", .method = "POST",
                           .path = PROJ "/run/start", .success = 201, .idempotent = 0, .api = ITD_API_BOTH,
                           .body = "input", .request = &itd_RunStartInput, .response = &itd_RunStarted },
    [ITD_OP_RUN_RESULT] = { .name = "runs:result", .group = "runs", .method_name = "result", .method = "GET",
                            .path = PROJ "/run/{run_id}/result", .success = 200, .idempotent = 1,
                            .api = ITD_API_BOTH, .response = &itd_RunResult },
    [ITD_OP_AUTH_SESSIONS_LIST] = { .name = "auth_sessions:list", .group = "auth_sessions", .method_name = "list",
                                    .method = "GET", .path = ASES, .success = 200, .idempotent = 1,
                                    .api = ITD_API_BOTH, .response = &itd_AuthSessionList,
                                    .list_of = &itd_AuthSessionInfo, .list_off = LIST(itd_auth_session_list, items) },
    [ITD_OP_AUTH_SESSIONS_GET] = { .name = "auth_sessions:get", .group = "auth_sessions", .method_name = "get",
                                   .method = "GET", .path = ASE, .success = 200, .idempotent = 1,
                                   .api = ITD_API_BOTH, .response = &itd_AuthSessionInfo },
    /* the newest SDK's delete sends Accept: * / * (v0.3.12's application/json) */
    [ITD_OP_AUTH_SESSIONS_DELETE] = { .name = "auth_sessions:delete", .group = "auth_sessions",
                                      .method_name = "delete", .method = "DELETE", .path = ASE, .success = 204,
                                      .idempotent = 1, .api = ITD_API_BOTH, .response = NULL, .accept = "*/*" },
    [ITD_OP_AUTH_SESSIONS_CREATE] = { .name = "auth_sessions:create", .group = "auth_sessions",
                                      .method_name = "create", .method = "POST", .path = ASES "/create",
                                      .success = 201, .idempotent = 0, .api = ITD_API_BOTH, .body = "input",
                                      .request = &itd_AuthSessionCreateInput, .response = &itd_OperationStarted },
    [ITD_OP_AUTH_SESSIONS_CREATE_RESULT] = { .name = "auth_sessions:create_result", .group = "auth_sessions",
                                             .method_name = "create_result", .method = "GET",
                                             .path = ASES "/create/{operation_id}/result", .success = 200,
                                             .idempotent = 1, .api = ITD_API_BOTH, .response = &itd_OperationResult },
    /* v0.3.12 updates at .../auth-sessions/update with the id in the body */
    [ITD_OP_AUTH_SESSIONS_UPDATE] = { .name = "auth_sessions:update", .group = "auth_sessions",
                                      .method_name = "update", .method = "POST", .path = ASE "/update",
                                      .success = 201, .idempotent = 0, .api = ITD_API_NEWEST, .body = "input",
                                      .request = &itd_AuthSessionUpdateInput, .response = &itd_OperationStarted },
    [ITD_OP_AUTH_SESSIONS_UPDATE_RESULT] = { .name = "auth_sessions:update_result", .group = "auth_sessions",
                                             .method_name = "update_result", .method = "GET",
                                             .path = ASE "/update/{operation_id}/result", .success = 200,
                                             .idempotent = 1, .api = ITD_API_NEWEST,
                                             .response = &itd_OperationResult },
    [ITD_OP_AUTH_SESSIONS_VALIDATE] = { .name = "auth_sessions:validate", .group = "auth_sessions",
                                        .method_name = "validate", .method = "POST", .path = ASE "/validate/start",
                                        .success = 201, .idempotent = 0, .api = ITD_API_NEWEST, .body = "input",
                                        .request = &itd_AuthSessionValidateInput,
                                        .response = &itd_OperationStarted },
    [ITD_OP_AUTH_SESSIONS_VALIDATE_RESULT] = { .name = "auth_sessions:validate_result", .group = "auth_sessions",
                                               .method_name = "validate_result", .method = "GET",
                                               .path = ASE "/validate/{operation_id}/result", .success = 200,
                                               .idempotent = 1, .api = ITD_API_NEWEST,
                                               .response = &itd_OperationResult },
};

const itd_schema *itd_op_request(const itd_op_def *d, itd_api_version v)
{
    if (!d) return NULL;
    return v == ITD_APIV_NEWEST && d->request_newest ? d->request_newest : d->request;
}

const itd_op_def *itd_op_def_of(itd_op op)
{
    return (int)op >= 0 && op < ITD_OP__COUNT ? &itd_ops[op] : NULL;
}

size_t itd_op_path_args(const itd_op_def *d, const char **out, size_t max)
{
    size_t n = 0;
    if (!d) return 0;
    for (const char *p = strchr(d->path, '{'); p; p = strchr(p, '{')) {
        const char *e = strchr(++p, '}');
        if (!e) break;
        const itd_arg_def *a = itd_arg_find_n(p, (size_t)(e - p));
        if (a && a->where == ITD_ARG_PATH && n < max) out[n++] = a->names[0];
        p = e + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ routing */

/* The template segment starting at *t (after a '/'): its length, *t moved
 * past it and its '/'. */
static size_t next_seg(const char **t, const char **seg)
{
    const char *s = *t, *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    *seg = s;
    *t = e ? e + 1 : s + n;
    return n;
}

/* 1 when the segments fit the template; the placeholders' values then go
 * to r (when r is not NULL). */
static int template_match(const char *tpl, const char *const *segs, size_t n, itd_route *r)
{
    const char *t = tpl[0] == '/' ? tpl + 1 : tpl;
    size_t i = 0;
    while (*t) {
        const char *seg;
        size_t len = next_seg(&t, &seg);
        if (i == n) return 0;
        const char *v = segs[i++];
        if (len >= 2 && seg[0] == '{' && seg[len - 1] == '}') {
            if (!v || !v[0]) return 0; /* an empty parameter is no parameter */
            if (!r) continue;
            if (len - 2 == strlen(ITD_PATH_WORKSPACE) && strncmp(seg + 1, ITD_PATH_WORKSPACE, len - 2) == 0) {
                r->workspace = v;
                continue;
            }
            const itd_arg_def *a = itd_arg_find_n(seg + 1, len - 2);
            if (a && a->where == ITD_ARG_PATH) itd_arg_set_str(a, &r->args, v);
        } else if (!v || strlen(v) != len || strncmp(v, seg, len) != 0) {
            return 0;
        }
    }
    return i == n;
}

static void allow_add(char *allow, const char *method)
{
    size_t ml = strlen(method), al = strlen(allow);
    /* already listed? the list is "A, B, C" */
    for (const char *p = allow; *p;) {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == ml && strncmp(p, method, n) == 0) return;
        p = e ? e + 2 : p + n;
    }
    if (al + (al ? 2 : 0) + ml + 1 > ITD_ROUTE_ALLOW_MAX) return;
    if (al) {
        memcpy(allow + al, ", ", 2);
        al += 2;
    }
    memcpy(allow + al, method, ml + 1);
}

int itd_op_route(const char *const *segs, size_t n, const char *method, itd_route *r)
{
    memset(r, 0, sizeof *r);
    r->op = -1;
    if (!segs || !method) return -1;
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        const itd_op_def *d = &itd_ops[i];
        if (!template_match(d->path, segs, n, NULL)) continue;
        allow_add(r->allow, d->method);
        if (r->op < 0 && strcmp(d->method, method) == 0) {
            template_match(d->path, segs, n, r);
            r->op = i;
        }
    }
    return r->op;
}
