/* bench/schedule.c: next-run times of the schedule engine (src/schedule.c)
 * against a brute-force minute-by-minute scan, in one run.  bench/schedule
 * builds and runs it.
 *
 *   schedule [COUNT]     (default 1000000 engine computations)
 *
 * Both sides answer "first fire time after t" for the same schedules (an
 * everyday mix plus a rare one and a never one) and instants; the scan looks
 * at every minute up to 30 years ahead (and every second of a matching
 * minute), reading each field with its own simple matcher, and runs on a
 * smaller count.  The answers of the two are compared on the scan's sample. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "intuned.h"

static const char *const SCHEDULES[] = {
    /* business hours on weekdays, and hourly */
    "{\"intervals\":[{\"every\":\"1h\"}],\"calendars\":[{\"hour\":{\"start\":9,\"end\":17,\"step\":2},"
    "\"dayOfWeek\":{\"start\":\"MONDAY\",\"end\":\"FRIDAY\"}}]}",
    /* every 15 minutes */
    "{\"calendars\":[{\"minute\":{\"start\":0,\"end\":45,\"step\":15},\"hour\":{\"start\":0,\"end\":23}}]}",
    /* the first Monday of each month at 06:30 */
    "{\"calendars\":[{\"minute\":30,\"hour\":6,\"dayOfMonth\":{\"start\":1,\"end\":7},\"dayOfWeek\":\"MONDAY\"}]}",
    /* quarter ends at 23:59:30 */
    "{\"calendars\":[{\"second\":30,\"minute\":59,\"hour\":23,\"dayOfMonth\":[{\"start\":30},{\"start\":31}],"
    "\"month\":[{\"start\":3},{\"start\":12}]},{\"second\":30,\"minute\":59,\"hour\":23,\"dayOfMonth\":30,"
    "\"month\":[{\"start\":6},{\"start\":9}]}]}",
    /* rare: 29 February when it is a Monday (every 28 years or so) */
    "{\"calendars\":[{\"month\":2,\"dayOfMonth\":29,\"dayOfWeek\":\"MONDAY\"}]}",
    /* never: 31 February */
    "{\"calendars\":[{\"month\":2,\"dayOfMonth\":31}]}",
};
#define NSCHED (sizeof SCHEDULES / sizeof SCHEDULES[0])
#define NFROM 4096
#define SCAN_YEARS 30

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------ the brute force */

enum { SEC, MIN, HOUR, DOM, MON, DOW, YEAR };

static long name_value(int f, const itd_numstr *ns)
{
    static const char *const dow[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" };
    if (ns->kind == ITD_NS_NUMBER) return (long)ns->num;
    if (ns->kind == ITD_NS_STRING && f == DOW)
        for (int i = 0; i < 7; i++)
            if (strcasecmp(ns->str, dow[i]) == 0) return i;
    return -1;
}

static int match(int f, const itd_calvalue *cv, long x)
{
    static const char *const dow[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" };
    if (!cv) return f <= HOUR ? x == 0 : 1;
    switch (cv->kind) {
    case ITD_CV_NUMBER: return cv->num == (double)x;
    case ITD_CV_STRING: return strcmp(cv->str, "*") == 0 || (f == DOW && strcasecmp(cv->str, dow[x]) == 0);
    case ITD_CV_RANGE: {
        long a = name_value(f, &cv->range->start);
        long b = cv->range->end.kind == ITD_NS_ABSENT ? a : name_value(f, &cv->range->end);
        long step = cv->range->has_step && cv->range->step >= 1 ? (long)cv->range->step : 1;
        return x >= a && x <= b && (x - a) % step == 0;
    }
    case ITD_CV_LIST:
        for (size_t i = 0; i < cv->list.n; i++)
            if (match(f, cv->list.items[i], x)) return 1;
        return 0;
    }
    return 0;
}

/* first fire second > from of one calendar, or -1 within the scanned years */
static double scan_calendar(const itd_calendar *c, double from)
{
    int64_t t = (int64_t)floor(from) / 60 * 60, end = t + (int64_t)SCAN_YEARS * 366 * 86400;
    int64_t day = -1;
    int day_ok = 0;
    for (; t < end; t += 60) { /* every minute */
        if (t / 86400 != day) {
            day = t / 86400;
            time_t d = (time_t)(day * 86400);
            struct tm tm;
            gmtime_r(&d, &tm);
            day_ok = match(DOM, c->dayOfMonth, tm.tm_mday) && match(MON, c->month, tm.tm_mon + 1) &&
                     match(DOW, c->dayOfWeek, tm.tm_wday) && match(YEAR, c->year, tm.tm_year + 1900);
        }
        if (!day_ok) continue;
        long sod = (long)(t % 86400);
        if (!match(HOUR, c->hour, sod / 3600) || !match(MIN, c->minute, sod / 60 % 60)) continue;
        for (long s = 0; s < 60; s++)
            if ((double)(t + s) > from && match(SEC, c->second, s)) return (double)(t + s);
    }
    return -1;
}

static double scan(const itd_schedule *s, double from)
{
    double best = -1;
    for (size_t i = 0; i < s->intervals.n; i++) {
        double ms;
        if (itd_interval_ms(s->intervals.items[i], &ms)) continue;
        int64_t p = (int64_t)(ms / 1000);
        for (int64_t t = (int64_t)floor(from) + 1; t < (int64_t)floor(from) + 1 + p; t++) /* every second */
            if (t % p == 0) {
                if (best < 0 || t < best) best = (double)t;
                break;
            }
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        double t = scan_calendar(s->calendars.items[i], from);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 1000000;
    if (count < NSCHED) count = NSCHED;
    itd_schedule *sched[NSCHED];
    itd_sched *eng[NSCHED];
    for (size_t i = 0; i < NSCHED; i++) {
        itd_error e = ITD_ERROR_INIT;
        sched[i] = itd_decode(&itd_JobSchedule, SCHEDULES[i], strlen(SCHEDULES[i]), NULL, &e);
        if (!sched[i]) { fprintf(stderr, "schedule %zu: %s: %s\n", i, e.path, e.message); return 1; }
        eng[i] = itd_sched_new(sched[i], NULL);
        if (!eng[i]) return 1;
    }
    /* instants 2020-2030, a fixed sequence */
    static double from[NFROM];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < NFROM; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        from[i] = 1577836800.0 + (double)(x % (3650ULL * 86400));
    }

    /* the engine: compiled once per schedule, COUNT next-run computations */
    double sum = 0, t0 = now_s();
    long found = 0;
    for (long i = 0; i < count; i++) {
        double t;
        if (itd_sched_next(eng[i % NSCHED], from[i % NFROM], &t, 1)) { sum += t; found++; }
    }
    double eng_s = now_s() - t0;
    /* compiled for each computation, as the emulator does */
    long ccount = count / 10;
    t0 = now_s();
    for (long i = 0; i < ccount; i++) {
        itd_sched *c = itd_sched_new(sched[i % NSCHED], NULL);
        double t;
        if (c && itd_sched_next(c, from[i % NFROM], &t, 1)) sum += t;
        itd_sched_free(c);
    }
    double comp_s = now_s() - t0;

    /* the brute force on a smaller count, at most ~10 s, same schedules and instants */
    long bcount = 0, mismatch = 0;
    t0 = now_s();
    while (bcount < count && (bcount < 6 * NSCHED || now_s() - t0 < 10.0)) {
        size_t k = (size_t)(bcount % NSCHED);
        double want = scan(sched[k], from[bcount % NFROM]), got = -1;
        if (!itd_sched_next(eng[k], from[bcount % NFROM], &got, 1)) got = -1;
        /* past the scanned years the scan has no answer (it cannot say "never") */
        if (!(want == got || (want < 0 && (got < 0 || got > from[bcount % NFROM] + SCAN_YEARS * 365.0 * 86400))))
            mismatch++;
        bcount++;
    }
    double brute_s = now_s() - t0;

    double er = count / eng_s, cr = ccount / comp_s, br = bcount / brute_s;
    printf("schedule engine:   %ld next-run times in %.3f s = %.0f/s (%.2f us each; %ld found, %ld never)\n", count,
           eng_s, er, 1e6 / er, found, count - found);
    printf("  with a compile per computation (as the emulator): %ld in %.3f s = %.0f/s\n", ccount, comp_s, cr);
    printf("brute-force scan:  %ld next-run times in %.3f s = %.1f/s (minute by minute, up to %d years ahead)\n",
           bcount, brute_s, br, SCAN_YEARS);
    printf("ratio engine/brute: %.0fx; answers compared on the scan's sample: %ld mismatches\n", er / br, mismatch);
    for (size_t i = 0; i < NSCHED; i++) {
        itd_sched_free(eng[i]);
        itd_free(&itd_JobSchedule, sched[i]);
    }
    if (sum < 0) puts("");
    return mismatch ? 1 : 0;
}
