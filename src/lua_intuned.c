/*
 * lua_intuned.c - the module opener of intuned.core: one table, filled by
 * each file of the binding in turn (lua_intuned.h says which file holds
 * what).  The order matters only where a file uses another's metatable:
 * errors and scratches first, model objects before the schedule methods
 * that hang on them.
 */
#include "lua_intuned.h"

int luaopen_intuned_core(lua_State *L);
int luaopen_intuned_core(lua_State *L)
{
    lua_newtable(L);
    itdl_open_util(L);      /* new_error, is_error; Error and scratch metatables */
    itdl_open_model(L);     /* the model types, JSON values, times */
    itdl_open_protocol(L);  /* build_request, parse_response, call_secrets, scrub, operations */
    itdl_open_curl(L);      /* curl_client */
    itdl_open_call(L);      /* call_machine */
    itdl_open_schedule(L);  /* schedule */
    itdl_open_clock(L);     /* clock (intuned.clock) */
    return 1;
}
