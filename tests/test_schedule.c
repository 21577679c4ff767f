/* C tests of the schedule engine (src/schedule.c): fixed cases, input
 * checks, warnings and descriptions, and property tests against a brute-force
 * reference -- a scan of every day, every minute of a matching day and every
 * second of a matching minute, with its own reading of calendar values --
 * over thousands of random schedules (fixed seed) drawn over every field form.
 * Under valgrind (detected, or ITD_UNDER_VALGRIND set) the counts are smaller. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <strings.h>
#include <time.h>
#include "intuned.h"
#include "codec_internal.h"
#include "t.h"

/* ------------------------------------------------------------ random */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static long rr(long lo, long hi) { return lo + (long)(rnd() % (uint32_t)(hi - lo + 1)); } /* lo..hi */
static int chance(int pct) { return (int)(rnd() % 100) < pct; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static itd_schedule *sched_of(const char *json)
{
    itd_error e = ITD_ERROR_INIT;
    itd_schedule *s = itd_decode(&itd_JobSchedule, json, strlen(json), NULL, &e);
    if (!s) fprintf(stderr, "decode %s: %s: %s\n", json, e.path, e.message);
    itd_error_clear(&e);
    return s;
}

static char *fmt(double t, char *buf)
{
    if (!itd_datetime_format(t, buf, 32)) snprintf(buf, 32, "(%g)", t);
    return buf;
}

/* ------------------------------------------------- the reference matcher */

enum { R_SEC, R_MIN, R_HOUR, R_DOM, R_MON, R_DOW, R_YEAR };

static const char *const DOW[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" };
static const char *const MON[] = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST",
                                   "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER" };

/* a number or name as the reference reads it; 0 or -1 (unreadable) */
static int ref_value(int f, const char *s, size_t n, long *out)
{
    if (n == 0 || n > 12) return -1;
    char w[16];
    memcpy(w, s, n);
    w[n] = 0;
    if (isdigit((unsigned char)w[0])) {
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)w[i])) return -1;
        *out = atol(w);
        return 0;
    }
    if (f == R_DOW || f == R_MON) {
        const char *const *names = f == R_DOW ? DOW : MON;
        for (int i = 0; i < (f == R_DOW ? 7 : 12); i++)
            if (strcasecmp(names[i], w) == 0 || (n == 3 && strncasecmp(names[i], w, 3) == 0)) {
                *out = f == R_MON ? i + 1 : i;
                return 0;
            }
    }
    return -1;
}

static int ref_numstr(int f, const itd_numstr *ns, long *out)
{
    if (ns->kind == ITD_NS_NUMBER) { *out = (long)ns->num; return 0; }
    if (ns->kind == ITD_NS_STRING) return ref_value(f, ns->str, strlen(ns->str), out);
    return -1;
}

static int bad_value; /* set when a value is unreadable */

static int ref_part(int f, const char *p, size_t n, long x)
{
    long step = 1, a, b;
    const char *slash = memchr(p, '/', n);
    size_t head = slash ? (size_t)(slash - p) : n;
    if (slash && (ref_value(R_SEC, slash + 1, n - head - 1, &step) || step < 1)) { bad_value = 1; return 0; }
    if (head == 1 && p[0] == '*') {
        long base = f == R_DOM || f == R_MON ? 1 : 0;
        return x >= base && (x - base) % step == 0;
    }
    const char *dash = memchr(p, '-', head);
    if (dash) {
        if (ref_value(f, p, (size_t)(dash - p), &a) || ref_value(f, dash + 1, head - (size_t)(dash - p) - 1, &b)) {
            bad_value = 1;
            return 0;
        }
    } else {
        if (ref_value(f, p, head, &a)) { bad_value = 1; return 0; }
        b = slash ? 1L << 40 : a;
    }
    return x >= a && x <= b && (x - a) % step == 0;
}

static int ref_match(int f, const itd_calvalue *cv, long x)
{
    if (!cv) return f <= R_HOUR ? x == 0 : 1;
    switch (cv->kind) {
    case ITD_CV_NUMBER: return cv->num == (double)x;
    case ITD_CV_STRING: {
        const char *p = cv->str;
        if (strcmp(p, "*") == 0) return 1;
        int any = 0;
        for (;;) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            any |= ref_part(f, p, n, x);
            if (!c) return any;
            p = c + 1;
        }
    }
    case ITD_CV_RANGE: {
        long a, b;
        if (ref_numstr(f, &cv->range->start, &a)) { bad_value = 1; return 0; }
        if (cv->range->end.kind == ITD_NS_ABSENT) b = a;
        else if (ref_numstr(f, &cv->range->end, &b)) { bad_value = 1; return 0; }
        long step = cv->range->has_step && cv->range->step >= 1 ? (long)cv->range->step : 1;
        return x >= a && x <= b && (x - a) % step == 0;
    }
    case ITD_CV_LIST: {
        int any = 0;
        for (size_t i = 0; i < cv->list.n; i++) any |= ref_match(f, cv->list.items[i], x);
        return any;
    }
    }
    return 0;
}

/* truth tables of one calendar, filled by ref_match */
typedef struct rcal {
    const itd_calendar *c;
    unsigned char sec[60], min[60], hour[24], dom[32], mon[13], dow[7];
    signed char year[8030]; /* 1970..9999: -1 not yet known */
    int never;              /* an unreadable value */
} rcal;

static void rcal_init(rcal *r, const itd_calendar *c)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    bad_value = 0;
    for (int x = 0; x < 60; x++) r->sec[x] = (unsigned char)ref_match(R_SEC, c->second, x);
    for (int x = 0; x < 60; x++) r->min[x] = (unsigned char)ref_match(R_MIN, c->minute, x);
    for (int x = 0; x < 24; x++) r->hour[x] = (unsigned char)ref_match(R_HOUR, c->hour, x);
    for (int x = 1; x <= 31; x++) r->dom[x] = (unsigned char)ref_match(R_DOM, c->dayOfMonth, x);
    for (int x = 1; x <= 12; x++) r->mon[x] = (unsigned char)ref_match(R_MON, c->month, x);
    for (int x = 0; x < 7; x++) r->dow[x] = (unsigned char)ref_match(R_DOW, c->dayOfWeek, x);
    memset(r->year, -1, sizeof r->year);
    /* an unreadable value anywhere (year included) makes the calendar never fire */
    if (c->year) ref_match(R_YEAR, c->year, 2000);
    r->never = bad_value;
}

static int rcal_year(rcal *r, long y)
{
    if (y < 1970 || y > 9999) return 0;
    if (r->year[y - 1970] < 0) r->year[y - 1970] = (signed char)ref_match(R_YEAR, r->c->year, y);
    return r->year[y - 1970];
}

/* a day as the scan walks it */
typedef struct rday { long y; int m, d, wd; int64_t start; } rday;

static int leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int mdays(long y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

static void rday_at(rday *d, int64_t t)
{
    time_t day = (time_t)((t >= 0 ? t / 86400 : (t - 86399) / 86400) * 86400);
    struct tm tm;
    gmtime_r(&day, &tm);
    d->y = tm.tm_year + 1900, d->m = tm.tm_mon + 1, d->d = tm.tm_mday, d->wd = tm.tm_wday;
    d->start = (int64_t)day;
}
static void rday_inc(rday *d)
{
    d->start += 86400;
    d->wd = (d->wd + 1) % 7;
    if (++d->d > mdays(d->y, d->m)) { d->d = 1; if (++d->m > 12) { d->m = 1; d->y++; } }
}
static void rday_dec(rday *d)
{
    d->start -= 86400;
    d->wd = (d->wd + 6) % 7;
    if (--d->d < 1) { if (--d->m < 1) { d->m = 12; d->y--; } d->d = mdays(d->y, d->m); }
}
static int rday_match(rcal *r, const rday *d)
{
    return d->y >= 1970 && d->y <= 9999 && r->mon[d->m] && r->dom[d->d] && r->dow[d->wd] && rcal_year(r, d->y);
}

/* Up to k fire seconds > from (dir 1) or < from (dir -1), scanning `days`
 * days: every minute of a matching day, every second of a matching minute. */
static size_t brute(rcal *r, double from, int dir, long days, int64_t *out, size_t k)
{
    size_t n = 0;
    if (r->never) return 0;
    rday d;
    rday_at(&d, (int64_t)floor(from));
    for (long i = 0; i < days && n < k; i++, dir > 0 ? rday_inc(&d) : rday_dec(&d)) {
        if (!rday_match(r, &d)) continue;
        for (int mm = dir > 0 ? 0 : 1439; mm >= 0 && mm < 1440 && n < k; mm += dir) {
            if (!r->hour[mm / 60] || !r->min[mm % 60]) continue;
            for (int s = dir > 0 ? 0 : 59; s >= 0 && s < 60 && n < k; s += dir) {
                int64_t t = d.start + mm * 60 + s;
                if (r->sec[s] && (dir > 0 ? (double)t > from : (double)t < from)) out[n++] = t;
            }
        }
    }
    return n;
}

/* -------------------------------------------------- random schedule text */

typedef struct sb { char s[4096]; size_t n; } sb;
static void add(sb *b, const char *fmt_, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
#include <stdarg.h>
static void add(sb *b, const char *fmt_, ...)
{
    va_list ap;
    va_start(ap, fmt_);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt_, ap);
    va_end(ap);
    if (k > 0) b->n += (size_t)k;
    if (b->n >= sizeof b->s) b->n = sizeof b->s - 1;
}

static const long LO[] = { 0, 0, 0, 1, 1, 0, 2000 };
static const long HI[] = { 59, 59, 23, 31, 12, 6, 2080 };

/* a value of field f, as a JSON number or a name string */
static void value_text(sb *b, int f, long x, int as_string)
{
    if ((f == R_DOW || f == R_MON) && chance(50)) {
        const char *n = f == R_DOW ? DOW[x] : MON[x - 1];
        if (chance(70)) add(b, "\"%s\"", n);
        else add(b, "\"%c%c%c\"", n[0], chance(50) ? tolower((unsigned char)n[1]) : n[1], tolower((unsigned char)n[2]));
        return;
    }
    if (as_string) add(b, "\"%ld\"", x);
    else add(b, "%ld", x);
}

static long pick(int f)
{
    if (f == R_DOM && chance(25)) return rr(28, 31);
    if (f == R_MON && chance(25)) return 2;
    return rr(LO[f], HI[f]);
}

static void name_or_num(char *w, size_t len, int f, long x)
{
    if ((f == R_DOW || f == R_MON) && chance(40)) {
        const char *n = f == R_DOW ? DOW[x] : MON[x - 1];
        snprintf(w, len, "%.3s", n);
    } else {
        snprintf(w, len, "%ld", x);
    }
}

static void range_text(sb *b, int f)
{
    long a = pick(f), e = a + rr(0, (HI[f] - LO[f]) / 2);
    if (e > HI[f]) e = HI[f];
    add(b, "{\"start\":");
    value_text(b, f, a, 0);
    if (chance(70)) { add(b, ",\"end\":"); value_text(b, f, e, 0); }
    if (chance(50)) add(b, ",\"step\":%ld", rr(1, 5));
    add(b, "}");
}

static void cron_text(sb *b, int f)
{
    char w1[16], w2[16];
    long a = pick(f), e = a + rr(0, (HI[f] - LO[f]) / 2);
    if (e > HI[f]) e = HI[f];
    name_or_num(w1, sizeof w1, f, a);
    name_or_num(w2, sizeof w2, f, e);
    switch (rr(0, 5)) {
    case 0: add(b, "\"*/%ld\"", rr(1, f == R_YEAR ? 8 : 7)); break;
    case 1: add(b, "\"%s-%s\"", w1, w2); break;
    case 2: add(b, "\"%s-%s/%ld\"", w1, w2, rr(2, 4)); break;
    case 3: add(b, "\"%s/%ld\"", w1, rr(2, 9)); break;
    case 4: {
        name_or_num(w2, sizeof w2, f, pick(f));
        add(b, "\"%s,%s\"", w1, w2);
        break;
    }
    default: add(b, "\"%s\"", w1); break;
    }
}

/* a calendar field: returns 0 when it was left out */
static int field_text(sb *b, int f)
{
    int absent = f == R_YEAR ? 65 : f <= R_HOUR ? 25 : 35;
    if (chance(absent)) return 0;
    static const char *const names[] = { "second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek", "year" };
    add(b, "\"%s\":", names[f]);
    int form = (int)rr(0, 9);
    if (chance(2)) { add(b, "%ld", HI[f] + rr(1, 3)); return 1; } /* out of range: matches nothing */
    switch (form) {
    case 0: case 1: value_text(b, f, pick(f), 0); break;
    case 2: add(b, "\"*\""); break;
    case 3: value_text(b, f, pick(f), 1); break;
    case 4: case 5: cron_text(b, f); break;
    case 6: case 7: range_text(b, f); break;
    default: {
        int n = (int)rr(1, 3);
        add(b, "[");
        for (int i = 0; i < n; i++) {
            if (i) add(b, ",");
            if (chance(60)) range_text(b, f);
            else value_text(b, f, pick(f), 0);
        }
        add(b, "]");
    }
    }
    return 1;
}

static void calendar_text(sb *b)
{
    add(b, "{");
    int any = 0;
    for (int f = 0; f <= R_YEAR; f++) {
        size_t before = b->n;
        if (any) add(b, ",");
        if (field_text(b, f)) any = 1;
        else b->n = before, b->s[b->n] = 0;
    }
    if (chance(10)) add(b, "%s\"comment\":\"c\"", any ? "," : "");
    add(b, "}");
}

/* a random instant 1990-2060 (or later, to 9960), often near a month's or year's end or 29 February */
static double random_from(void)
{
    long y = chance(15) ? rr(2061, 9960) : rr(1990, 2060); /* far years too: the 400-year cycle */
    int m = (int)rr(1, 12), d = (int)rr(1, mdays(y, m));
    int sod = (int)rr(0, 86399);
    switch (rr(0, 5)) {
    case 0: m = 2; d = (int)rr(27, mdays(y, 2)); break;
    case 1: d = mdays(y, m); sod = (int)rr(86000, 86399); break;
    case 2: m = 12; d = 31; sod = (int)rr(86340, 86399); break;
    default: break;
    }
    double t = (double)itd_days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + sod;
    return chance(30) ? t + rr(0, 999) / 1000.0 : t;
}

/* -------------------------------------------------------- property tests */

#define HORIZON_DAYS (366L * 30)

static int prop_fail;
static void prop_report(const char *what, const char *json, double from, size_t i, double eng, double ref)
{
    char a[32], b[32], c[32];
    if (prop_fail++ < 10)
        fprintf(stderr, "%s mismatch at #%zu: from %s engine %s brute %s\n  %s\n", what, i, fmt(from, a), fmt(eng, b),
                fmt(ref, c), json);
}

/* one calendar: next K and previous K against the scans; returns 1 when it never fires */
static int prop_calendar(rcal *r, const itd_calendar *cal, const char *json, long *checked)
{
    itd_schedule s = { 0 };
    void *items[1] = { (void *)cal };
    s.calendars.n = 1;
    s.calendars.items = items;
    itd_sched *c = itd_sched_new(&s, NULL);
    CHECK(c != NULL);
    if (!c) return 0;
    rcal_init(r, cal);
    enum { K = 3 };
    double from = random_from(), e[K];
    int64_t ref[K];
    for (int dir = 1; dir >= -1; dir -= 2) {
        size_t ne = dir > 0 ? itd_sched_next(c, from, e, K) : itd_sched_prev(c, from, e, K);
        size_t nr = brute(r, from, dir, HORIZON_DAYS, ref, K);
        double edge = from + dir * (double)(HORIZON_DAYS - 1) * 86400;
        int ok = 1;
        for (size_t i = 0; i < K && ok; i++) {
            if (i < nr) {
                if (!(i < ne && e[i] == (double)ref[i])) { prop_report(dir > 0 ? "next" : "prev", json, from, i, i < ne ? e[i] : -1, (double)ref[i]); ok = 0; }
            } else if (i < ne && (dir > 0 ? e[i] <= edge : e[i] >= edge)) {
                /* the engine found one inside the scanned days that the scan did not */
                prop_report(dir > 0 ? "next" : "prev", json, from, i, e[i], -1);
                ok = 0;
            }
        }
        CHECK(ok);
        (*checked)++;
    }
    int never = itd_sched_never(c);
    /* "never" agrees with the scan of every day 1970-9999 (done for some) */
    itd_sched_free(c);
    return never;
}

static int full_scan_finds(rcal *r)
{
    int64_t t;
    return brute(r, -1, 1, 3000000, &t, 1) == 1;
}

/* a union of calendars and whole-second intervals against the merged scans */
static void prop_union(const char *json, const itd_schedule *s, rcal *r, long *checked)
{
    enum { K = 5 };
    itd_sched *c = itd_sched_new(s, NULL);
    CHECK(c != NULL);
    if (!c) return;
    double from = random_from(), e[K];
    size_t ne = itd_sched_next(c, from, e, K);
    /* the reference: each source's first K, merged and deduplicated */
    int64_t all[64 * K];
    size_t na = 0;
    for (size_t i = 0; i < s->calendars.n && i < 8; i++) {
        rcal_init(r, s->calendars.items[i]);
        na += brute(r, from, 1, HORIZON_DAYS, all + na, K);
    }
    for (size_t i = 0; i < s->intervals.n && i < 8; i++) {
        double ms;
        if (itd_interval_ms(s->intervals.items[i], &ms)) continue;
        int64_t p = (int64_t)(ms / 1000), t = (int64_t)floor(from) + 1;
        size_t got = 0;
        for (int64_t step = 0; got < K && step < 86400L * 2 * K; step++, t++) /* a scan, second by second */
            if (t % p == 0) all[na++] = t, got++;
    }
    for (size_t i = 1; i < na; i++) /* insertion sort */
        for (size_t j = i; j > 0 && all[j - 1] > all[j]; j--) { int64_t x = all[j]; all[j] = all[j - 1]; all[j - 1] = x; }
    size_t nu = 0;
    for (size_t i = 0; i < na; i++)
        if (nu == 0 || all[nu - 1] != all[i]) all[nu++] = all[i];
    int ok = 1;
    for (size_t i = 0; i < K && ok; i++) {
        if (i < nu) {
            if (!(i < ne && e[i] == (double)all[i])) { prop_report("union", json, from, i, i < ne ? e[i] : -1, (double)all[i]); ok = 0; }
        }
    }
    if (nu >= K) CHECK(ne == K);
    CHECK(ok);
    (*checked)++;
    /* between: the same times, inclusive at both ends */
    if (ne >= 2) {
        double b[K];
        int more = 0;
        size_t nb = itd_sched_between(c, e[0], e[ne - 1], b, K, &more);
        CHECK(nb == ne && !more);
        for (size_t i = 0; i < nb && i < ne; i++) CHECK(b[i] == e[i]);
        size_t nb2 = itd_sched_between(c, e[0] + 0.0005, e[ne - 1], b, 1, &more);
        CHECK(nb2 == 1 && b[0] == e[1] && more == (ne > 2));
        (*checked)++;
    }
    itd_sched_free(c);
}

static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return getenv("ITD_UNDER_VALGRIND") != NULL || (p && strstr(p, "vgpreload"));
}

static void properties(void)
{
    int vg = under_valgrind();
    long ncal = vg ? 600 : 4000, nunion = vg ? 200 : 1500, nfull = vg ? 3 : 20;
    rcal *r = malloc(sizeof *r);
    long checked = 0, never = 0, full = 0, ucheck = 0;
    double t0 = now_s();
    for (long i = 0; i < ncal; i++) {
        sb b = { { 0 }, 0 };
        add(&b, "{\"calendars\":[");
        calendar_text(&b);
        add(&b, "]}");
        itd_schedule *s = sched_of(b.s);
        CHECK(s != NULL && s->calendars.n == 1);
        if (!s || s->calendars.n != 1) { itd_free(&itd_JobSchedule, s); continue; }
        int nv = prop_calendar(r, s->calendars.items[0], b.s, &checked);
        if (nv) {
            never++;
            if (full < nfull) { /* never, by a scan of every day of the domain */
                rcal_init(r, s->calendars.items[0]);
                int found = full_scan_finds(r);
                if (found) fprintf(stderr, "engine says never, the full scan finds a time: %s\n", b.s);
                CHECK(!found);
                full++;
            }
        }
        itd_free(&itd_JobSchedule, s);
    }
    for (long i = 0; i < nunion; i++) {
        sb b = { { 0 }, 0 };
        add(&b, "{");
        int ni = (int)rr(0, 2), nc = (int)rr(ni ? 0 : 1, 3);
        if (ni) {
            add(&b, "\"intervals\":[");
            static const long periods[] = { 1, 7, 60, 90, 3600, 5400, 25200, 86400 };
            for (int k = 0; k < ni; k++) {
                long p = periods[rr(0, 7)];
                if (chance(50)) add(&b, "%s{\"every\":%ld}", k ? "," : "", p * 1000);
                else add(&b, "%s{\"every\":\"%lds\"}", k ? "," : "", p);
            }
            add(&b, "]%s", nc ? "," : "");
        }
        if (nc) {
            add(&b, "\"calendars\":[");
            for (int k = 0; k < nc; k++) {
                if (k) add(&b, ",");
                calendar_text(&b);
            }
            add(&b, "]");
        }
        add(&b, "}");
        itd_schedule *s = sched_of(b.s);
        CHECK(s != NULL);
        if (s) prop_union(b.s, s, r, &ucheck);
        itd_free(&itd_JobSchedule, s);
    }
    free(r);
    printf("properties: %ld random calendars (%ld next/prev comparisons with the scan, %ld never fire, %ld of those "
           "confirmed by a scan of 1970-9999), %ld random unions (%ld comparisons, between included), %d mismatches, "
           "%.1f s\n", ncal, checked, never, full, nunion, ucheck, prop_fail, now_s() - t0);
    CHECK(prop_fail == 0);
    CHECK(checked == 2 * ncal);
    CHECK(never > 0); /* the draw reaches never-firing calendars */
}

/* ---------------------------------------------------------- fixed cases */

static double T(const char *iso)
{
    double t = -1;
    CHECK(itd_datetime_parse(iso, &t) == 0);
    return t;
}

/* the first times after `from` are `want` (exactly those when `all`) */
static void expect_next(const char *json, const char *from, const char *const *want, size_t nwant, int all)
{
    itd_schedule *s = sched_of(json);
    CHECK(s != NULL);
    itd_sched *c = itd_sched_new(s, NULL);
    double out[8];
    char buf[32];
    size_t n = itd_sched_next(c, T(from), out, all ? nwant + 1 : nwant);
    if (n != nwant) fprintf(stderr, "%s: %zu times, want %zu\n", json, n, nwant);
    CHECK(n == nwant);
    for (size_t i = 0; i < nwant && i < n; i++) CHECK_STR(fmt(out[i], buf), want[i]);
    itd_sched_free(c);
    itd_free(&itd_JobSchedule, s);
}

static void fixed(void)
{
    {
        const char *w[] = { "2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z", "2036-02-29T00:00:00.000Z" };
        expect_next("{\"calendars\":[{\"month\":2,\"dayOfMonth\":29}]}", "2025-03-01T00:00:00Z", w, 3, 0);
    }
    {   /* 29 February on a Monday: 2016, 2044, 2072 */
        const char *w[] = { "2044-02-29T00:00:00.000Z", "2072-02-29T00:00:00.000Z" };
        expect_next("{\"calendars\":[{\"month\":\"FEBRUARY\",\"dayOfMonth\":29,\"dayOfWeek\":\"MONDAY\"}],"
                    "\"intervals\":[]}", "2016-02-29T00:00:00Z", w, 2, 0);
    }
    {   /* once a year */
        const char *w[] = { "2026-06-15T12:00:00.000Z", "2027-06-15T12:00:00.000Z" };
        expect_next("{\"calendars\":[{\"month\":6,\"dayOfMonth\":15,\"hour\":12}]}", "2025-06-15T12:00:00Z", w, 2, 0);
    }
    {   /* the last second the domain has, then nothing */
        const char *w[] = { "9999-12-31T23:59:59.000Z" };
        expect_next("{\"calendars\":[{\"second\":59,\"minute\":59,\"hour\":23,\"dayOfMonth\":31,\"month\":12}]}",
                    "9999-12-31T23:59:58Z", w, 1, 1);
    }
    {   /* intervals count from the epoch; a ms period keeps its ms */
        const char *w[] = { "1970-01-01T07:00:00.000Z", "1970-01-01T14:00:00.000Z" };
        expect_next("{\"intervals\":[{\"every\":\"7h\"}]}", "1970-01-01T00:00:00Z", w, 2, 0);
        const char *w2[] = { "2025-01-01T00:00:01.500Z", "2025-01-01T00:00:03.000Z" };
        expect_next("{\"intervals\":[{\"every\":1500}]}", "2025-01-01T00:00:00Z", w2, 2, 0);
    }
    {   /* the union fires once when two sources agree */
        const char *w[] = { "2025-01-01T01:00:00.000Z", "2025-01-01T01:30:00.000Z", "2025-01-01T02:00:00.000Z" };
        expect_next("{\"intervals\":[{\"every\":\"1h\"}],\"calendars\":[{\"minute\":0,\"hour\":\"*\"},"
                    "{\"minute\":30,\"hour\":1}]}", "2025-01-01T00:00:00Z", w, 3, 0);
    }
    {   /* strictly after `from`, also with a fraction */
        const char *w[] = { "2025-01-01T00:00:01.000Z" };
        expect_next("{\"calendars\":[{\"second\":\"*\",\"minute\":\"*\",\"hour\":\"*\"}]}", "2025-01-01T00:00:00.500Z", w, 1, 0);
    }
    /* never, in microseconds */
    const char *nevers[] = {
        "{\"calendars\":[{\"month\":2,\"dayOfMonth\":31}]}",
        "{\"calendars\":[{\"hour\":25}]}",
        "{\"calendars\":[{\"dayOfMonth\":31,\"month\":[{\"start\":4},{\"start\":6},{\"start\":9},{\"start\":11}]}]}",
        "{\"calendars\":[{\"dayOfWeek\":\"FUNDAY\"}]}",
        "{\"calendars\":[{\"year\":1960}]}",
        "{\"calendars\":[{\"month\":2,\"dayOfMonth\":29,\"year\":\"1971/2\",\"dayOfWeek\":\"MON\",\"hour\":\"3\"},"
        "{\"month\":2,\"dayOfMonth\":29,\"year\":{\"start\":2001,\"end\":2099,\"step\":4}}]}",
        "{}",
    };
    int vg = under_valgrind();
    for (size_t i = 0; i < sizeof nevers / sizeof nevers[0]; i++) {
        itd_schedule *s = sched_of(nevers[i]);
        CHECK(s != NULL);
        itd_sched *c = itd_sched_new(s, NULL);
        double out[1], t0 = now_s();
        size_t n = 0;
        for (int k = 0; k < 1000; k++) n += itd_sched_next(c, 1.7e9 + k, out, 1) + itd_sched_prev(c, 1.7e9 + k, out, 1);
        double per = (now_s() - t0) / 2000;
        if (n) fprintf(stderr, "never fires, yet %zu times: %s\n", n, nevers[i]);
        CHECK(n == 0);
        CHECK(itd_sched_never(c));
        /* a guard against a search (a scan of years takes seconds), not a
         * benchmark (bench/schedule is): the bound leaves room for a loaded
         * machine and the sanitizers */
        if (per > (vg ? 1e-2 : 1e-3)) fprintf(stderr, "never took %.1f us: %s\n", per * 1e6, nevers[i]);
        CHECK(per < (vg ? 1e-2 : 1e-3));
        itd_sched_free(c);
        itd_free(&itd_JobSchedule, s);
    }
    {   /* a rare calendar costs no more than a common one */
        itd_schedule *s = sched_of("{\"calendars\":[{\"month\":2,\"dayOfMonth\":29,\"dayOfWeek\":\"MONDAY\",\"second\":59}]}");
        itd_sched *c = itd_sched_new(s, NULL);
        double out[1], t0 = now_s();
        size_t n = 0;
        for (int k = 0; k < 1000; k++) n += itd_sched_next(c, 1e9 + k * 1e6, out, 1);
        double per = (now_s() - t0) / 1000;
        CHECK(n == 1000);
        CHECK(per < (vg ? 1e-2 : 1e-3));   /* as above: no search, with room for a loaded machine */
        itd_sched_free(c);
        itd_free(&itd_JobSchedule, s);
    }
    {   /* previous and between */
        itd_schedule *s = sched_of("{\"intervals\":[{\"every\":\"1h\"}]}");
        itd_sched *c = itd_sched_new(s, NULL);
        double out[4];
        char buf[32];
        CHECK(itd_sched_prev(c, T("2025-01-01T01:00:00Z"), out, 2) == 2);
        CHECK_STR(fmt(out[0], buf), "2025-01-01T00:00:00.000Z");
        CHECK_STR(fmt(out[1], buf), "2024-12-31T23:00:00.000Z");
        int more = -1;
        CHECK(itd_sched_between(c, T("2025-01-01T00:00:00Z"), T("2025-01-01T02:00:00Z"), out, 4, &more) == 3 && more == 0);
        CHECK(itd_sched_between(c, T("2025-01-01T00:00:00Z"), T("2025-01-01T02:00:00Z"), out, 2, &more) == 2 && more == 1);
        CHECK(itd_sched_between(c, T("2025-01-01T00:00:01Z"), T("2025-01-01T00:59:59Z"), out, 4, &more) == 0 && more == 0);
        CHECK(itd_sched_prev(c, 0, out, 1) == 0);  /* nothing before the epoch */
        CHECK(itd_sched_prev(c, 3600.5, out, 1) == 1 && out[0] == 3600);
        CHECK(itd_sched_jitter_ms(c) == 0);
        itd_sched_free(c);
        itd_free(&itd_JobSchedule, s);
    }
    {   /* jitter and options */
        itd_schedule *s = sched_of("{\"jitter\":\"30s\",\"intervals\":[{\"every\":10}]}");
        itd_sched_opts o = { 1000, 0 };
        itd_sched *c = itd_sched_new(s, &o);
        double out[2];
        CHECK(itd_sched_jitter_ms(c) == 30000);
        CHECK(itd_sched_next(c, 0, out, 2) == 2 && out[0] == 1 && out[1] == 2);
        itd_sched_free(c);
        itd_free(&itd_JobSchedule, s);
        CHECK(itd_sched_never(NULL));
        itd_sched *none = itd_sched_new(NULL, NULL);
        CHECK(none && itd_sched_never(none) && itd_sched_next(none, 0, out, 1) == 0);
        itd_sched_free(none);
    }
}

static void checks(void)
{
    struct { const char *json, *path; } bad[] = {
        { "{\"calendars\":[{\"second\":61}]}", "schedule.calendars[1].second" },
        { "{\"calendars\":[{\"hour\":2},{\"second\":60}]}", "schedule.calendars[2].second" },
        { "{\"calendars\":[{\"minute\":-1}]}", "schedule.calendars[1].minute" },
        { "{\"calendars\":[{\"hour\":1.5}]}", "schedule.calendars[1].hour" },
        { "{\"calendars\":[{\"dayOfMonth\":0}]}", "schedule.calendars[1].dayOfMonth" },
        { "{\"calendars\":[{\"month\":\"SMARCH\"}]}", "schedule.calendars[1].month" },
        { "{\"calendars\":[{\"dayOfWeek\":7}]}", "schedule.calendars[1].dayOfWeek" },
        { "{\"calendars\":[{\"year\":1969}]}", "schedule.calendars[1].year" },
        { "{\"calendars\":[{\"hour\":{\"start\":3,\"end\":25}}]}", "schedule.calendars[1].hour.end" },
        { "{\"calendars\":[{\"hour\":{\"start\":5,\"end\":3}}]}", "schedule.calendars[1].hour" },
        { "{\"calendars\":[{\"hour\":{\"start\":1,\"step\":0}}]}", "schedule.calendars[1].hour.step" },
        { "{\"calendars\":[{\"minute\":[{\"start\":0},{\"start\":75}]}]}", "schedule.calendars[1].minute[2].start" },
        { "{\"calendars\":[{\"second\":\"*/0\"}]}", "schedule.calendars[1].second" },
        { "{\"calendars\":[{\"dayOfWeek\":\"MON-XYZ\"}]}", "schedule.calendars[1].dayOfWeek" },
        { "{\"calendars\":[{\"hour\":\"\"}]}", "schedule.calendars[1].hour" },
        { "{\"calendars\":[{\"hour\":[]}]}", "schedule.calendars[1].hour" },
        { "{\"intervals\":[{\"every\":\"1h\"},{\"every\":0}]}", "schedule.intervals[2].every" },
        { "{\"intervals\":[{\"every\":\"200y\"}]}", "schedule.intervals[1].every" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        itd_schedule *s = sched_of(bad[i].json);
        CHECK(s != NULL);
        itd_error e = ITD_ERROR_INIT;
        CHECK(itd_schedule_check(s, NULL, &e) == -1);
        CHECK(e.kind == ITD_ERR_VALIDATION);
        if (strcmp(e.path, bad[i].path) != 0) fprintf(stderr, "%s: path %s\n", bad[i].json, e.path);
        CHECK_STR(e.path, bad[i].path);
        itd_error_clear(&e);
        itd_free(&itd_JobSchedule, s);
    }
    const char *good = "{\"jitter\":\"5s\",\"intervals\":[{\"every\":\"1h\"},{\"every\":1000}],\"calendars\":[{\"second\":0,"
                       "\"minute\":[{\"start\":0,\"end\":10,\"step\":5},{\"start\":45}],\"hour\":{\"start\":6,\"end\":22,"
                       "\"step\":4},\"dayOfMonth\":\"*\",\"dayOfWeek\":{\"start\":\"MONDAY\",\"end\":\"FRIDAY\"},"
                       "\"month\":\"*\"},{\"dayOfWeek\":\"MON-FRI\",\"minute\":\"*/15\",\"hour\":\"9,17\",\"month\":\"JAN\","
                       "\"year\":\"2030-2040\"},{\"second\":\"0\",\"minute\":30,\"comment\":\"half past\"}]}";
    itd_schedule *s = sched_of(good);
    itd_error e = ITD_ERROR_INIT;
    CHECK(s && itd_schedule_check(s, "x", &e) == 0);
    itd_warnings w = { 0 };
    CHECK(itd_schedule_warnings(s, NULL, &w) == 0 && w.n == 0);
    itd_warnings_clear(&w);
    itd_free(&itd_JobSchedule, s);
}

static void warnings(void)
{
    itd_schedule *s = sched_of("{\"intervals\":[{\"every\":\"1h\"},{\"every\":1.5}],\"calendars\":[{\"hour\":9},"
                               "{\"month\":2,\"dayOfMonth\":31},{\"hour\":25},{\"dayOfWeek\":\"FUNDAY\"}]}");
    itd_warnings w = { 0 };
    CHECK(s && itd_schedule_warnings(s, NULL, &w) == 0);
    const char *want[] = {
        "schedule.intervals[2].every: 1.5 ms is not a whole number of milliseconds; it is rounded to 2",
        "schedule.calendars[2]: this calendar never fires (no date from 1970 to 9999 matches its dayOfMonth, month, "
        "dayOfWeek and year together)",
        "schedule.calendars[3].hour: 25 is out of range 0-23",
        "schedule.calendars[3]: this calendar never fires (its hour matches no value 0-23)",
        "schedule.calendars[4].dayOfWeek: \"FUNDAY\" is not a number or a weekday name",
        "schedule.calendars[4]: this calendar never fires (a value of it cannot be read)",
    };
    CHECK(w.n == sizeof want / sizeof want[0]);
    for (size_t i = 0; i < w.n && i < sizeof want / sizeof want[0]; i++) CHECK_STR(w.items[i], want[i]);
    itd_warnings_clear(&w);
    itd_free(&itd_JobSchedule, s);
}

static void describe(void)
{
    struct { const char *json, *text; } cases[] = {
        { "{\"intervals\":[{\"every\":\"1h\"}],\"calendars\":[{\"hour\":{\"start\":9,\"end\":17,\"step\":2},"
          "\"dayOfWeek\":{\"start\":\"MONDAY\",\"end\":\"FRIDAY\"}}]}",
          "every hour; and at 09:00, 11:00, ... 17:00 UTC Monday to Friday" },
        { "{\"calendars\":[{\"month\":2,\"dayOfMonth\":29}]}", "at 00:00 UTC on 29 February" },
        { "{\"calendars\":[{\"month\":2,\"dayOfMonth\":31}]}", "never (at 00:00 UTC on 31 February: no such date)" },
        { "{\"calendars\":[{\"minute\":\"*/15\",\"hour\":\"9-17\"}]}", "every 15 minutes of hours 9 to 17 UTC" },
        { "{\"calendars\":[{\"second\":\"*\",\"minute\":\"*\",\"hour\":\"*\"}]}", "every second UTC" },
        { "{\"calendars\":[{\"minute\":30,\"hour\":\"*\"}]}", "at minute 30 of every hour UTC" },
        { "{\"calendars\":[{\"hour\":3,\"dayOfWeek\":\"SUNDAY\",\"month\":{\"start\":\"JANUARY\",\"end\":\"MARCH\"}}]}",
          "at 03:00 UTC on Sunday in January to March" },
        { "{\"calendars\":[{\"hour\":8,\"minute\":30,\"dayOfMonth\":[1,15],\"year\":2030,\"comment\":\"pay day\"}]}",
          "at 08:30 UTC on days 1 and 15 of the month in 2030 (\"pay day\")" },
        { "{\"calendars\":[{\"dayOfMonth\":13,\"dayOfWeek\":5}]}", "at 00:00 UTC on day 13 of the month when that is a Friday" },
        { "{\"intervals\":[{\"every\":\"15m\"},{\"every\":\"7h\"}],\"jitter\":\"30s\"}",
          "every 15 minutes; and every 7 hours (counted from 1970-01-01T00:00Z); each run starts up to 30 seconds late (jitter)" },
        { "{\"calendars\":[{\"minute\":{\"start\":0,\"end\":30,\"step\":30},\"hour\":{\"start\":8,\"end\":18},"
          "\"month\":\"JAN,jul\",\"year\":{\"start\":2026,\"end\":2030}},{\"hour\":25}]}",
          "every 30 minutes of hours 8 to 18 UTC in January and July in the years 2026 to 2030; and never (its hour "
          "matches no value 0-23)" },
        { "{\"intervals\":[{\"every\":604800000},{\"every\":\"1d\"},{\"every\":90000}]}",
          "every week (counted from 1970-01-01T00:00Z); every day; and every 90 seconds" },
        { "{}", "never (no intervals or calendars)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        itd_schedule *s = sched_of(cases[i].json);
        char *d = itd_schedule_describe(s);
        CHECK_STR(d, cases[i].text);
        free(d);
        itd_free(&itd_JobSchedule, s);
    }
    char *d = itd_schedule_describe(NULL);
    CHECK_STR(d, "never (no intervals or calendars)");
    free(d);
}

int main(void)
{
    (void)t_slurp;
    fixed();
    checks();
    warnings();
    describe();
    properties();
    return T_DONE();
}
