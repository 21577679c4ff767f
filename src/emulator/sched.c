/*
 * sched.c - next run time of a JobSchedule (reference §4.7), and the
 * emulator's checks of schedules on input.
 *
 * Intervals: periods counted from the Unix epoch, so the next run of `every`
 * ms is the next multiple of it.  Calendars: Temporal's semantics (the
 * reference infers them): every given field must match, absent second /
 * minute / hour mean 0 and absent day / month / year fields mean "every"; all
 * in UTC.  Besides the typed forms we read the cron-style strings v0.3.12 lets
 * through ("MON-FRI", "1,15", "*\/5", "JAN") as a cron user would mean them.
 *
 * The search runs under the store's lock (the scheduler recomputes after each
 * run), so it is kept cheap and bounded: each field's matching values are
 * tabulated once, then days are walked (at most ~5 years ahead) and only a
 * matching day is searched hour by hour.  A calendar that can never match
 * (dayOfMonth 31 in February) costs ~1800 table lookups, not 10^8 seconds.
 * Input is checked by sched_validate, so values out of range never get here
 * from the API; documents loaded from a data dir may still hold them, and an
 * unreadable value makes that calendar never match.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "emu.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOW, F_DOM, F_MONTH, F_YEAR };

static const char *const dow_names[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" };
static const char *const month_names[] = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY",
                                           "AUGUST", "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER" };

/* A single value (number, full or 3-letter name) of a field; 0 or -1. */
static int value_of(int field, const char *s, size_t n, long *out)
{
    if (n == 0) return -1;
    if (isdigit((unsigned char)s[0])) {
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]) || v > 100000) return -1;
            v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
    }
    const char *const *names = field == F_DOW ? dow_names : field == F_MONTH ? month_names : NULL;
    int count = field == F_DOW ? 7 : 12;
    if (!names) return -1;
    for (int i = 0; i < count; i++) {
        size_t len = strlen(names[i]);
        if ((n == len || n == 3) && strncasecmp(names[i], s, n) == 0) {
            *out = field == F_MONTH ? i + 1 : i;
            return 0;
        }
    }
    return -1;
}

static int numstr_value(int field, const itd_numstr *ns, long *out)
{
    if (ns->kind == ITD_NS_NUMBER) {
        if (!(ns->num >= -1e9 && ns->num <= 1e9)) return -1;   /* only from a hand-edited data dir */
        *out = (long)ns->num;
        return 0;
    }
    if (ns->kind == ITD_NS_STRING && ns->str) return value_of(field, ns->str, strlen(ns->str), out);
    return -1;
}

/* One comma-separated part of a cron-style string: "*", "*\/n", "a", "a-b", "a-b/n". */
static int match_cron_part(int field, const char *s, size_t n, long x)
{
    long step = 1;
    const char *slash = memchr(s, '/', n);
    size_t head = slash ? (size_t)(slash - s) : n;
    if (slash && value_of(F_SEC, slash + 1, n - head - 1, &step)) return -1;
    if (step <= 0) return -1;
    if (head == 1 && s[0] == '*') return (x - (field == F_DOM || field == F_MONTH ? 1 : 0)) % step == 0;
    const char *dash = memchr(s, '-', head);
    long a, b;
    if (dash) {
        if (value_of(field, s, (size_t)(dash - s), &a) || value_of(field, dash + 1, head - (size_t)(dash - s) - 1, &b))
            return -1;
    } else {
        if (value_of(field, s, head, &a)) return -1;
        b = slash ? 1000000 : a;
    }
    return x >= a && x <= b && (x - a) % step == 0;
}

static int match_string(int field, const char *s, long x)
{
    if (strcmp(s, "*") == 0) return 1;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int m = match_cron_part(field, p, n, x);
        if (m < 0) return -1;
        if (m) return 1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* Marks in set (indexed by value - lo) the values lo..hi of the field that
 * cv matches; 0, or -1 when a value is unreadable.  Ranges are marked
 * directly, so a long list costs what it holds, not that times 60. */
static int mark(int field, const itd_calvalue *cv, unsigned char *set, long lo, long hi)
{
    switch (cv->kind) {
    case ITD_CV_NUMBER:
        if (cv->num >= (double)lo && cv->num <= (double)hi && cv->num == floor(cv->num)) set[(long)cv->num - lo] = 1;
        return 0;
    case ITD_CV_STRING:
        if (!cv->str) return -1;
        for (long x = lo; x <= hi; x++) {
            int m = match_string(field, cv->str, x);
            if (m < 0) return -1;
            if (m) set[x - lo] = 1;
        }
        return 0;
    case ITD_CV_RANGE: {
        const itd_calrange *r = cv->range;
        long a, b;
        if (!r || numstr_value(field, &r->start, &a)) return -1;
        if (r->end.kind == ITD_NS_ABSENT) b = a;
        else if (numstr_value(field, &r->end, &b)) return -1;
        long step = r->has_step && r->step >= 1 ? (r->step < 1e6 ? (long)r->step : 1000000) : 1;
        long x = a < lo ? a + (lo - a + step - 1) / step * step : a;
        for (; x <= b && x <= hi; x += step) set[x - lo] = 1;
        return 0;
    }
    case ITD_CV_LIST:
        for (size_t i = 0; i < cv->list.n; i++)
            if (mark(field, cv->list.items[i], set, lo, hi)) return -1;
        return 0;
    }
    return -1;
}

/* The values lo..hi of one field that match, as a table indexed by value - lo
 * (absent: second, minute and hour mean 0, the others every value); 1 when
 * some value matches, 0 when none does, -1 when a value is unreadable. */
static int tabulate(int field, const itd_calvalue *cv, unsigned char *set, long lo, long hi)
{
    int any = 0;
    memset(set, 0, (size_t)(hi - lo + 1));
    if (!cv) {
        if (field == F_SEC || field == F_MIN || field == F_HOUR) set[0] = 1;
        else memset(set, 1, (size_t)(hi - lo + 1));
    } else if (mark(field, cv, set, lo, hi)) {
        return -1;
    }
    for (long x = lo; x <= hi; x++) any |= set[x - lo];
    return any;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

#define HORIZON_DAYS (366 * 5 + 2)

static double calendar_next(const itd_calendar *c, double now)
{
    unsigned char sec[60], min[60], hour[24], dom[32], mon[13], dow[7], year[8];
    if (tabulate(F_SEC, c->second, sec, 0, 59) <= 0 || tabulate(F_MIN, c->minute, min, 0, 59) <= 0
        || tabulate(F_HOUR, c->hour, hour, 0, 23) <= 0 || tabulate(F_DOM, c->dayOfMonth, dom + 1, 1, 31) <= 0
        || tabulate(F_MONTH, c->month, mon + 1, 1, 12) <= 0 || tabulate(F_DOW, c->dayOfWeek, dow, 0, 6) <= 0)
        return -1;
    time_t day = (time_t)floor(now / 86400.0) * 86400;
    struct tm tm;
    if (!gmtime_r(&day, &tm)) return -1;
    int y0 = tm.tm_year + 1900, y = y0, mo = tm.tm_mon + 1, d = tm.tm_mday, wd = tm.tm_wday;
    if (tabulate(F_YEAR, c->year, year, y0, y0 + 7) <= 0) return -1;   /* the horizon spans at most 7 years */
    for (int k = 0; k < HORIZON_DAYS; k++, day += 86400) {
        if (year[y - y0] && mon[mo] && dom[d] && dow[wd]) {
            for (long h = 0; h < 24; h++) {
                if (!hour[h] || (double)(day + h * 3600 + 3599) <= now) continue;
                for (long mi = 0; mi < 60; mi++) {
                    if (!min[mi] || (double)(day + h * 3600 + mi * 60 + 59) <= now) continue;
                    for (long s = 0; s < 60; s++) {
                        double t = (double)(day + h * 3600 + mi * 60 + s);
                        if (sec[s] && t > now) return t;
                    }
                }
            }
        }
        wd = (wd + 1) % 7;
        if (++d > days_in_month(y, mo)) {
            d = 1;
            if (++mo > 12) { mo = 1; y++; }
        }
    }
    return -1;
}

/* Interval periods below this are refused on input (and clamped in documents
 * loaded from a data dir): `every: "1ms"` would start ~1000 runs a second.
 * Schedules run on the wall clock (--time-scale does not shorten them). */
#define MIN_INTERVAL_MS 1000.0
/* and above this (100 years of 365.25 days) a period is nonsense; the reference sets no bound */
#define MAX_INTERVAL_MS 3155760000000.0

static double interval_ms(const itd_interval *iv)
{
    double ms = -1;
    if (iv->every.kind == ITD_NS_NUMBER) ms = iv->every.num;
    else if (iv->every.kind == ITD_NS_STRING && (!iv->every.str || itd_duration_ms(iv->every.str, &ms) != 0)) ms = -1;
    return ms;
}

double sched_next(const itd_schedule *s, double now)
{
    double best = -1;
    if (!s) return -1;
    for (size_t i = 0; i < s->intervals.n; i++) {
        double ms = interval_ms(s->intervals.items[i]);
        if (!(ms > 0)) continue;
        if (ms < MIN_INTERVAL_MS) ms = MIN_INTERVAL_MS;
        if (ms > MAX_INTERVAL_MS) ms = MAX_INTERVAL_MS;
        double now_ms = now * 1000.0;
        double t = (floor(now_ms / ms) + 1) * ms / 1000.0;
        if (best < 0 || t < best) best = t;
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        double t = calendar_next(s->calendars.items[i], now);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    return best;
}

/* ------------------------------------------------------------ input checks */

/* Caps on what one schedule may hold; the reference sets none.  They keep
 * the search above cheap even for a body of the maximum size. */
#define MAX_INTERVALS 100
#define MAX_CALENDARS 100
#define MAX_LIST 100          /* items of one calendar value list */
#define MAX_STRING 256        /* length of one calendar string */

typedef struct field_info { const char *name; int field; long lo, hi; } field_info;
/* Years: from the epoch to the last one an ISO date-time of four digits can name. */
static const field_info fields[] = {
    { "second", F_SEC, 0, 59 },       { "minute", F_MIN, 0, 59 },    { "hour", F_HOUR, 0, 23 },
    { "dayOfMonth", F_DOM, 1, 31 },   { "month", F_MONTH, 1, 12 },   { "dayOfWeek", F_DOW, 0, 6 },
    { "year", F_YEAR, 1970, 9999 },
};

static int bad(itd_error *err, const char *path, const char *fmt, long a, long b, long c)
{
    return itd_error_set(err, ITD_ERR_VALIDATION, path, fmt, a, b, c);
}

/* A number or name of the field, in range; 0 or -1 (err set). */
static int check_value(const field_info *fi, const char *s, size_t n, const char *path, itd_error *err, long *out)
{
    long v;
    if (value_of(fi->field, s, n, &v) != 0) {
        if (fi->field == F_DOW || fi->field == F_MONTH)
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "\"%.*s\" is not a number or a %s name", (int)(n > 40 ? 40 : n),
                                 s, fi->field == F_DOW ? "weekday" : "month");
        return itd_error_set(err, ITD_ERR_VALIDATION, path, "\"%.*s\" is not a number", (int)(n > 40 ? 40 : n), s);
    }
    if (v < fi->lo || v > fi->hi) return bad(err, path, "%ld is out of range %ld-%ld", v, fi->lo, fi->hi);
    *out = v;
    return 0;
}

/* A cron-style string: comma-separated "*", "*\/n", "a", "a-b", "a/n", "a-b/n". */
static int check_string(const field_info *fi, const char *s, const char *path, itd_error *err)
{
    size_t len = strlen(s);
    if (len == 0) return itd_error_set(err, ITD_ERR_VALIDATION, path, "must not be empty");
    if (len > MAX_STRING) return bad(err, path, "longer than %ld characters", MAX_STRING, 0, 0);
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *slash = memchr(p, '/', n);
        size_t head = slash ? (size_t)(slash - p) : n;
        if (slash) {
            long step;
            if (value_of(F_SEC, slash + 1, n - head - 1, &step) != 0 || step < 1)
                return itd_error_set(err, ITD_ERR_VALIDATION, path, "\"%.*s\": the step must be a whole number >= 1",
                                     (int)(n > 40 ? 40 : n), p);
        }
        if (!(head == 1 && p[0] == '*')) {
            const char *dash = memchr(p, '-', head);
            long a, b;
            if (check_value(fi, p, dash ? (size_t)(dash - p) : head, path, err, &a)) return -1;
            if (dash) {
                if (check_value(fi, dash + 1, head - (size_t)(dash - p) - 1, path, err, &b)) return -1;
                if (b < a) return bad(err, path, "the range %ld-%ld is empty", a, b, 0);
            }
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

static int check_numstr(const field_info *fi, const itd_numstr *ns, const char *path, itd_error *err, long *out)
{
    if (ns->kind == ITD_NS_NUMBER) {
        if (ns->num != floor(ns->num)) return itd_error_set(err, ITD_ERR_VALIDATION, path, "must be a whole number");
        if (!(ns->num >= (double)fi->lo && ns->num <= (double)fi->hi))
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "%g is out of range %ld-%ld", ns->num, fi->lo, fi->hi);
        *out = (long)ns->num;
        return 0;
    }
    if (ns->kind == ITD_NS_STRING && ns->str) return check_value(fi, ns->str, strlen(ns->str), path, err, out);
    return itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
}

static int check_calvalue(const field_info *fi, const itd_calvalue *cv, char *path, size_t cap, itd_error *err)
{
    size_t plen = strlen(path);
    long a, b;
    switch (cv->kind) {
    case ITD_CV_NUMBER: {
        itd_numstr ns = { ITD_NS_NUMBER, cv->num, NULL };
        return check_numstr(fi, &ns, path, err, &a);
    }
    case ITD_CV_STRING:
        return cv->str ? check_string(fi, cv->str, path, err) : itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
    case ITD_CV_RANGE: {
        const itd_calrange *r = cv->range;
        if (!r) return itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
        snprintf(path + plen, cap - plen, ".start");
        if (check_numstr(fi, &r->start, path, err, &a)) return -1;
        b = a;
        if (r->end.kind != ITD_NS_ABSENT) {
            snprintf(path + plen, cap - plen, ".end");
            if (check_numstr(fi, &r->end, path, err, &b)) return -1;
            if (b < a) { path[plen] = 0; return bad(err, path, "the range %ld-%ld is empty", a, b, 0); }
        }
        if (r->has_step && !(r->step >= 1 && r->step == floor(r->step) && r->step <= 1e6)) {
            snprintf(path + plen, cap - plen, ".step");
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "must be a whole number >= 1");
        }
        path[plen] = 0;
        return 0;
    }
    case ITD_CV_LIST:
        if (cv->list.n == 0) return itd_error_set(err, ITD_ERR_VALIDATION, path, "must not be empty (it would never match)");
        if (cv->list.n > MAX_LIST) return bad(err, path, "more than %ld items", MAX_LIST, 0, 0);
        for (size_t i = 0; i < cv->list.n; i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i + 1);
            if (check_calvalue(fi, cv->list.items[i], path, cap, err)) return -1;
        }
        path[plen] = 0;
        return 0;
    }
    return itd_error_set(err, ITD_ERR_VALIDATION, path, "is not a calendar value");
}

int sched_validate(const itd_schedule *s, itd_error *err)
{
    char path[ITD_PATH_MAX];
    if (!s) return 0;
    if (s->intervals.n > MAX_INTERVALS) return bad(err, "schedule.intervals", "more than %ld intervals", MAX_INTERVALS, 0, 0);
    if (s->calendars.n > MAX_CALENDARS) return bad(err, "schedule.calendars", "more than %ld calendars", MAX_CALENDARS, 0, 0);
    for (size_t i = 0; i < s->intervals.n; i++) {
        double ms = interval_ms(s->intervals.items[i]);
        snprintf(path, sizeof path, "schedule.intervals[%zu].every", i + 1);
        if (!(ms >= MIN_INTERVAL_MS))
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "the period must be at least 1s (1000 ms) in the emulator");
        if (ms > MAX_INTERVAL_MS) return itd_error_set(err, ITD_ERR_VALIDATION, path, "the period must be at most 100 years");
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        const itd_calendar *c = s->calendars.items[i];
        const itd_calvalue *v[7] = { c->second, c->minute, c->hour, c->dayOfMonth, c->month, c->dayOfWeek, c->year };
        for (size_t k = 0; k < 7; k++) {
            if (!v[k]) continue;
            snprintf(path, sizeof path, "schedule.calendars[%zu].%s", i + 1, fields[k].name);
            if (check_calvalue(&fields[k], v[k], path, sizeof path, err)) return -1;
        }
    }
    return 0;
}
