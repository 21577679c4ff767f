/*
 * receiver.h - the webhook receiver, /_receiver/NAME (receiver.c): records
 * what sinks POST, bounded in memory, for examples and tests.
 */
#ifndef EMU_RECEIVER_H
#define EMU_RECEIVER_H

#include "reply.h"

/* POST records; GET lists, DELETE clears (both with the API key).  path: after /_receiver/. */
enum MHD_Result receiver_handle(struct MHD_Connection *c, const char *method, const char *path, req *q);
/* NAME answers `status` to its next `count` POSTs (POST /_emulator/receivers/NAME). */
void receiver_set_failing(const char *name, int status, long count);
void receiver_shutdown(void);   /* frees every record */

#endif
