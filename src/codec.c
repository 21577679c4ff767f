/*
 * codec.c - JSON <-> model structs, driven by the schemas of model.c.
 *
 * Decoding is one pass over a cJSON tree: every key is matched against the
 * schema, values are type-checked and moved (not copied) into the struct,
 * unknown keys are refused (input models) or kept in `extra` (responses),
 * then required keys are checked and defaults applied.  The first problem
 * stops the decode and is reported with its exact field path.  A frozen
 * decode of an answer goes straight from the text instead (s_decode, the
 * lexer of json_lex.h), with the same rules, and hands back to the tree
 * decode every value it does not take itself and every document it fails.
 *
 * Input (the input models, or what a program builds) also gets the value
 * rules the reference gives (ranges of §4.7, §4.8, §5; flags ITD_RANGED,
 * ITD_URL, ITD_NONEMPTY), never applied to a server's answer.  A key of the
 * other API version is refused naming that version.  The newest API's input
 * forms (JobUpdateInput, JobInputNewest) add no v0.3.12 defaults
 * (ITD_OLD_DEFAULT: the range step) and take its closed calendar unions.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "codec.h"
#include "codec_internal.h"
#include "json.h"
#include "json_lex.h"
#include "model_internal.h"
#include "scrub.h"

/* cJSON's type tests, inline: as library calls they were a few percent of a
 * decode (the same tests: the low byte of `type`, NULL is none of them) */
static inline int j_is(const cJSON *v, int t) { return v && (v->type & 0xFF) == t; }
#define J_IS_NULL(v) j_is((v), cJSON_NULL)
#define J_IS_NUMBER(v) j_is((v), cJSON_Number)
#define J_IS_STRING(v) j_is((v), cJSON_String)
#define J_IS_ARRAY(v) j_is((v), cJSON_Array)
#define J_IS_OBJECT(v) j_is((v), cJSON_Object)
#define J_IS_TRUE(v) j_is((v), cJSON_True)
#define J_IS_BOOL(v) ((v) && ((v)->type & (cJSON_True | cJSON_False)) != 0)

/* ---------------------------------------------------------- value formats */

int itd_duration_ms(const char *s, double *ms)
{
    /* The npm `ms` 2.1 grammar: -?(\d+)?\.?\d+ *unit? (case-insensitive). */
    static const struct { const char *u; double f; } units[] = {
        {"milliseconds", 1}, {"millisecond", 1}, {"msecs", 1}, {"msec", 1}, {"ms", 1},
        {"seconds", 1e3}, {"second", 1e3}, {"secs", 1e3}, {"sec", 1e3}, {"s", 1e3},
        {"minutes", 6e4}, {"minute", 6e4}, {"mins", 6e4}, {"min", 6e4}, {"m", 6e4},
        {"hours", 36e5}, {"hour", 36e5}, {"hrs", 36e5}, {"hr", 36e5}, {"h", 36e5},
        {"days", 864e5}, {"day", 864e5}, {"d", 864e5},
        {"weeks", 6048e5}, {"week", 6048e5}, {"w", 6048e5},
        {"years", 315576e5}, {"year", 315576e5}, {"yrs", 315576e5}, {"yr", 315576e5}, {"y", 315576e5},
    };
    if (!s) return -1;
    size_t n = strlen(s);
    if (n == 0 || n > 100) return -1;
    const char *p = s;
    if (*p == '-') return -1; /* parses in `ms`, but a negative delay makes no sense here */
    const char *num = p;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (p == num) return -1;
    char nbuf[128];
    memcpy(nbuf, num, (size_t)(p - num));
    nbuf[p - num] = 0;
    double v = strtod(nbuf, NULL);
    while (*p == ' ') p++;
    double f = 1;
    if (*p) {
        size_t i;
        for (i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcasecmp(p, units[i].u) == 0) break;
        if (i == sizeof units / sizeof units[0]) return -1;
        f = units[i].f;
    } else if (p > s && p[-1] == ' ') {
        return -1; /* trailing spaces without a unit */
    }
    if (ms) *ms = v * f;
    return 0;
}

int64_t itd_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int itd_datetime_parse(const char *s, double *epoch)
{
    int Y, M, D, h, m, sec;
    if (!s || strlen(s) < 20) return -1;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
    const char *p = s + 19;
    double frac = 0;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) { frac += (*p - '0') * scale; scale /= 10; p++; }
    }
    int off = 0;
    if (*p == 'Z' && p[1] == 0) {
        off = 0;
    } else if (*p == '+' || *p == '-') {
        int oh, om, sign = *p == '-' ? -1 : 1;
        p++;
        if (digits(p, 2, &oh)) return -1;
        p += 2;
        if (*p == ':') p++;
        if (digits(p, 2, &om) || p[2] != 0 || oh > 23 || om > 59) return -1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    double t = (double)itd_days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400.0 + h * 3600 + m * 60 + sec;
    t = t - off + frac;
    /* the UTC instant must be one itd_datetime_format can write back:
     * year 0000, or an offset crossing 0001 or 9999, is refused */
    if (!(t >= ITD_TIME_MIN && t < ITD_TIME_MAX)) return -2;
    if (epoch) *epoch = t;
    return 0;
}

/* Inverse of itd_days_from_civil. */
void itd_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* No gmtime: a time_t cast of NaN or 1e300 is undefined and gmtime's
 * failure left struct tm unfilled; the range is checked instead. */
const char *itd_datetime_format(double epoch, char *buf, size_t len)
{
    if (!buf || len < 25) return NULL;
    buf[0] = 0;
    if (!(epoch >= ITD_TIME_MIN && epoch < ITD_TIME_MAX)) return NULL; /* NaN fails too */
    double whole = floor(epoch);
    int msec = (int)llround((epoch - whole) * 1000.0);
    int64_t t = (int64_t)whole;
    if (msec >= 1000) { t += 1; msec -= 1000; }
    if (t >= (int64_t)ITD_TIME_MAX) { t = (int64_t)ITD_TIME_MAX - 1; msec = 999; } /* do not round into year 10000 */
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int sod = (int)(t - days * 86400);
    int64_t y;
    unsigned m, d;
    itd_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d, sod / 3600, sod / 60 % 60,
             sod % 60, msec);
    return buf;
}

int itd_is_slug(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return 0;
    return 1;
}

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* skip_newest: leave out the keys of the newest API (they are refused
 * where this suggestion is made: suggesting one would only be refused again). */
static const char *closest_field(const itd_schema *schema, const char *name, int skip_newest)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; i < schema->nfields; i++) {
        const itd_field *f = &schema->fields[i];
        if (skip_newest && (f->flags & ITD_NEWEST)) continue;
        const char *cands[3] = { f->name, f->alias, f->sdk_name };
        for (int k = 0; k < 3; k++) {
            if (!cands[k]) continue;
            size_t d = levenshtein(name, cands[k]);
            if (d < bestd) { bestd = d; best = k == 1 ? f->name : cands[k]; }
        }
    }
    size_t n = strlen(name);
    size_t limit = n < 6 ? 2 : n / 3 + 1;
    return bestd <= limit ? best : NULL;
}

const char *itd_closest_field(const itd_schema *schema, const char *name)
{
    return closest_field(schema, name, 0);
}

/* An absolute http:// or https:// URL with a host: scheme, "//", an
 * authority whose host is not empty (a bracketed IPv6 literal or a name),
 * an optional numeric port; no spaces or control characters anywhere. */
static int is_http_url(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return 0;
    const char *p;
    if (strncasecmp(s, "https://", 8) == 0) p = s + 8;
    else if (strncasecmp(s, "http://", 7) == 0) p = s + 7;
    else return 0;
    size_t alen = strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < p + alen; q++)
        if (*q == '@') at = q;
    const char *h = at ? at + 1 : p, *end = p + alen;
    const char *port;
    if (h < end && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || rb == h + 1) return 0;
        port = rb + 1;
        if (port < end && *port != ':') return 0;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        port = colon ? colon : end;
        if (port == h) return 0; /* no host */
        for (const char *q = h; q < port; q++)
            if (*q == '[' || *q == ']') return 0;
    }
    if (port < end) { /* ":" digits */
        const char *q = port + 1;
        if (q == end || end - q > 5) return 0;
        for (; q < end; q++)
            if (!isdigit((unsigned char)*q)) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ decode */

#define MAX_SEGS 64

typedef struct ctx {
    int strict;        /* unknown keys are errors (input models) */
    int newest;        /* keys of the newest API accepted */
    int input;         /* stricter value checks for what a user sends */
    int newest_form;   /* the root is an input form of the newest API (JobUpdateInput, JobInputNewest) */
    itd_err_kind kind; /* VALIDATION (input) or DECODE (response) */
    int arena;         /* nodes live in a parser arena: copy out kept subtrees */
    itd_arena *doc;    /* a frozen decode: everything built goes here (the
                        * strings are there already: the text parsed in place) */
    itd_warnings *warn;
    itd_error *err;
    /* The path is a stack of segments, rendered only for an error or a
     * warning: formatting it at every step cost a third of the decode. */
    struct { const char *key; size_t idx; } segs[MAX_SEGS];
    size_t depth;
    char path[ITD_PATH_MAX];
    size_t plen;
} ctx;

static size_t push_key(ctx *c, const char *key)
{
    size_t old = c->depth;
    if (c->depth < MAX_SEGS) { c->segs[c->depth].key = key; c->segs[c->depth].idx = 0; }
    c->depth++;
    return old;
}

static size_t push_index(ctx *c, size_t i)
{
    size_t old = c->depth;
    if (c->depth < MAX_SEGS) { c->segs[c->depth].key = NULL; c->segs[c->depth].idx = i + 1; } /* 1-based, as Lua */
    c->depth++;
    return old;
}

static void pop(ctx *c, size_t old)
{
    c->depth = old;
}

static const char *render_path(ctx *c)
{
    size_t n = 0;
    c->path[0] = 0;
    for (size_t i = 0; i < c->depth && i < MAX_SEGS && n < sizeof c->path - 1; i++) {
        int w = c->segs[i].key
            ? snprintf(c->path + n, sizeof c->path - n, "%s%s", n ? "." : "", c->segs[i].key)
            : snprintf(c->path + n, sizeof c->path - n, "[%zu]", c->segs[i].idx);
        if (w < 0) break;
        n = n + (size_t)w < sizeof c->path ? n + (size_t)w : sizeof c->path - 1;
    }
    c->plen = n;
    return c->path;
}

static int fail(ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(ctx *c, const char *fmt, ...)
{
    if (!c->err) return -1;
    char msg[ITD_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return itd_error_set(c->err, c->kind, render_path(c), "%s", msg);
}

static int nomem(ctx *c)
{
    if (c->err) itd_error_set(c->err, ITD_ERR_NOMEM, render_path(c), "out of memory");
    return -1;
}

static void warn(ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warn(ctx *c, const char *fmt, ...)
{
    if (!c->warn) return;
    char msg[ITD_MSG_MAX], line[ITD_MSG_MAX + ITD_PATH_MAX + 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    render_path(c);
    snprintf(line, sizeof line, "%s%s%s", c->path, c->plen ? ": " : "", msg);
    itd_warnings_add(c->warn, line); /* best effort */
}

static const char *jtype(const cJSON *v)
{
    if (J_IS_NULL(v)) return "null";
    if (J_IS_BOOL(v)) return "boolean";
    if (J_IS_NUMBER(v)) return "number";
    if (J_IS_STRING(v)) return "string";
    if (J_IS_ARRAY(v)) return "array";
    if (J_IS_OBJECT(v)) return "object";
    return "invalid value";
}

static int is_empty_table(const cJSON *v)
{
    return (v->type & ITD_CJSON_EMPTY_TABLE) && J_IS_OBJECT(v) && !v->child;
}

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

/* Move the string out of a cJSON node (the node no longer frees it). */
static char *take_string(cJSON *v)
{
    char *s = v->valuestring;
    v->valuestring = NULL;
    return s;
}

static int decode_object(ctx *c, const itd_schema *s, cJSON *v, void **out);

/* The marker of a frozen tree's parts (model.h: itd_obj.arena). */
static itd_arena part_mark;

/* Allocation of what a decode builds: from the doc arena in a frozen decode. */
static void *c_zalloc(ctx *c, size_t n)
{
    if (!c->doc) return calloc(1, n);
    void *p = itd_arena_alloc(c->doc, n);
    if (p) memset(p, 0, n);
    return p;
}

static char *c_strdup(ctx *c, const char *str)
{
    if (!c->doc) return strdup(str);
    size_t n = strlen(str) + 1;
    char *p = itd_arena_alloc(c->doc, n);
    if (p) memcpy(p, str, n);
    return p;
}

/* A new object of `size` bytes, marked as a frozen tree's part when it is
 * one; a sink with the C-side discriminator of the sink union set. */
static void *c_object(ctx *c, const itd_schema *s, size_t size)
{
    itd_obj *h = c_zalloc(c, size);
    if (!h) return NULL;
    h->schema = s;
    if (c->doc) h->arena = &part_mark;
    if (s == &itd_WebhookSink) ((itd_sink *)h)->kind = ITD_SINK_WEBHOOK;
    else if (s == &itd_AmazonS3Sink) ((itd_sink *)h)->kind = ITD_SINK_S3;
    return h;
}

static void jappend(cJSON *parent, cJSON *child)
{
    if (!parent->child) {
        parent->child = child;
    } else {
        cJSON *last = parent->child->prev;
        last->next = child;
        child->prev = last;
    }
    parent->child->prev = child; /* cJSON keeps the last element in child->prev */
}

/* A copy of v (a node of the parse arena) in the doc arena: the nodes
 * copied, the keys and strings shared (they are in the doc arena's copy of
 * the text, parsed in place).  Never given to cJSON's functions that free or
 * add (it is freed with the arena). */
static cJSON *jdup(ctx *c, const cJSON *v)
{
    cJSON *n = itd_arena_alloc(c->doc, sizeof *n);
    if (!n) return NULL;
    *n = *v;
    n->next = n->prev = n->child = NULL;
    for (const cJSON *it = v->child; it; it = it->next) {
        cJSON *k = jdup(c, it);
        if (!k) return NULL;
        jappend(n, k);
    }
    return n;
}

static const char *const weekday_names[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", NULL };
static const char *const month_names[] = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY",
                                           "AUGUST", "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER", NULL };

/* Equality of two short strings (keys, enum values): a loop beats the
 * library's strcmp, whose setup is most of the work at these lengths. */
/* libc's strcmp compares a word at a time: keys and enum names are
 * mostly longer than the few bytes where a byte loop would win */
static int streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (streq(s, *list)) return 1;
    return 0;
}

/* §5.2: any string fits v0.3.12, but the newest API takes only "*" and full
 * names; say so instead of refusing. */
static void check_calendar_string(ctx *c, const char *s)
{
    if (!c->input || strcmp(s, "*") == 0 || in_list(s, weekday_names) || in_list(s, month_names)) return;
    warn(c, "calendar string \"%.40s\" is passed through unchanged, but the newest API accepts only \"*\", "
            "full upper-case day/month names and numbers; prefer {start=..., [\"end\"]=...}", s);
}

/* The rules of a number|string field's two forms (the caller stores a
 * string once it passed, as check_string). */
static int numstr_number(ctx *c, const itd_field *f, double d, itd_numstr *ns)
{
    if ((f->flags & ITD_STRVALS) && c->input)
        return fail(c, "expected a duration string such as \"1s\" or \"10m\", got number");
    if (!isfinite(d)) return fail(c, "expected a finite number");
    if ((f->flags & ITD_DURATION) && c->input && d < 0)
        return fail(c, "expected a non-negative number of milliseconds");
    ns->kind = ITD_NS_NUMBER;
    ns->num = d;
    return 0;
}

static int check_numstr_string(ctx *c, const itd_field *f, const char *s)
{
    if ((f->flags & ITD_DURATION) && c->input && itd_duration_ms(s, NULL) != 0)
        return fail(c, "invalid duration \"%.40s\" (expected e.g. \"500ms\", \"1s\", \"10m\", \"2 hours\")", s);
    return 0;
}

static int decode_numstr(ctx *c, const itd_field *f, cJSON *v, itd_numstr *ns)
{
    if (J_IS_NUMBER(v)) return numstr_number(c, f, v->valuedouble, ns);
    if (J_IS_STRING(v)) {
        if (check_numstr_string(c, f, v->valuestring)) return -1;
        ns->kind = ITD_NS_STRING;
        ns->str = take_string(v);
        return 0;
    }
    if ((f->flags & ITD_STRVALS) && c->input) return fail(c, "expected a duration string, got %s", jtype(v));
    return fail(c, "expected number or string, got %s", jtype(v));
}

/* A number of a calendar field with bounds (ITD_RANGED, on input): a whole
 * number in the field's range (§4.7). */
static int check_calnum(ctx *c, const itd_field *f, double x)
{
    if (!(f->flags & ITD_RANGED) || !c->input) return 0;
    if (x != floor(x) || x < f->lo || x > f->hi)
        return fail(c, "must be a whole number from %g to %g, got %.17g", f->lo, f->hi, x);
    return 0;
}

/* §8.3: the newest API's calendar fields each take a closed union: dayOfWeek
 * and month their full upper-case names (no numbers), the others whole
 * numbers; "*" only as the whole value.  A value at `where` (0: the whole
 * value, 1: an array member, 2: a range's start or end) that does not fit
 * is refused in the newest input forms (v0.3.12 passes any string, §5.2). */
static int check_newest_calscalar(ctx *c, const itd_field *f, int where, int is_num, double num, const char *str)
{
    if (!c->newest_form) return 0;
    const char *const *names = strcmp(f->name, "dayOfWeek") == 0 ? weekday_names
                             : strcmp(f->name, "month") == 0 ? month_names : NULL;
    const char *star = where == 0 ? "\"*\" or " : "";
    if (names) {
        if (!is_num && in_list(str, names)) return 0;
        if (!is_num && where == 0 && strcmp(str, "*") == 0) return 0;
        const char *what = names == weekday_names ? "day name (SUNDAY ... SATURDAY)" : "month name (JANUARY ... DECEMBER)";
        if (is_num) return fail(c, "expected %sa %s in the newest API, got %.17g", star, what, num);
        return fail(c, "expected %sa %s in the newest API, got \"%.40s\"", star, what, str);
    }
    if (is_num || (where == 0 && strcmp(str, "*") == 0)) return 0;
    return fail(c, "expected %sa whole number in the newest API, got \"%.40s\"", star, str);
}

/* The start and end of a decoded range: numbers in the field's range; in
 * the newest API's input forms a range with a step carries its end (§8.3:
 * the form {start, step, end} has all three). */
static int check_calrange(ctx *c, const itd_field *f, const itd_calrange *r)
{
    static const char *const names[] = { "start", "end" };
    const itd_numstr *ends[] = { &r->start, &r->end };
    for (int k = 0; k < 2; k++) {
        if (ends[k]->kind == ITD_NS_ABSENT) continue;
        size_t old = push_key(c, names[k]);
        int num = ends[k]->kind == ITD_NS_NUMBER;
        if (check_newest_calscalar(c, f, 2, num, ends[k]->num, ends[k]->str)) return -1;
        if (num && check_calnum(c, f, ends[k]->num)) return -1;
        pop(c, old);
    }
    if (c->newest_form && r->has_step && r->end.kind == ITD_NS_ABSENT) {
        size_t old = push_key(c, "step");
        fail(c, "a range with \"step\" must also have \"end\" in the newest API");
        (void)old;
        return -1;
    }
    return 0;
}

/* A calendar value's scalar forms (a string is stored by the caller once
 * it passed, as check_string). */
static int check_calvalue_string(ctx *c, const itd_field *f, int in_list_item, const char *s)
{
    if (check_newest_calscalar(c, f, in_list_item, 0, 0, s)) return -1;
    if (!c->newest_form) check_calendar_string(c, s);
    return 0;
}

static int calvalue_number(ctx *c, const itd_field *f, int in_list_item, double d, itd_calvalue *cv)
{
    if (!isfinite(d)) return fail(c, "expected a finite number");
    if (check_newest_calscalar(c, f, in_list_item, 1, d, NULL)) return -1;
    if (check_calnum(c, f, d)) return -1;
    cv->kind = ITD_CV_NUMBER;
    cv->num = d;
    return 0;
}

static int decode_calvalue(ctx *c, const itd_field *f, cJSON *v, int in_list_item, itd_calvalue **out)
{
    itd_calvalue *cv = c_object(c, &itd_CalendarValue, sizeof *cv);
    if (!cv) return nomem(c);
    *out = cv;
    if (J_IS_OBJECT(v) && !is_empty_table(v)) {
        cv->kind = ITD_CV_RANGE;
        if (decode_object(c, &itd_CalendarRange, v, (void **)&cv->range)) return -1;
        return check_calrange(c, f, cv->range);
    }
    if (in_list_item && c->input && !c->newest)
        return fail(c, "expected a range object {start=..., [\"end\"]=..., step=...}, got %s "
                       "(arrays hold range objects at v0.3.12)", jtype(v));
    if (J_IS_STRING(v)) {
        cv->kind = ITD_CV_STRING;
        if (check_calvalue_string(c, f, in_list_item, v->valuestring)) return -1;
        cv->str = take_string(v);
        return 0;
    }
    if (J_IS_NUMBER(v)) return calvalue_number(c, f, in_list_item, v->valuedouble, cv);
    if ((J_IS_ARRAY(v) || is_empty_table(v)) && !in_list_item) {
        cv->kind = ITD_CV_LIST;
        size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
        if (n && !(cv->list.items = c_zalloc(c, n * sizeof(void *)))) return nomem(c);
        for (cJSON *it = v->child; it; it = it->next, i++) {
            size_t old = push_index(c, i);
            int rc = decode_calvalue(c, f, it, 1, (itd_calvalue **)&cv->list.items[i]);
            cv->list.n = i + 1;
            if (rc) return rc;
            pop(c, old);
        }
        return 0;
    }
    return fail(c, "expected a range object, string, number or array of range objects, got %s", jtype(v));
}

/* The rules of a field's value, for the tree and the one-pass decode
 * alike: a string's checks (the caller stores it: a tree's string is taken
 * only once it passed); a number checked and stored; a boolean stored. */
static int check_string(ctx *c, const itd_field *f, const char *s)
{
    if (f->enums && !in_list(s, f->enums)) {
        char opts[256] = "";
        for (const char *const *e = f->enums; *e; e++)
            snprintf(opts + strlen(opts), sizeof opts - strlen(opts), "%s\"%s\"", e == f->enums ? "" : ", ", *e);
        return fail(c, "expected %s%s, got \"%.60s\"", f->enums[1] ? "one of " : "", opts, s);
    }
    if ((f->flags & ITD_SLUG) && !itd_is_slug(s))
        return fail(c, "must be a URL slug (letters, digits, '-' and '_'), got \"%.60s\"", s);
    if ((f->flags & ITD_URL) && c->input && !is_http_url(s))
        return fail(c, "must be an absolute http:// or https:// URL with a host, got \"%.60s\"", s);
    if ((f->flags & ITD_SLUG) && c->input && strlen(s) < 7)
        warn(c, "shorter than 7 characters; Intuned's docs give a minimum length of 7");
    return 0;
}

static int field_number(ctx *c, const itd_field *f, double d, void *base)
{
    if (!isfinite(d)) return fail(c, "expected a finite number");
    if ((f->flags & ITD_INTEGER) && d != floor(d)) return fail(c, "expected an integer, got %.17g", d);
    if ((f->flags & ITD_RANGED) && c->input && (d != floor(d) || d < f->lo || d > f->hi)) {
        if (isinf(f->hi)) return fail(c, "must be a whole number >= %g, got %.17g", f->lo, d);
        return fail(c, "must be a whole number from %g to %g, got %.17g", f->lo, f->hi, d);
    }
    /* The reference sets no bound and the SDK sends any number: the server decides. */
    if ((f->flags & ITD_POSITIVE) && c->input && !(d > 0))
        warn(c, "%.17g is not greater than 0; sent as is, the server decides", d);
    *AT(base, f->off, double) = d;
    if (f->has_off) *AT(base, f->has_off, int) = 1;
    return 0;
}

static void field_bool(const itd_field *f, int yes, void *base)
{
    *AT(base, f->off, int) = yes;
    if (f->has_off) *AT(base, f->has_off, int) = 1;
}

static int decode_field(ctx *c, const itd_field *f, cJSON *parent, cJSON *v, void *base)
{
    if (J_IS_NULL(v)) {
        if (!(f->flags & ITD_NULLABLE)) {
            const char *what = f->kind == ITD_F_STRING ? "string" : f->kind == ITD_F_NUMBER ? "number"
                             : f->kind == ITD_F_BOOL ? "boolean" : f->kind == ITD_F_ARRAY ? "array"
                             : f->kind == ITD_F_OBJECT ? "object" : "a value";
            return fail(c, "expected %s, got null", what);
        }
        if (f->null_off) *AT(base, f->null_off, int) = 1;
        return 0;
    }
    switch (f->kind) {
    case ITD_F_STRING:
        if (!J_IS_STRING(v)) return fail(c, "expected string, got %s", jtype(v));
        if (check_string(c, f, v->valuestring)) return -1;
        *AT(base, f->off, char *) = take_string(v);
        return 0;
    case ITD_F_NUMBER:
        if (!J_IS_NUMBER(v)) return fail(c, "expected number, got %s", jtype(v));
        return field_number(c, f, v->valuedouble, base);
    case ITD_F_BOOL:
        if (!J_IS_BOOL(v)) return fail(c, "expected boolean, got %s", jtype(v));
        field_bool(f, J_IS_TRUE(v), base);
        return 0;
    case ITD_F_JSON:
        if ((f->flags & ITD_J_OBJECT) && !J_IS_OBJECT(v)) {
            if (c->newest_form && J_IS_ARRAY(v) && strcmp(f->name, "parameters") == 0)
                return fail(c, "expected object, got array (an array of parameters is only in API v0.3.12)");
            return fail(c, "expected object, got %s", jtype(v));
        }
        /* the newest SDK's header map is string -> string; v0.3.12's input took any value */
        if ((f->flags & ITD_STRMAP) && c->newest_form && J_IS_OBJECT(v))
            for (cJSON *it = v->child; it; it = it->next)
                if (!J_IS_STRING(it)) {
                    push_key(c, it->string);
                    return fail(c, "expected string, got %s", jtype(it));
                }
        if ((f->flags & ITD_J_OBJARR) && !J_IS_OBJECT(v) && !J_IS_ARRAY(v))
            return fail(c, "expected object or array, got %s", jtype(v));
        if ((f->flags & ITD_STRVALS) && is_empty_table(v)) v->type = cJSON_Array;
        if (f->flags & ITD_STRVALS) {
            if (!J_IS_ARRAY(v)) return fail(c, "expected array of strings, got %s", jtype(v));
            size_t i = 0;
            for (cJSON *it = v->child; it; it = it->next, i++)
                if (!J_IS_STRING(it)) {
                    push_index(c, i);
                    return fail(c, "expected string, got %s", jtype(it));
                }
        }
        if (c->doc) {
            if (!(v = jdup(c, v))) return nomem(c);
        } else if (c->arena) {
            if (!(v = cJSON_Duplicate(v, 1))) return nomem(c);
        } else if (parent) {
            cJSON_DetachItemViaPointer(parent, v);
        }
        *AT(base, f->off, cJSON *) = v;
        return 0;
    case ITD_F_OBJECT:
        return decode_object(c, f->sub, v, AT(base, f->off, void *));
    case ITD_F_ARRAY: {
        if (!J_IS_ARRAY(v) && !is_empty_table(v)) return fail(c, "expected array, got %s", jtype(v));
        itd_array *a = AT(base, f->off, itd_array);
        size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
        if (f->has_off) *AT(base, f->has_off, int) = 1;
        if (n && !(a->items = c_zalloc(c, n * sizeof(void *)))) return nomem(c);
        for (cJSON *it = v->child; it; it = it->next, i++) {
            size_t old = push_index(c, i);
            int rc = decode_object(c, f->sub, it, &a->items[i]);
            a->n = i + 1; /* count it even when it failed part-way, so it is freed */
            if (rc) return rc;
            pop(c, old);
        }
        return 0;
    }
    case ITD_F_NUMSTR:
        return decode_numstr(c, f, v, AT(base, f->off, itd_numstr));
    case ITD_F_CALVALUE:
        return decode_calvalue(c, f, v, 0, AT(base, f->off, itd_calvalue *));
    }
    return fail(c, "internal: unknown field kind");
}

/* The field named `key`.  The search starts at *idx and wraps around:
 * documents mostly list keys in schema order (the API's and our encoder's),
 * so starting after the previous match usually finds the key at once. */
static const itd_field *find_field(const itd_schema *s, const char *key, size_t *idx)
{
    size_t n = s->nfields, start = *idx < n ? *idx : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        const itd_field *f = &s->fields[i];
        if ((f->name[0] == key[0] && streq(f->name, key)) || (f->alias && streq(f->alias, key))) {
            *idx = i;
            return f;
        }
    }
    return NULL;
}

static int apply_default(ctx *c, const itd_field *f, void *base)
{
    switch (f->kind) {
    case ITD_F_NUMBER:
        *AT(base, f->off, double) = f->num_default;
        if (f->has_off) *AT(base, f->has_off, int) = 1;
        return 0;
    case ITD_F_BOOL:
        *AT(base, f->off, int) = f->num_default != 0;
        if (f->has_off) *AT(base, f->has_off, int) = 1;
        return 0;
    case ITD_F_NUMSTR: {
        itd_numstr *ns = AT(base, f->off, itd_numstr);
        if (f->str_default && (c->input || (f->flags & ITD_STRVALS))) {
            if (!(ns->str = c_strdup(c, f->str_default))) return nomem(c);
            ns->kind = ITD_NS_STRING;
        } else {
            ns->kind = ITD_NS_NUMBER;
            ns->num = f->num_default;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* The defaults of the fields not in `seen` (a bit per field). */
static int apply_defaults(ctx *c, const itd_schema *s, void *obj, uint64_t seen)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        if (seen & ((uint64_t)1 << i) || !f->has_default) continue;
        if ((f->flags & ITD_NEWEST) && c->strict && !c->newest) continue;
        if ((f->flags & ITD_OLD_DEFAULT) && c->newest_form) continue;
        if (apply_default(c, f, obj)) return -1;
    }
    return 0;
}

/* A frozen decode's unknown key: its copy appended to h->extra, in the
 * doc arena.  0, or -1 on OOM. */
static int keep_in_doc(ctx *c, itd_obj *h, const cJSON *it)
{
    cJSON *copy = jdup(c, it);
    if (!copy) return -1;
    if (!h->extra) {
        if (!(h->extra = c_zalloc(c, sizeof *h->extra))) return -1;
        h->extra->type = cJSON_Object;
    }
    jappend(h->extra, copy);
    return 0;
}

/* The first required field of s not in `seen`, as the error. */
static int check_required(ctx *c, const itd_schema *s, uint64_t seen)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        if (!(seen & ((uint64_t)1 << i)) && (f->flags & ITD_REQ)) {
            push_key(c, f->name);
            return fail(c, "required field is missing");
        }
    }
    return 0;
}

static int decode_fields(ctx *c, const itd_schema *s, cJSON *v, void *obj)
{
    uint64_t seen = 0;
    itd_obj *h = obj;
    cJSON *next;
    size_t hint = 0;
    for (cJSON *it = v->child; it; it = next) {
        next = it->next;
        size_t i = hint;
        const itd_field *f = find_field(s, it->string, &i);
        if (f) hint = i + 1;
        size_t old = push_key(c, it->string);
        if (f && (f->flags & ITD_NEWEST) && c->strict && !c->newest)
            return fail(c, "only in the newest API (api_version = \"newest\")");
        if (!f) {
            if (c->strict) {
                if (s->other_keys && in_list(it->string, s->other_keys))
                    return (s->flags & ITD_S_NEWEST) ? fail(c, "only in API v0.3.12")
                                     : fail(c, "only in the newest API (api_version = \"newest\")");
                const char *near = closest_field(s, it->string, !c->newest);
                if (near) return fail(c, "unknown field (did you mean \"%s\"?)", near);
                return fail(c, "unknown field of %s", s->name);
            }
            if (c->doc) {
                if (keep_in_doc(c, h, it)) return nomem(c);
                pop(c, old);
                continue;
            }
            if (!h->extra && !(h->extra = cJSON_CreateObject())) return nomem(c);
            if (c->arena) {
                cJSON *copy = cJSON_Duplicate(it, 1);
                if (!copy || !cJSON_AddItemToObject(h->extra, it->string, copy)) { cJSON_Delete(copy); return nomem(c); }
                pop(c, old);
                continue;
            }
            /* Move the node with its key string (no copy): cJSON would free
             * the old key when re-adding, so lift it off and put it back. */
            char *key = it->string;
            it->string = NULL;
            cJSON_DetachItemViaPointer(v, it);
            cJSON_AddItemToObjectCS(h->extra, "", it);
            it->string = key;
            it->type &= ~cJSON_StringIsConst;
            pop(c, old);
            continue;
        }
        if (seen & ((uint64_t)1 << i))
            return fail(c, "duplicate key%s", f->alias ? " (given under both spellings)" : "");
        seen |= (uint64_t)1 << i;
        int rc = decode_field(c, f, v, it, obj);
        if (rc) return rc;
        pop(c, old);
    }
    if (check_required(c, s, seen)) return -1;
    /* after the missing keys: a key left out is the bigger mistake */
    for (size_t i = 0; c->input && i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        if ((f->flags & ITD_NONEMPTY) && (seen & ((uint64_t)1 << i)) && AT(obj, f->off, itd_array)->n == 0) {
            size_t old = push_key(c, f->name);
            fail(c, "must not be empty (a job without payloads has nothing to run)");
            (void)old;
            return -1;
        }
    }
    return apply_defaults(c, s, obj, seen);
}

static int decode_object(ctx *c, const itd_schema *s, cJSON *v, void **out)
{
    if (s->select) {
        if (!J_IS_OBJECT(v)) return fail(c, "expected object, got %s", jtype(v));
        char msg[ITD_MSG_MAX] = "";
        const itd_schema *b = s->select(v, msg, sizeof msg);
        if (!b) {
            char *bar = strchr(msg, '|');
            if (bar) {
                *bar = 0;
                push_key(c, msg);
                return fail(c, "%s", bar + 1);
            }
            return fail(c, "%s", msg);
        }
        s = b;
    }
    void *obj = c_object(c, s, s->size);
    if (!obj) return nomem(c);
    *out = obj;
    /* the bare forms fill the first field; the others take their defaults,
     * as they would in the object form (so a re-decode changes nothing) */
    if (((s->flags & ITD_S_ARRAY_FORM) && J_IS_ARRAY(v)) || ((s->flags & ITD_S_STRING_FORM) && J_IS_STRING(v)))
        return decode_field(c, &s->fields[0], NULL, v, obj) ? -1 : apply_defaults(c, s, obj, 1);
    if (!J_IS_OBJECT(v)) return fail(c, "expected object, got %s", jtype(v));
    if (s->nfields > 64) return fail(c, "internal: schema too wide");
    return decode_fields(c, s, v, obj);
}

void *itd_decode_take(const itd_schema *schema, cJSON *tree, itd_warnings *w, itd_error *err)
{
    return itd_decode_take_ex(schema, tree, ITD_MODE_AUTO, w, err);
}

static void init_ctx(ctx *c, const itd_schema *schema, int mode, itd_warnings *w, itd_error *err)
{
    /* the path buffers (a few KB) are written before they are read */
    memset(c, 0, offsetof(ctx, segs));
    c->depth = 0;
    c->path[0] = 0;
    c->plen = 0;
    int input_model = (schema->flags & ITD_S_STRICT) != 0;
    c->strict = input_model || (mode == ITD_MODE_USER && !(schema->flags & ITD_S_OPEN));
    c->input = input_model || mode == ITD_MODE_USER;
    c->newest = !input_model || (schema->flags & ITD_S_NEWEST);
    c->newest_form = input_model && (schema->flags & ITD_S_NEWEST);
    c->kind = c->input ? ITD_ERR_VALIDATION : ITD_ERR_DECODE;
    c->warn = w;
    c->err = err;
}

void *itd_decode_take_ex(const itd_schema *schema, cJSON *tree, int mode, itd_warnings *w, itd_error *err)
{
    ctx c;
    init_ctx(&c, schema, mode, w, err);
    void *obj = NULL;
    if (!tree) {
        itd_error_set(err, c.kind, "", "no document");
        return NULL;
    }
    int rc = decode_object(&c, schema, tree, &obj);
    cJSON_Delete(tree);
    if (rc) {
        if (obj) itd_free(schema, obj);
        return NULL;
    }
    return obj;
}

/* ------------------------------------------- one-pass decode of responses */

/* A server's answer decoded straight from its text, without the tree: the
 * keys are matched as the lexer meets them and strings, numbers, booleans,
 * objects and arrays of objects go to the struct at once.  Every other
 * value (a union, free-form JSON, a key the schema does not know, a value
 * of an unexpected type) is parsed as a tree by itself and handed to the
 * tree decode above, so each rule stays in one place.  Any failure at all
 * gives up (no error is formatted): decode_text then decodes the document
 * again by the tree path, whose errors, and their order (a syntax error
 * anywhere before any type error), are the only ones reported. */

static int s_object(ctx *c, itd_jlex *lx, const itd_schema *s, void **out);
static int s_value(ctx *c, itd_jlex *lx, const itd_field *f, void *base, char *key);
static int s_objval(ctx *c, itd_jlex *lx, const itd_schema *s, char t, void **out, char *key);

/* The value at lx->p as a tree; NULL on a syntax error. */
static cJSON *s_tree(itd_jlex *lx, char *key)
{
    cJSON *v = itd_jlex_value(lx);
    if (!v || lx->err) return NULL;
    v->string = key;
    return v;
}

/* The next byte that is not white space, or 0 at the end. */
ITD_HOT char s_peek(itd_jlex *lx)
{
    itd_jlex_ws(lx);
    return lx->p < lx->end ? *lx->p : 0;
}

/* After a member or an element: 1 for ',', 0 for `close`, -1 otherwise. */
ITD_HOT int s_more(itd_jlex *lx, char close)
{
    char t = s_peek(lx);
    lx->p++;
    return t == ',' ? 1 : t == close ? 0 : -1;
}

/* An array of objects of f->sub.  Its items are gathered on the stack (or
 * in a growing malloc'd array) and copied to the doc arena at the end, its
 * count not being known before. */
static int s_array(ctx *c, itd_jlex *lx, const itd_field *f, void *base)
{
    itd_array *a = AT(base, f->off, itd_array);
    void *stack[32], **items = stack, **heap = NULL;
    size_t n = 0, cap = sizeof stack / sizeof stack[0];
    int rc = -1, more = 1;
    if (f->has_off) *AT(base, f->has_off, int) = 1;
    if (++lx->depth > ITD_MAX_DEPTH) return -1;
    lx->p++; /* [ */
    if (s_peek(lx) == ']') { lx->p++; more = 0; }
    while (more > 0) {
        if (n == cap) {
            void **bigger = realloc(heap, 2 * cap * sizeof *bigger);
            if (!bigger) goto out;
            if (!heap) memcpy(bigger, stack, n * sizeof *bigger);
            items = heap = bigger;
            cap *= 2;
        }
        items[n] = NULL;
        size_t old = push_index(c, n);
        cJSON *v;
        int rc1 = s_objval(c, lx, f->sub, s_peek(lx), &items[n], NULL);
        if (rc1 == -1 || (rc1 == -2 && (!(v = s_tree(lx, NULL)) || decode_object(c, f->sub, v, &items[n]))))
            goto out;
        n++;
        pop(c, old);
        more = s_more(lx, ']');
    }
    if (more < 0) goto out;
    if (n && !(a->items = c_zalloc(c, n * sizeof(void *)))) goto out;
    if (n) memcpy(a->items, items, n * sizeof(void *));
    a->n = n;
    lx->depth--;
    rc = 0;
out:
    free(heap);
    return rc;
}

/* An object of s at lx->p (t its first byte) when the one-pass decode
 * takes it: '{', or the bare array or string that holds the first field
 * of a schema with such a form (decode_object's rule); -2 when it does
 * not. */
static int s_objval(ctx *c, itd_jlex *lx, const itd_schema *s, char t, void **out, char *key)
{
    if (s->select) return -2;
    if (t == '{') return s_object(c, lx, s, out);
    if (!(t == '[' && (s->flags & ITD_S_ARRAY_FORM)) && !(t == '"' && (s->flags & ITD_S_STRING_FORM))) return -2;
    void *obj = c_object(c, s, s->size);
    if (!obj) return -1;
    *out = obj;
    return s_value(c, lx, &s->fields[0], obj, key) || apply_defaults(c, s, obj, 1) ? -1 : 0;
}

/* The string at lx->p, which is its opening quote; NULL on error. */
ITD_HOT char *s_string(itd_jlex *lx)
{
    lx->p++;
    return itd_jlex_string(lx, 0);
}

/* true or false at lx->p (t its first byte): 1 or 0, consumed; -1 for
 * neither. */
static int s_bool(itd_jlex *lx, char t)
{
    size_t left = (size_t)(lx->end - lx->p);
    if (t == 't' && left >= 4 && memcmp(lx->p, "true", 4) == 0) { lx->p += 4; return 1; }
    if (t == 'f' && left >= 5 && memcmp(lx->p, "false", 5) == 0) { lx->p += 5; return 0; }
    return -1;
}

ITD_HOT int s_is_number(char t)
{
    return t == '-' || (t >= '0' && t <= '9');
}

/* A calendar field's value that is a range object, a string or a number
 * (t its first byte); decode_calvalue has the rules. */
static int s_calvalue(ctx *c, itd_jlex *lx, const itd_field *f, char t, itd_calvalue **out)
{
    itd_calvalue *cv = c_object(c, &itd_CalendarValue, sizeof *cv);
    if (!cv) return -1;
    *out = cv;
    if (t == '{') {
        cv->kind = ITD_CV_RANGE;
        return s_object(c, lx, &itd_CalendarRange, (void **)&cv->range) || check_calrange(c, f, cv->range) ? -1 : 0;
    }
    if (t == '"') {
        char *str = s_string(lx);
        if (!str || check_calvalue_string(c, f, 0, str)) return -1;
        cv->kind = ITD_CV_STRING;
        cv->str = str;
        return 0;
    }
    double d;
    return itd_jlex_number(lx, &d) ? -1 : calvalue_number(c, f, 0, d, cv);
}

/* The value at lx->p (white space skipped) for field f of base, given
 * under `key` (NULL: an element or the root; a tree made of the value keeps
 * it, as the tree decode's node would). */
static int s_value(ctx *c, itd_jlex *lx, const itd_field *f, void *base, char *key)
{
    char t = *lx->p;
    switch (f->kind) {
    case ITD_F_STRING: {
        if (t != '"') break;
        char *str = s_string(lx);
        if (!str || check_string(c, f, str)) return -1;
        *AT(base, f->off, char *) = str;
        return 0;
    }
    case ITD_F_NUMBER: {
        double d;
        if (!s_is_number(t)) break;
        return itd_jlex_number(lx, &d) ? -1 : field_number(c, f, d, base);
    }
    case ITD_F_BOOL: {
        int yes = s_bool(lx, t);
        if (yes < 0) break;
        field_bool(f, yes, base);
        return 0;
    }
    case ITD_F_NUMSTR: {
        itd_numstr *ns = AT(base, f->off, itd_numstr);
        double d;
        if (t == '"') {
            char *str = s_string(lx);
            if (!str || check_numstr_string(c, f, str)) return -1;
            ns->kind = ITD_NS_STRING;
            ns->str = str;
            return 0;
        }
        if (!s_is_number(t)) break;
        return itd_jlex_number(lx, &d) ? -1 : numstr_number(c, f, d, ns);
    }
    case ITD_F_CALVALUE:
        if (t != '{' && t != '"' && !s_is_number(t)) break;
        return s_calvalue(c, lx, f, t, AT(base, f->off, itd_calvalue *));
    case ITD_F_OBJECT: {
        int rc = s_objval(c, lx, f->sub, t, AT(base, f->off, void *), key);
        if (rc == -2) break;
        return rc;
    }
    case ITD_F_ARRAY:
        if (t != '[') break;
        return s_array(c, lx, f, base);
    default:
        break;
    }
    cJSON *v = s_tree(lx, key);
    return v ? decode_field(c, f, NULL, v, base) : -1;
}

/* An object of s (not a union) at lx->p, which is '{'. */
static int s_object(ctx *c, itd_jlex *lx, const itd_schema *s, void **out)
{
    if (s->select || s->nfields > 64 || ++lx->depth > ITD_MAX_DEPTH) return -1;
    void *obj = c_object(c, s, s->size);
    if (!obj) return -1;
    *out = obj;
    uint64_t seen = 0;
    size_t hint = 0;
    int more = 1;
    lx->p++; /* { */
    if (s_peek(lx) == '}') { lx->p++; more = 0; }
    while (more > 0) {
        if (s_peek(lx) != '"') return -1;
        lx->p++;
        char *key = itd_jlex_string(lx, 1);
        if (!key || s_peek(lx) != ':') return -1;
        lx->p++;
        if (!s_peek(lx)) return -1;
        size_t i = hint;
        const itd_field *f = find_field(s, key, &i);
        size_t old = push_key(c, key);
        if (!f) {
            cJSON *v = s_tree(lx, key);
            if (!v || keep_in_doc(c, obj, v)) return -1;
        } else {
            hint = i + 1;
            if (seen & ((uint64_t)1 << i)) return -1;
            seen |= (uint64_t)1 << i;
            if (s_value(c, lx, f, obj, key)) return -1;
        }
        pop(c, old);
        more = s_more(lx, '}');
    }
    lx->depth--;
    if (more < 0 || check_required(c, s, seen)) return -1;
    return apply_defaults(c, s, obj, seen);
}

/* A frozen tree holds a copy of the text (its strings, parsed in place)
 * and its objects, about twice the text again (a Job of 1,190 bytes takes
 * 3,488 and its Lua doc 40 more): one block holds most documents, and a
 * tight one keeps what a held answer costs low. */
static itd_arena *doc_arena(size_t len)
{
    return itd_arena_new(2 * len + len / 2 + 1024);
}

/* The context of a decode from a text, into `doc` (NULL: malloc). */
static void text_ctx(ctx *c, const itd_schema *schema, itd_arena *doc, itd_warnings *w, itd_error *err)
{
    init_ctx(c, schema, ITD_MODE_AUTO, w, err);
    c->arena = 1;
    c->doc = doc;
}

/* The one-pass decode of a frozen answer; NULL when it gave up (nothing
 * is left allocated and nothing reported). */
static void *s_decode(const itd_schema *schema, const char *json, size_t len, itd_warnings *w)
{
    itd_arena *doc = doc_arena(len);
    if (!doc) return NULL;
    itd_arena parse = { NULL, doc, 0 };
    itd_jlex lx;
    ctx c;
    text_ctx(&c, schema, doc, w, NULL);
    void *obj = NULL;
    int ok = !itd_jlex_open(&lx, json, len, &parse) && !s_objval(&c, &lx, schema, s_peek(&lx), &obj, NULL);
    if (ok) {
        itd_jlex_ws(&lx);
        ok = lx.p == lx.end; /* (a NUL byte is data after the document) */
    }
    itd_json_release(NULL, &parse);
    if (!ok) {
        itd_arena_free(doc);
        return NULL;
    }
    ((itd_obj *)obj)->arena = doc;
    return obj;
}

static void *decode_text(const itd_schema *schema, const char *json, size_t len, int frozen, itd_warnings *w,
                         itd_error *err)
{
    itd_err_kind kind = (schema->flags & ITD_S_STRICT) ? ITD_ERR_VALIDATION : ITD_ERR_DECODE;
    if (!json) {
        itd_error_set(err, kind, "", "no document");
        return NULL;
    }
    if (len > ITD_MAX_DOCUMENT_BYTES) {
        itd_error_set(err, kind, "", "document too large (%zu bytes; the limit is %u)", len,
                      (unsigned)ITD_MAX_DOCUMENT_BYTES);
        return NULL;
    }
    /* the one-pass decode, for answers (no rule of input applies) */
    if (frozen && !(schema->flags & ITD_S_STRICT)) {
        size_t nw = w ? w->n : 0;
        void *obj = s_decode(schema, json, len, w);
        if (obj) return obj;
        while (w && w->n > nw) free(w->items[--w->n]); /* said again below */
    }
    itd_arena *doc = NULL;
    if (frozen && !(doc = doc_arena(len))) {
        itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    size_t at = 0;
    const char *why = NULL;
    itd_arena arena = { NULL, doc, 0 };
    cJSON *tree = itd_json_parse_arena(json, len, &arena, &at, &why);
    if (!tree) {
        itd_arena_free(doc);
        itd_error_set(err, kind, "", "invalid JSON at byte %zu: %s%s", at, why,
                      at >= len ? " (truncated document?)" : "");
        return NULL;
    }
    ctx c;
    text_ctx(&c, schema, doc, w, err);
    void *obj = NULL;
    int rc = decode_object(&c, schema, tree, &obj);
    itd_json_release(tree, &arena);
    if (rc) {
        if (doc) itd_arena_free(doc);
        else if (obj) itd_free(schema, obj);
        return NULL;
    }
    if (doc) ((itd_obj *)obj)->arena = doc;
    return obj;
}

/* Decode a document a user built (a Lua table) with the rules of `schema`'s
 * root, even when `schema` is a part (e.g. JobSink.new): parts of input
 * models are checked as input. */
void *itd_decode(const itd_schema *schema, const char *json, size_t len, itd_warnings *w, itd_error *err)
{
    return decode_text(schema, json, len, 0, w, err);
}

void *itd_decode_frozen(const itd_schema *schema, const char *json, size_t len, itd_warnings *w, itd_error *err)
{
    return decode_text(schema, json, len, 1, w, err);
}

void *itd_frozen_alloc(void *root, size_t n)
{
    itd_obj *h = root;
    if (!h || !h->arena || h->arena == &part_mark) return NULL;
    void *p = itd_arena_alloc(h->arena, n);
    if (p) memset(p, 0, n);
    return p;
}

size_t itd_frozen_bytes(const void *root)
{
    const itd_obj *h = root;
    return h && h->arena && h->arena != &part_mark ? itd_arena_bytes(h->arena) : 0;
}

/* ------------------------------------------------------------------ encode */

static cJSON *encode_obj(const itd_schema *s, const void *obj, int redact);

static cJSON *encode_numstr(const itd_numstr *ns)
{
    return ns->kind == ITD_NS_STRING ? cJSON_CreateString(ns->str) : cJSON_CreateNumber(ns->num);
}

static cJSON *encode_calvalue(const itd_calvalue *cv)
{
    switch (cv->kind) {
    case ITD_CV_NUMBER: return cJSON_CreateNumber(cv->num);
    case ITD_CV_STRING: return cJSON_CreateString(cv->str);
    case ITD_CV_RANGE: return encode_obj(&itd_CalendarRange, cv->range, 0);
    case ITD_CV_LIST: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < cv->list.n; i++) {
            cJSON *it = encode_calvalue(cv->list.items[i]);
            if (!it || !cJSON_AddItemToArray(a, it)) { cJSON_Delete(it); cJSON_Delete(a); return NULL; }
        }
        return a;
    }
    }
    return NULL;
}

/* NULL *out with return 0 means "absent". */
static int encode_field(const itd_field *f, const void *base, cJSON **out, int redact)
{
    int redact0 = redact;
    redact = redact && (f->flags & ITD_SECRET);
    *out = NULL;
    int isnull = f->null_off && *AT(base, f->null_off, const int);
    int has = f->has_off ? *AT(base, f->has_off, const int) : 1;
    switch (f->kind) {
    case ITD_F_STRING: {
        const char *s = *AT(base, f->off, char *const);
        if (s) *out = cJSON_CreateString(redact ? "***" : s);
        else if (isnull) *out = cJSON_CreateNull();
        else return 0;
        break;
    }
    case ITD_F_NUMBER:
        if (isnull) *out = cJSON_CreateNull();
        else if (has) *out = cJSON_CreateNumber(*AT(base, f->off, const double));
        else return 0;
        break;
    case ITD_F_BOOL:
        if (!has) return 0;
        *out = cJSON_CreateBool(*AT(base, f->off, const int));
        break;
    case ITD_F_JSON: {
        const cJSON *j = *AT(base, f->off, cJSON *const);
        if (j && redact && J_IS_OBJECT(j)) { /* keep the header names, hide the values */
            *out = cJSON_CreateObject();
            for (const cJSON *it = j->child; *out && it; it = it->next)
                if (!cJSON_AddStringToObject(*out, it->string, "***")) { cJSON_Delete(*out); *out = NULL; }
        } else if (j && redact) *out = cJSON_CreateString("***");
        else if (j) *out = cJSON_Duplicate(j, 1);
        else if (isnull) *out = cJSON_CreateNull();
        else return 0;
        break;
    }
    case ITD_F_OBJECT: {
        const void *o = *AT(base, f->off, void *const);
        if (o) *out = encode_obj(f->sub, o, redact0);
        else if (isnull) *out = cJSON_CreateNull();
        else return 0;
        break;
    }
    case ITD_F_ARRAY: {
        const itd_array *a = AT(base, f->off, const itd_array);
        if (!has && a->n == 0) return 0;
        *out = cJSON_CreateArray();
        for (size_t i = 0; *out && i < a->n; i++) {
            cJSON *it = encode_obj(f->sub, a->items[i], redact0);
            if (!it || !cJSON_AddItemToArray(*out, it)) { cJSON_Delete(it); cJSON_Delete(*out); *out = NULL; }
        }
        break;
    }
    case ITD_F_NUMSTR: {
        const itd_numstr *ns = AT(base, f->off, const itd_numstr);
        if (ns->kind == ITD_NS_ABSENT) return 0;
        *out = encode_numstr(ns);
        break;
    }
    case ITD_F_CALVALUE: {
        const itd_calvalue *cv = *AT(base, f->off, itd_calvalue *const);
        if (!cv) return 0;
        *out = encode_calvalue(cv);
        break;
    }
    }
    return *out ? 0 : -1;
}

static cJSON *encode_obj(const itd_schema *s, const void *obj, int redact)
{
    const itd_obj *h = obj;
    if (h->schema) s = h->schema; /* the branch of a union */
    if ((s->flags & ITD_S_ARRAY_FORM) && !h->extra) {
        int only_first = 1;
        for (size_t i = 1; i < s->nfields; i++) {
            cJSON *x = NULL;
            if (encode_field(&s->fields[i], obj, &x, redact) || x) { only_first = 0; cJSON_Delete(x); }
        }
        if (only_first) {
            cJSON *a = NULL;
            return encode_field(&s->fields[0], obj, &a, redact) ? NULL : a;
        }
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (size_t i = 0; i < s->nfields; i++) {
        cJSON *v = NULL;
        if (encode_field(&s->fields[i], obj, &v, redact)) { cJSON_Delete(o); return NULL; }
        if (v && !cJSON_AddItemToObjectCS(o, s->fields[i].name, v)) { cJSON_Delete(v); cJSON_Delete(o); return NULL; }
    }
    if (h->extra)
        for (const cJSON *it = h->extra->child; it; it = it->next) {
            cJSON *d = cJSON_Duplicate(it, 1);
            if (!d || !cJSON_AddItemToObject(o, it->string, d)) { cJSON_Delete(d); cJSON_Delete(o); return NULL; }
        }
    return o;
}

cJSON *itd_to_cjson(const itd_schema *schema, const void *obj)
{
    return obj ? encode_obj(schema, obj, 0) : NULL;
}

cJSON *itd_to_cjson_redacted(const itd_schema *schema, const void *obj)
{
    if (!obj) return NULL;
    cJSON *t = encode_obj(schema, obj, 1);
    /* Typed secrets are hidden above; free-form JSON and unknown keys (a
     * run's job_configuration_snapshot carries the job's sink) get the
     * by-key rule of scrub.c, once over the whole tree. */
    if (t) itd_redact_json(t);
    return t;
}

char *itd_encode(const itd_schema *schema, const void *obj, size_t *len)
{
    cJSON *t = itd_to_cjson(schema, obj);
    if (!t) return NULL;
    char *s = itd_json_print(t, len);
    cJSON_Delete(t);
    return s;
}

void *itd_clone(const itd_schema *schema, const void *obj)
{
    const itd_obj *h = obj;
    const itd_schema *s = h && h->schema ? h->schema : schema;
    cJSON *t = itd_to_cjson(s, obj);
    if (!t) return NULL;
    /* A valid object re-decodes; use response rules so nothing is refused. */
    ctx c;
    memset(&c, 0, sizeof c);
    c.newest = 1;
    /* no v0.3.12 defaults added to a copy of a newest input form */
    c.newest_form = (s->flags & ITD_S_STRICT) && (s->flags & ITD_S_NEWEST);
    c.kind = ITD_ERR_DECODE;
    void *out = NULL;
    int rc = decode_object(&c, s, t, &out);
    cJSON_Delete(t);
    if (rc) { if (out) itd_free(s, out); return NULL; }
    return out;
}

/* -------------------------------------------------------------------- free */

static void free_calvalue(itd_calvalue *cv)
{
    if (!cv) return;
    free(cv->str);
    if (cv->range) itd_free(&itd_CalendarRange, cv->range);
    for (size_t i = 0; i < cv->list.n; i++) free_calvalue(cv->list.items[i]);
    free(cv->list.items);
    cJSON_Delete(cv->h.extra);
    free(cv);
}

void itd_free(const itd_schema *schema, void *obj)
{
    if (!obj) return;
    itd_obj *h = obj;
    if (h->arena) { /* a frozen tree: all of it at its root, nothing at a part */
        if (h->arena != &part_mark) itd_arena_free(h->arena);
        return;
    }
    const itd_schema *s = h->schema ? h->schema : schema;
    if (s == &itd_CalendarValue) { free_calvalue(obj); return; }
    for (size_t i = 0; i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        switch (f->kind) {
        case ITD_F_STRING: free(*AT(obj, f->off, char *)); break;
        case ITD_F_JSON: cJSON_Delete(*AT(obj, f->off, cJSON *)); break;
        case ITD_F_OBJECT: itd_free(f->sub, *AT(obj, f->off, void *)); break;
        case ITD_F_ARRAY: {
            itd_array *a = AT(obj, f->off, itd_array);
            for (size_t k = 0; k < a->n; k++) itd_free(f->sub, a->items[k]);
            free(a->items);
            break;
        }
        case ITD_F_NUMSTR: free(AT(obj, f->off, itd_numstr)->str); break;
        case ITD_F_CALVALUE: free_calvalue(*AT(obj, f->off, itd_calvalue *)); break;
        default: break;
        }
    }
    cJSON_Delete(h->extra);
    free(obj);
}
