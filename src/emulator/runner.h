/*
 * runner.h - executing runs (runner.c): worker threads that make the
 * payloads' simulated API calls under the job's retry policy and
 * maxConcurrentRequests, and hand results to delivery (deliver.h).
 */
#ifndef EMU_RUNNER_H
#define EMU_RUNNER_H

#include "emu.h"

/* Starts the workers; runs loaded from the data dir with work left continue. */
int runner_start(void);
/* Shutdown, first thing after the signal: calls, deliveries and waits in
 * progress give up and the workers take no more work (runner_stop then joins
 * them).  Work submitted afterwards is kept, and persisted, for a restart. */
void runner_abort(void);
void runner_stop(void);
/* Every call below runs with g_lock held. */
/* A new run (store_run_create) goes on the work list; a run without payloads
 * completes at once.  Its file is queued on w. */
void runner_submit(emu_run *r, emu_writes *w);
/* The job's runs leave the work list (before store_job_delete frees them). */
void runner_forget_job(const char *project, const char *job_id);
/* The job's PENDING runs become PAUSED, and back. */
void runner_pause_job(const char *project, const char *job_id, emu_writes *w);
void runner_resume_job(const char *project, const char *job_id, emu_writes *w);
void runner_terminate(emu_run *r, emu_writes *w);

#endif
