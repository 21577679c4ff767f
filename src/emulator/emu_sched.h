/*
 * emu_sched.h - schedules as the emulator reads them (sched.c): the next
 * run time (the core's engine, src/schedule.c), the checks on input, and the
 * schedule clock the scheduler fires on.  Not named sched.h: that would hide
 * the system's <sched.h> from a build with -I src/emulator.
 */
#ifndef EMU_SCHED_H
#define EMU_SCHED_H

#include "emu.h"
#include "schedule.h"

/* Next run strictly after `now` (schedule-clock seconds) of a schedule, or -1. */
double sched_next(const itd_schedule *s, double now);
/* The emulator's checks of a schedule on input (value ranges, interval floor,
 * sizes); 0, or -1 with err's path naming the field ("schedule.calendars[1].second"). */
int sched_validate(const itd_schedule *s, itd_error *err);

/* The schedule clock: the wall clock with --schedule-scale 1 (the default);
 * with F it runs 1/F times as fast from the emulator's start, so scheduled
 * runs come F times as far apart.  next_run_time and last_run_time are read
 * on it. */
double sched_clock_now(void);
/* The wall-clock time (Unix seconds, as emu_now) at which the schedule clock shows t. */
double sched_clock_wall(double t);

#endif
