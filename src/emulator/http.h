/*
 * http.h - the HTTP server (http.c).
 */
#ifndef EMU_HTTP_H
#define EMU_HTTP_H

#include "emu.h"

int http_start(void);     /* binds, fills g_origin; 0 or -1 */
void http_stop(void);

#endif
