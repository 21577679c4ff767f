/*
 * runs_api.h - the Run API (runs_api.c): start one run of a project API and
 * read its result; the runs execute on the job runs' workers (runner.h).
 */
#ifndef EMU_RUNS_API_H
#define EMU_RUNS_API_H

#include <microhttpd.h>
#include "emu.h"
#include "reply.h"

/* "runs:start", "runs:result", and v0.3.12's "runs:sync". */
enum MHD_Result runs_api_handle(struct MHD_Connection *c, const char *op, const emu_ids *ids, const req *q);
/* /_emulator/api-runs/{runId}[/cancel]: the emulator's own view of a Run
 * API run (as /_emulator/runs/{runId}), or its cancel (a user's cancel:
 * canceled, reason cancelled-user-action); NULL when there is no such run.
 * cancel: *status gets 0 (canceled), or 409 when it had finished. */
cJSON *runs_api_view(const char *run_id);
cJSON *runs_api_cancel(const char *run_id, int *status);
/* GET /_emulator/api-runs: {runs, started, max, bytes}: the runs kept, and
 * every start made since the emulator started (a start is never repeated:
 * "started" counts the starts answered 201). */
cJSON *runs_api_counts(void);
/* After runner_stop: frees every run. */
void runs_api_shutdown(void);

#endif
