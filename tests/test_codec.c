/* C tests of the model codec: example round trips, errors with paths,
 * defaults, unions, value formats, limits. */
#include <math.h>
#include "intuned.h"
#include "t.h"

static char *example(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/spec/examples/%s", ITD_SHARED_DIR, name);
    char *s = t_slurp(path, len);
    if (!s) fprintf(stderr, "cannot read %s\n", path);
    return s;
}

/* decode example with schema, re-encode, compare as JSON values */
static void roundtrip(const char *file, const itd_schema *s)
{
    size_t len = 0;
    char *src = example(file, &len);
    CHECK(src != NULL);
    if (!src) return;
    itd_error e; memset(&e, 0, sizeof e);
    void *obj = itd_decode(s, src, len, NULL, &e);
    if (!obj) fprintf(stderr, "%s: %s: %s\n", file, e.path, e.message);
    CHECK(obj != NULL);
    if (obj) {
        char *out = itd_encode(s, obj, NULL);
        cJSON *a = cJSON_Parse(src), *b = cJSON_Parse(out);
        int eq = cJSON_Compare(a, b, 1);
        if (!eq) fprintf(stderr, "%s: round trip differs:\n%s\n", file, out);
        CHECK(eq);
        void *copy = itd_clone(s, obj);
        char *out2 = itd_encode(s, copy, NULL);
        CHECK_STR(out, out2);
        free(out); free(out2);
        cJSON_Delete(a); cJSON_Delete(b);
        itd_free(s, copy);
        itd_free(s, obj);
    }
    itd_error_clear(&e);
    free(src);
}

static void expect_error(const itd_schema *s, const char *json, const char *path, const char *msg_part)
{
    itd_error e; memset(&e, 0, sizeof e);
    void *obj = itd_decode(s, json, strlen(json), NULL, &e);
    CHECK(obj == NULL);
    if (obj) { fprintf(stderr, "unexpectedly decoded: %s\n", json); itd_free(s, obj); return; }
    CHECK_STR(e.path, path);
    if (!strstr(e.message, msg_part)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", e.message, msg_part);
        CHECK(0);
    }
    itd_error_clear(&e);
}

int main(void)
{
    roundtrip("job-webhook-paused.json", &itd_Job);
    roundtrip("job-s3-active.json", &itd_Job);
    roundtrip("jobs-list.json", &itd_JobList);
    roundtrip("jobinput-minimal.json", &itd_JobInput);
    roundtrip("jobinput-rich.json", &itd_JobInput);
    roundtrip("jobinput-s3.json", &itd_JobInput);
    roundtrip("runs-list.json", &itd_JobRunList);
    roundtrip("error-400.json", &itd_ApiErrorInvalidInput);
    roundtrip("error-401.json", &itd_ApiErrorUnauthorized);
    roundtrip("error-404.json", &itd_ApiError);
    roundtrip("sink-result-completed.json", &itd_JobSinkResultPayload);
    roundtrip("sink-result-failed.json", &itd_JobSinkResultPayload);
    roundtrip("pause-response.json", &itd_PauseJob);
    roundtrip("trigger-response.json", &itd_TriggerJob);
    roundtrip("terminate-response.json", &itd_TerminateJobRun);
    roundtrip("create-response.json", &itd_CreateJob);

    /* typed access */
    {
        size_t len; char *src = example("job-webhook-paused.json", &len);
        itd_error e; memset(&e, 0, sizeof e);
        itd_job *j = itd_job_decode(src, len, &e);
        CHECK(j && j->sink && j->sink->kind == ITD_SINK_WEBHOOK);
        if (j) {
            CHECK_STR(j->state->status, "PAUSED");
            CHECK(j->configuration->retry->initialInterval.kind == ITD_NS_NUMBER);
            CHECK(j->configuration->retry->initialInterval.num == 1500);
            itd_calendar *cal = j->schedule->calendars.items[0];
            CHECK(cal->hour->kind == ITD_CV_RANGE && cal->hour->range->step == 2);
            CHECK(cal->second->kind == ITD_CV_NUMBER && cal->second->num == 0);
            CHECK_STR(cal->dayOfWeek->range->start.str, "MONDAY");
            CHECK(j->last_run_time && !j->last_run_time_null);
            itd_job_free(j);
        }
        free(src);
    }
    /* defaults applied on input */
    {
        const char *in = "{\"id\":\"abcdefg\",\"sink\":{\"type\":\"s3\",\"region\":\"r\",\"bucket\":\"b\","
                         "\"accessKeyId\":\"a\",\"secretAccessKey\":\"s\"},\"payload\":[],"
                         "\"schedule\":{\"calendars\":[{\"hour\":{\"start\":1}}]},"
                         "\"configuration\":{\"runMode\":\"Order-Irrelevant\",\"retry\":{\"maximumAttempts\":2}}}";
        itd_error e; memset(&e, 0, sizeof e);
        itd_job_input *ji = itd_job_input_decode(in, strlen(in), &e);
        CHECK(ji != NULL);
        if (ji) {
            char *out = itd_encode(&itd_JobInput, ji, NULL);
            CHECK(strstr(out, "\"skipOnFail\":false") != NULL);
            CHECK(strstr(out, "{\"start\":1,\"step\":1}") != NULL);
            CHECK(strstr(out, "\"maximumAttempts\":2,\"backoffCoefficient\":1,\"initialInterval\":\"1s\"") != NULL);
            free(out);
            itd_job_input_free(ji);
        }
    }
    /* response defaults: retry ms */
    {
        const char *in = "{\"id\":\"x\",\"payload\":[],\"configuration\":{\"retry\":{\"maximumAttempts\":1}},"
                         "\"next_run_time\":null,\"last_run_time\":null,\"state\":\"ACTIVE\",\"project_id\":\"p\","
                         "\"auth_session\":{\"id\":\"a\",\"checkAttempts\":3},\"newKey\":{\"a\":[1,2]}}";
        itd_error e; memset(&e, 0, sizeof e);
        itd_job *j = itd_job_decode(in, strlen(in), &e);
        CHECK(j != NULL);
        if (j) {
            CHECK(j->configuration->retry->initialInterval.num == 1000);
            CHECK_STR(j->state->status, "ACTIVE");
            CHECK_STR(j->projectId, "p");
            CHECK(j->authSession && j->authSession->has_checkAttempts);
            char *out = itd_encode(&itd_Job, j, NULL);
            CHECK(strstr(out, "\"newKey\":{\"a\":[1,2]}") != NULL);
            CHECK(strstr(out, "\"projectId\":\"p\"") != NULL);
            free(out);
            itd_job_free(j);
        } else fprintf(stderr, "%s: %s\n", e.path, e.message);
    }
    /* errors name the path */
    const char *ok_tail = ",\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\"},{\"apiName\":5}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[2].apiName", "expected string, got number");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiNmae\":\"a\"}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].apiNmae", "did you mean \"apiName\"");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].apiName", "required");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[]}", "configuration", "required");
    snprintf(buf, sizeof buf, "{\"id\":\"job 1\",\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "id", "URL slug");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"ftp\"},\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "sink.type", "\"webhook\" or \"s3\"");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"sink\":{\"type\":\"s3\",\"region\":\"r\"},\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "sink.bucket", "required");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Fast\"}}",
                 "configuration.runMode", "\"Order-Irrelevant\"");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":1,\"initialInterval\":\"1h30m\"}}}",
                 "configuration.retry.initialInterval", "invalid duration");
    expect_error(&itd_JobInput, "{\"id\":\"job-1234\",\"payload\":[],\"configuration\":{\"runMode\":\"Order-Irrelevant\","
                 "\"retry\":{\"maximumAttempts\":1,\"initialInterval\":1000}}}",
                 "configuration.retry.initialInterval", "duration string");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[],\"schedule\":{\"calendars\":[{\"hour\":[3]}]}%s", ok_tail);
    expect_error(&itd_JobInput, buf, "schedule.calendars[1].hour[1]", "range object");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[],\"schedule\":{\"intervals\":[{\"every\":true}]}%s", ok_tail);
    expect_error(&itd_JobInput, buf, "schedule.intervals[1].every", "got boolean");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"payload\":[{\"apiName\":\"a\",\"parameters\":7}]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "payload[1].parameters", "object or array");
    snprintf(buf, sizeof buf, "{\"id\":\"job-1234\",\"id\":\"again\",\"payload\":[]%s", ok_tail);
    expect_error(&itd_JobInput, buf, "id", "duplicate");
    expect_error(&itd_Job, "{\"id\":1}", "id", "expected string");
    expect_error(&itd_Job, "{\"id\":\"x\",\"payload\":[],\"configuration\":{},\"next_run_time\":null,"
                 "\"state\":{\"status\":\"paused\"},\"projectId\":\"p\"}", "state.status", "\"PAUSED\"");
    expect_error(&itd_Job, "[1,2", "", "invalid JSON");
    expect_error(&itd_Job, "{} x", "", "unexpected data");
    expect_error(&itd_JobList, "[{\"id\":\"a\"}]", "[1].configuration", "required");
    expect_error(&itd_JobSinkResultPayload, "{\"apiInfo\":{\"name\":\"n\",\"runId\":\"r\",\"result\":{\"status\":\"odd\"}},"
                 "\"workspaceId\":\"w\",\"project\":{\"id\":\"i\",\"name\":\"n\"}}", "apiInfo.result.status", "completed");
    {   /* deep nesting is refused cleanly, not a crash */
        size_t n = 5000;
        char *deep = malloc(2 * n + 64);
        strcpy(deep, "{\"id\":\"a\",\"payload\":[{\"apiName\":\"x\",\"parameters\":");
        size_t off = strlen(deep);
        for (size_t i = 0; i < n; i++) deep[off++] = '[';
        for (size_t i = 0; i < n; i++) deep[off++] = ']';
        deep[off] = 0;
        strcat(deep, "}]}");
        expect_error(&itd_Job, deep, "", "invalid JSON");
        free(deep);
    }
    {   /* huge documents refused before parsing */
        itd_error e; memset(&e, 0, sizeof e);
        CHECK(itd_decode(&itd_Job, "{}", (size_t)ITD_MAX_DOCUMENT_BYTES + 1, NULL, &e) == NULL);
        CHECK(strstr(e.message, "too large") != NULL);
    }
    /* warnings */
    {
        itd_warnings w = {0, NULL};
        itd_error e; memset(&e, 0, sizeof e);
        const char *in = "{\"id\":\"short\",\"payload\":[],\"schedule\":{\"calendars\":[{\"dayOfWeek\":\"MON-FRI\"}]},"
                         "\"configuration\":{\"runMode\":\"Order-Irrelevant\"}}";
        void *o = itd_decode(&itd_JobInput, in, strlen(in), &w, &e);
        CHECK(o != NULL);
        CHECK(w.n == 2);
        if (w.n == 2) { CHECK(strncmp(w.items[0], "id: ", 4) == 0); CHECK(strstr(w.items[1], "MON-FRI") != NULL); }
        itd_warnings_clear(&w);
        itd_free(&itd_JobInput, o);
    }
    /* durations (§5.1) */
    struct { const char *s; double ms; } good[] = {
        {"1s", 1000}, {"1.5s", 1500}, {"500ms", 500}, {"250", 250}, {"10m", 600000}, {"2 hours", 7200000},
        {".5h", 1800000}, {"1d", 86400000}, {"5  min", 300000}, {"1.5 H", 5400000}, {"1y", 31557600000.0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        CHECK(itd_duration_ms(good[i].s, &v) == 0 && v == good[i].ms);
    }
    const char *bad[] = { "1h30m", " 1s", "1s ", "1e3", "+5s", "1.", "", "fortnight", "1mo", "-1s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(itd_duration_ms(bad[i], NULL) == -1);
    /* dates (§5.3) */
    double t = 0;
    CHECK(itd_datetime_parse("2025-06-01T12:00:00.000Z", &t) == 0 && t == 1748779200.0);
    CHECK(itd_datetime_parse("2025-05-11T22:40:03.005+02:00", &t) == 0 && fabs(t - 1746996003.005) < 1e-6);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40+0000", &t) == 0);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40+05", &t) == -1);
    CHECK(itd_datetime_parse("2025-05-31 08:02:40Z", &t) == -1);
    CHECK(itd_datetime_parse("2025-05-31T08:02:40", &t) == -1);
    char db[40];
    CHECK_STR(itd_datetime_format(1748779200.25, db, sizeof db), "2025-06-01T12:00:00.250Z");
    CHECK_STR(itd_closest_field(&itd_JobConfiguration, "maxConcurentRequests"), "maxConcurrentRequests");
    CHECK(itd_closest_field(&itd_JobConfiguration, "zzzzzzzzzz") == NULL);
    return T_DONE();
}
