/* C tests of the JSON writer (itd_json_print, src/json_write.c): numbers
 * read back exactly, cJSON's layout and string escapes, nesting, raw nodes,
 * locale-proof decimal points, and every example fixture through
 * parse -> write -> parse with bit-identical numbers. */
#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "intuned.h"
#include "json.h"
#include "t.h"

static void check_number(double d, const char *want)
{
    char *s = itd_json_print(&(cJSON){ .type = cJSON_Number, .valuedouble = d }, NULL);
    if (!s || strcmp(s, want) != 0) fprintf(stderr, "number %.17g: got %s, want %s\n", d, s ? s : "(null)", want);
    CHECK_STR(s, want);
    if (s && isfinite(d)) {
        /* read back as JSON is read: '.' whatever locale the test runs in */
        char saved[128];
        snprintf(saved, sizeof saved, "%s", setlocale(LC_NUMERIC, NULL));
        setlocale(LC_NUMERIC, "C");
        double back = strtod(s, NULL);
        setlocale(LC_NUMERIC, saved);
        CHECK(back == d);
        CHECK(memcmp(&back, &d, sizeof d) == 0); /* -0 too */
    }
    free(s);
}

static void test_numbers(void)
{
    check_number(0.1, "0.1");
    check_number(0.30000000000000004, "0.30000000000000004");
    check_number(0.1 + 0.2, "0.30000000000000004");
    check_number(0.3, "0.3");
    check_number(1e300, "1e+300");
    check_number(5e-324, "4.94065645841247e-324");
    check_number(2.2250738585072014e-308, "2.2250738585072014e-308");
    check_number(1.7976931348623157e308, "1.7976931348623157e+308");
    check_number(9007199254740991.0, "9007199254740991");
    check_number(-9007199254740991.0, "-9007199254740991");
    check_number(9007199254740992.0, "9007199254740992");
    check_number(-0.0, "-0");
    check_number(0.0, "0");
    check_number(1e15, "1e+15");
    check_number(999999999999999.0, "999999999999999");
    check_number(-999999999999999.0, "-999999999999999");
    check_number(1234567890123456.0, "1234567890123456");
    check_number(123456789012345678.0, "1.2345678901234568e+17");
    check_number(100, "100");
    check_number(-7, "-7");
    check_number(2147483648.0, "2147483648");
    check_number(-2147483649.0, "-2147483649");
    check_number(0.5, "0.5");
    check_number(-1.5e-7, "-1.5e-07");
    check_number(1.0 / 3, "0.3333333333333333");
    check_number(2.0 / 3, "0.6666666666666666");
    check_number(123.456, "123.456");
    check_number(NAN, "null");
    check_number(INFINITY, "null");
    check_number(-INFINITY, "null");

    /* many doubles of every magnitude: exact, and no fewer digits of the
     * three precisions would do */
    uint64_t x = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d)) continue;
        if (i & 1) d = (double)(int64_t)(x >> (i % 40)) / 1000.0; /* short decimals too */
        char out[ITD_JSON_NUMBER_MAX];
        size_t n = itd_json_number(d, out);
        if (n != strlen(out) || strtod(out, NULL) != d) { if (bad++ < 5) fprintf(stderr, "%.17g -> %s\n", d, out); continue; }
        /* the fewest of 15, 16, 17 significant digits that read back (integers
         * below 1e15 have at most 15, so they print the same way) */
        char want[64];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(want, sizeof want, "%.*g", prec, d);
            if (strtod(want, NULL) == d) break;
        }
        if (strcmp(out, want) != 0 && bad++ < 5) fprintf(stderr, "%.17g -> %s, want %s\n", d, out, want);
    }
    CHECK(bad == 0);
}

/* Decimal points of other locales become '.': ',' and a multibyte one. */
static void test_locale(void)
{
    struct { const char *in, *want; } cases[] = {
        { "0,5", "0.5" }, { "-2,25", "-2.25" }, { "1,5e-07", "1.5e-07" },
        { "0,30000000000000004", "0.30000000000000004" }, { "1\xd9\xab" "5e+300", "1.5e+300" },
        { "100", "100" }, { "1.5", "1.5" }, { "1e+15", "1e+15" }, { "-7", "-7" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        size_t n = itd_json_dot(buf, strlen(buf));
        CHECK_STR(buf, cases[i].want);
        CHECK(n == strlen(cases[i].want));
    }

    /* With a ',' locale installed (or named by ITD_TEST_LOCALE), the whole
     * path: snprintf writes ',', strtod reads it, the output has '.'. */
    const char *names[] = { getenv("ITD_TEST_LOCALE"), "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                            "ru_RU.UTF-8", "nl_NL.UTF-8", "de_DE", "fr_FR" };
    const char *used = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !used; i++) {
        if (!names[i] || !setlocale(LC_NUMERIC, names[i])) continue;
        if (strcmp(localeconv()->decimal_point, ".") != 0) used = names[i];
        else setlocale(LC_NUMERIC, "C");
    }
    if (used) {
        char probe[32];
        snprintf(probe, sizeof probe, "%.1f", 0.5);
        CHECK(strcmp(probe, "0.5") != 0); /* the locale is in force */
        check_number(0.5, "0.5");
        check_number(0.30000000000000004, "0.30000000000000004");
        check_number(-1.5e-7, "-1.5e-07");
        check_number(1e300, "1e+300");
        check_number(9007199254740991.0, "9007199254740991");
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber(2.5));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(0.1 + 0.2));
        char *s = itd_json_print(a, NULL);
        CHECK_STR(s, "[2.5,0.30000000000000004]");
        free(s);
        cJSON_Delete(a);
        /* and read: the parser gives strtod the locale's point */
        const char *in = "[0.5,-1.25e-3,0.30000000000000004,1e2]";
        cJSON *t = itd_json_parse(in, strlen(in), NULL, NULL);
        CHECK(t != NULL);
        if (t) {
            CHECK(cJSON_GetArrayItem(t, 0)->valuedouble == 0.5);
            CHECK(cJSON_GetArrayItem(t, 1)->valuedouble == -1.25e-3);
            CHECK(cJSON_GetArrayItem(t, 2)->valuedouble == 0.30000000000000004);
            CHECK(cJSON_GetArrayItem(t, 3)->valuedouble == 100.0);
            cJSON_Delete(t);
        }
        setlocale(LC_NUMERIC, "C");
        printf("locale %s: numbers written and read with '.'\n", used);
    } else {
        printf("no locale with another decimal point installed: itd_json_dot tested directly\n");
        /* CTest builds one (locale_de) where localedef and the data exist */
        CHECK(getenv("ITD_REQUIRE_LOCALE") == NULL);
    }
}

static void check_print(const cJSON *t, const char *want)
{
    size_t n = 12345;
    char *s = itd_json_print(t, &n);
    CHECK_STR(s, want);
    CHECK(s && n == strlen(s));
    free(s);
}

/* Layout and escapes as cJSON_PrintUnformatted (where cJSON is not lossy). */
static void check_like_cjson(const cJSON *t)
{
    char *a = itd_json_print(t, NULL), *b = cJSON_PrintUnformatted(t);
    CHECK_STR(a, b);
    free(a);
    free(b);
}

static void test_strings(void)
{
    cJSON *s = cJSON_CreateString("q\" bs\\ sl/ \b\f\n\r\t \x01\x1f \x7f");
    check_print(s, "\"q\\\" bs\\\\ sl/ \\b\\f\\n\\r\\t \\u0001\\u001f \x7f\"");
    check_like_cjson(s);
    cJSON_Delete(s);

    char all[32];
    for (int i = 1; i < 32; i++) all[i - 1] = (char)i;
    all[31] = 0;
    s = cJSON_CreateString(all);
    check_print(s, "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                   "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b"
                   "\\u001c\\u001d\\u001e\\u001f\"");
    check_like_cjson(s);
    cJSON_Delete(s);

    const char *utf8 = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac";
    s = cJSON_CreateString(utf8);
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", utf8);
    check_print(s, want);
    check_like_cjson(s);
    cJSON_Delete(s);

    s = cJSON_CreateString("");
    check_print(s, "\"\"");
    cJSON_Delete(s);

    /* a key needs the same escapes */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "a\"b\n", 1);
    cJSON_AddStringToObject(o, "", "");
    check_print(o, "{\"a\\\"b\\n\":1,\"\":\"\"}");
    check_like_cjson(o);
    cJSON_Delete(o);

    /* a long string: the buffer grows */
    size_t big = 100000;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = i % 1000 == 999 ? '\n' : (char)('a' + i % 26);
    text[big] = 0;
    s = cJSON_CreateString(text);
    char *a = itd_json_print(s, NULL), *b = cJSON_PrintUnformatted(s);
    CHECK_STR(a, b);
    CHECK(a && strlen(a) == big + 2 + big / 1000);
    free(a);
    free(b);
    free(text);
    cJSON_Delete(s);
}

static void test_shapes(void)
{
    cJSON *t = cJSON_CreateObject();
    check_print(t, "{}");
    cJSON_Delete(t);
    t = cJSON_CreateArray();
    check_print(t, "[]");
    cJSON_Delete(t);

    t = cJSON_Parse("{\"a\":[1,{\"b\":[]},{},[[]],\"x\"],\"c\":{\"d\":null,\"e\":true,\"f\":false},\"g\":-7,"
                    "\"h\":[[1,2],[3,[4,{\"i\":{}}]]],\"z\":{}}");
    CHECK(t != NULL);
    check_print(t, "{\"a\":[1,{\"b\":[]},{},[[]],\"x\"],\"c\":{\"d\":null,\"e\":true,\"f\":false},\"g\":-7,"
                   "\"h\":[[1,2],[3,[4,{\"i\":{}}]]],\"z\":{}}");
    check_like_cjson(t);
    /* a node inside a tree: its value only, not its key or its siblings */
    check_print(cJSON_GetObjectItem(t, "c"), "{\"d\":null,\"e\":true,\"f\":false}");
    check_print(cJSON_GetObjectItem(t, "g"), "-7");
    cJSON_Delete(t);

    /* the flag of an empty Lua table, and cJSON's own flag bits, are not types */
    t = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();
    e->type |= ITD_CJSON_EMPTY_TABLE;
    cJSON_AddItemToObject(t, "e", e);
    cJSON_AddItemToObjectCS(t, "k", cJSON_CreateStringReference("ref"));
    check_print(t, "{\"e\":{},\"k\":\"ref\"}");
    cJSON_Delete(t);

    /* raw nodes (the emulator's stored results) go out as they are */
    t = cJSON_CreateObject();
    cJSON_AddRawToObject(t, "r", "{\"x\":0.30000000000000004}");
    cJSON_AddNullToObject(t, "n");
    check_print(t, "{\"r\":{\"x\":0.30000000000000004},\"n\":null}");
    check_like_cjson(t);
    cJSON *raw = cJSON_GetObjectItem(t, "r");
    char *keep = raw->valuestring;
    raw->valuestring = NULL; /* cJSON cannot print this either */
    CHECK(itd_json_print(t, NULL) == NULL);
    raw->valuestring = keep;
    cJSON_Delete(t);

    cJSON inval = { .type = cJSON_Invalid };
    CHECK(itd_json_print(&inval, NULL) == NULL);
    CHECK(itd_json_print(NULL, NULL) == NULL);

    /* deeper than any decoder lets through: no recursion to run out of */
    int depth = 5000;
    cJSON *root = cJSON_CreateArray(), *cur = root;
    for (int i = 1; i < depth; i++) {
        cJSON *n = i % 2 ? cJSON_CreateObject() : cJSON_CreateArray();
        if (cJSON_IsObject(cur)) cJSON_AddItemToObject(cur, "k", n);
        else cJSON_AddItemToArray(cur, n);
        cur = n;
    }
    cJSON_AddItemToObject(cur, "leaf", cJSON_CreateNumber(0.1));
    char *s = itd_json_print(root, NULL);
    CHECK(s != NULL);
    if (s) {
        size_t opens = 0, closes = 0;
        for (const char *p = s; *p; p++) { opens += *p == '[' || *p == '{'; closes += *p == ']' || *p == '}'; }
        CHECK(opens == (size_t)depth && closes == (size_t)depth);
        CHECK(strstr(s, "{\"leaf\":0.1}") != NULL);
        CHECK(strncmp(s, "[{\"k\":[{\"k\":", 12) == 0);
    }
    free(s);
    cJSON_Delete(root);
}

/* Ordered, exact tree equality; numbers compared bit for bit. */
static int tree_same(const cJSON *a, const cJSON *b)
{
    if (!a || !b) return a == b;
    if ((a->type & 0xff) != (b->type & 0xff)) return 0;
    if (cJSON_IsNumber(a)) return memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) == 0;
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) return 0;
        if (!tree_same(x, y)) return 0;
    }
    return !x && !y;
}

static void test_fixtures(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/examples", ITD_FIXTURES_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    int files = 0, same_as_cjson = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len = 0;
        char *src = t_slurp(path, &len);
        CHECK(src != NULL);
        if (!src) continue;
        files++;
        cJSON *a = itd_json_parse(src, len, NULL, NULL);
        CHECK(a != NULL);
        size_t n1 = 0;
        char *w1 = a ? itd_json_print(a, &n1) : NULL;
        CHECK(w1 != NULL);
        cJSON *b = w1 ? itd_json_parse(w1, n1, NULL, NULL) : NULL;
        CHECK(b != NULL);
        int same = tree_same(a, b);
        if (!same) fprintf(stderr, "%s: parse -> write -> parse differs:\n%s\n", de->d_name, w1);
        CHECK(same);
        char *w2 = b ? itd_json_print(b, NULL) : NULL;
        CHECK_STR(w1, w2);
        /* where cJSON's printout reads back exactly, it is the same text */
        char *c = a ? cJSON_PrintUnformatted(a) : NULL;
        cJSON *cb = c ? itd_json_parse(c, strlen(c), NULL, NULL) : NULL;
        if (cb && tree_same(a, cb)) {
            CHECK_STR(w1, c);
            same_as_cjson++;
        }
        cJSON_Delete(cb);
        free(c);
        free(w2);
        free(w1);
        cJSON_Delete(b);
        cJSON_Delete(a);
        free(src);
    }
    closedir(d);
    CHECK(files >= 40);
    printf("%d fixtures round-tripped (%d byte-identical to cJSON's printout)\n", files, same_as_cjson);
}

/* The codec's text: the payload parameters of the fuzz finding go out as they came. */
static void test_codec(void)
{
    const char *in = "{\"id\":\"job-0001\",\"payload\":[{\"apiName\":\"a\",\"parameters\":{\"x\":0.30000000000000004,"
                     "\"id\":9007199254740991,\"big\":1.2345678901234568e+17,\"tiny\":5e-324}}],"
                     "\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
    itd_error e;
    memset(&e, 0, sizeof e);
    void *o = itd_decode(&itd_JobInput, in, strlen(in), NULL, &e);
    CHECK(o != NULL);
    if (!o) { fprintf(stderr, "%s\n", e.message); itd_error_clear(&e); return; }
    size_t n = 0;
    char *s = itd_encode(&itd_JobInput, o, &n);
    CHECK(s && n == strlen(s));
    CHECK(s && strstr(s, "\"x\":0.30000000000000004,\"id\":9007199254740991,\"big\":1.2345678901234568e+17,"
                         "\"tiny\":4.94065645841247e-324}"));
    cJSON *t1 = itd_to_cjson(&itd_JobInput, o), *t2 = s ? itd_json_parse(s, n, NULL, NULL) : NULL;
    CHECK(tree_same(t1, t2));
    cJSON_Delete(t1);
    cJSON_Delete(t2);
    free(s);
    itd_free(&itd_JobInput, o);
}

int main(void)
{
    test_numbers();
    test_locale();
    test_strings();
    test_shapes();
    test_fixtures();
    test_codec();
    return T_DONE();
}
