/*
 * sched.c - next run time of a JobSchedule (reference §4.7), and the
 * emulator's checks of schedules on input.  Both are the C core's schedule
 * engine (src/schedule.c, which has the semantics: intervals counted from the
 * Unix epoch, Temporal-style calendars in UTC, cron-style strings read as a
 * cron user means them); this file adds only the emulator's own policies.
 *
 * The engine answers in microseconds whatever the calendar (once a year, 29
 * February, never), so the search may run under the store's lock.
 */
#include <stdio.h>
#include "emu_sched.h"

/* Interval periods below this are refused on input (and clamped in documents
 * loaded from a data dir): `every: "1ms"` would start ~1000 runs a second.
 * The floor is on the schedule clock: --schedule-scale shortens it too, as
 * the user asked; --time-scale does not apply to schedules. */
#define MIN_INTERVAL_MS 1000.0
/* and above this (100 years of 365.25 days) a period is nonsense; the reference sets no bound */
#define MAX_INTERVAL_MS 3155760000000.0

double sched_next(const itd_schedule *s, double now)
{
    if (!s) return -1;
    const itd_sched_opts o = { MIN_INTERVAL_MS, MAX_INTERVAL_MS };
    itd_sched *c = itd_sched_new(s, &o);
    double t;
    size_t n = c ? itd_sched_next(c, now, &t, 1) : 0;
    itd_sched_free(c);
    return n == 1 ? t : -1;
}

/* ------------------------------------------------------------ input checks */

/* Caps on what one schedule may hold; the reference sets none.  They bound
 * the work of one create for a body of the maximum size. */
#define MAX_INTERVALS 100
#define MAX_CALENDARS 100

int sched_validate(const itd_schedule *s, itd_error *err)
{
    char path[ITD_PATH_MAX];
    if (!s) return 0;
    if (s->intervals.n > MAX_INTERVALS)
        return itd_error_set(err, ITD_ERR_VALIDATION, "schedule.intervals", "more than %d intervals", MAX_INTERVALS);
    if (s->calendars.n > MAX_CALENDARS)
        return itd_error_set(err, ITD_ERR_VALIDATION, "schedule.calendars", "more than %d calendars", MAX_CALENDARS);
    for (size_t i = 0; i < s->intervals.n; i++) {
        double ms;
        snprintf(path, sizeof path, "schedule.intervals[%zu].every", i + 1);
        if (itd_interval_ms(s->intervals.items[i], &ms) != 0 || !(ms >= MIN_INTERVAL_MS))
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "the period must be at least 1s (1000 ms) in the emulator");
    }
    /* the value checks (ranges, names, steps, the 100-year ceiling) are the engine's */
    return itd_schedule_check(s, "schedule", err);
}

/* ------------------------------------------------------------ the schedule clock */

static double g_clock_origin;   /* wall time at which the schedule clock started (scale != 1) */
static pthread_once_t g_clock_once = PTHREAD_ONCE_INIT;

static void clock_start(void) { g_clock_origin = emu_now(); }

static double clock_scale(void) { return g_opts.schedule_scale > 0 ? g_opts.schedule_scale : 1; }

double sched_clock_now(void)
{
    double f = clock_scale();
    if (f == 1) return emu_now();
    pthread_once(&g_clock_once, clock_start);
    return g_clock_origin + (emu_now() - g_clock_origin) / f;
}

double sched_clock_wall(double t)
{
    double f = clock_scale();
    if (f == 1) return t;
    pthread_once(&g_clock_once, clock_start);
    return g_clock_origin + (t - g_clock_origin) * f;
}
