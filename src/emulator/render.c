/*
 * render.c - jobs and runs as API documents, per API version.
 *
 * A job has one truth (store.c): a superset document in the v0.3.12 Job form
 * that also keeps the newest API's keys (payload requestTimeout and retry,
 * configuration requestTimeout, auth session attempts, proxy), and its
 * decoded itd_job.  The v0.3.12 answer is that object's itd_Job encoding
 * (store.c caches it); the newest answer (JobV2, JobListItemV2, reference
 * §8.3) is built here in the newest API's key order.  Runs are structs
 * rendered in either form.  The callers validate the trees through the
 * core's schemas before they answer them.
 *
 * Where the reference is unsure, the choices are marked "ours".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "render.h"

static void add(cJSON *o, const char *key, cJSON *v)
{
    if (!v || !cJSON_AddItemToObject(o, key, v)) abort();
}

static cJSON *str_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

/* ------------------------------------------------------------ parts (newest) */

/* JobConfigurationV2: retry {maximumAttempts} only, no runMode; requestTimeout
 * in seconds, 600 when the job never set one (the SDK's default). */
static cJSON *config_v2(const itd_configuration *c)
{
    cJSON *o = cJSON_CreateObject();
    if (c && c->retry && c->retry->has_maximumAttempts) {
        cJSON *rt = cJSON_CreateObject();
        add(rt, "maximumAttempts", cJSON_CreateNumber(c->retry->maximumAttempts));
        add(o, "retry", rt);
    }
    if (c && c->has_maxConcurrentRequests) add(o, "maxConcurrentRequests", cJSON_CreateNumber(c->maxConcurrentRequests));
    add(o, "requestTimeout", cJSON_CreateNumber(c && c->has_requestTimeout ? c->requestTimeout : 600));
    return o;
}

/* Sinks V2.  Webhook header values must be strings there: a v0.3.12 job's
 * other values are sent as their JSON text (ours). */
static cJSON *sink_v2(const itd_sink *s)
{
    if (!s) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    add(o, "type", cJSON_CreateString(s->kind == ITD_SINK_S3 ? "s3" : "webhook"));
    if (s->kind == ITD_SINK_S3) {
        add(o, "bucket", cJSON_CreateString(s->bucket ? s->bucket : ""));
        add(o, "accessKeyId", cJSON_CreateString(s->accessKeyId ? s->accessKeyId : ""));
        add(o, "secretAccessKey", cJSON_CreateString(s->secretAccessKey ? s->secretAccessKey : ""));
        add(o, "region", cJSON_CreateString(s->region ? s->region : ""));
        if (s->prefix) add(o, "prefix", cJSON_CreateString(s->prefix));
    } else {
        add(o, "url", cJSON_CreateString(s->url ? s->url : ""));
        if (s->headers && cJSON_IsObject(s->headers)) {
            cJSON *h = cJSON_CreateObject();
            for (const cJSON *it = s->headers->child; it; it = it->next) {
                if (cJSON_IsString(it)) { add(h, it->string, cJSON_CreateString(it->valuestring)); continue; }
                char *txt = itd_json_print(it, NULL);
                add(h, it->string, cJSON_CreateString(txt ? txt : ""));
                free(txt);
            }
            add(o, "headers", h);
        }
    }
    add(o, "skipOnFail", cJSON_CreateBool(s->has_skipOnFail && s->skipOnFail));
    if (s->apisToSend) add(o, "apisToSend", cJSON_Duplicate(s->apisToSend, 1));
    if (s->kind == ITD_SINK_S3) {
        if (s->endpoint) add(o, "endpoint", cJSON_CreateString(s->endpoint));
        if (s->has_forcePathStyle) add(o, "forcePathStyle", cJSON_CreateBool(s->forcePathStyle));
    }
    return o;
}

/* Auth session V2: the attempts default to 3 (the SDK's defaults). */
static cJSON *auth_v2(const itd_auth_session *a)
{
    if (!a) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    add(o, "id", cJSON_CreateString(a->id ? a->id : ""));
    add(o, "checkAttempts", cJSON_CreateNumber(a->has_checkAttempts ? a->checkAttempts : 3));
    add(o, "createAttempts", cJSON_CreateNumber(a->has_createAttempts ? a->createAttempts : 3));
    return o;
}

/* JobPayloadV2: parameters is an object there.  A v0.3.12 job's absent
 * parameters become {} and an array becomes an object keyed "0", "1", ...
 * (ours: the newest API has no form for an array). */
static cJSON *payload_v2(const itd_payload *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *params;
    if (p->parameters && cJSON_IsObject(p->parameters)) params = cJSON_Duplicate(p->parameters, 1);
    else {
        params = cJSON_CreateObject();
        int i = 0;
        for (const cJSON *it = p->parameters ? p->parameters->child : NULL; it; it = it->next, i++) {
            char k[24];
            snprintf(k, sizeof k, "%d", i);
            add(params, k, cJSON_Duplicate(it, 1));
        }
    }
    add(o, "parameters", params);
    add(o, "requestTimeout", cJSON_CreateNumber(p->has_requestTimeout ? p->requestTimeout : 600));
    if (p->retry && p->retry->has_maximumAttempts) {
        cJSON *rt = cJSON_CreateObject();
        add(rt, "maximumAttempts", cJSON_CreateNumber(p->retry->maximumAttempts));
        add(o, "retry", rt);
    }
    add(o, "apiName", cJSON_CreateString(p->apiName ? p->apiName : ""));
    return o;
}

static cJSON *payloads_v2(const itd_job *obj)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < obj->payload.n; i++) cJSON_AddItemToArray(a, payload_v2(obj->payload.items[i]));
    return a;
}

/* The proxy URL (the truth keeps the string the job was given). */
static const char *proxy_url(const itd_job *obj)
{
    const cJSON *p = obj->proxy;
    if (cJSON_IsString(p)) return p->valuestring;
    const cJSON *u = cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, "url") : NULL;
    return cJSON_IsString(u) ? u->valuestring : NULL;
}

/* The object form of list items and run snapshots: {"version":"v1","url"} or null. */
static cJSON *proxy_object(const itd_job *obj)
{
    const char *url = proxy_url(obj);
    if (!url) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    add(o, "version", cJSON_CreateString("v1"));
    add(o, "url", cJSON_CreateString(url));
    return o;
}

/* ------------------------------------------------------------ jobs */

cJSON *render_job_newest(const emu_job *j, int list_item)
{
    const itd_job *obj = j->obj;
    char pid[40];
    emu_stable_uuid(j->project, pid);
    int paused = obj->state && obj->state->status && strcmp(obj->state->status, "PAUSED") == 0;
    cJSON *o = cJSON_CreateObject();
    add(o, "id", cJSON_CreateString(obj->id));
    if (list_item) add(o, "workspace_id", cJSON_CreateString(g_opts.workspace));
    add(o, list_item ? "project_id" : "projectId", cJSON_CreateString(pid));
    add(o, "configuration", config_v2(obj->configuration));
    add(o, "payload", payloads_v2(obj));
    add(o, "sink", sink_v2(obj->sink));
    /* the schedule as the job was given it: the truth keeps the input's
     * ranges (a decoded object would have v0.3.12's step 1 added) */
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(j->doc, "schedule");
    add(o, "schedule", cJSON_IsObject(sched) ? cJSON_Duplicate(sched, 1) : cJSON_CreateNull());
    add(o, "created_at", str_or_null(obj->created_at));
    add(o, "next_run_time", str_or_null(obj->next_run_time));
    add(o, "last_run_time", str_or_null(obj->last_run_time));
    add(o, "state", cJSON_CreateString(paused ? "PAUSED" : "ACTIVE"));
    add(o, "auth_session", auth_v2(obj->authSession));
    if (list_item) {
        add(o, "proxy", proxy_object(obj));
        if (paused) {
            cJSON *r = cJSON_CreateObject();
            add(r, "type", cJSON_CreateString("paused"));
            add(r, "message", cJSON_CreateString(obj->state->reason ? obj->state->reason : "Paused"));
            add(o, "reason", r);
        } else {
            add(o, "reason", cJSON_CreateNull());
        }
        /* the id of the schedule behind the job, when it has one (ours: the reference
         * says only that it names a Temporal schedule) */
        if (cJSON_IsObject(sched)) {
            char sid[40], name[600];
            snprintf(name, sizeof name, "%.250s/%.250s", j->project, j->id);
            emu_stable_uuid(name, sid);
            add(o, "schedule_id", cJSON_CreateString(sid));
        } else {
            add(o, "schedule_id", cJSON_CreateNull());
        }
    } else if (proxy_url(obj)) {
        add(o, "proxy", cJSON_CreateString(proxy_url(obj)));   /* JobV2: a string, absent when none */
    }
    return o;
}

/* ------------------------------------------------------------ runs */

typedef struct counts { int ok, fail, pending, attempts; } counts;

static counts run_counts(const emu_run *r)
{
    counts k = { 0, 0, 0, 0 };
    for (size_t i = 0; i < r->n; i++) {
        const emu_pstate *p = &r->ps[i];
        k.attempts += p->attempts;
        if (p->state == P_OK) k.ok++;
        else if (p->state == P_FAIL) k.fail++;
        else if (p->state == P_RUNNING || p->attempts > 0) k.pending++;
    }
    return k;
}

/* Why a run is where it is (JobRunV2 `reason`), or null.  Ours: the
 * reference lists the types, not when each applies; a run here is
 * terminated or paused only on a user's request. */
static cJSON *run_reason(const emu_run *r)
{
    const char *type = NULL, *msg = NULL;
    if (strcmp(r->status, "TERMINATED") == 0) { type = "terminated"; msg = "Job run terminated on request"; }
    else if (strcmp(r->status, "PAUSED") == 0) { type = "user-request"; msg = "The job was paused"; }
    if (!type) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    add(o, "type", cJSON_CreateString(type));
    add(o, "message", cJSON_CreateString(msg));
    return o;
}

static cJSON *run_newest(const emu_run *r)
{
    char pid[40], buf[40];
    emu_stable_uuid(r->project, pid);
    counts k = run_counts(r);
    cJSON *o = cJSON_CreateObject();
    add(o, "id", cJSON_CreateString(r->id));
    add(o, "start_time", cJSON_CreateString(itd_datetime_format(r->start_time, buf, sizeof buf)));
    add(o, "end_time", emu_time_json(r->end_time));
    add(o, "workspace_id", cJSON_CreateString(g_opts.workspace));
    add(o, "project_id", cJSON_CreateString(pid));
    add(o, "job_id", cJSON_CreateString(r->job_id));
    add(o, "created_at", cJSON_CreateString(itd_datetime_format(r->start_time, buf, sizeof buf)));
    add(o, "updated_at", cJSON_CreateString(itd_datetime_format(r->updated, buf, sizeof buf)));
    add(o, "type", cJSON_CreateString(r->type));
    /* the newest API has no FAILED; its COMPLETED stays (SUCCESS is never used here) */
    add(o, "status", cJSON_CreateString(strcmp(r->status, "FAILED") == 0 ? "FAILURE" : r->status));
    add(o, "payloads", cJSON_CreateNumber((double)r->n));
    add(o, "successful_runs", cJSON_CreateNumber(k.ok));
    add(o, "failed_runs", cJSON_CreateNumber(k.fail));
    /* `error` is for the platform's failures (billing, infrastructure), which the emulator has none of */
    add(o, "error", cJSON_CreateNull());
    add(o, "reason", run_reason(r));
    cJSON *snap = cJSON_CreateObject();
    add(snap, "configuration", config_v2(r->snap->configuration));
    add(snap, "sink", sink_v2(r->snap->sink));
    add(snap, "auth_session", auth_v2(r->snap->authSession));
    add(snap, "proxy", proxy_object(r->snap));
    add(o, "job_configuration_snapshot", snap);
    return o;
}

/* v0.3.12's JobRun, and with `mixed` the newest API's keys after them (the
 * v0.3.12 mode's get-one-run and paged list, as before the two modes). */
static cJSON *run_v0312(const emu_run *r, int mixed)
{
    char pid[40], buf[40];
    emu_stable_uuid(r->project, pid);
    counts k = run_counts(r);
    int terminal = strcmp(r->status, "PENDING") != 0 && strcmp(r->status, "PAUSED") != 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "projectId", pid);
    cJSON_AddStringToObject(o, "jobId", r->job_id);
    cJSON_AddStringToObject(o, "start_time", itd_datetime_format(r->start_time, buf, sizeof buf));
    cJSON_AddStringToObject(o, "status", r->status);
    cJSON *s = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddNumberToObject(s, "apis_count", k.ok + k.fail);
    cJSON_AddNumberToObject(s, "success_count", k.ok);
    cJSON_AddNumberToObject(s, "failures_count", k.fail);
    cJSON_AddNumberToObject(s, "pending_count", terminal ? 0 : k.pending);
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddStringToObject(o, "workspace_id", g_opts.workspace);
    if (mixed) {
        cJSON_AddItemToObject(o, "end_time", emu_time_json(r->end_time));
        cJSON_AddStringToObject(o, "created_at", itd_datetime_format(r->start_time, buf, sizeof buf));
        cJSON_AddStringToObject(o, "updated_at", itd_datetime_format(r->updated, buf, sizeof buf));
        cJSON_AddNumberToObject(o, "payloads", (double)r->n);
        cJSON_AddNumberToObject(o, "successful_runs", k.ok);
        cJSON_AddNumberToObject(o, "failed_runs", k.fail);
        cJSON *snap = cJSON_AddObjectToObject(o, "job_configuration_snapshot");
        cJSON *cfg = cJSON_AddObjectToObject(snap, "configuration");
        const itd_configuration *c = r->snap->configuration;
        if (c && c->retry && c->retry->has_maximumAttempts) {
            cJSON *rt = cJSON_AddObjectToObject(cfg, "retry");
            cJSON_AddNumberToObject(rt, "maximumAttempts", c->retry->maximumAttempts);
        }
        if (c && c->has_maxConcurrentRequests) cJSON_AddNumberToObject(cfg, "maxConcurrentRequests", c->maxConcurrentRequests);
        cJSON_AddNumberToObject(cfg, "requestTimeout", c && c->has_requestTimeout ? c->requestTimeout : 600);
        if (r->snap->sink) cJSON_AddItemToObject(snap, "sink", itd_to_cjson(&itd_JobSink, r->snap->sink));
        if (r->snap->authSession) cJSON_AddItemToObject(snap, "auth_session", itd_to_cjson(&itd_AuthSession, r->snap->authSession));
    }
    return o;
}

cJSON *render_run(const emu_run *r, int form)
{
    return form == RUN_NEWEST ? run_newest(r) : run_v0312(r, form == RUN_MIXED);
}

static const char *pstate_name(int s)
{
    switch (s) {
    case P_WAIT: return "waiting";
    case P_RUNNING: return "running";
    case P_OK: return "completed";
    default: return "failed";
    }
}

static const char *const delivery_names[] = { "pending", "delivered", "failed", "skipped", "none", "delivering" };

cJSON *render_run_view(const emu_run *r)
{
    counts k = run_counts(r);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", r->id);
    cJSON_AddStringToObject(e, "job_id", r->job_id);
    cJSON_AddStringToObject(e, "status", r->status);   /* the emulator's own (v0.3.12) status names */
    cJSON_AddNumberToObject(e, "maxConcurrentRequests", r->limit);
    cJSON_AddNumberToObject(e, "max_in_flight", r->max_in_flight);
    cJSON_AddNumberToObject(e, "attempts", k.attempts);
    cJSON_AddItemToObject(e, "end_time", emu_time_json(r->end_time));
    cJSON *d = cJSON_AddObjectToObject(e, "deliveries");
    cJSON_AddNumberToObject(d, "delivered", (double)r->deliveries_ok);
    cJSON_AddNumberToObject(d, "failed", (double)r->deliveries_failed);
    cJSON_AddNumberToObject(d, "skipped", (double)r->deliveries_skipped);
    cJSON_AddNumberToObject(d, "attempts", (double)r->delivery_attempts);
    cJSON *pl = cJSON_AddArrayToObject(e, "payloads");
    for (size_t i = 0; i < r->n; i++) {
        const itd_payload *p = r->snap->payload.items[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "apiName", p->apiName);
        cJSON_AddStringToObject(x, "state", pstate_name(r->ps[i].state));
        cJSON_AddNumberToObject(x, "attempts", r->ps[i].attempts);
        cJSON_AddStringToObject(x, "delivery", delivery_names[r->ps[i].delivery]);
        if (r->ps[i].delivery_error) cJSON_AddStringToObject(x, "delivery_error", r->ps[i].delivery_error);
        cJSON_AddItemToArray(pl, x);
    }
    return e;
}
