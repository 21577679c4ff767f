/* lua_intuned.h - internal interface between the Lua binding's files
 * (lua_model.c: model types and errors; lua_client.c: protocol and
 * transport; lua_call.c: the call machine) and Lua 5.1-5.4 / LuaJIT compatibility shims. */
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

/* Push a typed object of schema `s`, taking ownership of `obj` (and of the
 * warnings, which may be NULL).  On allocation failure `obj` is freed and a
 * Lua error is raised. */
void itdl_push_owned(lua_State *L, const itd_schema *s, void *obj, itd_warnings *w);

/* If the value at idx is an intuned object whose schema is `s` (or a branch
 * of union `s`), return its struct; else NULL. */
void *itdl_test_object(lua_State *L, int idx, const itd_schema *s);

/* Build a new owned object of schema `s` from a Lua table, or a copy from an
 * object of that schema.  NULL with `err` filled (kind VALIDATION) when the
 * value does not fit; never raises for bad data. */
void *itdl_to_object(lua_State *L, int idx, const itd_schema *s, itd_warnings *w, itd_error *err);

/* Convert a Lua value to a cJSON tree (free-form JSON), NULL with err set. */
cJSON *itdl_to_cjson(lua_State *L, int idx, itd_error *err, const char *path);
/* Push a cJSON value as Lua (objects/arrays as tables tagged with the
 * intuned.object / intuned.array metatables, null as intuned.null). */
void itdl_push_cjson(lua_State *L, const cJSON *v);

/* Push nil and an error object; returns 2 (for `return itdl_push_error(...)`). */
int itdl_push_error(lua_State *L, const itd_error *e);

/* Called by luaopen_intuned_core with the module table on top of the stack:
 * lua_client.c adds its functions there. */
void itdl_open_client(lua_State *L);

/* lua_client.c's readers and pushers, shared with lua_call.c (the call
 * machine's userdata), so both read a call the same way. */
struct scratch; /* owns what a call built from Lua values; freed by __gc */
struct scratch *scratch_new(lua_State *L, size_t n); /* pushes it */
int check_op(lua_State *L, int idx);
int read_args(lua_State *L, int idx, int anchor, itd_op op, struct scratch *s, itd_call_args *a, itd_error *e);
void read_policy(lua_State *L, int idx, const itd_retry_policy *dflt, itd_retry_policy *p);
long ms_opt(lua_State *L, int idx, const char *name, long dflt);
void itdl_read_config(lua_State *L, int idx, int anchor, itd_config *cfg, int *nul);
const char **itdl_header_lines(lua_State *L, int idx, int anchor, int *nul);
void push_headers(lua_State *L, const itd_header *h, size_t n);
void push_result(lua_State *L, itd_result *r);

/* Push a hook event of the call machine as the Lua table hooks get (lua_call.c). */
void itdl_push_event(lua_State *L, const itd_event *ev);

/* Called by luaopen_intuned_core: lua_call.c adds core.call_machine. */
void itdl_open_call(lua_State *L);

/* Called by luaopen_intuned_core: lua_schedule.c adds core.schedule and the
 * methods of JobSchedule objects (the metatable's __by_schema.JobSchedule). */
void itdl_open_schedule(lua_State *L);

#endif
