/*
 * emu.h - the base of intuned-emulator, a local server of the Intuned Jobs
 * API (issue 3): its options, small utilities (util.c) and the types the
 * rooms share (jobs, runs, deferred writes).  Each room has a header of its
 * own with only what the others call; a room includes the headers of the
 * rooms it calls and nothing else, so its #include lines are its arrows in
 * this picture (A -> B: A calls B):
 *
 *   main.c       options, startup, shutdown     -> deliver faults http runner
 *                                                  scheduler store runs_api
 *                                                  auth_sessions
 *   http.c       libmicrohttpd server, the API  -> reply control receiver store
 *                routes (from the operation        render persist runner
 *                table, ops.c, and v0.3.12's       emu_sched deliver faults
 *                own Run API / Auth Sessions       stats runs_api auth_sessions
 *                paths), request bodies per
 *                API version, request deadline
 *   control.c    /_emulator/...: faults, stats, -> reply receiver store render
 *                health, receivers, a run's        faults stats runs_api
 *                own view and results, Run API     auth_sessions
 *                runs' view and cancel
 *   runs_api.c   the Run API: start, result,    -> store runner deliver persist
 *                v0.3.12's sync run; a run is      auth_sessions reply
 *                a one-payload emu_run the
 *                runner executes (in memory)
 *   auth_sessions.c  Auth Sessions: sessions,   -> reply
 *                create/update/validate
 *                operations timed by the clock
 *                (own lock, in memory)
 *   receiver.c   /_receiver/NAME, its bounds    -> reply stats
 *   reply.c      answers: JSON, error bodies,   -> stats (faults.h: the rule's
 *                injected faults; request paths    type only)
 *   scheduler.c  the thread that fires          -> store runner persist
 *                scheduled runs                    emu_sched
 *   runner.c     run workers: payload calls,    -> store persist deliver
 *                retries, maxConcurrentRequests
 *   deliver.c    webhook delivery (loopback
 *                guard, back-off), S3 files
 *   store.c      jobs and runs in memory: one   -> render persist emu_sched
 *                superset document per job, the
 *                cached GET job answer
 *   render.c     jobs and runs as API documents
 *                per API version (--api-version)
 *   persist.c    the data dir: atomic writes,
 *                the run journal, loading (what
 *                it reads goes back to the store
 *                through callbacks it is given)
 *   sched.c      (emu_sched.h) next run time by the core's engine, input
 *                checks, the schedule clock (--schedule-scale)
 *   faults.c     injected fault rules
 *   stats.c      counters for /_emulator/stats
 *   util.c       this header: options, log, clocks, memory, hashing
 *
 * No arrow points back up: the rooms and their calls form no cycle.
 *
 * Every API document is validated and serialized by the core (codec.h):
 * the emulator builds cJSON trees and passes them through the same schemas
 * the client decodes with, so both sides agree on the wire format.
 *
 * Locking: one mutex (g_lock, store.h) guards jobs, runs (the Run API's
 * too) and the runner's work list; faults, stats, the receiver, delivery
 * back-offs, the persistence layer and the auth sessions have their own
 * small locks (auth_sessions.c's is never taken with g_lock held, nor
 * g_lock under it).  Disk writes happen outside g_lock (see persist_flush).
 */
#ifndef EMU_H
#define EMU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "call.h"    /* itd_rng */
#include "codec.h"
#include "ops.h"

#define EMU_BASE_PATH "/api/v1/workspace"

/* ------------------------------------------------------------- options */
typedef struct emu_opts {
    const char *host;
    int port;
    const char *api_key;       /* SECRET: never logged */
    const char *workspace;
    const char *data_dir;      /* NULL: in memory */
    char *s3_dir;              /* owned (resolved at startup by deliver_init) */
    uint64_t seed;
    double time_scale;         /* multiplies retry and delivery back-off waits, auth-session operations */
    double schedule_scale;     /* multiplies the time between scheduled runs (<= 0: 1) */
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
    int newest;                /* --api-version: 0 v0.3.12 (default), 1 the newest API (SDK v0.5.2) */
    double auth_op_ms;         /* duration of an auth-session create/update/validate (times time_scale) */
    unsigned max_api_runs;     /* Run API runs kept (runs_api.c) */
    unsigned max_auth_sessions;/* auth sessions kept, and as many operations (auth_sessions.c) */
} emu_opts;

/* Set once by main() before any thread starts; read-only afterwards. */
extern emu_opts g_opts;
extern char g_origin[128];     /* "http://127.0.0.1:PORT", set by http_start */

/* ------------------------------------------------------------- util.c */
void emu_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double emu_now(void);              /* Unix seconds */
void emu_sleep_ms(double ms);
/* pthread_cond_timedwait until `when` (Unix seconds, CLOCK_REALTIME like
 * emu_now); when < 0: an untimed wait.  `lock` is held. */
void emu_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *lock, double when);
/* Stops a thread that waits on cv under lock while !*stop: sets *stop, wakes it, joins it. */
void emu_thread_stop(pthread_t t, pthread_mutex_t *lock, pthread_cond_t *cv, int *stop);
char *emu_strdup(const char *s);   /* aborts on OOM: the emulator cannot go on without memory */
void *emu_xmalloc(size_t n);
void *emu_xcalloc(size_t n, size_t m);
/* Deterministic 64-bit FNV-1a of a byte string, with a seed. */
uint64_t emu_hash(const void *p, size_t n, uint64_t seed);
/* Stable UUID-shaped id derived from a name ("project id"). buf >= 37. */
void emu_stable_uuid(const char *name, char *buf);
/* A date-time string, or null for t < 0 (and for a time with no date-time form). */
cJSON *emu_time_json(double t);

/* The PRNG (fault rates, run ids) is the core's one: itd_rng (call.h). */

/* ------------------------------------------------------------- shared types */
typedef struct emu_job {
    char *project, *id;
    cJSON *doc;          /* the superset Job document (store.c): the truth, persisted */
    itd_job *obj;        /* doc decoded by itd_Job (for the runner) */
    char *json;          /* GET job's answer in the emulator's API version (store.c) */
    size_t json_len;
    double next_run;     /* on the schedule clock (emu_sched.h), < 0 when none */
    uint64_t seq;        /* creation order (list order) */
    struct emu_job *hnext;
} emu_job;

enum { P_WAIT = 0, P_RUNNING, P_OK, P_FAIL };
typedef struct emu_pstate {
    int state;           /* P_* */
    int attempts;        /* simulated calls made */
    double ready_at;     /* Unix seconds: not before (retry back-off) */
    int delivery;        /* 0 pending, 1 delivered, 2 failed, 3 skipped, 4 none (no sink), 5 delivering */
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
    int standalone;      /* a Run API run (runs_api.c): one payload, no job, kept by runs_api.c
                          * (not the store) and never persisted */
    long deliveries_ok, deliveries_failed, deliveries_skipped, delivery_attempts;
    uint64_t seq;
    struct emu_run *hnext;   /* id hash chain (store.c) */
    struct emu_run *anext;   /* list of runs with work left (runner.c) */
    int active;              /* on that list */
    struct run_disk *disk;   /* persist.c: what the run's file holds (--data-dir), owned */
} emu_run;

/* The path arguments of a Run API or Auth Sessions operation (borrowed
 * segments; NULL when the path has none). */
typedef struct emu_ids { const char *project, *run, *session, *operation; } emu_ids;

/* Disk writes deferred while g_lock is held (persist.h queues and flushes them). */
typedef struct emu_writes { struct emu_write *head; } emu_writes;

#endif
