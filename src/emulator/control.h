/*
 * control.h - the control endpoints, /_emulator/... (control.c): fault
 * rules, stats, health, receivers' answers, a run's results.  Loopback
 * clients only.
 */
#ifndef EMU_CONTROL_H
#define EMU_CONTROL_H

#include "reply.h"

/* path: after /_emulator/. */
enum MHD_Result control_handle(struct MHD_Connection *c, const char *method, const char *path, req *q);

#endif
