/*
 * itd_error.h - what went wrong: the error every function of the core fills
 * (kind, HTTP status, field path, message, the server's details) and the
 * warnings a decode or a schedule check may add.  Every room reports through
 * this one; it depends on nothing but cJSON (an error keeps the server's
 * details as a tree).  itd_error.c.
 */
#ifndef ITD_ERROR_H
#define ITD_ERROR_H

#include <stddef.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum itd_err_kind {
    ITD_ERR_NONE = 0,
    ITD_ERR_VALIDATION,     /* bad input: nothing was sent */
    ITD_ERR_INVALID_INPUT,  /* 400 */
    ITD_ERR_UNAUTHORIZED,   /* 401 */
    ITD_ERR_NOT_FOUND,      /* 404 */
    ITD_ERR_CONFLICT,       /* 409 */
    ITD_ERR_RATE_LIMITED,   /* 429 */
    ITD_ERR_SERVER,         /* 5xx */
    ITD_ERR_API,            /* any other unexpected status */
    ITD_ERR_TIMEOUT,        /* per-attempt timeout or overall deadline */
    ITD_ERR_CONNECTION,     /* could not connect / connection dropped / response not HTTP */
    ITD_ERR_DECODE,         /* success status but body not JSON / not the model; header too large */
    ITD_ERR_USAGE,          /* programming error: bad argument to the API */
    ITD_ERR_NOMEM           /* an allocation failed here (never caused by a response alone) */
} itd_err_kind;

#define ITD_PATH_MAX 256
#define ITD_MSG_MAX 512
#define ITD_ERROR_BODY_MAX 4096  /* bytes of a response body kept in an error */

typedef struct itd_error {
    itd_err_kind kind;
    int status;                /* HTTP status, 0 when none */
    char path[ITD_PATH_MAX];   /* field path, e.g. "payload[2].apiName" ("" = whole document) */
    char message[ITD_MSG_MAX]; /* what was wrong (never contains a secret) */
    cJSON *details;            /* server-provided details (owned), or NULL */
    cJSON *data;               /* decoded error body (owned), or NULL */
    char *body;                /* raw response body, at most ITD_ERROR_BODY_MAX bytes (owned) */
    size_t body_len;
    int retryable;             /* 1 when retrying the same call may succeed */
    int attempts;              /* attempts made (client calls) */
    double retry_after;        /* seconds from Retry-After, <0 when absent */
} itd_error;

/* An empty error: what itd_error_clear leaves (retry_after -1 = no
 * Retry-After).  `itd_error e = ITD_ERROR_INIT;` */
#define ITD_ERROR_INIT { ITD_ERR_NONE, 0, "", "", NULL, NULL, NULL, 0, 0, 0, -1.0 }

void itd_error_clear(itd_error *e);             /* frees owned members, resets */
/* A malloc'd error moved from *src (which is left empty); out of memory, a
 * shared read-only "out of memory" error instead (*src cleared).  Release
 * either with itd_error_free (which leaves the shared one alone); change
 * neither (itd_error_clear included). */
itd_error *itd_error_box(itd_error *src);
void itd_error_free(itd_error *e);
const char *itd_err_kind_name(itd_err_kind k);  /* "validation", "not_found", ... */
/* One line, e.g. "payload[2].apiName: expected string, got number" or
 * "not_found (404): No job with id x".  Returns buf. */
const char *itd_error_format(const itd_error *e, char *buf, size_t len);
/* Set kind/path/message (printf-style message).  Returns -1 for convenience. */
int itd_error_set(itd_error *e, itd_err_kind kind, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---------------------------------------------------------------- warnings */

/* Non-fatal remarks found while decoding (short job id, cron-style calendar
 * string the newest API would refuse, ...). */
typedef struct itd_warnings {
    size_t n;
    char **items;  /* "path: message", owned */
} itd_warnings;
void itd_warnings_clear(itd_warnings *w);
/* Append a copy of `text`.  0, or -1 on OOM (nothing added). */
int itd_warnings_add(itd_warnings *w, const char *text);

#ifdef __cplusplus
}
#endif
#endif
