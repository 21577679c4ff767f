/*
 * runs_api.c - the Run API: start a run of one project API, read its
 * result (and v0.3.12's synchronous run), in both API versions' shapes.
 *
 * A Run API run is an emu_run of one payload marked `standalone`: its
 * snapshot is a job document made from the start body (api, parameters,
 * retry.maximumAttempts, sink, authSession), so the job runs' workers
 * (runner.c) execute it with the same latency (--api-latency-ms), failure
 * names (--fail-api, "fail...", "flaky:N..."), retries (retry.maximumAttempts;
 * none without retry, 3 with retry {}, the SDK's default; the back-off is
 * the jobs' default 1 s times --time-scale) and sink delivery (deliver.c).
 * The runs are kept here, not in the store, and only in memory.  A start is
 * made once: nothing here repeats one.  The result is the payload's simulated
 * output; the items of parameters.extendedPayloads come back as the run's
 * extendedPayloads (ours: the reference says only that the API adds them).
 * requestTimeout, saveTrace and proxy are accepted and not simulated.
 *
 * States (reference §6.1): pending until its first attempt starts, started
 * while attempts run, then completed | failed; canceled when its auth
 * session is EXPIRED and cannot be re-created (straight from pending,
 * reason auth-session-validate-dependency-failed), or on
 * POST /_emulator/api-runs/{runId}/cancel (reason cancelled-user-action:
 * the API has no cancel).  v0.3.12 has only pending, completed and failed:
 * started shows as pending, canceled as failed.
 *
 * Bounds: --max-api-runs runs, and RUNS_BYTES_MAX bytes of start bodies,
 * are kept; a start beyond drops the oldest finished run, or gets 429 when
 * every kept run is still going.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_sessions.h"
#include "deliver.h"
#include "persist.h"
#include "runner.h"
#include "runs_api.h"
#include "store.h"

#define RUNS_BYTES_MAX (64u << 20)
#define SYNC_WAIT_MAX 600.0      /* seconds a v0.3.12 sync run may take before 504 */

typedef struct api_run {
    emu_run *run;            /* owned; its refs keep it while a worker holds it */
    const char *reason;      /* canceled: the reason type (static), else NULL */
    const char *reason_msg;
    size_t bytes;            /* the start body's size, for the bound */
    struct api_run *next;    /* newest first */
} api_run;

/* guarded by g_lock, which also guards the runs' state (runner.c) */
static api_run *g_runs;
static unsigned g_nruns;
static unsigned long g_started;  /* starts made */
static size_t g_bytes;
static itd_rng g_rng;
static int g_rng_ready;

/* --max-api-runs (0, as in an embedding that does not set it: the default) */
static unsigned cap(void) { return g_opts.max_api_runs ? g_opts.max_api_runs : 1024; }

static void nanoid(char *buf)   /* 21 characters of A-Za-z0-9_- (reference §7) */
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    if (!g_rng_ready) { itd_rng_seed(&g_rng, g_opts.seed ^ 0x72756e5f617069ull ^ (uint64_t)(emu_now() * 1e6)); g_rng_ready = 1; }
    for (int i = 0; i < 21; i++) buf[i] = abc[itd_rng_next(&g_rng) % 64];
    buf[21] = 0;
}

static api_run *find_run(const char *project, const char *id)
{
    for (api_run *a = g_runs; a; a = a->next)
        if (strcmp(a->run->id, id) == 0 && (!project || strcmp(a->run->project, project) == 0)) return a;
    return NULL;
}

static int finished(const emu_run *r)
{
    return strcmp(r->status, "PENDING") != 0 && strcmp(r->status, "PAUSED") != 0;
}

/* Room for a start of `bytes`: drops the oldest finished runs off the work
 * list; -1 when that is not enough. */
static int make_room(size_t bytes)
{
    while (g_runs && (g_nruns >= cap() || g_bytes + bytes > RUNS_BYTES_MAX)) {
        api_run **victim = NULL;
        for (api_run **pp = &g_runs; *pp; pp = &(*pp)->next)
            if (finished((*pp)->run) && !(*pp)->run->active && (*pp)->run->refs == 0) victim = pp;   /* the oldest */
        if (!victim) return -1;
        api_run *a = *victim;
        *victim = a->next;
        g_nruns--;
        g_bytes -= a->bytes;
        store_run_free(a->run);
        free(a);
    }
    return g_nruns < cap() ? 0 : -1;
}

/* ------------------------------------------------------------ documents */

/* The payload's result document (JobSinkResultPayload, runner.c), parsed. */
static cJSON *final_result(const emu_run *r)
{
    return r->n && r->ps[0].result ? cJSON_Parse(r->ps[0].result) : NULL;
}

static const char *status_of(const api_run *a)
{
    const emu_run *r = a->run;
    if (strcmp(r->status, "TERMINATED") == 0) return "canceled";
    if (strcmp(r->status, "COMPLETED") == 0) return "completed";
    if (strcmp(r->status, "FAILED") == 0) return "failed";
    return r->n && (r->ps[0].attempts > 0 || r->ps[0].state != P_WAIT) ? "started" : "pending";
}

/* The simulated API "extends its payload" (§4.9, ours): the items of its
 * parameters' "extendedPayloads" array that have a string `api` come back
 * as the run's extendedPayloads, each with a run id of its own (derived
 * from the run's: the same on every read). */
static void add_extended(cJSON *d, const emu_run *r)
{
    const itd_payload *p = r->snap->payload.n ? r->snap->payload.items[0] : NULL;
    const cJSON *ext = p ? cJSON_GetObjectItemCaseSensitive(p->parameters, "extendedPayloads") : NULL;
    cJSON *out = NULL;
    size_t i = 0;
    for (const cJSON *it = cJSON_IsArray(ext) ? ext->child : NULL; it && i < 100; it = it->next) {
        const cJSON *api = cJSON_GetObjectItemCaseSensitive(it, "api");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(it, "parameters");
        if (!cJSON_IsString(api)) continue;
        if (!out) out = cJSON_AddArrayToObject(d, "extendedPayloads");
        cJSON *x = cJSON_CreateObject();
        char rid[24];
        snprintf(rid, sizeof rid, "%.17s%04zu", r->id, ++i);
        cJSON_AddStringToObject(x, "api", api->valuestring);
        cJSON_AddStringToObject(x, "runId", rid);
        if (cJSON_IsObject(params)) cJSON_AddItemToObject(x, "parameters", cJSON_Duplicate(params, 1));
        cJSON_AddItemToArray(out, x);
    }
}

/* RunResult (newest, §4.7) or v0.3.12's AsyncResultResponse, g_lock held. */
static cJSON *result_doc(const api_run *a)
{
    const emu_run *r = a->run;
    const char *st = status_of(a);
    cJSON *d = cJSON_CreateObject();
    cJSON *res = final_result(r);
    cJSON *info = cJSON_GetObjectItemCaseSensitive(res, "apiInfo");
    cJSON *ar = cJSON_GetObjectItemCaseSensitive(info, "result");
    const cJSON *msgv = cJSON_GetObjectItemCaseSensitive(ar, "message");
    const char *msg = cJSON_IsString(msgv) ? msgv->valuestring : "The run failed";
    int canceled = strcmp(st, "canceled") == 0;
    if (!g_opts.newest) {
        if (strcmp(st, "completed") == 0) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(ar, "result");
            cJSON_AddItemToObject(d, "result", v ? v : cJSON_CreateNull());
            cJSON_AddStringToObject(d, "status", "completed");
            cJSON_AddNumberToObject(d, "statusCode", 200);
        } else if (strcmp(st, "failed") == 0 || canceled) {
            cJSON_AddStringToObject(d, "error", canceled ? a->reason : "api-attempts-failed");
            cJSON_AddStringToObject(d, "message", canceled ? a->reason_msg : msg);
            cJSON_AddStringToObject(d, "status", "failed");
            cJSON_AddNumberToObject(d, "statusCode", 500);
        } else {
            cJSON_AddStringToObject(d, "status", "pending");
        }
        cJSON_AddStringToObject(d, "runId", r->id);
        cJSON_Delete(res);
        return d;
    }
    cJSON_AddStringToObject(d, "runId", r->id);
    cJSON_AddStringToObject(d, "status", st);
    if (strcmp(st, "completed") == 0) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(ar, "result");
        cJSON_AddItemToObject(d, "result", v ? v : cJSON_CreateNull());
        add_extended(d, r);
    } else if (strcmp(st, "failed") == 0) {
        cJSON *e = cJSON_AddObjectToObject(d, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "code", "api-attempts-failed");
        cJSON_AddStringToObject(e, "category", "execution");
        cJSON_AddBoolToObject(e, "retirable", 0);
        cJSON_AddStringToObject(d, "message", msg);
    } else if (canceled) {
        cJSON_AddStringToObject(d, "message", a->reason_msg);
        cJSON *rs = cJSON_AddObjectToObject(d, "reason");
        cJSON_AddStringToObject(rs, "type", a->reason);
        cJSON_AddStringToObject(rs, "message", a->reason_msg);
    }
    cJSON_Delete(res);
    return d;
}

/* ------------------------------------------------------------ start */

static enum MHD_Result bad_field(struct MHD_Connection *c, const char *field, const char *issue)
{
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid run start input: %s: %s", field[0] ? field : "(body)", issue);
    return send_bad_field(c, msg, field, issue);
}

/* v0.3.12's RunProjectApiRequest (reference §11.2): the checks its SDK makes.
 * 0, or -1 with the field and issue. */
static int check_v0312(const cJSON *t, const char **field, const char **issue)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "api");
    if (!cJSON_IsString(v)) { *field = "api"; *issue = v ? "expected a string" : "required field is missing"; return -1; }
    v = cJSON_GetObjectItemCaseSensitive(t, "parameters");
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
        *field = "parameters";
        *issue = v ? "expected an object or an array" : "required field is missing";
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(t, "retry"))) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "maximumAttempts");
        if (!cJSON_IsNumber(m)) { *field = "retry.maximumAttempts"; *issue = "expected a number"; return -1; }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(t, "authSession"))
        && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "id"))) {
        *field = "authSession.id";
        *issue = "expected a string";
        return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(t, "proxy")) && !cJSON_IsString(v)) {
        *field = "proxy";
        *issue = "expected a string";
        return -1;
    }
    return 0;
}

/* The job-shaped snapshot the workers run: one payload. */
static itd_job *make_snap(const char *project, const cJSON *t, itd_error *err)
{
    cJSON *doc = cJSON_CreateObject();
    char pid[40];
    emu_stable_uuid(project, pid);
    cJSON_AddStringToObject(doc, "id", "runs");
    cJSON *pl = cJSON_CreateObject();
    cJSON_AddStringToObject(pl, "apiName", cJSON_GetObjectItemCaseSensitive(t, "api")->valuestring);
    cJSON_AddItemToObject(pl, "parameters", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(t, "parameters"), 1));
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(t, "retry");
    if (cJSON_IsObject(retry)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(retry, "maximumAttempts");
        double n = cJSON_IsNumber(m) ? m->valuedouble : 3;   /* the SDK's default */
        if (!(n >= 1)) n = 1;   /* the SDK lets 0 and negatives through: one attempt (ours) */
        if (n > 1000) n = 1000;
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(pl, "retry"), "maximumAttempts", (double)(long)n);
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "payload"), pl);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "configuration"), "runMode", "Order-Irrelevant");
    const cJSON *sink = cJSON_GetObjectItemCaseSensitive(t, "sink");
    if (cJSON_IsObject(sink)) cJSON_AddItemToObject(doc, "sink", cJSON_Duplicate(sink, 1));
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(t, "authSession");
    const cJSON *asid = cJSON_GetObjectItemCaseSensitive(as, "id");
    if (cJSON_IsString(asid)) cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "authSession"), "id", asid->valuestring);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "state"), "status", "ACTIVE");
    cJSON_AddStringToObject(doc, "projectId", pid);
    return itd_decode_take(&itd_Job, doc, NULL, err);
}

/* Starts a run; its id into run_id (>= 24 bytes), or answers (*rc) and returns -1. */
static int start(struct MHD_Connection *c, const emu_ids *ids, const req *q, char *run_id, enum MHD_Result *rc)
{
    cJSON *t = reply_parse_body(q);
    if (!cJSON_IsObject(t)) { cJSON_Delete(t); *rc = bad_field(c, "", "expected a JSON object"); return -1; }
    itd_error err = ITD_ERROR_INIT;
    if (g_opts.newest) {
        void *in = itd_decode(&itd_RunStartInput, q->body, q->len, NULL, &err);
        if (!in) { *rc = send_invalid(c, "run start input", &err); itd_error_clear(&err); cJSON_Delete(t); return -1; }
        itd_free(&itd_RunStartInput, in);
    } else {
        const char *field, *issue;
        if (check_v0312(t, &field, &issue)) { cJSON_Delete(t); *rc = bad_field(c, field, issue); return -1; }
    }
    const cJSON *sink = cJSON_GetObjectItemCaseSensitive(t, "sink");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(sink, "url");
    if (cJSON_IsString(url) && deliver_webhook_is_self(url->valuestring)) {
        cJSON_Delete(t);
        *rc = bad_field(c, "sink.url", "a webhook sink must not target the emulator's own API or control endpoints "
                                       "(on its own port only /_receiver/NAME)");
        return -1;
    }
    itd_job *snap = make_snap(ids->project, t, &err);
    if (!snap) {
        *rc = send_invalid(c, "run start input", &err);
        itd_error_clear(&err);
        cJSON_Delete(t);
        return -1;
    }

    /* the auth session (§4.3): a credentials id must name a session (newest
     * mode; v0.3.12 does not check); a runtime id names or makes one; an
     * EXPIRED one is re-created with autoRecreate (default true), else the
     * run is canceled.  Done before g_lock (the sessions' lock is never taken
     * under it), so a start then refused with 429 has still made or
     * re-created its session, as a real run's session step would have. */
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(t, "authSession");
    const cJSON *asid = cJSON_GetObjectItemCaseSensitive(as, "id");
    int use = AS_USE_OK;
    char sid[220] = "";
    if (cJSON_IsString(asid)) {
        snprintf(sid, sizeof sid, "%.200s", asid->valuestring);
        int runtime = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(as, "runtimeInput"));
        use = auth_session_use(ids->project, asid->valuestring, runtime,
                               !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(as, "autoRecreate")));
        if (use == AS_USE_UNKNOWN && !g_opts.newest) use = AS_USE_OK;
    }
    cJSON_Delete(t);
    if (use == AS_USE_UNKNOWN) {
        itd_free(&itd_Job, snap);
        char msg[400];
        snprintf(msg, sizeof msg, "Invalid run start input: authSession.id: no auth session with id %.200s in project "
                 "%.100s", sid, ids->project);
        *rc = send_bad_field(c, msg, "authSession.id", "names no auth session of this project");
        return -1;
    }
    if (use == AS_USE_BAD_ID) {
        itd_free(&itd_Job, snap);
        *rc = bad_field(c, "authSession.id", "must be 1 to 200 characters (the emulator's bound)");
        return -1;
    }
    if (use == AS_USE_FULL) {
        itd_free(&itd_Job, snap);
        *rc = send_error(c, 507, "The emulator keeps no more auth sessions (--max-auth-sessions); delete some");
        return -1;
    }

    emu_writes w = { NULL };
    pthread_mutex_lock(&g_lock);
    if (make_room(q->len)) {
        pthread_mutex_unlock(&g_lock);
        itd_free(&itd_Job, snap);
        char msg[200];
        snprintf(msg, sizeof msg, "Too many Run API runs in progress (%u kept); retry later", cap());
        char *body = error_json(429, msg, NULL);
        *rc = send_body(c, 429, "application/json", body, strlen(body), "Retry-After", "1");
        return -1;
    }
    emu_run *r = emu_xcalloc(1, sizeof *r);
    char id[24];
    do nanoid(id); while (find_run(NULL, id));
    r->id = emu_strdup(id);
    r->project = emu_strdup(ids->project);
    r->job_id = emu_strdup("runs");   /* S3 files go to <bucket>/<prefix>runs/<runId>/ */
    r->standalone = 1;
    snprintf(r->type, sizeof r->type, "MANUAL");
    snprintf(r->status, sizeof r->status, "PENDING");
    r->start_time = r->updated = emu_now();
    r->end_time = -1;
    r->snap = snap;
    r->n = 1;
    r->ps = emu_xcalloc(1, sizeof *r->ps);
    api_run *a = emu_xcalloc(1, sizeof *a);
    a->run = r;
    a->bytes = q->len;
    a->next = g_runs;
    g_runs = a;
    g_nruns++;
    g_started++;
    g_bytes += q->len;
    if (use == AS_USE_EXPIRED) {
        /* canceled straight from pending: it never reaches a worker */
        a->reason = "auth-session-validate-dependency-failed";
        a->reason_msg = "The run's auth session is expired and could not be re-created";
        snprintf(r->status, sizeof r->status, "TERMINATED");
        r->end_time = r->updated = emu_now();
    } else {
        runner_submit(r, &w);
    }
    pthread_mutex_unlock(&g_lock);
    persist_flush(&w);   /* nothing to write (Run API runs live in memory); kept for symmetry */
    snprintf(run_id, 24, "%s", id);
    return 0;
}

/* ------------------------------------------------------------ entry points */

enum MHD_Result runs_api_handle(struct MHD_Connection *c, const char *op, const emu_ids *ids, const req *q)
{
    enum MHD_Result rc;
    char id[24];
    if (strcmp(op, "runs:start") == 0) {
        if (start(c, ids, q, id, &rc)) return rc;
        cJSON *d = cJSON_CreateObject();
        if (!g_opts.newest) cJSON_AddStringToObject(d, "status", "pending");   /* v0.3.12's key order */
        cJSON_AddStringToObject(d, "runId", id);
        if (g_opts.newest) cJSON_AddStringToObject(d, "status", "pending");
        return send_checked(c, 201, &itd_RunStarted, d);
    }
    if (strcmp(op, "runs:sync") == 0) {
        /* v0.3.12: answers when the run has finished */
        if (start(c, ids, q, id, &rc)) return rc;
        double until = emu_now() + SYNC_WAIT_MAX;
        cJSON *d = NULL;
        for (;;) {
            pthread_mutex_lock(&g_lock);
            api_run *a = find_run(ids->project, id);
            if (!a || finished(a->run)) d = a ? result_doc(a) : NULL;
            pthread_mutex_unlock(&g_lock);
            if (d || !a) break;
            if (emu_now() > until) return send_error(c, 504, "The run did not finish in time");
            if (deliver_sleep(0.005)) return send_error(c, 503, "The emulator is shutting down");
        }
        if (!d) return send_error(c, 500, "internal: the run was dropped");
        return send_checked(c, 200, &itd_RunResult, d);
    }
    if (strcmp(op, "runs:result") == 0) {
        pthread_mutex_lock(&g_lock);
        api_run *a = find_run(ids->project, ids->run);
        cJSON *d = a ? result_doc(a) : NULL;
        pthread_mutex_unlock(&g_lock);
        if (!d) {
            char msg[600];
            snprintf(msg, sizeof msg, "No run with id %.200s in project %.200s", ids->run, ids->project);
            return send_error(c, 404, msg);
        }
        return send_checked(c, 200, &itd_RunResult, d);
    }
    return send_error(c, 500, "internal: unknown Run API operation");
}

cJSON *runs_api_view(const char *run_id)
{
    pthread_mutex_lock(&g_lock);
    api_run *a = find_run(NULL, run_id);
    cJSON *v = NULL;
    if (a) {
        v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "id", a->run->id);
        cJSON_AddStringToObject(v, "project", a->run->project);
        cJSON_AddStringToObject(v, "status", status_of(a));
        cJSON_AddNumberToObject(v, "attempts", a->run->ps[0].attempts);
        cJSON *d = cJSON_AddObjectToObject(v, "deliveries");
        cJSON_AddNumberToObject(d, "delivered", (double)a->run->deliveries_ok);
        cJSON_AddNumberToObject(d, "failed", (double)a->run->deliveries_failed);
        cJSON_AddNumberToObject(d, "skipped", (double)a->run->deliveries_skipped);
        cJSON_AddNumberToObject(d, "attempts", (double)a->run->delivery_attempts);
        cJSON *res = final_result(a->run);
        if (res) cJSON_AddItemToObject(v, "sink_result", res);
    }
    pthread_mutex_unlock(&g_lock);
    return v;
}

cJSON *runs_api_counts(void)
{
    pthread_mutex_lock(&g_lock);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "runs", g_nruns);
    cJSON_AddNumberToObject(o, "started", (double)g_started);
    cJSON_AddNumberToObject(o, "max", cap());
    cJSON_AddNumberToObject(o, "bytes", (double)g_bytes);
    pthread_mutex_unlock(&g_lock);
    return o;
}

cJSON *runs_api_cancel(const char *run_id, int *status)
{
    emu_writes w = { NULL };
    pthread_mutex_lock(&g_lock);
    api_run *a = find_run(NULL, run_id);
    *status = 0;
    if (a && finished(a->run)) *status = 409;
    else if (a) {
        a->reason = "cancelled-user-action";
        a->reason_msg = "Canceled through /_emulator/api-runs/{runId}/cancel";
        runner_terminate(a->run, &w);
    }
    pthread_mutex_unlock(&g_lock);
    return a ? runs_api_view(run_id) : NULL;
}

void runs_api_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    while (g_runs) {
        api_run *a = g_runs;
        g_runs = a->next;
        store_run_free(a->run);
        free(a);
    }
    g_nruns = 0;
    g_bytes = 0;
    pthread_mutex_unlock(&g_lock);
}
