/*
 * reply.h - answering HTTP requests (reply.c), for the API (http.c), the
 * control endpoints (control.c) and the receiver (receiver.c): JSON answers
 * and error bodies, injected faults applied to an answer, and request paths.
 */
#ifndef EMU_REPLY_H
#define EMU_REPLY_H

#include <microhttpd.h>
#include "emu.h"
#include "faults.h"

/* A request's body as it arrives (http.c collects it). */
typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
} req;
/* The body as JSON (the strict parser), or NULL when empty or not JSON. */
cJSON *reply_parse_body(const req *q);

/* The drip fault for the answers this thread sends next, or NULL (one
 * thread per connection: http.c sets it around an operation). */
void reply_set_drip(const emu_fault *f);

/* A response of len bytes of buf (dripped under a drip fault); MUST_FREE: it takes buf. */
struct MHD_Response *reply_response(size_t len, void *buf, enum MHD_ResponseMemoryMode mode);
/* body is malloc'd (or NULL): the answer takes it; h1: one more header, or NULL. */
enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *ctype, char *body, size_t len,
                          const char *h1, const char *v1);
enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json);    /* takes json */
enum MHD_Result send_cjson(struct MHD_Connection *c, unsigned status, cJSON *t);     /* takes t */
/* An ApiError body (message, the newest API's typed keys; in newest mode in
 * that API's key order; `details` is taken). */
char *error_json(unsigned status, const char *message, cJSON *details);
enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *message);
/* 400 with details {field, issue}. */
enum MHD_Result send_bad_field(struct MHD_Connection *c, const char *message, const char *field, const char *issue);
/* 400 "Invalid <what>: <path>: <message>" from a validation error. */
enum MHD_Result send_invalid(struct MHD_Connection *c, const char *what, const itd_error *err);
/* An action answer (create, update, pause, resume, trigger, terminate) through its schema. */
enum MHD_Result send_action(struct MHD_Connection *c, unsigned status, const itd_schema *s,
                            const char *id, const char *run_id, const char *message);
/* A cJSON tree (taken) through a response schema (validation), then its encoding; 200. */
enum MHD_Result send_model(struct MHD_Connection *c, const itd_schema *s, cJSON *tree);
/* A tree (taken) in its final form, validated through a schema, then answered as built. */
enum MHD_Result send_checked(struct MHD_Connection *c, unsigned status, const itd_schema *s, cJSON *tree);
/* The answer of a fault rule with a status or a kind (not drip); `success`:
 * the status the operation would answer. */
enum MHD_Result reply_fault(struct MHD_Connection *c, const emu_fault *f, unsigned success);

/* Percent-decode n bytes into a new string; NULL when malformed, holding NUL or not UTF-8. */
char *pct_decode(const char *s, size_t n, int plus_is_space);
#define MAX_SEGS 10
typedef struct segs { size_t n; char *v[MAX_SEGS]; } segs;
/* Split a path on '/', decoding each segment: 0, -1 malformed, -2 too many. */
int split_path(const char *p, segs *out);
void segs_free(segs *s);

/* 1 when the client is on a loopback address. */
int is_loopback(struct MHD_Connection *c);

#endif
