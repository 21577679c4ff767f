/*
 * emu.h - internals of intuned-emulator, a local server of the Intuned Jobs
 * API (issue 3).  Layout:
 *   main.c    options, startup, shutdown
 *   http.c    libmicrohttpd handler: routing, auth, operations, control
 *             endpoints (/_emulator/...), the webhook receiver (/_receiver/...)
 *   store.c   jobs and runs in memory, their JSON documents, persistence
 *   runner.c  run workers (simulated API calls, retries, concurrency),
 *             sink delivery (webhook, S3 directory), the scheduler
 *   faults.c  injected faults and the seeded PRNG
 *   sched.c   next run time of a schedule (intervals and calendars)
 *
 * Every API document is validated and serialized by the core (intuned.h):
 * the emulator builds cJSON trees and passes them through the same schemas
 * the client decodes with, so both sides agree on the wire format.
 *
 * Locking: one mutex (g_lock, store.c) guards jobs, runs and the runner's
 * queue; faults.c and the receiver have their own small locks.  Disk writes
 * happen outside g_lock (see emu_persist).
 */
#ifndef EMU_H
#define EMU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "intuned.h"

#define EMU_BASE_PATH "/api/v1/workspace"

/* ------------------------------------------------------------- options */
typedef struct emu_opts {
    const char *host;
    int port;
    const char *api_key;       /* SECRET: never logged */
    const char *workspace;
    const char *data_dir;      /* NULL: in memory */
    char *s3_dir;              /* owned (resolved at startup) */
    uint64_t seed;
    double time_scale;         /* multiplies retry and delivery back-off waits */
    double api_latency_ms;     /* duration of one simulated API call */
    size_t max_body;           /* request bodies above this get 413 */
    unsigned conn_timeout;     /* seconds of idleness before a connection is closed */
    double request_timeout;    /* seconds to receive a whole request (headers and body); 0: none */
    size_t receiver_max_bytes; /* /_receiver/: bytes kept across all names */
    unsigned receiver_max_names; /* /_receiver/: names kept */
    unsigned max_conns;
    int verbose;
    const char **fail_apis;    /* apiNames that always fail (argv strings) */
    size_t nfail_apis;
    int delivery_attempts;     /* webhook attempts per result */
    int workers;               /* run worker threads */
    int no_scheduler;          /* 1: schedules give next_run_time but start no runs */
} emu_opts;

/* Set once by main() before any thread starts; read-only afterwards. */
extern emu_opts g_opts;
extern char g_origin[128];     /* "http://127.0.0.1:PORT" */

void emu_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double emu_now(void);              /* Unix seconds */
void emu_sleep_ms(double ms);
char *emu_strdup(const char *s);   /* aborts on OOM: the emulator cannot go on without memory */
void *emu_xmalloc(size_t n);
void *emu_xcalloc(size_t n, size_t m);
/* Deterministic 64-bit FNV-1a of a byte string, with a seed. */
uint64_t emu_hash(const void *p, size_t n, uint64_t seed);
/* Stable UUID-shaped id derived from a name ("project id"). buf >= 37. */
void emu_stable_uuid(const char *name, char *buf);

/* ------------------------------------------------------------- PRNG */
typedef struct emu_rng { uint64_t s; } emu_rng;
void emu_rng_seed(emu_rng *r, uint64_t seed);
uint64_t emu_rng_next(emu_rng *r);   /* splitmix64 */
double emu_rng_unit(emu_rng *r);     /* [0,1) */

/* ------------------------------------------------------------- store */
extern pthread_mutex_t g_lock;
extern pthread_cond_t g_work_cv;     /* signalled when runnable work may exist */

typedef struct emu_job {
    char *project, *id;
    cJSON *doc;          /* the Job document (v0.3.12 form): the truth, persisted */
    itd_job *obj;        /* doc decoded by itd_Job (for the runner) */
    char *json;          /* itd_encode of obj: GET job answers this */
    size_t json_len;
    double next_run;     /* Unix seconds, < 0 when none */
    uint64_t seq;        /* creation order (list order) */
    struct emu_job *hnext;
} emu_job;

enum { P_WAIT = 0, P_RUNNING, P_OK, P_FAIL };
typedef struct emu_pstate {
    int state;           /* P_* */
    int attempts;        /* simulated calls made */
    double ready_at;     /* Unix seconds: not before (retry back-off) */
    int delivery;        /* 0 pending, 1 delivered, 2 failed, 3 skipped, 4 none (no sink) */
    const char *delivery_error; /* why it failed (a static text), or NULL; not persisted */
    char *result;        /* JobSinkResultPayload JSON of the final outcome, owned */
} emu_pstate;

typedef struct emu_run {
    char *id, *project, *job_id;
    char type[12];       /* MANUAL | SCHEDULED */
    char status[12];     /* PENDING | PAUSED | COMPLETED | FAILED | TERMINATED */
    double start_time, end_time, updated; /* end_time < 0 while running */
    itd_job *snap;       /* the job as it was when the run started: owned, immutable */
    size_t n;
    emu_pstate *ps;      /* n entries */
    int limit;           /* maxConcurrentRequests (0 = no limit) */
    int in_flight, max_in_flight;
    int refs;            /* workers holding this run outside g_lock */
    int gone;            /* removed from the store (job deleted): free when refs == 0 */
    long deliveries_ok, deliveries_failed, deliveries_skipped, delivery_attempts;
    uint64_t seq;
    struct emu_run *hnext;   /* id hash chain */
    struct emu_run *anext;   /* list of runs with work left (runner) */
    int active;              /* on that list */
    struct run_disk *disk;   /* store.c: what the run's file holds (--data-dir), owned */
} emu_run;

/* Deferred disk writes, collected under g_lock and flushed after unlocking. */
typedef struct emu_write {
    char *name;          /* path relative to the data dir */
    char *content;       /* NULL: unlink */
    uint64_t version;
    int mode;            /* store.c's EW_*: replace, append a journal record, journal snapshot */
    struct emu_write *next;
} emu_write;
typedef struct emu_writes { emu_write *head; } emu_writes;
void emu_persist(emu_writes *w);     /* writes (atomically) and frees the list; no lock held */

int store_init(void);                /* loads the data dir; -1 on error (message printed) */
void store_shutdown(void);
emu_job *store_job_get(const char *project, const char *id);
/* Every call below runs with g_lock held. */
int store_job_create(const char *project, itd_job_input *in, emu_writes *w, emu_job **out, itd_error *err);
int store_job_update(emu_job *j, itd_job_update_input *up, emu_writes *w, itd_error *err);
void store_job_delete(emu_job *j, emu_writes *w);
int store_job_set_state(emu_job *j, const char *status, const char *reason, emu_writes *w);
void store_job_touch_run(emu_job *j, double when, emu_writes *w);   /* last_run_time */
/* The project's jobs as a JSON array in creation order (a cJSON tree, owned by the caller). */
cJSON *store_jobs_array(const char *project);
emu_run *store_run_get(const char *id);
emu_run *store_run_create(emu_job *j, const char *type, emu_writes *w);
/* The run as a JobRun document; head=1 adds the newer API's keys. */
cJSON *store_run_doc(const emu_run *r, int head);
/* Runs of a job, newest first, as JobRun documents. */
cJSON *store_runs_array(const char *project, const char *job_id, int head);
void store_run_save(emu_run *r, emu_writes *w);
void store_run_release(emu_run *r);  /* drop a worker reference; frees a gone run */
/* Re-render a job's cached JSON after its doc changed; 0 or -1 (doc invalid). */
int store_job_render(emu_job *j, itd_error *err);
void store_schedule_tick(double now, emu_writes *w);   /* scheduler: start due runs */
double store_next_due(void);                           /* earliest next_run of active jobs, or -1 */
/* Results of a run (array of sink result payloads), a cJSON tree owned by the caller. */
cJSON *store_run_results(const emu_run *r);

/* ------------------------------------------------------------- runner */
int runner_start(void);
void runner_stop(void);
void runner_enqueue(emu_run *r);     /* g_lock held: puts the run on the work list */
void runner_deactivate(emu_run *r);  /* g_lock held: takes it off */
/* Statuses: g_lock held. */
void runner_pause_job(const char *project, const char *job_id, emu_writes *w);
void runner_resume_job(const char *project, const char *job_id, emu_writes *w);
void runner_terminate(emu_run *r, emu_writes *w);
void runner_finish_if_done(emu_run *r);
/* 1 when a webhook URL targets the emulator's own API or control endpoints. */
int runner_webhook_is_self(const char *url);

/* ------------------------------------------------------------- faults */
typedef enum { FK_NONE = 0, FK_DROP, FK_MALFORMED, FK_TRUNCATED, FK_CONTENT_TYPE, FK_DRIP } emu_fault_kind;
typedef struct emu_fault {
    int status;              /* 0: none */
    double rate;             /* probability per matching request when count < 0 */
    long count;              /* apply to the next N matching requests; < 0: use rate */
    char retry_after[32];    /* Retry-After value, "" for none */
    double latency_ms;
    emu_fault_kind kind;
    /* drip: the answer's body goes out drip_bytes at a time, drip_ms apart
     * (pauses capped at 200 ms per answer), chunked or with Content-Length */
    double drip_ms;
    int drip_bytes;
    int drip_chunked;
    char match[256];         /* substring of the request path, "" = any */
    char method[16];         /* "" = any */
} emu_fault;
/* Parse one rule from JSON (object); 0 or -1 with msg. */
int faults_parse(const cJSON *o, emu_fault *f, char *msg, size_t len);
int faults_add(const emu_fault *f);
void faults_clear(void);
cJSON *faults_list(void);
/* Decide (once, before any state is touched) whether this request is faulted. */
int faults_pick(const char *method, const char *path, emu_fault *out);
const char *faults_kind_name(emu_fault_kind k);

/* ------------------------------------------------------------- schedule */
/* Next run strictly after `now` (Unix seconds) of a schedule, or -1. */
double sched_next(const itd_schedule *s, double now);
/* The emulator's checks of a schedule on input (value ranges, interval floor,
 * sizes); 0, or -1 with err's path naming the field ("schedule.calendars[1].second"). */
int sched_validate(const itd_schedule *s, itd_error *err);

/* ------------------------------------------------------------- stats */
void stats_connection(void);
void stats_request(const char *method, const char *op);
void stats_create(void);
void stats_fault(void);
cJSON *stats_json(void);

/* ------------------------------------------------------------- http */
int http_start(void);     /* binds, fills g_origin; 0 or -1 */
void http_stop(void);

#endif
