/*
 * deliver.h - sink delivery (deliver.c): a finished payload's result POSTed
 * to a webhook (loopback only, with back-off) or written as an S3 file.
 */
#ifndef EMU_DELIVER_H
#define EMU_DELIVER_H

#include "emu.h"

/* Resolves the S3 directory (--s3-dir, DATA-DIR/s3 or a new temp dir); 0 or
 * -1 (message printed).  Before any thread starts. */
int deliver_init(void);
/* Removes that temp dir when nothing was written there; frees g_opts.s3_dir. */
void deliver_shutdown(void);
/* Shutdown (SIGTERM, SIGINT): transfers in progress give up at once, and so
 * do back-off waits and deliver_sleep; whatever calls come later give up at
 * once too.  Any thread, any time. */
void deliver_abort(void);
/* Waits `seconds` (on CLOCK_MONOTONIC: a step of the wall clock neither
 * stretches nor cuts it) unless deliver_abort comes first; 1 when it did. */
int deliver_sleep(double seconds);

enum { DELIVER_INTERRUPTED = 0, DELIVER_OK = 1, DELIVER_FAILED = 2, DELIVER_SKIPPED = 3, DELIVER_NO_SINK = 4 };
/* Deliver payload i's result `body` by the run's sink, without g_lock: a
 * DELIVER_* (FAILED with *why, a static text; INTERRUPTED: still pending).
 * *attempts counts the POSTs (or writes) made. */
int deliver_result(const emu_run *r, size_t i, const char *body, int failed, long *attempts, const char **why);
/* 1 when a webhook URL targets the emulator's own API or control endpoints. */
int deliver_webhook_is_self(const char *url);

#endif
