/*
 * auth_sessions.h - the Auth Sessions API (auth_sessions.c): sessions per
 * project, and their create / update / validate operations, which finish
 * after --auth-op-ms (times --time-scale).  Its own lock; never called with
 * g_lock held.
 */
#ifndef EMU_AUTH_SESSIONS_H
#define EMU_AUTH_SESSIONS_H

#include <microhttpd.h>
#include "emu.h"
#include "reply.h"

/* An auth-sessions operation ("auth_sessions:get", ...; the v0.3.12-only
 * ones too: "auth_sessions:update_v0312", ...). */
enum MHD_Result auth_handle(struct MHD_Connection *c, const char *op, const emu_ids *ids, const req *q);

/* What a run (or a job) using session `id` of `project` finds. */
enum {
    AS_USE_OK = 0,        /* usable (an EXPIRED one re-created, with auto_recreate) */
    AS_USE_UNKNOWN,       /* no such session */
    AS_USE_EXPIRED,       /* EXPIRED and not re-created (auto_recreate off, or its create fails) */
    AS_USE_FULL,          /* a runtime session could not be kept: at the bound */
    AS_USE_BAD_ID         /* a runtime session's id is too long to keep (over 200 characters) */
};
/* runtime: the run's runtime member, whose id names (or makes) a RUNTIME session. */
int auth_session_use(const char *project, const char *id, int runtime, int auto_recreate);
int auth_session_exists(const char *project, const char *id);
/* Counters for /_emulator/stats-like views: sessions and operations kept. */
cJSON *auth_view(void);
void auth_shutdown(void);

#endif
