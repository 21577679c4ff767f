/*
 * transport.h - the libcurl client (transport_curl.c): one call, or many
 * concurrently, each driving the call machine of call.h; it moves bytes only.
 */
#ifndef ITD_TRANSPORT_H
#define ITD_TRANSPORT_H

#include <stddef.h>
#include "call.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- transport */

typedef struct itd_client itd_client;

/* Called between attempts (never from inside libcurl) with each event of
 * the call machine (call.h: request, response, retry; redacted). */
struct itd_event;
typedef void (*itd_hook_fn)(void *ud, const struct itd_event *ev);

typedef struct itd_client_opts {
    itd_config cfg;
    long connect_timeout_ms;   /* default 10000 */
    long timeout_ms;           /* per attempt, default 30000 */
    long deadline_ms;          /* whole call incl. retries, default 120000; 0 = none */
    itd_retry_policy retry;
    const char *const *extra_headers; /* "Name: value" strings, NULL-terminated */
    const char *ca_file;       /* CA bundle, or NULL for the system store */
    int insecure;              /* 1 disables TLS verification (default 0) */
    int http2;                 /* 1 (default): HTTP/2 where the TLS handshake offers it
                                * (a batch multiplexes over one connection); 0: HTTP/1.1 */
    itd_hook_fn hook;          /* optional; sees redacted requests only */
    void *hook_ud;
} itd_client_opts;

void itd_client_opts_default(itd_client_opts *o);
itd_client *itd_client_new(const itd_client_opts *o, itd_error *err);
void itd_client_free(itd_client *c);

typedef struct itd_call {
    itd_op op;
    itd_call_args args;
    const itd_retry_policy *retry;  /* per-call override or NULL */
    /* Per-call overrides of the client's options: 0 keeps the client's, a
     * negative value turns the limit off. */
    long timeout_ms, deadline_ms;
    /* "Name: value", NULL-terminated, sent after the client's (a name given
     * again replaces the client's header), or NULL. */
    const char *const *extra_headers;
    /* A hook for this call only, replacing the client's (NULL: the client's). */
    itd_hook_fn hook;
    void *hook_ud;
} itd_call;

/* One operation, retries included.  0 with `out` or -1 with `err`. */
int itd_client_call(itd_client *c, const itd_call *call, itd_result *out, itd_error *err);
/* Many operations concurrently (libcurl multi), at most `max_in_flight` at once.
 * results[i] receives call i's result; errs[i] is NULL when it succeeded,
 * else its error, malloc'd (the caller's: itd_error_free), so that a batch
 * of n calls holds errors for the failed ones only.  Either array may be
 * NULL.  Returns the number that failed. */
size_t itd_client_batch(itd_client *c, const itd_call *calls, size_t n, size_t max_in_flight,
                        itd_result *results, itd_error **errs);

#ifdef __cplusplus
}
#endif
#endif
