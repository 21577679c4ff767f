/*
 * control.c - the control endpoints under /_emulator/, for tests and
 * examples: fault rules (faults.c), stats (stats.c), health (with the API
 * version served), the answers a receiver gives (receiver.c), a run's own
 * view (render.c: what the API's documents do not show) and its sink
 * results (store.c), a Run API run's view and its cancel (runs_api.c: the
 * API has no cancel) and the auth sessions' counts (auth_sessions.c).  They
 * answer loopback clients only, and are invisible (404) to others.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_sessions.h"
#include "control.h"
#include "faults.h"
#include "receiver.h"
#include "render.h"
#include "runs_api.h"
#include "stats.h"
#include "store.h"

enum MHD_Result control_handle(struct MHD_Connection *c, const char *method, const char *path, req *q)
{
    if (!is_loopback(c)) return send_error(c, 404, "Not found");   /* invisible off loopback */
    stats_request(method, "control");
    if (q->too_big) return send_error(c, 413, "Request body too large");
    if (strcmp(path, "faults") == 0) {
        if (strcmp(method, "GET") == 0) return send_cjson(c, 200, faults_list());
        if (strcmp(method, "DELETE") == 0) { faults_clear(); return send_cjson(c, 200, faults_list()); }
        if (strcmp(method, "POST") == 0) {
            cJSON *t = reply_parse_body(q);
            if (!t) return send_error(c, 400, "Expected a JSON fault rule (or an array of rules)");
            emu_fault rules[64];
            size_t n = 0;
            char msg[200] = "";
            int bad = 0;
            if (cJSON_IsArray(t)) {
                for (cJSON *it = t->child; it && !bad; it = it->next) {
                    if (n == 64) { snprintf(msg, sizeof msg, "at most 64 rules"); bad = 1; break; }
                    bad = faults_parse(it, &rules[n++], msg, sizeof msg) != 0;
                }
            } else {
                bad = faults_parse(t, &rules[n++], msg, sizeof msg) != 0;
            }
            cJSON_Delete(t);
            if (bad) return send_error(c, 400, msg);
            for (size_t i = 0; i < n; i++)
                if (faults_add(&rules[i])) return send_error(c, 409, "Too many fault rules (64); DELETE /_emulator/faults");
            return send_cjson(c, 200, faults_list());
        }
        return send_error(c, 405, "Method not allowed");
    }
    if (strcmp(path, "stats") == 0 && strcmp(method, "GET") == 0) return send_cjson(c, 200, stats_json());
    if (strcmp(path, "health") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "version", ITD_VERSION);
        cJSON_AddStringToObject(o, "api_version", g_opts.newest ? "newest" : "v0.3.12");
        return send_cjson(c, 200, o);
    }
    if (strncmp(path, "receivers/", 10) == 0 && strcmp(method, "POST") == 0) {
        char *name = pct_decode(path + 10, strlen(path + 10), 0);
        cJSON *t = reply_parse_body(q);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(t, "status");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(t, "count");
        if (!name || !name[0] || !cJSON_IsNumber(st) || st->valuedouble < 100 || st->valuedouble > 599) {
            free(name);
            cJSON_Delete(t);
            return send_error(c, 400, "Expected {\"status\": 100..599, \"count\": N}");
        }
        /* clamped before the cast: (long)1e300 is undefined */
        receiver_set_failing(name, (int)st->valuedouble,
                             cJSON_IsNumber(cnt) && cnt->valuedouble >= 0 ? (long)fmin(cnt->valuedouble, 1e9) : 1);
        free(name);
        cJSON_Delete(t);
        return send_json(c, 200, emu_strdup("{\"ok\":true}"));
    }
    if (strncmp(path, "runs/", 5) == 0 && strcmp(method, "GET") == 0) {
        segs s;
        if (split_path(path + 5, &s) != 0) return send_error(c, 404, "Not found");
        enum MHD_Result rc;
        if (s.n == 1) {
            pthread_mutex_lock(&g_lock);
            emu_run *run = store_run_get(s.v[0]);
            cJSON *v = run ? render_run_view(run) : NULL;
            pthread_mutex_unlock(&g_lock);
            rc = v ? send_cjson(c, 200, v) : send_error(c, 404, "No such run");
        } else if (s.n == 2 && strcmp(s.v[1], "results") == 0) {
            pthread_mutex_lock(&g_lock);
            emu_run *run = store_run_get(s.v[0]);
            cJSON *a = run ? store_run_results(run) : NULL;
            pthread_mutex_unlock(&g_lock);
            rc = a ? send_cjson(c, 200, a) : send_error(c, 404, "No such run");
        } else {
            rc = send_error(c, 404, "Not found");
        }
        segs_free(&s);
        return rc;
    }
    if (strncmp(path, "api-runs/", 9) == 0) {
        segs s;
        if (split_path(path + 9, &s) != 0) return send_error(c, 404, "Not found");
        enum MHD_Result rc;
        if (s.n == 1 && strcmp(method, "GET") == 0) {
            cJSON *v = runs_api_view(s.v[0]);
            rc = v ? send_cjson(c, 200, v) : send_error(c, 404, "No such Run API run");
        } else if (s.n == 2 && strcmp(s.v[1], "cancel") == 0 && strcmp(method, "POST") == 0) {
            int st = 0;
            cJSON *v = runs_api_cancel(s.v[0], &st);
            if (!v) rc = send_error(c, 404, "No such Run API run");
            else if (st) { cJSON_Delete(v); rc = send_error(c, 409, "The run has finished"); }
            else rc = send_cjson(c, 200, v);
        } else {
            rc = send_error(c, 404, "Not found");
        }
        segs_free(&s);
        return rc;
    }
    if (strcmp(path, "auth-sessions") == 0 && strcmp(method, "GET") == 0) return send_cjson(c, 200, auth_view());
    if (strcmp(path, "api-runs") == 0 && strcmp(method, "GET") == 0) return send_cjson(c, 200, runs_api_counts());
    return send_error(c, 404, "Control endpoints: /_emulator/faults, /_emulator/stats, /_emulator/health, "
                              "/_emulator/receivers/{name}, /_emulator/runs/{runId}, /_emulator/runs/{runId}/results, "
                              "/_emulator/api-runs[/{runId}[/cancel]], /_emulator/auth-sessions");
}
