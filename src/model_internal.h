/*
 * model_internal.h - private to the core (not installed): the reflection
 * behind the schemas, i.e. the field tables model.c writes and codec.c,
 * scrub.c and the Lua binding walk.  A program using the library sees
 * `itd_schema` as an opaque type (model.h).
 */
#ifndef ITD_MODEL_INTERNAL_H
#define ITD_MODEL_INTERNAL_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "model.h"

typedef enum itd_field_kind {
    ITD_F_STRING,    /* char* */
    ITD_F_NUMBER,    /* double (+has flag) */
    ITD_F_BOOL,      /* int (+has flag) */
    ITD_F_JSON,      /* cJSON* (free-form) */
    ITD_F_OBJECT,    /* pointer to a struct of `sub` */
    ITD_F_ARRAY,     /* itd_array of `sub` */
    ITD_F_NUMSTR,    /* itd_numstr */
    ITD_F_CALVALUE   /* itd_calvalue* */
} itd_field_kind;

/* field flags */
#define ITD_REQ        0x0001u /* key must be present */
#define ITD_NULLABLE   0x0002u /* value may be null */
#define ITD_DURATION   0x0004u /* string must be an `ms` duration (§5.1); numbers are ms */
#define ITD_DATETIME   0x0008u /* string is a date-time (kept verbatim) */
#define ITD_SLUG       0x0010u /* string must match ^[A-Za-z0-9_-]+$ */
#define ITD_SECRET     0x0020u /* redacted in summaries */
#define ITD_J_OBJECT   0x0040u /* JSON: must be an object */
#define ITD_J_OBJARR   0x0080u /* JSON: object or array */
#define ITD_J_ARRAY    0x0100u /* JSON: array */
#define ITD_NEWEST     0x0200u /* only in the newest API (decoded, not accepted on v0.3.12 input) */
#define ITD_POSITIVE   0x0400u /* number should be > 0: a warning on input otherwise */
#define ITD_INTEGER    0x0800u /* number must be integral */
#define ITD_STRVALS    0x1000u /* JSON array of strings */
/* Value rules applied to input only (a server's answer is never refused for them): */
#define ITD_RANGED     0x2000u /* NUMBER, CALVALUE: whole numbers from `lo` to `hi` (hi may be INFINITY);
                                * for a calendar value also its ranges' start/end and its list members */
#define ITD_URL        0x4000u /* STRING: an absolute http:// or https:// URL with a host */
#define ITD_NONEMPTY   0x8000u /* ARRAY: must hold at least one item */
#define ITD_OLD_DEFAULT 0x10000u /* the default is v0.3.12's: not applied in the newest API's input forms */
#define ITD_STRMAP     0x20000u /* JSON object: in the newest API's input forms its values must be strings */

typedef struct itd_field {
    const char *name;        /* wire name (written on encode) */
    const char *alias;       /* other wire spelling accepted on decode, or NULL */
    const char *sdk_name;    /* the official SDK's camelCase name (Lua read alias), or NULL */
    itd_field_kind kind;
    unsigned flags;
    size_t off;              /* offset of the value */
    size_t has_off;          /* offset of the `has_` flag (int), or 0 for none */
    size_t null_off;         /* offset of the `_null` flag (int), or 0 for none
                              * (offset 0 is always the itd_obj header) */
    const struct itd_schema *sub;   /* OBJECT / ARRAY element */
    const char *const *enums;       /* closed set of string values (NULL-terminated), or NULL */
    int has_default;
    double num_default;             /* NUMBER / BOOL default */
    const char *str_default;        /* STRING / NUMSTR default */
    double lo, hi;                  /* ITD_RANGED bounds */
} itd_field;

/* schema flags */
#define ITD_S_STRICT      0x01u  /* input model: unknown keys are errors */
#define ITD_S_ARRAY_FORM  0x02u  /* the wire form is a bare array holding the first field */
#define ITD_S_STRING_FORM 0x04u  /* a bare string is accepted as the first field (the newest API's job state) */
#define ITD_S_NEWEST      0x08u  /* input in the newest API's form: ITD_NEWEST fields allowed (at the
                                  * root); its other_keys are v0.3.12's */
#define ITD_S_OPEN        0x10u  /* a server document whose unknown keys are data: kept even
                                  * when a program builds one (ITD_MODE_USER) */

struct itd_schema {
    const char *name;                 /* Lua type name, e.g. "Job" */
    size_t size;                      /* sizeof the struct */
    const itd_field *fields;
    size_t nfields;
    unsigned flags;
    /* unions: pick the branch for a JSON value; NULL with msg set = no branch */
    const struct itd_schema *(*select)(const cJSON *v, char *msg, size_t msglen);
    const struct itd_schema *const *branches; /* NULL-terminated, for unions */
    /* input forms: keys that exist only in the other API version's form of
     * this object (v0.3.12's for a newest form, the newest API's for a
     * v0.3.12 one), refused naming that version; NULL-terminated, or NULL */
    const char *const *other_keys;
};

#endif
