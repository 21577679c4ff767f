/*
 * ops.h - the operation table: one row per API operation (Jobs, Run API, Auth Sessions), read by
 * request building and response parsing (protocol.c), the emulator's router
 * (src/emulator/http.c) and the Lua binding (lua_protocol.c exports it as
 * core.operations; lua/intuned/client.lua makes the client's methods from
 * it).  Adding an operation is one row in ops.c plus its schemas in model.c
 * (and an entry of itd_args when it takes an argument no other one takes).
 *
 * It builds on protocol.h (itd_op, itd_call_args) and model.h (itd_schema).
 */
#ifndef ITD_OPS_H
#define ITD_OPS_H

#include <stddef.h>
#include "model.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which API versions have an operation: both v0.3.12 and the newest API
 * (reference §2), or the newest only (reference §8.1). */
typedef enum itd_api { ITD_API_BOTH = 1, ITD_API_NEWEST } itd_api;
const char *itd_api_name(itd_api a); /* "both", "newest" */

/* ---------------------------------------------------------------- arguments */

typedef enum itd_arg_where {
    ITD_ARG_PATH = 1, /* a {placeholder} of the path template */
    ITD_ARG_QUERY,    /* a query parameter, sent when given */
    ITD_ARG_BODY      /* the request body, a model object */
} itd_arg_where;

/* An argument of a call: a member of itd_call_args. */
typedef struct itd_arg_def {
    const char *const *names; /* names[0] is the argument's name (the itd_call_args member, the
                               * placeholder, the Lua name); the others are spellings the Lua
                               * binding also accepts; NULL-terminated */
    itd_arg_where where;
    const char *wire;         /* QUERY: the query key ("pageNumber"); else NULL */
    int numbers;              /* the Lua binding accepts a number for it (query values) */
    size_t off;               /* offset in itd_call_args: a const char * (PATH, QUERY) or a
                               * pointer to an object of the body model (BODY) */
} itd_arg_def;

/* Every argument, NULL-terminated (names == NULL), in the order the Lua
 * binding reads them. */
extern const itd_arg_def itd_args[];
const itd_arg_def *itd_arg_find(const char *name); /* by names[0]; NULL if none */
const itd_arg_def *itd_arg_find_n(const char *name, size_t len); /* name[0..len) */
/* The value of a string argument in `a` (NULL when unset or not a string one). */
const char *itd_arg_str(const itd_arg_def *d, const itd_call_args *a);
void itd_arg_set_str(const itd_arg_def *d, itd_call_args *a, const char *v);
/* The body object of a BODY argument in `a`, and setting it. */
const void *itd_arg_obj(const itd_arg_def *d, const itd_call_args *a);
void itd_arg_set_obj(const itd_arg_def *d, itd_call_args *a, const void *obj);

/* --------------------------------------------------------------- operations */

/* The workspace placeholder of every path: the client's workspace id, not
 * an argument of the call. */
#define ITD_PATH_WORKSPACE "workspace"
#define ITD_OP_QUERY_MAX 4
#define ITD_OP_ARGS_MAX 4

typedef struct itd_op_def {
    const char *name;          /* "jobs:create" */
    const char *group;         /* the client table holding its method: "jobs" | "jobs.runs" */
    const char *method_name;   /* the method of that table: "create" */
    const char *method;        /* HTTP method */
    const char *path;          /* template below the server URL; each {name} is the workspace or
                                * a PATH argument, sent encoded like encodeURIComponent */
    int success;               /* the exact success status */
    int idempotent;            /* safe to retry blindly */
    itd_api api;
    const char *body;          /* the BODY argument ("input", "update"), or NULL for none */
    const itd_schema *request; /* its model, or NULL */
    const itd_schema *request_newest; /* its model when the client speaks the newest API,
                                       * or NULL: the same as `request` */
    const itd_schema *response;/* model of the success body; NULL when the body is ignored */
    const itd_schema *list_of; /* list answers: the element model (the items are the
                                * itd_array at list_off in the response object), else NULL */
    size_t list_off;
    const char *const query[ITD_OP_QUERY_MAX]; /* QUERY arguments, in the order sent; NULL-ended */
    const char *accept;        /* the Accept header sent, or NULL: application/json */
} itd_op_def;

extern const itd_op_def itd_ops[ITD_OP__COUNT];
/* The body model a client of API version v sends for the row (NULL when it
 * takes no body): the one rule both transports and the events follow. */
const itd_schema *itd_op_request(const itd_op_def *d, itd_api_version v);
const itd_op_def *itd_op_def_of(itd_op op); /* NULL when op is out of range */

/* The PATH arguments of a row's template in order (the workspace left out):
 * their names[0] into out[0..max), returns how many. */
size_t itd_op_path_args(const itd_op_def *d, const char **out, size_t max);

/* ------------------------------------------------------------------ routing */

/* What a request path matched: the emulator's router, and the test that the
 * router and the request builder agree. */
#define ITD_ROUTE_ALLOW_MAX 64
typedef struct itd_route {
    int op;                         /* itd_op, or -1 when no row has this path and method */
    const char *workspace;          /* segment matched by {workspace} (borrowed), or NULL */
    itd_call_args args;             /* PATH arguments matched (borrowed segments) */
    char allow[ITD_ROUTE_ALLOW_MAX];/* methods of the rows whose template matches the path,
                                     * "GET, POST", in table order; "" when none (a 404) */
} itd_route;

/* Match n decoded path segments (the path below the server URL split on
 * '/', without the leading empty one) and a method against every template.
 * A placeholder matches any non-empty segment.  Returns r->op. */
int itd_op_route(const char *const *segs, size_t n, const char *method, itd_route *r);

#ifdef __cplusplus
}
#endif
#endif
