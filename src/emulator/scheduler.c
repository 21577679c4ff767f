/*
 * scheduler.c - the thread that fires scheduled runs.
 *
 * It sleeps until the earliest next_run of all jobs (read on the schedule
 * clock, emu_sched.h, and turned into wall time; woken early when a job's next
 * run time changes), then for each job whose time has come starts a run of
 * type SCHEDULED (the reference's type for runs "triggered by the schedule")
 * and the job's next run counts on from the time it was due: its
 * last_run_time is that time.  A paused job, or any job under
 * --no-scheduler, starts nothing: its next_run_time only moves past now.  A
 * scheduler that fell behind (a loaded machine, a resumed job) fires one run
 * per job and goes on from now, never a burst of the runs it missed.
 */
#include <stdio.h>
#include "persist.h"
#include "runner.h"
#include "emu_sched.h"
#include "scheduler.h"
#include "store.h"

static pthread_t g_thread;
static int g_started;
static int g_stop;               /* guarded by g_lock */

typedef struct tick { double now; emu_writes *w; } tick;

static void fire_if_due(emu_job *j, void *ud)
{
    const tick *t = ud;
    if (j->next_run < 0 || j->next_run > t->now) return;
    if (store_job_paused(j) || g_opts.no_scheduler) {
        store_job_skip(j, t->now, t->w);
        return;
    }
    emu_run *r = store_run_create(j, "SCHEDULED", j->next_run, t->w);
    runner_submit(r, t->w);
    emu_log("scheduled run %s of %s/%s", r->id, j->project, j->id);
}

static void *scheduler(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_stop) {
        emu_writes w = { NULL };
        tick t = { sched_clock_now(), &w };
        store_jobs_each(fire_if_due, &t);
        double due = store_next_due();
        pthread_mutex_unlock(&g_lock);
        persist_flush(&w);
        pthread_mutex_lock(&g_lock);
        if (g_stop) break;
        /* wake at the next due time, but at least every second: the wall
         * clock may jump, and a wait is woken when a job changes */
        double until = emu_now() + 1.0;
        if (due >= 0 && sched_clock_wall(due) < until) until = sched_clock_wall(due);
        emu_cond_wait_until(&g_jobs_cv, &g_lock, until);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int scheduler_start(void)
{
    if (pthread_create(&g_thread, NULL, scheduler, NULL) != 0) return -1;
    g_started = 1;
    return 0;
}

void scheduler_stop(void)
{
    if (!g_started) return;
    emu_thread_stop(g_thread, &g_lock, &g_jobs_cv, &g_stop);
    g_started = 0;
}
