/*
 * stats.c - counters of connections and requests, per route and method, for
 * GET /_emulator/stats.  The keys per route are bounded (MAX_STAT_KEYS).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "stats.h"

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long st_conns, st_open, st_open_max, st_requests, st_creates, st_faults, st_cut;
#define MAX_STAT_KEYS 96
static struct { char key[64]; unsigned long n; } st_keys[MAX_STAT_KEYS];
static size_t st_nkeys;

void stats_connection(void)
{
    pthread_mutex_lock(&st_lock);
    st_conns++;
    if (++st_open > st_open_max) st_open_max = st_open;
    pthread_mutex_unlock(&st_lock);
}
void stats_connection_closed(void) { pthread_mutex_lock(&st_lock); st_open--; pthread_mutex_unlock(&st_lock); }
void stats_create(void) { pthread_mutex_lock(&st_lock); st_creates++; pthread_mutex_unlock(&st_lock); }
void stats_fault(void) { pthread_mutex_lock(&st_lock); st_faults++; pthread_mutex_unlock(&st_lock); }
void stats_request_cut(void) { pthread_mutex_lock(&st_lock); st_cut++; pthread_mutex_unlock(&st_lock); }

/* A method is whatever the client sent: keep it only when it is a short
 * HTTP token (RFC 9110 tchar), so the stats keys stay valid UTF-8 and one
 * word long; anything else is counted as "OTHER". */
static const char *method_key(const char *m)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t n = 0;
    if (!m) return "OTHER";
    for (; m[n]; n++) {
        unsigned char ch = (unsigned char)m[n];
        if (n >= 15 || !(ch < 128 && (isalnum(ch) || strchr(tchar, ch)))) return "OTHER";
    }
    return n ? m : "OTHER";
}

void stats_request(const char *method, const char *op)
{
    char key[64];
    snprintf(key, sizeof key, "%s %.40s", method_key(method), op);
    pthread_mutex_lock(&st_lock);
    st_requests++;
    size_t i;
    for (i = 0; i < st_nkeys; i++) if (strcmp(st_keys[i].key, key) == 0) break;
    if (i == st_nkeys && st_nkeys < MAX_STAT_KEYS) {
        memcpy(st_keys[i].key, key, sizeof key);
        st_keys[i].n = 0;
        st_nkeys++;
    }
    if (i < st_nkeys) st_keys[i].n++;
    pthread_mutex_unlock(&st_lock);
}

cJSON *stats_json(void)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&st_lock);
    cJSON_AddNumberToObject(o, "connections", (double)st_conns);
    cJSON_AddNumberToObject(o, "open_connections", (double)st_open);
    cJSON_AddNumberToObject(o, "max_open_connections", (double)st_open_max); /* the most open at once, ever */
    cJSON_AddNumberToObject(o, "requests", (double)st_requests);
    cJSON_AddNumberToObject(o, "creates", (double)st_creates);
    cJSON_AddNumberToObject(o, "faults", (double)st_faults);
    cJSON_AddNumberToObject(o, "requests_timed_out", (double)st_cut);   /* cut by --request-timeout */
    cJSON *by = cJSON_AddObjectToObject(o, "by_route");
    cJSON *bm = cJSON_AddObjectToObject(o, "by_method");
    for (size_t i = 0; i < st_nkeys; i++) {
        cJSON_AddNumberToObject(by, st_keys[i].key, (double)st_keys[i].n);
        char m[16];
        sscanf(st_keys[i].key, "%15s", m);
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(bm, m);
        if (prev) cJSON_SetNumberValue(prev, prev->valuedouble + (double)st_keys[i].n);
        else cJSON_AddNumberToObject(bm, m, (double)st_keys[i].n);
    }
    pthread_mutex_unlock(&st_lock);
    cJSON_AddStringToObject(o, "s3_dir", g_opts.s3_dir ? g_opts.s3_dir : "");
    return o;
}
