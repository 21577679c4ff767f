/*
 * sched.c - next run time of a JobSchedule (reference §4.7).
 *
 * Intervals: periods counted from the Unix epoch, so the next run of `every`
 * ms is the next multiple of it.  Calendars: Temporal's semantics (the
 * reference infers them): every given field must match, absent second /
 * minute / hour mean 0 and absent day / month / year fields mean "every"; all
 * in UTC.  Besides the typed forms we read the cron-style strings v0.3.12 lets
 * through ("MON-FRI", "1,15", "*\/5", "JAN") as a cron user would mean them;
 * a string we cannot read makes that calendar never match.  The search looks
 * at most ~5 years ahead.
 */
#include <ctype.h>
#include <math.h>
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
    if (ns->kind == ITD_NS_NUMBER) { *out = (long)ns->num; return 0; }
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

static int match_range(int field, const itd_calrange *r, long x)
{
    long a, b;
    if (!r || numstr_value(field, &r->start, &a)) return -1;
    if (r->end.kind == ITD_NS_ABSENT) b = a;
    else if (numstr_value(field, &r->end, &b)) return -1;
    long step = r->has_step && r->step >= 1 ? (long)r->step : 1;
    return x >= a && x <= b && (x - a) % step == 0;
}

/* 1 match, 0 no match, -1 unreadable value. */
static int match_value(int field, const itd_calvalue *cv, long x)
{
    if (!cv) return (field == F_SEC || field == F_MIN || field == F_HOUR) ? x == 0 : 1;
    switch (cv->kind) {
    case ITD_CV_NUMBER: return (double)x == cv->num;
    case ITD_CV_STRING: return cv->str ? match_string(field, cv->str, x) : -1;
    case ITD_CV_RANGE: return match_range(field, cv->range, x);
    case ITD_CV_LIST:
        for (size_t i = 0; i < cv->list.n; i++) {
            int m = match_value(field, cv->list.items[i], x);
            if (m) return m;
        }
        return 0;
    }
    return -1;
}

static double calendar_next(const itd_calendar *c, double now)
{
    time_t day0 = (time_t)floor(now / 86400.0) * 86400;
    for (int d = 0; d < 366 * 5 + 2; d++) {
        time_t day = day0 + (time_t)d * 86400;
        struct tm tm;
        gmtime_r(&day, &tm);
        int y = match_value(F_YEAR, c->year, tm.tm_year + 1900);
        int mo = match_value(F_MONTH, c->month, tm.tm_mon + 1);
        int dm = match_value(F_DOM, c->dayOfMonth, tm.tm_mday);
        int dw = match_value(F_DOW, c->dayOfWeek, tm.tm_wday);
        if (y < 0 || mo < 0 || dm < 0 || dw < 0) return -1;
        if (!(y && mo && dm && dw)) continue;
        for (long h = 0; h < 24; h++) {
            int mh = match_value(F_HOUR, c->hour, h);
            if (mh < 0) return -1;
            if (!mh || (double)(day + h * 3600 + 3599) <= now) continue;
            for (long mi = 0; mi < 60; mi++) {
                int mm = match_value(F_MIN, c->minute, mi);
                if (mm < 0) return -1;
                if (!mm || (double)(day + h * 3600 + mi * 60 + 59) <= now) continue;
                for (long s = 0; s < 60; s++) {
                    int ms = match_value(F_SEC, c->second, s);
                    if (ms < 0) return -1;
                    double t = (double)(day + h * 3600 + mi * 60 + s);
                    if (ms && t > now) return t;
                }
            }
        }
    }
    return -1;
}

double sched_next(const itd_schedule *s, double now)
{
    double best = -1;
    if (!s) return -1;
    for (size_t i = 0; i < s->intervals.n; i++) {
        const itd_interval *iv = s->intervals.items[i];
        double ms = -1;
        if (iv->every.kind == ITD_NS_NUMBER) ms = iv->every.num;
        else if (iv->every.kind == ITD_NS_STRING && itd_duration_ms(iv->every.str, &ms) != 0) ms = -1;
        if (!(ms >= 1)) continue;
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
