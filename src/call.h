/*
 * call.h - the call machine: the whole life of one API call, without I/O.
 *
 * In the spirit of h11: a transport creates a machine for (operation,
 * arguments, policy, seed), then loops
 *
 *     itd_call_next(m, now, &step)
 *       SEND: send step.request (within step.timeout seconds, on a fresh
 *             connection when step.fresh), then feed what happened:
 *             itd_call_feed_response(m, now, &resp) or
 *             itd_call_feed_failure(m, now, &fail)
 *       WAIT: sleep step.delay seconds, then call next again
 *       DONE: itd_call_result(m, &res, &err)
 *
 * draining itd_call_event(m) after each call into the machine to hand hook
 * events to the user.  The clock is always passed in (seconds, any
 * monotonic origin), so the machine is tested with scripted exchanges and no
 * sockets.  The machine owns every rule of a call: attempts, the overall
 * deadline, backoff with jitter, Retry-After, the never-duplicate rules for
 * create and trigger, the reconciliation GET after a 409 on a retried create,
 * scrubbing every secret the call carried from errors and events, and the
 * events themselves.  Transports only move bytes.
 */
#ifndef ITD_CALL_H
#define ITD_CALL_H

#include <stddef.h>
#include <stdint.h>
#include "itd_error.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ retry policy */

typedef struct itd_retry_policy {
    int enabled;               /* default 1 */
    int max_attempts;          /* default 4 (first try included) */
    double initial_delay;      /* seconds, default 0.5 */
    double max_delay;          /* seconds, default 30 */
    double multiplier;         /* default 2 */
    double jitter;             /* 0..1 fraction of the delay randomised, default 0.5 */
} itd_retry_policy;

void itd_retry_policy_default(itd_retry_policy *p);
/* Decide whether attempt number `attempt` (1-based) that failed with `err`
 * should be retried for `op`.  `sent` is 1 when the request may have reached
 * the server.  Returns 1 and sets *delay (seconds, jitter applied with
 * `rnd` in [0,1)) when it should; 0 otherwise.
 * Rules (call.c has the reasoning): idempotent operations on 429, 502,
 * 503, 504 and on CONNECTION/TIMEOUT errors marked `retryable`; create and
 * trigger only when !sent (CONNECTION/TIMEOUT), on 429, or on 503 with
 * Retry-After.  Never on 500.  Delay: min(max_delay, initial_delay *
 * multiplier^(attempt-1)) * (1 - jitter + jitter*rnd), raised to Retry-After.
 * A Retry-After longer than max(max_delay, ITD_RETRY_AFTER_MAX) is not
 * waited for: 0 is returned and the caller reports the error (which carries
 * retry_after), so a server asking for hours never blocks a call. */
#define ITD_RETRY_AFTER_MAX 120.0

int itd_retry_decide(const itd_retry_policy *p, itd_op op, int attempt,
                     const itd_error *err, int sent, double rnd, double *delay);

/* 1 for the statuses an idempotent call may retry (429, 502, 503, 504):
 * what itd_response_parse sets `retryable` from.  call.c holds every rule. */
int itd_status_retryable(long status);

/* ------------------------------------------------------------ the machine */

typedef struct itd_call_m itd_call_m;

typedef struct itd_call_policy {
    double timeout;             /* seconds one attempt may take; 0 = no limit */
    double deadline;            /* seconds the whole call may take, retries included; 0 = none */
    itd_retry_policy retry;     /* retry.enabled = 0: one attempt */
    /* Extra request headers, "Name: value", NULL-terminated (the client's,
     * then the call's: a later one replaces an earlier of the same name).
     * They may not replace x-api-key, content-type, content-length, host or
     * transfer-encoding (refused by itd_call_new with a validation error). */
    const char *const *extra_headers;
    int quiet;                  /* 1 = queue no hook events (nobody listens: no redacted copies) */
} itd_call_policy;

void itd_call_policy_default(itd_call_policy *p); /* 30 s, 120 s, default retry, no headers */

typedef enum itd_step_kind { ITD_STEP_SEND = 1, ITD_STEP_WAIT, ITD_STEP_DONE } itd_step_kind;

typedef struct itd_step {
    itd_step_kind kind;
    const itd_request *request; /* SEND: owned by the machine, valid until the next feed */
    double timeout;             /* SEND: seconds this attempt may take (per-attempt limit and the
                                   deadline's remainder, whichever is less); 0 = no limit */
    int fresh;                  /* SEND: 1 = do not send on a reused connection (a transport that may
                                   re-send by itself on a dead kept-alive one, like libcurl, must not
                                   get the chance: the request is not idempotent) */
    double delay;               /* WAIT: seconds */
} itd_step;

/* What the transport got: the response of the SEND step.  Header names and
 * values as received; content_type and retry_after may be NULL. */
typedef struct itd_response_in {
    long status;
    const itd_header *headers;  /* may be NULL */
    size_t nheaders;
    const char *content_type;
    const char *retry_after;
    const char *body;
    size_t body_len;
} itd_response_in;

/* Or why there is none. */
typedef struct itd_failure {
    itd_err_kind kind;          /* ITD_ERR_TIMEOUT, ITD_ERR_CONNECTION, or ITD_ERR_DECODE (a response
                                   too large or malformed to read) */
    int sent;                   /* 1 when the request may have reached the server */
    int retryable;              /* 0 when retrying cannot help (a certificate that does not verify) */
    long status;                /* a status already read, else 0 */
    const char *message;        /* what happened, e.g. "connect to 127.0.0.1:9: Connection refused" */
    const char *path;           /* the option it is about ("server_url"), or NULL */
} itd_failure;
/* kind may also be ITD_ERR_VALIDATION (nothing was sent: a URL the transport
 * cannot use) or ITD_ERR_NOMEM (an allocation failed in the transport). */

/* The one random-number generator of the core (xorshift64*): jitter, and
 * whatever else a binding needs that is not cryptographic. */
typedef struct itd_rng { uint64_t s; } itd_rng;
void itd_rng_seed(itd_rng *r, uint64_t seed);  /* any seed, 0 included */
uint64_t itd_rng_next(itd_rng *r);
double itd_rng_double(itd_rng *r);             /* uniform in [0, 1) */
uint64_t itd_rng_auto_seed(void);              /* from the clock and two addresses */

/* 0 when `line` is an extra header a user may set ("Name: value", a token
 * name, no line break, not x-api-key, content-type, content-length, host or
 * transfer-encoding), else -1 with a validation error (path "headers"). */
int itd_header_line_check(const char *line, itd_error *err);

/* Create a machine; NULL with err (kind validation: nothing will be sent)
 * when the request cannot be built.  `args` and the objects it points to are
 * borrowed and must outlive the machine; `cfg`, `pol` and their strings are
 * copied.  `seed` drives the jitter. */
itd_call_m *itd_call_new(const itd_config *cfg, itd_op op, const itd_call_args *args,
                         const itd_call_policy *pol, uint64_t seed, double now, itd_error *err);
void itd_call_free(itd_call_m *m);

/* The next thing to do.  Returns step->kind. */
itd_step_kind itd_call_next(itd_call_m *m, double now, itd_step *step);
void itd_call_feed_response(itd_call_m *m, double now, const itd_response_in *resp);
void itd_call_feed_failure(itd_call_m *m, double now, const itd_failure *fail);

/* After DONE: 0 with the result moved into *out, or -1 with the error moved
 * into *err (attempts set, every secret of the call scrubbed). */
int itd_call_result(itd_call_m *m, itd_result *out, itd_error *err);
int itd_call_attempts(const itd_call_m *m);

/* Hook events, oldest first; NULL when none is queued.  An event is valid
 * until the next itd_call_next / feed / result / free.  Everything in it is
 * redacted: secret headers "***" (request and response), bodies and errors
 * scrubbed of every secret the call carried, JSON response bodies by key too
 * (itd_redact_json), response bodies cut to ITD_EVENT_BODY_MAX bytes.  Every
 * event carries the request of its attempt.  `error` is a shallow copy (no
 * details, data or body); `resp_body` is NULL when no response arrived. */
#define ITD_EVENT_BODY_MAX 4096
typedef enum itd_event_kind { ITD_EV_REQUEST = 1, ITD_EV_RESPONSE, ITD_EV_RETRY } itd_event_kind;
typedef struct itd_event {
    itd_event_kind kind;
    int attempt;                /* 1-based, over the whole call (reconciliation included) */
    const char *op;             /* operation of this attempt: "jobs:create", or "jobs:get" when reconciling */
    const char *method, *url, *path;
    const itd_header *headers;  /* the request's */
    size_t nheaders;
    const char *body;           /* the request's (REQUEST), may be NULL */
    size_t body_len;
    long status;                /* RESPONSE, RETRY: 0 when no response */
    const itd_header *resp_headers; /* RESPONSE */
    size_t n_resp_headers;
    const char *resp_body;      /* RESPONSE, at most ITD_EVENT_BODY_MAX bytes */
    size_t resp_body_len;
    double elapsed;             /* RESPONSE: seconds of the attempt */
    double delay;               /* RETRY: seconds until the next attempt */
    const itd_error *error;     /* RESPONSE (failed attempt), RETRY */
} itd_event;
const itd_event *itd_call_event(itd_call_m *m);

#ifdef __cplusplus
}
#endif
#endif
