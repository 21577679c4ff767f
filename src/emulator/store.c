/*
 * store.c - jobs and runs in memory, and their API documents.
 *
 * A job's truth is its Job document (v0.3.12 wire form, cJSON).  After every
 * change it goes through itd_Job (decode = validation, encode = the exact
 * bytes GET answers), so what the emulator serves is what the client's codec
 * produces.  Runs are kept as structs (their counters change per payload)
 * and rendered to JobRun documents on demand.  Each change queues what its
 * file must now say (persist.h); the data dir is read back at start through
 * the loader callbacks at the end of this file.
 *
 * Schedule times (next_run, last_run_time) are on the schedule clock
 * (emu_sched.h); created_at and the runs' times are on the wall clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "persist.h"
#include "emu_sched.h"
#include "store.h"

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_jobs_cv = PTHREAD_COND_INITIALIZER;

#define NBUCKETS 4096u
static emu_job *jobs_h[NBUCKETS];
static emu_run *runs_h[NBUCKETS];
static uint64_t g_seq = 1;       /* creation order of jobs and runs */
static itd_rng id_rng;

/* ------------------------------------------------------------ helpers */

static unsigned job_bucket(const char *project, const char *id)
{
    uint64_t h = emu_hash(project, strlen(project) + 1, 0);
    h = emu_hash(id, strlen(id), h);
    return (unsigned)(h % NBUCKETS);
}

static unsigned run_bucket(const char *id) { return (unsigned)(emu_hash(id, strlen(id), 0) % NBUCKETS); }

static void set_key(cJSON *o, const char *key, cJSON *v)
{
    if (!v) abort();
    if (cJSON_GetObjectItemCaseSensitive(o, key)) cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else cJSON_AddItemToObject(o, key, v);
}

/* ------------------------------------------------------------ jobs */

emu_job *store_job_get(const char *project, const char *id)
{
    for (emu_job *j = jobs_h[job_bucket(project, id)]; j; j = j->hnext)
        if (strcmp(j->id, id) == 0 && strcmp(j->project, project) == 0) return j;
    return NULL;
}

static int job_render(emu_job *j, itd_error *err)
{
    cJSON *copy = cJSON_Duplicate(j->doc, 1);
    if (!copy) abort();
    itd_job *obj = itd_decode_take(&itd_Job, copy, NULL, err);
    if (!obj) return -1;
    size_t len = 0;
    char *json = itd_encode(&itd_Job, obj, &len);
    if (!json) abort();
    itd_free(&itd_Job, j->obj);
    free(j->json);
    j->obj = obj;
    j->json = json;
    j->json_len = len;
    return 0;
}

/* The next run strictly after `now` (schedule clock); the caller re-renders. */
static void job_set_next(emu_job *j, double now)
{
    j->next_run = j->obj ? sched_next(j->obj->schedule, now) : -1;
    set_key(j->doc, "next_run_time", emu_time_json(j->next_run));
    pthread_cond_broadcast(&g_jobs_cv);
}

static void job_free(emu_job *j)
{
    if (!j) return;
    free(j->project);
    free(j->id);
    cJSON_Delete(j->doc);
    itd_free(&itd_Job, j->obj);
    free(j->json);
    free(j);
}

static void job_insert(emu_job *j)
{
    unsigned b = job_bucket(j->project, j->id);
    j->hnext = jobs_h[b];
    jobs_h[b] = j;
}

/* JobRetry durations (strings) become JobRetryResponse milliseconds. */
static int retry_to_ms(cJSON *retry, itd_error *err)
{
    static const char *const keys[] = { "initialInterval", "maximumInterval" };
    for (size_t i = 0; retry && i < 2; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(retry, keys[i]);
        double ms;
        if (!cJSON_IsString(v)) continue;
        if (itd_duration_ms(v->valuestring, &ms) != 0)
            return itd_error_set(err, ITD_ERR_VALIDATION, "", "configuration.retry.%s: not a duration", keys[i]);
        cJSON_ReplaceItemInObjectCaseSensitive(retry, keys[i], cJSON_CreateNumber(ms));
    }
    return 0;
}

int store_job_create(const char *project, itd_job_input *in, emu_writes *w, emu_job **out, itd_error *err)
{
    double now = emu_now();
    char pid[40], buf[40];
    cJSON *doc = itd_to_cjson(&itd_JobInput, in);
    if (!doc) abort();
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "configuration");
    if (retry_to_ms(cJSON_GetObjectItemCaseSensitive(cfg, "retry"), err)) { cJSON_Delete(doc); return -1; }
    emu_stable_uuid(project, pid);
    set_key(doc, "created_at", cJSON_CreateString(itd_datetime_format(now, buf, sizeof buf)));
    double next = sched_next(in->schedule, sched_clock_now());   /* once: it is the cost of a create under g_lock */
    set_key(doc, "next_run_time", emu_time_json(next));
    set_key(doc, "last_run_time", cJSON_CreateNull());
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "status", "ACTIVE");
    set_key(doc, "state", state);
    set_key(doc, "projectId", cJSON_CreateString(pid));

    emu_job *j = emu_xcalloc(1, sizeof *j);
    j->project = emu_strdup(project);
    j->id = emu_strdup(in->id);
    j->doc = doc;
    j->seq = g_seq++;
    if (job_render(j, err)) { job_free(j); return -1; }
    j->next_run = next;
    job_insert(j);
    persist_job_save(j, w);
    pthread_cond_broadcast(&g_jobs_cv);
    *out = j;
    return 0;
}

int store_job_update(emu_job *j, itd_job_update_input *up, emu_writes *w, itd_error *err)
{
    cJSON *t = itd_to_cjson(&itd_JobUpdateInput, up);
    if (!t) abort();
    cJSON *doc = cJSON_Duplicate(j->doc, 1);
    /* PUT: the update body is the whole definition; what it leaves out goes. */
    static const char *const replaced[] = { "payload", "configuration", "schedule", "sink", "proxy", "authSession" };
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(doc, replaced[i]);
    cJSON_AddItemToObject(doc, "payload", cJSON_DetachItemFromObjectCaseSensitive(t, "payload"));
    cJSON *cfg = cJSON_DetachItemFromObjectCaseSensitive(t, "configuration");
    /* keep the v0.3.12 Job valid: runMode has one value and v0.3.12 requires it */
    cJSON_AddStringToObject(cfg, "runMode", "Order-Irrelevant");
    cJSON_AddItemToObject(doc, "configuration", cfg);
    cJSON *v;
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(t, "schedule")) && cJSON_IsObject(v))
        cJSON_AddItemToObject(doc, "schedule", v);
    else cJSON_Delete(v);
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(t, "sink"))) cJSON_AddItemToObject(doc, "sink", v);
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(t, "proxy")) && cJSON_IsString(v))
        cJSON_AddItemToObject(doc, "proxy", v);
    else cJSON_Delete(v);
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(t, "auth_session")) && cJSON_IsObject(v))
        cJSON_AddItemToObject(doc, "authSession", v);
    else cJSON_Delete(v);
    cJSON_Delete(t);

    cJSON *old = j->doc;
    j->doc = doc;
    if (job_render(j, err)) { j->doc = old; cJSON_Delete(doc); return -1; }
    cJSON_Delete(old);
    job_set_next(j, sched_clock_now());
    job_render(j, NULL);
    persist_job_save(j, w);
    return 0;
}

int store_job_set_state(emu_job *j, const char *status, const char *reason, emu_writes *w)
{
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "status", status);
    if (reason) cJSON_AddStringToObject(state, "reason", reason);
    set_key(j->doc, "state", state);
    /* resuming: the next run counts from now, so the runs missed while
     * paused do not all start at once */
    if (strcmp(status, "ACTIVE") == 0) job_set_next(j, sched_clock_now());
    if (job_render(j, NULL)) return -1;
    persist_job_save(j, w);
    return 0;
}

int store_job_paused(const emu_job *j)
{
    const char *st = j->obj && j->obj->state ? j->obj->state->status : NULL;
    return st && strcmp(st, "PAUSED") == 0;
}

void store_job_skip(emu_job *j, double now, emu_writes *w)
{
    job_set_next(j, now);
    job_render(j, NULL);
    persist_job_save(j, w);
}

/* A run started: last_run_time, and the next run after it (or after now,
 * when a scheduler that fell behind fires a run due long ago: no burst). */
static void job_touch_run(emu_job *j, double when, emu_writes *w)
{
    set_key(j->doc, "last_run_time", emu_time_json(when));
    double now = sched_clock_now();
    job_set_next(j, when > now ? when : now);
    job_render(j, NULL);
    persist_job_save(j, w);
}

static void run_free(emu_run *r);

void store_job_delete(emu_job *j, emu_writes *w)
{
    /* its runs go with it; a worker still holding one frees it when done */
    for (unsigned b = 0; b < NBUCKETS; b++) {
        emu_run **pp = &runs_h[b];
        while (*pp) {
            emu_run *r = *pp;
            if (strcmp(r->job_id, j->id) == 0 && strcmp(r->project, j->project) == 0) {
                *pp = r->hnext;
                persist_run_remove(r, w);
                r->gone = 1;
                if (r->refs == 0) run_free(r);
            } else {
                pp = &r->hnext;
            }
        }
    }
    persist_job_remove(j, w);
    emu_job **pp = &jobs_h[job_bucket(j->project, j->id)];
    while (*pp != j) pp = &(*pp)->hnext;
    *pp = j->hnext;
    job_free(j);
}

static int cmp_seq_job(const void *a, const void *b)
{
    const emu_job *x = *(emu_job *const *)a, *y = *(emu_job *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

cJSON *store_jobs_array(const char *project)
{
    size_t n = 0, cap = 16;
    emu_job **v = emu_xmalloc(cap * sizeof *v);
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_job *j = jobs_h[b]; j; j = j->hnext)
            if (strcmp(j->project, project) == 0) {
                if (n == cap) { cap *= 2; v = realloc(v, cap * sizeof *v); if (!v) abort(); }
                v[n++] = j;
            }
    qsort(v, n, sizeof *v, cmp_seq_job);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_Duplicate(v[i]->doc, 1));
    free(v);
    return a;
}

void store_jobs_each(void (*fn)(emu_job *j, void *ud), void *ud)
{
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_job *j = jobs_h[b]; j; j = j->hnext) fn(j, ud);
}

double store_next_due(void)
{
    double best = -1;
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_job *j = jobs_h[b]; j; j = j->hnext)
            if (j->next_run >= 0 && (best < 0 || j->next_run < best)) best = j->next_run;
    return best;
}

/* ------------------------------------------------------------ runs */

emu_run *store_run_get(const char *id)
{
    for (emu_run *r = runs_h[run_bucket(id)]; r; r = r->hnext)
        if (strcmp(r->id, id) == 0) return r;
    return NULL;
}

static void run_free(emu_run *r)
{
    persist_run_free(r);
    free(r->id);
    free(r->project);
    free(r->job_id);
    itd_free(&itd_Job, r->snap);
    for (size_t i = 0; i < r->n; i++) free(r->ps[i].result);
    free(r->ps);
    free(r);
}

void store_run_release(emu_run *r)
{
    if (--r->refs == 0 && r->gone) run_free(r);
}

static void run_insert(emu_run *r)
{
    unsigned b = run_bucket(r->id);
    r->hnext = runs_h[b];
    runs_h[b] = r;
}

/* maxConcurrentRequests of a run's job (0: no limit) */
static int run_limit(const itd_job *snap)
{
    const itd_configuration *cfg = snap->configuration;
    return cfg && cfg->has_maxConcurrentRequests && cfg->maxConcurrentRequests >= 1
        ? (int)cfg->maxConcurrentRequests : 0;
}

emu_run *store_run_create(emu_job *j, const char *type, double when, emu_writes *w)
{
    double now = emu_now();
    emu_run *r = emu_xcalloc(1, sizeof *r);
    char id[40];
    do {
        snprintf(id, sizeof id, "run-%016llx", (unsigned long long)itd_rng_next(&id_rng));
    } while (store_run_get(id));
    r->id = emu_strdup(id);
    r->project = emu_strdup(j->project);
    r->job_id = emu_strdup(j->id);
    snprintf(r->type, sizeof r->type, "%s", type);
    snprintf(r->status, sizeof r->status, "%s", store_job_paused(j) ? "PAUSED" : "PENDING");
    r->start_time = r->updated = now;
    r->end_time = -1;
    r->snap = itd_clone(&itd_Job, j->obj);
    if (!r->snap) abort();
    r->n = r->snap->payload.n;
    r->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->ps);
    r->limit = run_limit(r->snap);
    r->seq = g_seq++;
    run_insert(r);
    job_touch_run(j, when, w);
    return r;
}

void store_runs_each(void (*fn)(emu_run *r, void *ud), void *ud)
{
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_run *r = runs_h[b], *n; r; r = n) { n = r->hnext; fn(r, ud); }
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

cJSON *store_run_doc(const emu_run *r, int newest)
{
    char pid[40], buf[40];
    emu_stable_uuid(r->project, pid);
    int ok = 0, fail = 0, pending = 0, attempts = 0;
    for (size_t i = 0; i < r->n; i++) {
        const emu_pstate *p = &r->ps[i];
        attempts += p->attempts;
        if (p->state == P_OK) ok++;
        else if (p->state == P_FAIL) fail++;
        else if (p->state == P_RUNNING || p->attempts > 0) pending++;
    }
    int terminal = strcmp(r->status, "PENDING") != 0 && strcmp(r->status, "PAUSED") != 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "projectId", pid);
    cJSON_AddStringToObject(o, "jobId", r->job_id);
    cJSON_AddStringToObject(o, "start_time", itd_datetime_format(r->start_time, buf, sizeof buf));
    cJSON_AddStringToObject(o, "status", r->status);
    cJSON *s = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddNumberToObject(s, "apis_count", ok + fail);
    cJSON_AddNumberToObject(s, "success_count", ok);
    cJSON_AddNumberToObject(s, "failures_count", fail);
    cJSON_AddNumberToObject(s, "pending_count", terminal ? 0 : pending);
    cJSON_AddStringToObject(o, "type", r->type);
    cJSON_AddStringToObject(o, "workspace_id", g_opts.workspace);
    if (newest) {
        cJSON_AddItemToObject(o, "end_time", emu_time_json(r->end_time));
        cJSON_AddStringToObject(o, "created_at", itd_datetime_format(r->start_time, buf, sizeof buf));
        cJSON_AddStringToObject(o, "updated_at", itd_datetime_format(r->updated, buf, sizeof buf));
        cJSON_AddNumberToObject(o, "payloads", (double)r->n);
        cJSON_AddNumberToObject(o, "successful_runs", ok);
        cJSON_AddNumberToObject(o, "failed_runs", fail);
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
    /* the emulator's own view of the run, for tests: one extra key */
    cJSON *e = cJSON_AddObjectToObject(o, "emulator");
    cJSON_AddNumberToObject(e, "maxConcurrentRequests", r->limit);
    cJSON_AddNumberToObject(e, "max_in_flight", r->max_in_flight);
    cJSON_AddNumberToObject(e, "attempts", attempts);
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
    return o;
}

static int cmp_seq_run_desc(const void *a, const void *b)
{
    const emu_run *x = *(emu_run *const *)a, *y = *(emu_run *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

cJSON *store_runs_array(const char *project, const char *job_id, int newest)
{
    size_t n = 0, cap = 16;
    emu_run **v = emu_xmalloc(cap * sizeof *v);
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_run *r = runs_h[b]; r; r = r->hnext)
            if (strcmp(r->job_id, job_id) == 0 && strcmp(r->project, project) == 0) {
                if (n == cap) { cap *= 2; v = realloc(v, cap * sizeof *v); if (!v) abort(); }
                v[n++] = r;
            }
    qsort(v, n, sizeof *v, cmp_seq_run_desc);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, store_run_doc(v[i], newest));
    free(v);
    return a;
}

cJSON *store_run_results(const emu_run *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < r->n; i++)
        if (r->ps[i].result) {
            cJSON *x = cJSON_Parse(r->ps[i].result);
            if (x) cJSON_AddItemToArray(a, x);
        }
    return a;
}

/* ------------------------------------------------------------ loading, shutdown */

static int adopt_job(emu_job *j, itd_error *err)
{
    if (store_job_get(j->project, j->id) || job_render(j, err)) { job_free(j); return -1; }
    if (j->seq >= g_seq) g_seq = j->seq + 1;
    job_set_next(j, sched_clock_now());
    job_render(j, NULL);
    job_insert(j);
    return 0;
}

static int run_wanted(const char *project, const char *job_id, const char *run_id)
{
    return store_job_get(project, job_id) && !store_run_get(run_id);
}

static void adopt_run(emu_run *r)
{
    r->limit = run_limit(r->snap);
    if (r->seq >= g_seq) g_seq = r->seq + 1;
    run_insert(r);
}

int store_init(void)
{
    static const persist_loader loader = { adopt_job, run_wanted, adopt_run };
    itd_rng_seed(&id_rng, g_opts.seed ^ (uint64_t)(emu_now() * 1e6));
    pthread_mutex_lock(&g_lock);
    int rc = persist_load(&loader);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void store_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    for (unsigned b = 0; b < NBUCKETS; b++) {
        for (emu_run *r = runs_h[b], *n; r; r = n) { n = r->hnext; run_free(r); }
        runs_h[b] = NULL;
        for (emu_job *j = jobs_h[b], *n; j; j = n) { n = j->hnext; job_free(j); }
        jobs_h[b] = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    persist_shutdown();
}
