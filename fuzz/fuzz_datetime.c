/* fuzz_datetime: the value-format parsers of codec.c and protocol.c.
 * The input, up to its first NUL, is given to
 *  - itd_duration_ms, compared with an independent reading of the npm `ms`
 *    grammar by POSIX regex (case-insensitive), minus the two deliberate
 *    differences: negatives and trailing spaces without a unit are refused;
 *  - itd_datetime_parse: what it accepts is re-formatted by
 *    itd_datetime_format and parsed back to the same instant (to the
 *    millisecond), and real calendar dates agree with timegm;
 *  - itd_retry_after_seconds: -1 or a finite non-negative number.
 * Its first 8 bytes, as a double, go to itd_datetime_format (any epoch, NaN
 * and infinities included) and as integers to itd_days_from_civil, checked
 * against timegm. */
#include <math.h>
#include <regex.h>
#include <strings.h>
#include <time.h>
#include "intuned.h"
#include "codec_internal.h"
#include "fuzz.h"

static regex_t ms_re;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (regcomp(&ms_re,
                "^(([0-9]+)?\\.?[0-9]+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|"
                "days?|d|weeks?|w|years?|yrs?|y)?$",
                REG_EXTENDED | REG_ICASE) != 0)
        abort();
    return 0;
}

static double unit_factor(const char *u, size_t n)
{
    char b[16];
    if (n == 0) return 1;
    if (n >= sizeof b) return -1;
    for (size_t i = 0; i < n; i++) b[i] = (char)(u[i] | 0x20);
    b[n] = 0;
    if (b[0] == 'y') return 315576e5;
    if (b[0] == 'w') return 6048e5;
    if (b[0] == 'd') return 864e5;
    if (b[0] == 'h') return 36e5;
    if (strncmp(b, "ms", 2) == 0 || strncmp(b, "milli", 5) == 0) return 1;
    if (b[0] == 'm') return 6e4;
    if (b[0] == 's') return 1e3;
    return -1;
}

static void check_duration(const char *s)
{
    double ms = -1;
    int rc = itd_duration_ms(s, &ms);
    size_t n = strlen(s);
    regmatch_t m[4];
    int want = n > 0 && n <= 100 && regexec(&ms_re, s, 4, m, 0) == 0;
    double ref = 0;
    if (want) {
        if (m[3].rm_so < 0 && s[n - 1] == ' ') want = 0; /* "5 " : our deliberate refusal */
        else {
            char num[128];
            size_t k = (size_t)(m[1].rm_eo - m[1].rm_so);
            memcpy(num, s + m[1].rm_so, k);
            num[k] = 0;
            double f = m[3].rm_so < 0 ? 1 : unit_factor(s + m[3].rm_so, (size_t)(m[3].rm_eo - m[3].rm_so));
            FUZZ_CHECK(f > 0, "unit of \"%s\"", s);
            ref = strtod(num, NULL) * f;
        }
    }
    FUZZ_CHECK((rc == 0) == want, "duration \"%s\": parser %s, reference %s", s, rc == 0 ? "accepts" : "refuses",
               want ? "accepts" : "refuses");
    if (rc == 0) {
        FUZZ_CHECK(isfinite(ms) && ms >= 0, "duration \"%s\" = %g", s, ms);
        FUZZ_CHECK(ms == ref, "duration \"%s\" = %.17g, reference %.17g", s, ms, ref);
    }
}

static int days_in_month(int y, int m)
{
    static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static void check_datetime(const char *s)
{
    double t = 0;
    if (itd_datetime_parse(s, &t) != 0) return;
    FUZZ_CHECK(isfinite(t), "\"%s\" = %g", s, t);
    int Y, M, D, h, mi, sec;
    FUZZ_CHECK(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &Y, &M, &D, &h, &mi, &sec) == 6, "accepted \"%s\"", s);
    if (D <= days_in_month(Y, M) && sec < 60) {
        struct tm tm = { 0 };
        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        double ref = (double)timegm(&tm);
        /* the zone offset and fraction are what is left */
        double rest = t - ref;
        FUZZ_CHECK(rest > -86400 && rest < 86400, "\"%s\" = %.3f, timegm of its fields %.0f", s, t, ref);
    }
    if (t > -62135596800.0 + 86400 * 2 && t < 253402300799.0 - 86400 * 2) { /* years 1..9999 */
        char buf[40], buf2[40];
        FUZZ_CHECK(itd_datetime_format(t, buf, sizeof buf), "\"%s\" = %.3f does not format", s, t);
        double t2 = 0;
        FUZZ_CHECK(itd_datetime_parse(buf, &t2) == 0, "\"%s\" formats to \"%s\", which does not parse", s, buf);
        /* half a millisecond, and the parse's rounding error at a tie: the
         * text's ".9995" is not exact in binary, so the value read can lie a
         * few 1e-17 beyond the half, and either millisecond is right */
        FUZZ_CHECK(fabs(t2 - t) <= 0.0005 + 1e-12 + 1e-15 * fabs(t), "\"%s\" = %.4f, \"%s\" = %.4f", s, t, buf, t2);
        itd_datetime_format(t2, buf2, sizeof buf2);
        FUZZ_CHECK(strcmp(buf, buf2) == 0, "format not stable: \"%s\" then \"%s\"", buf, buf2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    if (size) memcpy(s, data, size);
    s[size] = 0;

    check_duration(s);
    check_datetime(s);
    double r = itd_retry_after_seconds(s, 1700000000.0);
    FUZZ_CHECK(r == -1 || (isfinite(r) && r >= 0), "Retry-After \"%s\" = %g", s, r);

    if (size >= 8) {
        double epoch;
        memcpy(&epoch, data, sizeof epoch);
        char buf[64];
        memset(buf, 'x', sizeof buf);
        const char *out = itd_datetime_format(epoch, buf, 32);
        FUZZ_CHECK(memchr(buf, 0, 32), "format of %g is not terminated", epoch);
        if (out) {
            /* a time it can write, it writes as one we read back (to the ms) */
            double back = 0;
            FUZZ_CHECK(out == buf && itd_datetime_parse(buf, &back) == 0, "%.17g formats to \"%s\"", epoch, buf);
            /* the last millisecond before year 10000 is not rounded up into it */
            FUZZ_CHECK(fabs(back - epoch) <= 0.0005 + 1e-15 * fabs(epoch) || strcmp(buf, "9999-12-31T23:59:59.999Z") == 0,
                       "%.17g formats to \"%s\" = %.17g", epoch,
                       buf, back);
        } else {
#ifdef ITD_TIME_MIN
            FUZZ_CHECK(!(epoch >= ITD_TIME_MIN && epoch < ITD_TIME_MAX), "%.17g in range but not formatted", epoch);
#endif
        }

        int16_t y16;
        memcpy(&y16, data, 2);
        unsigned mo = 1 + data[2] % 12, d = 1 + data[3] % 28;
        int64_t days = itd_days_from_civil(y16, mo, d);
        struct tm tm = { 0 };
        tm.tm_year = y16 - 1900;
        tm.tm_mon = (int)mo - 1;
        tm.tm_mday = (int)d;
        time_t ref = timegm(&tm);
        FUZZ_CHECK((int64_t)ref == days * 86400, "days_from_civil(%d, %u, %u) = %lld, timegm %lld", y16, mo, d,
                   (long long)days, (long long)ref / 86400);
    }
    free(s);
    return 0;
}
