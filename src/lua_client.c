/*
 * lua_client.c - the Lua face of the protocol and of the libcurl transport:
 *
 *   core.build_request(cfg, op, args)          -> request table | nil, err
 *   core.parse_response(op, status, content_type, retry_after, body)
 *                                              -> result | nil, err
 *   core.retry_decide(policy|nil|false, op, attempt, err, sent, rnd) -> delay | nil
 *   core.job_matches_input(job, input)         -> boolean | nil, err
 *   core.redact_headers(headers)               -> copy with secrets "***"
 *   core.call_secrets(cfg, op, args)           -> intuned.Secrets (what the call carries)
 *   core.scrub(secrets, v)                     -> v without them (tables in place)
 *   core.redact_json(text)                     -> text with the by-key rule applied | nil
 *   core.curl_client(opts)                     -> intuned.CurlClient | nil, err
 *     client:call(op, args, callopts)          -> result | nil, err
 *     client:batch(calls, max_in_flight)       -> { result-or-error, ... }
 *     client:close()
 *
 * Results: a typed object; list operations give a plain Lua array of typed
 * objects (the runs list also carries `totalCount` when the server sent
 * one); delete gives true.  Failures of data or network return nil plus an
 * error object (intuned.is_error(x) is true for it); misuse raises.
 *
 * Memory: everything C allocates for a call lives in a "scratch" userdata
 * created (zeroed, metatable set) before the first allocation, so a Lua error
 * at any point leaves nothing behind: __gc frees it.  Hooks are never called
 * from inside libcurl: the transport's C hook only records (redacted) events
 * in the scratch, and the Lua hook is called with them after the C call
 * returned.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "lua_intuned.h"

#define CLIENT_MT "intuned.CurlClient"
#define SCRATCH_MT "intuned.CallScratch"

/* ------------------------------------------------------------- scratch */

typedef struct ev {
    const char *event;         /* static */
    char *method, *url, *path, *body;
    itd_header *hdr;
    size_t nh;
    long status;
    double elapsed;
    int has_err;
    itd_error err; /* shallow: kind, status, path, message, retryable, retry_after */
    int has_resp;              /* a response arrived: status, headers, body */
    itd_header *rhdr;
    size_t nrh;
    char *rbody;
    size_t rblen;
} ev;

typedef struct scratch {
    size_t n;
    itd_call *calls;
    itd_result *results;
    itd_error *errs;
    int *prefailed;           /* errs[i] set before sending (bad arguments) */
    itd_retry_policy *pol;
    void **owned;             /* inputs built from tables */
    const itd_schema **owned_s;
    size_t nowned, capowned;
    itd_request req;
    ev *evs;
    size_t nev, capev;
} scratch;

static void ev_free(ev *e)
{
    itd_headers_free(e->rhdr, e->nrh);
    free(e->rbody);
    free(e->method);
    free(e->url);
    free(e->path);
    free(e->body);
    itd_headers_free(e->hdr, e->nh);
}

static int scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    for (size_t i = 0; i < s->n; i++) {
        if (s->results) itd_result_free(&s->results[i]);
        if (s->errs) itd_error_clear(&s->errs[i]);
    }
    free(s->calls); /* one block: calls, results, errs, pol, prefailed */
    for (size_t i = 0; i < s->nowned; i++) itd_free(s->owned_s[i], s->owned[i]);
    free(s->owned);
    free(s->owned_s);
    itd_request_free(&s->req);
    for (size_t i = 0; i < s->nev; i++) ev_free(&s->evs[i]);
    free(s->evs);
    memset(s, 0, sizeof *s);
    return 0;
}

/* Push a new scratch for n calls. */
scratch *scratch_new(lua_State *L, size_t n)
{
    scratch *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCRATCH_MT);
    if (n) {
        /* one allocation for the five arrays (a call's cost is mostly
         * allocations); each element size is a multiple of its alignment,
         * so arrays of 8-aligned types first, the ints last */
        size_t per = sizeof *s->calls + sizeof *s->results + sizeof *s->errs + sizeof *s->pol + sizeof *s->prefailed;
        if (n > SIZE_MAX / per) luaL_error(L, "intuned: out of memory");
        char *b = calloc(n, per);
        if (!b) luaL_error(L, "intuned: out of memory");
        s->calls = (itd_call *)b;
        s->results = (itd_result *)(b + n * sizeof *s->calls);
        s->errs = (itd_error *)((char *)s->results + n * sizeof *s->results);
        s->pol = (itd_retry_policy *)((char *)s->errs + n * sizeof *s->errs);
        s->prefailed = (int *)((char *)s->pol + n * sizeof *s->pol);
        s->n = n;
        for (size_t i = 0; i < n; i++) s->errs[i].retry_after = -1;
    }
    return s;
}

static int scratch_own(scratch *s, const itd_schema *sc, void *obj)
{
    if (s->nowned == s->capowned) {
        size_t cap = s->capowned ? s->capowned * 2 : 8;
        void **o = realloc(s->owned, cap * sizeof *o);
        if (!o) return -1;
        s->owned = o;
        const itd_schema **os = realloc(s->owned_s, cap * sizeof *os);
        if (!os) return -1;
        s->owned_s = os;
        s->capowned = cap;
    }
    s->owned[s->nowned] = obj;
    s->owned_s[s->nowned] = sc;
    s->nowned++;
    return 0;
}

/* --------------------------------------------------------- small helpers */

static void seterr(itd_error *e, itd_err_kind k, const char *path, const char *msg)
{
    itd_error_clear(e);
    itd_error_set(e, k, path, "%s", msg);
}

/* Push nil, err for an error held in C, clearing it first (no C memory is
 * held when the Lua side may raise: the pushed error is a copy). */
static int push_error_clear(lua_State *L, itd_error *e)
{
    /* itdl_push_error may raise on OOM; keep `e` reachable from a scratch
     * when it owns memory.  Callers pass errors that live in a scratch or
     * own nothing. */
    int n = itdl_push_error(L, e);
    itd_error_clear(e);
    return n;
}

int check_op(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int op = itd_op_from_name(name);
    if (op < 0) return luaL_argerror(L, idx, lua_pushfstring(L, "unknown operation '%s'", name));
    return op;
}

/* Read a string field of the table at idx (first of the names present),
 * anchoring the value in the table at `anchor` so the pointer stays valid.
 * NULL when absent.  Raises when present but not a string (or number when
 * numbers are allowed).  Sets *nul when the string holds a NUL byte. */
static const char *str_field(lua_State *L, int idx, int anchor, const char *const *names, int numbers_ok, int *nul)
{
    for (const char *const *n = names; *n; n++) {
        lua_getfield(L, idx, *n);
        int t = lua_type(L, -1);
        if (t == LUA_TNIL) { lua_pop(L, 1); continue; }
        if (t != LUA_TSTRING && !(numbers_ok && t == LUA_TNUMBER)) {
            luaL_error(L, "intuned: argument field '%s' must be a string, got %s", *n, lua_typename(L, t));
            return NULL;
        }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len) *nul = 1;
        lua_rawseti(L, anchor, (int)lua_rawlen(L, anchor) + 1);
        return s;
    }
    return NULL;
}

/* Fill `a` from the args table at idx.  0, or -1 with `e` (data the request
 * cannot be built from).  Owned inputs go to the scratch. */
int read_args(lua_State *L, int idx, int anchor, itd_op op, scratch *s, itd_call_args *a, itd_error *e)
{
    memset(a, 0, sizeof *a);
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    /* every path and query argument of the operation table (ops.c), by any
     * of its names, whatever the operation: a mistyped one raises */
    int nul = 0;
    for (const itd_arg_def *d = itd_args; d->names; d++)
        if (d->where != ITD_ARG_BODY) itd_arg_set_str(d, a, str_field(L, idx, anchor, d->names, d->numbers, &nul));
    if (nul) {
        seterr(e, ITD_ERR_VALIDATION, "", "a path or query parameter contains a NUL byte");
        return -1;
    }
    /* the operation's body, by the first of its names present; none given:
     * the request builder says what is missing */
    const itd_op_def *od = itd_op_def_of(op);
    const itd_arg_def *body = od && od->body ? itd_arg_find(od->body) : NULL;
    if (!body) return 0;
    const itd_schema *sc = od->request;
    int top = lua_gettop(L);
    for (const char *const *n = body->names; *n && lua_gettop(L) == top; n++) {
        lua_getfield(L, idx, *n);
        if (lua_isnil(L, -1)) lua_pop(L, 1);
    }
    if (lua_gettop(L) == top) return 0;
    int vi = lua_gettop(L);
    itd_error_clear(e);
    void *obj = itdl_to_object(L, vi, sc, NULL, e);
    if (!obj) {
        lua_pop(L, 1);
        if (e->kind == ITD_ERR_NONE) seterr(e, ITD_ERR_VALIDATION, "", "invalid input");
        return -1;
    }
    if (scratch_own(s, sc, obj)) {
        itd_free(sc, obj);
        lua_pop(L, 1);
        luaL_error(L, "intuned: out of memory");
    }
    itd_arg_set_obj(body, a, obj);
    lua_pop(L, 1);
    return 0;
}

static double num_field(lua_State *L, int idx, const char *name, double dflt)
{
    lua_getfield(L, idx, name);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "intuned: option '%s' must be a number", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* A retry policy from the value at idx: nil = `dflt`, false = off, table. */
void read_policy(lua_State *L, int idx, const itd_retry_policy *dflt, itd_retry_policy *p)
{
    if (dflt) *p = *dflt;
    else itd_retry_policy_default(p);
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TNONE) return;
    if (t == LUA_TBOOLEAN) { p->enabled = lua_toboolean(L, idx); return; }
    if (t != LUA_TTABLE) { luaL_error(L, "intuned: retry must be a table, false or nil"); return; }
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    double ma = num_field(L, idx, "max_attempts", p->max_attempts);
    if (!(ma >= 1 && ma <= 1000)) luaL_error(L, "intuned: retry.max_attempts must be between 1 and 1000");
    p->max_attempts = (int)ma;
    p->initial_delay = num_field(L, idx, "initial_delay", p->initial_delay);
    p->max_delay = num_field(L, idx, "max_delay", p->max_delay);
    p->multiplier = num_field(L, idx, "multiplier", p->multiplier);
    p->jitter = num_field(L, idx, "jitter", p->jitter);
    if (p->initial_delay < 0 || p->max_delay < 0 || p->multiplier < 1 || p->jitter < 0 || p->jitter > 1)
        luaL_error(L, "intuned: retry delays must be >= 0, multiplier >= 1, jitter in [0, 1]");
    lua_getfield(L, idx, "enabled");
    if (!lua_isnil(L, -1)) p->enabled = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

static int secret_name(const char *n)
{
    return itd_header_is_secret(n, strlen(n)); /* the core's one list (scrub.c) */
}

static void push_lower(lua_State *L, const char *s)
{
    char buf[128];
    size_t n = strlen(s);
    if (n >= sizeof buf) { lua_pushstring(L, s); return; }
    for (size_t i = 0; i <= n; i++) buf[i] = (char)tolower((unsigned char)s[i]);
    lua_pushstring(L, buf);
}

void push_headers(lua_State *L, const itd_header *h, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        push_lower(L, h[i].name);
        lua_pushstring(L, h[i].value);
        lua_rawset(L, -3);
    }
}

/* Push the typed result held in `r`, moving its object(s) out. */
void push_result(lua_State *L, itd_result *r)
{
    const itd_op_def *d = itd_op_def_of(r->op);
    if (!r->obj || (d && !d->response)) { /* delete */
        lua_pushboolean(L, 1);
        return;
    }
    if (d && d->list_of && r->schema == d->response) { /* a list: a plain array of its items */
        itd_array *a = (itd_array *)((char *)r->obj + d->list_off);
        const itd_schema *es = d->list_of;
        lua_createtable(L, (int)a->n, 1);
        for (size_t i = 0; i < a->n; i++) {
            void *it = a->items[i];
            a->items[i] = NULL;
            if (!it) { lua_pushboolean(L, 0); lua_rawseti(L, -2, (int)i + 1); continue; }
            itdl_push_owned(L, es, it, NULL);
            lua_rawseti(L, -2, (int)i + 1);
        }
        if (r->schema == &itd_JobRunList && ((itd_run_list *)r->obj)->has_totalCount) {
            /* a count: an integer, as JobRunList.decode(...).totalCount gives it */
            double tc = ((itd_run_list *)r->obj)->totalCount;
            if (tc == floor(tc) && fabs(tc) <= 9007199254740992.0) lua_pushinteger(L, (lua_Integer)tc);
            else lua_pushnumber(L, tc);
            lua_setfield(L, -2, "totalCount");
        }
        itd_result_free(r);
        return;
    }
    void *obj = r->obj;
    const itd_schema *s = r->schema;
    r->obj = NULL;
    r->schema = NULL;
    itdl_push_owned(L, s, obj, NULL);
}

/* The itd_config of the table at idx, its strings anchored at `anchor`; *nul
 * set when one holds a NUL byte.  No environment fallback here: the
 * client's options already have it. */
void itdl_read_config(lua_State *L, int idx, int anchor, itd_config *cfg, int *nul)
{
    static const char *const k_srv[] = { "server_url", "serverURL", "server", NULL };
    static const char *const k_ws[] = { "workspace_id", "workspaceId", NULL };
    static const char *const k_key[] = { "api_key", "apiKey", NULL };
    static const char *const k_ua[] = { "user_agent", "userAgent", NULL };
    cfg->server_url = str_field(L, idx, anchor, k_srv, 0, nul);
    cfg->workspace_id = str_field(L, idx, anchor, k_ws, 0, nul);
    cfg->api_key = str_field(L, idx, anchor, k_key, 0, nul);
    cfg->user_agent = str_field(L, idx, anchor, k_ua, 0, nul);
}

/* Extra headers from the table at idx (absolute) -- name -> value, or an
 * array of "Name: value" -- as a NULL-terminated array of "Name: value"
 * lines in a userdata pushed on the stack (freed by the GC), the lines
 * anchored at `anchor`.  *nul set when one holds a NUL byte; raises on an
 * entry of another shape. */
const char **itdl_header_lines(lua_State *L, int idx, int anchor, int *nul)
{
    size_t nh = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { nh++; lua_pop(L, 1); }
    const char **hv = lua_newuserdata(L, (nh + 1) * sizeof *hv);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "intuned: header '%s' must have a string value", lua_tostring(L, -2));
            lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
        } else {
            luaL_error(L, "intuned: option 'headers' must map names to values");
        }
        size_t len;
        const char *line = lua_tolstring(L, -1, &len);
        if (strlen(line) != len) *nul = 1;
        if (i < nh) hv[i++] = line;
        lua_rawseti(L, anchor, (int)lua_rawlen(L, anchor) + 1);
        lua_pop(L, 1);
    }
    hv[i] = NULL;
    return hv;
}

/* ---------------------------------------------------------- build_request */

static int l_build_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L); /* 4: anchor */
    scratch *s = scratch_new(L, 0); /* 5 */
    int nul = 0;
    itd_config cfg;
    itdl_read_config(L, 1, 4, &cfg, &nul);
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    if (nul) {
        seterr(&e, ITD_ERR_VALIDATION, "", "a configuration value contains a NUL byte");
        return push_error_clear(L, &e);
    }
    itd_call_args a;
    if (read_args(L, 3, 4, (itd_op)op, s, &a, &e)) return push_error_clear(L, &e);
    if (itd_request_build(&cfg, (itd_op)op, &a, &s->req, &e)) return push_error_clear(L, &e);
    itd_request *r = &s->req;
    lua_createtable(L, 0, 6);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, r->path);
    lua_setfield(L, -2, "path");
    push_headers(L, r->headers, r->nheaders);
    lua_setfield(L, -2, "headers");
    if (r->body) {
        lua_pushlstring(L, r->body, r->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, r->expect_status);
    lua_setfield(L, -2, "expect_status");
    lua_pushstring(L, itd_op_name((itd_op)op));
    lua_setfield(L, -2, "op");
    return 1;
}

/* --------------------------------------------------------- parse_response */

static int l_parse_response(lua_State *L)
{
    int op = check_op(L, 1);
    lua_Number st = luaL_checknumber(L, 2);
    const char *ct = luaL_optstring(L, 3, NULL);
    const char *ra = NULL;
    if (lua_type(L, 4) == LUA_TNUMBER || lua_type(L, 4) == LUA_TSTRING) ra = lua_tostring(L, 4);
    else if (!lua_isnoneornil(L, 4)) luaL_argerror(L, 4, "string, number or nil expected");
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 5, NULL, &blen);
    scratch *s = scratch_new(L, 1);
    itd_response resp = { (long)st, ct, ra, body, body ? blen : 0 };
    if (itd_response_parse((itd_op)op, &resp, &s->results[0], &s->errs[0]))
        return itdl_push_error(L, &s->errs[0]); /* errs[0] freed by the scratch */
    push_result(L, &s->results[0]);
    return 1;
}

/* ----------------------------------------------------------- retry_decide */

static itd_err_kind kind_from_name(const char *n)
{
    for (int k = ITD_ERR_NONE; k <= ITD_ERR_NOMEM; k++)
        if (strcmp(itd_err_kind_name((itd_err_kind)k), n) == 0) return (itd_err_kind)k;
    return ITD_ERR_API;
}

static itd_rng g_rng;
static int g_rng_seeded;

static double lrand01(void)
{
    if (!g_rng_seeded) { itd_rng_seed(&g_rng, itd_rng_auto_seed()); g_rng_seeded = 1; }
    return itd_rng_double(&g_rng);
}

static int l_retry_decide(lua_State *L)
{
    itd_retry_policy p;
    read_policy(L, 1, NULL, &p);
    int op = check_op(L, 2);
    int attempt = (int)luaL_checknumber(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    int sent = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
    double rnd = lua_isnoneornil(L, 6) ? lrand01() : luaL_checknumber(L, 6);
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    lua_getfield(L, 4, "kind");
    const char *k = lua_tostring(L, -1);
    e.kind = k ? kind_from_name(k) : ITD_ERR_API;
    lua_pop(L, 1);
    lua_getfield(L, 4, "status");
    e.status = lua_isnumber(L, -1) ? (int)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    lua_getfield(L, 4, "retry_after");
    if (lua_isnumber(L, -1)) e.retry_after = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 4, "retryable");
    /* a transport's own error table may not say: connection/timeout default retryable */
    e.retryable = lua_isnil(L, -1) ? (e.kind == ITD_ERR_CONNECTION || e.kind == ITD_ERR_TIMEOUT ||
                                      itd_status_retryable(e.status))
                                   : lua_toboolean(L, -1);
    lua_pop(L, 1);
    double d;
    if (itd_retry_decide(&p, (itd_op)op, attempt, &e, sent, rnd, &d)) lua_pushnumber(L, d);
    else lua_pushnil(L);
    return 1;
}

/* ------------------------------------------------------ job_matches_input */

static int l_job_matches_input(lua_State *L)
{
    const itd_job *job = itdl_test_object(L, 1, &itd_Job);
    if (!job) return luaL_argerror(L, 1, "intuned.Job expected");
    scratch *s = scratch_new(L, 0);
    (void)s;
    const itd_job_input *in = itdl_test_object(L, 2, &itd_JobInput);
    if (!in) {
        itd_error e;
        memset(&e, 0, sizeof e);
        void *obj = itdl_to_object(L, 2, &itd_JobInput, NULL, &e);
        if (!obj) return push_error_clear(L, &e);
        if (scratch_own(s, &itd_JobInput, obj)) { itd_free(&itd_JobInput, obj); return luaL_error(L, "intuned: out of memory"); }
        in = obj;
    }
    lua_pushboolean(L, itd_job_matches_input(job, in));
    return 1;
}

/* --------------------------------------------------------- redact_headers */

static int l_redact_headers(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pushvalue(L, -2); /* key */
        if (lua_type(L, -1) == LUA_TSTRING && secret_name(lua_tostring(L, -1))) {
            lua_pushliteral(L, "***");
        } else {
            lua_pushvalue(L, -2);
        }
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
    return 1;
}

/* --------------------------------------------------------------- secrets */
/* The nginx transport's side of scrub.c: the same set of secrets and the
 * same replacement as the libcurl transport, over Lua values. */

#define SECRETS_MT "intuned.Secrets"

static int secrets_gc(lua_State *L)
{
    itd_secrets_free(luaL_checkudata(L, 1, SECRETS_MT));
    return 0;
}

static int secrets_tostring(lua_State *L)
{
    itd_secrets *s = luaL_checkudata(L, 1, SECRETS_MT);
    lua_pushfstring(L, SECRETS_MT " (%d)", (int)s->n);
    return 1;
}

static int l_call_secrets(lua_State *L)
{
    static const char *const k_key[] = { "api_key", "apiKey", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L);                /* 4: anchor */
    scratch *sc = scratch_new(L, 0); /* 5: owns a converted input */
    itd_secrets *sec = lua_newuserdata(L, sizeof *sec); /* 6 */
    itd_secrets_init(sec);
    luaL_setmetatable(L, SECRETS_MT);
    int nul = 0;
    itd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.api_key = str_field(L, 1, 4, k_key, 0, &nul);
    itd_call_args a;
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    /* an input that does not convert is never sent: only the key matters then */
    if (read_args(L, 3, 4, (itd_op)op, sc, &a, &e)) memset(&a, 0, sizeof a);
    itd_error_clear(&e);
    int bad = itd_secrets_add_call(sec, &cfg, &a, 1);
    lua_getfield(L, 1, "headers"); /* 7 */
    if (lua_istable(L, 7)) {
        lua_pushnil(L);
        while (!bad && lua_next(L, 7)) {
            if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                size_t nl;
                const char *name = lua_tolstring(L, -2, &nl);
                lua_pushvalue(L, -1); /* tolstring on a copy: a number value must not change under lua_next */
                bad = itd_secrets_add_header(sec, name, nl, lua_tostring(L, -1), 1);
                lua_pop(L, 1);
            } else if (lua_type(L, -1) == LUA_TSTRING) { /* "Name: value" */
                const char *line = lua_tostring(L, -1);
                const char *colon = strchr(line, ':');
                if (colon) bad = itd_secrets_add_header(sec, line, (size_t)(colon - line), colon + 1, 1);
            }
            lua_pop(L, 1);
        }
    }
    if (bad) return luaL_error(L, "intuned: out of memory");
    lua_pushvalue(L, 6);
    return 1;
}

/* Push the string at idx without the secrets (the same string when it has none). */
static void push_scrubbed(lua_State *L, int idx, const itd_secrets *sec)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!itd_secrets_in(s, len, sec)) { lua_pushvalue(L, idx); return; }
    char *b = lua_newuserdata(L, len + 1);
    memcpy(b, s, len);
    b[len] = 0;
    size_t n = itd_scrub(b, len, sec);
    lua_pushlstring(L, b, n);
    memset(b, 0, len);
    lua_remove(L, -2);
}

/* Scrub the table at t in place: string values and string keys, nested
 * tables (each once: `visited`), to ITD_MAX_DEPTH levels. */
static void scrub_table(lua_State *L, int t, const itd_secrets *sec, int visited, int depth)
{
    if (depth > ITD_MAX_DEPTH) return;
    luaL_checkstack(L, 8, "intuned: scrub");
    lua_pushvalue(L, t);
    lua_rawget(L, visited);
    int seen = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (seen) return;
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, visited);
    lua_newtable(L); /* keys to rename after the traversal: old, new, old, new, ... */
    int ren = lua_gettop(L), nren = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int v = lua_gettop(L), k = v - 1;
        if (lua_type(L, v) == LUA_TSTRING) {
            push_scrubbed(L, v, sec);
            if (!lua_rawequal(L, -1, v)) {
                lua_pushvalue(L, k);
                lua_pushvalue(L, -2);
                lua_rawset(L, t); /* an existing key may be assigned while traversing */
            }
            lua_pop(L, 1);
        } else if (lua_type(L, v) == LUA_TTABLE) {
            scrub_table(L, v, sec, visited, depth + 1);
        }
        if (lua_type(L, k) == LUA_TSTRING) {
            push_scrubbed(L, k, sec);
            if (!lua_rawequal(L, -1, k)) {
                lua_pushvalue(L, k);
                lua_rawseti(L, ren, ++nren); /* old */
                lua_rawseti(L, ren, ++nren); /* new */
            }
        }
        lua_settop(L, k); /* the key stays for lua_next */
    }
    for (int i = 1; i < nren; i += 2) {
        lua_rawgeti(L, ren, i + 1); /* new */
        lua_rawgeti(L, ren, i);     /* old */
        lua_rawget(L, t);           /* its value */
        lua_rawset(L, t);
        lua_rawgeti(L, ren, i);
        lua_pushnil(L);
        lua_rawset(L, t);
    }
    lua_settop(L, ren - 1);
}

static int l_scrub(lua_State *L)
{
    const itd_secrets *sec = luaL_checkudata(L, 1, SECRETS_MT);
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING) {
        push_scrubbed(L, 2, sec);
    } else if (lua_type(L, 2) == LUA_TTABLE) {
        if (sec->n) {
            lua_newtable(L); /* 3: visited */
            scrub_table(L, 2, sec, 3, 0);
        }
        lua_settop(L, 2);
    }
    return 1;
}

static int l_redact_json(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    cJSON *t = cJSON_ParseWithLength(text, len);
    if (!t) { lua_pushnil(L); return 1; }
    itd_redact_json(t);
    char *out = itd_json_print(t, NULL);
    cJSON_Delete(t);
    if (!out) return luaL_error(L, "intuned: out of memory");
    lua_pushstring(L, out);
    free(out);
    return 1;
}

/* -------------------------------------------------------------- client */

typedef struct lclient {
    itd_client *c;
    int hook_ref;            /* LUA_NOREF when none */
    scratch *sink;           /* where the C hook records events during a call */
    char desc[200];
} lclient;

/* Copy headers (already redacted by the call machine). */
static int copy_headers(const itd_header *h, size_t n, itd_header **out, size_t *nout)
{
    itd_request r;
    memset(&r, 0, sizeof r);
    r.headers = (itd_header *)h;
    r.nheaders = n;
    return itd_request_redacted_headers(&r, out, nout);
}

static void collect(void *ud, const itd_event *x)
{
    lclient *u = ud;
    scratch *s = u->sink;
    if (!s || !x) return;
    if (s->nev == s->capev) {
        size_t cap = s->capev ? s->capev * 2 : 16;
        ev *n = realloc(s->evs, cap * sizeof *n);
        if (!n) return; /* events are best effort */
        s->evs = n;
        s->capev = cap;
    }
    ev *e = &s->evs[s->nev];
    memset(e, 0, sizeof *e);
    e->event = x->kind == ITD_EV_REQUEST ? "request" : x->kind == ITD_EV_RESPONSE ? "response" : "retry";
    e->method = x->method ? strdup(x->method) : NULL;
    e->url = x->url ? strdup(x->url) : NULL;
    e->path = x->path ? strdup(x->path) : NULL;
    e->body = x->body ? strdup(x->body) : NULL;
    if (x->nheaders && copy_headers(x->headers, x->nheaders, &e->hdr, &e->nh)) { e->hdr = NULL; e->nh = 0; }
    e->status = x->status;
    e->elapsed = x->kind == ITD_EV_RETRY ? x->delay : x->elapsed;
    if (x->error) {
        e->has_err = 1;
        e->err.kind = x->error->kind;
        e->err.status = x->error->status;
        memcpy(e->err.path, x->error->path, sizeof e->err.path);
        memcpy(e->err.message, x->error->message, sizeof e->err.message);
        e->err.retryable = x->error->retryable;
        e->err.retry_after = x->error->retry_after;
        e->err.attempts = x->error->attempts;
    }
    if (x->kind == ITD_EV_RESPONSE && x->resp_body) {
        e->has_resp = 1;
        if (x->n_resp_headers && copy_headers(x->resp_headers, x->n_resp_headers, &e->rhdr, &e->nrh)) {
            e->rhdr = NULL;
            e->nrh = 0;
        }
        if ((e->rbody = malloc(x->resp_body_len + 1)) != NULL) {
            memcpy(e->rbody, x->resp_body, x->resp_body_len);
            e->rbody[x->resp_body_len] = 0;
            e->rblen = x->resp_body_len;
        }
    }
    s->nev++;
}

static lclient *check_client(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    if (!u->c) luaL_error(L, "intuned: the client is closed");
    return u;
}

static void client_close(lua_State *L, lclient *u)
{
    if (u->c) itd_client_free(u->c);
    u->c = NULL;
    if (u->hook_ref != LUA_NOREF && u->hook_ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, u->hook_ref);
    u->hook_ref = LUA_NOREF;
}

static int client_gc(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    client_close(L, u);
    return 0;
}

static int client_close_m(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    client_close(L, u);
    return 0;
}

static int client_tostring(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    if (!u->c) lua_pushliteral(L, "intuned.CurlClient (closed)");
    else lua_pushfstring(L, "intuned.CurlClient (%s)", u->desc);
    return 1;
}

long ms_opt(lua_State *L, int idx, const char *name, long dflt)
{
    lua_getfield(L, idx, name);
    long v = dflt;
    int t = lua_type(L, -1);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = 0;
    else if (t == LUA_TNUMBER) {
        double s = lua_tonumber(L, -1);
        if (!(s >= 0 && s < 1e9)) luaL_error(L, "intuned: option '%s' must be a number of seconds >= 0", name);
        v = (long)(s * 1000.0 + 0.5);
        if (s > 0 && v == 0) v = 1;
    } else if (t != LUA_TNIL) luaL_error(L, "intuned: option '%s' must be a number of seconds", name);
    lua_pop(L, 1);
    return v;
}

static int l_curl_client(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lclient *u = lua_newuserdata(L, sizeof *u); /* 2 */
    memset(u, 0, sizeof *u);
    u->hook_ref = LUA_NOREF;
    luaL_setmetatable(L, CLIENT_MT);
    lua_newtable(L); /* 3: anchor */
    static const char *const k_ca[] = { "ca_file", "cafile", NULL };
    int nul = 0;
    itd_client_opts o;
    itd_client_opts_default(&o);
    itdl_read_config(L, 1, 3, &o.cfg, &nul);
    o.ca_file = str_field(L, 1, 3, k_ca, 0, &nul);
    if (!o.cfg.workspace_id) o.cfg.workspace_id = getenv("INTUNED_WORKSPACE_ID");
    if (!o.cfg.api_key) o.cfg.api_key = getenv("INTUNED_API_KEY");
    o.connect_timeout_ms = ms_opt(L, 1, "connect_timeout", o.connect_timeout_ms);
    o.timeout_ms = ms_opt(L, 1, "timeout", o.timeout_ms);
    o.deadline_ms = ms_opt(L, 1, "deadline", o.deadline_ms);
    lua_getfield(L, 1, "retry");
    read_policy(L, -1, NULL, &o.retry);
    lua_pop(L, 1);
    lua_getfield(L, 1, "insecure");
    o.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* extra headers: a table name -> value, or an array of "Name: value" */
    lua_getfield(L, 1, "headers"); /* 4 */
    if (!lua_isnil(L, 4)) {
        luaL_argcheck(L, lua_istable(L, 4), 1, "option 'headers' must be a table");
        o.extra_headers = itdl_header_lines(L, 4, 3, &nul); /* 5 */
    }
    lua_getfield(L, 1, "hook");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_isfunction(L, -1), 1, "option 'hook' must be a function");
        u->hook_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        o.hook = collect;
        o.hook_ud = u;
    } else {
        lua_pop(L, 1);
    }
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    if (nul) {
        seterr(&e, ITD_ERR_VALIDATION, "", "an option contains a NUL byte");
        return push_error_clear(L, &e);
    }
    u->c = itd_client_new(&o, &e);
    if (!u->c) return push_error_clear(L, &e);
    snprintf(u->desc, sizeof u->desc, "%.120s, workspace %.60s",
             o.cfg.server_url ? o.cfg.server_url : ITD_DEFAULT_SERVER_URL, o.cfg.workspace_id);
    lua_pushvalue(L, 2);
    return 1;
}

/* Call the Lua hook with every recorded event (after the C call). */
static void run_hooks(lua_State *L, lclient *u, scratch *s)
{
    if (u->hook_ref == LUA_NOREF || !s->nev) return;
    /* the function is taken once: a hook may close the client (which drops
     * the reference) and the call's remaining events still reach it */
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->hook_ref);
    int fn = lua_gettop(L);
    for (size_t i = 0; i < s->nev; i++) {
        ev *e = &s->evs[i];
        lua_pushvalue(L, fn);
        lua_createtable(L, 0, 9);
        lua_pushstring(L, e->event);
        lua_setfield(L, -2, "event");
        if (e->method) { lua_pushstring(L, e->method); lua_setfield(L, -2, "method"); }
        if (e->url) { lua_pushstring(L, e->url); lua_setfield(L, -2, "url"); }
        if (e->path) { lua_pushstring(L, e->path); lua_setfield(L, -2, "path"); }
        if (e->body) { lua_pushstring(L, e->body); lua_setfield(L, -2, "body"); }
        push_headers(L, e->hdr, e->nh);
        lua_setfield(L, -2, "headers");
        if (e->status) { lua_pushinteger(L, e->status); lua_setfield(L, -2, "status"); }
        lua_pushnumber(L, e->elapsed);
        lua_setfield(L, -2, strcmp(e->event, "retry") == 0 ? "delay" : "elapsed");
        if (e->has_err) {
            itdl_push_error(L, &e->err); /* nil, err */
            lua_setfield(L, -3, "error");
            lua_pop(L, 1);
        }
        if (e->has_resp) {
            lua_createtable(L, 0, 3);
            lua_pushinteger(L, e->status);
            lua_setfield(L, -2, "status");
            push_headers(L, e->rhdr, e->nrh);
            lua_setfield(L, -2, "headers");
            lua_pushlstring(L, e->rbody ? e->rbody : "", e->rbody ? e->rblen : 0);
            lua_setfield(L, -2, "body");
            lua_setfield(L, -2, "response");
        }
        lua_call(L, 1, 0);
    }
    lua_remove(L, fn);
}

/* Fill call i of the scratch from (op at opidx, args at argsidx, callopts at
 * coidx).  Returns 0, or -1 with s->errs[i] set (not sent). */
static int prepare_call(lua_State *L, lclient *u, scratch *s, size_t i, int op, int argsidx, int coidx, int anchor)
{
    itd_call *c = &s->calls[i];
    c->op = (itd_op)op;
    if (read_args(L, argsidx, anchor, (itd_op)op, s, &c->args, &s->errs[i])) {
        s->prefailed[i] = 1;
        return -1;
    }
    (void)u;
    if (coidx && lua_istable(L, coidx)) {
        lua_getfield(L, coidx, "retry");
        if (!lua_isnil(L, -1)) {
            read_policy(L, -1, NULL, &s->pol[i]);
            c->retry = &s->pol[i];
        }
        lua_pop(L, 1);
    } else if (coidx && !lua_isnil(L, coidx)) {
        luaL_error(L, "intuned: call options must be a table");
    }
    return 0;
}

static int client_call(lua_State *L)
{
    lclient *u = check_client(L);
    int op = check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    lua_newtable(L);                 /* 5: anchor */
    scratch *s = scratch_new(L, 1);  /* 6 */
    if (prepare_call(L, u, s, 0, op, 3, 4, 5)) return itdl_push_error(L, &s->errs[0]);
    u->sink = s;
    int rc = itd_client_call(u->c, &s->calls[0], &s->results[0], &s->errs[0]);
    u->sink = NULL;
    int nres;
    if (rc == 0) {
        push_result(L, &s->results[0]);
        nres = 1;
    } else {
        nres = itdl_push_error(L, &s->errs[0]);
    }
    run_hooks(L, u, s);
    return nres;
}

static int client_batch(lua_State *L)
{
    lclient *u = check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Number mif = luaL_optnumber(L, 3, 16);
    luaL_argcheck(L, mif >= 1, 3, "max_in_flight must be >= 1");
    lua_settop(L, 3);
    size_t n = lua_rawlen(L, 2);
    lua_newtable(L);                 /* 4: anchor */
    scratch *s = scratch_new(L, n);  /* 5 */
    /* calls[i] = { op, args, opts } or { op = , args = , opts = } */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1); /* 6 */
        if (!lua_istable(L, 6)) luaL_error(L, "intuned: batch entry %d must be a table {op, args, opts}", (int)i + 1);
        lua_rawgeti(L, 6, 1);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getfield(L, 6, "op"); }
        const char *name = lua_tostring(L, -1);
        int op = name ? itd_op_from_name(name) : -1;
        if (op < 0) luaL_error(L, "intuned: batch entry %d: unknown operation '%s'", (int)i + 1, name ? name : "nil");
        lua_pop(L, 1);
        lua_rawgeti(L, 6, 2); /* 7 */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getfield(L, 6, "args"); }
        if (!lua_isnil(L, 7) && !lua_istable(L, 7)) luaL_error(L, "intuned: batch entry %d: args must be a table", (int)i + 1);
        lua_rawgeti(L, 6, 3); /* 8 */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getfield(L, 6, "opts"); }
        prepare_call(L, u, s, i, op, 7, 8, 4);
        lua_settop(L, 5);
    }
    /* send the calls that could be built, in order */
    size_t m = 0;
    itd_call *todo = NULL;
    size_t *map = NULL;
    itd_result *res = NULL;
    itd_error *errs = NULL;
    for (size_t i = 0; i < n; i++) if (!s->prefailed[i]) m++;
    if (m == n) {
        todo = s->calls;
        res = s->results;
        errs = s->errs;
    } else if (m) {
        /* compact: move built calls to the front of temporary arrays owned by a second scratch */
        scratch *t = scratch_new(L, m); /* 6 */
        map = lua_newuserdata(L, m * sizeof *map); /* 7 */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (!s->prefailed[i]) { t->calls[j] = s->calls[i]; map[j++] = i; }
        todo = t->calls;
        res = t->results;
        errs = t->errs;
    }
    if (m) {
        u->sink = s;
        itd_client_batch(u->c, todo, m, (size_t)mif, res, errs);
        u->sink = NULL;
        if (map) {
            for (size_t j = 0; j < m; j++) {
                size_t i = map[j];
                s->results[i] = res[j];
                memset(&res[j], 0, sizeof res[j]);
                itd_error_clear(&s->errs[i]);
                s->errs[i] = errs[j];
                memset(&errs[j], 0, sizeof errs[j]);
            }
        }
    }
    lua_createtable(L, (int)n, 0);
    int out = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        if (s->errs[i].kind != ITD_ERR_NONE) {
            itdl_push_error(L, &s->errs[i]);
            lua_remove(L, -2); /* the nil */
        } else {
            push_result(L, &s->results[i]);
        }
        lua_rawseti(L, out, (int)i + 1);
    }
    run_hooks(L, u, s);
    lua_settop(L, out);
    return 1;
}

/* ------------------------------------------------- the operation table */
/* core.operations and core.arguments: the table of ops.c for the Lua side
 * (client.lua makes the client's methods from it).  Each is an array of
 * names, in the table's order, and also holds each name's row. */

static void push_strings(lua_State *L, const char *const *v, size_t max)
{
    lua_newtable(L);
    for (size_t i = 0; i < max && v[i]; i++) {
        lua_pushstring(L, v[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void push_operations(lua_State *L)
{
    lua_createtable(L, ITD_OP__COUNT, ITD_OP__COUNT);
    for (int i = 0; i < ITD_OP__COUNT; i++) {
        const itd_op_def *d = &itd_ops[i];
        lua_pushstring(L, d->name);
        lua_rawseti(L, -2, i + 1);
        lua_createtable(L, 0, 14);
        set_str(L, "name", d->name);
        set_str(L, "group", d->group);
        set_str(L, "method_name", d->method_name);
        set_str(L, "method", d->method);
        set_str(L, "path", d->path);
        lua_pushinteger(L, d->success);
        lua_setfield(L, -2, "status");
        lua_pushboolean(L, d->idempotent);
        lua_setfield(L, -2, "idempotent");
        set_str(L, "api", itd_api_name(d->api));
        const char *pa[ITD_OP_ARGS_MAX];
        size_t np = itd_op_path_args(d, pa, ITD_OP_ARGS_MAX);
        push_strings(L, pa, np);
        lua_setfield(L, -2, "args");
        set_str(L, "body", d->body);
        set_str(L, "body_type", d->request ? d->request->name : NULL);
        set_str(L, "response_type", d->response ? d->response->name : NULL);
        set_str(L, "list_of", d->list_of ? d->list_of->name : NULL);
        push_strings(L, d->query, ITD_OP_QUERY_MAX);
        lua_setfield(L, -2, "query");
        lua_setfield(L, -2, d->name);
    }
}

static void push_arguments(lua_State *L)
{
    static const char *const where[] = { "", "path", "query", "body" };
    lua_newtable(L);
    int i = 0;
    for (const itd_arg_def *d = itd_args; d->names; d++) {
        lua_pushstring(L, d->names[0]);
        lua_rawseti(L, -2, ++i);
        lua_createtable(L, 0, 5);
        set_str(L, "name", d->names[0]);
        push_strings(L, d->names + 1, SIZE_MAX);
        lua_setfield(L, -2, "aliases");
        set_str(L, "where", where[d->where]);
        set_str(L, "wire", d->wire);
        lua_pushboolean(L, d->numbers);
        lua_setfield(L, -2, "numbers");
        lua_setfield(L, -2, d->names[0]);
    }
}

/* --------------------------------------------------------------- open */

void itdl_open_client(lua_State *L)
{
    luaL_newmetatable(L, SECRETS_MT);
    lua_pushcfunction(L, secrets_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, secrets_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newmetatable(L, SCRATCH_MT);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, CLIENT_MT);
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, client_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, CLIENT_MT);
    lua_setfield(L, -2, "__name");
    static const luaL_Reg methods[] = {
        { "call", client_call },
        { "batch", client_batch },
        { "close", client_close_m },
        { NULL, NULL },
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        { "build_request", l_build_request },
        { "parse_response", l_parse_response },
        { "retry_decide", l_retry_decide },
        { "job_matches_input", l_job_matches_input },
        { "redact_headers", l_redact_headers },
        { "call_secrets", l_call_secrets },
        { "scrub", l_scrub },
        { "redact_json", l_redact_json },
        { "curl_client", l_curl_client },
        { NULL, NULL },
    };
    luaL_setfuncs(L, funcs, 0);
    push_operations(L);
    lua_setfield(L, -2, "operations");
    push_arguments(L);
    lua_setfield(L, -2, "arguments");
}
