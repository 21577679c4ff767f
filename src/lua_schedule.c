/*
 * lua_schedule.c - the schedule engine (src/schedule.c) in Lua:
 * intuned.schedule.{next_runs, prev_runs, runs_between, describe, warnings}
 * and the methods schedule:next_runs / prev_runs / runs_between of JobSchedule
 * objects (so job.schedule:next_runs(3) works on any job).  A schedule is a
 * JobSchedule object or a table of that shape; times go in as Unix seconds
 * or the API's date strings and come out as both.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lua_intuned.h"

#define MAX_TIMES 1000000      /* one call's answer: enough for a year of every 30 s */
#define DEFAULT_BETWEEN 10000

/* The schedule at idx: a borrowed struct of a JobSchedule object, or one
 * built from a table (*owned set; the caller frees it).  NULL with err. */
static itd_schedule *get_schedule(lua_State *L, int idx, itd_schedule **owned, itd_error *err)
{
    *owned = NULL;
    itd_schedule *s = itdl_test_object(L, idx, &itd_JobSchedule);
    if (s) return s;
    if (!lua_istable(L, idx))
        luaL_argerror(L, idx, lua_pushfstring(L, "a JobSchedule or a table expected, got %s", luaL_typename(L, idx)));
    *owned = itdl_to_object(L, idx, &itd_JobSchedule, NULL, err);
    return *owned;
}

/* An instant: Unix seconds or a date-time string; `dflt_now` when nil. */
static double get_time(lua_State *L, int idx, int dflt_now)
{
    if (lua_isnoneornil(L, idx) && dflt_now) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        double t = lua_tonumber(L, idx);
        if (t != t) luaL_argerror(L, idx, "a time, not NaN");
        return t;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        double t;
        if (itd_datetime_parse(lua_tostring(L, idx), &t) != 0)
            luaL_argerror(L, idx, lua_pushfstring(L, "not a date-time: \"%s\"", lua_tostring(L, idx)));
        return t;
    }
    luaL_argerror(L, idx, lua_pushfstring(L, "Unix seconds or a date-time string expected, got %s", luaL_typename(L, idx)));
    return 0;
}

static size_t get_count(lua_State *L, int idx, lua_Number dflt, const char *what)
{
    lua_Number n = luaL_optnumber(L, idx, dflt);
    if (!(n >= 0 && n <= MAX_TIMES) || n != (lua_Number)(long)n)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a whole number from 0 to %d", what, MAX_TIMES));
    return (size_t)n;
}

/* dates and epochs as two arrays */
static void push_times(lua_State *L, const double *t, size_t n)
{
    char buf[32];
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, itd_datetime_format(t[i], buf, sizeof buf) ? buf : "");
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_Number x = (lua_Number)t[i];
#if LUA_VERSION_NUM >= 503
        if (x == (lua_Number)(lua_Integer)x) lua_pushinteger(L, (lua_Integer)x);
        else
#endif
            lua_pushnumber(L, x);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

enum { NEXT, PREV, BETWEEN };

static int runs(lua_State *L, int what)
{
    double a = 0, b = 0;
    size_t n;
    if (what == BETWEEN) {
        a = get_time(L, 2, 0);
        b = get_time(L, 3, 0);
        n = get_count(L, 4, DEFAULT_BETWEEN, "the limit");
    } else {
        n = get_count(L, 2, 1, "the count");
        a = get_time(L, 3, 1);
    }
    /* the answer's buffer belongs to Lua, so nothing leaks if a later push raises */
    double *out = lua_newuserdata(L, (n ? n : 1) * sizeof *out);
    itd_error e = ITD_ERROR_INIT;
    itd_schedule *owned;
    itd_schedule *s = get_schedule(L, 1, &owned, &e);
    if (!s) {
        int r = itdl_push_error(L, &e);
        itd_error_clear(&e);
        return r;
    }
    itd_sched *c = itd_sched_new(s, NULL);
    itd_free(&itd_JobSchedule, owned);
    if (!c) return luaL_error(L, "intuned: out of memory");
    int more = 0;
    size_t k = what == NEXT ? itd_sched_next(c, a, out, n)
             : what == PREV ? itd_sched_prev(c, a, out, n)
                            : itd_sched_between(c, a, b, out, n, &more);
    itd_sched_free(c);
    push_times(L, out, k);
    if (what != BETWEEN) return 2;
    lua_pushboolean(L, more);
    return 3;
}

static int l_next_runs(lua_State *L) { return runs(L, NEXT); }
static int l_prev_runs(lua_State *L) { return runs(L, PREV); }
static int l_runs_between(lua_State *L) { return runs(L, BETWEEN); }

/* describe (text and warnings) or warnings alone. */
static int describe(lua_State *L, int with_text)
{
    itd_error e = ITD_ERROR_INIT;
    itd_schedule *owned;
    itd_schedule *s = get_schedule(L, 1, &owned, &e);
    if (!s) return itdl_push_error_clear(L, &e);
    /* a table's copy is freed before anything can raise */
    char *text = with_text ? itd_schedule_describe(s) : NULL;
    itd_warnings w = { 0 };
    int rc = itd_schedule_warnings(s, "schedule", &w);
    itd_free(&itd_JobSchedule, owned);
    if ((with_text && !text) || rc) {
        free(text);
        itd_warnings_clear(&w);
        return luaL_error(L, "intuned: out of memory");
    }
    if (with_text) {
        lua_pushstring(L, text);
        free(text);
    }
    lua_createtable(L, (int)w.n, 0);
    for (size_t i = 0; i < w.n; i++) {
        lua_pushstring(L, w.items[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    itd_warnings_clear(&w);
    return with_text ? 2 : 1;
}

static int l_describe(lua_State *L) { return describe(L, 1); }
static int l_warnings(lua_State *L) { return describe(L, 0); }

void itdl_open_schedule(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "next_runs", l_next_runs },
        { "prev_runs", l_prev_runs },
        { "runs_between", l_runs_between },
        { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "next_runs", l_next_runs },
        { "prev_runs", l_prev_runs },
        { "runs_between", l_runs_between },
        { "describe", l_describe },
        { "warnings", l_warnings },
        { NULL, NULL },
    };
    /* the object metatable's per-type methods */
    luaL_getmetatable(L, "intuned.Object");
    lua_getfield(L, -1, "__by_schema");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "__by_schema");
    }
    luaL_newlib(L, methods);
    lua_setfield(L, -2, itd_schema_name(&itd_JobSchedule));
    lua_pop(L, 2);
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "schedule");
}
