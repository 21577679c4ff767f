/*
 * faults.h - injected fault rules (faults.c): parsed from the command line
 * or /_emulator/faults, picked per API request before it touches any state.
 */
#ifndef EMU_FAULTS_H
#define EMU_FAULTS_H

#include "emu.h"

typedef enum { FK_NONE = 0, FK_DROP, FK_MALFORMED, FK_TRUNCATED, FK_CONTENT_TYPE, FK_DRIP } emu_fault_kind;
typedef struct emu_fault {
    int status;              /* 0: none */
    double rate;             /* probability per matching request when count < 0 */
    long count;              /* apply to the next N matching requests; < 0: use rate */
    char retry_after[32];    /* Retry-After value, "" for none */
    double latency_ms;
    emu_fault_kind kind;
    /* drip: the answer's body goes out drip_bytes at a time, drip_ms apart
     * (pauses capped at 200 ms per answer), chunked or with Content-Length */
    double drip_ms;
    int drip_bytes;
    int drip_chunked;
    char match[256];         /* substring of the request path, "" = any */
    char method[16];         /* "" = any */
} emu_fault;
/* Parse one rule from JSON (object); 0 or -1 with msg. */
int faults_parse(const cJSON *o, emu_fault *f, char *msg, size_t len);
int faults_add(const emu_fault *f);
void faults_clear(void);
cJSON *faults_list(void);
/* Decide (once, before any state is touched) whether this request is faulted. */
int faults_pick(const char *method, const char *path, emu_fault *out);
const char *faults_kind_name(emu_fault_kind k);

#endif
