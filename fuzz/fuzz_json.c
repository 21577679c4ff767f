/* fuzz_json: the strict JSON parser (src/json.c) in both modes.
 * Checks: the malloc and arena modes agree (same tree, or the same error
 * offset and message); a refusal names an offset inside the input; what we
 * accept, cJSON accepts too and reads the same (cJSON is laxer, except for
 * numbers over 63 characters, which its fixed buffer cuts); what we accept
 * prints (cJSON_PrintUnformatted) to text we parse back to an equal tree
 * (numbers within cJSON's print precision: it writes 15 significant digits
 * whenever they read back within its epsilon, so 0.30000000000000004
 * prints as 0.3); our writer (itd_json_print) prints it to text we parse
 * back to exactly the same tree, numbers included, and that text prints
 * again the same. */
#include <cjson/cJSON.h>
#include "intuned.h"
#include "json.h"
#include "fuzz.h"

/* cJSON 1.7.15 copies a number into a 64-byte buffer: longer ones it cannot read. */
static int has_long_number(const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
            if (++run >= 63) return 1;
        } else {
            run = 0;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    buf[size] = 0; /* cJSON needs the terminator inside its length to check for trailing data */

    size_t off1 = (size_t)-1, off2 = (size_t)-1;
    const char *why1 = NULL, *why2 = NULL;
    cJSON *a = itd_json_parse(buf, size, &off1, &why1);
    itd_arena arena = { NULL };
    cJSON *t = itd_json_parse_arena(buf, size, &arena, &off2, &why2);

    FUZZ_CHECK(!a == !t, "malloc mode %s, arena mode %s", a ? "parsed" : why1, t ? "parsed" : why2);
    if (!a) {
        FUZZ_CHECK(why1 && *why1, "refusal without a message");
        FUZZ_CHECK(off1 <= size, "error offset %zu past the end (%zu)", off1, size);
        FUZZ_CHECK(off1 == off2 && strcmp(why1, why2) == 0, "modes disagree: %zu %s / %zu %s", off1, why1, off2, why2);
    } else {
        FUZZ_CHECK(fz_tree_equal(a, t), "malloc and arena trees differ");
    }
    if (t) itd_json_release(t, &arena);

    cJSON *b = cJSON_ParseWithLengthOpts(buf, size + 1, NULL, 1);
    if (a && !b)
        FUZZ_CHECK(has_long_number(buf, size), "accepted by us, refused by cJSON: %.200s", buf);
    if (a && b) FUZZ_CHECK(fz_tree_equal(a, b), "we and cJSON read different trees: %.200s", buf);

    if (a) {
        char *printed = cJSON_PrintUnformatted(a);
        if (printed) {
            const char *why = NULL;
            size_t off = 0;
            cJSON *again = itd_json_parse(printed, strlen(printed), &off, &why);
            FUZZ_CHECK(again, "our own printout does not parse (%s at %zu): %.200s", why ? why : "?", off, printed);
            FUZZ_CHECK(fz_tree_equal_ex(a, again, 1), "printout parses to another tree: %.200s", printed);
            cJSON_Delete(again);
            free(printed);
        }
        size_t n1 = 0;
        char *ours = itd_json_print(a, &n1);
        FUZZ_CHECK(ours && n1 == strlen(ours), "itd_json_print failed");
        const char *why = NULL;
        size_t off = 0;
        cJSON *again = itd_json_parse(ours, n1, &off, &why);
        FUZZ_CHECK(again, "our writer's text does not parse (%s at %zu): %.200s", why ? why : "?", off, ours);
        FUZZ_CHECK(fz_tree_equal(a, again), "our writer's text parses to another tree: %.200s", ours);
        char *twice = itd_json_print(again, NULL);
        FUZZ_CHECK(twice && strcmp(ours, twice) == 0, "write o parse o write differs: %.200s", ours);
        free(twice);
        cJSON_Delete(again);
        free(ours);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(buf);
    return 0;
}
