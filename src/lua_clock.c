/* lua_clock.c - core.clock (also require "intuned.clock"): a monotonic
 * clock and a sleep for plain Lua.
 *
 * intuned.workflow waits between polls of a run; inside nginx it uses
 * ngx.now and ngx.sleep (which yield), elsewhere these two.  Lua itself has
 * neither (os.time counts whole seconds and can jump, os.clock is CPU time),
 * and spawning `sleep` per poll would cost a process each time. */
#include <errno.h>
#include <time.h>

#include "lua_intuned.h"

/* The longest sleep taken: a wait is bounded by its timeout anyway, this
 * only keeps a bad value from blocking the process for years. */
#define ITD_CLOCK_MAX_SLEEP 86400.0

/* clock.now() -> seconds on the monotonic clock (an arbitrary origin). */
static int l_now(lua_State *L)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return luaL_error(L, "clock_gettime failed");
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* clock.sleep(seconds): 0 .. 86400, fractions allowed; resumes after a signal. */
static int l_sleep(lua_State *L)
{
    double s = (double)luaL_checknumber(L, 1);
    if (!(s >= 0 && s <= ITD_CLOCK_MAX_SLEEP)) return luaL_argerror(L, 1, "seconds from 0 to 86400 expected");
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
    return 0;
}

void itdl_open_clock(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    lua_setfield(L, -2, "clock");
}
