/* tools/lua_runner.c - a minimal Lua 5.4 interpreter: `lua_runner script [args]`
 * or `lua_runner -e chunk` (the specs start the running interpreter that way).
 * Built with -fsanitize=address,undefined by tools/test.sh so that the Lua
 * module is checked under ASan/UBSan without LD_PRELOAD (which would leak
 * into every curl, nginx or compiler the specs start). */
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s script [args]\n", argv[0]); return 2; }
    lua_State *L = luaL_newstate();
    if (!L) return 1;
    luaL_openlibs(L);
    lua_createtable(L, argc, 1); /* arg, as lua.c builds it */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    int chunk = strcmp(argv[1], "-e") == 0 && argc > 2;
    if ((chunk ? luaL_loadstring(L, argv[2]) : luaL_loadfile(L, argv[1])) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    int nargs = 0;
    for (int i = chunk ? 3 : 2; i < argc; i++, nargs++) lua_pushstring(L, argv[i]);
    int rc = lua_pcall(L, nargs, 0, 1);
    if (rc != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    /* LeakSanitizer checks after main returns; should that check die, what
     * stdio still held (busted's summary, into a file) would be lost */
    fflush(stdout);
    fflush(stderr);
    return rc == LUA_OK ? 0 : 1;
}
