/*
 * store.h - jobs and runs in memory (store.c): their API documents, and the
 * lock that guards them.  Changes queue their file writes (persist.h) on the
 * caller's emu_writes, which the caller flushes after unlocking.
 */
#ifndef EMU_STORE_H
#define EMU_STORE_H

#include "emu.h"

extern pthread_mutex_t g_lock;
/* Broadcast (with g_lock) when a job's next run time may have changed: the scheduler waits on it. */
extern pthread_cond_t g_jobs_cv;

int store_init(void);                /* loads the data dir; -1 on error (message printed) */
void store_shutdown(void);           /* after the threads that use the store have stopped */

/* Every call below runs with g_lock held. */
emu_job *store_job_get(const char *project, const char *id);
int store_job_create(const char *project, itd_job_input *in, emu_writes *w, emu_job **out, itd_error *err);
/* The newest API's create body (JobInputNewest). */
int store_job_create_newest(const char *project, itd_job_update_input *in, emu_writes *w, emu_job **out,
                            itd_error *err);
int store_job_update(emu_job *j, itd_job_update_input *up, emu_writes *w, itd_error *err);
/* The job and its runs go (take them off the runner's work list first: runner_forget_job). */
void store_job_delete(emu_job *j, emu_writes *w);
/* ACTIVE (resuming: the next run counts from now) or PAUSED, with a reason. */
int store_job_set_state(emu_job *j, const char *status, const char *reason, emu_writes *w);
int store_job_paused(const emu_job *j);
/* A due time passed without a run (paused, --no-scheduler): next_run_time moves past now. */
void store_job_skip(emu_job *j, double now, emu_writes *w);
/* The project's jobs as a JSON array in creation order (a cJSON tree, owned
 * by the caller): Job documents, or in newest mode JobListItemV2 ones. */
cJSON *store_jobs_array(const char *project);
/* Calls fn on every job (fn may change a job, not add or remove one). */
void store_jobs_each(void (*fn)(emu_job *j, void *ud), void *ud);
double store_next_due(void);         /* earliest next_run of all jobs (schedule clock), or -1 */

emu_run *store_run_get(const char *id);
/* A new run of j, PENDING (PAUSED when the job is), not yet on the work list
 * (runner_submit).  `when`, on the schedule clock, becomes the job's
 * last_run_time: the time a scheduled run was due, or now. */
emu_run *store_run_create(emu_job *j, const char *type, double when, emu_writes *w);
/* Calls fn on every run. */
void store_runs_each(void (*fn)(emu_run *r, void *ud), void *ud);
void store_run_release(emu_run *r);  /* drop a worker reference; frees a gone run */
void store_run_free(emu_run *r);     /* free a run that is in no table (and all it owns) */
/* Runs of a job, newest first, as run documents of a form (render.h: RUN_*). */
cJSON *store_runs_array(const char *project, const char *job_id, int form);
/* Results of a run (array of sink result payloads), a cJSON tree owned by the caller. */
cJSON *store_run_results(const emu_run *r);

#endif
