/*
 * main.c - intuned-emulator: options, startup, shutdown.
 *
 * The first line on stdout is machine-readable and flushed at once:
 *   listening http://127.0.0.1:PORT/api/v1/workspace
 * Logs go to stderr and only with --verbose; they never carry the API key,
 * sink header values or S3 secrets.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deliver.h"
#include "emu.h"
#include "faults.h"
#include "http.h"
#include "auth_sessions.h"
#include "runner.h"
#include "runs_api.h"
#include "scheduler.h"
#include "store.h"

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
    fputs(
"Usage: intuned-emulator [options]\n"
"A local server of the Intuned Jobs API, Run API and Auth Sessions.  Prints\n"
"  listening http://HOST:PORT/api/v1/workspace\n"
"as its first stdout line, then serves until SIGINT/SIGTERM.\n"
"\n"
"Server\n"
"  --host ADDR            IPv4 address to bind (default 127.0.0.1)\n"
"  --port N               TCP port; 0 picks a free one (default 0)\n"
"  --api-key KEY          the accepted x-api-key (default test-key)\n"
"  --workspace ID         the workspace id; others get 404 (default ws-local)\n"
"  --data-dir DIR         keep jobs and runs in DIR across restarts (default: memory only)\n"
"  --max-body BYTES       larger request bodies get 413 (default 1048576)\n"
"  --conn-timeout SEC     close connections idle this long (default 30)\n"
"  --request-timeout SEC  close a connection whose request (headers and body) has\n"
"                         not arrived whole SEC after its first byte, so clients\n"
"                         that drip bytes cannot hold every connection (default\n"
"                         10; fractions allowed; 0: no limit)\n"
"  --max-connections N    concurrent connections (default 1024)\n"
"  --verbose              log requests, runs and deliveries to stderr (never secrets)\n"
"  --api-version V        the API version answered: v0.3.12 (default; alias 0.3.12)\n"
"                         or newest (alias v0.5.2).  As far as the reference knows,\n"
"                         a real account speaks the newest API today: SDK v0.5.2 is\n"
"                         what Intuned's users install.  v0.3.12 is the default so\n"
"                         that older clients and examples keep working.  GET\n"
"                         /_emulator/health says which version is served.\n"
"                         newest: every answer has the newest API's shape (JobV2,\n"
"                         JobListItemV2, JobRunV2 with FAILURE for FAILED, runs\n"
"                         always {jobRuns, totalCount}, pause/resume/trigger\n"
"                         answers without id, typed errors); create takes\n"
"                         JobInputV2 only: a v0.3.12 body (runMode, retry\n"
"                         durations, authSession, array parameters) gets 400.\n"
"                         v0.3.12: v0.3.12's shapes and bodies; the operations\n"
"                         only the newest API has are served too (update job with\n"
"                         a JobUpdateInput; get one run, and the run list with\n"
"                         pageNumber/pageSize/sortBy, answer {jobRun, results} and\n"
"                         {jobRuns, totalCount} whose runs carry v0.3.12's keys\n"
"                         and the newest API's).  Jobs are kept in one form, so a\n"
"                         --data-dir written in either mode serves in both.\n"
"\n"
"Runs\n"
"  --api-latency-ms MS    duration of each simulated API call (default 20)\n"
"  --fail-api NAME        this apiName always fails (repeatable); names starting\n"
"                         with \"fail\" always fail, \"flaky:N...\" fails N attempts\n"
"  --time-scale F         multiply retry and delivery back-off waits by F (default 1;\n"
"                         e.g. 0.001 makes a 1s initialInterval 1ms), and the\n"
"                         duration of auth-session operations (--auth-op-ms)\n"
"  --workers N            run worker threads (default 16): an upper bound on the\n"
"                         concurrency any run can reach\n"
"  --delivery-attempts N  webhook attempts per result (default 5)\n"
"  --s3-dir DIR           where S3 sinks write: DIR/<bucket>/<prefix><jobId>/<runId>/\n"
"                         <apiRunId>.json (default DATA-DIR/s3, else a new temp dir,\n"
"                         removed at exit if nothing was written; see /_emulator/stats)\n"
"  --schedule-scale F     multiply the time between scheduled runs by F (default 1;\n"
"                         0.001..1000): the schedule clock, on which next_run_time\n"
"                         and last_run_time are read, runs 1/F times as fast as the\n"
"                         wall clock from the emulator's start, so with 0.01 an\n"
"                         interval of 1m fires every 0.6s and a calendar's 10:00:00\n"
"                         comes when that clock shows it (--time-scale does not\n"
"                         apply to schedules)\n"
"  --no-scheduler         schedules set next_run_time but start no runs\n"
"                         (an interval `every` below 1s, or a calendar value out of\n"
"                         range, e.g. second 61, is refused with 400)\n"
"  --seed N               seed of the fault PRNG and of run ids (default 1)\n"
"\n"
"Run API and Auth Sessions (in memory only: --data-dir does not keep them)\n"
"  POST .../projects/P/run/start runs one API like a job payload: the latency,\n"
"  failure names, --time-scale and sink delivery above; retry.maximumAttempts\n"
"  attempts (one without retry).  Its result goes pending -> started ->\n"
"  completed | failed; canceled when its auth session is EXPIRED and cannot be\n"
"  re-created (autoRecreate false, or a \"fail\" session), or on\n"
"  POST /_emulator/api-runs/RUNID/cancel.  S3 sinks write to\n"
"  <bucket>/<prefix>runs/<runId>/.  A completed run lists as extendedPayloads\n"
"  the {api, parameters} items of its parameters' \"extendedPayloads\" array.\n"
"  Newest mode: a credentials authSession.id\n"
"  must name a session of the project (else 400); a runtime one names or makes\n"
"  a RUNTIME session.  v0.3.12 mode also serves POST .../run (synchronous),\n"
"  update at .../auth-sessions/update (id in the body), create/update\n"
"  parameters \"otp\": true or \"choice\": true asking for more info\n"
"  (requested_more_info; POST .../OPERATIONID/resume {input, info_request_id}\n"
"  goes on; input \"wrong\" fails it), and the recorder start (a RECORDER\n"
"  session, READY after --auth-op-ms; its recorder_url is a placeholder).\n"
"  --auth-op-ms MS        an auth-session create/update/validate is pending for\n"
"                         half of MS, in_progress for the other half, then ends\n"
"                         (times --time-scale; default 40)\n"
"                         Outcomes: a session id starting with \"fail\", or\n"
"                         create/update parameters holding \"fail\": true, fails\n"
"                         its create (the session goes), update and validate\n"
"                         (EXPIRED); an id starting with \"stale\" (or an EXPIRED\n"
"                         session) fails its check: validate re-creates it with\n"
"                         autoRecreate, else fails (EXPIRED); deleting a session\n"
"                         cancels its running operations; otherwise READY.\n"
"  --max-api-runs N       Run API runs kept (default 1024; and 64 MiB of start\n"
"                         bodies): a start beyond drops the oldest finished run,\n"
"                         or gets 429 when none has finished\n"
"  --max-auth-sessions N  auth sessions kept (default 4096; a create beyond gets\n"
"                         507), and as many operations (the oldest finished goes;\n"
"                         429 when none has finished)\n"
"  Newest mode: a job's auth_session.id (create, update) must name a session of\n"
"  its project (else 400, details.field auth_session.id).\n"
"\n"
"Faults (one rule from the command line; more at run time, see below)\n"
"  --fault-status CODE    answer CODE (429, 500, 502, 503, ...) instead of running\n"
"  --fault-kind K         drop | malformed | truncated | content_type | drip\n"
"  --fault-rate R         probability 0..1 per matching request (default 1)\n"
"  --fault-count N        fault only the next N matching requests\n"
"  --fault-retry-after S  Retry-After value (429 gets \"1\" by default)\n"
"  --fault-latency-ms MS  delay matching requests (alone: delayed, then served)\n"
"  --fault-match STR      only paths containing STR (raw, percent-encoded form)\n"
"  --fault-method M       only this method\n"
"\n"
"Control endpoints (loopback clients only, not under the API base)\n"
"  POST   /_emulator/faults      add rule(s): {\"status\":503,\"rate\":1,\"count\":2,\n"
"                                \"retry_after\":\"1\",\"latency_ms\":0,\"kind\":\"drop\",\n"
"                                \"match\":\"/jobs\",\"method\":\"POST\"} or an array\n"
"  GET    /_emulator/faults      rules left;  DELETE /_emulator/faults  clear\n"
"  GET    /_emulator/stats       connections, requests, creates, faults, per route\n"
"  GET    /_emulator/health\n"
"  POST   /_emulator/receivers/NAME  {\"status\":500,\"count\":2}: next answers of NAME\n"
"  GET    /_emulator/runs/RUNID  the emulator's own view of a run (not an API\n"
"                                document): payload states and attempts,\n"
"                                deliveries, the concurrency it reached\n"
"  GET    /_emulator/runs/RUNID/results  a run's sink result payloads\n"
"  GET    /_emulator/api-runs    Run API runs kept, and starts made (never repeated)\n"
"  GET    /_emulator/api-runs/RUNID  a Run API run: status, attempts, deliveries,\n"
"                                its sink result;  POST .../cancel cancels it\n"
"  GET    /_emulator/auth-sessions  auth sessions and operations kept\n"
"Webhook receiver (for examples and tests)\n"
"  POST /_receiver/NAME records method, path, headers, body (no key needed);\n"
"  GET lists and DELETE clears, both with the x-api-key (records hold secret\n"
"  headers).  GET answers X-Receiver-Dropped (this name) and\n"
"  X-Receiver-Dropped-Total: records dropped, oldest first, to stay within\n"
"  --receiver-max-bytes BYTES  memory for records of all names (default 33554432)\n"
"  --receiver-max-names N      names kept; the least recently used goes (default 256)\n"
"  Webhook sinks reach loopback literals only (127.x.y.z, localhost, [::1]) and\n"
"  on the emulator's own port only /_receiver/ (not its API: no self-triggering)\n"
"\n"
"Choices where the reference is silent: a duplicate job id and a trigger of a\n"
"paused job get 409; a finished run's terminate (COMPLETED, FAILED or\n"
"TERMINATED) gets 409; projects exist implicitly; a run is COMPLETED unless\n"
"all its payloads failed (FAILED; newest: FAILURE); the newest run list\n"
"without paging arguments is one page of every run; paging counts from 0.\n",
        f);
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "intuned-emulator: %s expects a number in [%g, %g]\n", opt, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static const char *fault_json_key(const char *opt)
{
    static const char *const map[][2] = {
        { "--fault-status", "status" }, { "--fault-kind", "kind" }, { "--fault-rate", "rate" },
        { "--fault-count", "count" }, { "--fault-retry-after", "retry_after" },
        { "--fault-latency-ms", "latency_ms" }, { "--fault-match", "match" }, { "--fault-method", "method" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(opt, map[i][0]) == 0) return map[i][1];
    return NULL;
}

static int parse_args(int argc, char **argv, cJSON *fault)
{
    static const emu_opts defaults = {
        .host = "127.0.0.1", .api_key = "test-key", .workspace = "ws-local", .seed = 1, .time_scale = 1,
        .schedule_scale = 1, .api_latency_ms = 20, .max_body = 1048576, .conn_timeout = 30, .request_timeout = 10,
        .receiver_max_bytes = 33554432, .receiver_max_names = 256, .max_conns = 1024, .delivery_attempts = 5,
        .workers = 16, .auth_op_ms = 40, .max_api_runs = 1024, .max_auth_sessions = 4096,
    };
    g_opts = defaults;
    g_opts.fail_apis = calloc((size_t)argc + 1, sizeof *g_opts.fail_apis);
    if (!g_opts.fail_apis) return -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) { usage(stdout); exit(0); }
        else if (strcmp(o, "--verbose") == 0) { g_opts.verbose = 1; continue; }
        else if (strcmp(o, "--no-scheduler") == 0) { g_opts.no_scheduler = 1; continue; }
        if (!v) { fprintf(stderr, "intuned-emulator: %s: unknown option or missing value (see --help)\n", o); return -1; }
        i++;
        const char *fk = fault_json_key(o);
        if (fk) {
            if (strcmp(fk, "kind") == 0 || strcmp(fk, "match") == 0 || strcmp(fk, "method") == 0 || strcmp(fk, "retry_after") == 0)
                cJSON_AddStringToObject(fault, fk, v);
            else if (parse_num(o, v, 0, 600000, &d)) return -1;
            else cJSON_AddNumberToObject(fault, fk, d);
        } else if (strcmp(o, "--host") == 0) g_opts.host = v;
        else if (strcmp(o, "--port") == 0) { if (parse_num(o, v, 0, 65535, &d)) return -1; g_opts.port = (int)d; }
        else if (strcmp(o, "--api-key") == 0) g_opts.api_key = v;
        else if (strcmp(o, "--workspace") == 0) g_opts.workspace = v;
        else if (strcmp(o, "--data-dir") == 0) g_opts.data_dir = v;
        else if (strcmp(o, "--s3-dir") == 0) g_opts.s3_dir = emu_strdup(v);
        else if (strcmp(o, "--seed") == 0) { if (parse_num(o, v, 0, 9007199254740991.0, &d)) return -1; g_opts.seed = (uint64_t)d; }
        else if (strcmp(o, "--time-scale") == 0) { if (parse_num(o, v, 0, 1000, &d)) return -1; g_opts.time_scale = d; }
        else if (strcmp(o, "--schedule-scale") == 0) { if (parse_num(o, v, 0.001, 1000, &d)) return -1; g_opts.schedule_scale = d; }
        else if (strcmp(o, "--api-latency-ms") == 0) { if (parse_num(o, v, 0, 600000, &d)) return -1; g_opts.api_latency_ms = d; }
        else if (strcmp(o, "--max-body") == 0) { if (parse_num(o, v, 1, 1e9, &d)) return -1; g_opts.max_body = (size_t)d; }
        else if (strcmp(o, "--conn-timeout") == 0) { if (parse_num(o, v, 0, 86400, &d)) return -1; g_opts.conn_timeout = (unsigned)d; }
        else if (strcmp(o, "--request-timeout") == 0) { if (parse_num(o, v, 0, 86400, &d)) return -1; g_opts.request_timeout = d; }
        else if (strcmp(o, "--receiver-max-bytes") == 0) { if (parse_num(o, v, 1024, 1e12, &d)) return -1; g_opts.receiver_max_bytes = (size_t)d; }
        else if (strcmp(o, "--receiver-max-names") == 0) { if (parse_num(o, v, 1, 100000, &d)) return -1; g_opts.receiver_max_names = (unsigned)d; }
        else if (strcmp(o, "--max-connections") == 0) { if (parse_num(o, v, 1, 100000, &d)) return -1; g_opts.max_conns = (unsigned)d; }
        else if (strcmp(o, "--workers") == 0) { if (parse_num(o, v, 1, 1024, &d)) return -1; g_opts.workers = (int)d; }
        else if (strcmp(o, "--delivery-attempts") == 0) { if (parse_num(o, v, 1, 100, &d)) return -1; g_opts.delivery_attempts = (int)d; }
        else if (strcmp(o, "--auth-op-ms") == 0) { if (parse_num(o, v, 0, 600000, &d)) return -1; g_opts.auth_op_ms = d; }
        else if (strcmp(o, "--max-api-runs") == 0) { if (parse_num(o, v, 1, 1000000, &d)) return -1; g_opts.max_api_runs = (unsigned)d; }
        else if (strcmp(o, "--max-auth-sessions") == 0) { if (parse_num(o, v, 1, 1000000, &d)) return -1; g_opts.max_auth_sessions = (unsigned)d; }
        else if (strcmp(o, "--fail-api") == 0) g_opts.fail_apis[g_opts.nfail_apis++] = v;
        else if (strcmp(o, "--api-version") == 0) {
            if (strcmp(v, "v0.3.12") == 0 || strcmp(v, "0.3.12") == 0) g_opts.newest = 0;
            else if (strcmp(v, "newest") == 0 || strcmp(v, "v0.5.2") == 0) g_opts.newest = 1;
            else {
                fprintf(stderr, "intuned-emulator: --api-version expects v0.3.12 (or 0.3.12) or newest (or v0.5.2), got %s\n", v);
                return -1;
            }
        }
        else { fprintf(stderr, "intuned-emulator: unknown option %s (see --help)\n", o); return -1; }
    }
    if (!g_opts.api_key[0] || !g_opts.workspace[0]) {
        fprintf(stderr, "intuned-emulator: --api-key and --workspace must not be empty\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cJSON *fault = cJSON_CreateObject();
    if (!fault || parse_args(argc, argv, fault)) { cJSON_Delete(fault); free(g_opts.fail_apis); return 2; }
    if (fault->child) {
        emu_fault f;
        char msg[200];
        if (faults_parse(fault, &f, msg, sizeof msg)) {
            fprintf(stderr, "intuned-emulator: fault options: %s\n", msg);
            cJSON_Delete(fault);
            return 2;
        }
        faults_add(&f);
    }
    cJSON_Delete(fault);
    if (deliver_init()) return 1;

    /* signals are taken by sigwait below: block them before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int rc = 1;
    /* http first: g_origin (the own port, for the webhook guard) is set
     * before any worker delivers; requests meanwhile only queue work */
    if (store_init() == 0 && http_start() == 0 && runner_start() == 0 && scheduler_start() == 0) {
        printf("listening %s%s\n", g_origin, EMU_BASE_PATH);
        fflush(stdout);
        emu_log("API %s, workspace %s, data %s, s3 %s", g_opts.newest ? "newest" : "v0.3.12", g_opts.workspace, g_opts.data_dir ? g_opts.data_dir : "(memory)", g_opts.s3_dir);
        int sig = 0;
        sigwait(&set, &sig);
        emu_log("signal %d: stopping", sig);
        rc = 0;
    }
    runner_abort();   /* first: calls, deliveries and back-offs in progress give up while http_stop waits */
    http_stop();
    scheduler_stop();
    runner_stop();
    runs_api_shutdown();
    auth_shutdown();
    store_shutdown();
    curl_global_cleanup();
    deliver_shutdown();
    free(g_opts.fail_apis);
    return rc;
}
