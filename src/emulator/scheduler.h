/*
 * scheduler.h - the thread that starts SCHEDULED runs when a job's next run
 * time comes (scheduler.c).
 */
#ifndef EMU_SCHEDULER_H
#define EMU_SCHEDULER_H

#include "emu.h"

int scheduler_start(void);
void scheduler_stop(void);

#endif
