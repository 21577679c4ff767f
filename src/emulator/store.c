/*
 * store.c - jobs and runs, their API documents, and persistence.
 *
 * A job's truth is its Job document (v0.3.12 wire form, cJSON).  After every
 * change it goes through itd_Job (decode = validation, encode = the exact
 * bytes GET answers), so what the emulator serves is what the client's codec
 * produces.  Runs are kept as structs (their counters change per payload)
 * and rendered to JobRun documents on demand.
 *
 * Persistence (--data-dir): one file per job (jobs/<hash>.json) and per run
 * (runs/<runId>.json).  A job file is replaced whole: the write goes to a
 * temporary file that is fsynced, renamed over the target, and the directory
 * fsynced, so a SIGKILL leaves either the old or the new file.  Documents are
 * rendered under g_lock with a version number and written after it is
 * released; a writer skips a version older than what is already on disk, so
 * slow disks never block readers and never reorder updates.
 *
 * A run file is a journal, one JSON record per line, each with its version
 * "v": a snapshot (the whole run, written like a job file) followed by
 * appended records holding the run's counters and only the payloads that
 * changed since the last record.  Rewriting the whole run after each payload
 * cost O(payloads^2) bytes; appending costs what changed, and a new snapshot
 * replaces the journal once the records appended since the last one outweigh
 * it twice, so the bytes written stay linear in the run's size.  Records may
 * reach the disk out of version order (two workers flushing), so on loading
 * the newest version of each payload and of the counters wins, and a snapshot
 * that arrives after a newer record is appended rather than replacing it.
 * Each append is fdatasynced before the next; a torn last line (SIGKILL
 * mid-write) does not parse and is ignored, and a loaded journal is rewritten
 * as one snapshot so nothing is ever appended after a torn line.  A run found
 * unfinished at start continues where it stopped (its calls in flight are
 * redone).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "emu.h"

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_work_cv = PTHREAD_COND_INITIALIZER;

#define NBUCKETS 4096u
static emu_job *jobs_h[NBUCKETS];
static emu_run *runs_h[NBUCKETS];
static uint64_t g_seq = 1;       /* creation order of jobs and runs */
static uint64_t g_version = 1;   /* of rendered files */
static emu_rng id_rng;

/* ------------------------------------------------------------ helpers */

static unsigned job_bucket(const char *project, const char *id)
{
    uint64_t h = emu_hash(project, strlen(project) + 1, 0);
    h = emu_hash(id, strlen(id), h);
    return (unsigned)(h % NBUCKETS);
}

static unsigned run_bucket(const char *id) { return (unsigned)(emu_hash(id, strlen(id), 0) % NBUCKETS); }

static void job_file_name(const emu_job *j, char *buf, size_t len)
{
    uint64_t a = emu_hash(j->project, strlen(j->project) + 1, 1);
    a = emu_hash(j->id, strlen(j->id), a);
    uint64_t b = emu_hash(j->project, strlen(j->project) + 1, 2);
    b = emu_hash(j->id, strlen(j->id), b);
    snprintf(buf, len, "jobs/%016llx%016llx.json", (unsigned long long)a, (unsigned long long)b);
}

enum { EW_REPLACE = 0, EW_APPEND, EW_SNAPSHOT };   /* emu_write.mode */

static void add_write_v(emu_writes *w, const char *name, char *content, uint64_t version, int mode)
{
    if (!g_opts.data_dir || !w) { free(content); return; }
    emu_write *e = emu_xcalloc(1, sizeof *e);
    e->name = emu_strdup(name);
    e->content = content;
    e->version = version;
    e->mode = mode;
    e->next = w->head;   /* order does not matter: versions decide */
    w->head = e;
}

static void add_write(emu_writes *w, const char *name, char *content)
{
    add_write_v(w, name, content, g_version++, EW_REPLACE);
}

static cJSON *time_or_null(double t)
{
    char buf[40];
    /* a time past year 9999 (every = 1e300) has no date-time form: null */
    return t >= 0 && itd_datetime_format(t, buf, sizeof buf) ? cJSON_CreateString(buf) : cJSON_CreateNull();
}

static void set_key(cJSON *o, const char *key, cJSON *v)
{
    if (!v) abort();
    if (cJSON_GetObjectItemCaseSensitive(o, key)) cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else cJSON_AddItemToObject(o, key, v);
}

/* A number of a loaded file, `def` when absent or out of range (files may be hand-edited). */
static double numv(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 ? v->valuedouble : def;
}

static double parse_time(const cJSON *v)
{
    double t;
    return cJSON_IsString(v) && itd_datetime_parse(v->valuestring, &t) == 0 ? t : -1;
}

/* ------------------------------------------------------------ jobs */

emu_job *store_job_get(const char *project, const char *id)
{
    for (emu_job *j = jobs_h[job_bucket(project, id)]; j; j = j->hnext)
        if (strcmp(j->id, id) == 0 && strcmp(j->project, project) == 0) return j;
    return NULL;
}

int store_job_render(emu_job *j, itd_error *err)
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

static void job_save(emu_job *j, emu_writes *w)
{
    if (!g_opts.data_dir) return;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "seq", (double)j->seq);
    cJSON_AddStringToObject(f, "project", j->project);
    cJSON_AddItemToObject(f, "job", cJSON_Duplicate(j->doc, 1));
    char name[64];
    job_file_name(j, name, sizeof name);
    add_write(w, name, itd_json_print(f, NULL));
    cJSON_Delete(f);
}

static void job_set_next(emu_job *j, double now)
{
    j->next_run = j->obj ? sched_next(j->obj->schedule, now) : -1;
    set_key(j->doc, "next_run_time", time_or_null(j->next_run));
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
    double next = sched_next(in->schedule, now);   /* once: it is the cost of a create under g_lock */
    set_key(doc, "next_run_time", time_or_null(next));
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
    if (store_job_render(j, err)) { job_free(j); return -1; }
    j->next_run = next;
    job_insert(j);
    job_save(j, w);
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
    if (store_job_render(j, err)) { j->doc = old; cJSON_Delete(doc); return -1; }
    cJSON_Delete(old);
    job_set_next(j, emu_now());
    store_job_render(j, NULL);
    job_save(j, w);
    return 0;
}

int store_job_set_state(emu_job *j, const char *status, const char *reason, emu_writes *w)
{
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "status", status);
    if (reason) cJSON_AddStringToObject(state, "reason", reason);
    set_key(j->doc, "state", state);
    if (store_job_render(j, NULL)) return -1;
    job_save(j, w);
    return 0;
}

void store_job_touch_run(emu_job *j, double when, emu_writes *w)
{
    set_key(j->doc, "last_run_time", time_or_null(when));
    job_set_next(j, when);
    store_job_render(j, NULL);
    job_save(j, w);
}

static void run_unlink_active(emu_run *r);
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
                char name[300];
                snprintf(name, sizeof name, "runs/%s.json", r->id);
                add_write(w, name, NULL);
                run_unlink_active(r);
                r->gone = 1;
                if (r->refs == 0) run_free(r);
            } else {
                pp = &r->hnext;
            }
        }
    }
    char name[64];
    job_file_name(j, name, sizeof name);
    add_write(w, name, NULL);
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

void store_schedule_tick(double now, emu_writes *w)
{
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (emu_job *j = jobs_h[b]; j; j = j->hnext) {
            if (j->next_run < 0 || j->next_run > now) continue;
            const char *st = j->obj->state ? j->obj->state->status : NULL;
            int paused = st && strcmp(st, "PAUSED") == 0;
            if (paused || g_opts.no_scheduler) {
                /* no run, but keep next_run_time in the future */
                job_set_next(j, now);
                store_job_render(j, NULL);
                job_save(j, w);
                continue;
            }
            emu_run *r = store_run_create(j, "SCHEDULED", w);
            emu_log("scheduled run %s of %s/%s", r->id, j->project, j->id);
        }
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

/* What a run's file says (store_run_save writes only the differences). */
typedef struct pdisk { int state, attempts, delivery, has_result; } pdisk;
struct run_disk {
    pdisk *ps;                /* n entries */
    char status[12];
    double end_time, updated;
    int max_in_flight;
    long ok, failed, skipped, attempts;
    size_t base;              /* bytes of the last snapshot */
    size_t appended;          /* bytes appended since */
};

static void run_disk_free(struct run_disk *d)
{
    if (!d) return;
    free(d->ps);
    free(d);
}

static void run_free(emu_run *r)
{
    run_disk_free(r->disk);
    free(r->id);
    free(r->project);
    free(r->job_id);
    itd_free(&itd_Job, r->snap);
    for (size_t i = 0; i < r->n; i++) free(r->ps[i].result);
    free(r->ps);
    free(r);
}

static void run_unlink_active(emu_run *r) { runner_deactivate(r); }

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

emu_run *store_run_create(emu_job *j, const char *type, emu_writes *w)
{
    double now = emu_now();
    emu_run *r = emu_xcalloc(1, sizeof *r);
    char id[40];
    do {
        snprintf(id, sizeof id, "run-%016llx", (unsigned long long)emu_rng_next(&id_rng));
    } while (store_run_get(id));
    r->id = emu_strdup(id);
    r->project = emu_strdup(j->project);
    r->job_id = emu_strdup(j->id);
    snprintf(r->type, sizeof r->type, "%s", type);
    const char *st = j->obj->state ? j->obj->state->status : NULL;
    snprintf(r->status, sizeof r->status, "%s", st && strcmp(st, "PAUSED") == 0 ? "PAUSED" : "PENDING");
    r->start_time = r->updated = now;
    r->end_time = -1;
    r->snap = itd_clone(&itd_Job, j->obj);
    if (!r->snap) abort();
    r->n = r->snap->payload.n;
    r->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->ps);
    const itd_configuration *cfg = r->snap->configuration;
    r->limit = cfg && cfg->has_maxConcurrentRequests && cfg->maxConcurrentRequests >= 1
        ? (int)cfg->maxConcurrentRequests : 0;
    r->seq = g_seq++;
    run_insert(r);
    store_job_touch_run(j, now, w);
    runner_enqueue(r);
    runner_finish_if_done(r);  /* a job without payloads completes at once */
    store_run_save(r, w);
    return r;
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

cJSON *store_run_doc(const emu_run *r, int head)
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
    if (head) {
        cJSON_AddItemToObject(o, "end_time", time_or_null(r->end_time));
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
    cJSON_AddItemToObject(e, "end_time", time_or_null(r->end_time));
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

cJSON *store_runs_array(const char *project, const char *job_id, int head)
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
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, store_run_doc(v[i], head));
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

/* A payload as the file keeps it: a call in flight is redone after a restart,
 * and so is a delivery in progress. */
static pdisk pdisk_of(const emu_pstate *p)
{
    pdisk d;
    d.state = p->state == P_RUNNING ? P_WAIT : p->state;
    d.attempts = p->attempts;
    d.delivery = p->delivery == 5 ? 0 : p->delivery;
    d.has_result = p->result != NULL;
    return d;
}

static int pdisk_eq(pdisk a, pdisk b)
{
    return a.state == b.state && a.attempts == b.attempts && a.delivery == b.delivery && a.has_result == b.has_result;
}

/* A result as a record member: the stored JSON text as is (no re-parse). */
static cJSON *result_item(const char *result)
{
    if (!result) return cJSON_CreateNull();
    if (!strchr(result, '\n')) return cJSON_CreateRaw(result);
    cJSON *x = cJSON_Parse(result);   /* a record must stay on one line */
    return x ? x : cJSON_CreateNull();
}

static cJSON *payload_record(const emu_run *r, size_t i, int with_index)
{
    pdisk d = pdisk_of(&r->ps[i]);
    cJSON *x = cJSON_CreateObject();
    if (with_index) cJSON_AddNumberToObject(x, "i", (double)i);
    cJSON_AddNumberToObject(x, "state", d.state);
    cJSON_AddNumberToObject(x, "attempts", d.attempts);
    cJSON_AddNumberToObject(x, "delivery", d.delivery);
    cJSON_AddItemToObject(x, "result", result_item(r->ps[i].result));
    return x;
}

/* The run's counters: in every record. */
static void add_counters(cJSON *f, const emu_run *r, uint64_t version)
{
    cJSON_AddNumberToObject(f, "v", (double)version);
    cJSON_AddStringToObject(f, "id", r->id);
    cJSON_AddStringToObject(f, "status", r->status);
    cJSON_AddItemToObject(f, "end_time", time_or_null(r->end_time));
    cJSON_AddItemToObject(f, "updated", time_or_null(r->updated));
    cJSON_AddNumberToObject(f, "max_in_flight", r->max_in_flight);
    cJSON_AddNumberToObject(f, "deliveries_ok", (double)r->deliveries_ok);
    cJSON_AddNumberToObject(f, "deliveries_failed", (double)r->deliveries_failed);
    cJSON_AddNumberToObject(f, "deliveries_skipped", (double)r->deliveries_skipped);
    cJSON_AddNumberToObject(f, "delivery_attempts", (double)r->delivery_attempts);
}

static char *run_snapshot(const emu_run *r, uint64_t version)
{
    cJSON *f = cJSON_CreateObject();
    add_counters(f, r, version);
    cJSON_AddNumberToObject(f, "seq", (double)r->seq);
    cJSON_AddStringToObject(f, "project", r->project);
    cJSON_AddStringToObject(f, "jobId", r->job_id);
    cJSON_AddStringToObject(f, "type", r->type);
    cJSON_AddItemToObject(f, "start_time", time_or_null(r->start_time));
    cJSON_AddItemToObject(f, "job", itd_to_cjson(&itd_Job, r->snap));
    cJSON *ps = cJSON_AddArrayToObject(f, "payloads");
    for (size_t i = 0; i < r->n; i++) cJSON_AddItemToArray(ps, payload_record(r, i, 0));
    char *out = itd_json_print(f, NULL);
    cJSON_Delete(f);
    if (!out) abort();
    return out;
}

/* Remember what the file now says. */
static void run_disk_sync(emu_run *r)
{
    struct run_disk *d = r->disk;
    for (size_t i = 0; i < r->n; i++) d->ps[i] = pdisk_of(&r->ps[i]);
    snprintf(d->status, sizeof d->status, "%s", r->status);
    d->end_time = r->end_time;
    d->updated = r->updated;
    d->max_in_flight = r->max_in_flight;
    d->ok = r->deliveries_ok;
    d->failed = r->deliveries_failed;
    d->skipped = r->deliveries_skipped;
    d->attempts = r->delivery_attempts;
}

static int counters_changed(const emu_run *r)
{
    const struct run_disk *d = r->disk;
    return strcmp(d->status, r->status) != 0 || d->end_time != r->end_time || d->updated != r->updated
        || d->max_in_flight != r->max_in_flight || d->ok != r->deliveries_ok || d->failed != r->deliveries_failed
        || d->skipped != r->deliveries_skipped || d->attempts != r->delivery_attempts;
}

void store_run_save(emu_run *r, emu_writes *w)
{
    if (!g_opts.data_dir || r->gone) return;
    char name[300];
    snprintf(name, sizeof name, "runs/%s.json", r->id);
    uint64_t version = g_version++;
    if (r->disk) {
        cJSON *changed = NULL;
        for (size_t i = 0; i < r->n; i++)
            if (!pdisk_eq(pdisk_of(&r->ps[i]), r->disk->ps[i])) {
                if (!changed) changed = cJSON_CreateArray();
                cJSON_AddItemToArray(changed, payload_record(r, i, 1));
            }
        if (!changed && !counters_changed(r)) return;
        cJSON *f = cJSON_CreateObject();
        add_counters(f, r, version);
        cJSON_AddItemToObject(f, "changed", changed ? changed : cJSON_CreateArray());
        char *rec = itd_json_print(f, NULL);
        cJSON_Delete(f);
        if (!rec) abort();
        size_t len = strlen(rec) + 1;
        if (r->disk->appended + len <= 2 * r->disk->base + 65536) {
            r->disk->appended += len;
            run_disk_sync(r);
            add_write_v(w, name, rec, version, EW_APPEND);
            return;
        }
        free(rec);   /* the journal outweighs a snapshot: write one instead */
    } else {
        r->disk = emu_xcalloc(1, sizeof *r->disk);
        r->disk->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->disk->ps);
    }
    char *snap = run_snapshot(r, version);
    r->disk->base = strlen(snap) + 1;
    r->disk->appended = 0;
    run_disk_sync(r);
    add_write_v(w, name, snap, version, EW_SNAPSHOT);
}

/* ------------------------------------------------------------ persistence */

static pthread_mutex_t p_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { char *name; uint64_t version; int gone; } *p_seen;   /* newest version written per file; unlinked */
static size_t p_n, p_cap;

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes all of buf; -1 on error. */
static int write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        off += (size_t)k;
    }
    return 0;
}

/* content, then a newline when nl (journal records are lines). */
static int write_atomic(const char *rel, const char *content, int nl)
{
    char path[4096], tmp[4200], dir[4096];
    snprintf(path, sizeof path, "%s/%s", g_opts.data_dir, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (!content) {
        if (unlink(path) != 0 && errno != ENOENT) return -1;
        return fsync_dir(dir);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (write_all(fd, content, strlen(content)) != 0 || (nl && write_all(fd, "\n", 1) != 0) || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return fsync_dir(dir);
}

/* One journal record (a line) at the end of a file, synced.  A failed write
 * is cut off again so that the next record starts on a line of its own. */
static int append_line(const char *rel, const char *content)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_opts.data_dir, rel);
    int created = 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) { fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644); created = 1; }
    if (fd < 0) return -1;
    struct stat st;
    size_t len = strlen(content);
    char *line = emu_xmalloc(len + 1);
    memcpy(line, content, len);
    line[len] = '\n';
    int rc = fstat(fd, &st);
    if (rc == 0 && write_all(fd, line, len + 1) != 0) {
        rc = -1;
        if (ftruncate(fd, st.st_size) != 0) {}   /* best effort; a torn line is ignored on loading anyway */
    }
    free(line);
    if (rc == 0) rc = fdatasync(fd);
    close(fd);
    if (rc == 0 && created) {
        char *slash = strrchr(path, '/');
        *slash = 0;
        rc = fsync_dir(path);
    }
    return rc;
}

void emu_persist(emu_writes *w)
{
    emu_write *e = w->head;
    w->head = NULL;
    if (!e) return;
    pthread_mutex_lock(&p_lock);
    while (e) {
        emu_write *next = e->next;
        size_t i;
        for (i = 0; i < p_n; i++) if (strcmp(p_seen[i].name, e->name) == 0) break;
        if (i == p_n) {
            if (p_n == p_cap) {
                p_cap = p_cap ? p_cap * 2 : 64;
                p_seen = realloc(p_seen, p_cap * sizeof *p_seen);
                if (!p_seen) abort();
            }
            p_seen[p_n].name = emu_strdup(e->name);
            p_seen[p_n].version = 0;
            p_seen[p_n].gone = 0;
            p_n++;
        }
        int newer = e->version > p_seen[i].version, rc = 0;
        if (!e->content) {
            if (newer) { rc = write_atomic(e->name, NULL, 0); p_seen[i].gone = 1; }
        } else if (e->mode == EW_REPLACE || (e->mode == EW_SNAPSHOT && newer)) {
            if (newer) { rc = write_atomic(e->name, e->content, e->mode == EW_SNAPSHOT); p_seen[i].gone = 0; }
        } else if (newer || !p_seen[i].gone) {
            /* a record, or a snapshot older than a record already written: the
             * journal keeps it (on loading the newest version of each part wins) */
            rc = append_line(e->name, e->content);
            p_seen[i].gone = 0;
        }
        if (rc != 0)
            fprintf(stderr, "intuned-emulator: cannot write %s/%s: %s\n", g_opts.data_dir, e->name, strerror(errno));
        if (newer) p_seen[i].version = e->version;
        free(e->name);
        free(e->content);
        free(e);
        e = next;
    }
    pthread_mutex_unlock(&p_lock);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "intuned-emulator: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* Calls fn(path, parsed file), or text_fn(path, text), for every *.json of
 * data_dir/sub; drops leftovers of interrupted writes. */
static void each_file(const char *sub, void (*fn)(const char *, cJSON *), void (*text_fn)(const char *, char *))
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", g_opts.data_dir, sub);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) { unlink(path); continue; }
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        char *text = read_file(path);
        if (text_fn) {
            if (text) text_fn(path, text);
            else fprintf(stderr, "intuned-emulator: ignoring unreadable %s\n", path);
            free(text);
            continue;
        }
        cJSON *t = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!t) { fprintf(stderr, "intuned-emulator: ignoring unreadable %s\n", path); continue; }
        fn(path, t);
        cJSON_Delete(t);
    }
    closedir(d);
}

static void load_job(const char *path, cJSON *f)
{
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(f, "project");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(f, "seq");
    cJSON *doc = cJSON_DetachItemFromObjectCaseSensitive(f, "job");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (!cJSON_IsString(project) || !cJSON_IsString(id) || !cJSON_IsNumber(seq) || seq->valuedouble < 0) {
        fprintf(stderr, "intuned-emulator: ignoring malformed %s\n", path);
        cJSON_Delete(doc);
        return;
    }
    emu_job *j = emu_xcalloc(1, sizeof *j);
    j->project = emu_strdup(project->valuestring);
    j->id = emu_strdup(id->valuestring);
    j->doc = doc;
    j->seq = (uint64_t)seq->valuedouble;
    itd_error err = { 0 };
    if (store_job_get(j->project, j->id) || store_job_render(j, &err)) {
        fprintf(stderr, "intuned-emulator: ignoring invalid job in %s: %s\n", path, err.message);
        itd_error_clear(&err);
        job_free(j);
        return;
    }
    if (j->seq >= g_seq) g_seq = j->seq + 1;
    job_set_next(j, emu_now());
    store_job_render(j, NULL);
    job_insert(j);
}

/* A record's version; files written before journals existed have none (0). */
static uint64_t rec_version(const cJSON *f)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "v");
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (uint64_t)v->valuedouble : 0;
}

static void apply_counters(emu_run *r, const cJSON *f)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(f, "status");
    if (cJSON_IsString(status)) snprintf(r->status, sizeof r->status, "%s", status->valuestring);
    r->end_time = parse_time(cJSON_GetObjectItemCaseSensitive(f, "end_time"));
    r->updated = parse_time(cJSON_GetObjectItemCaseSensitive(f, "updated"));
    r->max_in_flight = (int)numv(f, "max_in_flight", 0);
    r->deliveries_ok = (long)numv(f, "deliveries_ok", 0);
    r->deliveries_failed = (long)numv(f, "deliveries_failed", 0);
    r->deliveries_skipped = (long)numv(f, "deliveries_skipped", 0);
    r->delivery_attempts = (long)numv(f, "delivery_attempts", 0);
}

static void apply_payload(emu_pstate *ps, const cJSON *p)
{
    int st = (int)numv(p, "state", P_WAIT);
    int dv = (int)numv(p, "delivery", 0);
    ps->state = st >= P_WAIT && st <= P_FAIL && st != P_RUNNING ? st : P_WAIT;
    ps->attempts = (int)numv(p, "attempts", 0);
    ps->delivery = dv >= 0 && dv <= 4 ? dv : 0;
    free(ps->result);
    ps->result = NULL;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(p, "result");
    if (cJSON_IsObject(res)) ps->result = itd_json_print(res, NULL);
}

/* A run file: a journal of records, one per line (see the top of the file). */
static void load_run(const char *path, char *text)
{
    size_t nrec = 0, cap = 0, lines = 0;
    int dirty = 0;
    cJSON **recs = NULL, *base = NULL;
    uint64_t vmax = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        else dirty = 1;   /* no newline at the end: a torn record, or a file of the older single-document form */
        if (*line) {
            lines++;
            cJSON *f = cJSON_Parse(line);
            if (!cJSON_IsObject(f)) { cJSON_Delete(f); dirty = 1; }
            else {
                if (nrec == cap) {
                    cap = cap ? cap * 2 : 16;
                    recs = realloc(recs, cap * sizeof *recs);
                    if (!recs) abort();
                }
                recs[nrec++] = f;
                uint64_t v = rec_version(f);
                if (v > vmax) vmax = v;
                /* the newest snapshot is the base; the other records are laid over it */
                if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(f, "payloads"))
                    && (!base || v > rec_version(base))) base = f;
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    if (lines != 1) dirty = 1;
    if (vmax >= g_version) g_version = vmax + 1;
    emu_run *r = NULL;
    const cJSON *f = base;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(f, "project");
    const cJSON *job_id = cJSON_GetObjectItemCaseSensitive(f, "jobId");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(f, "status");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(f, "seq");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(f, "payloads");
    if (!cJSON_IsString(id) || !cJSON_IsString(project) || !cJSON_IsString(job_id) || !cJSON_IsString(type)
        || !cJSON_IsString(status) || !cJSON_IsNumber(seq) || seq->valuedouble < 0 || !cJSON_IsArray(ps)) {
        fprintf(stderr, "intuned-emulator: ignoring malformed %s\n", path);
        goto done;
    }
    if (!store_job_get(project->valuestring, job_id->valuestring) || store_run_get(id->valuestring)) {
        unlink(path);   /* its job was deleted before the runs were: finish that */
        goto done;
    }
    itd_job *snap = itd_decode_take(&itd_Job, cJSON_DetachItemFromObjectCaseSensitive(base, "job"), NULL, NULL);
    if (!snap || snap->payload.n != (size_t)cJSON_GetArraySize(ps)) {
        fprintf(stderr, "intuned-emulator: ignoring invalid run in %s\n", path);
        itd_free(&itd_Job, snap);
        goto done;
    }
    r = emu_xcalloc(1, sizeof *r);
    r->id = emu_strdup(id->valuestring);
    r->project = emu_strdup(project->valuestring);
    r->job_id = emu_strdup(job_id->valuestring);
    snprintf(r->type, sizeof r->type, "%s", type->valuestring);
    r->start_time = parse_time(cJSON_GetObjectItemCaseSensitive(f, "start_time"));
    apply_counters(r, f);
    r->snap = snap;
    r->n = snap->payload.n;
    r->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->ps);
    uint64_t *pv = emu_xcalloc(r->n ? r->n : 1, sizeof *pv);   /* version of what each payload holds */
    uint64_t bv = rec_version(base), cv = bv;
    size_t i = 0;
    for (const cJSON *p = ps->child; p; p = p->next, i++) { apply_payload(&r->ps[i], p); pv[i] = bv; }
    for (size_t k = 0; k < nrec; k++) {
        const cJSON *x = recs[k];
        uint64_t v = rec_version(x);
        if (x == base || v == 0) continue;
        const cJSON *xid = cJSON_GetObjectItemCaseSensitive(x, "id");
        if (!cJSON_IsString(xid) || strcmp(xid->valuestring, r->id) != 0) { dirty = 1; continue; }
        if (v > cv) { apply_counters(r, x); cv = v; }
        const cJSON *xs = cJSON_GetObjectItemCaseSensitive(x, "payloads");
        if (cJSON_IsArray(xs)) {   /* an older snapshot appended late: only what it holds newer */
            if ((size_t)cJSON_GetArraySize(xs) != r->n) continue;
            i = 0;
            for (const cJSON *p = xs->child; p; p = p->next, i++)
                if (v > pv[i]) { apply_payload(&r->ps[i], p); pv[i] = v; }
            continue;
        }
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(x, "changed");
        for (const cJSON *p = cJSON_IsArray(ch) ? ch->child : NULL; p; p = p->next) {
            double idx = numv(p, "i", -1);
            if (idx < 0 || idx >= (double)r->n || idx != floor(idx)) continue;
            size_t j = (size_t)idx;
            if (v > pv[j]) { apply_payload(&r->ps[j], p); pv[j] = v; }
        }
    }
    free(pv);
    const itd_configuration *cfg = snap->configuration;
    r->limit = cfg && cfg->has_maxConcurrentRequests && cfg->maxConcurrentRequests >= 1 ? (int)cfg->maxConcurrentRequests : 0;
    r->seq = (uint64_t)seq->valuedouble;
    if (r->seq >= g_seq) g_seq = r->seq + 1;
    run_insert(r);
    /* what the file says, from now on; a journal is folded into one snapshot
     * (nothing appended may follow a torn line) */
    r->disk = emu_xcalloc(1, sizeof *r->disk);
    r->disk->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->disk->ps);
    run_disk_sync(r);
    if (dirty) {
        char *snapshot = run_snapshot(r, g_version++);
        r->disk->base = strlen(snapshot) + 1;
        char rel[300];
        snprintf(rel, sizeof rel, "runs/%s.json", r->id);
        if (write_atomic(rel, snapshot, 1) != 0)
            fprintf(stderr, "intuned-emulator: cannot write %s: %s\n", path, strerror(errno));
        free(snapshot);
    } else {
        r->disk->base = strlen(text) + 1;
    }
    /* runs with work left continue (a terminated one may still owe deliveries) */
    if (strcmp(r->status, "COMPLETED") != 0 && strcmp(r->status, "FAILED") != 0) {
        runner_enqueue(r);
        runner_finish_if_done(r);
    }
done:
    for (size_t k = 0; k < nrec; k++) cJSON_Delete(recs[k]);
    free(recs);
}

int store_init(void)
{
    emu_rng_seed(&id_rng, g_opts.seed ^ (uint64_t)(emu_now() * 1e6));
    if (!g_opts.data_dir) return 0;
    char path[4096];
    if (ensure_dir(g_opts.data_dir)) return -1;
    snprintf(path, sizeof path, "%s/jobs", g_opts.data_dir);
    if (ensure_dir(path)) return -1;
    snprintf(path, sizeof path, "%s/runs", g_opts.data_dir);
    if (ensure_dir(path)) return -1;
    pthread_mutex_lock(&g_lock);
    each_file("jobs", load_job, NULL);
    each_file("runs", NULL, load_run);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void store_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    for (unsigned b = 0; b < NBUCKETS; b++) {
        for (emu_run *r = runs_h[b], *n; r; r = n) { n = r->hnext; run_unlink_active(r); run_free(r); }
        runs_h[b] = NULL;
        for (emu_job *j = jobs_h[b], *n; j; j = n) { n = j->hnext; job_free(j); }
        jobs_h[b] = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_lock(&p_lock);
    for (size_t i = 0; i < p_n; i++) free(p_seen[i].name);
    free(p_seen);
    p_seen = NULL;
    p_n = p_cap = 0;
    pthread_mutex_unlock(&p_lock);
}
