/* Mutation fuzzing of the decoders: every example document, cut, spliced and
 * byte-flipped many times (seeded, so reproducible), decoded with every
 * schema.  Each attempt must either decode or fail with a path and message;
 * ASan/UBSan and valgrind runs of this test catch memory errors. */
#include <stdint.h>
#include "intuned.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static const char *files[] = {
    "job-webhook-paused.json", "job-s3-active.json", "jobs-list.json", "jobinput-minimal.json",
    "jobinput-rich.json", "jobinput-s3.json", "runs-list.json", "error-400.json", "error-404.json",
    "sink-result-completed.json", "sink-result-failed.json", "trigger-response.json",
};

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 800;
    const char *tokens[] = { "null", "[]", "{}", "\"\"", "0", "-1e308", "true", "\"\\u0000\"", "[[[[", "}", ",", ":" };
    size_t decoded = 0, refused = 0;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char path[512];
        snprintf(path, sizeof path, "%s/examples/%s", ITD_FIXTURES_DIR, files[fi]);
        size_t len;
        char *src = t_slurp(path, &len);
        CHECK(src != NULL);
        if (!src) continue;
        char *buf = malloc(len * 2 + 64);
        for (long r = 0; r < rounds; r++) {
            size_t n = len;
            memcpy(buf, src, len);
            int edits = 1 + (int)(next() % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = n ? next() % n : 0;
                switch (next() % 4) {
                case 0: buf[at] = (char)(next() & 0xff); break;       /* flip a byte */
                case 1: n = at; break;                                /* truncate */
                case 2: {                                             /* splice a token */
                    const char *tk = tokens[next() % (sizeof tokens / sizeof tokens[0])];
                    size_t tl = strlen(tk);
                    if (n + tl < len * 2 + 32) { memmove(buf + at + tl, buf + at, n - at); memcpy(buf + at, tk, tl); n += tl; }
                    break;
                }
                default: {                                            /* delete a span */
                    size_t span = next() % 16;
                    if (at + span <= n) { memmove(buf + at, buf + at + span, n - at - span); n -= span; }
                }
                }
            }
            {   /* differential: our parser and cJSON's agree on every input they both take */
                buf[n] = 0; /* cJSON wants the terminator to check for trailing data */
                cJSON *a = itd_json_parse(buf, n, NULL, NULL);
                cJSON *b = cJSON_ParseWithLengthOpts(buf, n + 1, NULL, 1); /* the NUL must be inside the length */
                char *bs = b ? cJSON_PrintUnformatted(b) : NULL;
                if (a && !b) { fprintf(stderr, "only ours parsed: %.*s\n", (int)n, buf); CHECK(0); }
                if (a && b) CHECK(cJSON_Compare(a, b, 1));
                if (!a && b) {
                    /* we are stricter: say why, and it must be one of the known reasons */
                    const char *why = NULL;
                    cJSON_Delete(itd_json_parse(buf, n, NULL, &why));
                    int known = why && (strstr(why, "control character") || strstr(why, "\\u0000") ||
                                        strstr(why, "surrogate") || strstr(why, "out of range") || strstr(why, "escape") ||
                                        strstr(why, "bad number") ||
                                        /* cJSON copies any byte >= 0x80; we want well-formed UTF-8 */
                                        strstr(why, "UTF-8"));
                    /* cJSON also skips any byte <= 32 as white space; JSON allows only 4 */
                    for (size_t k = 0; k < n && !known; k++)
                        if ((unsigned char)buf[k] < 0x20 && buf[k] != '\t' && buf[k] != '\n' && buf[k] != '\r') known = 1;
                    if (!known) fprintf(stderr, "only cJSON parsed (%s): %.*s\n", why ? why : "?", (int)n, buf);
                    CHECK(known);
                }
                free(bs);
                cJSON_Delete(a);
                cJSON_Delete(b);
            }
            for (const itd_schema *const *s = itd_schemas; *s; s++) {
                itd_error err;
                memset(&err, 0, sizeof err);
                itd_warnings w = { 0, NULL };
                void *o = itd_decode(*s, buf, n, &w, &err);
                if (o) {
                    decoded++;
                    char *out = itd_encode(*s, o, NULL);
                    CHECK(out != NULL);
                    /* what we encode must decode again with the same schema */
                    void *again = out ? itd_decode(*s, out, strlen(out), NULL, NULL) : NULL;
                    if (!again) { fprintf(stderr, "re-decode failed for %s: %s\n", itd_schema_name(*s), out); CHECK(0); }
                    itd_free(*s, again);
                    free(out);
                    itd_free(*s, o);
                } else {
                    refused++;
                    if (!err.message[0]) { fprintf(stderr, "refused without a message (%s)\n", itd_schema_name(*s)); CHECK(0); }
                }
                itd_warnings_clear(&w);
                itd_error_clear(&err);
            }
        }
        free(buf);
        free(src);
    }
    printf("fuzz: %zu decoded, %zu refused\n", decoded, refused);
    CHECK(decoded > 0 && refused > 0);
    return T_DONE();
}
