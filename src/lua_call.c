/*
 * lua_call.c - the Lua face of the call machine (call.h), one userdata type,
 * intuned.CallMachine, for transports written in Lua (intuned.ngx):
 *
 *   core.call_machine(cfg, op, args, policy, seed, now) -> m | nil, err
 *     cfg: api_key, workspace_id, server_url, user_agent
 *     policy: timeout, deadline (seconds; false = none), retry (table or
 *       false), headers (name -> value), quiet (true: no events); nil
 *       fields take the defaults
 *     seed: drives the jitter (nil: one of its own); now: seconds, any origin
 *   m:next(now[, wire]) -> "send", request, timeout, fresh | "wait", delay | "done"
 *     request: { method, url, path, headers = { {name, value}, ... }, body },
 *     or with wire true { method, url, wire = the HTTP/1.1 request's bytes }
 *     (http1.h: what the nginx transport writes)
 *   m:feed_response(now, status, headers, body[, i, j])   headers: name -> value;
 *     the body is body:sub(i, j) (all of it by default)
 *   m:feed_failure(now, kind, message, sent, retryable[, status[, path]])
 *     kind: "timeout", "connection", "decode", or "validation" (a request
 *     the transport cannot send: nothing was sent; path names the field)
 *   m:events()   -> the events queued so far, oldest first, redacted by the
 *     machine: { event = "request"|"response"|"retry", attempt, op, method,
 *     url, path, headers, body, status, response = { status, headers, body },
 *     elapsed, delay, error }
 *   m:result()   -> result | nil, err (after "done"; the same value again later)
 *   m:attempts() -> attempts so far
 *
 * Misuse (a feed without a send, result before done) raises; nothing here
 * raises while C memory is held outside the userdata: the machine, its
 * result and error live in it and __gc frees them.  The strings and input
 * objects the machine borrows are kept alive by the userdata's uservalue
 * (the anchor table, holding the scratch that owns converted inputs).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "lua_intuned.h"
#include "call.h"
#include "http1.h"

#define CALL_MT "intuned.CallMachine"

#define set_anchor itdl_setuservalue
#define get_anchor itdl_getuservalue

enum { ST_NEXT, ST_FEED, ST_DONE };

typedef struct lcall {
    itd_call_m *m;      /* NULL once the result was taken (or never built) */
    itd_op op;
    int state;          /* what the caller may do next */
    int attempts;       /* kept when m is freed */
    int taken;          /* result() ran: its value is in the anchor table */
    itd_call_args args; /* borrowed by the machine: lives here; its strings and inputs in the anchor */
    itd_result res;
    itd_error *err;     /* boxed when something failed (an itd_error is 824 bytes:
                         * a userdata that size per call drove LuaJIT's collector) */
} lcall;

static int call_gc(lua_State *L)
{
    lcall *u = luaL_checkudata(L, 1, CALL_MT);
    if (u->m) itd_call_free(u->m);
    u->m = NULL;
    itd_result_free(&u->res);
    itd_error_free(u->err);
    u->err = NULL;
    return 0;
}

static lcall *check_call(lua_State *L)
{
    return luaL_checkudata(L, 1, CALL_MT);
}

/* The machine of a call still running (raises when it is done). */
static lcall *check_running(lua_State *L)
{
    lcall *u = check_call(L);
    if (!u->m || u->state == ST_DONE) luaL_error(L, "intuned: the call is done");
    return u;
}

static double check_now(lua_State *L, int idx)
{
    double now = luaL_checknumber(L, idx);
    luaL_argcheck(L, isfinite(now), idx, "now must be a finite number of seconds");
    return now;
}

/* Seconds from a policy field ("timeout", "deadline"): nil = dflt, false or 0 = none. */
static double seconds_opt(lua_State *L, int idx, const char *name, double dflt)
{
    return itdl_read_ms(L, idx, name, (long)(dflt * 1000.0 + 0.5), 0) / 1000.0;
}

static int l_call_machine(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = itdl_check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    lua_Number seedn = luaL_optnumber(L, 5, 0);
    double now = check_now(L, 6);
    lua_settop(L, 6);
    lcall *u = lua_newuserdata(L, sizeof *u); /* 7: before anything is acquired */
    memset(u, 0, sizeof *u);
    u->op = (itd_op)op;
    luaL_setmetatable(L, CALL_MT);
    lua_newtable(L); /* 8: anchor of what the machine borrows */
    lua_pushvalue(L, 8);
    set_anchor(L, 7);
    /* the owner of a body converted from a table: only an operation with
     * a body has one (a userdata fewer for the collector per call) */
    const itd_op_def *od = itd_op_def_of((itd_op)op);
    itdl_scratch *s = NULL;
    if (od && od->body) {
        s = itdl_scratch_new(L, 0);
        lua_setfield(L, 8, "scratch");
    }

    int nul = 0;
    itd_config cfg;
    itdl_read_config(L, 1, 8, &cfg, &nul);
    itd_error e = ITD_ERROR_INIT;
    if (itdl_read_args(L, 3, 8, 0, (itd_op)op, itdl_read_api_version(L, 1), s, &u->args, &e)) {
        u->err = itd_error_box(&e); /* the userdata's: a raise from here leaks nothing */
        return itdl_push_error(L, u->err);
    }
    itd_call_policy pol;
    itd_call_policy_default(&pol);
    if (lua_istable(L, 4)) {
        pol.timeout = seconds_opt(L, 4, "timeout", pol.timeout);
        pol.deadline = seconds_opt(L, 4, "deadline", pol.deadline);
        lua_getfield(L, 4, "quiet"); /* no hook: no events to build */
        pol.quiet = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, 4, "retry");
        itdl_read_retry(L, -1, NULL, &pol.retry); /* nil: the default policy */
        lua_pop(L, 1);
        lua_getfield(L, 4, "headers");
        if (!lua_isnil(L, -1)) {
            luaL_argcheck(L, lua_istable(L, -1), 4, "policy.headers must be a table");
            pol.extra_headers = itdl_header_lines(L, lua_gettop(L), 8, &nul);
        }
        lua_settop(L, 8);
    }
    if (nul) {
        itd_error_set(&e, ITD_ERR_VALIDATION, "", "a configuration value or header contains a NUL byte");
        u->err = itd_error_box(&e);
        return itdl_push_error(L, u->err);
    }
    uint64_t seed = seedn != 0 && fabs(seedn) < 9e18 ? (uint64_t)(int64_t)seedn : itd_rng_auto_seed() ^ (uint64_t)(uintptr_t)u;
    u->m = itd_call_new(&cfg, (itd_op)op, &u->args, &pol, seed, now, &e);
    if (!u->m) {
        u->err = itd_error_box(&e);
        return itdl_push_error(L, u->err);
    }
    lua_settop(L, 7);
    return 1;
}

/* { method, url, wire }: the request as the bytes to write.  The bytes hold
 * the API key: the C copies are wiped (the Lua string is the caller's, as
 * the headers of the table form are). */
static void push_wire(lua_State *L, const itd_request *q)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, q->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, q->url);
    lua_setfield(L, -2, "url");
    char small[2048];
    size_t n = itd_http1_request(q, small, sizeof small);
    if (n == 0) return; /* not an http(s) URL: the transport says so */
    if (n <= sizeof small) {
        lua_pushlstring(L, small, n);
        memset(small, 0, n);
    } else {
        /* a userdata, so that a raise while pushing leaks nothing */
        char *big = lua_newuserdata(L, n);
        itd_http1_request(q, big, n);
        lua_pushlstring(L, big, n);
        memset(big, 0, n);
        lua_remove(L, -2);
    }
    lua_setfield(L, -2, "wire");
}

static int m_next(lua_State *L)
{
    lcall *u = check_running(L);
    double now = check_now(L, 2);
    int wire = lua_toboolean(L, 3);
    if (u->state == ST_FEED) return luaL_error(L, "intuned: feed the outcome of the send before asking for the next step");
    itd_step st;
    memset(&st, 0, sizeof st);
    switch (itd_call_next(u->m, now, &st)) {
    case ITD_STEP_SEND:
        u->state = ST_FEED;
        lua_pushliteral(L, "send");
        if (wire) push_wire(L, st.request);
        else itdl_push_request(L, st.request, 1);
        lua_pushnumber(L, st.timeout);
        lua_pushboolean(L, st.fresh);
        return 4;
    case ITD_STEP_WAIT:
        lua_pushliteral(L, "wait");
        lua_pushnumber(L, st.delay);
        return 2;
    case ITD_STEP_DONE:
    default:
        u->state = ST_DONE;
        lua_pushliteral(L, "done");
        return 1;
    }
}

static lcall *check_feed(lua_State *L)
{
    lcall *u = check_running(L);
    if (u->state != ST_FEED) luaL_error(L, "intuned: nothing was sent to feed the outcome of");
    return u;
}

static int m_feed_response(lua_State *L)
{
    lcall *u = check_feed(L);
    double now = check_now(L, 2);
    lua_Number status = luaL_checknumber(L, 3);
    luaL_argcheck(L, status >= 100 && status <= 999, 3, "an HTTP status");
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 5, "", &blen);
    /* body[i..j] (string.sub's positions, 1 and -1 by default): a reader's
     * buffer is given as it is, not first copied into a string of its own */
    lua_Integer bi = luaL_optinteger(L, 6, 1), bj = luaL_optinteger(L, 7, -1);
    if (bj < 0) bj += (lua_Integer)blen + 1;
    if (bi < 1) bi = 1;
    if (bj > (lua_Integer)blen) bj = (lua_Integer)blen;
    if (bi > bj) {
        body = "";
        blen = 0;
    } else {
        body += bi - 1;
        blen = (size_t)(bj - bi + 1);
    }
    lua_settop(L, 5);
    itd_header few[32];
    itd_response_in r;
    memset(&r, 0, sizeof r);
    r.status = (long)status;
    r.body = body;
    r.body_len = blen;
    if (lua_istable(L, 4)) {
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, 4, "headers must map names to string values");
            n++;
            lua_pop(L, 1);
        }
        /* the strings stay in table 4; the array on the stack unless long */
        itd_header *h = n <= sizeof few / sizeof few[0] ? few : lua_newuserdata(L, n * sizeof *h);
        size_t i = 0;
        lua_pushnil(L);
        while (lua_next(L, 4) && i < n) {
            h[i].name = (char *)lua_tostring(L, -2);
            h[i].value = (char *)lua_tostring(L, -1);
            if (!strcasecmp(h[i].name, "content-type")) r.content_type = h[i].value;
            else if (!strcasecmp(h[i].name, "retry-after")) r.retry_after = h[i].value;
            i++;
            lua_pop(L, 1);
        }
        r.headers = h;
        r.nheaders = i;
    }
    u->state = ST_NEXT;
    itd_call_feed_response(u->m, now, &r);
    return 0;
}

static int m_feed_failure(lua_State *L)
{
    lcall *u = check_feed(L);
    double now = check_now(L, 2);
    int k = itdl_err_kind(luaL_checkstring(L, 3));
    itd_failure f;
    memset(&f, 0, sizeof f);
    f.kind = (itd_err_kind)k;
    if (k != ITD_ERR_TIMEOUT && k != ITD_ERR_CONNECTION && k != ITD_ERR_DECODE && k != ITD_ERR_VALIDATION)
        return luaL_argerror(L, 3, "\"timeout\", \"connection\", \"decode\" or \"validation\" expected");
    f.message = luaL_optstring(L, 4, "");
    f.sent = lua_toboolean(L, 5);
    f.retryable = lua_toboolean(L, 6);
    lua_Number st = luaL_optnumber(L, 7, 0);
    f.status = st >= 100 && st <= 999 ? (long)st : 0;
    f.path = luaL_optstring(L, 8, NULL);
    u->state = ST_NEXT;
    itd_call_feed_failure(u->m, now, &f);
    return 0;
}

static int m_events(lua_State *L)
{
    lcall *u = check_call(L);
    lua_newtable(L);
    if (!u->m) return 1;
    int n = 0;
    const itd_event *ev;
    while ((ev = itd_call_event(u->m)) != NULL) {
        itdl_push_event(L, ev);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int m_result(lua_State *L)
{
    lcall *u = check_call(L);
    lua_settop(L, 1);
    get_anchor(L, 1); /* 2 */
    if (!u->taken) {
        if (u->state != ST_DONE) return luaL_error(L, "intuned: the call is not done (next() has not said \"done\")");
        u->attempts = itd_call_attempts(u->m);
        itd_error e = ITD_ERROR_INIT;
        int rc = itd_call_result(u->m, &u->res, &e);
        if (rc) u->err = itd_error_box(&e);
        itd_call_free(u->m); /* what it borrowed may go now */
        u->m = NULL;
        u->taken = 1;
        if (rc == 0) {
            itdl_push_result(L, &u->res); /* moves the objects out; u->res frees the rest */
            lua_setfield(L, 2, "result");
        } else {
            itdl_push_error(L, u->err);
            lua_setfield(L, 2, "error");
            lua_pop(L, 1);
            itd_error_free(u->err);
            u->err = NULL;
        }
        lua_pushnil(L);
        lua_setfield(L, 2, "scratch");
    }
    lua_getfield(L, 2, "result");
    if (!lua_isnil(L, -1)) return 1;
    lua_getfield(L, 2, "error");
    return 2;
}

static int m_attempts(lua_State *L)
{
    lcall *u = check_call(L);
    lua_pushinteger(L, u->m ? itd_call_attempts(u->m) : u->attempts);
    return 1;
}

static int call_tostring(lua_State *L)
{
    lcall *u = check_call(L);
    static const char *const states[] = { "running", "sending", "done" };
    lua_pushfstring(L, CALL_MT " (%s, %d attempts, %s)", itd_op_name(u->op),
                    u->m ? itd_call_attempts(u->m) : u->attempts, u->taken ? "done" : states[u->state]);
    return 1;
}

void itdl_open_call(lua_State *L)
{
    static const luaL_Reg meta[] = { { "__gc", call_gc }, { "__tostring", call_tostring }, { NULL, NULL } };
    static const luaL_Reg methods[] = {
        { "next", m_next },
        { "feed_response", m_feed_response },
        { "feed_failure", m_feed_failure },
        { "events", m_events },
        { "result", m_result },
        { "attempts", m_attempts },
        { NULL, NULL },
    };
    itdl_new_type(L, CALL_MT, meta, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_call_machine);
    lua_setfield(L, -2, "call_machine");
}
