/*
 * lua_protocol.c - the protocol without I/O, for tests, tools and transports
 * written in Lua:
 *
 *   core.build_request(cfg, op, args)      -> request table | nil, err
 *   core.parse_response(op, status, content_type, retry_after, body)
 *                                          -> result | nil, err
 *   core.call_secrets(cfg, op, args)       -> intuned.Secrets (what the call carries)
 *   core.scrub(secrets, v)                 -> v without them (tables in place)
 *   core.http1_head(bytes[, init[, counted]]) -> next, status, headers, version
 *                                           | false, next head, counted (more bytes needed) | nil, err
 *   core.operations, core.arguments        the operation table (ops.c)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lua_intuned.h"
#include "http1.h"

/* ---------------------------------------------------------- build_request */

static int l_build_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = itdl_check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L); /* 4: anchor */
    itdl_scratch *s = itdl_scratch_new(L, 0); /* 5 */
    int nul = 0;
    itd_config cfg;
    itdl_read_config(L, 1, 4, &cfg, &nul);
    if (nul) return itdl_push_invalid(L, "a configuration value contains a NUL byte");
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    itd_call_args a;
    if (itdl_read_args(L, 3, 4, 0, (itd_op)op, itdl_read_api_version(L, 1), s, &a, &e)) return itdl_push_error_clear(L, &e);
    if (itd_request_build(&cfg, (itd_op)op, &a, &s->req, &e)) return itdl_push_error_clear(L, &e);
    itd_request *r = &s->req;
    itdl_push_request(L, r, 0);
    lua_pushinteger(L, r->expect_status);
    lua_setfield(L, -2, "expect_status");
    lua_pushstring(L, itd_op_name((itd_op)op));
    lua_setfield(L, -2, "op");
    return 1;
}

/* ------------------------------------------------------------ http1_head */

/* Names lower-cased; a name sent again joined with ", ", but for
 * Retry-After and Content-Type, where the last one counts (a list of them
 * means nothing). */
static char ascii_lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static void head_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    lua_State *L = ud;
    char small[64] = { 0 }; /* (gcc 12 cannot see that it is set before use) */
    luaL_Buffer b;
    if (nlen <= sizeof small) {
        for (size_t i = 0; i < nlen; i++) small[i] = ascii_lower(name[i]);
        lua_pushlstring(L, small, nlen);
    } else {
        luaL_buffinit(L, &b);
        for (size_t i = 0; i < nlen; i++) luaL_addchar(&b, ascii_lower(name[i]));
        luaL_pushresult(&b);
    }
    int last_wins = (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0) ||
                    (nlen == 12 && strncasecmp(name, "content-type", 12) == 0);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (!last_wins && !lua_isnil(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, value, vlen);
        lua_concat(L, 3);
    } else {
        lua_pop(L, 1);
        lua_pushlstring(L, value, vlen);
    }
    lua_rawset(L, -3);
}

/* The response head at bytes[init..] (init 1 by default), for the nginx
 * transport: the index after it, the status, the headers (lower-case
 * names) and the version ("1.1"); false, where the next head starts (after
 * the complete 1xx heads, which the caller may drop) and the head bytes
 * counted so far, when the bytes end before the head does; nil and what is
 * wrong when it is malformed or over libcurl's caps.  `counted` (0): what
 * an earlier call counted of the 1xx heads dropped since. */
static int l_http1_head(lua_State *L)
{
    size_t len = 0;
    const char *buf = luaL_checklstring(L, 1, &len);
    lua_Integer init = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, init >= 1 && (size_t)(init - 1) <= len, 2, "a position in the bytes");
    lua_Number counted = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, counted >= 0 && counted < 9e15, 3, "a count of bytes");
    size_t at = (size_t)(init - 1);
    lua_settop(L, 3);
    lua_createtable(L, 0, 8); /* 4 */
    itd_http1_head h;
    char why[96];
    int r = itd_http1_parse_head(buf + at, len - at, NULL, (size_t)counted, &h, head_header, L, why, sizeof why);
    if (r == ITD_HTTP1_MORE) {
        lua_pushboolean(L, 0);
        lua_pushinteger(L, (lua_Integer)(at + h.end + 1));
        lua_pushnumber(L, (lua_Number)h.counted);
        return 3;
    }
    if (r != ITD_HTTP1_DONE) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    char version[3] = { (char)('0' + h.major), '.', (char)('0' + h.minor) };
    lua_pushinteger(L, (lua_Integer)(at + h.end + 1));
    lua_pushinteger(L, h.status);
    lua_pushvalue(L, 4);
    lua_pushlstring(L, version, sizeof version);
    return 4;
}

/* --------------------------------------------------------- parse_response */

static int l_parse_response(lua_State *L)
{
    int op = itdl_check_op(L, 1);
    lua_Number st = luaL_checknumber(L, 2);
    const char *ct = luaL_optstring(L, 3, NULL);
    const char *ra = NULL;
    if (lua_type(L, 4) == LUA_TNUMBER || lua_type(L, 4) == LUA_TSTRING) ra = lua_tostring(L, 4);
    else if (!lua_isnoneornil(L, 4)) luaL_argerror(L, 4, "string, number or nil expected");
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 5, NULL, &blen);
    itdl_scratch *s = itdl_scratch_new(L, 1);
    itd_response resp = { (long)st, ct, ra, body, body ? blen : 0 };
    itd_error e = ITD_ERROR_INIT;
    if (itd_response_parse((itd_op)op, &resp, &s->results[0], &e)) {
        s->errs[0] = itd_error_box(&e); /* freed by the scratch */
        return itdl_push_error(L, s->errs[0]);
    }
    itdl_push_result(L, &s->results[0]);
    return 1;
}

/* --------------------------------------------------------------- secrets */
/* The same set of secrets and the same replacement as the call machine
 * (scrub.c), over Lua values: what the nginx transport scrubs a raise with. */

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
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = itdl_check_op(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L);                /* 4: anchor */
    itdl_scratch *sc = itdl_scratch_new(L, 0); /* 5: owns a converted input */
    itd_secrets *sec = lua_newuserdata(L, sizeof *sec); /* 6 */
    itd_secrets_init(sec);
    luaL_setmetatable(L, SECRETS_MT);
    int nul = 0;
    itd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    itdl_read_config(L, 1, 4, &cfg, &nul);
    itd_call_args a;
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    /* an input that does not convert is never sent: only the key matters then */
    if (itdl_read_args(L, 3, 4, 0, (itd_op)op, itdl_read_api_version(L, 1), sc, &a, &e)) memset(&a, 0, sizeof a);
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
        lua_createtable(L, 0, 16);
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
        set_str(L, "body_type", itd_schema_name(d->request));
        /* the body of a client with api_version "newest" */
        set_str(L, "body_type_newest", itd_schema_name(itd_op_request(d, ITD_APIV_NEWEST)));
        set_str(L, "response_type", itd_schema_name(d->response));
        set_str(L, "list_of", itd_schema_name(d->list_of));
        set_str(L, "accept", d->accept ? d->accept : "application/json");
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

void itdl_open_protocol(lua_State *L)
{
    static const luaL_Reg meta[] = { { "__gc", secrets_gc }, { "__tostring", secrets_tostring }, { NULL, NULL } };
    itdl_new_type(L, SECRETS_MT, meta, NULL);
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        { "build_request", l_build_request },
        { "parse_response", l_parse_response },
        { "call_secrets", l_call_secrets },
        { "scrub", l_scrub },
        { "http1_head", l_http1_head },
        { NULL, NULL },
    };
    luaL_setfuncs(L, funcs, 0);
    push_operations(L);
    lua_setfield(L, -2, "operations");
    push_arguments(L);
    lua_setfield(L, -2, "arguments");
}
