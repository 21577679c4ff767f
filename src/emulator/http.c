/*
 * http.c - the HTTP side: libmicrohttpd setup, the Jobs API operations
 * (routed by the operation table, ops.c), and the request deadline.  The
 * control endpoints (control.c) and the receiver (receiver.c) are served
 * from here; answers are built by reply.c, the documents of jobs and runs by
 * store.c and render.c in the API version the emulator was started with
 * (--api-version): v0.3.12, or the newest API, whose create takes only
 * JobInputV2 and whose answers all have that API's shapes.
 *
 * One thread per connection: a latency fault or a slow client then holds
 * only its own connection, and keep-alive connections cost a blocked thread
 * each rather than a slot in a shared poll loop.
 *
 * libmicrohttpd calls the handler first with the headers only; a response
 * queued then makes it answer "Connection: close" (it has not read the body).
 * So the first call only allocates the request context, body chunks are
 * collected by the following calls, and the answer is queued on the last
 * call, which keeps connections alive.
 *
 * Paths arrive undecoded (our unescape callback is a no-op) so that an id
 * holding "%2F" is one segment; each segment is percent-decoded after the
 * split (reply.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "auth_sessions.h"
#include "control.h"
#include "deliver.h"
#include "faults.h"
#include "http.h"
#include "persist.h"
#include "receiver.h"
#include "render.h"
#include "reply.h"
#include "runner.h"
#include "runs_api.h"
#include "emu_sched.h"
#include "stats.h"
#include "store.h"

static struct MHD_Daemon *g_daemon;

/* ------------------------------------------------------------ API operations */

typedef struct route {
    int op;                 /* itd_op, -1 when the path and method matched no operation */
    const char *allow;      /* methods of the rows whose template fits the path (405), NULL: none */
    const char *ws, *project, *job, *run;
    itd_route m;
} route;

/* The paths and methods are the operation table's (ops.c), as the client
 * builds them. */
static void match_route(const segs *s, const char *method, route *r)
{
    memset(r, 0, sizeof *r);
    r->op = itd_op_route((const char *const *)s->v, s->n, method, &r->m);
    r->allow = r->m.allow[0] ? r->m.allow : NULL;
    r->ws = r->m.workspace;
    r->project = r->m.args.project;
    r->job = r->m.args.job_id;
    r->run = r->m.args.run_id;
}

static unsigned success_status(int op)
{
    const itd_op_def *d = itd_op_def_of((itd_op)op);
    return d ? (unsigned)d->success : 200;
}

static enum MHD_Result not_found_job(struct MHD_Connection *c, const route *r)
{
    char msg[600];
    snprintf(msg, sizeof msg, "No job with id %.200s in project %.200s", r->job, r->project);
    return send_error(c, 404, msg);
}

static enum MHD_Result not_found_run(struct MHD_Connection *c, const route *r)
{
    char msg[600];
    snprintf(msg, sizeof msg, "No run with id %.200s for job %.200s", r->run, r->job);
    return send_error(c, 404, msg);
}

static const char *query_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- the newest API's paged runs list (pageNumber, pageSize, sortBy)
 *
 * The reference (jobs-api.md §8.1) gives only the SDK's example
 * (pageNumber=0, pageSize=10, sortBy=start_time,desc/status,asc) and says
 * neither where pages start nor any bound.  Ours: pages count from 0 (the
 * example's 0), pageSize 1..PAGE_SIZE_MAX (default 10), pageNumber
 * 0..PAGE_NUMBER_MAX; anything else is a 400 naming the argument, so a
 * product of the two can never overflow. */
#define PAGE_SIZE_MAX 1000L
#define PAGE_NUMBER_MAX 1000000L
#define SORT_KEYS_MAX 4
#define PAGE_SIZE_ALL 2000000000L   /* the one page of a newest-mode list without arguments */

typedef struct page_args {
    long page, size;
    int nkeys;
    const char *key[SORT_KEYS_MAX];   /* JobRun keys (static strings) */
    int desc[SORT_KEYS_MAX];
} page_args;

/* What sortBy may name: the JobRun keys that hold a string (or null). */
static const char *const sort_fields[] = { "start_time", "end_time", "created_at", "updated_at", "status", "type", "id" };

static enum MHD_Result send_bad_arg(struct MHD_Connection *c, const char *field, const char *issue)
{
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid query parameter %s: %s", field, issue);
    return send_bad_field(c, msg, field, issue);
}

/* A whole number lo..hi written with digits only; 0, or -1 with `issue` set. */
static int page_number_arg(const char *raw, long lo, long hi, long *out, char *issue, size_t len)
{
    char *v = pct_decode(raw, strlen(raw), 1);
    int rc = -1;
    size_t n = v ? strlen(v) : 0, i;
    for (i = 0; i < n && isdigit((unsigned char)v[i]); i++) {}
    if (!v || n == 0 || i != n) snprintf(issue, len, "must be a whole number written with digits only");
    else if (n > 9 || strtol(v, NULL, 10) > hi || strtol(v, NULL, 10) < lo)
        snprintf(issue, len, "must be between %ld and %ld", lo, hi);
    else { *out = strtol(v, NULL, 10); rc = 0; }
    free(v);
    return rc;
}

/* sortBy: up to SORT_KEYS_MAX parts joined by '/', each "field[,asc|,desc]"
 * (a space may stand for the comma: "status asc"). */
static int sort_arg(const char *raw, page_args *a, char *issue, size_t len)
{
    char *v = pct_decode(raw, strlen(raw), 1);
    if (!v || !v[0] || strlen(v) > 200) {
        snprintf(issue, len, "expected field[,asc|desc] parts joined by '/', e.g. start_time,desc");
        free(v);
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *part = strtok_r(v, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        size_t fl = strcspn(part, ", ");
        const char *dir = part[fl] ? part + fl + 1 : "asc";
        size_t k;
        for (k = 0; k < sizeof sort_fields / sizeof sort_fields[0]; k++)
            if (strlen(sort_fields[k]) == fl && strncmp(sort_fields[k], part, fl) == 0) break;
        if (a->nkeys == SORT_KEYS_MAX) { snprintf(issue, len, "at most %d sort keys", SORT_KEYS_MAX); rc = -1; break; }
        if (k == sizeof sort_fields / sizeof sort_fields[0]) {
            snprintf(issue, len, "unknown sort field \"%.*s\" (known: start_time, end_time, created_at, updated_at, "
                     "status, type, id)", (int)(fl > 40 ? 40 : fl), part);
            rc = -1;
            break;
        }
        if (strcasecmp(dir, "asc") != 0 && strcasecmp(dir, "desc") != 0) {
            snprintf(issue, len, "the direction of %s must be asc or desc", sort_fields[k]);
            rc = -1;
            break;
        }
        a->key[a->nkeys] = sort_fields[k];
        a->desc[a->nkeys] = strcasecmp(dir, "desc") == 0;
        a->nkeys++;
    }
    if (rc == 0 && a->nkeys == 0) { snprintf(issue, len, "names no sort field"); rc = -1; }
    free(v);
    return rc;
}

/* Reads and checks the paging arguments; 0, or -1 with the argument's name in *field. */
static int page_args_parse(struct MHD_Connection *c, page_args *a, const char **field, char *issue, size_t len)
{
    const char *pn = query_arg(c, "pageNumber"), *ps = query_arg(c, "pageSize"), *sb = query_arg(c, "sortBy");
    memset(a, 0, sizeof *a);
    a->size = 10;
    if (pn && page_number_arg(pn, 0, PAGE_NUMBER_MAX, &a->page, issue, len)) { *field = "pageNumber"; return -1; }
    if (ps && page_number_arg(ps, 1, PAGE_SIZE_MAX, &a->size, issue, len)) { *field = "pageSize"; return -1; }
    if (sb && sort_arg(sb, a, issue, len)) { *field = "sortBy"; return -1; }
    return 0;
}

typedef struct sort_item { cJSON *doc; int idx; const page_args *a; } sort_item;

static const char *doc_str(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* By the keys in turn (times are fixed-width UTC strings, so they compare as
 * text; null, e.g. the end_time of a running run, sorts after any value),
 * then by creation order in the first key's direction: a stable order. */
static int cmp_sort_item(const void *pa, const void *pb)
{
    const sort_item *x = pa, *y = pb;
    for (int k = 0; k < x->a->nkeys; k++) {
        const char *s = doc_str(x->doc, x->a->key[k]), *t = doc_str(y->doc, x->a->key[k]);
        int d = s && t ? strcmp(s, t) : s ? -1 : t ? 1 : 0;
        if (d) return x->a->desc[k] ? -d : d;
    }
    return x->a->desc[0] ? x->idx - y->idx : y->idx - x->idx;   /* idx: newest first */
}

static cJSON *page_runs(const page_args *a, cJSON *all)
{
    int n = cJSON_GetArraySize(all);
    sort_item *v = emu_xcalloc((size_t)(n ? n : 1), sizeof *v);
    int k = 0;
    for (cJSON *it = all->child; it && k < n; it = it->next, k++) { v[k].doc = it; v[k].idx = k; v[k].a = a; }
    if (a->nkeys) qsort(v, (size_t)k, sizeof *v, cmp_sort_item);
    cJSON *items = cJSON_CreateArray();
    /* both factors are bounded (page_args_parse), so this does not overflow */
    long from = a->page * a->size;
    for (long i = from; i < (long)k && i < from + a->size; i++)
        cJSON_AddItemToArray(items, cJSON_Duplicate(v[i].doc, 1));
    free(v);
    cJSON_Delete(all);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "jobRuns", items);
    cJSON_AddNumberToObject(o, "totalCount", n);
    return o;
}

/* A webhook sink aimed at the emulator's own API or control endpoints would
 * make each delivery trigger (or change) jobs again, without end; refused
 * now, and again at delivery (deliver.c) for jobs that came another way. */
static int sink_is_self(const itd_sink *s)
{
    return s && s->kind == ITD_SINK_WEBHOOK && s->url && deliver_webhook_is_self(s->url);
}

static enum MHD_Result refuse_self_sink(struct MHD_Connection *c, const char *what)
{
    const char *issue = "a webhook sink must not target the emulator's own API or control endpoints "
                        "(on its own port only /_receiver/NAME)";
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid %s: sink.url: %s", what, issue);
    return send_bad_field(c, msg, "sink.url", issue);
}

/* Newest mode: a job's auth_session names an auth session of its project
 * (auth_sessions.c); v0.3.12 mode does not check (its jobs predate them). */
static enum MHD_Result refuse_auth_session(struct MHD_Connection *c, const char *what)
{
    const char *issue = "names no auth session of this project (create it first: POST .../auth-sessions/create)";
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid %s: auth_session.id: %s", what, issue);
    return send_bad_field(c, msg, "auth_session.id", issue);
}

/* The client passes any number (the reference sets no bound); the emulator
 * runs at least one payload at a time, so it refuses less, saying why. */
static int check_concurrency(const itd_configuration *cfg, itd_error *err)
{
    if (!cfg || !cfg->has_maxConcurrentRequests || cfg->maxConcurrentRequests >= 1) return 0;
    return itd_error_set(err, ITD_ERR_VALIDATION, "configuration.maxConcurrentRequests",
                         "the emulator requires at least 1 (the reference gives no bound)");
}

/* ---- calendars in newest mode
 *
 * ScheduleV2 (reference §8.3) gives each calendar field a closed union:
 * whole numbers (names for dayOfWeek and month), ranges {start, end?} or
 * {start, step, end}, arrays of those values and ranges, and "*" alone.  The
 * core's input model takes v0.3.12's wider forms too (free strings, numbers
 * as strings; the SDK sends them), but a newest answer has no form for them,
 * so newest mode refuses them with the field's path. */
static const char *const dow_names[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", NULL };
static const char *const month_names[] = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST",
                                           "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER", NULL };

/* One bare value or range end: a whole number, or with `names` one of them. */
static int v2_value(itd_numstr_kind kind, double num, const char *str, const char *const *names)
{
    if (!names) return kind == ITD_NS_NUMBER && num == (double)(long long)num;
    if (kind != ITD_NS_STRING || !str) return 0;
    for (size_t i = 0; names[i]; i++)
        if (strcmp(str, names[i]) == 0) return 1;
    return 0;
}

static int v2_range(const itd_calrange *r, const char *const *names)
{
    if (!v2_value(r->start.kind, r->start.num, r->start.str, names)) return 0;
    if (r->end.kind != ITD_NS_ABSENT && !v2_value(r->end.kind, r->end.num, r->end.str, names)) return 0;
    /* a step comes with an end; the step is a whole number */
    if (r->has_step && (r->end.kind == ITD_NS_ABSENT || r->step != (double)(long long)r->step)) return 0;
    return 1;
}

static int v2_calvalue(const itd_calvalue *v, const char *const *names, int in_list)
{
    switch (v->kind) {
    case ITD_CV_NUMBER: return v2_value(ITD_NS_NUMBER, v->num, NULL, names);
    case ITD_CV_STRING: return (!in_list && v->str && strcmp(v->str, "*") == 0) || v2_value(ITD_NS_STRING, 0, v->str, names);
    case ITD_CV_RANGE: return v->range && v2_range(v->range, names);
    case ITD_CV_LIST:
        if (in_list) return 0;
        for (size_t i = 0; i < v->list.n; i++)
            if (!v2_calvalue(v->list.items[i], names, 1)) return 0;
        return 1;
    }
    return 0;
}

static int check_calendars_v2(const itd_schedule *s, itd_error *err)
{
    for (size_t i = 0; s && i < s->calendars.n; i++) {
        const itd_calendar *c = s->calendars.items[i];
        const struct { const char *name; const itd_calvalue *v; const char *const *names; const char *what; } f[] = {
            { "second", c->second, NULL, "0-59" }, { "minute", c->minute, NULL, "0-59" },
            { "hour", c->hour, NULL, "0-23" }, { "dayOfWeek", c->dayOfWeek, dow_names, "SUNDAY..SATURDAY" },
            { "dayOfMonth", c->dayOfMonth, NULL, "1-31" }, { "month", c->month, month_names, "JANUARY..DECEMBER" },
            { "year", c->year, NULL, "a year" },
        };
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
            if (!f[k].v || v2_calvalue(f[k].v, f[k].names, 0)) continue;
            char path[96];
            snprintf(path, sizeof path, "schedule.calendars[%zu].%s", i + 1, f[k].name);
            return itd_error_set(err, ITD_ERR_VALIDATION, path,
                                 "not a form of the newest API's ScheduleV2 (%s as %s, {start, end?} or "
                                 "{start, step, end}, an array of those, or \"*\"); v0.3.12's free strings need "
                                 "--api-version v0.3.12", f[k].what, f[k].names ? "full upper-case names" : "whole numbers");
        }
    }
    return 0;
}

static enum MHD_Result job_exists(struct MHD_Connection *c, const route *r, const char *id)
{
    char msg[600];
    /* 409: the HTTP meaning of "already exists"; a client that retried a
     * create whose answer was lost reconciles on it */
    snprintf(msg, sizeof msg, "A job with id %.200s already exists in project %.200s", id, r->project);
    return send_error(c, 409, msg);
}

/* create in v0.3.12 mode: a JobInput */
static enum MHD_Result create_v0312(struct MHD_Connection *c, const route *r, req *q)
{
    emu_writes w = { NULL };
    itd_error err = ITD_ERROR_INIT;
    enum MHD_Result rc;
    emu_job *j;
    itd_job_input *in = itd_decode(&itd_JobInput, q->body ? q->body : "", q->len, NULL, &err);
    if (!in) { rc = send_invalid(c, "job input", &err); itd_error_clear(&err); return rc; }
    if (sink_is_self(in->sink)) { itd_free(&itd_JobInput, in); return refuse_self_sink(c, "job input"); }
    if (check_concurrency(in->configuration, &err) || sched_validate(in->schedule, &err)) {   /* before g_lock: the checks bound the schedule search */
        rc = send_invalid(c, "job input", &err);
        itd_error_clear(&err);
        itd_free(&itd_JobInput, in);
        return rc;
    }
    pthread_mutex_lock(&g_lock);
    if (store_job_get(r->project, in->id)) {
        pthread_mutex_unlock(&g_lock);
        rc = job_exists(c, r, in->id);
        itd_free(&itd_JobInput, in);
        return rc;
    }
    int bad = store_job_create(r->project, in, &w, &j, &err);
    pthread_mutex_unlock(&g_lock);
    persist_flush(&w);
    if (bad) { rc = send_invalid(c, "job input", &err); itd_error_clear(&err); itd_free(&itd_JobInput, in); return rc; }
    stats_create();
    rc = send_action(c, 201, &itd_CreateJob, in->id, NULL, "created");
    itd_free(&itd_JobInput, in);
    return rc;
}

/* 1 when a refusal of the newest create schema is about what v0.3.12's
 * JobInput has there: runMode, the retry durations, authSession, array or
 * absent parameters (the last part of the error's path). */
static int v0312_key(const char *path)
{
    static const char *const keys[] = { "runMode", "backoffCoefficient", "initialInterval", "maximumInterval",
                                        "authSession", "parameters" };
    const char *dot = strrchr(path, '.');
    const char *last = dot ? dot + 1 : path;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(last, keys[i]) == 0) return 1;
    return 0;
}

/* A body the newest schema refused.  When it is a v0.3.12 JobInput (it
 * decodes as one, or the refusal is about a key of that form), the 400 says
 * so and how to get an emulator that takes it. */
static enum MHD_Result refuse_newest_body(struct MHD_Connection *c, const req *q, const itd_error *err)
{
    itd_error e2 = ITD_ERROR_INIT;
    itd_job_input *old = itd_decode(&itd_JobInput, q->body ? q->body : "", q->len, NULL, &e2);
    itd_error_clear(&e2);
    int v0312 = old || v0312_key(err->path);
    itd_free(&itd_JobInput, old);
    if (!v0312) return send_invalid(c, "job input", err);
    char issue[ITD_MSG_MAX + 300], msg[ITD_MSG_MAX + ITD_PATH_MAX + 400];
    snprintf(issue, sizeof issue, "%s: this is a v0.3.12 JobInput, and this emulator speaks the newest API "
             "(JobInputV2); start it with --api-version v0.3.12 for v0.3.12 bodies", err->message);
    snprintf(msg, sizeof msg, "Invalid job input: %s: %s", err->path[0] ? err->path : "(body)", issue);
    return send_bad_field(c, msg, err->path, issue);
}

/* create in newest mode: a JobInputV2 (JobInputNewest) */
static enum MHD_Result create_newest(struct MHD_Connection *c, const route *r, req *q)
{
    emu_writes w = { NULL };
    itd_error err = ITD_ERROR_INIT;
    enum MHD_Result rc;
    emu_job *j;
    itd_job_update_input *in = itd_decode(&itd_JobInputNewest, q->body ? q->body : "", q->len, NULL, &err);
    if (!in) { rc = refuse_newest_body(c, q, &err); itd_error_clear(&err); return rc; }
    if (sink_is_self(in->sink)) { itd_free(&itd_JobInputNewest, in); return refuse_self_sink(c, "job input"); }
    if (in->auth_session && in->auth_session->id && !auth_session_exists(r->project, in->auth_session->id)) {
        itd_free(&itd_JobInputNewest, in);
        return refuse_auth_session(c, "job input");
    }
    if (check_concurrency(in->configuration, &err) || check_calendars_v2(in->schedule, &err)
        || sched_validate(in->schedule, &err)) {
        rc = send_invalid(c, "job input", &err);
        itd_error_clear(&err);
        itd_free(&itd_JobInputNewest, in);
        return rc;
    }
    pthread_mutex_lock(&g_lock);
    if (store_job_get(r->project, in->id)) {
        pthread_mutex_unlock(&g_lock);
        rc = job_exists(c, r, in->id);
        itd_free(&itd_JobInputNewest, in);
        return rc;
    }
    int bad = store_job_create_newest(r->project, in, &w, &j, &err);
    pthread_mutex_unlock(&g_lock);
    persist_flush(&w);
    if (bad) { rc = send_invalid(c, "job input", &err); itd_error_clear(&err); itd_free(&itd_JobInputNewest, in); return rc; }
    stats_create();
    rc = send_action(c, 201, &itd_CreateJob, in->id, NULL, "created");
    itd_free(&itd_JobInputNewest, in);
    return rc;
}

static enum MHD_Result do_op(struct MHD_Connection *c, const route *r, req *q)
{
    emu_writes w = { NULL };
    itd_error err = ITD_ERROR_INIT;
    enum MHD_Result rc;
    emu_job *j;

    switch (r->op) {
    case ITD_OP_JOBS_LIST: {
        pthread_mutex_lock(&g_lock);
        cJSON *a = store_jobs_array(r->project);
        pthread_mutex_unlock(&g_lock);
        /* v0.3.12: through the schema, as GET job; newest: the rendered items, checked by it */
        return g_opts.newest ? send_checked(c, 200, &itd_JobList, a) : send_model(c, &itd_JobList, a);
    }
    case ITD_OP_JOBS_CREATE:
        return g_opts.newest ? create_newest(c, r, q) : create_v0312(c, r, q);
    case ITD_OP_JOBS_GET: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (!j) { pthread_mutex_unlock(&g_lock); return not_found_job(c, r); }
        struct MHD_Response *resp = reply_response(j->json_len, j->json, MHD_RESPMEM_MUST_COPY);
        pthread_mutex_unlock(&g_lock);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        rc = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    case ITD_OP_JOBS_UPDATE: {
        itd_job_update_input *up = itd_decode(&itd_JobUpdateInput, q->body ? q->body : "", q->len, NULL, &err);
        if (!up) { rc = send_invalid(c, "job update", &err); itd_error_clear(&err); return rc; }
        if (sink_is_self(up->sink)) { itd_free(&itd_JobUpdateInput, up); return refuse_self_sink(c, "job update"); }
        if (g_opts.newest && up->auth_session && up->auth_session->id
            && !auth_session_exists(r->project, up->auth_session->id)) {
            itd_free(&itd_JobUpdateInput, up);
            return refuse_auth_session(c, "job update");
        }
        if (check_concurrency(up->configuration, &err) || (g_opts.newest && check_calendars_v2(up->schedule, &err))
            || sched_validate(up->schedule, &err)) {
            rc = send_invalid(c, "job update", &err);
            itd_error_clear(&err);
            itd_free(&itd_JobUpdateInput, up);
            return rc;
        }
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        int bad = j ? store_job_update(j, up, &w, &err) : 0;
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        itd_free(&itd_JobUpdateInput, up);
        if (!j) return not_found_job(c, r);
        if (bad) { rc = send_invalid(c, "job update", &err); itd_error_clear(&err); return rc; }
        return send_action(c, 200, &itd_UpdateJob, r->job, NULL, "updated job successfully");
    }
    case ITD_OP_JOBS_DELETE: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (j) {
            runner_forget_job(r->project, r->job);
            store_job_delete(j, &w);
        }
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        if (!j) return not_found_job(c, r);
        return send_body(c, 204, NULL, NULL, 0, NULL, NULL);
    }
    case ITD_OP_JOBS_PAUSE:
    case ITD_OP_JOBS_RESUME: {
        int pause = r->op == ITD_OP_JOBS_PAUSE;
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        if (j) {
            /* the API takes no body, so the reason is ours */
            store_job_set_state(j, pause ? "PAUSED" : "ACTIVE", pause ? "Paused via API" : NULL, &w);
            if (pause) runner_pause_job(r->project, r->job, &w);
            else runner_resume_job(r->project, r->job, &w);
        }
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        if (!j) return not_found_job(c, r);
        /* the newest API's answers carry no id */
        return send_action(c, 200, pause ? &itd_PauseJob : &itd_ResumeJob, g_opts.newest ? NULL : r->job, NULL,
                           pause ? "Paused" : "Resumed");
    }
    case ITD_OP_JOBS_TRIGGER: {
        char run_id[64] = "";
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        int paused = j && store_job_paused(j);
        if (j && !paused) {
            emu_run *run = store_run_create(j, "MANUAL", sched_clock_now(), &w);
            runner_submit(run, &w);
            snprintf(run_id, sizeof run_id, "%s", run->id);
        }
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        if (!j) return not_found_job(c, r);
        if (paused) {
            /* the SDK documents that trigger fails on a paused job without a
             * status; 409 says "the resource's state forbids it" */
            char msg[400];
            snprintf(msg, sizeof msg, "Job %.200s is paused; resume it before triggering", r->job);
            return send_error(c, 409, msg);
        }
        return send_action(c, 200, &itd_TriggerJob, g_opts.newest ? NULL : r->job, run_id, "Triggered");
    }
    case ITD_OP_RUNS_LIST: {
        int args = query_arg(c, "pageNumber") || query_arg(c, "pageSize") || query_arg(c, "sortBy");
        /* the newest API answers {jobRuns, totalCount} always (without
         * arguments: every run, one page); v0.3.12 a bare array unless paged */
        int paged = args || g_opts.newest;
        page_args pa;
        const char *field = NULL;
        char issue[200];
        if (paged && page_args_parse(c, &pa, &field, issue, sizeof issue)) return send_bad_arg(c, field, issue);
        if (!args) pa.size = PAGE_SIZE_ALL;
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        cJSON *a = j ? store_runs_array(r->project, r->job, g_opts.newest ? RUN_NEWEST : paged ? RUN_MIXED : RUN_V0312) : NULL;
        pthread_mutex_unlock(&g_lock);
        if (!j) return not_found_job(c, r);
        if (g_opts.newest) return send_checked(c, 200, &itd_JobRunList, page_runs(&pa, a));
        return send_model(c, &itd_JobRunList, paged ? page_runs(&pa, a) : a);
    }
    case ITD_OP_RUNS_GET: {
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        emu_run *run = j ? store_run_get(r->run) : NULL;
        if (run && (strcmp(run->job_id, r->job) != 0 || strcmp(run->project, r->project) != 0)) run = NULL;
        cJSON *doc = run ? render_run(run, g_opts.newest ? RUN_NEWEST : RUN_MIXED) : NULL;
        pthread_mutex_unlock(&g_lock);
        if (!j) return not_found_job(c, r);
        if (!run) return not_found_run(c, r);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "jobRun", doc);
        /* results: a link to the emulator's own collection of this run's results */
        cJSON *res = cJSON_AddObjectToObject(o, "results");
        char url[512], key[600], *enc = itd_uri_component(r->run);
        snprintf(url, sizeof url, "%s/_emulator/runs/%s/results", g_origin, enc ? enc : "");
        snprintf(key, sizeof key, "%.200s/%.200s/results.json", r->job, r->run);
        free(enc);
        cJSON_AddStringToObject(res, "signed_url", url);
        cJSON_AddStringToObject(res, "key", key);
        cJSON_AddStringToObject(res, "format", "json");
        return g_opts.newest ? send_checked(c, 200, &itd_JobRunDetail, o) : send_model(c, &itd_JobRunDetail, o);
    }
    case ITD_OP_RUNS_TERMINATE: {
        char status[16] = "";
        pthread_mutex_lock(&g_lock);
        j = store_job_get(r->project, r->job);
        emu_run *run = j ? store_run_get(r->run) : NULL;
        if (run && (strcmp(run->job_id, r->job) != 0 || strcmp(run->project, r->project) != 0)) run = NULL;
        if (run) {
            snprintf(status, sizeof status, "%s", run->status);
            if (strcmp(status, "PENDING") == 0 || strcmp(status, "PAUSED") == 0) runner_terminate(run, &w);
        }
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        if (!j) return not_found_job(c, r);
        if (!run) return not_found_run(c, r);
        if (strcmp(status, "COMPLETED") == 0 || strcmp(status, "FAILED") == 0 || strcmp(status, "TERMINATED") == 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "Job run %.200s already finished (%s)", r->run,
                     g_opts.newest && strcmp(status, "FAILED") == 0 ? "FAILURE" : status);
            return send_error(c, 409, msg);
        }
        return send_action(c, 200, &itd_TerminateJobRun, NULL, NULL, "Job run terminated");
    }
    }
    return send_error(c, 500, "internal: unknown operation");
}

/* ---- the Run API and Auth Sessions (runs_api.c, auth_sessions.c)
 *
 * Their rows are the operation table's; these are the paths only v0.3.12
 * has (reference §11.1), served in v0.3.12 mode only: the synchronous run,
 * update with the id in the body (and its result), and the resume and
 * recorder operations. */
#define PROJ "/{" ITD_PATH_WORKSPACE "}/projects/{project}"
typedef struct extra_route { const char *name, *method, *path; unsigned success; } extra_route;
static const extra_route v0312_routes[] = {
    { "runs:sync", "POST", PROJ "/run", 200 },
    { "auth_sessions:update_v0312", "POST", PROJ "/auth-sessions/update", 201 },
    { "auth_sessions:update_result_v0312", "GET", PROJ "/auth-sessions/update/{operation_id}/result", 200 },
    { "auth_sessions:create_resume", "POST", PROJ "/auth-sessions/create/{operation_id}/resume", 202 },
    { "auth_sessions:update_resume", "POST", PROJ "/auth-sessions/update/{operation_id}/resume", 202 },
    { "auth_sessions:recorder_start", "POST", PROJ "/auth-sessions/recorder/start", 201 },
};

/* Fits the segments to a template; the placeholders go to ids by their
 * names (project, *session*, *operation*, *run*), the workspace to *ws. */
static int ids_match(const char *tpl, const segs *s, emu_ids *ids, const char **ws)
{
    const char *t = tpl[0] == '/' ? tpl + 1 : tpl;
    size_t i = 0;
    memset(ids, 0, sizeof *ids);
    while (*t) {
        const char *e = strchr(t, '/');
        size_t len = e ? (size_t)(e - t) : strlen(t);
        if (i == s->n) return 0;
        const char *v = s->v[i++];
        if (len >= 2 && t[0] == '{' && t[len - 1] == '}') {
            char name[48];
            snprintf(name, sizeof name, "%.*s", (int)(len - 2), t + 1);
            if (!v || !v[0]) return 0;
            if (strcmp(name, ITD_PATH_WORKSPACE) == 0) *ws = v;
            else if (strstr(name, "project")) ids->project = v;
            else if (strstr(name, "ession")) ids->session = v;
            else if (strstr(name, "peration")) ids->operation = v;
            else if (strstr(name, "run") || strstr(name, "Run")) ids->run = v;
        } else if (!v || strlen(v) != len || strncmp(v, t, len) != 0) {
            return 0;
        }
        t = e ? e + 1 : t + len;
    }
    return i == s->n;
}

static int is_runs_auth(const char *name)
{
    return name && (strncmp(name, "runs:", 5) == 0 || strncmp(name, "auth_sessions:", 14) == 0);
}

static enum MHD_Result handle_api(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    segs s;
    int sr = split_path(path, &s);
    if (sr == -1) { stats_request(method, "bad-path"); return send_error(c, 400, "Malformed percent-encoding (or not UTF-8) in the path"); }
    if (sr == -2) { stats_request(method, "not-found"); return send_error(c, 404, "No such API path"); }
    route r;
    match_route(&s, method, &r);
    enum MHD_Result rc;
    const extra_route *x = NULL;
    emu_ids ids;
    memset(&ids, 0, sizeof ids);
    if (r.op < 0 && !g_opts.newest)
        for (size_t i = 0; i < sizeof v0312_routes / sizeof v0312_routes[0] && !x; i++)
            if (strcmp(v0312_routes[i].method, method) == 0 && ids_match(v0312_routes[i].path, &s, &ids, &r.ws))
                x = &v0312_routes[i];
    const char *opname = x ? x->name : r.op >= 0 ? itd_op_name((itd_op)r.op) : NULL;
    if (r.op >= 0 && is_runs_auth(opname)) ids_match(itd_op_def_of((itd_op)r.op)->path, &s, &ids, &r.ws);
    if (!opname) {
        stats_request(method, r.allow ? "method-not-allowed" : "not-found");
        if (r.allow) {
            char *body = error_json(405, "Method not allowed", NULL);
            rc = send_body(c, 405, "application/json", body, strlen(body), MHD_HTTP_HEADER_ALLOW, r.allow);
        } else {
            rc = send_error(c, 404, "No such API path");
        }
        segs_free(&s);
        return rc;
    }
    stats_request(method, opname);

    /* faults are decided first: a faulted request never reaches the store
     * (a rule of latency or drip alone: served, late or slowly) */
    emu_fault f;
    if (faults_pick(method, path, &f)) {
        emu_log("fault on %s %s: status %d kind %s latency %g ms", method, opname, f.status,
                faults_kind_name(f.kind), f.latency_ms);
        if (f.latency_ms > 0) emu_sleep_ms(f.latency_ms);
        if (f.kind == FK_DRIP) reply_set_drip(&f);   /* whatever answer follows drips */
        if (f.status || (f.kind && f.kind != FK_DRIP)) {
            rc = reply_fault(c, &f, x ? x->success : success_status(r.op));
            reply_set_drip(NULL);
            segs_free(&s);
            return rc;
        }
        if (f.kind == FK_DRIP) stats_fault();
    }
    if (q->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "Request body exceeds %zu bytes", g_opts.max_body);
        rc = send_error(c, 413, msg);
    } else {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
        if (!key || strcmp(key, g_opts.api_key) != 0)
            rc = send_error(c, 401, "The API key is missing or not valid for this workspace");
        else if (strcmp(r.ws, g_opts.workspace) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "No workspace with id %.200s", r.ws);
            rc = send_error(c, 404, msg);
        } else if (is_runs_auth(opname)) {
            rc = strncmp(opname, "runs:", 5) == 0 ? runs_api_handle(c, opname, &ids, q) : auth_handle(c, opname, &ids, q);
        } else {
            rc = do_op(c, &r, q);
        }
    }
    reply_set_drip(NULL);
    segs_free(&s);
    return rc;
}

/* ------------------------------------------------------------ request deadline */

/* --conn-timeout closes idle connections only: a client that drips header
 * bytes is never idle and holds its slot (and thread) for good, and enough
 * such clients lock everyone out.  So every request must arrive whole
 * (headers and body) within --request-timeout seconds of its first byte: a
 * reaper thread shuts the socket of a late one down, and libmicrohttpd then
 * closes it.  Between requests a connection is idle and only --conn-timeout
 * applies; TCP_INFO tells when the next request's bytes began to arrive
 * (without it the deadline counts from the previous answer).  A new
 * connection's deadline counts from its accept. */
enum { CS_RECV = 0, CS_BUSY, CS_IDLE, CS_CUT };
typedef struct conn_slot {
    int fd;
    int state;             /* CS_*, guarded by cs_lock */
    double since;          /* CS_RECV: the request began; CS_IDLE: the answer was queued */
    struct conn_slot *prev, *next;
} conn_slot;
static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cs_cv = PTHREAD_COND_INITIALIZER;
static conn_slot *g_slots;
static pthread_t g_reaper;
static int g_reaper_on, g_reaper_stop;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void slot_open(struct MHD_Connection *c, void **socket_context)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_slot *s = calloc(1, sizeof *s);
    if (!s || !ci) { free(s); return; }   /* untracked: only the idle timeout applies */
    s->fd = ci->connect_fd;
    s->state = CS_RECV;
    s->since = mono_now();
    pthread_mutex_lock(&cs_lock);
    s->next = g_slots;
    if (g_slots) g_slots->prev = s;
    g_slots = s;
    pthread_mutex_unlock(&cs_lock);
    *socket_context = s;
}

/* libmicrohttpd reports the close before it closes the socket, so the
 * reaper never shuts down a descriptor that was reused meanwhile. */
static void slot_close(void **socket_context)
{
    conn_slot *s = *socket_context;
    if (!s) return;
    pthread_mutex_lock(&cs_lock);
    if (s->prev) s->prev->next = s->next;
    else g_slots = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&cs_lock);
    free(s);
    *socket_context = NULL;
}

/* state: CS_BUSY (the request is whole), CS_IDLE (answered), or CS_RECV
 * (headers of a request whose start the reaper did not see: from now). */
static void slot_mark(struct MHD_Connection *c, int state)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_slot *s = ci ? ci->socket_context : NULL;
    if (!s) return;
    pthread_mutex_lock(&cs_lock);
    if (s->state != CS_CUT && (state != CS_RECV || s->state == CS_IDLE)) {
        s->state = state;
        s->since = mono_now();
    }
    pthread_mutex_unlock(&cs_lock);
}

/* Seconds since the socket last received data, or -1 when unknown. */
static double idle_for(int fd)
{
#ifdef TCP_INFO
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len >= sizeof ti)
        return ti.tcpi_last_data_recv / 1000.0;
#else
    (void)fd;
#endif
    return -1;
}

static void *reaper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cs_lock);
    while (!g_reaper_stop) {
        double now = mono_now(), limit = g_opts.request_timeout;
        for (conn_slot *s = g_slots; s; s = s->next) {
            if (s->state == CS_IDLE) {
                double idle = idle_for(s->fd);
                /* bytes after the answer (50 ms of slack for the clock's grain): a request began */
                if (idle < 0) s->state = CS_RECV;
                else if (now - idle > s->since + 0.05) { s->state = CS_RECV; s->since = now - idle; }
            }
            if (s->state == CS_RECV && now - s->since > limit) {
                shutdown(s->fd, SHUT_RDWR);
                s->state = CS_CUT;
                stats_request_cut();
                emu_log("connection closed: no whole request within %g s", limit);
            }
        }
        /* a tenth of the deadline, within 20..200 ms */
        double step = limit / 10;
        if (step < 0.02) step = 0.02;
        if (step > 0.2) step = 0.2;
        emu_cond_wait_until(&cs_cv, &cs_lock, emu_now() + step);
    }
    pthread_mutex_unlock(&cs_lock);
    return NULL;
}

/* ------------------------------------------------------------ libmicrohttpd glue */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req *q = *con_cls;
    if (!q) {
        /* first call: headers only.  A body announced above the limit is refused
         * now, without reading it (the connection then closes). */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > g_opts.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "Request body exceeds %zu bytes", g_opts.max_body);
            stats_request(method, "too-large");
            slot_mark(c, CS_BUSY);
            return send_error(c, 413, msg);
        }
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *con_cls = q;
        slot_mark(c, CS_RECV);   /* a request whose first bytes the reaper did not see */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->too_big || q->len + n > g_opts.max_body) {   /* chunked bodies: drain, answer 413 at the end */
            q->too_big = 1;
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 1024;
            while (cap < q->len + n + 1) cap *= 2;
            char *nb = realloc(q->body, cap);
            if (!nb) return MHD_NO;
            q->body = nb;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        q->body[q->len] = 0;
        return MHD_YES;
    }
    slot_mark(c, CS_BUSY);   /* whole: the deadline is met */
    emu_log("%s %s", method, url);
    size_t blen = strlen(EMU_BASE_PATH);
    if (strncmp(url, EMU_BASE_PATH, blen) == 0 && url[blen] == '/') return handle_api(c, method, url + blen + 1, q);
    if (strncmp(url, "/_emulator/", 11) == 0) return control_handle(c, method, url + 11, q);
    if (strncmp(url, "/_receiver/", 11) == 0) return receiver_handle(c, method, url + 11, q);
    stats_request(method, "not-found");
    return send_error(c, 404, "Not found: the Jobs API is under " EMU_BASE_PATH);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    req *q = *con_cls;
    if (q) { free(q->body); free(q); }
    *con_cls = NULL;
    slot_mark(c, CS_IDLE);
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) { stats_connection(); slot_open(c, socket_context); }
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) { stats_connection_closed(); slot_close(socket_context); }
}

/* Paths and query values reach us undecoded; see the top of the file. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

int http_start(void)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)g_opts.port);
    if (inet_pton(AF_INET, g_opts.host, &sin.sin_addr) != 1) {
        fprintf(stderr, "intuned-emulator: --host must be an IPv4 address, got %s\n", g_opts.host);
        return -1;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (g_opts.verbose) flags |= MHD_USE_ERROR_LOG;
    g_daemon = MHD_start_daemon(flags, (uint16_t)g_opts.port, NULL, NULL, handler, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_NOTIFY_CONNECTION, notify, NULL,
                                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)g_opts.conn_timeout,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)g_opts.max_conns,
                                MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                MHD_OPTION_END);
    if (!g_daemon) {
        fprintf(stderr, "intuned-emulator: cannot listen on %s:%d\n", g_opts.host, g_opts.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : g_opts.port;
    snprintf(g_origin, sizeof g_origin, "http://%s:%d", g_opts.host, port);
    if (g_opts.request_timeout > 0) {
        if (pthread_create(&g_reaper, NULL, reaper, NULL) != 0) {
            fprintf(stderr, "intuned-emulator: cannot start the request deadline thread\n");
            return -1;
        }
        g_reaper_on = 1;
    }
    return 0;
}

void http_stop(void)
{
    if (g_reaper_on) {
        emu_thread_stop(g_reaper, &cs_lock, &cs_cv, &g_reaper_stop);
        g_reaper_on = 0;
    }
    if (g_daemon) MHD_stop_daemon(g_daemon);
    g_daemon = NULL;
    receiver_shutdown();
}
