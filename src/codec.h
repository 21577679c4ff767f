/*
 * codec.h - JSON <-> model structs (codec.c, driven by the schemas of
 * model.c), the JSON parser and printer (json.c, json_write.c), and the value
 * formats: durations, date-times, UTF-8.
 *
 *  - Ownership: a decoded object is one tree; free it with itd_free(schema, obj)
 *    (or the typed *_free).  Strings in it are owned by it.  Free-form JSON
 *    (`parameters`, `headers`, ...) is kept as cJSON trees owned by the object.
 *  - Errors are returned, never printed (itd_error.h).
 */
#ifndef ITD_CODEC_H
#define ITD_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "itd_error.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hard limits applied by every decoder: anything bigger is refused with a
 * clear error rather than exhausting memory or the C stack. */
#define ITD_MAX_DOCUMENT_BYTES (16u * 1024u * 1024u)
#define ITD_MAX_DEPTH 1000 /* nesting of JSON values, as cJSON's own cap; Lua tables deeper (or cyclic) are refused */

/* Offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (RFC 3629: no overlongs, surrogates or code points past U+10FFFF), or n
 * when all of it is.  What the JSON parser accepts in strings. */
size_t itd_utf8_check(const char *s, size_t n);

/* Strict RFC 8259 parser producing a cJSON tree (faster than cJSON's own;
 * refuses "\u0000" in strings and nesting beyond ITD_MAX_DEPTH).  NULL on
 * error, with the byte offset and a static message. */
cJSON *itd_json_parse(const char *text, size_t len, size_t *err_offset, const char **err_msg);
/* Compact JSON text of a cJSON tree (malloc'd, NUL-terminated; free() it),
 * laid out as cJSON_PrintUnformatted lays it out, but numbers read back
 * exactly (cJSON's printer rounds them to 15 digits when that reads back
 * "close enough").  `len` may be NULL.  NULL on OOM or a node cJSON cannot
 * print (cJSON_Invalid, a raw node without text). */
char *itd_json_print(const cJSON *item, size_t *len);

/* Decode JSON text into a new object of `schema`: parse, validate, apply
 * defaults.  Returns NULL and fills `err` (kind VALIDATION for input schemas,
 * DECODE for response schemas) on failure. `warn` may be NULL. */
void *itd_decode(const itd_schema *schema, const char *json, size_t len,
                 itd_warnings *warn, itd_error *err);
/* Same, the object frozen: the whole tree in one arena (a few mallocs
 * instead of one per object and string), for answers that are only read.
 * Nothing of it may be changed, freed or moved out; itd_free of the root
 * frees it all (of a part: nothing).  Encoding and itd_clone work as usual. */
void *itd_decode_frozen(const itd_schema *schema, const char *json, size_t len,
                        itd_warnings *warn, itd_error *err);
/* The bytes a frozen tree takes (its root given), else 0: for a garbage
 * collector that does not see malloc'd memory. */
size_t itd_frozen_bytes(const void *root);
/* n more bytes (zeroed) in a frozen tree's arena, freed with it: for a
 * holder of the tree that lives exactly as long.  NULL when `root` is not a
 * frozen root, or on OOM. */
void *itd_frozen_alloc(void *root, size_t n);
/* Same from a cJSON tree.  The tree is consumed (strings and free-form
 * subtrees are moved into the object) and always freed. */
void *itd_decode_take(const itd_schema *schema, cJSON *tree,
                      itd_warnings *warn, itd_error *err);
/* Decoding modes for itd_decode_take_ex. */
#define ITD_MODE_AUTO 0  /* input models strict, responses lenient (as itd_decode_take) */
#define ITD_MODE_USER 1  /* a document a program built: unknown keys refused (kept for
                          * ITD_S_OPEN roots), input value rules applied, errors of kind
                          * VALIDATION; keys of the newest API accepted except in v0.3.12 input models */
void *itd_decode_take_ex(const itd_schema *schema, cJSON *tree, int mode,
                         itd_warnings *warn, itd_error *err);
/* A cJSON node type bit set by converters from languages whose empty
 * containers are ambiguous (an empty Lua table): the node is an empty object
 * that the codec also accepts where an array is expected. */
#define ITD_CJSON_EMPTY_TABLE (1 << 14)

/* Encode to a cJSON tree in schema key order, unknown kept keys last.  NULL on OOM. */
cJSON *itd_to_cjson(const itd_schema *schema, const void *obj);
/* The same with every secret (S3 secretAccessKey, sink header values) replaced
 * by "***": for summaries and logs. */
cJSON *itd_to_cjson_redacted(const itd_schema *schema, const void *obj);
/* Encode to compact JSON text (malloc'd, NUL-terminated).  NULL on OOM. */
char *itd_encode(const itd_schema *schema, const void *obj, size_t *len);
/* Deep copy. NULL on OOM. */
void *itd_clone(const itd_schema *schema, const void *obj);
void itd_free(const itd_schema *schema, void *obj);

/* Value formats */
/* `ms`-package duration (§5.1) to milliseconds; -1 on error (negatives refused). */
int itd_duration_ms(const char *s, double *ms);
/* Date-times are those of the years 0001 to 9999 (UTC): Unix seconds in
 * [ITD_TIME_MIN, ITD_TIME_MAX), 0001-01-01T00:00:00Z up to 10000-01-01. */
#define ITD_TIME_MIN (-62135596800.0)
#define ITD_TIME_MAX 253402300800.0
/* ISO-8601 date-time (§5.3) to Unix seconds (fraction kept); -1 if not one,
 * -2 if its UTC instant is outside the years 0001-9999. */
int itd_datetime_parse(const char *s, double *epoch);
/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes)
 * and return buf; NULL (buf emptied) for NaN, infinities and times outside
 * [ITD_TIME_MIN, ITD_TIME_MAX), or a buffer under 25 bytes. */
const char *itd_datetime_format(double epoch, char *buf, size_t len);
int itd_is_slug(const char *s);
/* Levenshtein-closest field name of `schema` to `name`, or NULL if none is close. */
const char *itd_closest_field(const itd_schema *schema, const char *name);

/* Typed conveniences */
#define itd_job_decode(s, n, e) ((itd_job *)itd_decode(&itd_Job, (s), (n), NULL, (e)))
#define itd_job_input_decode(s, n, e) ((itd_job_input *)itd_decode(&itd_JobInput, (s), (n), NULL, (e)))
#define itd_job_free(p) itd_free(&itd_Job, (p))
#define itd_job_input_free(p) itd_free(&itd_JobInput, (p))

#ifdef __cplusplus
}
#endif
#endif
