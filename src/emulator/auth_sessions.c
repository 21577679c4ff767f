/*
 * auth_sessions.c - the Auth Sessions API: list, get, delete, and the
 * create / update / validate operations with their result endpoints, in
 * both API versions' shapes (--api-version), plus the checks a run or a job
 * makes of the session it names (auth_session_use, auth_session_exists).
 *
 * An operation has no worker: its state follows from the clock.  It is
 * `pending` for the first half of --auth-op-ms (times --time-scale),
 * `in_progress` (with a runId) for the second half, then final; the final
 * outcome is decided, and applied to its session, the first time anyone
 * looks after that (every entry point first calls advance()).  v0.3.12 has
 * no in_progress: it answers pending.
 *
 * Outcomes (the reference gives none, so these are ours; --help lists them):
 *  - a session whose id starts with "fail", or whose create / update
 *    parameters hold "fail": true, cannot be created: its create fails (and
 *    the session goes), its update fails (EXPIRED), its validate fails
 *    (EXPIRED) whatever autoRecreate says;
 *  - a session whose id starts with "stale" (or that is EXPIRED) fails its
 *    check: validate re-creates it (READY) with autoRecreate, and fails
 *    (EXPIRED, check-attempts-failed) without;
 *  - otherwise create, update and validate end done, the session READY;
 *  - deleting a session cancels its operations still running
 *    (canceled, reason cancelled-user-action).
 * A session is PENDING from its create's start until the create ends.
 * v0.3.12 mode also has requested_more_info (create / update parameters
 * "otp": true or "choice": true; answered by resume) and the recorder.
 *
 * Bounds: at most --max-auth-sessions sessions (a create beyond gets 507)
 * and as many operations; a new operation beyond that drops the oldest
 * finished one, or gets 429 when none has finished.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_sessions.h"

typedef struct as_session {
    char *project, *id;
    char type[12];      /* CREDENTIALS | RECORDER | RUNTIME */
    char status[10];    /* PENDING | READY | EXPIRED */
    int fail;           /* the "fail": true marker of its last create / update */
    uint64_t seq;
    struct as_session *next;
} as_session;

enum { OP_CREATE = 0, OP_UPDATE, OP_VALIDATE };
enum { OS_RUNNING = 0, OS_ASKING, OS_DONE, OS_FAILED, OS_CANCELED };   /* ASKING: v0.3.12's requested_more_info */

typedef struct as_op {
    char *project, *session_id;
    char id[24];          /* operationId */
    char run_id[24];      /* the run of its create / check flow (in_progress) */
    int kind;             /* OP_* */
    int state;            /* OS_* */
    int v0312_path;       /* an update started at v0.3.12's path (its result is there too) */
    int auto_recreate;    /* validate */
    int ask;              /* v0.3.12: asks for more info when its time is up: 1 otp, 2 multiple choice */
    int wrong;            /* resumed with the input "wrong": it fails */
    char info_id[24];     /* the info request's id (resume names it) */
    double t_mid, t_end;  /* pending until t_mid, in_progress until t_end (Unix seconds) */
    const char *code;     /* failed: RunError code; canceled: reason type (static) */
    const char *message;  /* failed, canceled (static) */
    uint64_t seq;
    struct as_op *next;
} as_op;

static pthread_mutex_t as_lock = PTHREAD_MUTEX_INITIALIZER;
static as_session *g_sessions;   /* newest first */
static as_op *g_ops;             /* newest first */
static unsigned g_nsessions, g_nops;
static uint64_t g_seq = 1;
static itd_rng g_rng;
static int g_rng_ready;

/* --max-auth-sessions (0, as in an embedding that does not set it: the default) */
static unsigned cap(void) { return g_opts.max_auth_sessions ? g_opts.max_auth_sessions : 4096; }

/* ------------------------------------------------------------ helpers */

static void nanoid(char *buf)   /* 21 characters of A-Za-z0-9_- (the reference's run id form) */
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    if (!g_rng_ready) { itd_rng_seed(&g_rng, g_opts.seed ^ 0x617574685f6f7073ull ^ (uint64_t)(emu_now() * 1e6)); g_rng_ready = 1; }
    for (int i = 0; i < 21; i++) buf[i] = abc[itd_rng_next(&g_rng) % 64];
    buf[21] = 0;
}

static void random_uuid(char *buf)   /* buf >= 37 */
{
    char seed[32];
    nanoid(seed);
    emu_stable_uuid(seed, buf);
}

static as_session *find_session(const char *project, const char *id)
{
    for (as_session *s = g_sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0 && strcmp(s->project, project) == 0) return s;
    return NULL;
}

static void session_free(as_session *s)
{
    free(s->project);
    free(s->id);
    free(s);
}

static void remove_session(as_session *gone)
{
    for (as_session **pp = &g_sessions; *pp; pp = &(*pp)->next)
        if (*pp == gone) { *pp = gone->next; session_free(gone); g_nsessions--; return; }
}

static as_session *add_session(const char *project, const char *id, const char *type, const char *status)
{
    as_session *s = emu_xcalloc(1, sizeof *s);
    s->project = emu_strdup(project);
    s->id = emu_strdup(id);
    snprintf(s->type, sizeof s->type, "%s", type);
    snprintf(s->status, sizeof s->status, "%s", status);
    s->seq = g_seq++;
    s->next = g_sessions;
    g_sessions = s;
    g_nsessions++;
    return s;
}

static int fails(const as_session *s) { return s->fail || strncmp(s->id, "fail", 4) == 0; }

/* An operation's end, once: its outcome and what it does to its session. */
static void finish(as_op *o)
{
    as_session *s = find_session(o->project, o->session_id);
    if (!s) {   /* deleted meanwhile (delete cancels its operations: not expected) */
        o->state = OS_CANCELED;
        o->code = "cancelled-user-action";
        o->message = "The auth session was deleted";
        return;
    }
    int bad = fails(s) || o->wrong;
    switch (o->kind) {
    case OP_CREATE:
        if (bad) {
            o->state = OS_FAILED;
            o->code = "create-attempts-failed";
            o->message = "Simulated failure: every create attempt failed";
            remove_session(s);   /* a failed create leaves no session */
            return;
        }
        break;
    case OP_UPDATE:
        if (bad) {
            o->state = OS_FAILED;
            o->code = "create-attempts-failed";
            o->message = "Simulated failure: every create attempt of the update failed";
            snprintf(s->status, sizeof s->status, "EXPIRED");
            return;
        }
        break;
    case OP_VALIDATE: {
        int check_fails = bad || strncmp(s->id, "stale", 5) == 0 || strcmp(s->status, "EXPIRED") == 0;
        if (check_fails && (!o->auto_recreate || bad)) {
            o->state = OS_FAILED;
            o->code = o->auto_recreate ? "create-attempts-failed" : "check-attempts-failed";
            o->message = o->auto_recreate ? "Simulated failure: the check failed and re-creating the session failed"
                                          : "Simulated failure: the check failed (autoRecreate is false)";
            snprintf(s->status, sizeof s->status, "EXPIRED");
            return;
        }
        break;
    }
    }
    o->state = OS_DONE;
    snprintf(s->status, sizeof s->status, "READY");
}

/* Operations whose time is up end now, oldest first: two operations of one
 * session end in the order they started. */
static void advance(void)
{
    double now = emu_now();
    size_t n = 0;
    for (as_op *o = g_ops; o; o = o->next) n += o->state == OS_RUNNING && o->t_end <= now;
    if (!n) return;
    as_op **v = emu_xcalloc(n, sizeof *v);
    size_t k = n;
    for (as_op *o = g_ops; o && k; o = o->next)   /* g_ops is newest first */
        if (o->state == OS_RUNNING && o->t_end <= now) v[--k] = o;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->ask) v[i]->state = OS_ASKING;   /* waits for a resume */
        else finish(v[i]);
    }
    free(v);
}

/* Room for one more operation: drops the oldest finished one at the bound. */
static int op_room(void)
{
    if (g_nops < cap()) return 0;
    as_op **victim = NULL;
    for (as_op **pp = &g_ops; *pp; pp = &(*pp)->next)
        if ((*pp)->state >= OS_DONE) victim = pp;   /* the last such one is the oldest */
    if (!victim) return -1;
    as_op *o = *victim;
    *victim = o->next;
    free(o->project);
    free(o->session_id);
    free(o);
    g_nops--;
    return 0;
}

static as_op *add_op(const char *project, const char *session_id, int kind)
{
    as_op *o = emu_xcalloc(1, sizeof *o);
    o->project = emu_strdup(project);
    o->session_id = emu_strdup(session_id);
    o->kind = kind;
    o->auto_recreate = 1;
    double d = g_opts.auth_op_ms * g_opts.time_scale / 1000.0, now = emu_now();
    o->t_mid = now + d / 2;
    o->t_end = now + d;
    nanoid(o->id);
    nanoid(o->run_id);
    nanoid(o->info_id);
    o->seq = g_seq++;
    o->next = g_ops;
    g_ops = o;
    g_nops++;
    return o;
}

static as_op *find_op(const char *project, const char *id)
{
    for (as_op *o = g_ops; o; o = o->next)
        if (strcmp(o->id, id) == 0 && strcmp(o->project, project) == 0) return o;
    return NULL;
}

/* ------------------------------------------------------------ documents */

static cJSON *session_doc(const as_session *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", s->id);
    if (g_opts.newest) cJSON_AddStringToObject(o, "type", s->type);   /* v0.3.12's AuthSessionInfo has no type */
    cJSON_AddStringToObject(o, "status", s->status);
    return o;
}

/* OperationResult in the emulator's version: newest the five members of
 * §5.6; v0.3.12 AuthSessionCreateResult (in_progress shows as pending, a
 * failure or cancel as failed with a string error code). */
static cJSON *op_result_doc(const as_op *o, double now)
{
    cJSON *d = cJSON_CreateObject();
    int st = o->state;
    if (st == OS_RUNNING) {
        if (g_opts.newest && now >= o->t_mid) {
            cJSON_AddStringToObject(d, "status", "in_progress");
            cJSON_AddStringToObject(d, "runId", o->run_id);
        } else {
            cJSON_AddStringToObject(d, "status", "pending");
        }
        return d;
    }
    if (st == OS_ASKING) {   /* v0.3.12 only (newest mode never asks) */
        cJSON_AddStringToObject(d, "status", "requested_more_info");
        cJSON_AddStringToObject(d, "id", o->info_id);
        cJSON *x = cJSON_AddObjectToObject(d, "details");
        if (o->ask == 2) {
            cJSON *ch = cJSON_AddArrayToObject(x, "choices");
            cJSON_AddItemToArray(ch, cJSON_CreateString("email"));
            cJSON_AddItemToArray(ch, cJSON_CreateString("sms"));
        }
        cJSON_AddStringToObject(x, "requestType", o->ask == 2 ? "multiple_choice" : "otp");
        cJSON_AddStringToObject(x, "action", "request_more_info");
        cJSON_AddStringToObject(x, "messageToUser", o->ask == 2 ? "Where should the code be sent?"
                                                               : "Enter the one-time code sent to you");
        return d;
    }
    if (st == OS_DONE) {
        cJSON_AddStringToObject(d, "status", "done");
        cJSON_AddStringToObject(d, "authSessionId", o->session_id);
        return d;
    }
    if (!g_opts.newest) {
        cJSON_AddStringToObject(d, "status", "failed");
        cJSON_AddStringToObject(d, "error", o->code);
        cJSON_AddStringToObject(d, "message", o->message);
        return d;
    }
    if (st == OS_CANCELED) {
        cJSON_AddStringToObject(d, "status", "canceled");
        cJSON_AddStringToObject(d, "message", o->message);
        cJSON *r = cJSON_AddObjectToObject(d, "reason");
        cJSON_AddStringToObject(r, "type", o->code);
        cJSON_AddStringToObject(r, "message", o->message);
        return d;
    }
    cJSON_AddStringToObject(d, "status", "failed");
    cJSON_AddStringToObject(d, "message", o->message);
    cJSON *e = cJSON_AddObjectToObject(d, "error");
    cJSON_AddStringToObject(e, "message", o->message);
    cJSON_AddStringToObject(e, "code", o->code);
    cJSON_AddStringToObject(e, "category", "auth");
    cJSON_AddBoolToObject(e, "retirable", 0);
    return d;
}

/* ------------------------------------------------------------ requests */

static enum MHD_Result not_found(struct MHD_Connection *c, const char *what, const char *id, const char *project)
{
    char msg[600];
    snprintf(msg, sizeof msg, "No %s with id %.200s in project %.200s", what, id, project);
    return send_error(c, 404, msg);
}

static enum MHD_Result too_many_ops(struct MHD_Connection *c)
{
    char msg[200];
    snprintf(msg, sizeof msg, "Too many auth-session operations in progress (%u kept); retry later", cap());
    char *body = error_json(429, msg, NULL);
    return send_body(c, 429, "application/json", body, strlen(body), "Retry-After", "1");
}

static enum MHD_Result bad_field(struct MHD_Connection *c, const char *what, const char *field, const char *issue)
{
    char msg[400];
    snprintf(msg, sizeof msg, "Invalid %s: %s: %s", what, field[0] ? field : "(body)", issue);
    return send_bad_field(c, msg, field, issue);
}

#define ID_MAX 200

/* The body of a start: checked (newest: through the core's schema, which
 * gives the field; v0.3.12: the few keys its bodies have) and parsed.
 * NULL after answering 400 (*rc set). */
static cJSON *start_body(struct MHD_Connection *c, const req *q, const itd_schema *newest, const char *what,
                         enum MHD_Result *rc)
{
    cJSON *t = reply_parse_body(q);
    if (!cJSON_IsObject(t)) { cJSON_Delete(t); *rc = bad_field(c, what, "", "expected a JSON object"); return NULL; }
    if (g_opts.newest && newest) {
        itd_error err = ITD_ERROR_INIT;
        void *obj = itd_decode(newest, q->body, q->len, NULL, &err);
        if (!obj) { *rc = send_invalid(c, what, &err); itd_error_clear(&err); cJSON_Delete(t); return NULL; }
        itd_free(newest, obj);
    } else {
        static const char *const str_keys[] = { "id", "proxy", NULL };
        for (size_t i = 0; str_keys[i]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, str_keys[i]);
            if (v && !cJSON_IsString(v) && !(cJSON_IsNull(v) && strcmp(str_keys[i], "proxy") == 0)) {
                *rc = bad_field(c, what, str_keys[i], "expected a string");
                cJSON_Delete(t);
                return NULL;
            }
        }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "parameters");
        if (p && !cJSON_IsObject(p) && !cJSON_IsArray(p)) {
            *rc = bad_field(c, what, "parameters", "expected an object or an array");
            cJSON_Delete(t);
            return NULL;
        }
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
    if (cJSON_IsString(id) && (!id->valuestring[0] || strlen(id->valuestring) > ID_MAX)) {
        *rc = bad_field(c, what, "id", "must be 1 to 200 characters (the emulator's bound)");
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

static int fail_marker(const cJSON *t)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "parameters"), "fail"));
}

/* v0.3.12: parameters "otp": true asks for a one-time code, "choice": true
 * for a multiple choice, before the operation ends (requested_more_info;
 * POST .../resume answers it).  The newest API has no such status. */
static int ask_marker(const cJSON *t)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "parameters");
    if (g_opts.newest) return 0;
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "otp")) ? 1
         : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "choice")) ? 2 : 0;
}

static enum MHD_Result send_started(struct MHD_Connection *c, const as_op *o, const char *status)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "status", status);
    cJSON_AddStringToObject(d, "operationId", o->id);
    return send_checked(c, 201, &itd_OperationStarted, d);
}

static enum MHD_Result op_create(struct MHD_Connection *c, const emu_ids *ids, const req *q)
{
    enum MHD_Result rc;
    cJSON *t = start_body(c, q, &itd_AuthSessionCreateInput, "auth session create input", &rc);
    if (!t) return rc;
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(t, "id");
    char id[ID_MAX + 1], opid[24];
    if (cJSON_IsString(idv)) snprintf(id, sizeof id, "%s", idv->valuestring);
    pthread_mutex_lock(&as_lock);
    advance();
    if (!cJSON_IsString(idv)) do random_uuid(id); while (find_session(ids->project, id));
    int exists = find_session(ids->project, id) != NULL;
    int full = !exists && g_nsessions >= cap();
    int busy = !exists && !full && op_room();
    if (!exists && !full && !busy) {
        as_session *s = add_session(ids->project, id, "CREDENTIALS", "PENDING");
        s->fail = fail_marker(t);
        as_op *o = add_op(ids->project, id, OP_CREATE);
        o->ask = ask_marker(t);
        snprintf(opid, sizeof opid, "%s", o->id);
    }
    pthread_mutex_unlock(&as_lock);
    cJSON_Delete(t);
    if (exists) {
        char msg[400];
        snprintf(msg, sizeof msg, "An auth session with id %.200s already exists in project %.100s", id, ids->project);
        return send_error(c, 409, msg);
    }
    if (full) {
        char msg[200];
        snprintf(msg, sizeof msg, "The emulator keeps at most %u auth sessions (--max-auth-sessions); delete some", cap());
        return send_error(c, 507, msg);
    }
    if (busy) return too_many_ops(c);
    as_op fake;
    memset(&fake, 0, sizeof fake);
    snprintf(fake.id, sizeof fake.id, "%s", opid);
    return send_started(c, &fake, "started");
}

/* update (newest path: id in the path; v0.3.12: in the body) and validate */
static enum MHD_Result op_change(struct MHD_Connection *c, const emu_ids *ids, const req *q, int kind, int v0312_path)
{
    enum MHD_Result rc;
    const char *what = kind == OP_VALIDATE ? "auth session validate input" : "auth session update input";
    cJSON *t = start_body(c, q, v0312_path ? NULL : kind == OP_VALIDATE ? &itd_AuthSessionValidateInput
                                                                         : &itd_AuthSessionUpdateInput, what, &rc);
    if (!t) return rc;
    const char *sid = ids->session;
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(t, "id");
    if (v0312_path) {
        if (!cJSON_IsString(idv)) { cJSON_Delete(t); return bad_field(c, what, "id", "required field is missing"); }
        sid = idv->valuestring;
    }
    char opid[24] = "";
    pthread_mutex_lock(&as_lock);
    advance();
    as_session *s = find_session(ids->project, sid);
    int busy = s && op_room();
    if (s && !busy) {
        as_op *o = add_op(ids->project, sid, kind);
        o->v0312_path = v0312_path;
        const cJSON *ar = cJSON_GetObjectItemCaseSensitive(t, "autoRecreate");
        o->auto_recreate = !cJSON_IsFalse(ar);   /* default true (reference §5.4) */
        if (kind == OP_UPDATE) { s->fail = fail_marker(t); o->ask = ask_marker(t); }
        snprintf(opid, sizeof opid, "%s", o->id);
    }
    pthread_mutex_unlock(&as_lock);
    if (!s) { rc = not_found(c, "auth session", sid, ids->project); cJSON_Delete(t); return rc; }
    cJSON_Delete(t);
    if (busy) return too_many_ops(c);
    as_op fake;
    memset(&fake, 0, sizeof fake);
    snprintf(fake.id, sizeof fake.id, "%s", opid);
    /* the SDK's closed values: validate answers pending, create and update started */
    return send_started(c, &fake, kind == OP_VALIDATE ? "pending" : "started");
}

static enum MHD_Result op_result(struct MHD_Connection *c, const emu_ids *ids, int kind, int v0312_path)
{
    pthread_mutex_lock(&as_lock);
    advance();
    as_op *o = find_op(ids->project, ids->operation);
    /* an operation is read at its own kind's path, under its own session */
    if (o && (o->kind != kind || (kind != OP_CREATE && !v0312_path && strcmp(o->session_id, ids->session) != 0)))
        o = NULL;
    cJSON *d = o ? op_result_doc(o, emu_now()) : NULL;
    pthread_mutex_unlock(&as_lock);
    if (!d) return not_found(c, "operation", ids->operation, ids->project);
    return send_checked(c, 200, &itd_OperationResult, d);
}

/* v0.3.12's resume (reference §11.2): {input, info_request_id} for an
 * operation that asked; 202 {status: "resumed"}, and the operation runs
 * again for --auth-op-ms.  The input "wrong" makes it fail. */
static enum MHD_Result op_resume(struct MHD_Connection *c, const emu_ids *ids, const req *q, int kind)
{
    const char *what = "auth session resume input";
    cJSON *t = reply_parse_body(q);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "input");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(t, "info_request_id");
    const char *field = !cJSON_IsObject(t) ? "" : !cJSON_IsString(in) ? "input" : !cJSON_IsString(info) ? "info_request_id" : NULL;
    if (field) {
        cJSON_Delete(t);
        return bad_field(c, what, field, field[0] ? "expected a string" : "expected a JSON object");
    }
    int rc = 0;   /* 0 resumed, 404, 409, 400 (another info request) */
    pthread_mutex_lock(&as_lock);
    advance();
    as_op *o = find_op(ids->project, ids->operation);
    if (!o || o->kind != kind) rc = 404;
    else if (o->state != OS_ASKING) rc = 409;
    else if (strcmp(o->info_id, info->valuestring) != 0) rc = 400;
    else {
        double d = g_opts.auth_op_ms * g_opts.time_scale / 1000.0, now = emu_now();
        o->state = OS_RUNNING;
        o->ask = 0;
        o->wrong = strcmp(in->valuestring, "wrong") == 0;
        o->t_mid = now + d / 2;
        o->t_end = now + d;
    }
    pthread_mutex_unlock(&as_lock);
    cJSON_Delete(t);
    if (rc == 404) return not_found(c, "operation", ids->operation, ids->project);
    if (rc == 409) return send_error(c, 409, "The operation is not waiting for more information");
    if (rc == 400) return bad_field(c, what, "info_request_id", "names no open info request of this operation");
    return send_json(c, 202, emu_strdup("{\"status\":\"resumed\"}"));
}

/* v0.3.12's recorder start: {authSessionId?, proxy?}; an existing session
 * is re-recorded (an update), another id (or none: a uuid) makes a RECORDER
 * session, PENDING until the recording's --auth-op-ms has passed.  201
 * {recorder_url}, a page of the emulator's own that does nothing. */
static enum MHD_Result op_recorder(struct MHD_Connection *c, const emu_ids *ids, const req *q)
{
    const char *what = "auth session recorder input";
    cJSON *t = reply_parse_body(q);
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(t, "authSessionId");
    if (!cJSON_IsObject(t) || (idv && !cJSON_IsString(idv))) {
        cJSON_Delete(t);
        return bad_field(c, what, cJSON_IsObject(t) ? "authSessionId" : "", "expected a string");
    }
    char id[ID_MAX + 1], opid[24] = "";
    if (idv && (!idv->valuestring[0] || strlen(idv->valuestring) > ID_MAX)) {
        cJSON_Delete(t);
        return bad_field(c, what, "authSessionId", "must be 1 to 200 characters (the emulator's bound)");
    }
    if (idv) snprintf(id, sizeof id, "%s", idv->valuestring);
    cJSON_Delete(t);
    pthread_mutex_lock(&as_lock);
    advance();
    if (!idv) do random_uuid(id); while (find_session(ids->project, id));
    as_session *s = find_session(ids->project, id);
    int existed = s != NULL;
    int full = !s && g_nsessions >= cap();
    int busy = !full && op_room();
    if (!full && !busy) {
        if (!s) s = add_session(ids->project, id, "RECORDER", "PENDING");
        snprintf(opid, sizeof opid, "%s", add_op(ids->project, id, existed ? OP_UPDATE : OP_CREATE)->id);
    }
    pthread_mutex_unlock(&as_lock);
    if (full) return send_error(c, 507, "The emulator keeps no more auth sessions (--max-auth-sessions); delete some");
    if (busy) return too_many_ops(c);
    char url[300];
    snprintf(url, sizeof url, "%s/_emulator/recorder/%s", g_origin, opid);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "recorder_url", url);
    return send_cjson(c, 201, d);
}

enum MHD_Result auth_handle(struct MHD_Connection *c, const char *op, const emu_ids *ids, const req *q)
{
    const char *name = strchr(op, ':') ? strchr(op, ':') + 1 : op;
    if (strcmp(name, "list") == 0) {
        pthread_mutex_lock(&as_lock);
        advance();
        /* oldest first: the order they were made */
        size_t n = 0;
        for (as_session *s = g_sessions; s; s = s->next) n += strcmp(s->project, ids->project) == 0;
        as_session **v = emu_xcalloc(n ? n : 1, sizeof *v);
        size_t k = n;
        for (as_session *s = g_sessions; s; s = s->next)
            if (strcmp(s->project, ids->project) == 0) v[--k] = s;
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, session_doc(v[i]));
        free(v);
        pthread_mutex_unlock(&as_lock);
        return send_checked(c, 200, &itd_AuthSessionList, a);
    }
    if (strcmp(name, "get") == 0 || strcmp(name, "delete") == 0) {
        int del = name[0] == 'd';
        pthread_mutex_lock(&as_lock);
        advance();
        as_session *s = find_session(ids->project, ids->session);
        cJSON *d = s && !del ? session_doc(s) : NULL;
        if (s && del) {
            for (as_op *o = g_ops; o; o = o->next)
                if (o->state < OS_DONE && strcmp(o->session_id, s->id) == 0 && strcmp(o->project, s->project) == 0) {
                    o->state = OS_CANCELED;
                    o->code = "cancelled-user-action";
                    o->message = "The auth session was deleted";
                }
            remove_session(s);
        }
        pthread_mutex_unlock(&as_lock);
        if (!s) return not_found(c, "auth session", ids->session, ids->project);
        if (del) return send_body(c, 204, NULL, NULL, 0, NULL, NULL);
        return send_checked(c, 200, &itd_AuthSessionInfo, d);
    }
    if (strcmp(name, "create") == 0) return op_create(c, ids, q);
    if (strcmp(name, "update") == 0) return op_change(c, ids, q, OP_UPDATE, 0);
    if (strcmp(name, "update_v0312") == 0) return op_change(c, ids, q, OP_UPDATE, 1);
    if (strcmp(name, "validate") == 0) return op_change(c, ids, q, OP_VALIDATE, 0);
    if (strcmp(name, "create_result") == 0) return op_result(c, ids, OP_CREATE, 0);
    if (strcmp(name, "update_result") == 0) return op_result(c, ids, OP_UPDATE, 0);
    if (strcmp(name, "update_result_v0312") == 0) return op_result(c, ids, OP_UPDATE, 1);
    if (strcmp(name, "validate_result") == 0) return op_result(c, ids, OP_VALIDATE, 0);
    if (strcmp(name, "create_resume") == 0) return op_resume(c, ids, q, OP_CREATE);
    if (strcmp(name, "update_resume") == 0) return op_resume(c, ids, q, OP_UPDATE);
    if (strcmp(name, "recorder_start") == 0) return op_recorder(c, ids, q);
    return send_error(c, 500, "internal: unknown auth-sessions operation");
}

/* ------------------------------------------------------------ for runs and jobs */

int auth_session_use(const char *project, const char *id, int runtime, int auto_recreate)
{
    int rc = AS_USE_OK;
    pthread_mutex_lock(&as_lock);
    advance();
    as_session *s = find_session(project, id);
    if (!s && runtime) {
        if (!id[0] || strlen(id) > ID_MAX) rc = AS_USE_BAD_ID;
        else if (g_nsessions >= cap()) rc = AS_USE_FULL;
        else add_session(project, id, "RUNTIME", "READY");
    } else if (!s) {
        rc = AS_USE_UNKNOWN;
    } else if (strcmp(s->status, "EXPIRED") == 0) {
        if (auto_recreate && !fails(s)) snprintf(s->status, sizeof s->status, "READY");   /* re-created (§6.3) */
        else rc = AS_USE_EXPIRED;
    }
    pthread_mutex_unlock(&as_lock);
    return rc;
}

int auth_session_exists(const char *project, const char *id)
{
    pthread_mutex_lock(&as_lock);
    advance();
    int rc = find_session(project, id) != NULL;
    pthread_mutex_unlock(&as_lock);
    return rc;
}

cJSON *auth_view(void)
{
    pthread_mutex_lock(&as_lock);
    advance();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "sessions", g_nsessions);
    cJSON_AddNumberToObject(o, "operations", g_nops);
    cJSON_AddNumberToObject(o, "max", cap());
    pthread_mutex_unlock(&as_lock);
    return o;
}

void auth_shutdown(void)
{
    pthread_mutex_lock(&as_lock);
    while (g_sessions) { as_session *s = g_sessions; g_sessions = s->next; session_free(s); }
    while (g_ops) { as_op *o = g_ops; g_ops = o->next; free(o->project); free(o->session_id); free(o); }
    g_nsessions = g_nops = 0;
    pthread_mutex_unlock(&as_lock);
}
