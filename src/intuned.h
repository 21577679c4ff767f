/*
 * intuned.h - public C API of lua-intuned's core: the Intuned Jobs API model,
 * its JSON codec, the protocol (requests/responses without I/O) and a libcurl
 * transport.  Usable from C without Lua.
 *
 * Conventions
 *  - Every model type is a plain struct that starts with `itd_obj` and is
 *    described by an `itd_schema` (see model.c).  All codec functions are
 *    generic over schemas; the typed helpers below are thin wrappers.
 *  - Ownership: a decoded object is one tree; free it with itd_free(schema, obj)
 *    (or the typed *_free).  Strings in it are owned by it.  Free-form JSON
 *    (`parameters`, `headers`, ...) is kept as cJSON trees owned by the object.
 *  - Errors are returned, never printed: functions take an `itd_error *` that
 *    they fill on failure (it may be NULL).  Release it with itd_error_clear().
 *  - Field names are the API's wire names.  Absent optional strings/objects are
 *    NULL; optional numbers/booleans carry a `has_<name>` flag; nullable keys a
 *    `<name>_null` flag (1 when the wire carried JSON null).
 */
#ifndef INTUNED_H
#define INTUNED_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ITD_VERSION "0.1.0"
/* The default User-Agent of both transports (one place for the version). */
#define ITD_USER_AGENT "lua-intuned/" ITD_VERSION

/* Hard limits applied by every decoder: anything bigger is refused with a
 * clear error rather than exhausting memory or the C stack. */
#define ITD_MAX_DOCUMENT_BYTES (16u * 1024u * 1024u)
#define ITD_MAX_DEPTH 1000 /* nesting of JSON values, as cJSON's own cap; Lua tables deeper (or cyclic) are refused */

/* ------------------------------------------------------------------ errors */

typedef enum itd_err_kind {
    ITD_ERR_NONE = 0,
    ITD_ERR_VALIDATION,     /* bad input: nothing was sent */
    ITD_ERR_INVALID_INPUT,  /* 400 */
    ITD_ERR_UNAUTHORIZED,   /* 401 */
    ITD_ERR_NOT_FOUND,      /* 404 */
    ITD_ERR_CONFLICT,       /* 409 */
    ITD_ERR_RATE_LIMITED,   /* 429 */
    ITD_ERR_SERVER,         /* 5xx */
    ITD_ERR_API,            /* any other unexpected status */
    ITD_ERR_TIMEOUT,        /* per-attempt timeout or overall deadline */
    ITD_ERR_CONNECTION,     /* could not connect / connection dropped / response not HTTP */
    ITD_ERR_DECODE,         /* success status but body not JSON / not the model; header too large */
    ITD_ERR_USAGE,          /* programming error: bad argument to the API */
    ITD_ERR_NOMEM           /* an allocation failed here (never caused by a response alone) */
} itd_err_kind;

#define ITD_PATH_MAX 256
#define ITD_MSG_MAX 512
#define ITD_ERROR_BODY_MAX 4096  /* bytes of a response body kept in an error */

typedef struct itd_error {
    itd_err_kind kind;
    int status;                /* HTTP status, 0 when none */
    char path[ITD_PATH_MAX];   /* field path, e.g. "payload[2].apiName" ("" = whole document) */
    char message[ITD_MSG_MAX]; /* what was wrong (never contains a secret) */
    cJSON *details;            /* server-provided details (owned), or NULL */
    cJSON *data;               /* decoded error body (owned), or NULL */
    char *body;                /* raw response body, at most ITD_ERROR_BODY_MAX bytes (owned) */
    size_t body_len;
    int retryable;             /* 1 when retrying the same call may succeed */
    int attempts;              /* attempts made (client calls) */
    double retry_after;        /* seconds from Retry-After, <0 when absent */
} itd_error;

void itd_error_clear(itd_error *e);             /* frees owned members, resets */
const char *itd_err_kind_name(itd_err_kind k);  /* "validation", "not_found", ... */
/* One line, e.g. "payload[2].apiName: expected string, got number" or
 * "not_found (404): No job with id x".  Returns buf. */
const char *itd_error_format(const itd_error *e, char *buf, size_t len);
/* Set kind/path/message (printf-style message).  Returns -1 for convenience. */
int itd_error_set(itd_error *e, itd_err_kind kind, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (RFC 3629: no overlongs, surrogates or code points past U+10FFFF), or n
 * when all of it is.  What the JSON parser accepts in strings. */
size_t itd_utf8_check(const char *s, size_t n);

/* ---------------------------------------------------------------- warnings */

/* Non-fatal remarks found while decoding (short job id, cron-style calendar
 * string the newer API would refuse, ...). */
typedef struct itd_warnings {
    size_t n;
    char **items;  /* "path: message", owned */
} itd_warnings;
void itd_warnings_clear(itd_warnings *w);

/* ------------------------------------------------------------------- model */

struct itd_schema;

typedef struct itd_obj {
    const struct itd_schema *schema; /* the exact schema (union branch) this object was built with */
    cJSON *extra;                    /* unknown keys from a response, kept in order (object), or NULL */
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
    double checkAttempts;  int has_checkAttempts;  /* HEAD */
    double createAttempts; int has_createAttempts; /* HEAD */
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
    cJSON *apisToSend;        /* HEAD: array of api names */
    char *endpoint;           /* HEAD (s3) */
    int forcePathStyle; int has_forcePathStyle; /* HEAD (s3) */
} itd_sink;

typedef struct itd_payload_retry { /* HEAD per-payload retry */
    itd_obj h;
    double maximumAttempts; int has_maximumAttempts;
} itd_payload_retry;

typedef struct itd_payload {
    itd_obj h;
    char *apiName;
    cJSON *parameters;        /* object or array, free-form */
    double requestTimeout; int has_requestTimeout; /* HEAD */
    itd_payload_retry *retry;                      /* HEAD */
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
    itd_array list;           /* of itd_calvalue* (ranges; HEAD also numbers/strings) */
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
    itd_numstr jitter;                       /* HEAD */
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
    double requestTimeout; int has_requestTimeout; /* HEAD */
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

/* HEAD's update body: the whole definition without id. */
typedef struct itd_job_update_input {
    itd_obj h;
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
    itd_job_state *state;              /* object, or HEAD's bare string */
    char *projectId;                   /* wire projectId or project_id */
    char *workspace_id;                /* HEAD list items */
    cJSON *proxy;                      /* HEAD: string or object */
    cJSON *reason;                     /* HEAD list items */
    char *schedule_id; int schedule_id_null; /* HEAD */
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
    /* HEAD */
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

typedef struct itd_run_list {   /* list runs: bare array (v0.3.12) or {jobRuns,totalCount} (HEAD) */
    itd_obj h;
    itd_array jobRuns;          /* of itd_job_run* */
    double totalCount; int has_totalCount;
} itd_run_list;

typedef struct itd_run_results { /* HEAD */
    itd_obj h;
    char *signed_url, *signed_url_expiration, *key, *format;
    double size; int has_size;
} itd_run_results;

typedef struct itd_run_detail {  /* HEAD get one run */
    itd_obj h;
    itd_job_run *jobRun;
    itd_run_results *results;
} itd_run_detail;

/* CreateJob, PauseJob, ResumeJob, TriggerJob, TerminateJobRun, UpdateJob. */
typedef struct itd_action {
    itd_obj h;
    char *id;
    char *jobRunId;  /* HEAD trigger */
    char *message;
} itd_action;

/* ApiErrorInvalidInput (400), ApiErrorUnauthorized (401) and HEAD's typed
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

/* ------------------------------------------------------------------ schemas */

typedef enum itd_field_kind {
    ITD_F_STRING,    /* char* */
    ITD_F_NUMBER,    /* double (+has flag) */
    ITD_F_BOOL,      /* int (+has flag) */
    ITD_F_JSON,      /* cJSON* (free-form) */
    ITD_F_OBJECT,    /* pointer to a struct of `sub` */
    ITD_F_ARRAY,     /* itd_array of `sub` */
    ITD_F_NUMSTR,    /* itd_numstr */
    ITD_F_CALVALUE   /* itd_calvalue* */
} itd_field_kind;

/* field flags */
#define ITD_REQ        0x0001u /* key must be present */
#define ITD_NULLABLE   0x0002u /* value may be null */
#define ITD_DURATION   0x0004u /* string must be an `ms` duration (§5.1); numbers are ms */
#define ITD_DATETIME   0x0008u /* string is a date-time (kept verbatim) */
#define ITD_SLUG       0x0010u /* string must match ^[A-Za-z0-9_-]+$ */
#define ITD_SECRET     0x0020u /* redacted in summaries */
#define ITD_J_OBJECT   0x0040u /* JSON: must be an object */
#define ITD_J_OBJARR   0x0080u /* JSON: object or array */
#define ITD_J_ARRAY    0x0100u /* JSON: array */
#define ITD_HEAD       0x0200u /* only in the newer API (decoded, not accepted on v0.3.12 input) */
#define ITD_POSITIVE   0x0400u /* number should be > 0: a warning on input otherwise */
#define ITD_INTEGER    0x0800u /* number must be integral */
#define ITD_STRVALS    0x1000u /* JSON array of strings */

typedef struct itd_field {
    const char *name;        /* wire name (written on encode) */
    const char *alias;       /* other wire spelling accepted on decode, or NULL */
    const char *sdk_name;    /* the official SDK's camelCase name (Lua read alias), or NULL */
    itd_field_kind kind;
    unsigned flags;
    size_t off;              /* offset of the value */
    size_t has_off;          /* offset of the `has_` flag (int), or 0 for none */
    size_t null_off;         /* offset of the `_null` flag (int), or 0 for none
                              * (offset 0 is always the itd_obj header) */
    const struct itd_schema *sub;   /* OBJECT / ARRAY element */
    const char *const *enums;       /* closed set of string values (NULL-terminated), or NULL */
    int has_default;
    double num_default;             /* NUMBER / BOOL default */
    const char *str_default;        /* STRING / NUMSTR default */
} itd_field;

/* schema flags */
#define ITD_S_STRICT      0x01u  /* input model: unknown keys are errors */
#define ITD_S_ARRAY_FORM  0x02u  /* the wire form is a bare array holding the first field */
#define ITD_S_STRING_FORM 0x04u  /* a bare string is accepted as the first field (HEAD state) */
#define ITD_S_HEAD        0x08u  /* input in the newer API's form: ITD_HEAD fields allowed */
#define ITD_S_OPEN        0x10u  /* a server document whose unknown keys are data: kept even
                                  * when a program builds one (ITD_MODE_USER) */

typedef struct itd_schema {
    const char *name;                 /* Lua type name, e.g. "Job" */
    size_t size;                      /* sizeof the struct */
    const itd_field *fields;
    size_t nfields;
    unsigned flags;
    /* unions: pick the branch for a JSON value; NULL with msg set = no branch */
    const struct itd_schema *(*select)(const cJSON *v, char *msg, size_t msglen);
    const struct itd_schema *const *branches; /* NULL-terminated, for unions */
} itd_schema;

/* Every public model schema (the Lua binding exposes one type per entry),
 * NULL-terminated. */
extern const itd_schema *const itd_schemas[];
const itd_schema *itd_schema_find(const char *name);

extern const itd_schema itd_Job, itd_JobInput, itd_JobUpdateInput, itd_JobRun,
    itd_JobList, itd_JobRunList, itd_JobRunDetail, itd_RunResults,
    itd_JobSink, itd_WebhookSink, itd_AmazonS3Sink, itd_JobPayload, itd_PayloadRetry,
    itd_JobSchedule, itd_Interval, itd_Calendar, itd_CalendarRange, itd_CalendarValue,
    itd_JobConfiguration, itd_JobConfigurationResponse, itd_JobRetry, itd_JobRetryResponse,
    itd_JobState, itd_AuthSession, itd_RunSummary,
    itd_CreateJob, itd_PauseJob, itd_ResumeJob, itd_TriggerJob, itd_TerminateJobRun, itd_UpdateJob,
    itd_ApiErrorInvalidInput, itd_ApiErrorUnauthorized, itd_ApiError,
    itd_JobSinkResultPayload, itd_WebhookAPIInfo, itd_ApiResult, itd_ResultCompleted,
    itd_ResultFailed, itd_ProjectRef, itd_IdRef,
    itd_ConfigurationV2, itd_RetryV2, itd_JobPayloadV2, itd_AuthSessionV2;

/* ------------------------------------------------------------------- codec */

/* Strict RFC 8259 parser producing a cJSON tree (faster than cJSON's own;
 * refuses "\u0000" in strings and nesting beyond ITD_MAX_DEPTH).  NULL on
 * error, with the byte offset and a static message. */
cJSON *itd_json_parse(const char *text, size_t len, size_t *err_offset, const char **err_msg);
/* Compact JSON text of a cJSON tree (malloc'd, NUL-terminated; free() it),
 * laid out as cJSON_PrintUnformatted lays it out, but numbers read back
 * exactly (cJSON's printer rounds them to 15 digits when that reads back
 * "close enough").  `len` may be NULL.  NULL on OOM or a node cJSON cannot
 * print (cJSON_Invalid, a raw node without text). */
char *itd_json_print(const cJSON *item, size_t *len);

/* Decode JSON text into a new object of `schema`: parse, validate, apply
 * defaults.  Returns NULL and fills `err` (kind VALIDATION for input schemas,
 * DECODE for response schemas) on failure. `warn` may be NULL. */
void *itd_decode(const itd_schema *schema, const char *json, size_t len,
                 itd_warnings *warn, itd_error *err);
/* Same from a cJSON tree.  The tree is consumed (strings and free-form
 * subtrees are moved into the object) and always freed. */
void *itd_decode_take(const itd_schema *schema, cJSON *tree,
                      itd_warnings *warn, itd_error *err);
/* Decoding modes for itd_decode_take_ex. */
#define ITD_MODE_AUTO 0  /* input models strict, responses lenient (as itd_decode_take) */
#define ITD_MODE_USER 1  /* a document a program built: unknown keys refused (kept for
                          * ITD_S_OPEN roots), input value rules applied, errors of kind
                          * VALIDATION; newer-API keys accepted except in v0.3.12 input models */
void *itd_decode_take_ex(const itd_schema *schema, cJSON *tree, int mode,
                         itd_warnings *warn, itd_error *err);
/* A cJSON node type bit set by converters from languages whose empty
 * containers are ambiguous (an empty Lua table): the node is an empty object
 * that the codec also accepts where an array is expected. */
#define ITD_CJSON_EMPTY_TABLE (1 << 14)

/* Encode to a cJSON tree in schema key order, unknown kept keys last.  NULL on OOM. */
cJSON *itd_to_cjson(const itd_schema *schema, const void *obj);
/* The same with every secret (S3 secretAccessKey, sink header values) replaced
 * by "***": for summaries and logs. */
cJSON *itd_to_cjson_redacted(const itd_schema *schema, const void *obj);
/* Encode to compact JSON text (malloc'd, NUL-terminated).  NULL on OOM. */
char *itd_encode(const itd_schema *schema, const void *obj, size_t *len);
/* Deep copy. NULL on OOM. */
void *itd_clone(const itd_schema *schema, const void *obj);
void itd_free(const itd_schema *schema, void *obj);

/* Value formats */
/* `ms`-package duration (§5.1) to milliseconds; -1 on error (negatives refused). */
int itd_duration_ms(const char *s, double *ms);
/* Date-times are those of the years 0001 to 9999 (UTC): Unix seconds in
 * [ITD_TIME_MIN, ITD_TIME_MAX), 0001-01-01T00:00:00Z up to 10000-01-01. */
#define ITD_TIME_MIN (-62135596800.0)
#define ITD_TIME_MAX 253402300800.0
/* ISO-8601 date-time (§5.3) to Unix seconds (fraction kept); -1 if not one,
 * -2 if its UTC instant is outside the years 0001-9999. */
int itd_datetime_parse(const char *s, double *epoch);
/* Days from 1970-01-01 to a proleptic Gregorian date (shared by the date parsers). */
int64_t itd_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes)
 * and return buf; NULL (buf emptied) for NaN, infinities and times outside
 * [ITD_TIME_MIN, ITD_TIME_MAX), or a buffer under 25 bytes. */
const char *itd_datetime_format(double epoch, char *buf, size_t len);
int itd_is_slug(const char *s);
/* Levenshtein-closest field name of `schema` to `name`, or NULL if none is close. */
const char *itd_closest_field(const itd_schema *schema, const char *name);

/* Typed conveniences */
#define itd_job_decode(s, n, e) ((itd_job *)itd_decode(&itd_Job, (s), (n), NULL, (e)))
#define itd_job_input_decode(s, n, e) ((itd_job_input *)itd_decode(&itd_JobInput, (s), (n), NULL, (e)))
#define itd_job_free(p) itd_free(&itd_Job, (p))
#define itd_job_input_free(p) itd_free(&itd_JobInput, (p))

/* ---------------------------------------------------------------- protocol */
/* Turning (operation, arguments) into an HTTP request and (operation, status,
 * headers, body) into a typed result or an error.  No I/O here. */

typedef enum itd_op {
    ITD_OP_JOBS_LIST = 0,
    ITD_OP_JOBS_CREATE,
    ITD_OP_JOBS_GET,
    ITD_OP_JOBS_UPDATE,      /* newer API (HEAD) */
    ITD_OP_JOBS_DELETE,
    ITD_OP_JOBS_PAUSE,
    ITD_OP_JOBS_RESUME,
    ITD_OP_JOBS_TRIGGER,
    ITD_OP_RUNS_LIST,
    ITD_OP_RUNS_GET,         /* newer API (HEAD) */
    ITD_OP_RUNS_TERMINATE,
    ITD_OP__COUNT
} itd_op;

const char *itd_op_name(itd_op op);       /* "jobs:create", "jobs.runs:list", ... */
int itd_op_from_name(const char *name);   /* -1 if unknown */
int itd_op_idempotent(itd_op op);         /* safe to retry blindly */

typedef struct itd_call_args {
    const char *project;     /* every operation */
    const char *job_id;      /* all but list/create */
    const char *run_id;      /* runs get/terminate */
    const itd_job_input *input;          /* create */
    const itd_job_update_input *update;  /* update */
    /* runs list (HEAD): optional query */
    const char *page_number, *page_size, *sort_by;
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
 * stored `job` is the one `in` describes (id, payload apiNames + parameters,
 * sink type and destination, configuration runMode / maxConcurrentRequests /
 * retry with durations compared in ms), 0 when it differs.  Keys the server
 * may leave out of its answer (HEAD dropped runMode and the retry intervals)
 * are compared only when present on both sides. */
int itd_job_matches_input(const itd_job *job, const itd_job_input *in);

/* Percent-encode like JavaScript's encodeURIComponent. malloc'd. */
char *itd_uri_component(const char *s);
/* Retry-After: delta seconds (fractions allowed) or an HTTP date; seconds from
 * `now` (Unix seconds), 0 for a date in the past, or -1 when unparseable.
 * Values are clamped to ITD_RETRY_AFTER_CLAMP (about 68 years), so any
 * value fits an int or a time_t. */
#define ITD_RETRY_AFTER_CLAMP 2147483647.0
double itd_retry_after_seconds(const char *v, double now);

/* ----------------------------------------------------------------- secrets */
/* What never leaves the library (scrub.c).  By value: the secrets one call
 * carried -- API key, values of secret-like extra headers, the input's S3
 * secretAccessKey and webhook header values -- become "***" in errors and
 * hook events.  Secrets shorter than 4 bytes are not scrubbed (they would
 * match ordinary text).  By key: free-form JSON shown to people has every
 * `secretAccessKey`, every value of a sink's `headers` and every
 * secret-like header of a `headers` object replaced by "***". */

typedef struct itd_secret {
    const char *s;
    size_t len;
    char *owned;               /* s itself when copied (wiped and freed), else NULL */
} itd_secret;

#define ITD_SECRETS_INLINE 8
typedef struct itd_secrets {   /* zeroed = empty; never copy a non-empty one */
    size_t n;
    itd_secret inl[ITD_SECRETS_INLINE];
    itd_secret *more;          /* items past the inline ones */
    size_t cap_more;
} itd_secrets;

void itd_secrets_init(itd_secrets *s);
void itd_secrets_free(itd_secrets *s);  /* wipes the copies */
/* Add one secret (copied when `copy`, else borrowed: it must outlive the
 * set).  Short ones are ignored.  0, or -1 on OOM. */
int itd_secrets_add(itd_secrets *s, const char *v, size_t len, int copy);
/* A header name that carries credentials (x-api-key, authorization, cookie,
 * anything with auth, token, secret, key, session, passw...). */
int itd_header_is_secret(const char *name, size_t len);
/* The value of a secret-like header (and the credentials after a known
 * scheme such as "Bearer "); nothing for other names. */
int itd_secrets_add_header(itd_secrets *s, const char *name, size_t nlen, const char *value, int copy);
int itd_secrets_add_sink(itd_secrets *s, const itd_sink *sink, int copy);
/* The API key and the sink secrets of a create/update input. */
int itd_secrets_add_call(itd_secrets *s, const itd_config *cfg, const itd_call_args *args, int copy);
/* 1 when buf[0..len) contains a secret of s. */
int itd_secrets_in(const char *buf, size_t len, const itd_secrets *s);
/* Replace every secret in buf[0..len) by "***" in place; returns the new
 * length (buf is NUL-terminated there when it shrank). */
size_t itd_scrub(char *buf, size_t len, const itd_secrets *s);
/* The same over a cJSON tree (keys and string values, siblings of v too). */
void itd_scrub_cjson(cJSON *v, const itd_secrets *s);
/* message, path, body, details and data of an error. */
void itd_scrub_error(itd_error *e, const itd_secrets *s);
/* The by-key rule over a tree, in place; returns how many values it hid. */
size_t itd_redact_json(cJSON *v);
/* The by-key rule over an error's details and data (and its body, rebuilt
 * from data when data held something to hide). */
void itd_error_redact(itd_error *e);

/* ------------------------------------------------------------ retry policy */

typedef struct itd_retry_policy {
    int enabled;               /* default 1 */
    int max_attempts;          /* default 4 (first try included) */
    double initial_delay;      /* seconds, default 0.5 */
    double max_delay;          /* seconds, default 30 */
    double multiplier;         /* default 2 */
    double jitter;             /* 0..1 fraction of the delay randomised, default 0.5 */
} itd_retry_policy;

void itd_retry_policy_default(itd_retry_policy *p);
/* Decide whether attempt number `attempt` (1-based) that failed with `err`
 * should be retried for `op`.  `sent` is 1 when the request may have reached
 * the server.  Returns 1 and sets *delay (seconds, jitter applied with
 * `rnd` in [0,1)) when it should; 0 otherwise.
 * Rules (call.c has the reasoning): idempotent operations on 429, 502,
 * 503, 504 and on CONNECTION/TIMEOUT errors marked `retryable`; create and
 * trigger only when !sent (CONNECTION/TIMEOUT), on 429, or on 503 with
 * Retry-After.  Never on 500.  Delay: min(max_delay, initial_delay *
 * multiplier^(attempt-1)) * (1 - jitter + jitter*rnd), raised to Retry-After.
 * A Retry-After longer than max(max_delay, ITD_RETRY_AFTER_MAX) is not
 * waited for: 0 is returned and the caller reports the error (which carries
 * retry_after), so a server asking for hours never blocks a call. */
#define ITD_RETRY_AFTER_MAX 120.0

int itd_retry_decide(const itd_retry_policy *p, itd_op op, int attempt,
                     const itd_error *err, int sent, double rnd, double *delay);

/* ---------------------------------------------------------------- schedule */
/* When a JobSchedule fires (schedule.c has the semantics): the union of its
 * intervals (counted from the Unix epoch) and calendars (UTC; absent second,
 * minute, hour = 0, other fields every value), between 1970 and the end of
 * 9999.  Times are Unix seconds (intervals give whole milliseconds). */

typedef struct itd_sched itd_sched;   /* a compiled schedule: read-only, may be shared by threads */

typedef struct itd_sched_opts {
    double min_interval_ms;           /* shorter periods count as this long (0: no floor) */
    double max_interval_ms;           /* longer ones as this long (0: no ceiling) */
} itd_sched_opts;

/* Compile `s` (NULL: a schedule that never fires; `o` may be NULL).  Never
 * fails on data: a value out of range matches nothing, an unreadable one makes
 * its calendar never fire, an unusable interval never fires.  NULL on OOM. */
itd_sched *itd_sched_new(const itd_schedule *s, const itd_sched_opts *o);
void itd_sched_free(itd_sched *c);
/* Up to n fire times strictly after `from`, ascending, into out; returns how
 * many (fewer when the schedule fires no more before year 10000). */
size_t itd_sched_next(const itd_sched *c, double from, double *out, size_t n);
/* Up to n fire times strictly before `from`, descending. */
size_t itd_sched_prev(const itd_sched *c, double from, double *out, size_t n);
/* The fire times t with a <= t <= b, ascending, at most n of them; *more (may
 * be NULL) is set to 1 when there are more than n. */
size_t itd_sched_between(const itd_sched *c, double a, double b, double *out, size_t n, int *more);
/* 1 when the schedule can never fire. */
int itd_sched_never(const itd_sched *c);
/* The schedule's jitter in ms (0 when none): each run may start up to this
 * much after its time; the times above are the nominal ones. */
double itd_sched_jitter_ms(const itd_sched *c);

/* An interval's period in ms (number or duration string); 0, or -1 when it is
 * not a positive one. */
int itd_interval_ms(const itd_interval *iv, double *ms);
/* The value checks of a schedule on input: calendar values in their field's
 * range (second 0-59, minute 0-59, hour 0-23, dayOfMonth 1-31, month 1-12 or
 * a name, dayOfWeek 0-6 or a name, year 1970-9999), whole numbers, non-empty
 * ranges and lists, steps >= 1, readable cron-style strings, intervals of a
 * positive period up to 100 years.  0, or -1 with err (kind VALIDATION, path
 * such as "schedule.calendars[2].hour"; `prefix` defaults to "schedule"). */
int itd_schedule_check(const itd_schedule *s, const char *prefix, itd_error *err);
/* Remarks on a schedule as it is: every value the checks above would refuse,
 * and every calendar that can never fire, with the reason.  0, or -1 on OOM. */
int itd_schedule_warnings(const itd_schedule *s, const char *prefix, itd_warnings *w);
/* The schedule in plain English ("every hour; and at 09:00, 11:00, ... 17:00
 * UTC Monday to Friday"), malloc'd; NULL on OOM. */
char *itd_schedule_describe(const itd_schedule *s);
/* 1 for the statuses an idempotent call may retry (429, 502, 503, 504):
 * what itd_response_parse sets `retryable` from.  call.c holds every rule. */
int itd_status_retryable(long status);

/* --------------------------------------------------------------- transport */

typedef struct itd_client itd_client;

/* Called between attempts (never from inside libcurl) with each event of
 * the call machine (call.h: request, response, retry; redacted). */
struct itd_event;
typedef void (*itd_hook_fn)(void *ud, const struct itd_event *ev);

typedef struct itd_client_opts {
    itd_config cfg;
    long connect_timeout_ms;   /* default 10000 */
    long timeout_ms;           /* per attempt, default 30000 */
    long deadline_ms;          /* whole call incl. retries, default 120000; 0 = none */
    itd_retry_policy retry;
    const char *const *extra_headers; /* "Name: value" strings, NULL-terminated */
    const char *ca_file;       /* CA bundle, or NULL for the system store */
    int insecure;              /* 1 disables TLS verification (default 0) */
    itd_hook_fn hook;          /* optional; sees redacted requests only */
    void *hook_ud;
} itd_client_opts;

void itd_client_opts_default(itd_client_opts *o);
itd_client *itd_client_new(const itd_client_opts *o, itd_error *err);
void itd_client_free(itd_client *c);

typedef struct itd_call {
    itd_op op;
    itd_call_args args;
    const itd_retry_policy *retry;  /* per-call override or NULL */
    /* Per-call overrides of the client's options: 0 keeps the client's, a
     * negative value turns the limit off. */
    long timeout_ms, deadline_ms;
    /* "Name: value", NULL-terminated, sent after the client's (a name given
     * again replaces the client's header), or NULL. */
    const char *const *extra_headers;
} itd_call;

/* One operation, retries included.  0 with `out` or -1 with `err`. */
int itd_client_call(itd_client *c, const itd_call *call, itd_result *out, itd_error *err);
/* Many operations concurrently (libcurl multi), at most `max_in_flight` at once.
 * results[i]/errs[i] receive call i's outcome; returns the number that failed. */
size_t itd_client_batch(itd_client *c, const itd_call *calls, size_t n, size_t max_in_flight,
                        itd_result *results, itd_error *errs);

#ifdef __cplusplus
}
#endif
/* the call machine (call.h includes this header first: no cycle) */
#include "call.h"
/* the operation table (the same way) */
#include "ops.h"
#endif
