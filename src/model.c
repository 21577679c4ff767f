/*
 * model.c - the Jobs API model as data: one schema (a field table) per C type
 * of intuned.h.  Field order is the SDK's schema order (the order the SDK
 * writes keys, reference §4).  codec.c walks these tables; nothing here runs.
 *
 * Decoding both API versions (reference §8.8) with one schema means a key is
 * required only when both versions require it; keys that exist only in the
 * newest API (v0.5.2) carry ITD_NEWEST and are refused in v0.3.12 input (JobInput).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "model.h"
#include "model_internal.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))
#define O(st, m) offsetof(st, m)

/* Field constructors: name, flags, member (+ flag members). */
#define STR(st, n, fl, m) { .name = n, .kind = ITD_F_STRING, .flags = (fl), .off = O(st, m) }
#define STRN(st, n, fl, m, nul) { .name = n, .kind = ITD_F_STRING, .flags = (fl) | ITD_NULLABLE, .off = O(st, m), .null_off = O(st, nul) }
#define NUM(st, n, fl, m, has) { .name = n, .kind = ITD_F_NUMBER, .flags = (fl), .off = O(st, m), .has_off = O(st, has) }
#define NUMR(st, n, fl, m) { .name = n, .kind = ITD_F_NUMBER, .flags = (fl) | ITD_REQ, .off = O(st, m) }
#define NUMD(st, n, fl, m, has, d) { .name = n, .kind = ITD_F_NUMBER, .flags = (fl), .off = O(st, m), .has_off = O(st, has), .has_default = 1, .num_default = (d) }
#define BOOLD(st, n, fl, m, has, d) { .name = n, .kind = ITD_F_BOOL, .flags = (fl), .off = O(st, m), .has_off = O(st, has), .has_default = 1, .num_default = (d) }
#define BOOL(st, n, fl, m, has) { .name = n, .kind = ITD_F_BOOL, .flags = (fl), .off = O(st, m), .has_off = O(st, has) }
#define JSON(st, n, fl, m) { .name = n, .kind = ITD_F_JSON, .flags = (fl), .off = O(st, m) }
#define OBJ(st, n, fl, m, sc) { .name = n, .kind = ITD_F_OBJECT, .flags = (fl), .off = O(st, m), .sub = &(sc) }
#define OBJN(st, n, fl, m, nul, sc) { .name = n, .kind = ITD_F_OBJECT, .flags = (fl) | ITD_NULLABLE, .off = O(st, m), .null_off = O(st, nul), .sub = &(sc) }
#define ARR(st, n, fl, m, sc) { .name = n, .kind = ITD_F_ARRAY, .flags = (fl), .off = O(st, m), .sub = &(sc) }
#define ARRH(st, n, fl, m, has, sc) { .name = n, .kind = ITD_F_ARRAY, .flags = (fl), .off = O(st, m), .has_off = O(st, has), .sub = &(sc) }
#define NS(st, n, fl, m) { .name = n, .kind = ITD_F_NUMSTR, .flags = (fl), .off = O(st, m) }
#define CAL(st, n, m) { .name = n, .kind = ITD_F_CALVALUE, .off = O(st, m) }
/* A calendar value whose numbers must lie in [a, b] on input (§4.7). */
#define CALR(st, n, m, a, b) { .name = n, .kind = ITD_F_CALVALUE, .flags = ITD_RANGED, .off = O(st, m), .lo = (a), .hi = (b) }
/* A count that must be a whole number >= 1 on input (the reference gives no
 * upper bound): attempts, request timeouts, calendar steps. */
#define MIN1 .lo = 1, .hi = INFINITY

#define SCHEMA(var, nm, st, fl) \
    const itd_schema var = { nm, sizeof(st), var##_fields, countof(var##_fields), (fl), NULL, NULL, NULL }
/* An input form, with the keys only the other version's form of it has. */
#define SCHEMA_OTHER(var, nm, st, fl, other) \
    const itd_schema var = { nm, sizeof(st), var##_fields, countof(var##_fields), (fl), NULL, NULL, other }

static const char *const run_mode_values[] = { "Order-Irrelevant", NULL };
static const char *const state_values[] = { "ACTIVE", "PAUSED", NULL };
static const char *const run_type_values[] = { "MANUAL", "SCHEDULED", NULL };
static const char *const webhook_values[] = { "webhook", NULL };
static const char *const s3_values[] = { "s3", NULL };
static const char *const completed_values[] = { "completed", NULL };
static const char *const failed_values[] = { "failed", NULL };

/* ---- AuthSession (v0.3.12 {id}; the newest API adds attempts, defaulted only in its input) */
static const itd_field itd_AuthSession_fields[] = {
    STR(itd_auth_session, "id", ITD_REQ, id),
    NUM(itd_auth_session, "checkAttempts", ITD_NEWEST, checkAttempts, has_checkAttempts),
    NUM(itd_auth_session, "createAttempts", ITD_NEWEST, createAttempts, has_createAttempts),
};
SCHEMA(itd_AuthSession, "AuthSession", itd_auth_session, 0);

static const itd_field itd_JobUpdateAuthSession_fields[] = {
    STR(itd_auth_session, "id", ITD_REQ, id),
    { .name = "checkAttempts", .kind = ITD_F_NUMBER, .flags = ITD_NEWEST | ITD_INTEGER | ITD_RANGED,
      .off = O(itd_auth_session, checkAttempts), .has_off = O(itd_auth_session, has_checkAttempts),
      .has_default = 1, .num_default = 3, MIN1 },
    { .name = "createAttempts", .kind = ITD_F_NUMBER, .flags = ITD_NEWEST | ITD_INTEGER | ITD_RANGED,
      .off = O(itd_auth_session, createAttempts), .has_off = O(itd_auth_session, has_createAttempts),
      .has_default = 1, .num_default = 3, MIN1 },
};
SCHEMA(itd_JobUpdateAuthSession, "JobUpdateAuthSession", itd_auth_session, 0);

/* ---- Sinks: a union told apart by `type` (webhook first, as the SDK) */
static const itd_field itd_WebhookSink_fields[] = {
    { .name = "type", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_sink, type), .enums = webhook_values },
    STR(itd_sink, "url", ITD_REQ | ITD_URL, url),
    /* the SDK refuses a header value that is not a string (runs reference §1.4) */
    JSON(itd_sink, "headers", ITD_J_OBJECT | ITD_SECRET | ITD_STRMAP, headers),
    BOOLD(itd_sink, "skipOnFail", 0, skipOnFail, has_skipOnFail, 0),
    JSON(itd_sink, "apisToSend", ITD_NEWEST | ITD_STRVALS, apisToSend),
};
SCHEMA(itd_WebhookSink, "WebhookSink", itd_sink, 0);

static const itd_field itd_AmazonS3Sink_fields[] = {
    { .name = "type", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_sink, type), .enums = s3_values },
    STR(itd_sink, "region", ITD_REQ, region),
    STR(itd_sink, "bucket", ITD_REQ, bucket),
    STR(itd_sink, "accessKeyId", ITD_REQ, accessKeyId),
    STR(itd_sink, "secretAccessKey", ITD_REQ | ITD_SECRET, secretAccessKey),
    STR(itd_sink, "prefix", 0, prefix),
    BOOLD(itd_sink, "skipOnFail", 0, skipOnFail, has_skipOnFail, 0),
    JSON(itd_sink, "apisToSend", ITD_NEWEST | ITD_STRVALS, apisToSend),
    STR(itd_sink, "endpoint", ITD_NEWEST, endpoint),
    BOOL(itd_sink, "forcePathStyle", ITD_NEWEST, forcePathStyle, has_forcePathStyle),
};
SCHEMA(itd_AmazonS3Sink, "AmazonS3Sink", itd_sink, 0);

static const itd_schema *select_sink(const cJSON *v, char *msg, size_t len)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!t) { snprintf(msg, len, "type|required field is missing (\"webhook\" or \"s3\")"); return NULL; }
    if (!cJSON_IsString(t)) { snprintf(msg, len, "type|expected string \"webhook\" or \"s3\""); return NULL; }
    if (strcmp(t->valuestring, "webhook") == 0) return &itd_WebhookSink;
    if (strcmp(t->valuestring, "s3") == 0) return &itd_AmazonS3Sink;
    snprintf(msg, len, "type|expected \"webhook\" or \"s3\", got \"%.40s\"", t->valuestring);
    return NULL;
}
static const itd_schema *const sink_branches[] = { &itd_WebhookSink, &itd_AmazonS3Sink, NULL };
const itd_schema itd_JobSink = { "JobSink", sizeof(itd_sink), NULL, 0, 0, select_sink, sink_branches, NULL };

/* ---- Payload */
static const itd_field itd_PayloadRetry_fields[] = {
    { .name = "maximumAttempts", .kind = ITD_F_NUMBER, .flags = ITD_INTEGER | ITD_RANGED,
      .off = O(itd_payload_retry, maximumAttempts), .has_off = O(itd_payload_retry, has_maximumAttempts),
      .has_default = 1, .num_default = 3, MIN1 },
};
SCHEMA(itd_PayloadRetry, "PayloadRetry", itd_payload_retry, 0);

static const itd_field itd_JobPayload_fields[] = {
    STR(itd_payload, "apiName", ITD_REQ, apiName),
    JSON(itd_payload, "parameters", ITD_J_OBJARR, parameters),
    NUM(itd_payload, "requestTimeout", ITD_NEWEST, requestTimeout, has_requestTimeout),
    OBJ(itd_payload, "retry", ITD_NEWEST, retry, itd_PayloadRetry),
};
SCHEMA(itd_JobPayload, "JobPayload", itd_payload, 0);

/* The newest API's payload (JobUpdatePayload), key order parameters, requestTimeout, retry, apiName. */
static const itd_field itd_JobUpdatePayload_fields[] = {
    JSON(itd_payload, "parameters", ITD_REQ | ITD_J_OBJECT, parameters),
    { .name = "requestTimeout", .kind = ITD_F_NUMBER, .flags = ITD_NEWEST | ITD_INTEGER | ITD_RANGED,
      .off = O(itd_payload, requestTimeout), .has_off = O(itd_payload, has_requestTimeout),
      .has_default = 1, .num_default = 600, MIN1 },
    OBJ(itd_payload, "retry", ITD_NEWEST, retry, itd_PayloadRetry),
    STR(itd_payload, "apiName", ITD_REQ, apiName),
};
SCHEMA(itd_JobUpdatePayload, "JobUpdatePayload", itd_payload, 0);

/* ---- Schedule */
static const itd_field itd_Interval_fields[] = {
    NS(itd_interval, "every", ITD_REQ | ITD_DURATION, every),
};
SCHEMA(itd_Interval, "Interval", itd_interval, 0);

static const itd_field itd_CalendarRange_fields[] = {
    NS(itd_calrange, "start", ITD_REQ, start),
    NS(itd_calrange, "end", 0, end),
    /* v0.3.12's SDK adds step 1 to every range; the newest API's does not (§8.3) */
    { .name = "step", .kind = ITD_F_NUMBER, .flags = ITD_RANGED | ITD_OLD_DEFAULT, .off = O(itd_calrange, step),
      .has_off = O(itd_calrange, has_step), .has_default = 1, .num_default = 1, MIN1 },
};
SCHEMA(itd_CalendarRange, "CalendarRange", itd_calrange, 0);

/* A calendar value is handled by codec.c (kind ITD_F_CALVALUE); this schema
 * only names the struct. */
const itd_schema itd_CalendarValue = { "CalendarValue", sizeof(itd_calvalue), NULL, 0, 0, NULL, NULL, NULL };

static const itd_field itd_Calendar_fields[] = {
    /* ranges of §4.7; dayOfWeek and month numbers are inferred there (Sunday = 0) */
    CALR(itd_calendar, "second", second, 0, 59),
    CALR(itd_calendar, "minute", minute, 0, 59),
    CALR(itd_calendar, "hour", hour, 0, 23),
    CALR(itd_calendar, "dayOfWeek", dayOfWeek, 0, 6),
    CALR(itd_calendar, "dayOfMonth", dayOfMonth, 1, 31),
    CALR(itd_calendar, "month", month, 1, 12),
    CAL(itd_calendar, "year", year),
    STR(itd_calendar, "comment", 0, comment),
};
SCHEMA(itd_Calendar, "Calendar", itd_calendar, 0);

static const itd_field itd_JobSchedule_fields[] = {
    NS(itd_schedule, "jitter", ITD_NEWEST | ITD_DURATION, jitter),
    ARRH(itd_schedule, "intervals", 0, intervals, has_intervals, itd_Interval),
    ARRH(itd_schedule, "calendars", 0, calendars, has_calendars, itd_Calendar),
};
SCHEMA(itd_JobSchedule, "JobSchedule", itd_schedule, 0);

/* ---- Configuration and retry: input carries duration strings, responses ms */
static const itd_field itd_JobRetry_fields[] = {
    { .name = "maximumAttempts", .kind = ITD_F_NUMBER, .flags = ITD_REQ | ITD_RANGED,
      .off = O(itd_retry, maximumAttempts), MIN1 },
    NUMD(itd_retry, "backoffCoefficient", 0, backoffCoefficient, has_backoffCoefficient, 1),
    { .name = "initialInterval", .kind = ITD_F_NUMSTR, .flags = ITD_DURATION | ITD_STRVALS,
      .off = O(itd_retry, initialInterval), .has_default = 1, .str_default = "1s" },
    { .name = "maximumInterval", .kind = ITD_F_NUMSTR, .flags = ITD_DURATION | ITD_STRVALS,
      .off = O(itd_retry, maximumInterval) },
};
SCHEMA(itd_JobRetry, "JobRetry", itd_retry, 0);

static const itd_field itd_JobRetryResponse_fields[] = {
    NUM(itd_retry, "maximumAttempts", 0, maximumAttempts, has_maximumAttempts),
    NUMD(itd_retry, "backoffCoefficient", 0, backoffCoefficient, has_backoffCoefficient, 1),
    { .name = "initialInterval", .kind = ITD_F_NUMSTR, .off = O(itd_retry, initialInterval),
      .has_default = 1, .num_default = 1000 },
    NS(itd_retry, "maximumInterval", 0, maximumInterval),
};
SCHEMA(itd_JobRetryResponse, "JobRetryResponse", itd_retry, 0);

static const itd_field itd_JobUpdateRetry_fields[] = {
    { .name = "maximumAttempts", .kind = ITD_F_NUMBER, .flags = ITD_INTEGER | ITD_RANGED,
      .off = O(itd_retry, maximumAttempts), .has_off = O(itd_retry, has_maximumAttempts),
      .has_default = 1, .num_default = 3, MIN1 },
};
static const char *const old_retry_keys[] = { "backoffCoefficient", "initialInterval", "maximumInterval", NULL };
SCHEMA_OTHER(itd_JobUpdateRetry, "JobUpdateRetry", itd_retry, ITD_S_NEWEST, old_retry_keys);

static const itd_field itd_JobConfiguration_fields[] = {
    { .name = "runMode", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_configuration, runMode),
      .enums = run_mode_values },
    NUM(itd_configuration, "maxConcurrentRequests", ITD_POSITIVE, maxConcurrentRequests, has_maxConcurrentRequests),
    OBJ(itd_configuration, "retry", 0, retry, itd_JobRetry),
};
static const char *const newest_configuration_keys[] = { "requestTimeout", NULL };
SCHEMA_OTHER(itd_JobConfiguration, "JobConfiguration", itd_configuration, 0, newest_configuration_keys);

static const itd_field itd_JobConfigurationResponse_fields[] = {
    { .name = "runMode", .kind = ITD_F_STRING, .off = O(itd_configuration, runMode) },
    NUM(itd_configuration, "maxConcurrentRequests", 0, maxConcurrentRequests, has_maxConcurrentRequests),
    OBJ(itd_configuration, "retry", 0, retry, itd_JobRetryResponse),
    NUM(itd_configuration, "requestTimeout", ITD_NEWEST, requestTimeout, has_requestTimeout),
};
SCHEMA(itd_JobConfigurationResponse, "JobConfigurationResponse", itd_configuration, 0);

static const itd_field itd_JobUpdateConfiguration_fields[] = {
    OBJ(itd_configuration, "retry", ITD_NEWEST, retry, itd_JobUpdateRetry),
    NUM(itd_configuration, "maxConcurrentRequests", ITD_POSITIVE, maxConcurrentRequests, has_maxConcurrentRequests),
    { .name = "requestTimeout", .kind = ITD_F_NUMBER, .flags = ITD_NEWEST | ITD_INTEGER | ITD_RANGED,
      .off = O(itd_configuration, requestTimeout), .has_off = O(itd_configuration, has_requestTimeout),
      .has_default = 1, .num_default = 600, MIN1 },
};
static const char *const old_configuration_keys[] = { "runMode", NULL };
SCHEMA_OTHER(itd_JobUpdateConfiguration, "JobUpdateConfiguration", itd_configuration, ITD_S_NEWEST,
             old_configuration_keys);

/* ---- JobInput (create body, v0.3.12) and JobUpdateInput (update body, newest API)
 *
 * `payload` must not be empty in any of them.  v0.3.12's schema allows an
 * empty array (§4.3), but such a job has nothing to run: every trigger and
 * scheduled run would do nothing, so it is refused as a mistake. */
static const itd_field itd_JobInput_fields[] = {
    STR(itd_job_input, "id", ITD_REQ | ITD_SLUG, id),
    OBJN(itd_job_input, "sink", 0, sink, sink_null, itd_JobSink),
    ARR(itd_job_input, "payload", ITD_REQ | ITD_NONEMPTY, payload, itd_JobPayload),
    OBJ(itd_job_input, "schedule", 0, schedule, itd_JobSchedule),
    OBJ(itd_job_input, "authSession", 0, authSession, itd_AuthSession),
    OBJ(itd_job_input, "configuration", ITD_REQ, configuration, itd_JobConfiguration),
};
static const char *const newest_input_keys[] = { "proxy", "auth_session", NULL };
SCHEMA_OTHER(itd_JobInput, "JobInput", itd_job_input, ITD_S_STRICT, newest_input_keys);

static const itd_field itd_JobUpdateInput_fields[] = {
    ARR(itd_job_update_input, "payload", ITD_REQ | ITD_NONEMPTY, payload, itd_JobUpdatePayload),
    OBJ(itd_job_update_input, "configuration", ITD_REQ, configuration, itd_JobUpdateConfiguration),
    OBJN(itd_job_update_input, "schedule", 0, schedule, schedule_null, itd_JobSchedule),
    OBJN(itd_job_update_input, "sink", 0, sink, sink_null, itd_JobSink),
    STRN(itd_job_update_input, "proxy", ITD_NEWEST, proxy, proxy_null),
    OBJN(itd_job_update_input, "auth_session", ITD_NEWEST, auth_session, auth_session_null, itd_JobUpdateAuthSession),
};
static const char *const old_input_keys[] = { "authSession", NULL };
SCHEMA_OTHER(itd_JobUpdateInput, "JobUpdateInput", itd_job_update_input, ITD_S_STRICT | ITD_S_NEWEST, old_input_keys);

/* The newest API's create body (JobInputV2): key order id, payload,
 * configuration, schedule, sink, proxy, auth_session. */
static const itd_field itd_JobInputNewest_fields[] = {
    STR(itd_job_update_input, "id", ITD_REQ | ITD_SLUG, id),
    ARR(itd_job_update_input, "payload", ITD_REQ | ITD_NONEMPTY, payload, itd_JobUpdatePayload),
    OBJ(itd_job_update_input, "configuration", ITD_REQ, configuration, itd_JobUpdateConfiguration),
    OBJN(itd_job_update_input, "schedule", 0, schedule, schedule_null, itd_JobSchedule),
    OBJN(itd_job_update_input, "sink", 0, sink, sink_null, itd_JobSink),
    STRN(itd_job_update_input, "proxy", ITD_NEWEST, proxy, proxy_null),
    OBJN(itd_job_update_input, "auth_session", ITD_NEWEST, auth_session, auth_session_null, itd_JobUpdateAuthSession),
};
SCHEMA_OTHER(itd_JobInputNewest, "JobInputNewest", itd_job_update_input, ITD_S_STRICT | ITD_S_NEWEST, old_input_keys);

/* ---- Job (get job; list item) */
static const itd_field itd_JobState_fields[] = {
    { .name = "status", .kind = ITD_F_STRING, .off = O(itd_job_state, status), .enums = state_values },
    STR(itd_job_state, "reason", 0, reason),
};
SCHEMA(itd_JobState, "JobState", itd_job_state, ITD_S_STRING_FORM);

static const itd_field itd_Job_fields[] = {
    STR(itd_job, "id", ITD_REQ, id),
    OBJN(itd_job, "sink", 0, sink, sink_null, itd_JobSink),
    ARRH(itd_job, "payload", 0, payload, has_payload, itd_JobPayload),
    OBJN(itd_job, "schedule", 0, schedule, schedule_null, itd_JobSchedule),
    { .name = "authSession", .alias = "auth_session", .kind = ITD_F_OBJECT, .flags = ITD_NULLABLE,
      .off = O(itd_job, authSession), .sub = &itd_AuthSession },
    OBJ(itd_job, "configuration", ITD_REQ, configuration, itd_JobConfigurationResponse),
    { .name = "created_at", .sdk_name = "createdAt", .kind = ITD_F_STRING, .flags = ITD_DATETIME,
      .off = O(itd_job, created_at) },
    { .name = "next_run_time", .sdk_name = "nextRunTime", .kind = ITD_F_STRING,
      .flags = ITD_DATETIME | ITD_NULLABLE, .off = O(itd_job, next_run_time), .null_off = O(itd_job, next_run_time_null) },
    { .name = "last_run_time", .sdk_name = "lastRunTime", .kind = ITD_F_STRING,
      .flags = ITD_DATETIME | ITD_NULLABLE, .off = O(itd_job, last_run_time), .null_off = O(itd_job, last_run_time_null) },
    OBJ(itd_job, "state", ITD_REQ, state, itd_JobState),
    { .name = "projectId", .alias = "project_id", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_job, projectId) },
    { .name = "workspace_id", .sdk_name = "workspaceId", .kind = ITD_F_STRING, .flags = ITD_NEWEST, .off = O(itd_job, workspace_id) },
    JSON(itd_job, "proxy", ITD_NEWEST | ITD_NULLABLE, proxy),   /* list items: null when none (§8.3) */
    JSON(itd_job, "reason", ITD_NEWEST | ITD_NULLABLE, reason), /* list items: null unless paused */
    STRN(itd_job, "schedule_id", ITD_NEWEST, schedule_id, schedule_id_null),
};
SCHEMA(itd_Job, "Job", itd_job, ITD_S_OPEN);

static const itd_field itd_JobList_fields[] = {
    ARR(itd_job_list, "items", ITD_REQ, items, itd_Job),
};
SCHEMA(itd_JobList, "JobList", itd_job_list, ITD_S_ARRAY_FORM | ITD_S_OPEN);

/* ---- Runs */
static const itd_field itd_RunSummary_fields[] = {
    { .name = "apis_count", .sdk_name = "apisCount", .kind = ITD_F_NUMBER, .flags = ITD_REQ, .off = O(itd_run_summary, apis_count) },
    { .name = "success_count", .sdk_name = "successCount", .kind = ITD_F_NUMBER, .flags = ITD_REQ, .off = O(itd_run_summary, success_count) },
    { .name = "failures_count", .sdk_name = "failuresCount", .kind = ITD_F_NUMBER, .flags = ITD_REQ, .off = O(itd_run_summary, failures_count) },
    { .name = "pending_count", .sdk_name = "pendingCount", .kind = ITD_F_NUMBER, .off = O(itd_run_summary, pending_count),
      .has_off = O(itd_run_summary, has_pending_count) },
};
SCHEMA(itd_RunSummary, "RunSummary", itd_run_summary, 0);

#define NUMHN(st, n, m, has, nul) { .name = n, .kind = ITD_F_NUMBER, .flags = ITD_NEWEST | ITD_NULLABLE, \
    .off = O(st, m), .has_off = O(st, has), .null_off = O(st, nul) }
static const itd_field itd_JobRun_fields[] = {
    STR(itd_job_run, "id", ITD_REQ, id),
    { .name = "projectId", .alias = "project_id", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_job_run, projectId) },
    { .name = "jobId", .alias = "job_id", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_job_run, jobId) },
    { .name = "start_time", .sdk_name = "startTime", .kind = ITD_F_STRING, .flags = ITD_REQ | ITD_DATETIME,
      .off = O(itd_job_run, start_time) },
    STR(itd_job_run, "status", ITD_REQ, status), /* open: the newest API added values */
    OBJN(itd_job_run, "summary", 0, summary, summary_null, itd_RunSummary),
    { .name = "type", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_job_run, type), .enums = run_type_values },
    { .name = "workspace_id", .sdk_name = "workspaceId", .kind = ITD_F_STRING, .flags = ITD_REQ,
      .off = O(itd_job_run, workspace_id) },
    { .name = "end_time", .sdk_name = "endTime", .kind = ITD_F_STRING, .flags = ITD_NEWEST | ITD_NULLABLE | ITD_DATETIME,
      .off = O(itd_job_run, end_time), .null_off = O(itd_job_run, end_time_null) },
    { .name = "created_at", .sdk_name = "createdAt", .kind = ITD_F_STRING, .flags = ITD_NEWEST | ITD_DATETIME,
      .off = O(itd_job_run, created_at) },
    { .name = "updated_at", .sdk_name = "updatedAt", .kind = ITD_F_STRING, .flags = ITD_NEWEST | ITD_DATETIME,
      .off = O(itd_job_run, updated_at) },
    NUMHN(itd_job_run, "payloads", payloads, has_payloads, payloads_null),
    NUMHN(itd_job_run, "successful_runs", successful_runs, has_successful_runs, successful_runs_null),
    NUMHN(itd_job_run, "failed_runs", failed_runs, has_failed_runs, failed_runs_null),
    JSON(itd_job_run, "error", ITD_NEWEST | ITD_NULLABLE, error),
    JSON(itd_job_run, "reason", ITD_NEWEST | ITD_NULLABLE, reason),
    JSON(itd_job_run, "job_configuration_snapshot", ITD_NEWEST | ITD_J_OBJECT, job_configuration_snapshot),
};
SCHEMA(itd_JobRun, "JobRun", itd_job_run, ITD_S_OPEN);

static const itd_field itd_JobRunList_fields[] = {
    ARR(itd_run_list, "jobRuns", ITD_REQ, jobRuns, itd_JobRun),
    NUM(itd_run_list, "totalCount", ITD_NEWEST, totalCount, has_totalCount),
};
SCHEMA(itd_JobRunList, "JobRunList", itd_run_list, ITD_S_ARRAY_FORM | ITD_S_OPEN);

static const itd_field itd_RunResults_fields[] = {
    STR(itd_run_results, "signed_url", ITD_REQ, signed_url),
    STR(itd_run_results, "signed_url_expiration", 0, signed_url_expiration),
    NUM(itd_run_results, "size", 0, size, has_size),
    STR(itd_run_results, "key", 0, key),
    STR(itd_run_results, "format", ITD_REQ, format),
};
SCHEMA(itd_RunResults, "RunResults", itd_run_results, 0);

static const itd_field itd_JobRunDetail_fields[] = {
    OBJ(itd_run_detail, "jobRun", ITD_REQ, jobRun, itd_JobRun),
    OBJ(itd_run_detail, "results", 0, results, itd_RunResults),
};
SCHEMA(itd_JobRunDetail, "JobRunDetail", itd_run_detail, ITD_S_OPEN);

/* ---- Action responses: every key optional to the decoder (§8.8), and
 * `message` kept as free text because the newest API changed the closed values. */
#define ACTION(var, nm) \
    static const itd_field var##_fields[] = { \
        STR(itd_action, "id", 0, id), \
        STR(itd_action, "jobRunId", ITD_NEWEST, jobRunId), \
        STR(itd_action, "message", 0, message), \
    }; \
    SCHEMA(var, nm, itd_action, ITD_S_OPEN)
ACTION(itd_CreateJob, "CreateJob");
ACTION(itd_PauseJob, "PauseJob");
ACTION(itd_ResumeJob, "ResumeJob");
ACTION(itd_TriggerJob, "TriggerJob");
ACTION(itd_TerminateJobRun, "TerminateJobRun");
ACTION(itd_UpdateJob, "UpdateJob");

/* ---- Error bodies (every key optional, extra keys kept) */
#define APIERR(var, nm) \
    static const itd_field var##_fields[] = { \
        STR(itd_api_error, "message", 0, message), \
        JSON(itd_api_error, "details", 0, details), \
        STR(itd_api_error, "code", ITD_NEWEST, code), \
        STR(itd_api_error, "category", ITD_NEWEST, category), \
        BOOL(itd_api_error, "retirable", ITD_NEWEST, retirable, has_retirable), \
        STR(itd_api_error, "correlationId", ITD_NEWEST, correlationId), \
    }; \
    SCHEMA(var, nm, itd_api_error, ITD_S_OPEN)
APIERR(itd_ApiErrorInvalidInput, "ApiErrorInvalidInput");
APIERR(itd_ApiErrorUnauthorized, "ApiErrorUnauthorized");
APIERR(itd_ApiError, "ApiError");

/* ---- Sink result payload (what a webhook receives / S3 stores) */
static const itd_field itd_IdRef_fields[] = {
    STR(itd_ref, "id", ITD_REQ, id),
};
SCHEMA(itd_IdRef, "IdRef", itd_ref, 0);

static const itd_field itd_ProjectRef_fields[] = {
    STR(itd_ref, "id", ITD_REQ, id),
    STR(itd_ref, "name", ITD_REQ, name),
};
SCHEMA(itd_ProjectRef, "ProjectRef", itd_ref, 0);

static const itd_field itd_ResultCompleted_fields[] = {
    JSON(itd_api_result, "result", 0, result),
    { .name = "status", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_api_result, status), .enums = completed_values },
    NUMR(itd_api_result, "statusCode", 0, statusCode),
};
SCHEMA(itd_ResultCompleted, "ResultCompleted", itd_api_result, 0);

static const itd_field itd_ResultFailed_fields[] = {
    STR(itd_api_result, "error", ITD_REQ, error),
    STR(itd_api_result, "message", ITD_REQ, message),
    { .name = "status", .kind = ITD_F_STRING, .flags = ITD_REQ, .off = O(itd_api_result, status), .enums = failed_values },
    NUMR(itd_api_result, "statusCode", 0, statusCode),
};
SCHEMA(itd_ResultFailed, "ResultFailed", itd_api_result, 0);

static const itd_schema *select_result(const cJSON *v, char *msg, size_t len)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "status");
    if (!t) { snprintf(msg, len, "status|required field is missing (\"completed\" or \"failed\")"); return NULL; }
    if (cJSON_IsString(t) && strcmp(t->valuestring, "completed") == 0) return &itd_ResultCompleted;
    if (cJSON_IsString(t) && strcmp(t->valuestring, "failed") == 0) return &itd_ResultFailed;
    snprintf(msg, len, "status|expected \"completed\" or \"failed\"");
    return NULL;
}
static const itd_schema *const result_branches[] = { &itd_ResultCompleted, &itd_ResultFailed, NULL };
const itd_schema itd_ApiResult = { "ApiResult", sizeof(itd_api_result), NULL, 0, 0, select_result, result_branches, NULL };

static const itd_field itd_WebhookAPIInfo_fields[] = {
    STR(itd_api_info, "name", ITD_REQ, name),
    JSON(itd_api_info, "parameters", ITD_J_OBJARR, parameters),
    OBJ(itd_api_info, "result", ITD_REQ, result, itd_ApiResult),
    STR(itd_api_info, "runId", ITD_REQ, runId),
};
SCHEMA(itd_WebhookAPIInfo, "WebhookAPIInfo", itd_api_info, 0);

/* projectJob / projectJobRun are required at v0.3.12 but the newest API's docs omit them
 * for one-off runs (§4.11), so the decoder takes them as optional. */
static const itd_field itd_JobSinkResultPayload_fields[] = {
    OBJ(itd_sink_result, "apiInfo", ITD_REQ, apiInfo, itd_WebhookAPIInfo),
    STR(itd_sink_result, "workspaceId", ITD_REQ, workspaceId),
    OBJ(itd_sink_result, "project", ITD_REQ, project, itd_ProjectRef),
    OBJ(itd_sink_result, "authSession", 0, authSession, itd_IdRef),
    OBJ(itd_sink_result, "projectJob", 0, projectJob, itd_IdRef),
    OBJ(itd_sink_result, "projectJobRun", 0, projectJobRun, itd_IdRef),
};
SCHEMA(itd_JobSinkResultPayload, "JobSinkResultPayload", itd_sink_result, ITD_S_OPEN);

/* ======================================================================
 * Run API and Auth Sessions (runs-and-auth-sessions reference §4, §5).
 *
 * Inputs are the newest API's forms (the operations that take them are the
 * newest SDK's): strict (an unknown key is refused, where the SDK drops it
 * silently), with the SDK's defaults filled in and sent (§1.4).  Counts and
 * timeouts must be integers >= 0 (§4.5's recommendation: the SDK refuses
 * non-integers and sets no range); a value below 1 is sent with a warning.
 * Credentials (an auth session's runtimeInput, the parameters of create /
 * update) and proxy URLs (they may carry user:password) are ITD_SECRET:
 * hidden in summaries and scrubbed from errors and events.
 *
 * Responses decode both API versions (§11.4): status, code, category,
 * reason type and session type are open (unknown values kept, §10); a
 * member's keys are all optional but `status` (and the ids), so a
 * v0.3.12 shape and a newest one fit the same struct.
 * ====================================================================== */

/* An integer count or timeout of the newest API's inputs, with its default. */
#define INTD(st, n, m, has, d) { .name = n, .kind = ITD_F_NUMBER, .flags = ITD_INTEGER | ITD_RANGED | ITD_POSITIVE, \
    .off = O(st, m), .has_off = O(st, has), .has_default = 1, .num_default = (d), .lo = 0, .hi = INFINITY }
#define PROXY(st) { .name = "proxy", .kind = ITD_F_STRING, .flags = ITD_NULLABLE | ITD_SECRET, \
    .off = O(st, proxy), .null_off = O(st, proxy_null) }

/* ---- the auth session of a run: RuntimeAuthSessionInput | CredentialsAuthSessionInput (§4.3) */
static const itd_field itd_RuntimeAuthSessionInput_fields[] = {
    /* The SDK lets a runtime session omit its id (§10 leaves it to the
     * client): allowed, the server then names one (inferred). */
    STR(itd_run_auth_session, "id", 0, id),
    BOOLD(itd_run_auth_session, "autoRecreate", 0, autoRecreate, has_autoRecreate, 1),
    INTD(itd_run_auth_session, "checkAttempts", checkAttempts, has_checkAttempts, 3),
    INTD(itd_run_auth_session, "createAttempts", createAttempts, has_createAttempts, 3),
    PROXY(itd_run_auth_session),
    INTD(itd_run_auth_session, "requestTimeout", requestTimeout, has_requestTimeout, 600),
    JSON(itd_run_auth_session, "runtimeInput", ITD_REQ | ITD_J_OBJECT | ITD_SECRET, runtimeInput),
};
SCHEMA(itd_RuntimeAuthSessionInput, "RuntimeAuthSessionInput", itd_run_auth_session, 0);

static const itd_field itd_CredentialsAuthSessionInput_fields[] = {
    STR(itd_run_auth_session, "id", ITD_REQ, id),
    BOOLD(itd_run_auth_session, "autoRecreate", 0, autoRecreate, has_autoRecreate, 1),
    INTD(itd_run_auth_session, "checkAttempts", checkAttempts, has_checkAttempts, 3),
    INTD(itd_run_auth_session, "createAttempts", createAttempts, has_createAttempts, 3),
    PROXY(itd_run_auth_session),
    INTD(itd_run_auth_session, "requestTimeout", requestTimeout, has_requestTimeout, 600),
};
SCHEMA(itd_CredentialsAuthSessionInput, "CredentialsAuthSessionInput", itd_run_auth_session, 0);

/* Runtime first, as the SDK tries it; but a runtimeInput that is not an
 * object is refused, where the SDK would silently take the credentials
 * member and drop it (§4.3's trap). */
static const itd_schema *select_run_auth(const cJSON *v, char *msg, size_t len)
{
    const cJSON *ri = cJSON_GetObjectItemCaseSensitive(v, "runtimeInput");
    if (ri) {
        if (cJSON_IsObject(ri)) return &itd_RuntimeAuthSessionInput;
        snprintf(msg, len, "runtimeInput|expected object (the session's runtime input), got %s",
                 cJSON_IsNull(ri) ? "null" : cJSON_IsString(ri) ? "string" : cJSON_IsArray(ri) ? "array"
                 : cJSON_IsNumber(ri) ? "number" : cJSON_IsBool(ri) ? "boolean" : "another value");
        return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(v, "id")) return &itd_CredentialsAuthSessionInput;
    snprintf(msg, len, "id|required field is missing (an existing auth session's id, or a runtimeInput object)");
    return NULL;
}
static const itd_schema *const run_auth_branches[] = { &itd_RuntimeAuthSessionInput,
                                                       &itd_CredentialsAuthSessionInput, NULL };
const itd_schema itd_RunAuthSession = { "RunAuthSession", sizeof(itd_run_auth_session), NULL, 0, 0,
                                        select_run_auth, run_auth_branches, NULL };

/* ---- RunStartInput (§4.1): `api` last on the wire, as the SDK writes it */
static const itd_field itd_RunStartInput_fields[] = {
    JSON(itd_run_start_input, "parameters", ITD_REQ | ITD_J_OBJECT, parameters),
    PROXY(itd_run_start_input),
    BOOLD(itd_run_start_input, "saveTrace", 0, saveTrace, has_saveTrace, 1),
    INTD(itd_run_start_input, "requestTimeout", requestTimeout, has_requestTimeout, 600),
    OBJ(itd_run_start_input, "retry", 0, retry, itd_PayloadRetry),
    OBJ(itd_run_start_input, "authSession", 0, authSession, itd_RunAuthSession),
    OBJ(itd_run_start_input, "sink", 0, sink, itd_JobSink),
    STR(itd_run_start_input, "api", ITD_REQ, api),
};
SCHEMA(itd_RunStartInput, "RunStartInput", itd_run_start_input, ITD_S_STRICT | ITD_S_NEWEST);

/* ---- run responses (§4.6 - §4.10) */
static const itd_field itd_RunStarted_fields[] = {
    STR(itd_run_started, "runId", ITD_REQ, runId),
    STR(itd_run_started, "status", ITD_REQ, status),
};
SCHEMA(itd_RunStarted, "RunStarted", itd_run_started, ITD_S_OPEN);

/* v0.3.12's bare-string error (an error code) is taken as `code`
 * (ITD_S_STRING_FORM puts it in the first field). */
static const itd_field itd_RunError_fields[] = {
    STR(itd_run_error, "code", 0, code),
    /* required in the newest API's object; optional here so that v0.3.12's
     * string form (code only) is a RunError too */
    STR(itd_run_error, "message", 0, message),
    STR(itd_run_error, "category", 0, category),
    BOOLD(itd_run_error, "retirable", 0, retirable, has_retirable, 0),
    { .name = "doc_url", .sdk_name = "docUrl", .kind = ITD_F_STRING, .off = O(itd_run_error, doc_url) },
    /* §10: the camelCase spelling of the other error bodies is taken too */
    { .name = "correlation_id", .alias = "correlationId", .sdk_name = "correlationId", .kind = ITD_F_STRING,
      .off = O(itd_run_error, correlation_id) },
    JSON(itd_run_error, "details", ITD_NULLABLE, details),
};
SCHEMA(itd_RunError, "RunError", itd_run_error, ITD_S_STRING_FORM | ITD_S_OPEN);

static const itd_field itd_RunReason_fields[] = {
    STR(itd_run_reason, "type", ITD_REQ, type),
    STR(itd_run_reason, "message", ITD_REQ, message),
    { .name = "doc_url", .sdk_name = "docUrl", .kind = ITD_F_STRING, .off = O(itd_run_reason, doc_url) },
    JSON(itd_run_reason, "details", ITD_NULLABLE, details),
};
SCHEMA(itd_RunReason, "RunReason", itd_run_reason, ITD_S_OPEN);

static const itd_field itd_ExtendedPayload_fields[] = {
    STR(itd_extended_payload, "api", ITD_REQ, api),
    STR(itd_extended_payload, "runId", 0, runId),
    JSON(itd_extended_payload, "parameters", ITD_J_OBJARR, parameters),
};
SCHEMA(itd_ExtendedPayload, "ExtendedPayload", itd_extended_payload, ITD_S_OPEN);

static const itd_field itd_RunResult_fields[] = {
    STR(itd_run_result, "runId", ITD_REQ, runId),
    STR(itd_run_result, "status", ITD_REQ, status),
    { .name = "result", .kind = ITD_F_JSON, .flags = ITD_NULLABLE, .off = O(itd_run_result, result),
      .null_off = O(itd_run_result, result_null) },
    ARRH(itd_run_result, "extendedPayloads", 0, extendedPayloads, has_extendedPayloads, itd_ExtendedPayload),
    OBJ(itd_run_result, "error", 0, error, itd_RunError),
    STR(itd_run_result, "message", 0, message),
    OBJ(itd_run_result, "reason", 0, reason, itd_RunReason),
    NUM(itd_run_result, "statusCode", 0, statusCode, has_statusCode), /* v0.3.12 */
};
SCHEMA(itd_RunResult, "RunResult", itd_run_result, ITD_S_OPEN);

/* ---- auth sessions (§5) */
static const itd_field itd_AuthSessionInfo_fields[] = {
    STR(itd_auth_session_info, "id", ITD_REQ, id),
    STR(itd_auth_session_info, "type", 0, type), /* required at HEAD, absent at v0.3.12 */
    STR(itd_auth_session_info, "status", ITD_REQ, status),
};
SCHEMA(itd_AuthSessionInfo, "AuthSessionInfo", itd_auth_session_info, ITD_S_OPEN);

static const itd_field itd_AuthSessionList_fields[] = {
    ARR(itd_auth_session_list, "items", ITD_REQ, items, itd_AuthSessionInfo),
};
SCHEMA(itd_AuthSessionList, "AuthSessionList", itd_auth_session_list, ITD_S_ARRAY_FORM | ITD_S_OPEN);

#define AS_PARAMS JSON(itd_auth_session_input, "parameters", ITD_REQ | ITD_J_OBJECT | ITD_SECRET, parameters)
/* create and update share their keys after create's id */
#define AS_BODY AS_PARAMS, PROXY(itd_auth_session_input), \
    INTD(itd_auth_session_input, "createAttempts", createAttempts, has_createAttempts, 3), \
    INTD(itd_auth_session_input, "checkAttempts", checkAttempts, has_checkAttempts, 3), \
    BOOLD(itd_auth_session_input, "saveTrace", 0, saveTrace, has_saveTrace, 1)
static const itd_field itd_AuthSessionCreateInput_fields[] = {
    STR(itd_auth_session_input, "id", 0, id),
    AS_BODY,
};
SCHEMA(itd_AuthSessionCreateInput, "AuthSessionCreateInput", itd_auth_session_input, ITD_S_STRICT | ITD_S_NEWEST);

static const itd_field itd_AuthSessionUpdateInput_fields[] = {
    AS_BODY,
};
SCHEMA(itd_AuthSessionUpdateInput, "AuthSessionUpdateInput", itd_auth_session_input, ITD_S_STRICT | ITD_S_NEWEST);

static const itd_field itd_AuthSessionValidateInput_fields[] = {
    BOOLD(itd_auth_session_input, "autoRecreate", 0, autoRecreate, has_autoRecreate, 1),
    INTD(itd_auth_session_input, "checkAttempts", checkAttempts, has_checkAttempts, 3),
    INTD(itd_auth_session_input, "createAttempts", createAttempts, has_createAttempts, 3),
    PROXY(itd_auth_session_input),
    INTD(itd_auth_session_input, "requestTimeout", requestTimeout, has_requestTimeout, 600),
};
SCHEMA(itd_AuthSessionValidateInput, "AuthSessionValidateInput", itd_auth_session_input,
       ITD_S_STRICT | ITD_S_NEWEST);

/* §5.5: create and update answer "started", validate "pending"; any of
 * them is taken from any start (§10), and the value is kept open. */
static const itd_field itd_OperationStarted_fields[] = {
    STR(itd_operation_started, "status", ITD_REQ, status),
    STR(itd_operation_started, "operationId", ITD_REQ, operationId),
};
SCHEMA(itd_OperationStarted, "OperationStarted", itd_operation_started, ITD_S_OPEN);

/* §5.6 and §11.2: the members differ only in which optional keys they
 * carry.  A member missing one of its keys (e.g. {"status":"done"}) is
 * accepted, where the SDK fails the response: the status still says how
 * the operation ended. */
static const itd_field itd_OperationResult_fields[] = {
    STR(itd_operation_result, "status", ITD_REQ, status),
    STR(itd_operation_result, "authSessionId", 0, authSessionId),
    STR(itd_operation_result, "runId", 0, runId),
    STR(itd_operation_result, "message", 0, message),
    OBJ(itd_operation_result, "error", 0, error, itd_RunError),
    OBJ(itd_operation_result, "reason", 0, reason, itd_RunReason),
    STR(itd_operation_result, "id", 0, id),
    JSON(itd_operation_result, "details", ITD_NULLABLE, details),
};
SCHEMA(itd_OperationResult, "OperationResult", itd_operation_result, ITD_S_OPEN);

const itd_schema *const itd_schemas[] = {
    &itd_Job, &itd_JobInput, &itd_JobUpdateInput, &itd_JobInputNewest, &itd_JobRun, &itd_JobList, &itd_JobRunList,
    &itd_JobRunDetail, &itd_RunResults, &itd_JobSink, &itd_WebhookSink, &itd_AmazonS3Sink,
    &itd_JobPayload, &itd_JobUpdatePayload, &itd_PayloadRetry, &itd_JobSchedule, &itd_Interval,
    &itd_Calendar, &itd_CalendarRange, &itd_JobConfiguration, &itd_JobConfigurationResponse,
    &itd_JobUpdateConfiguration, &itd_JobRetry, &itd_JobRetryResponse, &itd_JobUpdateRetry, &itd_JobState,
    &itd_AuthSession, &itd_JobUpdateAuthSession, &itd_RunSummary, &itd_CreateJob, &itd_PauseJob,
    &itd_ResumeJob, &itd_TriggerJob, &itd_TerminateJobRun, &itd_UpdateJob,
    &itd_ApiErrorInvalidInput, &itd_ApiErrorUnauthorized, &itd_ApiError,
    &itd_JobSinkResultPayload, &itd_WebhookAPIInfo, &itd_ApiResult, &itd_ResultCompleted,
    &itd_ResultFailed, &itd_ProjectRef, &itd_IdRef,
    &itd_RunStartInput, &itd_RunAuthSession, &itd_RuntimeAuthSessionInput, &itd_CredentialsAuthSessionInput,
    &itd_RunStarted, &itd_RunResult, &itd_RunError, &itd_RunReason, &itd_ExtendedPayload,
    &itd_AuthSessionInfo, &itd_AuthSessionList, &itd_AuthSessionCreateInput, &itd_AuthSessionUpdateInput,
    &itd_AuthSessionValidateInput, &itd_OperationStarted, &itd_OperationResult,
    NULL
};

const char *itd_schema_name(const itd_schema *s)
{
    return s ? s->name : NULL;
}
