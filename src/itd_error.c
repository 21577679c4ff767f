/*
 * itd_error.c - the error and warnings room (itd_error.h): every room of the
 * core reports through these, so none has to call into another to fail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "itd_error.h"

static const char *const kind_names[] = {
    "none", "validation", "invalid_input", "unauthorized", "not_found", "conflict",
    "rate_limited", "server", "api", "timeout", "connection", "decode", "usage", "nomem",
};

const char *itd_err_kind_name(itd_err_kind k)
{
    return (k >= 0 && (size_t)k < sizeof kind_names / sizeof kind_names[0]) ? kind_names[k] : "unknown";
}

void itd_error_clear(itd_error *e)
{
    if (!e) return;
    /* already clear (the common case, several times a call): nothing to
     * free, and no need to rewrite the two text buffers */
    if (e->kind == ITD_ERR_NONE && !e->details && !e->data && !e->body && !e->path[0] && !e->message[0] &&
        !e->status && !e->body_len && !e->retryable && !e->attempts && e->retry_after == -1.0)
        return;
    cJSON_Delete(e->details);
    cJSON_Delete(e->data);
    free(e->body);
    *e = (itd_error)ITD_ERROR_INIT;
}

/* What itd_error_box gives without memory: const, so a write to it faults
 * instead of changing every holder's error. */
static const itd_error nomem = { ITD_ERR_NOMEM, 0, "", "out of memory", NULL, NULL, NULL, 0, 0, 0, -1.0 };

itd_error *itd_error_box(itd_error *src)
{
    itd_error *e = malloc(sizeof *e);
    if (e) {
        *e = *src;
    } else {
        cJSON_Delete(src->details);
        cJSON_Delete(src->data);
        free(src->body);
        e = (itd_error *)&nomem;
    }
    *src = (itd_error)ITD_ERROR_INIT;
    return e;
}

void itd_error_free(itd_error *e)
{
    if (!e || e == &nomem) return;
    itd_error_clear(e);
    free(e);
}

int itd_error_set(itd_error *e, itd_err_kind kind, const char *path, const char *fmt, ...)
{
    if (!e) return -1;
    e->kind = kind;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *itd_error_format(const itd_error *e, char *buf, size_t len)
{
    if (!buf || !len) return buf;
    const char *p = e->path[0] ? e->path : NULL;
    if (e->status > 0)
        snprintf(buf, len, "%s (%d): %s%s%s", itd_err_kind_name(e->kind), e->status,
                 p ? p : "", p ? ": " : "", e->message);
    else if (e->kind == ITD_ERR_VALIDATION && p)
        snprintf(buf, len, "%s: %s", p, e->message);
    else if (e->kind == ITD_ERR_VALIDATION)
        snprintf(buf, len, "%s", e->message);
    else
        snprintf(buf, len, "%s: %s%s%s", itd_err_kind_name(e->kind), p ? p : "", p ? ": " : "", e->message);
    return buf;
}

void itd_warnings_clear(itd_warnings *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->items[i]);
    free(w->items);
    w->items = NULL;
    w->n = 0;
}

int itd_warnings_add(itd_warnings *w, const char *text)
{
    char **items = realloc(w->items, (w->n + 1) * sizeof *items);
    if (!items) return -1;
    w->items = items;
    if (!(items[w->n] = strdup(text))) return -1;
    w->n++;
    return 0;
}
