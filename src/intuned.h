/*
 * intuned.h - public C API of lua-intuned's core, all of it: the Intuned
 * Jobs API model, its JSON codec, the protocol (requests/responses without
 * I/O), the call machine and a libcurl transport.  Usable from C without Lua.
 *
 * It only gathers the headers of the core's rooms; a file of the core
 * includes the rooms it uses instead:
 *
 *   itd_error.h   errors and warnings (every room reports through it)
 *   model.h       the model structs and their schemas
 *   codec.h       decode / encode / clone / free, JSON text, value formats
 *   protocol.h    requests and responses of each operation, no I/O
 *   ops.h         the operation table (one row per operation)
 *   scrub.h       secrets: scrubbing by value, redaction by key
 *   call.h        the call machine: retries, deadline, reconciliation, events
 *   schedule.h    the schedule engine
 *   transport.h   the libcurl client that drives the call machine
 *   http1.h       HTTP/1.x response heads from bytes (the nginx transport)
 *
 * Conventions
 *  - Ownership: a decoded object is one tree; free it with itd_free(schema, obj)
 *    (or the typed *_free).  Strings in it are owned by it.
 *  - Errors are returned, never printed: functions take an `itd_error *` that
 *    they fill on failure (it may be NULL).  Release it with itd_error_clear().
 *  - Field names are the API's wire names (model.h).
 */
#ifndef INTUNED_H
#define INTUNED_H

#include "itd_error.h"
#include "model.h"
#include "codec.h"
#include "protocol.h"
#include "ops.h"
#include "scrub.h"
#include "call.h"
#include "schedule.h"
#include "transport.h"
#include "http1.h"

#endif
