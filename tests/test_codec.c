/* C tests of the model codec: example round trips, errors with paths,
 * defaults, unions, value formats, limits. */
#include <math.h>
#include "intuned.h"
#include "t.h"

static char *example(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s", ITD_FIXTURES_DIR, name);
    char *s = t_slurp(path, len);
    if (!s) fprintf(stderr, "cannot read %s\n", path);
    return s;
}

/* decode example with schema, re-encode, compare as JSON values */
static void roundtrip(const char *file, const itd_schema *s)
{
    size_t len = 0;
    char *src = example(file, &len);
    CHECK(src != NULL);
    if (!src) return;
    itd_error e; memset(&e, 0, sizeof e);
    void *obj = itd_decode(s, src, len, NULL, &e);
    if (!obj) fprintf(stderr, "%s: %s: %s\n", file, e.path, e.message);
    CHECK(obj != NULL);
    if (obj) {
        char *out = itd_encode(s, obj, NULL);
        cJSON *a = cJSON_Parse(src), *b = cJSON_Parse(out);
        int eq = cJSON_Compare(a, b, 1);
        if (!eq) fprintf(stderr, "%s: round trip differs:\n%s\n", file, out);
        CHECK(eq);
        void *copy = itd_clone(s, obj);
        char *out2 = itd_encode(s, copy, NULL);
        CHECK_STR(out, out2);
        free(out2);
        /* the frozen decode builds the same object */
        void *fz = itd_decode_frozen(s, src, len, NULL, &e);
        CHECK(fz != NULL && ((itd_obj *)fz)->arena != NULL);
        out2 = fz ? itd_encode(s, fz, NULL) : NULL;
        CHECK_STR(out, out2);
        itd_free(s, fz);
        free(out); free(out2);
        cJSON_Delete(a); cJSON_Delete(b);
        itd_free(s, copy);
        itd_free(s, obj);
    }
    itd_error_clear(&e);
    free(src);
}

static void expect_error(const itd_schema *s, const char *json, const char *path, const char *msg_part)
{
    itd_error e; memset(&e, 0, sizeof e);
    void *obj = itd_decode(s, json, strlen(json), NULL, &e);
    CHECK(obj == NULL);
    if (obj) { fprintf(stderr, "unexpectedly decoded: %s\n", json); itd_free(s, obj); return; }
    CHECK_STR(e.path, path);
    if (!strstr(e.message, msg_part)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", e.message, msg_part);
        CHECK(0);
    }
    itd_error_clear(&e);
}

/* ------------------------------------------------------- frozen decode */

/* The frozen decode against the ordinary one: the same values (strings with
 * escapes and UTF-8, free-form JSON, unknown keys, defaults), the same errors
 * (paths, messages, byte offsets into the caller's text), one arena.  Leaks
 * and double frees are for ASan and valgrind, which run these tests. */
static void test_frozen(void)
{
    const char *doc = "{\"id\":\"caf\u00e9 \\\"q\\\" \\u00e9\\ud83d\\ude00\\n\",\"payload\":[{\"apiName\":\"a\",\"parameters\":"
                      "{\"k\":[1,\"two\",{\"x\":null}]}}],\"configuration\":{\"retry\":{\"maximumAttempts\":2}},"
                      "\"state\":\"ACTIVE\",\"projectId\":\"p\",\"future\":{\"a\":[true,\"\\t\"]},\"later\":1}";
    itd_error e = ITD_ERROR_INIT;
    itd_job *a = itd_decode(&itd_Job, doc, strlen(doc), NULL, &e);
    itd_job *b = itd_decode_frozen(&itd_Job, doc, strlen(doc), NULL, &e);
    CHECK(a && b);
    if (a && b) {
        CHECK_STR(b->id, "caf\u00e9 \"q\" \u00e9\xf0\x9f\x98\x80\n");
        CHECK_STR(a->id, b->id);
        char *ea = itd_encode(&itd_Job, a, NULL), *eb = itd_encode(&itd_Job, b, NULL);
        CHECK_STR(ea, eb);
        CHECK(eb && strstr(eb, "\"future\":{\"a\":[true,\"\\t\"]},\"later\":1") != NULL);
        free(ea);
        free(eb);
        CHECK(b->h.arena != NULL && b->configuration->h.arena != NULL && b->configuration->h.arena != b->h.arena);
        CHECK(a->h.arena == NULL && a->configuration->h.arena == NULL);
        itd_free(&itd_JobPayload, b->payload.items[0]); /* a part: nothing happens */
        CHECK_STR(((itd_payload *)b->payload.items[0])->apiName, "a");
        itd_job *c = itd_clone(&itd_Job, b); /* an ordinary, changeable copy */
        CHECK(c && c->h.arena == NULL);
        itd_free(&itd_Job, c);
    }
    itd_free(&itd_Job, a);
    itd_free(&itd_Job, b);
    /* the forms the one-pass decode takes itself and those it hands to the
     * tree decode, side by side: the same object either way */
    static const char *const good[] = {
        " { \"id\" : \"x\" , \"payload\" : [ ] ,\n\t\"later\" : [ ] , \"configuration\" : { } , \"state\" : \"PAUSED\" , \"projectId\" : \"p\" } ",
        "{\"id\":\"x\",\"schedule\":{\"intervals\":[{\"every\":3600000},{\"every\":\"2h\"}],\"calendars\":[{\"hour\":"
        "[{\"start\":1,\"end\":3}],\"minute\":\"*\",\"dayOfWeek\":\"MONDAY\",\"second\":5,\"month\":{\"start\":\"JANUARY\"}}]},"
        "\"sink\":{\"type\":\"s3\",\"bucket\":\"b\",\"region\":\"r\",\"accessKeyId\":\"k\",\"secretAccessKey\":\"s\"},"
        "\"authSession\":null,\"configuration\":{\"maxConcurrentRequests\":3},\"st\\u0061te\":{\"status\":\"ACTIVE\",\"x\":[1,{}]},\"projectId\":\"p\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        itd_error e1 = ITD_ERROR_INIT, e2 = ITD_ERROR_INIT;
        void *x = itd_decode(&itd_Job, good[i], strlen(good[i]), NULL, &e1);
        void *y = itd_decode_frozen(&itd_Job, good[i], strlen(good[i]), NULL, &e2);
        if (!x || !y) fprintf(stderr, "good[%zu]: %s: %s / %s: %s\n", i, e1.path, e1.message, e2.path, e2.message);
        CHECK(x && y);
        char *ex = x ? itd_encode(&itd_Job, x, NULL) : NULL, *ey = y ? itd_encode(&itd_Job, y, NULL) : NULL;
        CHECK(ex && ey && strcmp(ex, ey) == 0);
        free(ex);
        free(ey);
        itd_free(&itd_Job, x);
        itd_free(&itd_Job, y);
        itd_error_clear(&e1);
        itd_error_clear(&e2);
    }
    /* a NUL byte after the document is data after it, for both */
    {
        itd_error e1 = ITD_ERROR_INIT, e2 = ITD_ERROR_INIT;
        void *x = itd_decode(&itd_Job, "{\"id\":\"x\"}\0", 11, NULL, &e1);
        void *y = itd_decode_frozen(&itd_Job, "{\"id\":\"x\"}\0", 11, NULL, &e2);
        CHECK(!x && !y && strstr(e2.message, "after the document") != NULL);
        CHECK_STR(e1.message, e2.message);
        itd_error_clear(&e1);
        itd_error_clear(&e2);
    }
    /* errors: the same kind, path, message and byte offset */
    static const char *const bad[] = {
        "{\"id\":\"x\",\"payload\":[{\"apiName\":7}]}", "{\"id\":\"x\" \"payload\":1}", "{\"id\":\"ab\\q\"}",
        "{\"id\":\"\xc3\"}", "{\"id\":\"x", "{\"id\":\"\\ud800\"}", "[1,2", "{\"id\":\"x\",\"state\":\"NOPE\"}", "",
        /* where the one-pass decode gives up and the tree decode speaks:
         * a type error before a syntax error (the syntax error wins), a
         * duplicate key, data after the document, a missing required key,
         * wrong types under a schedule and a union */
        "{\"id\":7,\"payload\":[} ", "{\"id\":\"x\",\"id\":\"y\"}", "{\"id\":\"x\"}\x01", "{\"id\":\"x\"} {}",
        "{\"id\":\"x\",\"schedule\":{\"intervals\":[{\"every\":true}]}}",
        "{\"id\":\"x\",\"schedule\":{\"calendars\":[{\"hour\":[1,[2]]}]}}", "{\"id\":\"x\",\"sink\":{\"type\":\"ftp\"}}",
        "{\"id\":\"x\",\"configuration\":{\"retry\":{\"maximumAttempts\":1.5}}}", "{\"id\":\"x\",\"payload\":{}}",
        "{\"payload\":[]}", "{\"id\":\"x\",\"configuration\":{\"runMode\":\"Sometimes\"}}", "{\"id\":null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        itd_error e1 = ITD_ERROR_INIT, e2 = ITD_ERROR_INIT;
        void *x = itd_decode(&itd_Job, bad[i], strlen(bad[i]), NULL, &e1);
        void *y = itd_decode_frozen(&itd_Job, bad[i], strlen(bad[i]), NULL, &e2);
        CHECK(!x && !y);
        CHECK(e1.kind == e2.kind);
        CHECK_STR(e1.path, e2.path);
        CHECK_STR(e1.message, e2.message);
        itd_error_clear(&e1);
        itd_error_clear(&e2);
    }
    /* every proper prefix of a document: refused alike, at the same byte */
    size_t len;
    char *src = example("jobs-list.json", &len);
    CHECK(src != NULL);
    for (size_t n = 0; src && n < len; n += 7) {
        itd_error e1 = ITD_ERROR_INIT, e2 = ITD_ERROR_INIT;
        void *x = itd_decode(&itd_JobList, src, n, NULL, &e1);
        void *y = itd_decode_frozen(&itd_JobList, src, n, NULL, &e2);
        CHECK((x == NULL) == (y == NULL));
        CHECK_STR(e1.message, e2.message);
        itd_free(&itd_JobList, x);
        itd_free(&itd_JobList, y);
        itd_error_clear(&e1);
        itd_error_clear(&e2);
    }
    free(src);
}

/* ------------------------------------------------ JSON parser strictness */

/* 1 when the parser refuses doc[0..len), with the offset and message. */
static int json_refused(const char *doc, size_t len, size_t *off, const char **why)
{
    *off = (size_t)-1;
    *why = NULL;
    cJSON *t = itd_json_parse(doc, len, off, why);
    if (t) { cJSON_Delete(t); return 0; }
    return 1;
}

/* Every proper prefix of a document is refused at its own end (never past
 * it: a lone backslash at the end used to be reported one byte beyond). */
static void test_json_truncation_offsets(void)
{
    static const char *const docs[] = {
        "[\"a\\\"b\",\"\\\\\",\"\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\uD83D\\uDE00x\"]",
        "{\"k\\\\\\\"\":\"v\\u0041\\\\\"}",
        "\"\\\\\"",
        "[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\\n\xF4\x8F\xBF\xBF\"]",
        "{\"\\u00e9\":[\"\\\\\\\\\",\"\\\"\"]}",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t n = strlen(docs[d]), off;
        const char *why;
        CHECK(!json_refused(docs[d], n, &off, &why));
        for (size_t cut = 0; cut < n; cut++) {
            char *copy = malloc(cut + 1); /* exactly `cut` bytes: ASan sees a read past them */
            memcpy(copy, docs[d], cut);
            int refused = json_refused(copy, cut, &off, &why);
            CHECK(refused);
            if (refused && off != cut)
                fprintf(stderr, "doc %zu cut at %zu: error at %zu (%s)\n", d, cut, off, why ? why : "?");
            CHECK(!refused || off == cut);
            free(copy);
        }
    }
    /* through the typed decoder: the offset is in the message */
    itd_error e;
    memset(&e, 0, sizeof e);
    CHECK(itd_decode(&itd_ApiError, "{\"message\":\"x\\", 14, NULL, &e) == NULL);
    CHECK(strstr(e.message, "invalid JSON at byte 14: unterminated string") != NULL);
    itd_error_clear(&e);
}

static void test_json_utf8(void)
{
    /* malformed UTF-8: refused at the first byte of the sequence */
    static const struct { const char *doc; size_t at; const char *why; } bad[] = {
        { "[\"ab\xC0\x80\"]", 4, "overlong" },
        { "[\"ab\xC1\xBF\"]", 4, "overlong" },
        { "[\"ab\xE0\x80\x80\"]", 4, "overlong" },
        { "[\"ab\xE0\x9F\xBF\"]", 4, "overlong" },
        { "[\"ab\xF0\x80\x80\x80\"]", 4, "overlong" },
        { "[\"ab\xF0\x8F\xBF\xBF\"]", 4, "overlong" },
        { "[\"ab\xED\xA0\x80\"]", 4, "surrogate" },
        { "[\"ab\xED\xBF\xBF\"]", 4, "surrogate" },
        { "[\"ab\xED\xB0\x80\"]", 4, "surrogate" },
        { "[\"ab\xF4\x90\x80\x80\"]", 4, "U+10FFFF" },
        { "[\"ab\xF5\x80\x80\x80\"]", 4, "U+10FFFF" },
        { "[\"ab\xF7\xBF\xBF\xBF\"]", 4, "U+10FFFF" },
        { "[\"ab\xF8\x88\x80\x80\x80\"]", 4, "never valid" },
        { "[\"ab\xFE\"]", 4, "never valid" },
        { "[\"ab\xFF\"]", 4, "never valid" },
        { "[\"ab\xE2\x82\"]", 4, "truncated" },
        { "[\"ab\xC3" "a\"]", 4, "truncated" },
        { "[\"ab\xF0\x9F\x98\"]", 4, "truncated" },
        { "[\"ab\xE2\x82\xC3\xA9\"]", 4, "truncated" },
        { "[\"ab\x80\"]", 4, "stray continuation" },
        { "[\"ab\xBF" "cd\"]", 4, "stray continuation" },
        { "[\"\xC3\xA9\xA9\"]", 4, "stray continuation" },
        /* after an escape (the copying path) and in keys */
        { "[\"\\n\xC0\x80\"]", 4, "overlong" },
        { "[\"\\u00e9\xED\xA0\x80\"]", 8, "surrogate" },
        { "{\"\xED\xA0\x80\":1}", 2, "surrogate" },
        { "{\"k\\t\x80\":1}", 5, "stray continuation" },
        { "[\"ok\",\"\xF4\x90\x80\x80\"]", 7, "U+10FFFF" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i].doc), off;
        const char *why;
        int refused = json_refused(bad[i].doc, n, &off, &why);
        if (!refused) fprintf(stderr, "accepted malformed UTF-8, case %zu\n", i);
        CHECK(refused);
        if (!refused) continue;
        if (off != bad[i].at || !why || !strstr(why, "UTF-8") || !strstr(why, bad[i].why))
            fprintf(stderr, "case %zu: at %zu (%s), expected %zu (%s)\n", i, off, why ? why : "?", bad[i].at, bad[i].why);
        CHECK(off == bad[i].at);
        CHECK(why && strstr(why, "UTF-8") && strstr(why, bad[i].why));
        /* the arena parser of the typed decoder says the same */
        itd_error e;
        memset(&e, 0, sizeof e);
        CHECK(itd_decode(&itd_ApiError, bad[i].doc, n, NULL, &e) == NULL);
        char want[64];
        snprintf(want, sizeof want, "invalid JSON at byte %zu: invalid UTF-8", bad[i].at);
        CHECK(strstr(e.message, want) != NULL);
        itd_error_clear(&e);
    }
    /* the boundaries of each well-formed range are accepted and kept as is */
    static const char *const good[] = {
        "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xE0\xBF\xBF", "\xE1\x80\x80", "\xEC\xBF\xBF",
        "\xED\x80\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
        "\xF0\xBF\xBF\xBF", "\xF1\x80\x80\x80", "\xF3\xBF\xBF\xBF", "\xF4\x80\x80\x80", "\xF4\x8F\xBF\xBF",
        "a\xC3\xA9z\xE2\x82\xAC\xF0\x9F\x98\x80",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        for (int esc = 0; esc < 2; esc++) {
            char doc[64];
            snprintf(doc, sizeof doc, "[\"%s%s\"]", esc ? "\\t" : "", good[i]);
            size_t off;
            const char *why;
            cJSON *t = itd_json_parse(doc, strlen(doc), &off, &why);
            if (!t) fprintf(stderr, "refused well-formed UTF-8, case %zu: %s at %zu\n", i, why, off);
            CHECK(t != NULL);
            if (t) {
                const char *v = cJSON_GetArrayItem(t, 0)->valuestring;
                CHECK(strcmp(v + (esc ? 1 : 0), good[i]) == 0);
                CHECK(!esc || v[0] == '\t');
            }
            cJSON_Delete(t);
        }
    }
    /* \u escapes: pairs decode; lone surrogates are refused at the escape */
    static const struct { const char *doc; size_t at; } lone[] = {
        { "[\"\\uD800\"]", 2 }, { "[\"x\\uDBFF\"]", 3 }, { "[\"\\uD83Dx\"]", 2 },
        { "[\"\\uD800\\u0041\"]", 2 }, { "[\"\\uD800\\uD800\"]", 2 }, { "[\"\\uDC00\"]", 2 },
        { "[\"ab\\uDFFF\\uD800\"]", 4 }, { "[\"\\uD83D\\n\"]", 2 },
    };
    for (size_t i = 0; i < sizeof lone / sizeof lone[0]; i++) {
        size_t off;
        const char *why;
        CHECK(json_refused(lone[i].doc, strlen(lone[i].doc), &off, &why));
        if (off != lone[i].at) fprintf(stderr, "lone surrogate case %zu: at %zu\n", i, off);
        CHECK(off == lone[i].at && why && strstr(why, "surrogate"));
    }
    cJSON *t = itd_json_parse("[\"\\uD83D\\uDE00\\u00e9\"]", 22, NULL, NULL);
    CHECK(t && strcmp(cJSON_GetArrayItem(t, 0)->valuestring, "\xF0\x9F\x98\x80\xC3\xA9") == 0);
    cJSON_Delete(t);
    /* outside strings a byte >= 0x80 is just an unexpected character */
    size_t off;
    const char *why;
    CHECK(json_refused("[1,\xC3\xA9]", 6, &off, &why) && off == 3);
}

/* format_time / parse_time: years 0001-9999 only, never an unfilled struct tm */
static void test_datetime_range(void)
{
    char b[40];
    static const double out[] = { NAN, INFINITY, -INFINITY, 1e300, -1e300, 1e17, -1e17, 253402300800.0,
                                  -62135596800.5, -62135596801.0, 9.3e18, -9.3e18 };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        memcpy(b, "sentinel", 9);
        const char *r = itd_datetime_format(out[i], b, sizeof b);
        if (r) fprintf(stderr, "formatted %g as \"%s\"\n", out[i], r);
        CHECK(r == NULL && b[0] == 0);
    }
    static const struct { double t; const char *s; } in[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { -62135596800.0, "0001-01-01T00:00:00.000Z" },
        { 253402300799.0, "9999-12-31T23:59:59.000Z" },
        { 253402300799.9996, "9999-12-31T23:59:59.999Z" }, /* not rounded into year 10000 */
        { 951782400.0, "2000-02-29T00:00:00.000Z" },
        { -1.5, "1969-12-31T23:59:58.500Z" },
        { -0.0004, "1970-01-01T00:00:00.000Z" },
        { 1748779199.9996, "2025-06-01T12:00:00.000Z" },
        { -11676096000.0, "1600-01-01T00:00:00.000Z" },
        { 4107542400.0, "2100-03-01T00:00:00.000Z" },
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        const char *r = itd_datetime_format(in[i].t, b, sizeof b);
        CHECK_STR(r, in[i].s);
    }
    CHECK(itd_datetime_format(0, b, 24) == NULL); /* too small a buffer */
    /* agrees with parsing at every day of a few 400-year cycles' edges */
    for (double t = -62135596800.0; t < 253402300800.0; t += 86400.0 * 97 + 3601.5) {
        double back = 0;
        const char *r = itd_datetime_format(t, b, sizeof b);
        if (!r || itd_datetime_parse(r, &back) != 0 || back != t) {
            fprintf(stderr, "round trip of %.3f: %s -> %.3f\n", t, r ? r : "(null)", back);
            CHECK(0);
            break;
        }
    }
    double t = 0;
    CHECK(itd_datetime_parse("0001-01-01T00:00:00Z", &t) == 0 && t == -62135596800.0);
    CHECK(itd_datetime_parse("9999-12-31T23:59:59.999Z", &t) == 0);
    CHECK(itd_datetime_parse("0000-06-01T00:00:00Z", &t) == -2);
    CHECK(itd_datetime_parse("0001-01-01T00:00:00+00:01", &t) == -2);
    CHECK(itd_datetime_parse("9999-12-31T23:30:00-01:00", &t) == -2);
    CHECK(itd_datetime_parse("9999-12-31T23:59:60Z", &t) == -2);
    CHECK(itd_datetime_parse("10000-01-01T00:00:00Z", &t) == -1);
}

/* ------------------------------------------- value ranges and versions */

#define OKCFG ",\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}"
#define NEWCFG ",\"configuration\":{}}"
#define P1 "\"payload\":[{\"apiName\":\"a\"}]"
#define NP1 "\"payload\":[{\"apiName\":\"a\",\"parameters\":{}}]"

static void expect_ok(const itd_schema *s, const char *json)
{
    itd_error e; memset(&e, 0, sizeof e);
    void *obj = itd_decode(s, json, strlen(json), NULL, &e);
    CHECK(obj != NULL);
    if (!obj) fprintf(stderr, "refused %s: %s: %s\n", json, e.path, e.message);
    itd_free(s, obj);
    itd_error_clear(&e);
}

/* Calendar ranges (§4.7) on both input forms, never on a response. */
static void test_calendar_ranges(void)
{
    /* nm: the message in the newest forms, where dayOfWeek and month take names only (§8.3) */
    static const char DOW[] = "a day name (SUNDAY ... SATURDAY) in the newest API", MON[] = "a month name";
    static const struct { const char *cal, *path, *msg, *nm; } bad[] = {
        { "{\"second\":60}", "schedule.calendars[1].second", "from 0 to 59, got 60", NULL },
        { "{\"minute\":-1}", "schedule.calendars[1].minute", "from 0 to 59, got -1", NULL },
        { "{\"hour\":24}", "schedule.calendars[1].hour", "from 0 to 23, got 24", NULL },
        { "{\"hour\":1.5}", "schedule.calendars[1].hour", "whole number", NULL },
        { "{\"dayOfMonth\":0}", "schedule.calendars[1].dayOfMonth", "from 1 to 31, got 0", NULL },
        { "{\"dayOfMonth\":32}", "schedule.calendars[1].dayOfMonth", "from 1 to 31", NULL },
        { "{\"dayOfWeek\":7}", "schedule.calendars[1].dayOfWeek", "from 0 to 6, got 7", DOW },
        { "{\"month\":0}", "schedule.calendars[1].month", "from 1 to 12, got 0", MON },
        { "{\"month\":13}", "schedule.calendars[1].month", "from 1 to 12", MON },
        { "{\"hour\":{\"start\":25}}", "schedule.calendars[1].hour.start", "from 0 to 23, got 25", NULL },
        { "{\"hour\":{\"start\":1,\"end\":24}}", "schedule.calendars[1].hour.end", "got 24", NULL },
        { "{\"hour\":{\"start\":1,\"end\":5,\"step\":0}}", "schedule.calendars[1].hour.step", "whole number >= 1, got 0", NULL },
        { "{\"hour\":{\"start\":1,\"end\":5,\"step\":1.5}}", "schedule.calendars[1].hour.step", ">= 1, got 1.5", NULL },
        { "{\"minute\":[{\"start\":0},{\"start\":61}]}", "schedule.calendars[1].minute[2].start", "got 61", NULL },
    };
    char buf[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"calendars\":[%s]}" OKCFG, bad[i].cal);
        expect_error(&itd_JobInput, buf, bad[i].path, bad[i].msg);
        snprintf(buf, sizeof buf, "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[%s]}" NEWCFG, bad[i].cal);
        const char *nm = bad[i].nm ? bad[i].nm : bad[i].msg;
        expect_error(&itd_JobInputNewest, buf, bad[i].path, nm);
        snprintf(buf, sizeof buf, "{" NP1 ",\"schedule\":{\"calendars\":[%s]}" NEWCFG, bad[i].cal);
        expect_error(&itd_JobUpdateInput, buf, bad[i].path, nm);
        /* a server's answer is never refused for them */
        snprintf(buf, sizeof buf, "{\"id\":\"x\",\"payload\":[],\"schedule\":{\"calendars\":[%s]},"
                 "\"configuration\":{},\"state\":\"ACTIVE\",\"projectId\":\"p\"}", bad[i].cal);
        expect_ok(&itd_Job, buf);
    }
    /* the bounds themselves, names, strings and arrays of numbers (newest) pass */
    expect_ok(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"calendars\":[{\"second\":59,\"minute\":0,"
              "\"hour\":{\"start\":0,\"end\":23,\"step\":23},\"dayOfMonth\":31,\"dayOfWeek\":{\"start\":\"MONDAY\","
              "\"end\":6},\"month\":\"DECEMBER\",\"year\":2030}]}" OKCFG);
    expect_ok(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[{\"minute\":[0,30,59],"
              "\"hour\":\"*\",\"dayOfWeek\":[\"SUNDAY\",{\"start\":\"MONDAY\",\"end\":\"FRIDAY\"}],"
              "\"month\":{\"start\":\"JANUARY\",\"end\":\"DECEMBER\",\"step\":3},\"year\":2030}]}" NEWCFG);
    /* §8.3's closed unions in the newest forms (v0.3.12 passes such strings with a warning) */
    static const struct { const char *cal, *path, *msg; } newest_bad[] = {
        { "{\"dayOfWeek\":\"MON-FRI\"}", "schedule.calendars[1].dayOfWeek", "expected \"*\" or a day name" },
        { "{\"month\":\"JAN\"}", "schedule.calendars[1].month", "month name" },
        { "{\"minute\":\"0\"}", "schedule.calendars[1].minute", "expected \"*\" or a whole number in the newest API, got \"0\"" },
        { "{\"hour\":\"*/5\"}", "schedule.calendars[1].hour", "whole number" },
        { "{\"dayOfWeek\":1}", "schedule.calendars[1].dayOfWeek", "day name (SUNDAY ... SATURDAY) in the newest API, got 1" },
        { "{\"minute\":{\"start\":\"5\"}}", "schedule.calendars[1].minute.start", "expected a whole number" },
        { "{\"minute\":[\"*\"]}", "schedule.calendars[1].minute[1]", "expected a whole number" },
        { "{\"dayOfWeek\":{\"start\":\"MONDAY\",\"end\":5}}", "schedule.calendars[1].dayOfWeek.end", "expected a day name" },
        { "{\"dayOfWeek\":[\"*\"]}", "schedule.calendars[1].dayOfWeek[1]", "expected a day name" },
    };
    for (size_t i = 0; i < sizeof newest_bad / sizeof newest_bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[%s]}" NEWCFG, newest_bad[i].cal);
        expect_error(&itd_JobInputNewest, buf, newest_bad[i].path, newest_bad[i].msg);
    }
    expect_ok(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"calendars\":[{\"dayOfWeek\":\"MON-FRI\","
              "\"month\":\"JAN\",\"minute\":\"0\",\"hour\":{\"start\":\"5\"}}]}" OKCFG);
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[{\"minute\":[0,60]}]}"
                 NEWCFG, "schedule.calendars[1].minute[2]", "got 60");
    /* §8.3: in the newest forms a range with step carries end, and no step default is added */
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1,"
                 "\"step\":2}}]}" NEWCFG, "schedule.calendars[1].hour.step", "must also have \"end\"");
    expect_error(&itd_JobUpdateInput, "{" NP1 ",\"schedule\":{\"calendars\":[{\"hour\":[{\"start\":1,"
                 "\"step\":2}]}]}" NEWCFG, "schedule.calendars[1].hour[1].step", "must also have \"end\"");
    expect_ok(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1,"
              "\"step\":2}}]}" OKCFG);
    {
        const char *in = "{\"id\":\"job-1234\"," NP1 ",\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1},"
                         "\"minute\":[{\"start\":0,\"end\":30}]}]}" NEWCFG;
        itd_error e; memset(&e, 0, sizeof e);
        void *o = itd_decode(&itd_JobInputNewest, in, strlen(in), NULL, &e);
        CHECK(o != NULL);
        char *out = o ? itd_encode(&itd_JobInputNewest, o, NULL) : NULL;
        CHECK(out && strstr(out, "\"minute\":[{\"start\":0,\"end\":30}],\"hour\":{\"start\":1}") != NULL);
        /* a copy keeps the newest form: no default added on the way */
        void *copy = o ? itd_clone(&itd_JobInputNewest, o) : NULL;
        char *out2 = copy ? itd_encode(&itd_JobInputNewest, copy, NULL) : NULL;
        CHECK(out && out2 && strcmp(out, out2) == 0);
        free(out); free(out2);
        itd_free(&itd_JobInputNewest, copy);
        itd_free(&itd_JobInputNewest, o);
        /* v0.3.12 keeps its step default */
        const char *old = "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1}}]}" OKCFG;
        o = itd_decode(&itd_JobInput, old, strlen(old), NULL, &e);
        out = o ? itd_encode(&itd_JobInput, o, NULL) : NULL;
        CHECK(out && strstr(out, "\"hour\":{\"start\":1,\"step\":1}") != NULL);
        free(out);
        itd_free(&itd_JobInput, o);
    }
}

/* Counts, URLs, the payload, and the fields of the other version. */
static void test_input_rules(void)
{
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":0}}}", "configuration.retry.maximumAttempts", "whole number >= 1, got 0");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":2.5}}}", "configuration.retry.maximumAttempts", "got 2.5");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"configuration\":{\"retry\":{\"maximumAttempts\":0}}}",
                 "configuration.retry.maximumAttempts", ">= 1");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"parameters\":{},"
                 "\"retry\":{\"maximumAttempts\":-2}}]" NEWCFG, "payload[1].retry.maximumAttempts", ">= 1");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"parameters\":{},"
                 "\"requestTimeout\":0}]" NEWCFG, "payload[1].requestTimeout", "whole number >= 1, got 0");
    expect_error(&itd_JobUpdateInput, "{" NP1 ",\"configuration\":{\"requestTimeout\":-5}}",
                 "configuration.requestTimeout", ">= 1");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"auth_session\":{\"id\":\"s\",\"checkAttempts\":0}"
                 NEWCFG, "auth_session.checkAttempts", ">= 1");
    expect_error(&itd_JobUpdateInput, "{" NP1 ",\"auth_session\":{\"id\":\"s\",\"createAttempts\":1.5}" NEWCFG,
                 "auth_session.createAttempts", "integer");
    /* webhook URLs */
    static const char *const bad_urls[] = { "ftp://h.test/x", "https://", "http:///x", "h.test/x", "/hook",
                                            "https://h.test:port/x", "https://h test/x", "https://u@/x", "" };
    static const char *const good_urls[] = { "https://h.test", "http://h.test:8080/x?y=1#z", "HTTPS://H.TEST/",
                                             "http://user:pw@127.0.0.1:9/h", "http://[::1]:80/h" };
    char buf[512];
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"webhook\",\"url\":\"%s\"}," P1 OKCFG,
                 bad_urls[i]);
        expect_error(&itd_JobInput, buf, "sink.url", "absolute http:// or https:// URL with a host");
        snprintf(buf, sizeof buf, "{" NP1 ",\"sink\":{\"type\":\"webhook\",\"url\":\"%s\"}" NEWCFG, bad_urls[i]);
        expect_error(&itd_JobUpdateInput, buf, "sink.url", "absolute");
        snprintf(buf, sizeof buf, "{\"id\":\"x\",\"sink\":{\"type\":\"webhook\",\"url\":\"%s\"},\"configuration\":{},"
                 "\"state\":\"ACTIVE\",\"projectId\":\"p\"}", bad_urls[i]);
        expect_ok(&itd_Job, buf);
    }
    for (size_t i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"webhook\",\"url\":\"%s\"}," P1 OKCFG,
                 good_urls[i]);
        expect_ok(&itd_JobInput, buf);
    }
    /* an empty payload: refused in every input form, after a missing key */
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[]" OKCFG, "payload", "must not be empty");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\",\"payload\":[]" NEWCFG, "payload", "must not be empty");
    expect_error(&itd_JobUpdateInput, "{\"payload\":[]" NEWCFG, "payload", "must not be empty");
    expect_error(&itd_JobUpdateInput, "{\"payload\":[]}", "configuration", "required");
    expect_ok(&itd_Job, "{\"id\":\"x\",\"payload\":[],\"configuration\":{},\"state\":\"ACTIVE\",\"projectId\":\"p\"}");
    /* a key of the newest API in v0.3.12 input: its version, and no hint naming the key itself */
    static const struct { const char *doc, *path; } newest_keys[] = {
        { "{\"id\":\"job-1234\"," P1 ",\"configuration\":{\"runMode\":\"Order-Irrelevant\",\"requestTimeout\":5}}",
          "configuration.requestTimeout" },
        { "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"requestTimeout\":5}]" OKCFG, "payload[1].requestTimeout" },
        { "{\"id\":\"job-1234\"," P1 ",\"proxy\":\"http://p.test\"" OKCFG, "proxy" },
        { "{\"id\":\"job-1234\"," P1 ",\"auth_session\":{\"id\":\"s\"}" OKCFG, "auth_session" },
        { "{\"id\":\"job-1234\"," P1 ",\"schedule\":{\"jitter\":\"1m\"}" OKCFG, "schedule.jitter" },
    };
    for (size_t i = 0; i < sizeof newest_keys / sizeof newest_keys[0]; i++) {
        itd_error e; memset(&e, 0, sizeof e);
        void *o = itd_decode(&itd_JobInput, newest_keys[i].doc, strlen(newest_keys[i].doc), NULL, &e);
        CHECK(o == NULL);
        itd_free(&itd_JobInput, o);
        CHECK_STR(e.path, newest_keys[i].path);
        CHECK_STR(e.message, "only in the newest API (api_version = \"newest\")");
        itd_error_clear(&e);
    }
    /* a key of v0.3.12 in a newest form */
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"configuration\":{\"retry\":{\"maximumAttempts\":2,"
                 "\"initialInterval\":\"1s\"}}}", "configuration.retry.initialInterval", "only in API v0.3.12");
    expect_error(&itd_JobUpdateInput, "{" NP1 ",\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}",
                 "configuration.runMode", "only in API v0.3.12");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\"," NP1 ",\"authSession\":{\"id\":\"s\"}" NEWCFG,
                 "authSession", "only in API v0.3.12");
    expect_error(&itd_JobInputNewest, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"parameters\":[1]}]" NEWCFG,
                 "payload[1].parameters", "only in API v0.3.12");
    /* a typo still gets its hint, but never a key the version refuses */
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\"," P1 ",\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"maxConcurentRequests\":2}}", "configuration.maxConcurentRequests", "did you mean \"maxConcurrentRequests\"");
    {
        itd_error e; memset(&e, 0, sizeof e);
        const char *d = "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"requestTimeot\":5}]" OKCFG;
        CHECK(itd_decode(&itd_JobInput, d, strlen(d), NULL, &e) == NULL);
        CHECK(strstr(e.message, "requestTimeout") == NULL);
        itd_error_clear(&e);
    }
}


/* ------------------------------------------- Run API and Auth Sessions */

/* A request example is exactly what the SDK sends: the encoding is the
 * same JSON value (defaults present), its top-level keys in the same order
 * (schema order).  The S3 sink's keys come in v0.3.12's order: the sink
 * schema is shared with the jobs, and JSON objects are unordered. */
static void exact_request(const char *file, const itd_schema *s)
{
    size_t len = 0;
    char *src = example(file, &len);
    CHECK(src != NULL);
    if (!src) return;
    itd_error e = ITD_ERROR_INIT;
    void *obj = itd_decode(s, src, len, NULL, &e);
    if (!obj) fprintf(stderr, "%s: %s: %s\n", file, e.path, e.message);
    CHECK(obj != NULL);
    cJSON *t = cJSON_Parse(src);
    char *want = t ? cJSON_PrintUnformatted(t) : NULL;
    char *got = obj ? itd_encode(s, obj, NULL) : NULL;
    cJSON *g = got ? cJSON_Parse(got) : NULL;
    int same = g && t && cJSON_Compare(g, t, 1);
    for (cJSON *a = g ? g->child : NULL, *b = t ? t->child : NULL; same && (a || b); a = a->next, b = b->next)
        same = a && b && strcmp(a->string, b->string) == 0;
    if (!same) fprintf(stderr, "%s:\n got %s\nwant %s\n", file, got ? got : "(none)", want ? want : "(none)");
    CHECK(same);
    cJSON_Delete(g);
    free(got);
    free(want);
    cJSON_Delete(t);
    if (obj) itd_free(s, obj);
    itd_error_clear(&e);
    free(src);
}

static void *decode_str(const itd_schema *s, const char *json, itd_warnings *w)
{
    itd_error e = ITD_ERROR_INIT;
    void *o = itd_decode(s, json, strlen(json), w, &e);
    if (!o) fprintf(stderr, "%s: %s: %s\n", json, e.path, e.message);
    itd_error_clear(&e);
    return o;
}

static void test_run_auth(void)
{
    exact_request("run-start-request-runtime-webhook.json", &itd_RunStartInput);
    exact_request("run-start-request-credentials-s3.json", &itd_RunStartInput);
    exact_request("auth-session-create-start-request.json", &itd_AuthSessionCreateInput);
    exact_request("auth-session-update-start-request.json", &itd_AuthSessionUpdateInput);
    exact_request("auth-session-validate-start-request.json", &itd_AuthSessionValidateInput);
    roundtrip("run-start-response.json", &itd_RunStarted);
    roundtrip("run-result-pending.json", &itd_RunResult);
    roundtrip("run-result-started.json", &itd_RunResult);
    roundtrip("run-result-completed.json", &itd_RunResult);
    roundtrip("run-result-failed.json", &itd_RunResult);
    roundtrip("run-result-canceled.json", &itd_RunResult);
    roundtrip("run-result-completed-v0312.json", &itd_RunResult);
    roundtrip("auth-session-list.json", &itd_AuthSessionList);
    roundtrip("auth-session-get.json", &itd_AuthSessionInfo);
    roundtrip("auth-session-start-response.json", &itd_OperationStarted);
    roundtrip("auth-session-validate-start-response.json", &itd_OperationStarted);
    roundtrip("auth-session-result-pending.json", &itd_OperationResult);
    roundtrip("auth-session-result-in-progress.json", &itd_OperationResult);
    roundtrip("auth-session-result-done.json", &itd_OperationResult);
    roundtrip("auth-session-result-failed.json", &itd_OperationResult);
    roundtrip("auth-session-result-canceled.json", &itd_OperationResult);
    roundtrip("auth-session-result-requested-more-info-v0312.json", &itd_OperationResult);

    /* the minimal body gets the SDK's defaults, api last */
    {
        itd_run_start_input *in = decode_str(&itd_RunStartInput,
            "{\"api\":\"products/list\",\"parameters\":{\"category\":\"shoes\",\"page\":1}}", NULL);
        CHECK(in != NULL);
        char *out = in ? itd_encode(&itd_RunStartInput, in, NULL) : NULL;
        CHECK_STR(out, "{\"parameters\":{\"category\":\"shoes\",\"page\":1},\"saveTrace\":true,"
                       "\"requestTimeout\":600,\"api\":\"products/list\"}");
        free(out);
        if (in) itd_free(&itd_RunStartInput, in);
    }
    /* the auth-session union: runtime first, credentials by id, the SDK's traps refused */
    {
        itd_run_start_input *in = decode_str(&itd_RunStartInput,
            "{\"api\":\"a\",\"parameters\":{},\"authSession\":{\"runtimeInput\":{\"u\":\"x\"}}}", NULL);
        CHECK(in && in->authSession && in->authSession->h.schema == &itd_RuntimeAuthSessionInput);
        CHECK(in && in->authSession->id == NULL && in->authSession->checkAttempts == 3);
        if (in) itd_free(&itd_RunStartInput, in);
        in = decode_str(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"authSession\":{\"id\":\"s\"}}", NULL);
        CHECK(in && in->authSession->h.schema == &itd_CredentialsAuthSessionInput);
        CHECK(in && in->authSession->autoRecreate == 1 && in->authSession->has_requestTimeout);
        if (in) itd_free(&itd_RunStartInput, in);
    }
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"authSession\":{}}", "authSession.id", "required");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"authSession\":{\"id\":\"x\",\"runtimeInput\":\"t\"}}",
                 "authSession.runtimeInput", "expected object");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":[]}", "parameters", "expected object");
    expect_error(&itd_RunStartInput, "{\"parameters\":{}}", "api", "required");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"requestTimeout\":1.5}", "requestTimeout", "integer");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"requestTimeout\":-1}", "requestTimeout", ">= 0");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"retry\":{\"maximumAttempts\":2.5}}",
                 "retry.maximumAttempts", "integer");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"sink\":{\"type\":\"ftp\"}}", "sink.type", "expected");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"sink\":{\"type\":\"webhook\","
                 "\"url\":\"https://h.example/x\",\"headers\":{\"X\":1}}}", "sink.headers.X", "expected string");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"extra\":1}", "extra", "unknown field");
    expect_error(&itd_RunStartInput, "{\"api\":\"a\",\"parameters\":{},\"sink\":null}", "sink", "got null");
    expect_error(&itd_AuthSessionCreateInput, "{}", "parameters", "required");
    expect_error(&itd_AuthSessionUpdateInput, "{\"id\":\"x\",\"parameters\":{}}", "id", "unknown field");
    expect_error(&itd_AuthSessionValidateInput, "{\"checkAttempts\":2.5}", "checkAttempts", "integer");
    /* below 1: sent, with a warning */
    {
        itd_warnings w;
        memset(&w, 0, sizeof w);
        itd_auth_session_input *v = decode_str(&itd_AuthSessionValidateInput, "{\"requestTimeout\":0}", &w);
        CHECK(v && v->requestTimeout == 0 && v->has_requestTimeout);
        CHECK(w.n == 1);
        itd_warnings_clear(&w);
        if (v) itd_free(&itd_AuthSessionValidateInput, v);
    }
    /* responses: open values, both spellings, v0.3.12 shapes */
    {
        itd_run_result *r = decode_str(&itd_RunResult, "{\"runId\":\"r\",\"status\":\"running\",\"error\":{"
            "\"message\":\"m\",\"category\":\"new\",\"code\":\"brand-new\",\"correlationId\":\"c\"}}", NULL);
        CHECK(r && strcmp(r->status, "running") == 0 && strcmp(r->error->category, "new") == 0);
        CHECK(r && r->error->correlation_id && strcmp(r->error->correlation_id, "c") == 0);
        CHECK(r && r->error->has_retirable && r->error->retirable == 0);
        if (r) itd_free(&itd_RunResult, r);
        r = decode_str(&itd_RunResult, "{\"runId\":\"r\",\"status\":\"failed\",\"error\":\"E\",\"message\":\"m\","
                       "\"statusCode\":500}", NULL);
        CHECK(r && r->error && strcmp(r->error->code, "E") == 0 && r->has_statusCode && r->statusCode == 500);
        if (r) itd_free(&itd_RunResult, r);
        r = decode_str(&itd_RunResult, "{\"runId\":\"r\",\"status\":\"completed\",\"result\":null}", NULL);
        CHECK(r && r->result == NULL && r->result_null);
        char *out = r ? itd_encode(&itd_RunResult, r, NULL) : NULL;
        CHECK_STR(out, "{\"runId\":\"r\",\"status\":\"completed\",\"result\":null}");
        free(out);
        if (r) itd_free(&itd_RunResult, r);
        itd_auth_session_info *a = decode_str(&itd_AuthSessionInfo, "{\"id\":\"a\",\"status\":\"READY\"}", NULL);
        CHECK(a && a->type == NULL);
        if (a) itd_free(&itd_AuthSessionInfo, a);
        itd_operation_started *st = decode_str(&itd_OperationStarted, "{\"status\":\"pending\",\"operationId\":\"o\"}", NULL);
        CHECK(st && strcmp(st->status, "pending") == 0);
        if (st) itd_free(&itd_OperationStarted, st);
    }
    expect_error(&itd_RunResult, "{\"status\":\"pending\"}", "runId", "required");
    expect_error(&itd_OperationResult, "{\"runId\":\"x\"}", "status", "required");
    expect_error(&itd_OperationStarted, "{\"status\":\"started\"}", "operationId", "required");
    /* redaction: credentials, proxy URLs and sink secrets are *** */
    {
        const char *in = "{\"api\":\"a\",\"parameters\":{\"q\":1},\"proxy\":\"http://u:pw-9999@p:1\","
                         "\"authSession\":{\"id\":\"s\",\"runtimeInput\":{\"password\":\"rt-secret-1\"}},"
                         "\"sink\":{\"type\":\"s3\",\"region\":\"r\",\"bucket\":\"b\",\"accessKeyId\":\"k\","
                         "\"secretAccessKey\":\"s3-secret-2\"}}";
        itd_run_start_input *r = decode_str(&itd_RunStartInput, in, NULL);
        CHECK(r != NULL);
        cJSON *red = r ? itd_to_cjson_redacted(&itd_RunStartInput, r) : NULL;
        char *txt = red ? cJSON_PrintUnformatted(red) : NULL;
        CHECK(txt && !strstr(txt, "pw-9999") && !strstr(txt, "rt-secret-1") && !strstr(txt, "s3-secret-2"));
        CHECK(txt && strstr(txt, "\"runtimeInput\":{\"password\":\"***\"}") && strstr(txt, "\"proxy\":\"***\""));
        CHECK(txt && strstr(txt, "\"parameters\":{\"q\":1}")); /* the API's arguments are not credentials */
        free(txt);
        cJSON_Delete(red);
        char *plain = r ? itd_encode(&itd_RunStartInput, r, NULL) : NULL;
        CHECK(plain && strstr(plain, "rt-secret-1")); /* the wire body keeps them */
        free(plain);
        if (r) itd_free(&itd_RunStartInput, r);
        itd_auth_session_input *c = decode_str(&itd_AuthSessionCreateInput,
            "{\"parameters\":{\"username\":\"jane\",\"password\":\"pw-secret-3\"}}", NULL);
        red = c ? itd_to_cjson_redacted(&itd_AuthSessionCreateInput, c) : NULL;
        txt = red ? cJSON_PrintUnformatted(red) : NULL;
        CHECK(txt && !strstr(txt, "pw-secret-3") && strstr(txt, "\"password\":\"***\""));
        free(txt);
        cJSON_Delete(red);
        if (c) itd_free(&itd_AuthSessionCreateInput, c);
    }
}

int main(void)
{
    test_frozen();
    test_run_auth();
    test_calendar_ranges();
    test_input_rules();
    test_json_truncation_offsets();
    test_json_utf8();
    test_datetime_range();
    roundtrip("job-webhook-paused.json", &itd_Job);
    roundtrip("job-s3-active.json", &itd_Job);
    roundtrip("jobs-list.json", &itd_JobList);
    roundtrip("jobinput-minimal.json", &itd_JobInput);
    roundtrip("jobinput-rich.json", &itd_JobInput);
    roundtrip("jobinput-s3.json", &itd_JobInput);
    roundtrip("runs-list.json", &itd_JobRunList);
    roundtrip("error-400.json", &itd_ApiErrorInvalidInput);
    roundtrip("error-401.json", &itd_ApiErrorUnauthorized);
    roundtrip("error-404.json", &itd_ApiError);
    roundtrip("sink-result-completed.json", &itd_JobSinkResultPayload);
    roundtrip("sink-result-failed.json", &itd_JobSinkResultPayload);
    roundtrip("pause-response.json", &itd_PauseJob);
    roundtrip("trigger-response.json", &itd_TriggerJob);
    roundtrip("terminate-response.json", &itd_TerminateJobRun);
    roundtrip("create-response.json", &itd_CreateJob);

    /* typed access */
    {
        size_t len; char *src = example("job-webhook-paused.json", &len);
        itd_error e; memset(&e, 0, sizeof e);
        itd_job *j = itd_job_decode(src, len, &e);
        CHECK(j && j->sink && j->sink->kind == ITD_SINK_WEBHOOK);
        if (j) {
            CHECK_STR(j->state->status, "PAUSED");
            CHECK(j->configuration->retry->initialInterval.kind == ITD_NS_NUMBER);
            CHECK(j->configuration->retry->initialInterval.num == 1500);
            itd_calendar *cal = j->schedule->calendars.items[0];
            CHECK(cal->hour->kind == ITD_CV_RANGE && cal->hour->range->step == 2);
            CHECK(cal->second->kind == ITD_CV_NUMBER && cal->second->num == 0);
            CHECK_STR(cal->dayOfWeek->range->start.str, "MONDAY");
            CHECK(j->last_run_time && !j->last_run_time_null);
            itd_job_free(j);
        }
        free(src);
    }
    /* defaults applied on input */
    {
        const char *in = "{\"id\":\"abcdefg\",\"sink\":{\"type\":\"s3\",\"region\":\"r\",\"bucket\":\"b\","
                         "\"accessKeyId\":\"a\",\"secretAccessKey\":\"s\"},\"payload\":[{\"apiName\":\"a\"}],"
                         "\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1}}]},"
                         "\"configuration\":{\"runMode\":\"Order-Irrelevant\",\"retry\":{\"maximumAttempts\":2}}}";
        itd_error e; memset(&e, 0, sizeof e);
        itd_job_input *ji = itd_job_input_decode(in, strlen(in), &e);
        CHECK(ji != NULL);
        if (ji) {
            char *out = itd_encode(&itd_JobInput, ji, NULL);
            CHECK(strstr(out, "\"skipOnFail\":false") != NULL);
            CHECK(strstr(out, "{\"start\":1,\"step\":1}") != NULL);
            CHECK(strstr(out, "\"maximumAttempts\":2,\"backoffCoefficient\":1,\"initialInterval\":\"1s\"") != NULL);
            free(out);
            itd_job_input_free(ji);
        }
    }
    /* response defaults: retry ms */
    {
        const char *in = "{\"id\":\"x\",\"payload\":[],\"configuration\":{\"retry\":{\"maximumAttempts\":1}},"
                         "\"next_run_time\":null,\"last_run_time\":null,\"state\":\"ACTIVE\",\"project_id\":\"p\","
                         "\"auth_session\":{\"id\":\"a\",\"checkAttempts\":3},\"newKey\":{\"a\":[1,2]}}";
        itd_error e; memset(&e, 0, sizeof e);
        itd_job *j = itd_job_decode(in, strlen(in), &e);
        CHECK(j != NULL);
        if (j) {
            CHECK(j->configuration->retry->initialInterval.num == 1000);
            CHECK_STR(j->state->status, "ACTIVE");
            CHECK_STR(j->projectId, "p");
            CHECK(j->authSession && j->authSession->has_checkAttempts);
            char *out = itd_encode(&itd_Job, j, NULL);
            CHECK(strstr(out, "\"newKey\":{\"a\":[1,2]}") != NULL);
            CHECK(strstr(out, "\"projectId\":\"p\"") != NULL);
            free(out);
            itd_job_free(j);
        } else fprintf(stderr, "%s: %s\n", e.path, e.message);
    }
    /* errors name the path */
    const char *ok_tail = ",\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\"},{\"apiName\":5}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[2].apiName", "expected string, got number");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiNmae\":\"a\"}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].apiNmae", "did you mean \"apiName\"");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].apiName", "required");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[]}", "configuration", "required");
    snprintf(buf, sizeof buf, "{\"id\":\"job 1\",\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "id", "URL slug");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"ftp\"},\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "sink.type", "\"webhook\" or \"s3\"");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"s3\",\"region\":\"r\"},\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "sink.bucket", "required");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Fast\"}}",
                 "configuration.runMode", "\"Order-Irrelevant\"");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":1,\"initialInterval\":\"1h30m\"}}}",
                 "configuration.retry.initialInterval", "invalid duration");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":1,\"initialInterval\":1000}}}",
                 "configuration.retry.initialInterval", "duration string");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[],\"schedule\":{\"calendars\":[{\"hour\":[3]}]}%s", ok_tail);
    expect_error(&itd_JobInput, buf, "schedule.calendars[1].hour[1]", "range object");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[],\"schedule\":{\"intervals\":[{\"every\":true}]}%s", ok_tail);
    expect_error(&itd_JobInput, buf, "schedule.intervals[1].every", "got boolean");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"parameters\":7}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].parameters", "object or array");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"id\":\"again\",\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "id", "duplicate");
    expect_error(&itd_Job, "{\"id\":1}", "id", "expected string");
    expect_error(&itd_Job, "{\"id\":\"x\",\"payload\":[],\"configuration\":{},\"next_run_time\":null,"
                 "\"state\":{\"status\":\"paused\"},\"projectId\":\"p\"}", "state.status", "\"PAUSED\"");
    expect_error(&itd_Job, "[1,2", "", "invalid JSON");
    expect_error(&itd_Job, "{} x", "", "unexpected data");
    expect_error(&itd_JobList, "[{\"id\":\"a\"}]", "[1].configuration", "required");
    expect_error(&itd_JobSinkResultPayload, "{\"apiInfo\":{\"name\":\"n\",\"runId\":\"r\",\"result\":{\"status\":\"odd\"}},"
                 "\"workspaceId\":\"w\",\"project\":{\"id\":\"i\",\"name\":\"n\"}}", "apiInfo.result.status", "completed");
    {   /* deep nesting is refused cleanly, not a crash */
        size_t n = 5000;
        char *deep = malloc(2 * n + 64);
        strcpy(deep, "{\"id\":\"a\",\"payload\":[{\"apiName\":\"x\",\"parameters\":");
        size_t off = strlen(deep);
        for (size_t i = 0; i < n; i++) deep[off++] = '[';
        for (size_t i = 0; i < n; i++) deep[off++] = ']';
        deep[off] = 0;
        strcat(deep, "}]}");
        expect_error(&itd_Job, deep, "", "invalid JSON");
        free(deep);
    }
    {   /* huge documents refused before parsing */
        itd_error e; memset(&e, 0, sizeof e);
        CHECK(itd_decode(&itd_Job, "{}", (size_t)ITD_MAX_DOCUMENT_BYTES + 1, NULL, &e) == NULL);
        CHECK(strstr(e.message, "too large") != NULL);
    }
    /* warnings */
    {
        itd_warnings w = {0, NULL};
        itd_error e; memset(&e, 0, sizeof e);
        const char *in = "{\"id\":\"short\",\"payload\":[{\"apiName\":\"a\"}],\"schedule\":{\"calendars\":[{\"dayOfWeek\":\"MON-FRI\"}]},"
                         "\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
        void *o = itd_decode(&itd_JobInput, in, strlen(in), &w, &e);
        CHECK(o != NULL);
        CHECK(w.n == 2);
        if (w.n == 2) { CHECK(strncmp(w.items[0], "id: ", 4) == 0); CHECK(strstr(w.items[1], "MON-FRI") != NULL); }
        itd_warnings_clear(&w);
        itd_free(&itd_JobInput, o);
    }
    /* durations (§5.1) */
    struct { const char *s; double ms; } good[] = {
        {"1s", 1000}, {"1.5s", 1500}, {"500ms", 500}, {"250", 250}, {"10m", 600000}, {"2 hours", 7200000},
        {".5h", 1800000}, {"1d", 86400000}, {"5  min", 300000}, {"1.5 H", 5400000}, {"1y", 31557600000.0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        CHECK(itd_duration_ms(good[i].s, &v) == 0 && v == good[i].ms);
    }
    const char *bad[] = { "1h30m", " 1s", "1s ", "1e3", "+5s", "1.", "", "fortnight", "1mo", "-1s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(itd_duration_ms(bad[i], NULL) == -1);
    /* dates (§5.3) */
    double t = 0;
    CHECK(itd_datetime_parse("2025-06-01T12:00:00.000Z", &t) == 0 && t == 1748779200.0);
    CHECK(itd_datetime_parse("2025-05-11T22:40:03.005+02:00", &t) == 0 && fabs(t - 1746996003.005) < 1e-6);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40+0000", &t) == 0);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40+05", &t) == -1);
    CHECK(itd_datetime_parse("2025-05-31 08:02:40Z", &t) == -1);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40", &t) == -1);
    char db[40];
    CHECK_STR(itd_datetime_format(1748779200.25, db, sizeof db), "2025-06-01T12:00:00.250Z");
    CHECK_STR(itd_closest_field(&itd_JobConfiguration, "maxConcurentRequests"), "maxConcurrentRequests");
    CHECK(itd_closest_field(&itd_JobConfiguration, "zzzzzzzzzz") == NULL);
    return T_DONE();
}
