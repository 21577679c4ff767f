/*
 * lua_util.c - what the binding's files share: the Lua 5.1 shims, error
 * objects (core.new_error, core.is_error), the scratch that owns a call's C
 * memory, the readers of arguments and options, and the pushers of results,
 * headers and hook events.
 *
 * The option readers do not validate: lua/intuned/client.lua checks every
 * option once (unknown keys refused) and hands over a normalized table.
 * They only read it safely -- a value of the wrong type raises, a number
 * out of range is clamped -- since core.curl_client and core.call_machine
 * may be called directly.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lua_intuned.h"

#define ERR_MT "intuned.Error"
#define SCRATCH_MT "intuned.CallScratch"

/* ------------------------------------------------------------ 5.1 shims */

#ifdef ITDL_COMPAT_51
void itdl_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name; l++) {
        for (int i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

void *itdl_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx)) return NULL;
    luaL_getmetatable(L, tname);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#endif

/* --------------------------------------------------------------- errors */

int itdl_err_kind(const char *name)
{
    for (int k = ITD_ERR_VALIDATION; k <= ITD_ERR_NOMEM; k++)
        if (strcmp(itd_err_kind_name((itd_err_kind)k), name) == 0) return k;
    return -1;
}

int itdl_push_error(lua_State *L, const itd_error *e)
{
    char line[ITD_MSG_MAX + ITD_PATH_MAX + 64];
    lua_pushnil(L);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, itd_err_kind_name(e->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, e->message);
    lua_setfield(L, -2, "message");
    if (e->path[0]) { lua_pushstring(L, e->path); lua_setfield(L, -2, "path"); }
    if (e->status) { lua_pushinteger(L, e->status); lua_setfield(L, -2, "status"); }
    if (e->details) { itdl_push_cjson(L, e->details); lua_setfield(L, -2, "details"); }
    if (e->data) { itdl_push_cjson(L, e->data); lua_setfield(L, -2, "data"); }
    if (e->body) { lua_pushlstring(L, e->body, e->body_len); lua_setfield(L, -2, "body"); }
    lua_pushboolean(L, e->retryable);
    lua_setfield(L, -2, "retryable");
    if (e->attempts) { lua_pushinteger(L, e->attempts); lua_setfield(L, -2, "attempts"); }
    if (e->retry_after >= 0 && e->status) { lua_pushnumber(L, e->retry_after); lua_setfield(L, -2, "retry_after"); }
    lua_pushstring(L, itd_error_format(e, line, sizeof line));
    lua_setfield(L, -2, "text");
    luaL_setmetatable(L, ERR_MT);
    return 2;
}

int itdl_push_error_clear(lua_State *L, itd_error *e)
{
    int n = itdl_push_error(L, e);
    itd_error_clear(e);
    return n;
}

int itdl_push_invalid(lua_State *L, const char *msg)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    itd_error_set(&e, ITD_ERR_VALIDATION, "", "%s", msg);
    return itdl_push_error_clear(L, &e);
}

static int err_tostring(lua_State *L)
{
    lua_getfield(L, 1, "text");
    if (lua_isstring(L, -1)) return 1;
    lua_getfield(L, 1, "message");
    return 1;
}

/* core.new_error(kind, message[, fields]): an error object for failures
 * decided in Lua, the same as the core's. */
static int l_new_error(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    itd_error e;
    memset(&e, 0, sizeof e);
    int k = itdl_err_kind(kind);
    if (k < 0) return luaL_argerror(L, 1, "unknown error kind");
    e.kind = (itd_err_kind)k;
    snprintf(e.message, sizeof e.message, "%s", msg);
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "status");
        e.status = (int)lua_tointeger(L, -1);
        lua_getfield(L, 3, "path");
        if (lua_isstring(L, -1)) snprintf(e.path, sizeof e.path, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    char line[ITD_MSG_MAX + ITD_PATH_MAX + 64];
    lua_settop(L, 3);
    lua_createtable(L, 0, 8);
    if (lua_istable(L, 3)) { /* copy the extra fields */
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, 4);
        }
    }
    lua_pushstring(L, kind);
    lua_setfield(L, 4, "kind");
    lua_pushstring(L, msg);
    lua_setfield(L, 4, "message");
    lua_getfield(L, 4, "retryable");
    if (lua_isnil(L, -1)) { lua_pushboolean(L, 0); lua_setfield(L, 4, "retryable"); }
    lua_pop(L, 1);
    lua_pushstring(L, itd_error_format(&e, line, sizeof line));
    lua_setfield(L, 4, "text");
    luaL_setmetatable(L, ERR_MT);
    return 1;
}

static int l_is_error(lua_State *L)
{
    int yes = lua_istable(L, 1) && lua_getmetatable(L, 1);
    if (yes) {
        luaL_getmetatable(L, ERR_MT);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

/* -------------------------------------------------------------- scratch */

static void event_free(itdl_event *e)
{
    itd_event *x = &e->ev;
    free((char *)x->op);
    free((char *)x->method);
    free((char *)x->url);
    free((char *)x->path);
    free((char *)x->body);
    free((char *)x->resp_body);
    itd_headers_free((itd_header *)x->headers, x->nheaders);
    itd_headers_free((itd_header *)x->resp_headers, x->n_resp_headers);
}

static int scratch_gc(lua_State *L)
{
    itdl_scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    for (size_t i = 0; i < s->n; i++) {
        if (s->results) itd_result_free(&s->results[i]);
        if (s->errs) itd_error_free(s->errs[i]);
    }
    free(s->calls); /* one block: calls, results, pol, hooks, prefailed */
    free(s->errs);
    for (size_t i = 0; i < s->nowned; i++) itd_free(s->owned_s[i], s->owned[i]);
    free(s->owned);
    free(s->owned_s);
    itd_request_free(&s->req);
    for (size_t i = 0; i < s->nev; i++) event_free(&s->evs[i]);
    free(s->evs);
    memset(s, 0, sizeof *s);
    return 0;
}

void itdl_scratch_reset(itdl_scratch *s)
{
    for (size_t i = 0; i < s->n; i++) {
        itd_result_free(&s->results[i]);
        itd_error_free(s->errs[i]);
        s->errs[i] = NULL;
    }
    if (s->n) {
        memset(s->calls, 0, s->n * sizeof *s->calls);
        memset(s->results, 0, s->n * sizeof *s->results);
        memset(s->pol, 0, s->n * sizeof *s->pol);
        memset(s->prefailed, 0, s->n * sizeof *s->prefailed);
    }
    for (size_t i = 0; i < s->nowned; i++) itd_free(s->owned_s[i], s->owned[i]);
    s->nowned = 0;
    itd_request_free(&s->req);
    for (size_t i = 0; i < s->nev; i++) event_free(&s->evs[i]);
    s->nev = 0;
}

itdl_scratch *itdl_scratch_new(lua_State *L, size_t n)
{
    itdl_scratch *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCRATCH_MT);
    if (n) {
        /* one allocation for the arrays (a call's cost is mostly
         * allocations); each element size is a multiple of its alignment,
         * so arrays of 8-aligned types first, the ints last.  The errors
         * apart, and only for the calls that fail (itd_error_box): an
         * itd_error is over 800 bytes, 8 MB for a batch of 10,000. */
        size_t per = sizeof *s->calls + sizeof *s->results + sizeof *s->pol +
                     sizeof *s->hooks + sizeof *s->prefailed;
        if (n > SIZE_MAX / per || n > SIZE_MAX / sizeof *s->errs) luaL_error(L, "intuned: out of memory");
        char *b = calloc(n, per);
        if (!b) luaL_error(L, "intuned: out of memory");
        s->calls = (itd_call *)b;
        s->results = (itd_result *)(b + n * sizeof *s->calls);
        s->pol = (itd_retry_policy *)((char *)s->results + n * sizeof *s->results);
        if (!(s->errs = calloc(n, sizeof *s->errs))) luaL_error(L, "intuned: out of memory");
        s->hooks = (itdl_hook_slot *)((char *)s->pol + n * sizeof *s->pol);
        s->prefailed = (int *)((char *)s->hooks + n * sizeof *s->hooks);
        s->n = n;
        for (size_t i = 0; i < n; i++) {
            s->hooks[i].s = s;
            s->hooks[i].call = i;
        }
    }
    return s;
}

static int scratch_own(itdl_scratch *s, const itd_schema *sc, void *obj)
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

static char *dup_n(const char *p, size_t n, int *bad)
{
    if (!p) return NULL;
    char *d = malloc(n + 1);
    if (!d) { *bad = 1; return NULL; }
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static itd_header *dup_headers(const itd_header *h, size_t n, int *bad)
{
    if (!n) return NULL;
    itd_header *d = calloc(n, sizeof *d);
    if (!d) { *bad = 1; return NULL; }
    for (size_t i = 0; i < n; i++) {
        d[i].name = dup_n(h[i].name, strlen(h[i].name), bad);
        d[i].value = dup_n(h[i].value, strlen(h[i].value), bad);
    }
    return d;
}

void itdl_scratch_event(itdl_scratch *s, size_t call, const itd_event *x)
{
    if (s->nev == s->capev) {
        size_t cap = s->capev ? s->capev * 2 : 16;
        itdl_event *n = realloc(s->evs, cap * sizeof *n);
        if (!n) return; /* events are best effort */
        s->evs = n;
        s->capev = cap;
    }
    itdl_event *e = &s->evs[s->nev];
    memset(e, 0, sizeof *e);
    int bad = 0;
    e->call = call;
    itd_event *d = &e->ev;
    *d = *x;
    d->op = dup_n(x->op, x->op ? strlen(x->op) : 0, &bad);
    d->method = dup_n(x->method, x->method ? strlen(x->method) : 0, &bad);
    d->url = dup_n(x->url, x->url ? strlen(x->url) : 0, &bad);
    d->path = dup_n(x->path, x->path ? strlen(x->path) : 0, &bad);
    d->body = dup_n(x->body, x->body_len, &bad);
    d->resp_body = dup_n(x->resp_body, x->resp_body_len, &bad);
    d->headers = dup_headers(x->headers, x->nheaders, &bad);
    if (!d->headers) d->nheaders = 0;
    d->resp_headers = dup_headers(x->resp_headers, x->n_resp_headers, &bad);
    if (!d->resp_headers) d->n_resp_headers = 0;
    if (x->error) { /* a shallow copy already: no details, data or body */
        e->err = *x->error;
        e->err.details = e->err.data = NULL;
        e->err.body = NULL;
        e->err.body_len = 0;
    }
    d->error = NULL; /* set when pushed: the array may move */
    s->nev++;
    if (bad) { /* drop it rather than show half of it */
        s->nev--;
        event_free(e);
    }
}

/* -------------------------------------------------------------- readers */

int itdl_check_op(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int op = itd_op_from_name(name);
    if (op < 0) return luaL_argerror(L, idx, lua_pushfstring(L, "unknown operation '%s'", name));
    return op;
}

/* A string field of the table at idx (the first of the names present),
 * anchored at `anchor` so the pointer stays valid; NULL when absent.
 * Raises when present but not a string (or a number when numbers are
 * allowed); sets *nul when the string holds a NUL byte. */
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
        itdl_anchor(L, anchor);
        return s;
    }
    return NULL;
}

void itdl_anchor(lua_State *L, int anchor)
{
    if (!lua_istable(L, anchor)) { /* made for the first value: most calls anchor none */
        lua_newtable(L);
        lua_replace(L, anchor);
    }
    lua_rawseti(L, anchor, (int)lua_rawlen(L, anchor) + 1);
}

#define ARGS_MAX 32
/* The argument one of whose names is k[0..kl), and that name's place in its
 * list; NULL if none. */
static const itd_arg_def *arg_by_name(const char *k, size_t kl, int *rank)
{
    for (const itd_arg_def *d = itd_args; d->names && d - itd_args < ARGS_MAX; d++)
        for (int i = 0; d->names[i]; i++)
            if (d->names[i][0] == k[0] && strlen(d->names[i]) == kl && memcmp(d->names[i], k, kl) == 0) {
                *rank = i;
                return d;
            }
    return NULL;
}

itd_api_version itdl_read_api_version(lua_State *L, int idx)
{
    itd_api_version v = ITD_APIV_V0_3_12;
    lua_getfield(L, idx, "api_version");
    if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TSTRING || itd_api_version_parse(lua_tostring(L, -1), &v)))
        luaL_error(L, "intuned: option 'api_version' must be \"v0.3.12\" (or \"0.3.12\") or \"newest\" (or \"v0.5.2\")");
    lua_pop(L, 1);
    return v;
}

int itdl_read_args(lua_State *L, int idx, int anchor, int pinned, itd_op op, itd_api_version v, itdl_scratch *s,
                   itd_call_args *a, itd_error *e)
{
    memset(a, 0, sizeof *a);
    a->api_version = v;
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    /* every path and query argument of the operation table (ops.c), by any
     * of its names, whatever the operation: a mistyped one raises.  One pass
     * over the table (a call's holds a few keys) rather than a lookup of
     * every spelling of every argument; of two spellings given, the first
     * of the names list wins. */
    int nul = 0;
    unsigned char rank[ARGS_MAX];
    memset(rank, 0xff, sizeof rank);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int r;
        size_t kl;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
        const itd_arg_def *d = k ? arg_by_name(k, kl, &r) : NULL;
        if (d && d->where != ITD_ARG_BODY) {
            int t = lua_type(L, -1);
            if (t != LUA_TSTRING && !(d->numbers && t == LUA_TNUMBER))
                luaL_error(L, "intuned: argument field '%s' must be a string, got %s", k, lua_typename(L, t));
            size_t di = (size_t)(d - itd_args);
            if (r < rank[di]) {
                size_t len;
                const char *sv = lua_tolstring(L, -1, &len); /* the value's copy on the stack, not the key */
                if (strlen(sv) != len) nul = 1;
                rank[di] = (unsigned char)r;
                itd_arg_set_str(d, a, sv);
                /* a string the table keeps needs no anchor when the table
                 * outlives the borrow; a number's string is this copy's */
                if (!pinned || t != LUA_TSTRING) {
                    lua_pushvalue(L, -1);
                    itdl_anchor(L, anchor);
                }
            }
        }
        lua_pop(L, 1);
    }
    if (nul) {
        itd_error_clear(e);
        itd_error_set(e, ITD_ERR_VALIDATION, "", "a path or query parameter contains a NUL byte");
        return -1;
    }
    /* the operation's body, by the first of its names present; none given:
     * the request builder says what is missing */
    const itd_op_def *od = itd_op_def_of(op);
    const itd_arg_def *body = od && od->body ? itd_arg_find(od->body) : NULL;
    if (!body) return 0;
    const itd_schema *sc = itd_op_request(od, v); /* the body form of the client's API version */
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
        if (e->kind == ITD_ERR_NONE) itd_error_set(e, ITD_ERR_VALIDATION, "", "invalid input");
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

void itdl_read_config(lua_State *L, int idx, int anchor, itd_config *cfg, int *nul)
{
    static const char *const k_srv[] = { "server_url", NULL };
    static const char *const k_ws[] = { "workspace_id", NULL };
    static const char *const k_key[] = { "api_key", NULL };
    static const char *const k_ua[] = { "user_agent", NULL };
    cfg->server_url = str_field(L, idx, anchor, k_srv, 0, nul);
    cfg->workspace_id = str_field(L, idx, anchor, k_ws, 0, nul);
    cfg->api_key = str_field(L, idx, anchor, k_key, 0, nul);
    cfg->user_agent = str_field(L, idx, anchor, k_ua, 0, nul);
}

static double clamp(double v, double lo, double hi)
{
    return v != v ? lo : v < lo ? lo : v > hi ? hi : v;
}

static double num_field(lua_State *L, int idx, const char *name, double dflt)
{
    lua_getfield(L, idx, name);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "intuned: retry.%s must be a number", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

void itdl_read_retry(lua_State *L, int idx, const itd_retry_policy *dflt, itd_retry_policy *p)
{
    itd_retry_policy_default(p);
    int t = lua_type(L, idx);
    if ((t == LUA_TNIL || t == LUA_TNONE) && dflt) *p = *dflt;
    if (t == LUA_TNIL || t == LUA_TNONE) return;
    if (t == LUA_TBOOLEAN) { p->enabled = lua_toboolean(L, idx); return; }
    if (t != LUA_TTABLE) { luaL_error(L, "intuned: retry must be a table, a boolean or nil"); return; }
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    p->max_attempts = (int)clamp(num_field(L, idx, "max_attempts", p->max_attempts), 1, 1000);
    p->initial_delay = clamp(num_field(L, idx, "initial_delay", p->initial_delay), 0, 1e9);
    p->max_delay = clamp(num_field(L, idx, "max_delay", p->max_delay), 0, 1e9);
    p->multiplier = clamp(num_field(L, idx, "multiplier", p->multiplier), 1, 1e9);
    p->jitter = clamp(num_field(L, idx, "jitter", p->jitter), 0, 1);
    lua_getfield(L, idx, "enabled");
    if (!lua_isnil(L, -1)) p->enabled = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

long itdl_read_ms(lua_State *L, int idx, const char *name, long dflt, long none)
{
    lua_getfield(L, idx, name);
    long v = dflt;
    int t = lua_type(L, -1);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
        v = none;
    } else if (t == LUA_TNUMBER) {
        double s = clamp(lua_tonumber(L, -1), 0, 1e9);
        v = s == 0 ? none : (long)(s * 1000.0 + 0.5);
        if (s > 0 && v == 0) v = 1;
    } else if (t != LUA_TNIL) {
        luaL_error(L, "intuned: option '%s' must be a number of seconds or false", name);
    }
    lua_pop(L, 1);
    return v;
}

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
            lua_pushvalue(L, -1); /* tostring on a copy: a number value must not change under lua_next */
            lua_pushfstring(L, "%s: %s", lua_tostring(L, -3), lua_tostring(L, -1));
            lua_remove(L, -2);
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
        } else {
            luaL_error(L, "intuned: option 'headers' must map names to values");
        }
        size_t len;
        const char *line = lua_tolstring(L, -1, &len);
        if (strlen(line) != len) *nul = 1;
        if (i < nh) hv[i++] = line;
        itdl_anchor(L, anchor);
        lua_pop(L, 1);
    }
    hv[i] = NULL;
    return hv;
}

/* -------------------------------------------------------------- pushers */

static void push_lower(lua_State *L, const char *s)
{
    char buf[128];
    size_t n = strlen(s);
    if (n >= sizeof buf) { lua_pushstring(L, s); return; }
    for (size_t i = 0; i <= n; i++) buf[i] = (char)tolower((unsigned char)s[i]);
    lua_pushstring(L, buf);
}

void itdl_push_headers(lua_State *L, const itd_header *h, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        push_lower(L, h[i].name);
        lua_pushstring(L, h[i].value);
        lua_rawset(L, -3);
    }
}

void itdl_push_request(lua_State *L, const itd_request *r, int pairs)
{
    lua_createtable(L, 0, 7);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, r->path);
    lua_setfield(L, -2, "path");
    if (!pairs) {
        itdl_push_headers(L, r->headers, r->nheaders);
    } else {
        lua_createtable(L, (int)r->nheaders, 0);
        for (size_t i = 0; i < r->nheaders; i++) {
            lua_createtable(L, 2, 0);
            lua_pushstring(L, r->headers[i].name);
            lua_rawseti(L, -2, 1);
            lua_pushstring(L, r->headers[i].value);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    lua_setfield(L, -2, "headers");
    if (r->body) {
        lua_pushlstring(L, r->body, r->body_len);
        lua_setfield(L, -2, "body");
    }
}

void itdl_gc_account(lua_State *L, size_t bytes)
{
    size_t kb = bytes >> 10;
    if (kb) lua_gc(L, LUA_GCSTEP, kb > (1u << 20) ? 1 << 20 : (int)kb);
}

size_t itdl_result_bytes(const itd_result *r)
{
    return r->obj ? itd_frozen_bytes(r->obj) : 0;
}

void itdl_push_result(lua_State *L, itd_result *r)
{
    const itd_op_def *d = itd_op_def_of(r->op);
    if (!r->obj || (d && !d->response)) { /* delete */
        lua_pushboolean(L, 1);
        return;
    }
    if (d && d->list_of && r->schema == d->response) { /* a list: a plain array of its items */
        void *root = r->obj;
        const itd_schema *rs = r->schema;
        int has_tc = rs == &itd_JobRunList && ((itd_run_list *)root)->has_totalCount;
        double tc = has_tc ? ((itd_run_list *)root)->totalCount : 0;
        r->obj = NULL;
        r->schema = NULL;
        /* the items are views of the list, which lives while any of them does */
        itdl_push_items(L, rs, root, d->list_of, d->list_off);
        if (has_tc) {
            /* a count: an integer, as JobRunList.decode(...).totalCount gives it */
            if (tc == floor(tc) && fabs(tc) <= 9007199254740992.0) lua_pushinteger(L, (lua_Integer)tc);
            else lua_pushnumber(L, tc);
            lua_setfield(L, -2, "totalCount");
        }
        return;
    }
    void *obj = r->obj;
    const itd_schema *s = r->schema;
    r->obj = NULL;
    r->schema = NULL;
    itdl_push_owned(L, s, obj, NULL);
}

void itdl_push_event(lua_State *L, const itd_event *ev)
{
    static const char *const names[] = { "", "request", "response", "retry" };
    lua_createtable(L, 0, 12);
    lua_pushstring(L, ev->kind >= ITD_EV_REQUEST && ev->kind <= ITD_EV_RETRY ? names[ev->kind] : "");
    lua_setfield(L, -2, "event");
    lua_pushinteger(L, ev->attempt);
    lua_setfield(L, -2, "attempt");
    if (ev->op) { lua_pushstring(L, ev->op); lua_setfield(L, -2, "op"); }
    if (ev->method) { lua_pushstring(L, ev->method); lua_setfield(L, -2, "method"); }
    if (ev->url) { lua_pushstring(L, ev->url); lua_setfield(L, -2, "url"); }
    if (ev->path) { lua_pushstring(L, ev->path); lua_setfield(L, -2, "path"); }
    itdl_push_headers(L, ev->headers, ev->nheaders);
    lua_setfield(L, -2, "headers");
    if (ev->body) { lua_pushlstring(L, ev->body, ev->body_len); lua_setfield(L, -2, "body"); }
    if (ev->status) { lua_pushinteger(L, ev->status); lua_setfield(L, -2, "status"); }
    if (ev->kind == ITD_EV_RESPONSE) {
        lua_pushnumber(L, ev->elapsed);
        lua_setfield(L, -2, "elapsed");
        if (ev->resp_body) { /* a response arrived */
            lua_createtable(L, 0, 3);
            lua_pushinteger(L, ev->status);
            lua_setfield(L, -2, "status");
            itdl_push_headers(L, ev->resp_headers, ev->n_resp_headers);
            lua_setfield(L, -2, "headers");
            lua_pushlstring(L, ev->resp_body, ev->resp_body_len);
            lua_setfield(L, -2, "body");
            lua_setfield(L, -2, "response");
        }
    }
    if (ev->kind == ITD_EV_RETRY) {
        lua_pushnumber(L, ev->delay);
        lua_setfield(L, -2, "delay");
    }
    if (ev->error) {
        itdl_push_error(L, ev->error); /* nil, err */
        lua_setfield(L, -3, "error");
        lua_pop(L, 1);
    }
}

/* ----------------------------------------------------------------- open */

void itdl_new_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
}

void itdl_open_util(lua_State *L)
{
    static const luaL_Reg err_meta[] = { { "__tostring", err_tostring }, { NULL, NULL } };
    static const luaL_Reg scratch_meta[] = { { "__gc", scratch_gc }, { NULL, NULL } };
    itdl_new_type(L, ERR_MT, err_meta, NULL);
    itdl_new_type(L, SCRATCH_MT, scratch_meta, NULL);
    lua_pop(L, 2);

    static const luaL_Reg funcs[] = {
        { "is_error", l_is_error },
        { "new_error", l_new_error },
        { NULL, NULL },
    };
    luaL_setfuncs(L, funcs, 0);
}
