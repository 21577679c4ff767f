/*
 * scrub.h - secrets (scrub.c): the set of secrets one call carries, scrubbing
 * them out of text, trees and errors, and the by-key redaction of free-form
 * JSON shown to people.
 */
#ifndef ITD_SCRUB_H
#define ITD_SCRUB_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "itd_error.h"
#include "model.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- secrets */
/* What never leaves the library (scrub.c).  By value: the secrets one call
 * carried -- API key, values of secret-like extra headers, the input's S3
 * secretAccessKey and webhook header values -- become "***" in errors and
 * hook events.  Secrets shorter than 4 bytes are not scrubbed (they would
 * match ordinary text).  By key: free-form JSON shown to people has every
 * `secretAccessKey`, every value of a sink's `headers` and every
 * secret-like header of a `headers` object replaced by "***". */

typedef struct itd_secret {
    const char *s;
    size_t len;
    char *owned;               /* s itself when copied (wiped and freed), else NULL */
} itd_secret;

#define ITD_SECRETS_INLINE 8
typedef struct itd_secrets {   /* zeroed = empty; never copy a non-empty one */
    size_t n;
    itd_secret inl[ITD_SECRETS_INLINE];
    itd_secret *more;          /* items past the inline ones */
    size_t cap_more;
} itd_secrets;

void itd_secrets_init(itd_secrets *s);
void itd_secrets_free(itd_secrets *s);  /* wipes the copies */
/* Add one secret (copied when `copy`, else borrowed: it must outlive the
 * set).  Short ones are ignored.  0, or -1 on OOM. */
int itd_secrets_add(itd_secrets *s, const char *v, size_t len, int copy);
/* A header name that carries credentials (x-api-key, authorization, cookie,
 * anything with auth, token, secret, key, session, passw...). */
int itd_header_is_secret(const char *name, size_t len);
/* The value of a secret-like header (and the credentials after a known
 * scheme such as "Bearer "); nothing for other names. */
int itd_secrets_add_header(itd_secrets *s, const char *name, size_t nlen, const char *value, int copy);
int itd_secrets_add_sink(itd_secrets *s, const itd_sink *sink, int copy);
/* The API key and the sink secrets of a create/update input; for the
 * other bodies (run start, auth-session starts) every ITD_SECRET value. */
int itd_secrets_add_call(itd_secrets *s, const itd_config *cfg, const itd_call_args *args, int copy);
/* 1 when buf[0..len) contains a secret of s. */
int itd_secrets_in(const char *buf, size_t len, const itd_secrets *s);
/* Replace every secret in buf[0..len) by "***" in place; returns the new
 * length (buf is NUL-terminated there when it shrank). */
size_t itd_scrub(char *buf, size_t len, const itd_secrets *s);
/* The same over a cJSON tree (keys and string values, siblings of v too). */
void itd_scrub_cjson(cJSON *v, const itd_secrets *s);
/* message, path, body, details and data of an error. */
void itd_scrub_error(itd_error *e, const itd_secrets *s);
/* The by-key rule over a tree, in place; returns how many values it hid. */
size_t itd_redact_json(cJSON *v);
/* The by-key rule over an error's details and data (and its body, rebuilt
 * from data when data held something to hide). */
void itd_error_redact(itd_error *e);

#ifdef __cplusplus
}
#endif
#endif
