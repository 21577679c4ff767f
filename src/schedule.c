/*
 * schedule.c - the schedule engine: when a JobSchedule (reference §4.7, §8)
 * fires.  No Lua, no emulator: the emulator's scheduler and the Lua binding
 * both call it.
 *
 * Semantics (the reference leaves most of them to the server; where it
 * infers, so do we, and say so):
 *  - A schedule fires at the union of its intervals' and calendars' times;
 *    two sources firing at the same instant give one fire time.
 *  - Interval: every `every` ms counted from the Unix epoch (§4.7: "Periods
 *    are counted from the Unix epoch"; the reference gives no offset).  The
 *    period is taken in whole milliseconds (a fraction is rounded; the API's
 *    newest form types it as an integer, §8).
 *  - Calendar (Temporal's semantics, inferred by the reference): every field
 *    must match -- dayOfMonth AND dayOfWeek, not cron's OR; an absent second,
 *    minute or hour means 0, an absent dayOfMonth, month, dayOfWeek or year
 *    means every value; all in UTC.  dayOfWeek numbers are 0-6 with Sunday
 *    = 0 and months 1-12 (both inferred in §4.7).  A range is start..end
 *    inclusive by step (end absent = start, step absent or < 1 = 1; §4.7
 *    infers inclusive).  Besides the typed forms we read the cron-style
 *    strings v0.3.12 lets through (§5.2: "MON-FRI", "1,15", "*\/5", "JAN",
 *    "0") as a cron user would mean them; "*\/n" counts from the field's
 *    first value (1 for dayOfMonth and month, else 0).
 *  - A value outside its field's range matches nothing (so `hour = 25` only
 *    drops that value, and a calendar whose hour matches nothing never
 *    fires); an unreadable value ("FUNDAY") makes its calendar never fire.
 *    itd_schedule_check refuses both on input; itd_schedule_warnings says why
 *    a calendar never fires.
 *  - `jitter` (§8, newest API): by analogy with Temporal (inferred), each
 *    run starts up to that much after its time.  The engine returns the
 *    nominal times and reports the jitter beside them.
 *  - Times are those from 1970-01-01 up to the end of year 9999 (what a
 *    date-time of the API can name from the epoch on).
 *
 * Method: a calendar is compiled into bit masks -- seconds, minutes, hours,
 * and for each (month, leap year, weekday of the 1st) the days that match
 * dayOfMonth and dayOfWeek together, then for each kind of year (leap, weekday
 * of 1 January) the months holding such a day, then one bit per year
 * 1970-9999 for the years holding one.  A search is field by field, as cron
 * libraries do: the next usable year (a word scan of that bit set), month,
 * day, hour, minute, second, each a mask lookup.  Every year it stops at has
 * a matching day by construction, so a search costs a few dozen operations
 * whether the calendar fires every second, once a year, on 29 February or
 * never (an empty year set, known at compile time).
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "schedule.h"
#include "buf.h"
#include "codec.h"
#include "codec_internal.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR, F__N };

#define YEAR_LO 1970
#define YEAR_HI 9999
#define NYEARS (YEAR_HI - YEAR_LO + 1)
#define YEAR_WORDS ((NYEARS + 63) / 64)
#define T_END_S 253402300800LL /* 10000-01-01T00:00:00Z */
#define T_END_MS (T_END_S * 1000)
#define NONE (-1LL)
#define MAX_PERIOD_MS 3155760000000.0 /* 100 years of 365.25 days */

static const char *const field_names[F__N] = { "second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek", "year" };
static const long field_lo[F__N] = { 0, 0, 0, 1, 1, 0, YEAR_LO };
static const long field_hi[F__N] = { 59, 59, 23, 31, 12, 6, YEAR_HI };

static const char *const dow_names[] = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" };
static const char *const month_names[] = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY",
                                           "AUGUST", "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER" };

/* ------------------------------------------------------------ field values */

/* A single value (digits, or a full or 3-letter name, any case); 0 or -1. */
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
        if (!(ns->num >= -1e9 && ns->num <= 1e9)) return -1;
        *out = (long)ns->num;
        return 0;
    }
    if (ns->kind == ITD_NS_STRING && ns->str) return value_of(field, ns->str, strlen(ns->str), out);
    return -1;
}

/* A value set: bit (x - field_lo) for each matching x. */
typedef struct vset { uint64_t w[YEAR_WORDS]; } vset;

static void vset_range(vset *s, int field, long a, long b, long step)
{
    long lo = field_lo[field], hi = field_hi[field];
    if (step < 1) step = 1;
    long x = a < lo ? a + (lo - a + step - 1) / step * step : a;
    if (b > hi) b = hi;
    if (step == 1 && x <= b) { /* a run: whole words at a time (a year range spans thousands) */
        long i = x - lo, j = b - lo;
        for (long w = i >> 6; w <= j >> 6; w++) {
            uint64_t m = ~0ULL;
            if (w == i >> 6) m &= ~0ULL << (i & 63);
            if (w == j >> 6 && (j & 63) < 63) m &= (2ULL << (j & 63)) - 1;
            s->w[w] |= m;
        }
        return;
    }
    for (; x <= b; x += step) s->w[(x - lo) >> 6] |= 1ULL << ((x - lo) & 63);
}

/* One comma-separated part of a cron-style string: "*", "*\/n", "a", "a-b", "a/n", "a-b/n". */
static int mark_cron_part(int field, const char *s, size_t n, vset *set)
{
    long step = 1;
    const char *slash = memchr(s, '/', n);
    size_t head = slash ? (size_t)(slash - s) : n;
    if (slash && value_of(F_SEC, slash + 1, n - head - 1, &step)) return -1;
    if (step <= 0) return -1;
    if (head == 1 && s[0] == '*') {
        vset_range(set, field, field == F_DOM || field == F_MONTH ? 1 : 0, field_hi[field], step);
        return 0;
    }
    const char *dash = memchr(s, '-', head);
    long a, b;
    if (dash) {
        if (value_of(field, s, (size_t)(dash - s), &a) || value_of(field, dash + 1, head - (size_t)(dash - s) - 1, &b))
            return -1;
    } else {
        if (value_of(field, s, head, &a)) return -1;
        b = slash ? 1000000 : a;
    }
    vset_range(set, field, a, b, step);
    return 0;
}

static int mark_string(int field, const char *s, vset *set)
{
    if (strcmp(s, "*") == 0) {
        vset_range(set, field, field_lo[field], field_hi[field], 1);
        return 0;
    }
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (mark_cron_part(field, p, n, set)) return -1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* Marks the values cv matches; 0, or -1 when a value is unreadable. */
static int mark(int field, const itd_calvalue *cv, vset *set)
{
    switch (cv->kind) {
    case ITD_CV_NUMBER:
        if (cv->num == floor(cv->num) && cv->num >= (double)field_lo[field] && cv->num <= (double)field_hi[field])
            vset_range(set, field, (long)cv->num, (long)cv->num, 1);
        return 0;
    case ITD_CV_STRING:
        return cv->str ? mark_string(field, cv->str, set) : -1;
    case ITD_CV_RANGE: {
        const itd_calrange *r = cv->range;
        long a, b;
        if (!r || numstr_value(field, &r->start, &a)) return -1;
        if (r->end.kind == ITD_NS_ABSENT) b = a;
        else if (numstr_value(field, &r->end, &b)) return -1;
        long step = r->has_step && r->step >= 1 ? (r->step < 1e6 ? (long)r->step : 1000000) : 1;
        vset_range(set, field, a, b, step);
        return 0;
    }
    case ITD_CV_LIST:
        for (size_t i = 0; i < cv->list.n; i++)
            if (!cv->list.items[i] || mark(field, cv->list.items[i], set)) return -1;
        return 0;
    }
    return -1;
}

/* The set of one field (absent: 0 for second/minute/hour, else every value);
 * -1 when unreadable. */
static int field_set(int field, const itd_calvalue *cv, vset *set)
{
    memset(set, 0, (size_t)(((field_hi[field] - field_lo[field]) >> 6) + 1) * sizeof set->w[0]);
    if (!cv) {
        if (field <= F_HOUR) set->w[0] = 1;
        else vset_range(set, field, field_lo[field], field_hi[field], 1);
        return 0;
    }
    return mark(field, cv, set);
}

/* ----------------------------------------------------------- time helpers */

static int is_leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int dim(int leap, int m)
{
    static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap ? 29 : d[m - 1];
}

/* days before month m (1-12) */
static const int cum_days[2][13] = {
    { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365 },
    { 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366 },
};

static void civil_from_days(int64_t z, long *y, int *m, int *d)
{
    int64_t yy;
    unsigned mm, dd;
    itd_civil_from_days(z, &yy, &mm, &dd);
    *y = (long)yy;
    *m = (int)mm;
    *d = (int)dd;
}

/* A second since the epoch (>= 0) as date and time of day. */
static void split_time(int64_t t, long *Y, int *M, int *D, int *h, int *mi, int *s)
{
    civil_from_days(t / 86400, Y, M, D);
    int sod = (int)(t % 86400);
    *h = sod / 3600;
    *mi = sod / 60 % 60;
    *s = sod % 60;
}

static int jan1_wday(long y) { return (int)((itd_days_from_civil(y, 1, 1) % 7 + 11) % 7); } /* 1970-01-01: Thursday */

/* lowest set bit >= i, or -1 */
static int bit_next(uint64_t m, int i)
{
    if (i < 0) i = 0;
    if (i > 63) return -1;
    m >>= i;
    return m ? i + __builtin_ctzll(m) : -1;
}

/* highest set bit <= i, or -1 */
static int bit_prev(uint64_t m, int i)
{
    if (i < 0) return -1;
    if (i < 63) m &= (2ULL << i) - 1;
    return m ? 63 - __builtin_clzll(m) : -1;
}

/* ------------------------------------------------------------- calendars */

typedef struct ccal {
    uint64_t sec, min, hour;     /* bit x */
    uint32_t day[12][2][7];      /* [month-1][leap][weekday of the 1st]: bit d-1 for matching days */
    uint16_t mon[2][7];          /* [leap][weekday of 1 January]: bit m-1 for months holding one */
    uint64_t year[YEAR_WORDS];   /* bit y-1970 for years holding one */
    int never;                   /* no second of 1970-9999 matches */
    int unreadable;              /* a value could not be read (never fires) */
    uint64_t fs[F_YEAR];         /* the value sets of the other fields (bit x - field_lo), for describe */
    vset years;                  /* the year field's own set */
} ccal;

static int cal_has(const ccal *c, int f, long x)
{
    if (x < field_lo[f] || x > field_hi[f]) return 0;
    long i = x - field_lo[f];
    return (int)((f == F_YEAR ? c->years.w[i >> 6] : c->fs[f]) >> (i & 63) & 1);
}

static int year_ok(const ccal *c, long y)
{
    if (y < YEAR_LO || y > YEAR_HI) return 0;
    long i = y - YEAR_LO;
    return (int)(c->year[i >> 6] >> (i & 63) & 1);
}

static long year_next(const ccal *c, long y)
{
    if (y < YEAR_LO) y = YEAR_LO;
    if (y > YEAR_HI) return -1;
    long i = y - YEAR_LO;
    for (long w = i >> 6; w < YEAR_WORDS; w++) {
        uint64_t m = c->year[w];
        if (w == i >> 6) m &= ~0ULL << (i & 63);
        if (m) return YEAR_LO + w * 64 + __builtin_ctzll(m);
    }
    return -1;
}

static long year_prev(const ccal *c, long y)
{
    if (y > YEAR_HI) y = YEAR_HI;
    if (y < YEAR_LO) return -1;
    long i = y - YEAR_LO;
    for (long w = i >> 6; w >= 0; w--) {
        uint64_t m = c->year[w];
        if (w == i >> 6 && (i & 63) < 63) m &= (2ULL << (i & 63)) - 1;
        if (m) return YEAR_LO + w * 64 + 63 - __builtin_clzll(m);
    }
    return -1;
}

static void ccal_compile(ccal *c, const itd_calendar *cal)
{
    const itd_calvalue *v[F__N] = { cal->second, cal->minute, cal->hour, cal->dayOfMonth, cal->month,
                                    cal->dayOfWeek, cal->year };
    memset(c, 0, sizeof *c);
    for (int f = 0; f < F_YEAR; f++) {
        vset tmp;
        if (field_set(f, v[f], &tmp)) c->unreadable = 1;
        c->fs[f] = tmp.w[0];
    }
    if (field_set(F_YEAR, v[F_YEAR], &c->years)) c->unreadable = 1;
    if (c->unreadable) { c->never = 1; return; }
    c->sec = c->fs[F_SEC];
    c->min = c->fs[F_MIN];
    c->hour = c->fs[F_HOUR];
    uint64_t dom = c->fs[F_DOM], mon = c->fs[F_MONTH], dow = c->fs[F_DOW];
    if (!c->sec || !c->min || !c->hour) { c->never = 1; return; }
    /* the days of a month whose 1st is weekday w1 that fall on a matching weekday */
    uint32_t wpat[7];
    for (int w1 = 0; w1 < 7; w1++) {
        wpat[w1] = 0;
        for (int d = 1; d <= 31; d++)
            if (dow >> ((w1 + d - 1) % 7) & 1) wpat[w1] |= 1u << (d - 1);
    }
    for (int m = 1; m <= 12; m++)
        for (int lp = 0; lp < 2; lp++) {
            uint32_t base = (mon >> (m - 1) & 1) ? (uint32_t)dom & (uint32_t)((1ULL << dim(lp, m)) - 1) : 0;
            for (int w1 = 0; w1 < 7; w1++) c->day[m - 1][lp][w1] = base & wpat[w1];
        }
    int ok[2][7], all_ok = 1;
    for (int lp = 0; lp < 2; lp++)
        for (int j1 = 0; j1 < 7; j1++) {
            uint16_t bits = 0;
            for (int m = 1; m <= 12; m++)
                if (c->day[m - 1][lp][(j1 + cum_days[lp][m - 1]) % 7]) bits |= (uint16_t)(1u << (m - 1));
            c->mon[lp][j1] = bits;
            ok[lp][j1] = bits != 0;
            all_ok &= ok[lp][j1];
        }
    /* The Gregorian calendar repeats every 400 years (146097 days, a whole
     * number of weeks), so the years holding a match are the year set ANDed
     * with a 400-year pattern, taken 64 years at a time. */
    uint64_t cyc[(400 + 64 + 63) / 64 + 1] = { 0 };
    int j1 = jan1_wday(YEAR_LO);
    for (long k = 0; k < 400 + 64; k++) {
        long y = YEAR_LO + k;
        int lp = is_leap(y);
        if (all_ok || ok[lp][j1]) cyc[k >> 6] |= 1ULL << (k & 63);
        j1 = (j1 + 365 + lp) % 7;
    }
    int any = 0;
    for (long w = 0; w < YEAR_WORDS; w++) {
        long o = (w * 64) % 400;
        uint64_t pat = cyc[o >> 6] >> (o & 63);
        if (o & 63) pat |= cyc[(o >> 6) + 1] << (64 - (o & 63));
        uint64_t bits = c->years.w[w] & pat;
        if (w == YEAR_WORDS - 1 && NYEARS % 64) bits &= (1ULL << (NYEARS % 64)) - 1;
        c->year[w] = bits;
        any |= bits != 0;
    }
    c->never = !any;
}

static int64_t epoch_of(long y, int m, int d, int h, int mi, int s)
{
    return itd_days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
}

/* The first fire second >= t, or NONE.  Each step either matches its field
 * or moves the field above it on (the lower ones reset); the year bits make
 * every year stopped at hold a match, so the loop runs a handful of times. */
static int64_t ccal_next(const ccal *c, int64_t t)
{
    if (c->never || t >= T_END_S) return NONE;
    if (t < 0) t = 0;
    long Y;
    int M, D, h, mi, s;
    split_time(t, &Y, &M, &D, &h, &mi, &s);
    for (int guard = 0; guard < 1000; guard++) {
        if (!year_ok(c, Y)) {
            Y = year_next(c, Y + 1);
            if (Y < 0) return NONE;
            M = 1, D = 1, h = mi = s = 0;
        }
        int lp = is_leap(Y), j1 = jan1_wday(Y);
        int M2 = bit_next(c->mon[lp][j1], M - 1) + 1;
        if (M2 == 0) { Y++; M = 1, D = 1, h = mi = s = 0; continue; }
        if (M2 != M) { M = M2; D = 1, h = mi = s = 0; }
        int D2 = bit_next(c->day[M - 1][lp][(j1 + cum_days[lp][M - 1]) % 7], D - 1) + 1;
        if (D2 == 0) { M++; D = 1, h = mi = s = 0; continue; }
        if (D2 != D) { D = D2; h = mi = s = 0; }
        int h2 = bit_next(c->hour, h);
        if (h2 < 0) { D++; h = mi = s = 0; continue; }
        if (h2 != h) { h = h2; mi = s = 0; }
        int m2 = bit_next(c->min, mi);
        if (m2 < 0) { h++; mi = s = 0; continue; }
        if (m2 != mi) { mi = m2; s = 0; }
        int s2 = bit_next(c->sec, s);
        if (s2 < 0) { mi++; s = 0; continue; }
        return epoch_of(Y, M, D, h, mi, s2);
    }
    return NONE; /* not reached: the loop above ends within a few rounds */
}

/* The last fire second <= t, or NONE. */
static int64_t ccal_prev(const ccal *c, int64_t t)
{
    if (c->never || t < 0) return NONE;
    if (t >= T_END_S) t = T_END_S - 1;
    long Y;
    int M, D, h, mi, s;
    split_time(t, &Y, &M, &D, &h, &mi, &s);
    for (int guard = 0; guard < 1000; guard++) {
        if (!year_ok(c, Y)) {
            Y = year_prev(c, Y - 1);
            if (Y < 0) return NONE;
            M = 12, D = 31, h = 23, mi = 59, s = 59;
        }
        int lp = is_leap(Y), j1 = jan1_wday(Y);
        int M2 = bit_prev(c->mon[lp][j1], M - 1) + 1;
        if (M2 == 0) { Y--; M = 12, D = 31, h = 23, mi = 59, s = 59; continue; }
        if (M2 != M) { M = M2; D = 31, h = 23, mi = 59, s = 59; }
        int D2 = bit_prev(c->day[M - 1][lp][(j1 + cum_days[lp][M - 1]) % 7], D - 1) + 1;
        if (D2 == 0) { M--; D = 31, h = 23, mi = 59, s = 59; continue; }
        if (D2 != D) { D = D2; h = 23, mi = 59, s = 59; }
        int h2 = bit_prev(c->hour, h);
        if (h2 < 0) { D--; h = 23, mi = 59, s = 59; continue; }
        if (h2 != h) { h = h2; mi = 59, s = 59; }
        int m2 = bit_prev(c->min, mi);
        if (m2 < 0) { h--; mi = 59, s = 59; continue; }
        if (m2 != mi) { mi = m2; s = 59; }
        int s2 = bit_prev(c->sec, s);
        if (s2 < 0) { mi--; s = 59; continue; }
        return epoch_of(Y, M, D, h, mi, s2);
    }
    return NONE;
}

/* ---------------------------------------------------------- the schedule */

struct itd_sched {
    size_t nint, ncal;
    int64_t *period;   /* ms, one per usable interval */
    ccal *cal;
    double jitter_ms;  /* 0 when none */
};

int itd_interval_ms(const itd_interval *iv, double *ms)
{
    double v = -1;
    if (!iv) return -1;
    if (iv->every.kind == ITD_NS_NUMBER) v = iv->every.num;
    else if (iv->every.kind != ITD_NS_STRING || !iv->every.str || itd_duration_ms(iv->every.str, &v) != 0) return -1;
    if (!(v > 0) || !isfinite(v)) return -1;
    if (ms) *ms = v;
    return 0;
}

itd_sched *itd_sched_new(const itd_schedule *s, const itd_sched_opts *o)
{
    itd_sched *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (!s) return c;
    if (s->intervals.n && !(c->period = calloc(s->intervals.n, sizeof *c->period))) goto oom;
    if (s->calendars.n && !(c->cal = malloc(s->calendars.n * sizeof *c->cal))) goto oom;
    for (size_t i = 0; i < s->intervals.n; i++) {
        double ms;
        if (itd_interval_ms(s->intervals.items[i], &ms)) continue; /* unusable: never fires */
        if (o && o->min_interval_ms > 0 && ms < o->min_interval_ms) ms = o->min_interval_ms;
        if (o && o->max_interval_ms > 0 && ms > o->max_interval_ms) ms = o->max_interval_ms;
        if (ms > 1e15) ms = 1e15; /* beyond year 10000 anyway */
        int64_t p = (int64_t)llround(ms);
        c->period[c->nint++] = p < 1 ? 1 : p;
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        if (!s->calendars.items[i]) continue;
        ccal_compile(&c->cal[c->ncal], s->calendars.items[i]);
        if (!c->cal[c->ncal].never) c->ncal++; /* a calendar that never fires adds nothing */
    }
    double j;
    if (s->jitter.kind == ITD_NS_NUMBER && s->jitter.num > 0) c->jitter_ms = s->jitter.num;
    else if (s->jitter.kind == ITD_NS_STRING && s->jitter.str && itd_duration_ms(s->jitter.str, &j) == 0 && j > 0)
        c->jitter_ms = j;
    return c;
oom:
    itd_sched_free(c);
    return NULL;
}

void itd_sched_free(itd_sched *c)
{
    if (!c) return;
    free(c->period);
    free(c->cal);
    free(c);
}

int itd_sched_never(const itd_sched *c) { return !c || (c->nint == 0 && c->ncal == 0); }
double itd_sched_jitter_ms(const itd_sched *c) { return c ? c->jitter_ms : 0; }

static int64_t fdiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* source i (intervals first): first fire ms >= t, or NONE */
static int64_t src_next(const itd_sched *c, size_t i, int64_t t)
{
    if (t < 0) t = 0;
    if (t >= T_END_MS) return NONE;
    if (i < c->nint) {
        int64_t p = c->period[i], r = -fdiv(-t, p) * p; /* ceil(t / p) * p */
        return r < T_END_MS ? r : NONE;
    }
    int64_t s = ccal_next(&c->cal[i - c->nint], -fdiv(-t, 1000));
    return s == NONE ? NONE : s * 1000;
}

/* source i: last fire ms <= t, or NONE */
static int64_t src_prev(const itd_sched *c, size_t i, int64_t t)
{
    if (t < 0) return NONE;
    if (t >= T_END_MS) t = T_END_MS - 1;
    if (i < c->nint) return fdiv(t, c->period[i]) * c->period[i];
    int64_t s = ccal_prev(&c->cal[i - c->nint], fdiv(t, 1000));
    return s == NONE ? NONE : s * 1000;
}

/* Up to n fire times >= t (dir 1) or <= t (dir -1), stopping past `end`
 * (dir 1: > end; dir -1: < end), into out (ms).  The sources are merged: a
 * small table of each one's next time when they are few, else recomputed. */
#define MERGE_MAX 64
static size_t walk(const itd_sched *c, int dir, int64_t t, int64_t end, int64_t *out, size_t n)
{
    size_t ns = c->nint + c->ncal, k = 0;
    int64_t cur[MERGE_MAX];
    int table = ns <= MERGE_MAX;
    if (table)
        for (size_t i = 0; i < ns; i++) cur[i] = dir > 0 ? src_next(c, i, t) : src_prev(c, i, t);
    while (k < n) {
        int64_t best = NONE;
        for (size_t i = 0; i < ns; i++) {
            int64_t x = table ? cur[i] : dir > 0 ? src_next(c, i, t) : src_prev(c, i, t);
            if (x != NONE && (best == NONE || (dir > 0 ? x < best : x > best))) best = x;
        }
        if (best == NONE || (dir > 0 ? best > end : best < end)) break;
        out[k++] = best;
        t = dir > 0 ? best + 1 : best - 1;
        if (table)
            for (size_t i = 0; i < ns; i++)
                if (cur[i] == best) cur[i] = dir > 0 ? src_next(c, i, t) : src_prev(c, i, t);
    }
    return k;
}

#define CHUNK 256

static size_t walk_out(const itd_sched *c, int dir, int64_t t, int64_t end, double *out, size_t n)
{
    int64_t buf[CHUNK];
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < CHUNK ? n - done : CHUNK;
        size_t got = walk(c, dir, t, end, buf, want);
        for (size_t i = 0; i < got; i++) out[done + i] = (double)buf[i] / 1000.0;
        done += got;
        if (got < want) break;
        t = dir > 0 ? buf[got - 1] + 1 : buf[got - 1] - 1;
    }
    return done;
}

/* instants as ms: next after `from` starts at floor(from)+1 ms, before it at ceil(from)-1 */
static int64_t ms_floor(double t)
{
    if (!(t > -1e15)) return -1000000000000000LL;
    if (t > 1e15) return 1000000000000000000LL;
    return (int64_t)floor(t * 1000.0);
}

static int64_t ms_ceil(double t)
{
    if (!(t > -1e15)) return -1000000000000000LL;
    if (t > 1e15) return 1000000000000000000LL;
    return (int64_t)ceil(t * 1000.0);
}

size_t itd_sched_next(const itd_sched *c, double from, double *out, size_t n)
{
    if (!c || !out || from != from) return 0;
    return walk_out(c, 1, ms_floor(from) + 1, T_END_MS, out, n);
}

size_t itd_sched_prev(const itd_sched *c, double from, double *out, size_t n)
{
    if (!c || !out || from != from) return 0;
    return walk_out(c, -1, ms_ceil(from) - 1, 0, out, n);
}

size_t itd_sched_between(const itd_sched *c, double a, double b, double *out, size_t n, int *more)
{
    if (more) *more = 0;
    if (!c || a != a || b != b) return 0;
    int64_t t = ms_ceil(a), end = ms_floor(b);
    if (t > end) return 0;
    size_t k = n ? walk_out(c, 1, t, end, out, n) : 0;
    if (more && k == n) {
        int64_t one;
        int64_t from = k ? (int64_t)llround(out[k - 1] * 1000.0) + 1 : t;
        *more = walk(c, 1, from, end, &one, 1) == 1;
    }
    return k;
}

/* ------------------------------------------------------------ input checks */

static int check_value(int f, const char *s, size_t n, const char *path, itd_error *err, long *out)
{
    long v;
    if (value_of(f, s, n, &v) != 0) {
        if (f == F_DOW || f == F_MONTH)
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "\"%.*s\" is not a number or a %s name", (int)(n > 40 ? 40 : n),
                                 s, f == F_DOW ? "weekday" : "month");
        return itd_error_set(err, ITD_ERR_VALIDATION, path, "\"%.*s\" is not a number", (int)(n > 40 ? 40 : n), s);
    }
    if (v < field_lo[f] || v > field_hi[f])
        return itd_error_set(err, ITD_ERR_VALIDATION, path, "%ld is out of range %ld-%ld", v, field_lo[f], field_hi[f]);
    *out = v;
    return 0;
}

#define MAX_STRING 256

/* A cron-style string: comma-separated "*", "*\/n", "a", "a-b", "a/n", "a-b/n". */
static int check_string(int f, const char *s, const char *path, itd_error *err)
{
    size_t len = strlen(s);
    if (len == 0) return itd_error_set(err, ITD_ERR_VALIDATION, path, "must not be empty");
    if (len > MAX_STRING) return itd_error_set(err, ITD_ERR_VALIDATION, path, "longer than %d characters", MAX_STRING);
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
            if (check_value(f, p, dash ? (size_t)(dash - p) : head, path, err, &a)) return -1;
            if (dash) {
                if (check_value(f, dash + 1, head - (size_t)(dash - p) - 1, path, err, &b)) return -1;
                if (b < a) return itd_error_set(err, ITD_ERR_VALIDATION, path, "the range %ld-%ld is empty", a, b);
            }
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

static int check_numstr(int f, const itd_numstr *ns, const char *path, itd_error *err, long *out)
{
    if (ns->kind == ITD_NS_NUMBER) {
        if (ns->num != floor(ns->num)) return itd_error_set(err, ITD_ERR_VALIDATION, path, "must be a whole number");
        if (!(ns->num >= (double)field_lo[f] && ns->num <= (double)field_hi[f]))
            return itd_error_set(err, ITD_ERR_VALIDATION, path, "%g is out of range %ld-%ld", ns->num, field_lo[f], field_hi[f]);
        *out = (long)ns->num;
        return 0;
    }
    if (ns->kind == ITD_NS_STRING && ns->str) return check_value(f, ns->str, strlen(ns->str), path, err, out);
    return itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
}

#define MAX_LIST 100

static int check_calvalue(int f, const itd_calvalue *cv, char *path, size_t cap, itd_error *err)
{
    size_t plen = strlen(path);
    long a, b;
    if (!cv) return itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
    switch (cv->kind) {
    case ITD_CV_NUMBER: {
        itd_numstr ns = { ITD_NS_NUMBER, cv->num, NULL };
        return check_numstr(f, &ns, path, err, &a);
    }
    case ITD_CV_STRING:
        return cv->str ? check_string(f, cv->str, path, err) : itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
    case ITD_CV_RANGE: {
        const itd_calrange *r = cv->range;
        if (!r) return itd_error_set(err, ITD_ERR_VALIDATION, path, "is required");
        snprintf(path + plen, cap - plen, ".start");
        if (check_numstr(f, &r->start, path, err, &a)) return -1;
        b = a;
        if (r->end.kind != ITD_NS_ABSENT) {
            snprintf(path + plen, cap - plen, ".end");
            if (check_numstr(f, &r->end, path, err, &b)) return -1;
            if (b < a) {
                path[plen] = 0;
                return itd_error_set(err, ITD_ERR_VALIDATION, path, "the range %ld-%ld is empty", a, b);
            }
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
        if (cv->list.n > MAX_LIST) return itd_error_set(err, ITD_ERR_VALIDATION, path, "more than %d items", MAX_LIST);
        for (size_t i = 0; i < cv->list.n; i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i + 1);
            if (check_calvalue(f, cv->list.items[i], path, cap, err)) return -1;
        }
        path[plen] = 0;
        return 0;
    }
    return itd_error_set(err, ITD_ERR_VALIDATION, path, "is not a calendar value");
}

static const itd_calvalue *cal_field(const itd_calendar *c, int f)
{
    switch (f) {
    case F_SEC: return c->second;
    case F_MIN: return c->minute;
    case F_HOUR: return c->hour;
    case F_DOM: return c->dayOfMonth;
    case F_MONTH: return c->month;
    case F_DOW: return c->dayOfWeek;
    default: return c->year;
    }
}

static int check_interval(const itd_interval *iv, const char *path, itd_error *err)
{
    double ms;
    if (itd_interval_ms(iv, &ms))
        return itd_error_set(err, ITD_ERR_VALIDATION, path, "must be a positive number of milliseconds or a duration");
    if (ms > MAX_PERIOD_MS) return itd_error_set(err, ITD_ERR_VALIDATION, path, "the period must be at most 100 years");
    return 0;
}

int itd_schedule_check(const itd_schedule *s, const char *prefix, itd_error *err)
{
    char path[ITD_PATH_MAX];
    if (!s) return 0;
    if (!prefix) prefix = "schedule";
    for (size_t i = 0; i < s->intervals.n; i++) {
        snprintf(path, sizeof path, "%s.intervals[%zu].every", prefix, i + 1);
        if (check_interval(s->intervals.items[i], path, err)) return -1;
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        const itd_calendar *c = s->calendars.items[i];
        if (!c) continue;
        static const int order[F__N] = { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR };
        for (int k = 0; k < F__N; k++) {
            const itd_calvalue *v = cal_field(c, order[k]);
            if (!v) continue;
            snprintf(path, sizeof path, "%s.calendars[%zu].%s", prefix, i + 1, field_names[order[k]]);
            if (check_calvalue(order[k], v, path, sizeof path, err)) return -1;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- warnings */

static int warn_add(itd_warnings *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int warn_add(itd_warnings *w, const char *fmt, ...)
{
    char buf[ITD_PATH_MAX + ITD_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return itd_warnings_add(w, buf);
}

static size_t cal_values(const ccal *c, int f, long *out, size_t cap);

int itd_schedule_warnings(const itd_schedule *s, const char *prefix, itd_warnings *w)
{
    char path[ITD_PATH_MAX];
    if (!s || !w) return 0;
    if (!prefix) prefix = "schedule";
    for (size_t i = 0; i < s->intervals.n; i++) {
        itd_error e = ITD_ERROR_INIT;
        double ms;
        snprintf(path, sizeof path, "%s.intervals[%zu].every", prefix, i + 1);
        if (check_interval(s->intervals.items[i], path, &e)) {
            int rc = warn_add(w, "%s: %s%s", e.path, e.message,
                              itd_interval_ms(s->intervals.items[i], NULL) ? "; this interval never fires" : "");
            itd_error_clear(&e);
            if (rc) return -1;
        } else if (itd_interval_ms(s->intervals.items[i], &ms) == 0 && ms != floor(ms)) {
            if (warn_add(w, "%s: %g ms is not a whole number of milliseconds; it is rounded to %.0f", path, ms,
                         ms < 1 ? 1.0 : (double)llround(ms)))
                return -1;
        }
    }
    for (size_t i = 0; i < s->calendars.n; i++) {
        const itd_calendar *cal = s->calendars.items[i];
        if (!cal) continue;
        for (int f = 0; f < F__N; f++) {
            const itd_calvalue *v = cal_field(cal, f);
            if (!v) continue;
            itd_error e = ITD_ERROR_INIT;
            snprintf(path, sizeof path, "%s.calendars[%zu].%s", prefix, i + 1, field_names[f]);
            if (check_calvalue(f, v, path, sizeof path, &e)) {
                int rc = warn_add(w, "%s: %s", e.path, e.message);
                itd_error_clear(&e);
                if (rc) return -1;
            }
        }
        ccal *c = malloc(sizeof *c);
        if (!c) return -1;
        ccal_compile(c, cal);
        int rc = 0;
        if (c->never) {
            const char *why = "no date from 1970 to 9999 matches its dayOfMonth, month, dayOfWeek and year together";
            char buf[128];
            if (c->unreadable) why = "a value of it cannot be read";
            else
                for (int f = 0; f < F__N; f++)
                    if (cal_values(c, f, NULL, 0) == 0) {
                        snprintf(buf, sizeof buf, "its %s matches no value %ld-%ld", field_names[f], field_lo[f], field_hi[f]);
                        why = buf;
                        break;
                    }
            rc = warn_add(w, "%s.calendars[%zu]: this calendar never fires (%s)", prefix, i + 1, why);
        }
        free(c);
        if (rc) return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- describe */

typedef itd_buf sbuf;
#define sb_add (void)itd_buf_printf

/* values of a field, ascending; returns how many (at most cap stored) */
static size_t cal_values(const ccal *c, int f, long *out, size_t cap)
{
    size_t n = 0;
    for (long x = field_lo[f]; x <= field_hi[f]; x++)
        if (cal_has(c, f, x)) {
            if (n < cap) out[n] = x;
            n++;
        }
    return n;
}

static void name_of(char *buf, size_t len, int f, long x)
{
    if (f == F_DOW || f == F_MONTH) {
        const char *n = f == F_DOW ? dow_names[x] : month_names[x - 1];
        snprintf(buf, len, "%c", n[0]);
        for (size_t i = 1; n[i] && i + 1 < len; i++) buf[i] = (char)tolower((unsigned char)n[i]), buf[i + 1] = 0;
    } else {
        snprintf(buf, len, "%ld", x);
    }
}

/* "a, b and c"; runs of 3 or more as "a to c"; an evenly spaced list of 5
 * or more as "a, b, ... z". */
static void list_values(sbuf *b, int f, const long *v, size_t n, const char *and_word)
{
    char x[24], y[24];
    int even = n >= 5 && v[1] - v[0] > 1;
    for (size_t i = 2; even && i < n; i++) even = v[i] - v[i - 1] == v[1] - v[0];
    if (even) {
        name_of(x, sizeof x, f, v[0]);
        name_of(y, sizeof y, f, v[1]);
        sb_add(b, "%s, %s, ... ", x, y);
        name_of(x, sizeof x, f, v[n - 1]);
        sb_add(b, "%s", x);
        return;
    }
    /* items: runs */
    size_t starts[64], ends[64], k = 0;
    for (size_t i = 0; i < n && k < 64;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1) j++;
        if (j - i >= 2) { starts[k] = i; ends[k] = j; k++; }
        else for (size_t t = i; t <= j && k < 64; t++) { starts[k] = t; ends[k] = t; k++; }
        i = j + 1;
    }
    for (size_t i = 0; i < k; i++) {
        if (i) sb_add(b, i + 1 == k ? " %s " : ", ", and_word);
        name_of(x, sizeof x, f, v[starts[i]]);
        if (ends[i] != starts[i]) {
            name_of(y, sizeof y, f, v[ends[i]]);
            sb_add(b, "%s to %s", x, y);
        } else {
            sb_add(b, "%s", x);
        }
    }
    if (k == 64) sb_add(b, ", ...");
}

#define VMAX 8030

/* the step k when the set is 0, k, 2k, ... covering the field (k divides its size), else 0 */
static long full_step(const long *v, size_t n, long size)
{
    if (n < 2 || v[0] != 0) return 0;
    long k = v[1] - v[0];
    if (size % k != 0 || (long)n != size / k) return 0;
    for (size_t i = 2; i < n; i++)
        if (v[i] - v[i - 1] != k) return 0;
    return k;
}

static void fmt_period(sbuf *b, double ms, int every)
{
    static const struct { double ms; const char *one, *many; } u[] = {
        { 604800000, "week", "weeks" }, { 86400000, "day", "days" },       { 3600000, "hour", "hours" },
        { 60000, "minute", "minutes" }, { 1000, "second", "seconds" },     { 1, "millisecond", "milliseconds" },
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        double q = ms / u[i].ms;
        if (q == floor(q) || i + 1 == sizeof u / sizeof u[0]) {
            if (q == 1) sb_add(b, every ? "%s" : "1 %s", u[i].one);
            else sb_add(b, "%g %s", q, u[i].many);
            return;
        }
    }
}

static void describe_time(sbuf *b, const ccal *c, long *v1, long *v2, long *v3)
{
    size_t ns = cal_values(c, F_SEC, v1, 60), nm = cal_values(c, F_MIN, v2, 60),
           nh = cal_values(c, F_HOUR, v3, 24);
    int s0 = ns == 1 && v1[0] == 0, m0 = nm == 1 && v2[0] == 0;
    long hs = full_step(v3, nh, 24), ms = full_step(v2, nm, 60), ss = full_step(v1, ns, 60);
    if (s0 && m0 && (nh == 24 || hs)) {
        if (nh == 24) sb_add(b, "every hour");
        else sb_add(b, "every %ld hours", hs);
        return;
    }
    if (nh * nm * ns <= 12) {
        /* a list of times of day; "a, b, ... z" when evenly spaced */
        long t[12];
        size_t n = 0;
        for (size_t i = 0; i < nh; i++)
            for (size_t j = 0; j < nm; j++)
                for (size_t k = 0; k < ns; k++) t[n++] = v3[i] * 3600 + v2[j] * 60 + v1[k];
        int even = n >= 5;
        for (size_t i = 2; even && i < n; i++) even = t[i] - t[i - 1] == t[1] - t[0];
        sb_add(b, "at ");
        for (size_t i = 0; i < n; i++) {
            if (even && i >= 2 && i + 1 < n) continue;
            if (i) sb_add(b, even && i + 1 == n ? ", ... " : i + 1 == n ? " and " : ", ");
            if (s0) sb_add(b, "%02ld:%02ld", t[i] / 3600, t[i] / 60 % 60);
            else sb_add(b, "%02ld:%02ld:%02ld", t[i] / 3600, t[i] / 60 % 60, t[i] % 60);
        }
        return;
    }
    int lead = 0;
    if (!s0) {
        if (ns == 60) sb_add(b, "every second");
        else if (ss) sb_add(b, "every %ld seconds", ss);
        else { sb_add(b, "at second%s ", ns > 1 ? "s" : ""); list_values(b, F_SEC, v1, ns, "and"); }
        lead = 1;
    }
    if (!lead) {
        if (nm == 60) sb_add(b, "every minute");
        else if (ms) sb_add(b, "every %ld minutes", ms);
        else { sb_add(b, "at minute%s ", nm > 1 ? "s" : ""); list_values(b, F_MIN, v2, nm, "and"); }
    } else if (nm != 60) {
        if (ms) sb_add(b, " of every %ld%s minute", ms, ms == 2 ? "nd" : ms == 3 ? "rd" : "th");
        else { sb_add(b, " of minute%s ", nm > 1 ? "s" : ""); list_values(b, F_MIN, v2, nm, "and"); }
    } else if (ns != 60) {
        sb_add(b, " of every minute");
    }
    if (nh != 24) {
        sb_add(b, " of hour%s ", nh > 1 ? "s" : "");
        list_values(b, F_HOUR, v3, nh, "and");
    } else if (nm != 60 && !ms) {
        sb_add(b, " of every hour");
    }
}

static void describe_days(sbuf *b, const ccal *c, long *v)
{
    size_t nd = cal_values(c, F_DOM, v, 31);
    long dom[31];
    memcpy(dom, v, nd * sizeof *v);
    long mon[12], dow[7];
    size_t nmo = cal_values(c, F_MONTH, mon, 12), nw = cal_values(c, F_DOW, dow, 7);
    char x[24];
    int month_done = 0;
    if (nd != 31) {
        if (nmo == 1 && nd == 1) {
            name_of(x, sizeof x, F_MONTH, mon[0]);
            sb_add(b, " on %ld %s", dom[0], x);
            month_done = 1;
        } else {
            sb_add(b, " on day%s ", nd > 1 ? "s" : "");
            list_values(b, F_DOM, dom, nd, "and");
            if (nmo == 1) {
                name_of(x, sizeof x, F_MONTH, mon[0]);
                sb_add(b, " of %s", x);
                month_done = 1;
            } else {
                sb_add(b, " of the month");
            }
        }
        if (nw != 7) {
            sb_add(b, " when that is a ");
            list_values(b, F_DOW, dow, nw, "or");
        }
    } else if (nw != 7) {
        if (nw >= 2 && dow[nw - 1] - dow[0] == (long)nw - 1) {
            name_of(x, sizeof x, F_DOW, dow[0]);
            sb_add(b, " %s to ", x);
            name_of(x, sizeof x, F_DOW, dow[nw - 1]);
            sb_add(b, "%s", x);
        } else {
            sb_add(b, " on ");
            list_values(b, F_DOW, dow, nw, "and");
        }
    }
    if (nmo != 12 && !month_done) {
        sb_add(b, " in ");
        list_values(b, F_MONTH, mon, nmo, "and");
    }
    size_t ny = cal_values(c, F_YEAR, v, VMAX);
    if (ny != NYEARS) {
        sb_add(b, ny == 1 ? " in " : " in the years ");
        list_values(b, F_YEAR, v, ny, "and");
    }
}

char *itd_schedule_describe(const itd_schedule *s)
{
    sbuf b = { 0 };
    size_t parts = 0, total = 0;
    long *v = malloc(VMAX * sizeof *v);
    ccal *c = malloc(sizeof *c);
    if (!v || !c) goto fail;
    if (s) total = s->intervals.n + s->calendars.n;
    for (size_t i = 0; s && i < s->intervals.n; i++, parts++) {
        if (parts) sb_add(&b, parts + 1 == total ? "; and " : "; ");
        double ms;
        if (itd_interval_ms(s->intervals.items[i], &ms)) { sb_add(&b, "never (an unusable interval)"); continue; }
        int64_t p = llround(ms) < 1 ? 1 : llround(ms);
        sb_add(&b, "every ");
        fmt_period(&b, (double)p, 1);
        if (86400000 % p != 0) sb_add(&b, " (counted from 1970-01-01T00:00Z)");
    }
    for (size_t i = 0; s && i < s->calendars.n; i++, parts++) {
        if (parts) sb_add(&b, parts + 1 == total ? "; and " : "; ");
        const itd_calendar *cal = s->calendars.items[i];
        if (!cal) continue;
        ccal_compile(c, cal);
        int empty = -1;
        for (int f = 0; f < F__N && !c->unreadable && empty < 0; f++)
            if (cal_values(c, f, NULL, 0) == 0) empty = f;
        if (c->unreadable) {
            sb_add(&b, "never (a calendar value cannot be read)");
        } else if (empty >= 0) {
            sb_add(&b, "never (its %s matches no value %ld-%ld)", field_names[empty], field_lo[empty], field_hi[empty]);
        } else {
            if (c->never) sb_add(&b, "never (");
            describe_time(&b, c, v, v + 60, v + 120);
            sb_add(&b, " UTC");
            describe_days(&b, c, v);
            if (c->never) sb_add(&b, ": no such date)");
        }
        if (cal->comment && *cal->comment) sb_add(&b, " (\"%s\")", cal->comment);
    }
    if (!parts) sb_add(&b, "never (no intervals or calendars)");
    if (s) {
        double j = 0;
        if (s->jitter.kind == ITD_NS_NUMBER) j = s->jitter.num;
        else if (s->jitter.kind == ITD_NS_STRING && s->jitter.str && itd_duration_ms(s->jitter.str, &j)) j = 0;
        if (j > 0) {
            sb_add(&b, "; each run starts up to ");
            fmt_period(&b, j, 0);
            sb_add(&b, " late (jitter)");
        }
    }
    free(v);
    free(c);
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
fail:
    free(v);
    free(c);
    free(b.p);
    return NULL;
}
