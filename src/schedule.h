/*
 * schedule.h - the schedule engine (schedule.c): when a JobSchedule fires,
 * its input checks, its warnings and its description in plain English.
 */
#ifndef ITD_SCHEDULE_H
#define ITD_SCHEDULE_H

#include <stddef.h>
#include "itd_error.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- schedule */
/* When a JobSchedule fires (schedule.c has the semantics): the union of its
 * intervals (counted from the Unix epoch) and calendars (UTC; absent second,
 * minute, hour = 0, other fields every value), between 1970 and the end of
 * 9999.  Times are Unix seconds (intervals give whole milliseconds). */

typedef struct itd_sched itd_sched;   /* a compiled schedule: read-only, may be shared by threads */

typedef struct itd_sched_opts {
    double min_interval_ms;           /* shorter periods count as this long (0: no floor) */
    double max_interval_ms;           /* longer ones as this long (0: no ceiling) */
} itd_sched_opts;

/* Compile `s` (NULL: a schedule that never fires; `o` may be NULL).  Never
 * fails on data: a value out of range matches nothing, an unreadable one makes
 * its calendar never fire, an unusable interval never fires.  NULL on OOM. */
itd_sched *itd_sched_new(const itd_schedule *s, const itd_sched_opts *o);
void itd_sched_free(itd_sched *c);
/* Up to n fire times strictly after `from`, ascending, into out; returns how
 * many (fewer when the schedule fires no more before year 10000). */
size_t itd_sched_next(const itd_sched *c, double from, double *out, size_t n);
/* Up to n fire times strictly before `from`, descending. */
size_t itd_sched_prev(const itd_sched *c, double from, double *out, size_t n);
/* The fire times t with a <= t <= b, ascending, at most n of them; *more (may
 * be NULL) is set to 1 when there are more than n. */
size_t itd_sched_between(const itd_sched *c, double a, double b, double *out, size_t n, int *more);
/* 1 when the schedule can never fire. */
int itd_sched_never(const itd_sched *c);
/* The schedule's jitter in ms (0 when none): each run may start up to this
 * much after its time; the times above are the nominal ones. */
double itd_sched_jitter_ms(const itd_sched *c);

/* An interval's period in ms (number or duration string); 0, or -1 when it is
 * not a positive one. */
int itd_interval_ms(const itd_interval *iv, double *ms);
/* The value checks of a schedule on input: calendar values in their field's
 * range (second 0-59, minute 0-59, hour 0-23, dayOfMonth 1-31, month 1-12 or
 * a name, dayOfWeek 0-6 or a name, year 1970-9999), whole numbers, non-empty
 * ranges and lists, steps >= 1, readable cron-style strings, intervals of a
 * positive period up to 100 years.  0, or -1 with err (kind VALIDATION, path
 * such as "schedule.calendars[2].hour"; `prefix` defaults to "schedule"). */
int itd_schedule_check(const itd_schedule *s, const char *prefix, itd_error *err);
/* Remarks on a schedule as it is: every value the checks above would refuse,
 * and every calendar that can never fire, with the reason.  0, or -1 on OOM. */
int itd_schedule_warnings(const itd_schedule *s, const char *prefix, itd_warnings *w);
/* The schedule in plain English ("every hour; and at 09:00, 11:00, ... 17:00
 * UTC Monday to Friday"), malloc'd; NULL on OOM. */
char *itd_schedule_describe(const itd_schedule *s);

#ifdef __cplusplus
}
#endif
#endif
