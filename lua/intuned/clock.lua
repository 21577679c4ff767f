-- intuned.clock: the monotonic clock and sleep of intuned.core (src/lua_clock.c),
-- documented in clock.luadoc.  Plain Lua only: inside nginx, waits use ngx.sleep.
return require("intuned.core").clock
