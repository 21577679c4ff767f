/*
 * runner.c - executing job runs: simulated API calls, the job's retry policy
 * and maxConcurrentRequests; results go to delivery (deliver.c).
 *
 * A fixed pool of worker threads takes work from the list of active runs:
 * a payload whose call may start (its run PENDING, under the run's
 * concurrency limit, its retry back-off elapsed), or a finished payload whose
 * result still has to be delivered.  Calls and deliveries run without g_lock;
 * a run is kept alive meanwhile by a reference count, so deleting its job
 * never frees it under a worker.  Deliveries happen here, never inside the
 * HTTP handler, so a webhook pointing at the emulator's own receiver works.
 *
 * Simulated calls: the result is derived from apiName + parameters only
 * (same payload, same result).  An apiName starting with "fail" or named by
 * --fail-api always fails; "flaky:N..." fails its first N attempts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "deliver.h"
#include "persist.h"
#include "runner.h"
#include "store.h"

static emu_run *g_active;        /* runs with work left, FIFO; guarded by g_lock */
static pthread_cond_t g_work_cv; /* runnable work may exist; on CLOCK_MONOTONIC (work_cv) */
static pthread_once_t g_work_once = PTHREAD_ONCE_INIT;
static pthread_t *g_workers;
static int g_nworkers;
static int g_stopping;           /* guarded by g_lock */

static void work_cv_init(void)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0) abort();
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (pthread_cond_init(&g_work_cv, &a) != 0) abort();
    pthread_condattr_destroy(&a);
}

/* The work list's condition variable: requests may submit runs before
 * runner_start, so it is made on first use. */
static pthread_cond_t *work_cv(void)
{
    pthread_once(&g_work_once, work_cv_init);
    return &g_work_cv;
}

/* Waits (g_lock held) for work until `wake` (Unix seconds, a retry's
 * ready_at; < 0: no deadline).  The deadline goes to the monotonic clock as
 * a delay from now, so a step of the wall clock does not stretch the wait. */
static void work_wait(double wake)
{
    if (wake < 0) { pthread_cond_wait(work_cv(), &g_lock); return; }
    double dt = wake - emu_now();
    if (!(dt > 0)) return;
    if (dt > 86400) dt = 86400;   /* woken well before; the loop looks again */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(dt);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((dt - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(work_cv(), &g_lock, &ts);
}

static void enqueue(emu_run *r)
{
    if (!r->active) {
        emu_run **pp = &g_active;
        while (*pp) pp = &(*pp)->anext;
        *pp = r;
        r->anext = NULL;
        r->active = 1;
    }
    pthread_cond_broadcast(work_cv());
}

static void deactivate(emu_run *r)
{
    if (!r->active) return;
    emu_run **pp = &g_active;
    while (*pp && *pp != r) pp = &(*pp)->anext;
    if (*pp) *pp = r->anext;
    r->active = 0;
    r->anext = NULL;
}

/* 1 while a finished payload's result still has to be delivered (pending,
 * or a delivery in progress). */
static int owes_delivery(const emu_run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const emu_pstate *p = &r->ps[i];
        if ((p->state == P_OK || p->state == P_FAIL) && (p->delivery == 0 || p->delivery == 5)) return 1;
    }
    return 0;
}

/* A run whose payloads are all done gets its final status and end_time at
 * once, COMPLETED or FAILED: its results' deliveries are reported on their
 * own (the delivery counters, each payload's delivery) and do not hold the
 * run in PENDING while a webhook is retried.  The run leaves the work list
 * when it is final (or TERMINATED) and owes no delivery. */
static void finish_if_done(emu_run *r)
{
    if (!r->active) return;
    int all_done = 1, ok = 0;
    for (size_t i = 0; i < r->n; i++) {
        const emu_pstate *p = &r->ps[i];
        if (p->state == P_OK) ok++;
        else if (p->state != P_FAIL) all_done = 0;
    }
    int final = strcmp(r->status, "PENDING") != 0 && strcmp(r->status, "PAUSED") != 0;
    if (!final && all_done && r->in_flight == 0) {
        /* COMPLETED even when some payloads failed (the reference's example run has
         * failures_count 1); FAILED when there were payloads and none succeeded.
         * A PAUSED run whose payloads all finished (calls in flight when it was
         * paused) completes as well. */
        snprintf(r->status, sizeof r->status, "%s", r->n > 0 && ok == 0 ? "FAILED" : "COMPLETED");
        r->end_time = r->updated = emu_now();
        final = 1;
    }
    /* a TERMINATED run waits for its calls in flight: their results are delivered */
    if (final && r->in_flight == 0 && !owes_delivery(r)) deactivate(r);
}

void runner_submit(emu_run *r, emu_writes *w)
{
    enqueue(r);
    finish_if_done(r);   /* a job without payloads completes at once */
    persist_run_save(r, w);
}

void runner_forget_job(const char *project, const char *job_id)
{
    for (emu_run *r = g_active, *n; r; r = n) {
        n = r->anext;
        if (!r->standalone && strcmp(r->job_id, job_id) == 0 && strcmp(r->project, project) == 0) deactivate(r);
    }
}

/* The job's runs in status `from` go to `to`. */
static void set_job_runs(const char *project, const char *job_id, const char *from, const char *to, emu_writes *w)
{
    for (emu_run *r = g_active; r; r = r->anext)
        if (!r->standalone && strcmp(r->status, from) == 0 && strcmp(r->job_id, job_id) == 0
            && strcmp(r->project, project) == 0) {
            snprintf(r->status, sizeof r->status, "%s", to);
            r->updated = emu_now();
            persist_run_save(r, w);
        }
}

void runner_pause_job(const char *project, const char *job_id, emu_writes *w)
{
    set_job_runs(project, job_id, "PENDING", "PAUSED", w);
}

void runner_resume_job(const char *project, const char *job_id, emu_writes *w)
{
    set_job_runs(project, job_id, "PAUSED", "PENDING", w);
    pthread_cond_broadcast(work_cv());
}

void runner_terminate(emu_run *r, emu_writes *w)
{
    snprintf(r->status, sizeof r->status, "TERMINATED");
    r->end_time = r->updated = emu_now();
    finish_if_done(r);
    persist_run_save(r, w);
}

/* ------------------------------------------------------------ simulated calls */

static int max_attempts(const emu_run *r, const itd_payload *p)
{
    if (p->retry && p->retry->has_maximumAttempts && p->retry->maximumAttempts >= 1)
        return (int)fmin(p->retry->maximumAttempts, 1000);
    const itd_configuration *c = r->snap->configuration;
    if (c && c->retry && c->retry->has_maximumAttempts && c->retry->maximumAttempts >= 1)
        return (int)fmin(c->retry->maximumAttempts, 1000);
    return 1;   /* no retry policy: one attempt */
}

/* Wait before retry number `i` (0-based): initialInterval * coefficient^i,
 * capped by maximumInterval (reference §4.8), in seconds, time-scaled. */
static double retry_delay(const emu_run *r, int i)
{
    const itd_configuration *c = r->snap->configuration;
    const itd_retry *rt = c ? c->retry : NULL;
    double initial = 1000, coeff = 1, cap = -1;
    if (rt) {
        if (rt->initialInterval.kind == ITD_NS_NUMBER) initial = rt->initialInterval.num;
        else if (rt->initialInterval.kind == ITD_NS_STRING) itd_duration_ms(rt->initialInterval.str, &initial);
        if (rt->has_backoffCoefficient && rt->backoffCoefficient > 0) coeff = rt->backoffCoefficient;
        if (rt->maximumInterval.kind == ITD_NS_NUMBER) cap = rt->maximumInterval.num;
        else if (rt->maximumInterval.kind == ITD_NS_STRING) itd_duration_ms(rt->maximumInterval.str, &cap);
    }
    double ms = initial * pow(coeff, i);
    if (cap >= 0 && ms > cap) ms = cap;
    if (!(ms >= 0) || ms > 86400000.0) ms = 86400000.0;
    return ms * g_opts.time_scale / 1000.0;
}

static int call_fails(const char *api, int attempt)
{
    if (strncmp(api, "fail", 4) == 0) return 1;
    for (size_t i = 0; i < g_opts.nfail_apis; i++)
        if (strcmp(api, g_opts.fail_apis[i]) == 0) return 1;
    if (strncmp(api, "flaky:", 6) == 0) {
        char *end;
        long n = strtol(api + 6, &end, 10);
        if (end != api + 6) return attempt <= n;
    }
    return 0;
}

/* The JobSinkResultPayload of a finished payload, through the core's schema. */
static char *build_result(const emu_run *r, size_t i, int ok, int attempts)
{
    const itd_payload *p = r->snap->payload.items[i];
    char pid[40], api_run[80], digest[20];
    emu_stable_uuid(r->project, pid);
    snprintf(api_run, sizeof api_run, "apirun-%s-%zu", r->id + 4, i + 1);
    char *params = p->parameters ? itd_json_print(p->parameters, NULL) : NULL;
    uint64_t h = emu_hash(p->apiName, strlen(p->apiName) + 1, 0);
    if (params) h = emu_hash(params, strlen(params), h);
    free(params);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)h);

    cJSON *o = cJSON_CreateObject();
    cJSON *info = cJSON_AddObjectToObject(o, "apiInfo");
    cJSON_AddStringToObject(info, "name", p->apiName);
    if (p->parameters) cJSON_AddItemToObject(info, "parameters", cJSON_Duplicate(p->parameters, 1));
    cJSON *res = cJSON_AddObjectToObject(info, "result");
    if (ok) {
        cJSON *val = cJSON_AddObjectToObject(res, "result");
        cJSON_AddStringToObject(val, "apiName", p->apiName);
        cJSON_AddItemToObject(val, "parameters", p->parameters ? cJSON_Duplicate(p->parameters, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(val, "digest", digest);
        cJSON_AddStringToObject(res, "status", "completed");
        cJSON_AddNumberToObject(res, "statusCode", 200);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "Simulated failure of %.100s after %d attempt(s)", p->apiName, attempts);
        cJSON_AddStringToObject(res, "error", "SimulatedFailure");
        cJSON_AddStringToObject(res, "message", msg);
        cJSON_AddStringToObject(res, "status", "failed");
        cJSON_AddNumberToObject(res, "statusCode", 500);
    }
    /* a Run API run's result carries its own run id, and no job */
    cJSON_AddStringToObject(info, "runId", r->standalone ? r->id : api_run);
    cJSON_AddStringToObject(o, "workspaceId", g_opts.workspace);
    cJSON *proj = cJSON_AddObjectToObject(o, "project");
    cJSON_AddStringToObject(proj, "id", pid);
    cJSON_AddStringToObject(proj, "name", r->project);
    if (r->snap->authSession && r->snap->authSession->id)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "authSession"), "id", r->snap->authSession->id);
    if (!r->standalone) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "projectJob"), "id", r->job_id);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "projectJobRun"), "id", r->id);
    }

    itd_error err = ITD_ERROR_INIT;
    itd_sink_result *sr = itd_decode_take(&itd_JobSinkResultPayload, o, NULL, &err);
    if (!sr) {
        fprintf(stderr, "intuned-emulator: internal: sink result invalid: %s\n", err.message);
        itd_error_clear(&err);
        return NULL;
    }
    char *json = itd_encode(&itd_JobSinkResultPayload, sr, NULL);
    itd_free(&itd_JobSinkResultPayload, sr);
    return json;
}

/* ------------------------------------------------------------ workers */

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_stopping) {
        double now = emu_now(), wake = -1;
        emu_run *r = NULL;
        size_t idx = 0;
        int kind = 0;   /* 1 call, 2 delivery */
        for (emu_run *x = g_active; x && !kind; x = x->anext) {
            for (size_t i = 0; i < x->n; i++)
                if ((x->ps[i].state == P_OK || x->ps[i].state == P_FAIL) && x->ps[i].delivery == 0) {
                    r = x; idx = i; kind = 2; break;
                }
            if (kind || strcmp(x->status, "PENDING") != 0) continue;
            if (x->limit && x->in_flight >= x->limit) continue;
            for (size_t i = 0; i < x->n; i++)
                if (x->ps[i].state == P_WAIT) {
                    if (x->ps[i].ready_at <= now) { r = x; idx = i; kind = 1; break; }
                    if (wake < 0 || x->ps[i].ready_at < wake) wake = x->ps[i].ready_at;
                }
        }
        if (!kind) { work_wait(wake); continue; }

        emu_writes w = { NULL };
        emu_pstate *p = &r->ps[idx];
        r->refs++;
        if (kind == 1) {
            p->state = P_RUNNING;
            int attempt = ++p->attempts;
            if (++r->in_flight > r->max_in_flight) r->max_in_flight = r->in_flight;
            const itd_payload *pl = r->snap->payload.items[idx];
            int maxa = max_attempts(r, pl);
            pthread_mutex_unlock(&g_lock);

            /* a shutdown cuts the call short: it was not made, and is redone
             * after a restart (the file never saw it start) */
            int cut = deliver_sleep(g_opts.api_latency_ms / 1000.0);
            int ok = !call_fails(pl->apiName, attempt);
            char *result = NULL;
            if (!cut && (ok || attempt >= maxa)) result = build_result(r, idx, ok, attempt);

            pthread_mutex_lock(&g_lock);
            r->in_flight--;
            if (!cut) r->updated = emu_now();
            if (cut) {
                p->state = P_WAIT;
                p->attempts--;
            } else if (ok || attempt >= maxa || strcmp(r->status, "TERMINATED") == 0) {
                if (!result) result = build_result(r, idx, ok, attempt);
                p->state = ok ? P_OK : P_FAIL;
                p->result = result;
                p->delivery = r->snap->sink ? 0 : DELIVER_NO_SINK;
                emu_log("run %s: payload %zu (%s) %s after %d attempt(s)", r->id, idx + 1, pl->apiName,
                        ok ? "completed" : "failed", attempt);
            } else {
                p->state = P_WAIT;
                p->ready_at = emu_now() + retry_delay(r, attempt - 1);
                emu_log("run %s: payload %zu (%s) attempt %d failed, retrying", r->id, idx + 1, pl->apiName, attempt);
            }
            pthread_cond_broadcast(work_cv());   /* a concurrency slot is free */
        } else {
            p->delivery = 5;   /* delivering */
            const char *body = p->result;   /* immutable once set */
            int failed = p->state == P_FAIL;
            pthread_mutex_unlock(&g_lock);
            long attempts = 0;
            const char *why = NULL;
            int rc = deliver_result(r, idx, body, failed, &attempts, &why);
            pthread_mutex_lock(&g_lock);
            p->delivery = rc;
            p->delivery_error = rc == DELIVER_FAILED ? why : NULL;
            r->delivery_attempts += attempts;
            if (rc == DELIVER_OK) r->deliveries_ok++;
            else if (rc == DELIVER_FAILED) r->deliveries_failed++;
            else if (rc == DELIVER_SKIPPED) r->deliveries_skipped++;
            /* r->updated stays: deliveries are reported on their own, and a
             * finished run's API document does not change after its end */
        }
        if (!r->gone) {
            finish_if_done(r);
            persist_run_save(r, &w);
        }
        store_run_release(r);
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* Runs loaded with work left continue: payloads still to call, or results
 * still to deliver (a COMPLETED, FAILED or TERMINATED run may owe some:
 * deliveries cut short by a shutdown stay pending on disk). */
static void resume_loaded(emu_run *r, void *ud)
{
    int final = strcmp(r->status, "PENDING") != 0 && strcmp(r->status, "PAUSED") != 0;
    if (final && !owes_delivery(r)) return;   /* most runs: never put on the list */
    enqueue(r);
    finish_if_done(r);   /* a file from before runs ended ahead of their deliveries: PENDING, all done */
    persist_run_save(r, ud);   /* writes only what changed */
}

int runner_start(void)
{
    emu_writes w = { NULL };
    pthread_mutex_lock(&g_lock);
    store_runs_each(resume_loaded, &w);
    pthread_mutex_unlock(&g_lock);
    persist_flush(&w);
    g_nworkers = g_opts.workers > 0 ? g_opts.workers : 1;
    g_workers = emu_xcalloc((size_t)g_nworkers, sizeof *g_workers);
    for (int i = 0; i < g_nworkers; i++)
        if (pthread_create(&g_workers[i], NULL, worker, NULL) != 0) { g_nworkers = i; return -1; }
    return 0;
}

void runner_abort(void)
{
    deliver_abort();   /* transfers, back-offs and simulated calls give up */
    pthread_mutex_lock(&g_lock);
    g_stopping = 1;
    pthread_cond_broadcast(work_cv());
    pthread_mutex_unlock(&g_lock);
}

void runner_stop(void)
{
    runner_abort();
    for (int i = 0; i < g_nworkers; i++) pthread_join(g_workers[i], NULL);
    free(g_workers);
    g_workers = NULL;
    g_nworkers = 0;
    pthread_mutex_lock(&g_lock);
    while (g_active) deactivate(g_active);   /* the store may free the runs now */
    pthread_mutex_unlock(&g_lock);
}
