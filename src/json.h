/* json.h - internal: the parser's arena mode, used by itd_decode.
 * Nodes and keys of the parsed document live in one arena; value strings are
 * malloc'd one by one so the codec can move them into the objects it builds.
 * Releasing frees the strings that were not moved, then the arena: a few
 * frees instead of two per node. */
#ifndef ITD_JSON_H
#define ITD_JSON_H
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct itd_arena_block itd_arena_block;
typedef struct itd_arena {
    itd_arena_block *head;
    /* A parse arena whose `vals` is set puts the value strings there (a
     * frozen decode's own arena, which keeps them) instead of malloc'ing
     * each one; releasing the tree then leaves them alone. */
    struct itd_arena *vals;
    size_t first; /* a doc arena's first block (0: a parse arena) */
} itd_arena;

/* Doc arenas: one decoded tree's memory (codec.c's frozen decode).  The
 * arena's own header lives in its first block; itd_arena_free frees it all.
 * Never a thread's spare block: a tree outlives its parse. */
itd_arena *itd_arena_new(size_t first);
void *itd_arena_alloc(itd_arena *a, size_t n); /* 16-byte aligned, not zeroed */
void itd_arena_free(itd_arena *a);
size_t itd_arena_bytes(const itd_arena *a); /* what its blocks take from malloc */

/* Parse into `a` (zero-initialised by the caller).  Never give the tree to
 * cJSON_Delete: release it with itd_json_release.  On error nothing is left
 * to release. */
cJSON *itd_json_parse_arena(const char *text, size_t len, itd_arena *a,
                            size_t *err_offset, const char **err_msg);
void itd_json_release(cJSON *tree, itd_arena *a);

/* The writer's number format (src/json_write.c), for itd_json_print and its
 * tests: `d` as JSON into out (ITD_JSON_NUMBER_MAX bytes), its length
 * returned; "null" for NaN and infinities. */
#define ITD_JSON_NUMBER_MAX 32
size_t itd_json_number(double d, char *out);
/* A number printed under a locale whose decimal point is not '.' (',' or a
 * multibyte one): that point made '.', in place; the new length. */
size_t itd_json_dot(char *s, size_t n);
#endif
