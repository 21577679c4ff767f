/*
 * store.c - jobs and runs in memory, and their API documents.
 *
 * A job's truth is one superset document (cJSON): the v0.3.12 Job form,
 * which also keeps the keys only the newest API has (payload requestTimeout
 * and retry, configuration requestTimeout, auth session attempts, proxy),
 * whichever API version created it.  After every change it goes through
 * itd_Job (decode = validation) and the answer of GET job in the emulator's
 * version (--api-version) is cached: v0.3.12's is the exact itd_Job
 * encoding, the newest API's is rendered by render.c.  Runs are kept as
 * structs (their counters change per payload) and rendered on demand
 * (render.c).  Each change queues what its file must now say (persist.h);
 * the data dir is read back at start through the loader callbacks at the
 * end of this file, so one written in either mode serves in both.
 *
 * Schedule times (next_run, last_run_time) are on the schedule clock
 * (emu_sched.h); created_at and the runs' times are on the wall clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "persist.h"
#include "emu_sched.h"
#include "render.h"
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

/* The answer of GET job in this emulator's API version, from the newest
 * object: v0.3.12's is the itd_Job encoding; the newest API's is built by
 * render.c and validated through the same schema. */
static char *job_answer(const emu_job *j, size_t *len, itd_error *err)
{
    if (!g_opts.newest) {
        char *json = itd_encode(&itd_Job, j->obj, len);
        if (!json) abort();
        return json;
    }
    cJSON *t = render_job_newest(j, 0);
    cJSON *copy = cJSON_Duplicate(t, 1);
    if (!copy) abort();
    itd_job *check = itd_decode_take(&itd_Job, copy, NULL, err);
    if (!check) { cJSON_Delete(t); return NULL; }
    itd_free(&itd_Job, check);
    char *json = itd_json_print(t, len);
    cJSON_Delete(t);
    if (!json) abort();
    return json;
}

static int job_render(emu_job *j, itd_error *err)
{
    cJSON *copy = cJSON_Duplicate(j->doc, 1);
    if (!copy) abort();
    itd_job *obj = itd_decode_take(&itd_Job, copy, NULL, err);
    if (!obj) return -1;
    itd_job *old = j->obj;
    j->obj = obj;
    size_t len = 0;
    char *json = job_answer(j, &len, err);
    if (!json) { j->obj = old; itd_free(&itd_Job, obj); return -1; }
    itd_free(&itd_Job, old);
    free(j->json);
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

/* The definition of an update body (or of the newest API's create body)
 * into the superset document: PUT, so what the body leaves out goes. */
static void apply_definition(cJSON *doc, const itd_schema *schema, itd_job_update_input *up)
{
    cJSON *t = itd_to_cjson(schema, up);
    if (!t) abort();
    static const char *const replaced[] = { "payload", "configuration", "schedule", "sink", "proxy", "authSession" };
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(doc, replaced[i]);
    cJSON_AddItemToObject(doc, "payload", cJSON_DetachItemFromObjectCaseSensitive(t, "payload"));
    cJSON *cfg = cJSON_DetachItemFromObjectCaseSensitive(t, "configuration");
    /* keep the v0.3.12 Job valid: runMode has one value and v0.3.12 requires
     * it (the newest API's answers leave it out) */
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
}

/* A new job from its superset document (taken): the keys every job has. */
static int job_create_doc(const char *project, const char *id, cJSON *doc, const itd_schedule *schedule,
                          emu_writes *w, emu_job **out, itd_error *err)
{
    double now = emu_now();
    char pid[40], buf[40];
    emu_stable_uuid(project, pid);
    set_key(doc, "created_at", cJSON_CreateString(itd_datetime_format(now, buf, sizeof buf)));
    double next = sched_next(schedule, sched_clock_now());   /* once: it is the cost of a create under g_lock */
    set_key(doc, "next_run_time", emu_time_json(next));
    set_key(doc, "last_run_time", cJSON_CreateNull());
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "status", "ACTIVE");
    set_key(doc, "state", state);
    set_key(doc, "projectId", cJSON_CreateString(pid));

    emu_job *j = emu_xcalloc(1, sizeof *j);
    j->project = emu_strdup(project);
    j->id = emu_strdup(id);
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

int store_job_create(const char *project, itd_job_input *in, emu_writes *w, emu_job **out, itd_error *err)
{
    cJSON *doc = itd_to_cjson(&itd_JobInput, in);
    if (!doc) abort();
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "configuration");
    if (retry_to_ms(cJSON_GetObjectItemCaseSensitive(cfg, "retry"), err)) { cJSON_Delete(doc); return -1; }
    return job_create_doc(project, in->id, doc, in->schedule, w, out, err);
}

int store_job_create_newest(const char *project, itd_job_update_input *in, emu_writes *w, emu_job **out,
                            itd_error *err)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc) abort();
    cJSON_AddStringToObject(doc, "id", in->id);
    apply_definition(doc, &itd_JobInputNewest, in);
    return job_create_doc(project, in->id, doc, in->schedule, w, out, err);
}

int store_job_update(emu_job *j, itd_job_update_input *up, emu_writes *w, itd_error *err)
{
    cJSON *doc = cJSON_Duplicate(j->doc, 1);
    if (!doc) abort();
    apply_definition(doc, &itd_JobUpdateInput, up);
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
                if (r->refs == 0) store_run_free(r);
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
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, g_opts.newest ? render_job_newest(v[i], 1) : cJSON_Duplicate(v[i]->doc, 1));
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

void store_run_free(emu_run *r)
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
    if (--r->refs == 0 && r->gone) store_run_free(r);
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

static int cmp_seq_run_desc(const void *a, const void *b)
{
    const emu_run *x = *(emu_run *const *)a, *y = *(emu_run *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

cJSON *store_runs_array(const char *project, const char *job_id, int form)
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
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, render_run(v[i], form));
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
        for (emu_run *r = runs_h[b], *n; r; r = n) { n = r->hnext; store_run_free(r); }
        runs_h[b] = NULL;
        for (emu_job *j = jobs_h[b], *n; j; j = n) { n = j->hnext; job_free(j); }
        jobs_h[b] = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    persist_shutdown();
}
