/*
 * faults.c - injected faults, for the client's retry and timeout tests.
 *
 * A rule matches requests under the API base by method and a substring of
 * the (raw, still percent-encoded) path.  It fires either for the next
 * `count` matching requests, or with probability `rate` drawn from a PRNG
 * seeded by --seed, so a run of the same requests is reproducible.  The
 * decision is taken before the operation touches any state, so a faulted
 * request changes nothing; only a rule of latency or of kind "drip" alone
 * lets the request be served, late or slowly (drip: the real answer, its
 * body sent a few bytes at a time; with a status, that error dripped).
 * The first rule that fires wins.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "faults.h"

#define MAX_RULES 64
#define FAULT_COUNT_MAX 1000000000

static pthread_mutex_t f_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_fault f_rules[MAX_RULES];
static size_t f_n;
static itd_rng f_rng;
static int f_rng_ready;

static const char *const kind_names[] = { "none", "drop", "malformed", "truncated", "content_type", "drip" };

const char *faults_kind_name(emu_fault_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

int faults_parse(const cJSON *o, emu_fault *f, char *msg, size_t len)
{
    memset(f, 0, sizeof *f);
    f->rate = 1.0;
    f->drip_ms = 2;
    f->drip_bytes = 8;
    f->count = -1;
    if (!cJSON_IsObject(o)) { snprintf(msg, len, "a fault rule is a JSON object"); return -1; }
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *k = it->string;
        if (strcmp(k, "status") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 100 || it->valuedouble > 599) {
                snprintf(msg, len, "status: expected an HTTP status 100..599"); return -1;
            }
            f->status = (int)it->valuedouble;
        } else if (strcmp(k, "rate") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1) {
                snprintf(msg, len, "rate: expected a number 0..1"); return -1;
            }
            f->rate = it->valuedouble;
        } else if (strcmp(k, "count") == 0) {
            /* an integer in range: (long)1e300 is undefined and came out as a permanent fault */
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble <= FAULT_COUNT_MAX)
                || it->valuedouble != floor(it->valuedouble)) {
                snprintf(msg, len, "count: expected an integer 0..%d", FAULT_COUNT_MAX); return -1;
            }
            f->count = (long)it->valuedouble;
        } else if (strcmp(k, "retry_after") == 0) {
            if (cJSON_IsString(it)) snprintf(f->retry_after, sizeof f->retry_after, "%s", it->valuestring);
            else if (cJSON_IsNumber(it)) snprintf(f->retry_after, sizeof f->retry_after, "%g", it->valuedouble);
            else { snprintf(msg, len, "retry_after: expected string or number"); return -1; }
            if (strpbrk(f->retry_after, "\r\n")) { snprintf(msg, len, "retry_after: no line breaks"); return -1; }
        } else if (strcmp(k, "latency_ms") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 600000) {
                snprintf(msg, len, "latency_ms: expected a number 0..600000"); return -1;
            }
            f->latency_ms = it->valuedouble;
        } else if (strcmp(k, "drip_ms") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 200) {
                snprintf(msg, len, "drip_ms: expected a number 0..200"); return -1;
            }
            f->drip_ms = it->valuedouble;
        } else if (strcmp(k, "drip_bytes") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 65536) {
                snprintf(msg, len, "drip_bytes: expected a number 1..65536"); return -1;
            }
            f->drip_bytes = (int)it->valuedouble;
        } else if (strcmp(k, "chunked") == 0) {
            if (!cJSON_IsBool(it)) { snprintf(msg, len, "chunked: expected true or false"); return -1; }
            f->drip_chunked = cJSON_IsTrue(it);
        } else if (strcmp(k, "kind") == 0) {
            size_t i;
            for (i = 1; i < sizeof kind_names / sizeof kind_names[0]; i++)
                if (cJSON_IsString(it) && strcmp(it->valuestring, kind_names[i]) == 0) break;
            if (i == sizeof kind_names / sizeof kind_names[0]) {
                snprintf(msg, len, "kind: expected drop, malformed, truncated, content_type or drip"); return -1;
            }
            f->kind = (emu_fault_kind)i;
        } else if (strcmp(k, "match") == 0) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof f->match) {
                snprintf(msg, len, "match: expected a string (< 256 bytes)"); return -1;
            }
            snprintf(f->match, sizeof f->match, "%s", it->valuestring);
        } else if (strcmp(k, "method") == 0) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof f->method) {
                snprintf(msg, len, "method: expected a method name"); return -1;
            }
            snprintf(f->method, sizeof f->method, "%s", it->valuestring);
        } else {
            snprintf(msg, len, "unknown key \"%.40s\" (status, rate, count, retry_after, latency_ms, kind, drip_ms, drip_bytes, chunked, match, method)", k);
            return -1;
        }
    }
    if (!f->status && f->kind == FK_NONE && f->latency_ms <= 0) {
        snprintf(msg, len, "a rule needs status, kind or latency_ms");
        return -1;
    }
    return 0;
}

int faults_add(const emu_fault *f)
{
    int rc = -1;
    pthread_mutex_lock(&f_lock);
    if (!f_rng_ready) { itd_rng_seed(&f_rng, g_opts.seed); f_rng_ready = 1; }
    if (f_n < MAX_RULES) { f_rules[f_n++] = *f; rc = 0; }
    pthread_mutex_unlock(&f_lock);
    return rc;
}

void faults_clear(void)
{
    pthread_mutex_lock(&f_lock);
    f_n = 0;
    pthread_mutex_unlock(&f_lock);
}

cJSON *faults_list(void)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&f_lock);
    for (size_t i = 0; a && i < f_n; i++) {
        const emu_fault *f = &f_rules[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        if (f->status) cJSON_AddNumberToObject(o, "status", f->status);
        if (f->count >= 0) cJSON_AddNumberToObject(o, "count", (double)f->count);
        else cJSON_AddNumberToObject(o, "rate", f->rate);
        if (f->retry_after[0]) cJSON_AddStringToObject(o, "retry_after", f->retry_after);
        if (f->latency_ms > 0) cJSON_AddNumberToObject(o, "latency_ms", f->latency_ms);
        if (f->kind) cJSON_AddStringToObject(o, "kind", faults_kind_name(f->kind));
        if (f->kind == FK_DRIP) {
            cJSON_AddNumberToObject(o, "drip_ms", f->drip_ms);
            cJSON_AddNumberToObject(o, "drip_bytes", f->drip_bytes);
            cJSON_AddBoolToObject(o, "chunked", f->drip_chunked);
        }
        if (f->match[0]) cJSON_AddStringToObject(o, "match", f->match);
        if (f->method[0]) cJSON_AddStringToObject(o, "method", f->method);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&f_lock);
    return a;
}

int faults_pick(const char *method, const char *path, emu_fault *out)
{
    int fired = 0;
    pthread_mutex_lock(&f_lock);
    for (size_t i = 0; i < f_n && !fired; i++) {
        emu_fault *f = &f_rules[i];
        if (f->method[0] && strcasecmp(f->method, method) != 0) continue;
        if (f->match[0] && !strstr(path, f->match)) continue;
        if (f->count >= 0) {
            if (f->count == 0) continue;
            f->count--;
            fired = 1;
        } else {
            fired = itd_rng_double(&f_rng) < f->rate;
        }
        if (fired) *out = *f;
    }
    /* exhausted counted rules go away, so GET /_emulator/faults shows what is left */
    size_t k = 0;
    for (size_t i = 0; i < f_n; i++)
        if (f_rules[i].count != 0) f_rules[k++] = f_rules[i];
    f_n = k;
    pthread_mutex_unlock(&f_lock);
    return fired;
}
