/*
 * codec_internal.h - private to the core (not installed): helpers of the
 * value formats shared by codec.c, protocol.c and schedule.c.
 */
#ifndef ITD_CODEC_INTERNAL_H
#define ITD_CODEC_INTERNAL_H

#include <stdint.h>
#include "codec.h"

/* Days from 1970-01-01 to a proleptic Gregorian date (shared by the date parsers). */
int64_t itd_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Its inverse: the date of a day number. */
void itd_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
int itd_is_slug(const char *s);


#endif
