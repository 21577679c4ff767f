/* lua_intuned.h - the private header of the Lua binding (intuned.core).
 *
 *   lua_intuned.c   the module opener: calls each file's open function
 *   lua_util.c      what several files share: Lua 5.1 shims, error objects,
 *                   the scratch that owns a call's C memory, the readers of
 *                   arguments and (already normalized) options, the pushers
 *                   of results, headers and hook events
 *   lua_model.c     model objects (intuned.Object), type tables, free-form
 *                   JSON values and their markers, times and durations
 *   lua_protocol.c  request building, response parsing, the secrets of a
 *                   call (intuned.Secrets), the operation table
 *   lua_curl.c      the libcurl transport (intuned.CurlClient)
 *   lua_call.c      the call machine (intuned.CallMachine)
 *   lua_schedule.c  the schedule engine
 *
 * Every binding file includes this header and core headers only.  Options
 * are validated once, by lua/intuned/client.lua; the readers here only read
 * the normalized tables it makes (they still raise on a wrong type, since
 * core.curl_client and core.call_machine can be called directly). */
#ifndef LUA_INTUNED_H
#define LUA_INTUNED_H

#include <lua.h>
#include <lauxlib.h>
#include "intuned.h"

#if LUA_VERSION_NUM < 502
#  define lua_rawlen(L, i) lua_objlen((L), (i))
#  ifndef luaL_newlib /* LuaJIT 2.1's headers already have these 5.2 functions */
#    define luaL_newlibtable(L, l) lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#    define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs((L), (l), 0))
#    define luaL_setfuncs itdl_setfuncs
#    define luaL_testudata itdl_testudata
#    define luaL_setmetatable(L, t) (luaL_getmetatable((L), (t)), lua_setmetatable((L), -2))
#    define ITDL_COMPAT_51 1
void itdl_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *itdl_testudata(lua_State *L, int idx, const char *tname);
#  endif
#endif

#if LUA_VERSION_NUM < 502
#  define itdl_setuservalue(L, i) lua_setfenv((L), (i))
#  define itdl_getuservalue(L, i) lua_getfenv((L), (i))
#else
#  define itdl_setuservalue(L, i) lua_setuservalue((L), (i))
#  define itdl_getuservalue(L, i) lua_getuservalue((L), (i))
#endif

/* Each file's open function: adds its metatables, and its functions to the
 * module table on top of the stack. */
void itdl_open_util(lua_State *L);
void itdl_open_model(lua_State *L);
void itdl_open_protocol(lua_State *L);
void itdl_open_curl(lua_State *L);
void itdl_open_call(lua_State *L);
void itdl_open_schedule(lua_State *L);
void itdl_open_clock(lua_State *L);    /* lua_clock.c: clock.now, clock.sleep */

/* A userdata type: metatable `name` with the metamethods `meta`, `__name`,
 * and (when `methods` is not NULL) `__index` a table of `methods`.  Leaves
 * the metatable on the stack. */
void itdl_new_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* ---------------------------------------------------------- lua_model.c */

/* Push a typed object of schema `s`, taking ownership of `obj` (and of the
 * warnings, which may be NULL).  On allocation failure `obj` is freed and a
 * Lua error is raised. */
void itdl_push_owned(lua_State *L, const itd_schema *s, void *obj, itd_warnings *w);
/* A Lua array of the items of root's list (the itd_array at list_off), views of
 * one doc that owns root and lives while any of them does. */
/* A result's memory is malloc'd (one arena per answer), which Lua's
 * collector does not see: dropped results would pile up between collections
 * paced by Lua's own small allocations (a few hundred bytes a call beside a
 * few KB a result).  itdl_gc_account tells the collector, as if Lua had
 * allocated `bytes`; itdl_result_bytes is what a result takes.  (Inside
 * nginx the request's own Lua garbage paces it enough: not used there.) */
void itdl_gc_account(lua_State *L, size_t bytes);
size_t itdl_result_bytes(const itd_result *r);
void itdl_push_items(lua_State *L, const itd_schema *rs, void *root, const itd_schema *es, size_t list_off);

/* If the value at idx is an intuned object whose schema is `s` (or a branch
 * of union `s`), return its struct; else NULL. */
void *itdl_test_object(lua_State *L, int idx, const itd_schema *s);

/* Build a new owned object of schema `s` from a Lua table, or a copy from an
 * object of that schema.  NULL with `err` filled (kind VALIDATION) when the
 * value does not fit; never raises for bad data. */
void *itdl_to_object(lua_State *L, int idx, const itd_schema *s, itd_warnings *w, itd_error *err);

/* Push a cJSON value as Lua (objects/arrays as tables tagged with the
 * intuned.object / intuned.array metatables, null as intuned.null). */
void itdl_push_cjson(lua_State *L, const cJSON *v);

/* ----------------------------------------------------------- lua_util.c */

/* Push nil and an error object; returns 2 (for `return itdl_push_error(...)`). */
int itdl_push_error(lua_State *L, const itd_error *e);
/* The same, then clears `e` (which must own nothing a raise would leak). */
int itdl_push_error_clear(lua_State *L, itd_error *e);
/* nil and an error of kind validation saying `msg` (nothing was sent). */
int itdl_push_invalid(lua_State *L, const char *msg);
/* The kind named `name` ("timeout", ...), or -1. */
int itdl_err_kind(const char *name);

/* A hook event as the binding keeps it until the Lua hook runs: a deep copy
 * of the machine's event, and the call (of a batch) it belongs to. */
typedef struct itdl_event {
    size_t call;
    itd_event ev;      /* ev.error is set when pushed (the array may move before) */
    itd_error err;     /* kind ITD_ERR_NONE: the event has no error */
} itdl_event;

/* Everything C allocates for a call lives in a scratch userdata, created
 * (zeroed, metatable set) before the first allocation, so a Lua error at any
 * point leaves nothing behind: __gc frees it. */
typedef struct itdl_hook_slot {
    struct itdl_scratch *s;
    size_t call;
} itdl_hook_slot;

typedef struct itdl_scratch {
    size_t n;
    itd_call *calls;
    itd_result *results;
    itd_error **errs;         /* NULL, or call i's error (boxed: itd_error_box) */
    itd_retry_policy *pol;
    itdl_hook_slot *hooks;    /* the C hook's user data of each call */
    int *prefailed;           /* errs[i] set before sending (bad arguments) */
    void **owned;             /* inputs built from tables */
    const itd_schema **owned_s;
    size_t nowned, capowned;
    itd_request req;
    itdl_event *evs;
    size_t nev, capev;
} itdl_scratch;

itdl_scratch *itdl_scratch_new(lua_State *L, size_t n); /* pushes it */
/* Free what a scratch's calls hold and zero them, keeping its arrays, for
 * the next call (as new, but for the memory). */
void itdl_scratch_reset(itdl_scratch *s);
/* Record a hook event of call `call` (a deep copy; best effort on OOM). */
void itdl_scratch_event(itdl_scratch *s, size_t call, const itd_event *ev);

/* Readers.  `anchor` is the stack slot of a table that keeps the Lua
 * strings read alive for as long as C borrows them; a slot holding nil gets
 * its table when the first value is anchored (itdl_anchor: pops the value). */
void itdl_anchor(lua_State *L, int anchor);
int itdl_check_op(lua_State *L, int idx);
/* Fill `a` from the args table at idx (any of each argument's names).  0, or
 * -1 with `e` (data the request cannot be built from).  Owned inputs go to
 * the scratch.  `pinned`: no Lua code runs before C is done with the
 * strings (one call, one batch), so the strings the table holds are
 * borrowed from it unanchored. */
int itdl_read_args(lua_State *L, int idx, int anchor, int pinned, itd_op op, itd_api_version v, itdl_scratch *s,
                   itd_call_args *a, itd_error *e);
/* The option api_version of the table at idx ("v0.3.12" when absent); raises
 * for another value. */
itd_api_version itdl_read_api_version(lua_State *L, int idx);
/* The config (server_url, workspace_id, api_key, user_agent) of the table at
 * idx; *nul set when a value holds a NUL byte. */
void itdl_read_config(lua_State *L, int idx, int anchor, itd_config *cfg, int *nul);
/* A retry policy from the value at idx: nil = `dflt` (or the default when
 * NULL), false = off, true = the default, a table = its fields over the
 * default. */
void itdl_read_retry(lua_State *L, int idx, const itd_retry_policy *dflt, itd_retry_policy *p);
/* Field `name` of the table at idx, in seconds, as milliseconds: nil =
 * `dflt`, false or 0 = `none`. */
long itdl_read_ms(lua_State *L, int idx, const char *name, long dflt, long none);
/* Extra headers from the table at idx (absolute) -- name -> value, or an
 * array of "Name: value" -- as a NULL-terminated array of lines in a
 * userdata pushed on the stack, the lines anchored at `anchor`. */
const char **itdl_header_lines(lua_State *L, int idx, int anchor, int *nul);

/* Pushers. */
void itdl_push_headers(lua_State *L, const itd_header *h, size_t n);
/* The typed result held in `r`, moving its object(s) out: an object, a plain
 * array for lists (plus totalCount), true for delete. */
void itdl_push_result(lua_State *L, itd_result *r);
/* A request as { method, url, path, headers, body }: headers lower-case
 * name -> value, or (pairs) { {name, value}, ... } as sent. */
void itdl_push_request(lua_State *L, const itd_request *r, int pairs);
/* A hook event as the Lua hooks get it (both transports). */
void itdl_push_event(lua_State *L, const itd_event *ev);

#endif
