/*
 * util.c - the emulator's small utilities (emu.h): the settings every room
 * reads, logging, the wall clock, allocation that cannot fail, hashing.
 *
 * Logs go to stderr and only with --verbose; callers never pass them the API
 * key, sink header values or S3 secrets.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "emu.h"

emu_opts g_opts;
char g_origin[128];

void emu_log(const char *fmt, ...)
{
    if (!g_opts.verbose) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char ts[40];
    if (!itd_datetime_format(emu_now(), ts, sizeof ts)) snprintf(ts, sizeof ts, "-");
    fprintf(stderr, "%s intuned-emulator: %s\n", ts, line);
}

double emu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void emu_sleep_ms(double ms)
{
    if (!(ms > 0)) return;
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)fmod(ms * 1e6, 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

void emu_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *lock, double when)
{
    if (when < 0) { pthread_cond_wait(cv, lock); return; }
    struct timespec ts;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - floor(when)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    pthread_cond_timedwait(cv, lock, &ts);   /* CLOCK_REALTIME, like emu_now */
}

void emu_thread_stop(pthread_t t, pthread_mutex_t *lock, pthread_cond_t *cv, int *stop)
{
    pthread_mutex_lock(lock);
    *stop = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(lock);
    pthread_join(t, NULL);
}

void *emu_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { fputs("intuned-emulator: out of memory\n", stderr); abort(); }
    return p;
}

void *emu_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) { fputs("intuned-emulator: out of memory\n", stderr); abort(); }
    return p;
}

char *emu_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = emu_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

uint64_t emu_hash(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ULL; }
    return h;
}

void emu_stable_uuid(const char *name, char *buf)
{
    uint64_t a = emu_hash(name, strlen(name), 11), b = emu_hash(name, strlen(name), 12);
    /* shaped like a version-4 UUID so clients that check the form accept it */
    snprintf(buf, 37, "%08llx-%04llx-4%03llx-%04llx-%012llx",
             (unsigned long long)(a >> 32), (unsigned long long)((a >> 16) & 0xffff),
             (unsigned long long)(a & 0xfff), (unsigned long long)(0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

cJSON *emu_time_json(double t)
{
    char buf[40];
    /* a time past year 9999 (every = 1e300) has no date-time form: null */
    cJSON *v = t >= 0 && itd_datetime_format(t, buf, sizeof buf) ? cJSON_CreateString(buf) : cJSON_CreateNull();
    if (!v) abort();
    return v;
}
