/*
 * lua_curl.c - the libcurl transport in Lua, one userdata type,
 * intuned.CurlClient:
 *
 *   core.curl_client(opts)               -> intuned.CurlClient | nil, err
 *     client:call(op, args, callopts)    -> result | nil, err
 *     client:batch(calls, max_in_flight) -> { result-or-error, ... }
 *     client:close()
 *
 * `opts` and `callopts` are the tables lua/intuned/client.lua normalized
 * (every option checked there, once); callopts: timeout, deadline (seconds,
 * 0 or false: none), retry, headers, hook (false: none for this call).
 *
 * Hooks are never called from inside libcurl: the C hook of a call only
 * records (redacted) events in the scratch, and the Lua hooks are called
 * with them after the C call returned.
 */
#include <stdlib.h>
#include <string.h>
#include "lua_intuned.h"

#define CLIENT_MT "intuned.CurlClient"

typedef struct lclient {
    itd_client *c;
    int hook_ref;            /* the client's hook; LUA_NOREF when none */
    itd_api_version api_version; /* option api_version: the create body sent */
    size_t batch_bytes;      /* what the last batch's results take (client_batch) */
    size_t call_bytes;       /* what single calls' results took since the collector was told */
    /* A scratch kept for single calls (registry ref; LUA_NOREF: none yet),
     * reset rather than made per call.  While one uses it, another call (a
     * hook's, or any call after one that raised midway) makes its own. */
    int scratch_ref;
    int scratch_busy;
    char desc[200];
} lclient;

static void collect(void *ud, const itd_event *ev)
{
    const itdl_hook_slot *h = ud;
    if (ev) itdl_scratch_event(h->s, h->call, ev);
}

static lclient *check_client(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    if (!u->c) luaL_error(L, "intuned: the client is closed");
    return u;
}

static int client_close(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    if (u->c) itd_client_free(u->c);
    u->c = NULL;
    if (u->hook_ref != LUA_NOREF && u->hook_ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, u->hook_ref);
    u->hook_ref = LUA_NOREF;
    if (u->scratch_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, u->scratch_ref); /* its __gc frees it */
    u->scratch_ref = LUA_NOREF;
    return 0;
}

static int client_tostring(lua_State *L)
{
    lclient *u = luaL_checkudata(L, 1, CLIENT_MT);
    if (!u->c) lua_pushliteral(L, "intuned.CurlClient (closed)");
    else lua_pushfstring(L, "intuned.CurlClient (%s)", u->desc);
    return 1;
}

static int l_curl_client(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lclient *u = lua_newuserdata(L, sizeof *u); /* 2 */
    memset(u, 0, sizeof *u);
    u->hook_ref = LUA_NOREF;
    u->scratch_ref = LUA_NOREF;
    luaL_setmetatable(L, CLIENT_MT);
    lua_newtable(L); /* 3: anchor */
    int nul = 0;
    itd_client_opts o;
    itd_client_opts_default(&o);
    itdl_read_config(L, 1, 3, &o.cfg, &nul);
    u->api_version = itdl_read_api_version(L, 1);
    lua_getfield(L, 1, "ca_file");
    if (lua_type(L, -1) == LUA_TSTRING) {
        o.ca_file = lua_tostring(L, -1);
        lua_rawseti(L, 3, (int)lua_rawlen(L, 3) + 1);
    } else {
        lua_pop(L, 1);
    }
    o.connect_timeout_ms = itdl_read_ms(L, 1, "connect_timeout", o.connect_timeout_ms, 0);
    o.timeout_ms = itdl_read_ms(L, 1, "timeout", o.timeout_ms, 0);
    o.deadline_ms = itdl_read_ms(L, 1, "deadline", o.deadline_ms, 0);
    lua_getfield(L, 1, "retry");
    itdl_read_retry(L, -1, NULL, &o.retry);
    lua_pop(L, 1);
    lua_getfield(L, 1, "insecure");
    o.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "http2"); /* nil: on */
    o.http2 = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "headers"); /* 4 */
    if (lua_istable(L, 4)) o.extra_headers = itdl_header_lines(L, 4, 3, &nul); /* 5 */
    /* the client's hook is Lua's: each call installs the C side (collect)
     * for the hook that applies to it */
    lua_getfield(L, 1, "hook");
    if (lua_isfunction(L, -1)) u->hook_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
    if (nul) return itdl_push_invalid(L, "an option contains a NUL byte");
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    u->c = itd_client_new(&o, &e);
    if (!u->c) return itdl_push_error_clear(L, &e);
    snprintf(u->desc, sizeof u->desc, "%.120s, workspace %.60s",
             o.cfg.server_url ? o.cfg.server_url : ITD_DEFAULT_SERVER_URL,
             o.cfg.workspace_id ? o.cfg.workspace_id : "");
    lua_pushvalue(L, 2);
    return 1;
}

/* Call each recorded event's hook (hooks[call + 1]) after the C call.  The
 * functions were taken before the call: a hook may close the client and the
 * call's remaining events still reach it. */
static void run_hooks(lua_State *L, itdl_scratch *s, int hooks)
{
    if (!lua_istable(L, hooks)) return; /* no call had a hook */
    for (size_t i = 0; i < s->nev; i++) {
        itdl_event *e = &s->evs[i];
        lua_rawgeti(L, hooks, (int)e->call + 1);
        if (!lua_isfunction(L, -1)) { lua_pop(L, 1); continue; }
        e->ev.error = e->err.kind != ITD_ERR_NONE ? &e->err : NULL;
        itdl_push_event(L, &e->ev);
        lua_call(L, 1, 0);
    }
}

/* Fill call i of the scratch from (op, args at argsidx, callopts at coidx),
 * its hook function (if any) into hooks[i + 1].  0, or -1 with s->errs[i]
 * set (not sent). */
static int prepare_call(lua_State *L, lclient *u, itdl_scratch *s, size_t i, int op, int argsidx, int coidx,
                        int anchor, int hooks)
{
    itd_call *c = &s->calls[i];
    c->op = (itd_op)op;
    itd_error e = ITD_ERROR_INIT;
    if (itdl_read_args(L, argsidx, anchor, 1, (itd_op)op, u->api_version, s, &c->args, &e)) {
        s->errs[i] = itd_error_box(&e);
        s->prefailed[i] = 1;
        return -1;
    }
    int has_co = coidx && lua_istable(L, coidx);
    if (coidx && !has_co && !lua_isnil(L, coidx)) luaL_error(L, "intuned: call options must be a table");
    if (has_co) {
        c->timeout_ms = itdl_read_ms(L, coidx, "timeout", 0, -1);
        c->deadline_ms = itdl_read_ms(L, coidx, "deadline", 0, -1);
        lua_getfield(L, coidx, "retry");
        if (!lua_isnil(L, -1)) {
            itdl_read_retry(L, -1, NULL, &s->pol[i]);
            c->retry = &s->pol[i];
        }
        lua_pop(L, 1);
        lua_getfield(L, coidx, "headers");
        if (lua_istable(L, -1)) {
            int nul = 0;
            c->extra_headers = itdl_header_lines(L, lua_gettop(L), anchor, &nul);
            itdl_anchor(L, anchor); /* the lines' array */
            if (nul) {
                itd_error_set(&e, ITD_ERR_VALIDATION, "headers", "a header contains a NUL byte");
                s->errs[i] = itd_error_box(&e);
                s->prefailed[i] = 1;
            }
        }
        lua_pop(L, 1);
        lua_getfield(L, coidx, "hook"); /* nil: the client's; false: none */
    } else {
        lua_pushnil(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawgeti(L, LUA_REGISTRYINDEX, u->hook_ref);
    }
    if (lua_isfunction(L, -1)) {
        c->hook = collect;
        c->hook_ud = &s->hooks[i];
        if (!lua_istable(L, hooks)) { /* made for the first hook only: most calls have none */
            lua_newtable(L);
            lua_replace(L, hooks);
        }
        lua_rawseti(L, hooks, (int)i + 1);
    } else {
        lua_pop(L, 1);
    }
    return s->prefailed[i] ? -1 : 0;
}

static int client_call(lua_State *L)
{
    lclient *u = check_client(L);
    int op = itdl_check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    lua_pushnil(L);                             /* 5: anchor (a table once a value needs one) */
    lua_pushnil(L);                             /* 6: hooks (a table once a call has one) */
    itdl_scratch *s;
    int reuse = !u->scratch_busy;
    if (reuse && u->scratch_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, u->scratch_ref); /* 7 */
        s = lua_touserdata(L, 7);
        itdl_scratch_reset(s);
    } else {
        s = itdl_scratch_new(L, 1);             /* 7 */
        if (reuse) {
            lua_pushvalue(L, 7);
            u->scratch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    /* busy until the call's results are pushed (a raise on the way leaves
     * it busy: later calls then make their own, as before it was kept) */
    if (reuse) u->scratch_busy = 1;
    if (prepare_call(L, u, s, 0, op, 3, 4, 5, 6)) {
        if (reuse) u->scratch_busy = 0;
        return itdl_push_error(L, s->errs[0]);
    }
    itd_error e = ITD_ERROR_INIT;
    int ok = itd_client_call(u->c, &s->calls[0], &s->results[0], &e) == 0;
    if (!ok) s->errs[0] = itd_error_box(&e); /* the scratch's from here */
    itdl_scratch *ev = s;
    if (reuse && s->nev) {
        /* the hooks run after the kept scratch is free again (a hook may
         * call the client): their events move to a scratch of their own */
        ev = itdl_scratch_new(L, 0);            /* 8 */
        ev->evs = s->evs;
        ev->nev = s->nev;
        ev->capev = s->capev;
        s->evs = NULL;
        s->nev = s->capev = 0;
    }
    int nres;
    if (ok) {
        /* told in steps of 256 KB: a step per answer costs LuaJIT's
         * collector (which steps at once) more than it saves */
        u->call_bytes += itdl_result_bytes(&s->results[0]);
        if (u->call_bytes >= 256u << 10) {
            itdl_gc_account(L, u->call_bytes);
            u->call_bytes = 0;
        }
        itdl_push_result(L, &s->results[0]);
        nres = 1;
    } else {
        nres = itdl_push_error(L, s->errs[0]);
    }
    if (reuse) u->scratch_busy = 0;
    run_hooks(L, ev, 6);
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
    /* The last batch's results (tens of MB for 10,000 jobs), once dropped,
     * would wait for a collection paced by Lua's own small allocations while
     * this batch allocates as much again (RSS doubling): the collector is
     * told of them before this batch makes anything, so it frees them first
     * when they are garbage.  Single calls tell it per result instead. */
    itdl_gc_account(L, u->batch_bytes);
    u->batch_bytes = 0;
    lua_newtable(L);                            /* 4: anchor */
    lua_newtable(L);                            /* 5: hooks */
    itdl_scratch *s = itdl_scratch_new(L, n);   /* 6 */
    /* calls[i] = { op, args, opts } or { op = , args = , opts = } */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1); /* 7 */
        if (!lua_istable(L, 7)) luaL_error(L, "intuned: batch entry %d must be a table {op, args, opts}", (int)i + 1);
        lua_rawgeti(L, 7, 1);
        int named = lua_isnil(L, -1);
        if (named) { lua_pop(L, 1); lua_getfield(L, 7, "op"); }
        const char *name = lua_tostring(L, -1);
        int op = name ? itd_op_from_name(name) : -1;
        if (op < 0) luaL_error(L, "intuned: batch entry %d: unknown operation '%s'", (int)i + 1, name ? name : "nil");
        lua_pop(L, 1);
        lua_rawgeti(L, 7, 2); /* 8 */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getfield(L, 7, "args"); }
        /* { op = , project = , ... } without `args`: the entry holds its
         * own arguments (the reader takes only the operation table's names) */
        if (named && lua_isnil(L, 8)) { lua_pop(L, 1); lua_pushvalue(L, 7); }
        if (!lua_isnil(L, 8) && !lua_istable(L, 8)) luaL_error(L, "intuned: batch entry %d: args must be a table", (int)i + 1);
        lua_rawgeti(L, 7, 3); /* 9 */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getfield(L, 7, "opts"); }
        prepare_call(L, u, s, i, op, 8, 9, 4, 5);
        lua_settop(L, 6);
    }
    /* send the calls that could be built, in order */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) if (!s->prefailed[i]) m++;
    itd_call *todo = s->calls;
    itd_result *res = s->results;
    itd_error **errs = s->errs;
    size_t *map = NULL;
    if (m && m < n) {
        /* compact: the built calls to the front of arrays owned by a second scratch */
        itdl_scratch *t = itdl_scratch_new(L, m);  /* 7 */
        map = lua_newuserdata(L, m * sizeof *map); /* 8 */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (!s->prefailed[i]) { t->calls[j] = s->calls[i]; map[j++] = i; }
        todo = t->calls;
        res = t->results;
        errs = t->errs;
    }
    if (m) {
        itd_client_batch(u->c, todo, m, (size_t)mif, res, errs);
        for (size_t j = 0; map && j < m; j++) {
            size_t i = map[j];
            s->results[i] = res[j];
            memset(&res[j], 0, sizeof res[j]);
            s->errs[i] = errs[j]; /* NULL before: a call sent was not prefailed */
            errs[j] = NULL;
        }
    }
    lua_createtable(L, (int)n, 0);
    int out = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        if (s->errs[i]) {
            itdl_push_error(L, s->errs[i]);
            lua_remove(L, -2); /* the nil */
        } else {
            u->batch_bytes += itdl_result_bytes(&s->results[i]);
            itdl_push_result(L, &s->results[i]);
        }
        lua_rawseti(L, out, (int)i + 1);
    }
    run_hooks(L, s, 5);
    lua_settop(L, out);
    return 1;
}

void itdl_open_curl(lua_State *L)
{
    static const luaL_Reg meta[] = { { "__gc", client_close }, { "__tostring", client_tostring }, { NULL, NULL } };
    static const luaL_Reg methods[] = {
        { "call", client_call },
        { "batch", client_batch },
        { "close", client_close },
        { NULL, NULL },
    };
    itdl_new_type(L, CLIENT_MT, meta, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_curl_client);
    lua_setfield(L, -2, "curl_client");
}
