/*
 * scrub.c - keeping secrets out of what the library shows: errors, hook
 * events and summaries.  Both rules live here, for both transports and for
 * the Lua binding:
 *
 *  - By value (itd_scrub*): every secret a call carried -- the API key, the
 *    values of the user's extra headers whose names are secret-like, the
 *    input's S3 secretAccessKey and webhook header values, and every
 *    ITD_SECRET value of a Run API or Auth Sessions body (credentials,
 *    proxy URLs, its sink's secrets) -- is replaced by
 *    "***" wherever it occurs (a server may echo any of them back in an error
 *    body).  Secrets shorter than 4 bytes are skipped: they would match
 *    ordinary text, and "***" must never be longer than what it replaces
 *    (scrubbing works in place).  A secret that JSON would escape is also
 *    looked for in its escaped form, as a raw JSON body carries it.
 *  - By key (itd_redact_json): free-form JSON rendered for display (a run's
 *    job_configuration_snapshot, unknown keys, error bodies) has the value of
 *    every `secretAccessKey`, every value of a sink's `headers` object and
 *    every secret-like header of any `headers` object replaced by "***".
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "scrub.h"
#include "codec.h"
#include "model_internal.h"

#define MIN_SECRET 4

/* ------------------------------------------------------------ the set */

static itd_secret *at(itd_secrets *s, size_t i)
{
    return i < ITD_SECRETS_INLINE ? &s->inl[i] : &s->more[i - ITD_SECRETS_INLINE];
}

static const itd_secret *cat(const itd_secrets *s, size_t i)
{
    return i < ITD_SECRETS_INLINE ? &s->inl[i] : &s->more[i - ITD_SECRETS_INLINE];
}

void itd_secrets_init(itd_secrets *s)
{
    if (s) memset(s, 0, sizeof *s);
}

void itd_secrets_free(itd_secrets *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        itd_secret *x = at(s, i);
        if (x->owned) {
            volatile char *p = x->owned;
            for (size_t k = 0; k < x->len; k++) p[k] = 0;
            free(x->owned);
        }
    }
    free(s->more);
    memset(s, 0, sizeof *s);
}

static int push(itd_secrets *s, const char *v, size_t len, char *owned)
{
    if (s->n >= ITD_SECRETS_INLINE) {
        size_t k = s->n - ITD_SECRETS_INLINE;
        if (k == s->cap_more) {
            size_t cap = s->cap_more ? s->cap_more * 2 : 8;
            itd_secret *m = realloc(s->more, cap * sizeof *m);
            if (!m) return -1;
            s->more = m;
            s->cap_more = cap;
        }
    }
    itd_secret *x = at(s, s->n++);
    x->s = v;
    x->len = len;
    x->owned = owned;
    return 0;
}

/* JSON's escaped form of v (as JSON.stringify writes it: '"', '\\' and
 * control characters), malloc'd; NULL when it equals v or on OOM (*oom). */
static char *json_escaped(const char *v, size_t len, size_t *outlen, int *oom)
{
    size_t extra = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') extra += 1;
        else if (c < 0x20) extra += 5;
    }
    if (!extra) return NULL;
    char *o = malloc(len + extra + 1);
    if (!o) { *oom = 1; return NULL; }
    size_t n = 0;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        const char *e = NULL;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default: break;
        }
        if (e) { o[n++] = e[0]; o[n++] = e[1]; }
        else if (c < 0x20) { memcpy(o + n, "\\u00", 4); n += 4; o[n++] = hex[c >> 4]; o[n++] = hex[c & 15]; }
        else o[n++] = (char)c;
    }
    o[n] = 0;
    *outlen = n;
    return o;
}

static int has(const itd_secrets *s, const char *v, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        const itd_secret *x = cat(s, i);
        if (x->len == len && memcmp(x->s, v, len) == 0) return 1;
    }
    return 0;
}

int itd_secrets_add(itd_secrets *s, const char *v, size_t len, int copy)
{
    if (!s || !v || len < MIN_SECRET || has(s, v, len)) return 0;
    char *own = NULL;
    if (copy) {
        if (!(own = malloc(len + 1))) return -1;
        memcpy(own, v, len);
        own[len] = 0;
        v = own;
    }
    if (push(s, v, len, own)) { free(own); return -1; }
    int oom = 0;
    size_t elen = 0;
    char *esc = json_escaped(v, len, &elen, &oom);
    if (oom) return -1;
    if (esc) {
        if (has(s, esc, elen)) free(esc);
        else if (push(s, esc, elen, esc)) { free(esc); return -1; }
    }
    return 0;
}

int itd_header_is_secret(const char *name, size_t len)
{
    /* names that carry credentials by convention; matched as substrings so
     * X-Auth-Token, X-Api-Key, Set-Cookie, X-Session-Token... are covered */
    static const char *const parts[] = { "auth", "token", "secret", "passw", "cookie", "key", "session",
                                         "credential", "signature" };
    if (!name) return 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        size_t pl = strlen(parts[p]);
        for (size_t i = 0; i + pl <= len; i++)
            if (strncasecmp(name + i, parts[p], pl) == 0) return 1;
    }
    return 0;
}

/* A header value and, for "<scheme> <credentials>" with a known
 * authentication scheme, the credentials alone (a server may echo either). */
static int add_value(itd_secrets *s, const char *v, size_t len, int copy)
{
    while (len && (*v == ' ' || *v == '\t')) { v++; len--; }
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
    if (itd_secrets_add(s, v, len, copy)) return -1;
    static const char *const schemes[] = { "bearer", "basic", "token", "digest", "negotiate", "bot", "apikey",
                                           "key", "hmac" };
    size_t w = 0;
    while (w < len && v[w] != ' ' && v[w] != '\t') w++;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strlen(schemes[i]) != w || strncasecmp(v, schemes[i], w) != 0) continue;
        size_t r = w;
        while (r < len && (v[r] == ' ' || v[r] == '\t')) r++;
        return itd_secrets_add(s, v + r, len - r, copy);
    }
    return 0;
}

int itd_secrets_add_header(itd_secrets *s, const char *name, size_t nlen, const char *value, int copy)
{
    if (!s || !name || !value || !itd_header_is_secret(name, nlen)) return 0;
    return add_value(s, value, strlen(value), copy);
}

int itd_secrets_add_sink(itd_secrets *s, const itd_sink *sink, int copy)
{
    if (!s || !sink) return 0;
    if (sink->secretAccessKey && itd_secrets_add(s, sink->secretAccessKey, strlen(sink->secretAccessKey), copy))
        return -1;
    if (cJSON_IsObject(sink->headers))
        for (const cJSON *h = sink->headers->child; h; h = h->next)
            if (cJSON_IsString(h) && add_value(s, h->valuestring, strlen(h->valuestring), copy)) return -1;
    return 0;
}

/* Every string inside a free-form secret value (credentials: runtimeInput,
 * an auth session's parameters), to a bounded depth. */
static int add_json_strings(itd_secrets *s, const cJSON *v, int copy, int depth)
{
    if (!v || depth > 16) return 0;
    if (cJSON_IsString(v)) return add_value(s, v->valuestring, strlen(v->valuestring), copy);
    for (const cJSON *it = v->child; it; it = it->next)
        if (add_json_strings(s, it, copy, depth + 1)) return -1;
    return 0;
}

/* The ITD_SECRET values of a body object, walking its schema (the bodies
 * of the Run API and Auth Sessions; the job bodies go through their sink). */
static int add_object_secrets(itd_secrets *s, const itd_schema *sc, const void *obj, int copy, int depth)
{
    if (!obj || depth > 8) return 0;
    sc = ((const itd_obj *)obj)->schema ? ((const itd_obj *)obj)->schema : sc;
    for (size_t i = 0; sc && i < sc->nfields; i++) {
        const itd_field *f = &sc->fields[i];
        const char *base = obj;
        if (f->kind == ITD_F_OBJECT) {
            const void *sub;
            memcpy(&sub, base + f->off, sizeof sub);
            if (add_object_secrets(s, f->sub, sub, copy, depth + 1)) return -1;
            continue;
        }
        if (!(f->flags & ITD_SECRET)) continue;
        if (f->kind == ITD_F_STRING) {
            const char *v;
            memcpy(&v, base + f->off, sizeof v);
            if (v && add_value(s, v, strlen(v), copy)) return -1;
        } else if (f->kind == ITD_F_JSON) {
            const cJSON *v;
            memcpy(&v, base + f->off, sizeof v);
            if (add_json_strings(s, v, copy, 0)) return -1;
        }
    }
    return 0;
}

int itd_secrets_add_call(itd_secrets *s, const itd_config *cfg, const itd_call_args *args, int copy)
{
    if (!s) return 0;
    if (cfg && cfg->api_key && itd_secrets_add(s, cfg->api_key, strlen(cfg->api_key), copy)) return -1;
    const itd_schema *in = args && args->input ? ((const itd_obj *)args->input)->schema : NULL;
    if (in && in != &itd_JobInput && in != &itd_JobInputNewest && in != &itd_JobUpdateInput &&
        add_object_secrets(s, in, args->input, copy, 0))
        return -1;
    if (args && itd_secrets_add_sink(s, itd_input_sink(args->input), copy)) return -1;
    if (args && args->update && !args->update->sink_null && itd_secrets_add_sink(s, args->update->sink, copy))
        return -1;
    return 0;
}

/* ------------------------------------------------------------ by value */

/* Length of the longest secret starting at p (0: none). */
static size_t match_at(const itd_secrets *s, const char *p, size_t left)
{
    size_t best = 0;
    for (size_t i = 0; i < s->n; i++) {
        const itd_secret *x = cat(s, i);
        if (x->len <= left && x->len > best && p[0] == x->s[0] && memcmp(p, x->s, x->len) == 0) best = x->len;
    }
    return best;
}

int itd_secrets_in(const char *buf, size_t len, const itd_secrets *s)
{
    if (!buf || !s || !s->n) return 0;
    for (size_t i = 0; i < len; i++)
        if (match_at(s, buf + i, len - i)) return 1;
    return 0;
}

size_t itd_scrub(char *buf, size_t len, const itd_secrets *s)
{
    if (!buf || !s || !s->n) return len;
    size_t r = 0, w = 0;
    int changed = 0;
    while (r < len) {
        size_t m = match_at(s, buf + r, len - r);
        if (m) {
            memcpy(buf + w, "***", 3);
            w += 3;
            r += m;
            changed = 1;
        } else {
            buf[w++] = buf[r++];
        }
    }
    if (changed) buf[w] = 0; /* w < len: every secret is longer than "***" */
    return w;
}

static void scrub_str(char *p, const itd_secrets *s)
{
    if (p) itd_scrub(p, strlen(p), s);
}

void itd_scrub_cjson(cJSON *v, const itd_secrets *s)
{
    if (!s || !s->n) return;
    /* iterative over siblings, recursive over depth (bounded by the parser's
     * nesting limit) */
    for (; v; v = v->next) {
        if (v->string) {
            if (v->type & cJSON_StringIsConst) {
                if (itd_secrets_in(v->string, strlen(v->string), s)) {
                    char *k = strdup(v->string);
                    if (k) {
                        scrub_str(k, s);
                        v->string = k;
                        v->type &= ~cJSON_StringIsConst;
                    } else {
                        v->string = (char *)"***"; /* const: never freed */
                    }
                }
            } else {
                scrub_str(v->string, s);
            }
        }
        if ((cJSON_IsString(v) || cJSON_IsRaw(v)) && v->valuestring) scrub_str(v->valuestring, s);
        if (v->child) itd_scrub_cjson(v->child, s);
    }
}

void itd_scrub_error(itd_error *e, const itd_secrets *s)
{
    if (!e || !s || !s->n) return;
    scrub_str(e->message, s);
    scrub_str(e->path, s);
    if (e->body) e->body_len = itd_scrub(e->body, e->body_len, s);
    if (e->details) itd_scrub_cjson(e->details, s);
    if (e->data) itd_scrub_cjson(e->data, s);
}

/* -------------------------------------------------------------- by key */

static int key_is(const cJSON *it, const char *k) { return it->string && strcasecmp(it->string, k) == 0; }

static int set_stars(cJSON *it)
{
    if (cJSON_IsNull(it) || (cJSON_IsString(it) && it->valuestring && strcmp(it->valuestring, "***") == 0)) return 0;
    cJSON *n = cJSON_CreateString("***");
    if (!n) {
        /* out of memory: at least drop the value */
        if (cJSON_IsString(it) && it->valuestring) it->valuestring[0] = 0;
        return 1;
    }
    /* replace in place: keep `it` (its key, its place among siblings) */
    int ref = (it->type & cJSON_IsReference) != 0; /* child / valuestring not owned */
    cJSON *child = ref ? NULL : it->child;
    char *vs = ref ? NULL : it->valuestring;
    it->child = NULL;
    it->valuestring = n->valuestring;
    it->type = (it->type & cJSON_StringIsConst) | cJSON_String;
    it->valueint = 0;
    it->valuedouble = 0;
    n->valuestring = NULL;
    cJSON_Delete(n);
    cJSON_Delete(child);
    free(vs);
    return 1;
}

static int is_sink_object(const cJSON *o)
{
    for (const cJSON *it = o->child; it; it = it->next)
        if (key_is(it, "type") && cJSON_IsString(it))
            return strcasecmp(it->valuestring, "webhook") == 0 || strcasecmp(it->valuestring, "s3") == 0;
    return 0;
}

static size_t redact(cJSON *v, int under_sink, int depth)
{
    if (!v || depth > ITD_MAX_DEPTH) return 0;
    size_t n = 0;
    if (cJSON_IsArray(v)) {
        for (cJSON *it = v->child; it; it = it->next) n += redact(it, under_sink, depth + 1);
        return n;
    }
    if (!cJSON_IsObject(v)) return 0;
    int sink = under_sink || is_sink_object(v);
    for (cJSON *it = v->child; it; it = it->next) {
        if (key_is(it, "secretAccessKey") || key_is(it, "secret_access_key")) {
            n += (size_t)set_stars(it);
        } else if (key_is(it, "headers")) {
            if (cJSON_IsObject(it)) {
                for (cJSON *h = it->child; h; h = h->next)
                    if (sink || (h->string && itd_header_is_secret(h->string, strlen(h->string))))
                        n += (size_t)set_stars(h);
            } else if (sink) {
                n += (size_t)set_stars(it);
            } else {
                n += redact(it, 0, depth + 1);
            }
        } else {
            n += redact(it, key_is(it, "sink"), depth + 1);
        }
    }
    return n;
}

size_t itd_redact_json(cJSON *v)
{
    return redact(v, 0, 0);
}

void itd_error_redact(itd_error *e)
{
    if (!e) return;
    if (e->details) itd_redact_json(e->details);
    if (!e->data || !itd_redact_json(e->data) || !e->body) return;
    /* the raw body holds what was just redacted: show the redacted document */
    char *t = itd_json_print(e->data, NULL);
    size_t n = t ? strlen(t) : 0;
    if (n > ITD_ERROR_BODY_MAX) n = ITD_ERROR_BODY_MAX;
    memset(e->body, 0, e->body_len);
    free(e->body);
    e->body = NULL;
    e->body_len = 0;
    if (t) {
        t[n] = 0;
        e->body = t;
        e->body_len = n;
    }
}
