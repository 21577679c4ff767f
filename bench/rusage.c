/* bench/rusage.c - a Lua module for the benchmarks only (built by
 * bench/client at bench time, never installed): the process's CPU time and
 * a monotonic clock, so the Lua side measures exactly what
 * bench/curl_baseline.c measures in C.
 *   rusage.cpu() -> user + system seconds of this process (getrusage RUSAGE_SELF)
 *   rusage.now() -> CLOCK_MONOTONIC seconds
 *   rusage.rss() -> resident set size in KiB (/proc/self/statm)
 *   rusage.heap() -> KiB the process holds from malloc (glibc's mallinfo2:
 *                    in use, not merely kept by the allocator); -1 elsewhere.
 *                    Beside rss: RSS also counts freed memory the allocator
 *                    has not given back, so a leak shows here, not only there */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <lua.h>
#include <lauxlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static int l_cpu(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushnumber(L, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return 1;
}

static int l_now(lua_State *L)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    lua_pushnumber(L, (double)t.tv_sec + t.tv_nsec / 1e9);
    return 1;
}

static int l_rss(lua_State *L)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    lua_pushinteger(L, (lua_Integer)(res * (sysconf(_SC_PAGESIZE) / 1024)));
    return 1;
}

static int l_heap(lua_State *L)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 m = mallinfo2();
    lua_pushinteger(L, (lua_Integer)((m.uordblks + m.hblkhd) / 1024));
#else
    lua_pushinteger(L, -1);
#endif
    return 1;
}

int luaopen_rusage(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, l_rss);
    lua_setfield(L, -2, "rss");
    lua_pushcfunction(L, l_heap);
    lua_setfield(L, -2, "heap");
    return 1;
}
