/*
 * persist.h - the data dir (persist.c): jobs and runs as files, written
 * after g_lock is released, and read back at start.  Without --data-dir
 * every call is a no-op (loading finds nothing).
 */
#ifndef EMU_PERSIST_H
#define EMU_PERSIST_H

#include "emu.h"

/* Under g_lock: render what the file must now say and queue it on w. */
void persist_job_save(const emu_job *j, emu_writes *w);
void persist_job_remove(const emu_job *j, emu_writes *w);
void persist_run_save(emu_run *r, emu_writes *w);   /* appends to the run's journal when it can */
void persist_run_remove(const emu_run *r, emu_writes *w);
void persist_run_free(emu_run *r);                  /* frees r->disk (the run is being freed) */
/* No lock held: writes (atomically) what w holds, and empties it. */
void persist_flush(emu_writes *w);

/* What the loader hands back (with g_lock held).  job: the job (owned by the
 * callee from then on) is kept, 0, or refused and freed, -1 with err.
 * run_wanted: 1 when a run of that job and id is still wanted (its job
 * exists, the id is new); a run file that is not wanted is removed.  run: the
 * run, owned by the callee, which keeps it (the loader then records what its
 * file says). */
typedef struct persist_loader {
    int (*job)(emu_job *j, itd_error *err);
    int (*run_wanted)(const char *project, const char *job_id, const char *run_id);
    void (*run)(emu_run *r);
} persist_loader;
/* Creates the data dir (and its jobs/, runs/) and loads it; 0, or -1 with a
 * message printed. */
int persist_load(const persist_loader *l);
void persist_shutdown(void);

#endif
