/*
 * model.h - the Jobs, Run and Auth Sessions API models as C structs, one per type of the API
 * reference, and their schemas (model.c).
 *
 *  - Every model type is a plain struct that starts with `itd_obj` and is
 *    described by an `itd_schema`.  The codec (codec.h) is generic over
 *    schemas; what a schema holds (its field table) is private to the core
 *    (model_internal.h).
 *  - Field names are the API's wire names.  Absent optional strings/objects are
 *    NULL; optional numbers/booleans carry a `has_<name>` flag; nullable keys a
 *    `<name>_null` flag (1 when the wire carried JSON null).
 *  - Fields marked "newest" exist only in the newest API (SDK v0.5.2); the
 *    others are v0.3.12's (the reference's two versions).
 */
#ifndef ITD_MODEL_H
#define ITD_MODEL_H

#include <stddef.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A schema: opaque outside the core; itd_schema_name gives its name. */
typedef struct itd_schema itd_schema;

struct itd_schema;

typedef struct itd_obj {
    const struct itd_schema *schema; /* the exact schema (union branch) this object was built with */
    cJSON *extra;                    /* unknown keys from a response, kept in order (object), or NULL */
    /* NULL: every part malloc'd on its own.  Set by a frozen decode
     * (itd_decode_frozen): the tree is one arena, the root's pointer is the
     * arena, its parts' a marker; itd_free of the root frees it all and of a
     * part nothing. */
    struct itd_arena *arena;
} itd_obj;

typedef struct itd_array {
    size_t n;
    void **items; /* each an object of the element schema */
} itd_array;

/* number | string (Interval.every, CalendarRange.start/end, schedule jitter) */
typedef enum { ITD_NS_ABSENT = 0, ITD_NS_NUMBER, ITD_NS_STRING } itd_numstr_kind;
typedef struct itd_numstr {
    itd_numstr_kind kind;
    double num;
    char *str;
} itd_numstr;

typedef struct itd_auth_session {
    itd_obj h;
    char *id;
    double checkAttempts;  int has_checkAttempts;  /* newest */
    double createAttempts; int has_createAttempts; /* newest */
} itd_auth_session;

typedef enum { ITD_SINK_WEBHOOK = 1, ITD_SINK_S3 = 2 } itd_sink_kind;
typedef struct itd_sink {
    itd_obj h;
    itd_sink_kind kind;
    char *type;               /* "webhook" | "s3" */
    /* webhook */
    char *url;
    cJSON *headers;           /* object, free-form; SECRET (redacted in summaries) */
    /* s3 */
    char *region, *bucket, *accessKeyId;
    char *secretAccessKey;    /* SECRET */
    char *prefix;
    /* both */
    int skipOnFail; int has_skipOnFail;
    cJSON *apisToSend;        /* newest: array of api names */
    char *endpoint;           /* newest (s3) */
    int forcePathStyle; int has_forcePathStyle; /* newest (s3) */
} itd_sink;

typedef struct itd_payload_retry { /* newest per-payload retry */
    itd_obj h;
    double maximumAttempts; int has_maximumAttempts;
} itd_payload_retry;

typedef struct itd_payload {
    itd_obj h;
    char *apiName;
    cJSON *parameters;        /* object or array, free-form */
    double requestTimeout; int has_requestTimeout; /* newest */
    itd_payload_retry *retry;                      /* newest */
} itd_payload;

typedef struct itd_interval {
    itd_obj h;
    itd_numstr every;         /* ms number, or duration string */
} itd_interval;

typedef struct itd_calrange {
    itd_obj h;
    itd_numstr start;
    itd_numstr end;           /* kind ABSENT when not given */
    double step; int has_step;
} itd_calrange;

typedef enum { ITD_CV_NUMBER = 1, ITD_CV_STRING, ITD_CV_RANGE, ITD_CV_LIST } itd_calvalue_kind;
typedef struct itd_calvalue {
    itd_obj h;
    itd_calvalue_kind kind;
    double num;
    char *str;
    itd_calrange *range;
    itd_array list;           /* of itd_calvalue* (ranges; newest also numbers/strings) */
} itd_calvalue;

typedef struct itd_calendar {
    itd_obj h;
    itd_calvalue *second, *minute, *hour, *dayOfWeek, *dayOfMonth, *month, *year;
    char *comment;
} itd_calendar;

typedef struct itd_schedule {
    itd_obj h;
    itd_array intervals; int has_intervals;  /* of itd_interval* */
    itd_array calendars; int has_calendars;  /* of itd_calendar* */
    itd_numstr jitter;                       /* newest */
} itd_schedule;

/* JobRetry (input: durations are strings) and JobRetryResponse (ms numbers)
 * share this struct; the schema says which form the intervals take. */
typedef struct itd_retry {
    itd_obj h;
    double maximumAttempts; int has_maximumAttempts;
    double backoffCoefficient; int has_backoffCoefficient;
    itd_numstr initialInterval;
    itd_numstr maximumInterval;
} itd_retry;

typedef struct itd_configuration {
    itd_obj h;
    char *runMode;
    double maxConcurrentRequests; int has_maxConcurrentRequests;
    itd_retry *retry;
    double requestTimeout; int has_requestTimeout; /* newest */
} itd_configuration;

typedef struct itd_job_state {
    itd_obj h;
    char *status;   /* "ACTIVE" | "PAUSED" | NULL (absent: treat as ACTIVE) */
    char *reason;
} itd_job_state;

typedef struct itd_job_input {
    itd_obj h;
    char *id;
    itd_sink *sink; int sink_null;
    itd_array payload;                /* of itd_payload* */
    itd_schedule *schedule;
    itd_auth_session *authSession;
    itd_configuration *configuration;
} itd_job_input;

/* The newest API's update body (the whole definition without id), and its
 * create body (itd_JobInputNewest: the same with `id` first). */
typedef struct itd_job_update_input {
    itd_obj h;
    char *id;                          /* create only; NULL in an update */
    itd_array payload;
    itd_configuration *configuration;
    itd_schedule *schedule; int schedule_null;
    itd_sink *sink; int sink_null;
    char *proxy; int proxy_null;
    itd_auth_session *auth_session; int auth_session_null;
} itd_job_update_input;

typedef struct itd_job {
    itd_obj h;
    char *id;
    itd_sink *sink; int sink_null;
    itd_array payload; int has_payload;
    itd_schedule *schedule; int schedule_null;
    itd_auth_session *authSession;     /* wire authSession or auth_session */
    itd_configuration *configuration;
    char *created_at;
    char *next_run_time; int next_run_time_null;
    char *last_run_time; int last_run_time_null;
    itd_job_state *state;              /* object, or the newest API's bare string */
    char *projectId;                   /* wire projectId or project_id */
    char *workspace_id;                /* newest list items */
    cJSON *proxy;                      /* newest: string or object */
    cJSON *reason;                     /* newest list items */
    char *schedule_id; int schedule_id_null; /* newest */
} itd_job;

typedef struct itd_run_summary {
    itd_obj h;
    double apis_count, success_count, failures_count;
    double pending_count; int has_pending_count;
} itd_run_summary;

typedef struct itd_job_run {
    itd_obj h;
    char *id;
    char *projectId;                 /* projectId or project_id */
    char *jobId;                     /* jobId or job_id */
    char *start_time;
    char *status;                    /* open enum on decode */
    itd_run_summary *summary; int summary_null;
    char *type;                      /* MANUAL | SCHEDULED */
    char *workspace_id;
    /* newest */
    char *end_time; int end_time_null;
    char *created_at, *updated_at;
    double payloads; int has_payloads; int payloads_null;
    double successful_runs; int has_successful_runs; int successful_runs_null;
    double failed_runs; int has_failed_runs; int failed_runs_null;
    cJSON *error;
    cJSON *reason;
    cJSON *job_configuration_snapshot;
} itd_job_run;

typedef struct itd_job_list {   /* list jobs: a bare array on the wire */
    itd_obj h;
    itd_array items;            /* of itd_job* */
} itd_job_list;

typedef struct itd_run_list {   /* list runs: bare array (v0.3.12) or {jobRuns,totalCount} (newest) */
    itd_obj h;
    itd_array jobRuns;          /* of itd_job_run* */
    double totalCount; int has_totalCount;
} itd_run_list;

typedef struct itd_run_results { /* newest */
    itd_obj h;
    char *signed_url, *signed_url_expiration, *key, *format;
    double size; int has_size;
} itd_run_results;

typedef struct itd_run_detail {  /* newest: get one run */
    itd_obj h;
    itd_job_run *jobRun;
    itd_run_results *results;
} itd_run_detail;

/* CreateJob, PauseJob, ResumeJob, TriggerJob, TerminateJobRun, UpdateJob. */
typedef struct itd_action {
    itd_obj h;
    char *id;
    char *jobRunId;  /* newest trigger */
    char *message;
} itd_action;

/* ApiErrorInvalidInput (400), ApiErrorUnauthorized (401) and the newest API's typed
 * errors; every key optional, extras kept. */
typedef struct itd_api_error {
    itd_obj h;
    char *message;
    cJSON *details;
    char *code, *category, *correlationId;
    int retirable; int has_retirable;
} itd_api_error;

typedef struct itd_ref {   /* {id} and {id, name} */
    itd_obj h;
    char *id;
    char *name;
} itd_ref;

typedef struct itd_api_result {   /* ResultCompleted | ResultFailed, by status */
    itd_obj h;
    cJSON *result;
    char *error;
    char *message;
    char *status;
    double statusCode;
} itd_api_result;

typedef struct itd_api_info {
    itd_obj h;
    char *name;
    cJSON *parameters;
    itd_api_result *result;
    char *runId;
} itd_api_info;

typedef struct itd_sink_result {  /* JobSinkResultPayload */
    itd_obj h;
    itd_api_info *apiInfo;
    char *workspaceId;
    itd_ref *project;
    itd_ref *authSession;
    itd_ref *projectJob;
    itd_ref *projectJobRun;
} itd_sink_result;

/* ---- Run API and Auth Sessions (the newest API; v0.3.12 shapes decode too) */

/* The auth session of a run: RuntimeAuthSessionInput | CredentialsAuthSessionInput
 * (itd_RunAuthSession picks the branch); one struct for both. */
typedef struct itd_run_auth_session {
    itd_obj h;
    char *id;                 /* required in the credentials member */
    int autoRecreate; int has_autoRecreate;
    double checkAttempts; int has_checkAttempts;
    double createAttempts; int has_createAttempts;
    char *proxy; int proxy_null;        /* SECRET: a proxy URL may carry user:password */
    double requestTimeout; int has_requestTimeout; /* seconds */
    cJSON *runtimeInput;      /* runtime member: object; SECRET (credentials) */
} itd_run_auth_session;

typedef struct itd_run_start_input {  /* body of run start */
    itd_obj h;
    cJSON *parameters;        /* object, free-form */
    char *proxy; int proxy_null;        /* SECRET */
    int saveTrace; int has_saveTrace;
    double requestTimeout; int has_requestTimeout; /* seconds */
    itd_payload_retry *retry;
    itd_run_auth_session *authSession;
    itd_sink *sink;
    char *api;
} itd_run_start_input;

typedef struct itd_run_started {      /* RunStarted (start run, 201) */
    itd_obj h;
    char *runId;
    char *status;             /* "pending"; open on decode */
} itd_run_started;

/* RunError: the `error` of a run result or a failed auth-session operation.
 * v0.3.12 sends a bare string there (an error code): it lands in `code`. */
typedef struct itd_run_error {
    itd_obj h;
    char *code;               /* open */
    char *message;
    char *category;           /* open */
    int retirable; int has_retirable;
    char *doc_url;
    char *correlation_id;     /* wire correlation_id, or correlationId */
    cJSON *details;
} itd_run_error;

typedef struct itd_run_reason {       /* RunReason: why a run or operation was canceled */
    itd_obj h;
    char *type;               /* open */
    char *message;
    char *doc_url;
    cJSON *details;
} itd_run_reason;

typedef struct itd_extended_payload {
    itd_obj h;
    char *api;
    char *runId;
    cJSON *parameters;
} itd_extended_payload;

typedef struct itd_run_result {       /* RunResult (get run result) */
    itd_obj h;
    char *runId;
    char *status;             /* pending | started | completed | canceled | failed; open */
    cJSON *result; int result_null;     /* any JSON; result_null: the wire carried null */
    itd_array extendedPayloads; int has_extendedPayloads; /* of itd_extended_payload* */
    itd_run_error *error;
    char *message;
    itd_run_reason *reason;
    double statusCode; int has_statusCode; /* v0.3.12 */
} itd_run_result;

typedef struct itd_auth_session_info { /* AuthSessionInfo: list item, get */
    itd_obj h;
    char *id;
    char *type;               /* CREDENTIALS | RECORDER | RUNTIME; absent at v0.3.12; open */
    char *status;             /* PENDING | READY | EXPIRED; open */
} itd_auth_session_info;

typedef struct itd_auth_session_list { /* a bare array on the wire */
    itd_obj h;
    itd_array items;          /* of itd_auth_session_info* */
} itd_auth_session_list;

/* AuthSessionCreateInput, AuthSessionUpdateInput (no id) and
 * AuthSessionValidateInput (no id, no parameters, no saveTrace). */
typedef struct itd_auth_session_input {
    itd_obj h;
    char *id;                 /* create only */
    cJSON *parameters;        /* create, update: object; SECRET (credentials) */
    char *proxy; int proxy_null;        /* SECRET */
    int autoRecreate; int has_autoRecreate;         /* validate */
    double createAttempts; int has_createAttempts;
    double checkAttempts; int has_checkAttempts;
    int saveTrace; int has_saveTrace;               /* create, update */
    double requestTimeout; int has_requestTimeout;  /* validate */
} itd_auth_session_input;

typedef struct itd_operation_started { /* OperationStarted (create/update/validate start) */
    itd_obj h;
    char *status;             /* "started" or "pending" (either from any of the three); open */
    char *operationId;
} itd_operation_started;

/* OperationResult: one struct for every member (done, pending, canceled,
 * in_progress, failed, and v0.3.12's requested_more_info), told apart by
 * `status`, kept open. */
typedef struct itd_operation_result {
    itd_obj h;
    char *status;
    char *authSessionId;      /* done */
    char *runId;              /* in_progress */
    char *message;            /* canceled, failed */
    itd_run_error *error;     /* failed (v0.3.12: a string, in error->code) */
    itd_run_reason *reason;   /* canceled */
    char *id;                 /* v0.3.12 requested_more_info: the info request's id */
    cJSON *details;           /* v0.3.12 requested_more_info */
} itd_operation_result;

/* ------------------------------------------------------------------ schemas */

/* Every public model schema (the Lua binding exposes one type per entry),
 * NULL-terminated. */
extern const itd_schema *const itd_schemas[];

extern const itd_schema itd_Job, itd_JobInput, itd_JobUpdateInput, itd_JobInputNewest, itd_JobRun,
    itd_JobList, itd_JobRunList, itd_JobRunDetail, itd_RunResults,
    itd_JobSink, itd_WebhookSink, itd_AmazonS3Sink, itd_JobPayload, itd_PayloadRetry,
    itd_JobSchedule, itd_Interval, itd_Calendar, itd_CalendarRange, itd_CalendarValue,
    itd_JobConfiguration, itd_JobConfigurationResponse, itd_JobRetry, itd_JobRetryResponse,
    itd_JobState, itd_AuthSession, itd_RunSummary,
    itd_CreateJob, itd_PauseJob, itd_ResumeJob, itd_TriggerJob, itd_TerminateJobRun, itd_UpdateJob,
    itd_ApiErrorInvalidInput, itd_ApiErrorUnauthorized, itd_ApiError,
    itd_JobSinkResultPayload, itd_WebhookAPIInfo, itd_ApiResult, itd_ResultCompleted,
    itd_ResultFailed, itd_ProjectRef, itd_IdRef,
    itd_JobUpdateConfiguration, itd_JobUpdateRetry, itd_JobUpdatePayload, itd_JobUpdateAuthSession,
    /* Run API and Auth Sessions */
    itd_RunStartInput, itd_RunAuthSession, itd_RuntimeAuthSessionInput, itd_CredentialsAuthSessionInput,
    itd_RunStarted, itd_RunResult, itd_RunError, itd_RunReason, itd_ExtendedPayload,
    itd_AuthSessionInfo, itd_AuthSessionList, itd_AuthSessionCreateInput, itd_AuthSessionUpdateInput,
    itd_AuthSessionValidateInput, itd_OperationStarted, itd_OperationResult;

/* The schema's type name, e.g. "Job" (the Lua binding's intuned.<name>). */
const char *itd_schema_name(const itd_schema *s);

#ifdef __cplusplus
}
#endif
#endif
