/*
 * render.h - the API documents of jobs and runs per API version (render.c),
 * rendered at answer time from the one internal truth of each (a job's
 * superset document and decoded object, a run's struct).  Called with
 * g_lock held (the caller reads the store).
 */
#ifndef EMU_RENDER_H
#define EMU_RENDER_H

#include "emu.h"

/* The newest API's job: JobV2 (get job) or, list_item=1, JobListItemV2. */
cJSON *render_job_newest(const emu_job *j, int list_item);

enum {
    RUN_V0312 = 0,   /* JobRun of v0.3.12 (list item) */
    RUN_MIXED,       /* v0.3.12's keys and the newest API's: the v0.3.12 mode's answer to the
                        newest-only operations (get one run, paged list) */
    RUN_NEWEST       /* JobRunV2 */
};
cJSON *render_run(const emu_run *r, int form);
/* The emulator's own view of a run (GET /_emulator/runs/{runId}): payload
 * states, attempts, deliveries, the concurrency reached. */
cJSON *render_run_view(const emu_run *r);

#endif
