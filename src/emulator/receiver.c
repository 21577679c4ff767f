/*
 * receiver.c - the webhook receiver: POST /_receiver/NAME records method,
 * path, headers and body (no key needed: it is what a sink does); GET lists
 * and DELETE clears, both with the x-api-key, since records hold secret
 * headers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "receiver.h"
#include "stats.h"

/* Records are bounded in all: --receiver-max-bytes across every name (the
 * oldest record of any name goes first) and --receiver-max-names names (the
 * least recently used name goes first), besides MAX_RECORDS per name.  What
 * was dropped is counted, and a GET tells (X-Receiver-Dropped for the name,
 * X-Receiver-Dropped-Total for all). */
typedef struct rrec {
    cJSON *rec;
    size_t bytes;          /* estimated memory of rec */
    uint64_t seq;          /* arrival order across all names */
    struct rrec *next;
} rrec;
typedef struct receiver {
    char *name;
    rrec *head, *tail;     /* oldest first */
    size_t n;
    unsigned long dropped; /* records of this name dropped for room */
    uint64_t used;         /* last use, in g_rc_seq ticks */
    int status;            /* answer this status ... */
    long count;            /* ... for the next `count` requests */
    struct receiver *next;
} receiver;
static pthread_mutex_t rc_lock = PTHREAD_MUTEX_INITIALIZER;
static receiver *g_receivers;
static unsigned g_rc_names;
static size_t g_rc_bytes;
static unsigned long g_rc_dropped;   /* in all, evicted names included */
static uint64_t g_rc_seq;
#define MAX_RECORDS 10000

/* Frees a name and its records; counts them as dropped when `dropped`. */
static void receiver_remove(receiver *r, int dropped)
{
    for (receiver **pp = &g_receivers; *pp; pp = &(*pp)->next)
        if (*pp == r) { *pp = r->next; break; }
    for (rrec *x = r->head, *n; x; x = n) {
        n = x->next;
        g_rc_bytes -= x->bytes;
        cJSON_Delete(x->rec);
        free(x);
    }
    if (dropped) g_rc_dropped += (unsigned long)r->n;
    g_rc_names--;
    free(r->name);
    free(r);
}

static void receiver_drop_oldest(receiver *r)
{
    rrec *x = r->head;
    if (!x) return;
    r->head = x->next;
    if (!r->head) r->tail = NULL;
    r->n--;
    r->dropped++;
    g_rc_dropped++;
    g_rc_bytes -= x->bytes;
    cJSON_Delete(x->rec);
    free(x);
}

static receiver *receiver_get(const char *name, int create)
{
    for (receiver *r = g_receivers; r; r = r->next)
        if (strcmp(r->name, name) == 0) {
            if (create) r->used = ++g_rc_seq;
            return r;
        }
    if (!create) return NULL;
    unsigned max = g_opts.receiver_max_names ? g_opts.receiver_max_names : 1;
    while (g_rc_names >= max && g_receivers) {
        receiver *lru = g_receivers;
        for (receiver *r = g_receivers; r; r = r->next) if (r->used < lru->used) lru = r;
        receiver_remove(lru, 1);
    }
    receiver *r = emu_xcalloc(1, sizeof *r);
    r->name = emu_strdup(name);
    r->used = ++g_rc_seq;
    r->next = g_receivers;
    g_receivers = r;
    g_rc_names++;
    return r;
}

/* Keeps rec (taken) in r, dropping the oldest records of any name for room. */
static void receiver_add(receiver *r, cJSON *rec, size_t bytes)
{
    if (bytes > g_opts.receiver_max_bytes) {   /* never fits: counted, not kept */
        cJSON_Delete(rec);
        r->dropped++;
        g_rc_dropped++;
        return;
    }
    if (r->n >= MAX_RECORDS) receiver_drop_oldest(r);
    while (g_rc_bytes + bytes > g_opts.receiver_max_bytes) {
        receiver *oldest = NULL;
        for (receiver *x = g_receivers; x; x = x->next)
            if (x->head && (!oldest || x->head->seq < oldest->head->seq)) oldest = x;
        if (!oldest) break;
        receiver_drop_oldest(oldest);
    }
    rrec *x = emu_xcalloc(1, sizeof *x);
    x->rec = rec;
    x->bytes = bytes;
    x->seq = ++g_rc_seq;
    if (r->tail) r->tail->next = x;
    else r->head = x;
    r->tail = x;
    r->n++;
    g_rc_bytes += bytes;
}

void receiver_shutdown(void)
{
    pthread_mutex_lock(&rc_lock);
    while (g_receivers) receiver_remove(g_receivers, 0);
    pthread_mutex_unlock(&rc_lock);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    cJSON *o = cls;
    char name[128];
    size_t i;
    for (i = 0; key[i] && i < sizeof name - 1; i++) name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = 0;
    if (!cJSON_GetObjectItemCaseSensitive(o, name)) cJSON_AddStringToObject(o, name, value ? value : "");
    return MHD_YES;
}

/* The receiver records what webhooks send, secret headers included, so
 * reading (GET) and clearing (DELETE) it take the API key like the API
 * does; recording (POST, what a sink does) does not, and is bounded in
 * memory (see receiver_add). */
enum MHD_Result receiver_handle(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    segs s;
    if (split_path(path, &s) != 0 || s.n != 1 || !s.v[0][0]) {
        if (s.n) segs_free(&s);
        return send_error(c, 404, "Receiver paths are /_receiver/{name}");
    }
    const char *name = s.v[0];
    enum MHD_Result rc;
    stats_request(method, "receiver");
    int get = strcmp(method, "GET") == 0, del = strcmp(method, "DELETE") == 0;
    if (get || del) {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
        if (!key || strcmp(key, g_opts.api_key) != 0) {
            segs_free(&s);
            return send_error(c, 401, "Reading or clearing a receiver takes the API key (x-api-key)");
        }
    } else if (q->too_big) {
        segs_free(&s);
        return send_error(c, 413, "Request body too large");
    }
    pthread_mutex_lock(&rc_lock);
    receiver *rv = receiver_get(name, !get && !del);
    if (get) {
        cJSON *copy = cJSON_CreateArray();
        for (rrec *x = rv ? rv->head : NULL; x; x = x->next) cJSON_AddItemToArray(copy, cJSON_Duplicate(x->rec, 1));
        char dropped[32], total[32];
        snprintf(dropped, sizeof dropped, "%lu", rv ? rv->dropped : 0UL);
        snprintf(total, sizeof total, "%lu", g_rc_dropped);
        pthread_mutex_unlock(&rc_lock);
        char *json = itd_json_print(copy, NULL);
        cJSON_Delete(copy);
        struct MHD_Response *resp = json ? MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!resp) {
            free(json);
            rc = MHD_NO;
        } else {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(resp, "X-Receiver-Dropped", dropped);
            MHD_add_response_header(resp, "X-Receiver-Dropped-Total", total);
            rc = MHD_queue_response(c, 200, resp);
            MHD_destroy_response(resp);
        }
    } else if (del) {
        if (rv) receiver_remove(rv, 0);
        pthread_mutex_unlock(&rc_lock);
        rc = send_body(c, 204, NULL, NULL, 0, NULL, NULL);
    } else {
        unsigned status = 200;
        if (rv->count > 0) { status = (unsigned)rv->status; rv->count--; }
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "method", method);
        cJSON_AddStringToObject(rec, "path", path);
        cJSON *h = cJSON_AddObjectToObject(rec, "headers");
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, h);
        char *body = emu_xmalloc(q->len + 1);
        if (q->len) memcpy(body, q->body, q->len);
        body[q->len] = 0;
        cJSON_AddStringToObject(rec, "body", body);
        free(body);
        cJSON_AddNumberToObject(rec, "status", status);
        cJSON_AddNumberToObject(rec, "time", emu_now());
        /* memory of the record, roughly: strings plus cJSON nodes */
        size_t bytes = 512 + q->len + strlen(path) + strlen(method);
        for (const cJSON *it = h->child; it; it = it->next)
            bytes += 128 + strlen(it->string) + (it->valuestring ? strlen(it->valuestring) : 0);
        receiver_add(rv, rec, bytes);
        pthread_mutex_unlock(&rc_lock);
        char *out = status < 300 ? emu_strdup("{\"received\":true}") : error_json(status, "Receiver configured to fail", NULL);
        rc = send_json(c, status, out);
    }
    segs_free(&s);
    return rc;
}

void receiver_set_failing(const char *name, int status, long count)
{
    pthread_mutex_lock(&rc_lock);
    receiver *rv = receiver_get(name, 1);
    rv->status = status;
    rv->count = count;
    pthread_mutex_unlock(&rc_lock);
}
