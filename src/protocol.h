/*
 * protocol.h - the Jobs API's operations as HTTP, without I/O (protocol.c):
 * (operation, arguments) -> request, (operation, status, headers, body) ->
 * typed result or error.  The operations themselves are rows of the table in
 * ops.h; the life of a call (retries, deadline, reconciliation) is call.h's.
 */
#ifndef ITD_PROTOCOL_H
#define ITD_PROTOCOL_H

#include <stddef.h>
#include "itd_error.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version (the one place: CMake, intuned.pc and Lua's
 * _VERSION read it here), and the default User-Agent of both transports. */
#define ITD_VERSION "0.1.0"
#define ITD_USER_AGENT "lua-intuned/" ITD_VERSION

/* ---------------------------------------------------------------- protocol */
/* Turning (operation, arguments) into an HTTP request and (operation, status,
 * headers, body) into a typed result or an error.  No I/O here. */

typedef enum itd_op {
    ITD_OP_JOBS_LIST = 0,
    ITD_OP_JOBS_CREATE,
    ITD_OP_JOBS_GET,
    ITD_OP_JOBS_UPDATE,      /* the newest API only */
    ITD_OP_JOBS_DELETE,
    ITD_OP_JOBS_PAUSE,
    ITD_OP_JOBS_RESUME,
    ITD_OP_JOBS_TRIGGER,
    ITD_OP_RUNS_LIST,
    ITD_OP_RUNS_GET,         /* the newest API only */
    ITD_OP_RUNS_TERMINATE,
    /* Run API and Auth Sessions (appended: the values above stay) */
    ITD_OP_RUN_START,
    ITD_OP_RUN_RESULT,
    ITD_OP_AUTH_SESSIONS_LIST,
    ITD_OP_AUTH_SESSIONS_GET,
    ITD_OP_AUTH_SESSIONS_DELETE,
    ITD_OP_AUTH_SESSIONS_CREATE,
    ITD_OP_AUTH_SESSIONS_CREATE_RESULT,
    ITD_OP_AUTH_SESSIONS_UPDATE,
    ITD_OP_AUTH_SESSIONS_UPDATE_RESULT,
    ITD_OP_AUTH_SESSIONS_VALIDATE,
    ITD_OP_AUTH_SESSIONS_VALIDATE_RESULT,
    ITD_OP__COUNT
} itd_op;

const char *itd_op_name(itd_op op);       /* "jobs:create", "jobs.runs:list", ... */
int itd_op_from_name(const char *name);   /* -1 if unknown */
int itd_op_idempotent(itd_op op);         /* safe to retry blindly */

/* Which form of the API a client speaks where the two differ in what is
 * sent: the create body (JobInput at v0.3.12, JobInputNewest in the newest
 * API).  Decoding is version-blind (reference §8.8). */
typedef enum itd_api_version {
    ITD_APIV_V0_3_12 = 0,    /* the default */
    ITD_APIV_NEWEST = 1      /* SDK v0.5.2 */
} itd_api_version;
const char *itd_api_version_name(itd_api_version v);  /* "v0.3.12", "newest" */
/* "v0.3.12" or "0.3.12", "newest" or "v0.5.2": 0 with *out set; -1 otherwise. */
int itd_api_version_parse(const char *s, itd_api_version *out);

typedef struct itd_call_args {
    const char *project;     /* every operation */
    const char *job_id;      /* all but list/create */
    const char *run_id;      /* runs get/terminate; run result */
    /* create: an itd_job_input decoded as itd_JobInput (api_version v0.3.12)
     * or an itd_job_update_input decoded as itd_JobInputNewest (newest); the
     * object's schema must be the one `api_version` sends
     * (itd_op_request), else the request is refused.  Also the body of
     * run start (itd_run_start_input) and of the auth-session starts
     * (itd_auth_session_input of the row's schema). */
    const void *input;
    const itd_job_update_input *update;  /* update */
    /* runs list (the newest API): optional query */
    const char *page_number, *page_size, *sort_by;
    /* the API version the client speaks (its option api_version): which
     * body create sends; 0 (v0.3.12) by default */
    itd_api_version api_version;
    /* auth sessions: get/delete/update/validate; the operation results
     * (after api_version: positional initializers of the older members stay valid) */
    const char *auth_session_id;
    const char *operation_id;
} itd_call_args;

typedef struct itd_config {
    const char *server_url;   /* base URL, default ITD_DEFAULT_SERVER_URL */
    const char *workspace_id; /* required */
    const char *api_key;      /* required; SECRET */
    const char *user_agent;   /* default "lua-intuned/<version>" */
} itd_config;

#define ITD_DEFAULT_SERVER_URL "https://app.intuned.io/api/v1/workspace"

typedef struct itd_header { char *name; char *value; } itd_header;

typedef struct itd_request {
    const char *method;      /* static string */
    char *url;               /* owned */
    char *path;              /* owned: path below the server URL (for logs/tests) */
    itd_header *headers;     /* owned; x-api-key value is the real key: never log it */
    size_t nheaders;
    char *body;              /* owned or NULL */
    size_t body_len;
    int expect_status;       /* the operation's exact success status */
} itd_request;

int itd_request_build(const itd_config *cfg, itd_op op, const itd_call_args *args,
                      itd_request *out, itd_error *err);
void itd_request_free(itd_request *r);
/* Copy of the headers with secrets replaced by "***" (for hooks and logs). */
int itd_request_redacted_headers(const itd_request *r, itd_header **out, size_t *n);
void itd_headers_free(itd_header *h, size_t n);

/* The typed result of an operation. */
typedef struct itd_result {
    itd_op op;
    const itd_schema *schema;  /* schema of `obj`, NULL for delete */
    void *obj;                 /* owned: itd_job_list, itd_job, itd_action, itd_run_list, ... */
} itd_result;
void itd_result_free(itd_result *r);

typedef struct itd_response {
    long status;
    const char *content_type;  /* may be NULL */
    const char *retry_after;   /* Retry-After header value, may be NULL */
    const char *body;
    size_t body_len;
} itd_response;

/* Classify a response.  0 with `out` filled, or -1 with `err` (kind from the
 * status; retryable, retry_after and a bounded copy of the body set). */
int itd_response_parse(itd_op op, const itd_response *resp, itd_result *out, itd_error *err);

/* Reconciliation of a retried create that met 409 "already exists": 1 when the
 * stored `job` is the one `in` (a create body of either form) describes (id, payload apiNames + parameters,
 * sink type and destination, configuration runMode / maxConcurrentRequests /
 * retry with durations compared in ms), 0 when it differs.  Keys the server
 * may leave out of its answer (the newest API dropped runMode and the retry intervals)
 * are compared only when present on both sides. */
int itd_job_matches_input(const itd_job *job, const void *in);
/* The id and the sink of a create body of either form (see itd_call_args.input);
 * NULL for none. */
const char *itd_input_id(const void *in);
const itd_sink *itd_input_sink(const void *in);

/* Percent-encode like JavaScript's encodeURIComponent. malloc'd. */
char *itd_uri_component(const char *s);
/* Retry-After: delta seconds (fractions allowed) or an HTTP date; seconds from
 * `now` (Unix seconds), 0 for a date in the past, or -1 when unparseable.
 * Values are clamped to ITD_RETRY_AFTER_CLAMP (about 68 years), so any
 * value fits an int or a time_t. */
#define ITD_RETRY_AFTER_CLAMP 2147483647.0
double itd_retry_after_seconds(const char *v, double now);

#ifdef __cplusplus
}
#endif
#endif
