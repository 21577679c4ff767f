/*
 * stats.h - counters of connections and requests (stats.c), answered by
 * GET /_emulator/stats.
 */
#ifndef EMU_STATS_H
#define EMU_STATS_H

#include "emu.h"

void stats_connection(void);          /* one opened */
void stats_connection_closed(void);
void stats_request(const char *method, const char *op);
void stats_create(void);
void stats_fault(void);
void stats_request_cut(void);         /* a connection cut by --request-timeout */
cJSON *stats_json(void);

#endif
