/*
 * persist.c - the data dir (--data-dir): jobs and runs as files.
 *
 * One file per job (jobs/<hash>.json) and per run (runs/<runId>.json).  A
 * job file is replaced whole: the write goes to a temporary file that is
 * fsynced, renamed over the target, and the directory fsynced, so a SIGKILL
 * leaves either the old or the new file.  Documents are rendered under g_lock
 * with a version number and written after it is released; a writer skips a
 * version older than what is already on disk, so slow disks never block
 * readers and never reorder updates.
 *
 * A run file is a journal, one JSON record per line, each with its version
 * "v": a snapshot (the whole run, written like a job file) followed by
 * appended records holding the run's counters and only the payloads that
 * changed since the last record.  Rewriting the whole run after each payload
 * cost O(payloads^2) bytes; appending costs what changed, and a new snapshot
 * replaces the journal once the records appended since the last one outweigh
 * it twice, so the bytes written stay linear in the run's size.  Records may
 * reach the disk out of version order (two workers flushing), so on loading
 * the newest version of each payload and of the counters wins, and a snapshot
 * that arrives after a newer record is appended rather than replacing it.
 * Each append is fdatasynced before the next; a torn last line (SIGKILL
 * mid-write) does not parse and is ignored, and a loaded journal is rewritten
 * as one snapshot so nothing is ever appended after a torn line.  A run found
 * unfinished at start continues where it stopped (its calls in flight are
 * redone: the runner picks it up).
 *
 * Loading hands each job and run to the store through the callbacks it
 * passes (persist_loader), so this file calls no room above it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "persist.h"

static uint64_t g_version = 1;   /* of rendered files */

/* ------------------------------------------------------------ deferred writes */

/* A write queued under g_lock, done by persist_flush. */
typedef struct emu_write {
    char *name;          /* path relative to the data dir */
    char *content;       /* NULL: unlink */
    uint64_t version;
    int mode;            /* EW_*: replace, append a journal record, journal snapshot */
    struct emu_write *next;
} emu_write;

static void job_file_name(const emu_job *j, char *buf, size_t len)
{
    uint64_t a = emu_hash(j->project, strlen(j->project) + 1, 1);
    a = emu_hash(j->id, strlen(j->id), a);
    uint64_t b = emu_hash(j->project, strlen(j->project) + 1, 2);
    b = emu_hash(j->id, strlen(j->id), b);
    snprintf(buf, len, "jobs/%016llx%016llx.json", (unsigned long long)a, (unsigned long long)b);
}

enum { EW_REPLACE = 0, EW_APPEND, EW_SNAPSHOT };   /* emu_write.mode */

static void add_write_v(emu_writes *w, const char *name, char *content, uint64_t version, int mode)
{
    if (!g_opts.data_dir || !w) { free(content); return; }
    emu_write *e = emu_xcalloc(1, sizeof *e);
    e->name = emu_strdup(name);
    e->content = content;
    e->version = version;
    e->mode = mode;
    e->next = w->head;   /* order does not matter: versions decide */
    w->head = e;
}

static void add_write(emu_writes *w, const char *name, char *content)
{
    add_write_v(w, name, content, g_version++, EW_REPLACE);
}

/* ------------------------------------------------------------ reading back */

/* A number of a loaded file, `def` when absent or out of range (files may be hand-edited). */
static double numv(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 ? v->valuedouble : def;
}

static double parse_time(const cJSON *v)
{
    double t;
    return cJSON_IsString(v) && itd_datetime_parse(v->valuestring, &t) == 0 ? t : -1;
}

/* ------------------------------------------------------------ jobs */

void persist_job_save(const emu_job *j, emu_writes *w)
{
    if (!g_opts.data_dir) return;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "seq", (double)j->seq);
    cJSON_AddStringToObject(f, "project", j->project);
    cJSON_AddItemToObject(f, "job", cJSON_Duplicate(j->doc, 1));
    char name[64];
    job_file_name(j, name, sizeof name);
    add_write(w, name, itd_json_print(f, NULL));
    cJSON_Delete(f);
}

/* ------------------------------------------------------------ runs */

/* What a run's file says (persist_run_save writes only the differences). */
typedef struct pdisk { int state, attempts, delivery, has_result; } pdisk;
struct run_disk {
    pdisk *ps;                /* n entries */
    char status[12];
    double end_time, updated;
    int max_in_flight;
    long ok, failed, skipped, attempts;
    size_t base;              /* bytes of the last snapshot */
    size_t appended;          /* bytes appended since */
};

static void run_disk_free(struct run_disk *d)
{
    if (!d) return;
    free(d->ps);
    free(d);
}

void persist_run_free(emu_run *r)
{
    run_disk_free(r->disk);
    r->disk = NULL;
}

void persist_job_remove(const emu_job *j, emu_writes *w)
{
    char name[64];
    job_file_name(j, name, sizeof name);
    add_write(w, name, NULL);
}

void persist_run_remove(const emu_run *r, emu_writes *w)
{
    char name[300];
    snprintf(name, sizeof name, "runs/%s.json", r->id);
    add_write(w, name, NULL);
}


/* A payload as the file keeps it: a call in flight is redone after a restart,
 * and so is a delivery in progress. */
static pdisk pdisk_of(const emu_pstate *p)
{
    pdisk d;
    d.state = p->state == P_RUNNING ? P_WAIT : p->state;
    d.attempts = p->attempts;
    d.delivery = p->delivery == 5 ? 0 : p->delivery;
    d.has_result = p->result != NULL;
    return d;
}

static int pdisk_eq(pdisk a, pdisk b)
{
    return a.state == b.state && a.attempts == b.attempts && a.delivery == b.delivery && a.has_result == b.has_result;
}

/* A result as a record member: the stored JSON text as is (no re-parse). */
static cJSON *result_item(const char *result)
{
    if (!result) return cJSON_CreateNull();
    if (!strchr(result, '\n')) return cJSON_CreateRaw(result);
    cJSON *x = cJSON_Parse(result);   /* a record must stay on one line */
    return x ? x : cJSON_CreateNull();
}

static cJSON *payload_record(const emu_run *r, size_t i, int with_index)
{
    pdisk d = pdisk_of(&r->ps[i]);
    cJSON *x = cJSON_CreateObject();
    if (with_index) cJSON_AddNumberToObject(x, "i", (double)i);
    cJSON_AddNumberToObject(x, "state", d.state);
    cJSON_AddNumberToObject(x, "attempts", d.attempts);
    cJSON_AddNumberToObject(x, "delivery", d.delivery);
    cJSON_AddItemToObject(x, "result", result_item(r->ps[i].result));
    return x;
}

/* The run's counters: in every record. */
static void add_counters(cJSON *f, const emu_run *r, uint64_t version)
{
    cJSON_AddNumberToObject(f, "v", (double)version);
    cJSON_AddStringToObject(f, "id", r->id);
    cJSON_AddStringToObject(f, "status", r->status);
    cJSON_AddItemToObject(f, "end_time", emu_time_json(r->end_time));
    cJSON_AddItemToObject(f, "updated", emu_time_json(r->updated));
    cJSON_AddNumberToObject(f, "max_in_flight", r->max_in_flight);
    cJSON_AddNumberToObject(f, "deliveries_ok", (double)r->deliveries_ok);
    cJSON_AddNumberToObject(f, "deliveries_failed", (double)r->deliveries_failed);
    cJSON_AddNumberToObject(f, "deliveries_skipped", (double)r->deliveries_skipped);
    cJSON_AddNumberToObject(f, "delivery_attempts", (double)r->delivery_attempts);
}

static char *run_snapshot(const emu_run *r, uint64_t version)
{
    cJSON *f = cJSON_CreateObject();
    add_counters(f, r, version);
    cJSON_AddNumberToObject(f, "seq", (double)r->seq);
    cJSON_AddStringToObject(f, "project", r->project);
    cJSON_AddStringToObject(f, "jobId", r->job_id);
    cJSON_AddStringToObject(f, "type", r->type);
    cJSON_AddItemToObject(f, "start_time", emu_time_json(r->start_time));
    cJSON_AddItemToObject(f, "job", itd_to_cjson(&itd_Job, r->snap));
    cJSON *ps = cJSON_AddArrayToObject(f, "payloads");
    for (size_t i = 0; i < r->n; i++) cJSON_AddItemToArray(ps, payload_record(r, i, 0));
    char *out = itd_json_print(f, NULL);
    cJSON_Delete(f);
    if (!out) abort();
    return out;
}

/* Remember what the file now says. */
static void run_disk_sync(emu_run *r)
{
    struct run_disk *d = r->disk;
    for (size_t i = 0; i < r->n; i++) d->ps[i] = pdisk_of(&r->ps[i]);
    snprintf(d->status, sizeof d->status, "%s", r->status);
    d->end_time = r->end_time;
    d->updated = r->updated;
    d->max_in_flight = r->max_in_flight;
    d->ok = r->deliveries_ok;
    d->failed = r->deliveries_failed;
    d->skipped = r->deliveries_skipped;
    d->attempts = r->delivery_attempts;
}

static int counters_changed(const emu_run *r)
{
    const struct run_disk *d = r->disk;
    return strcmp(d->status, r->status) != 0 || d->end_time != r->end_time || d->updated != r->updated
        || d->max_in_flight != r->max_in_flight || d->ok != r->deliveries_ok || d->failed != r->deliveries_failed
        || d->skipped != r->deliveries_skipped || d->attempts != r->delivery_attempts;
}

void persist_run_save(emu_run *r, emu_writes *w)
{
    if (!g_opts.data_dir || r->gone || r->standalone) return;   /* Run API runs live in memory */
    char name[300];
    snprintf(name, sizeof name, "runs/%s.json", r->id);
    uint64_t version = g_version++;
    if (r->disk) {
        cJSON *changed = NULL;
        for (size_t i = 0; i < r->n; i++)
            if (!pdisk_eq(pdisk_of(&r->ps[i]), r->disk->ps[i])) {
                if (!changed) changed = cJSON_CreateArray();
                cJSON_AddItemToArray(changed, payload_record(r, i, 1));
            }
        if (!changed && !counters_changed(r)) return;
        cJSON *f = cJSON_CreateObject();
        add_counters(f, r, version);
        cJSON_AddItemToObject(f, "changed", changed ? changed : cJSON_CreateArray());
        char *rec = itd_json_print(f, NULL);
        cJSON_Delete(f);
        if (!rec) abort();
        size_t len = strlen(rec) + 1;
        if (r->disk->appended + len <= 2 * r->disk->base + 65536) {
            r->disk->appended += len;
            run_disk_sync(r);
            add_write_v(w, name, rec, version, EW_APPEND);
            return;
        }
        free(rec);   /* the journal outweighs a snapshot: write one instead */
    } else {
        r->disk = emu_xcalloc(1, sizeof *r->disk);
        r->disk->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->disk->ps);
    }
    char *snap = run_snapshot(r, version);
    r->disk->base = strlen(snap) + 1;
    r->disk->appended = 0;
    run_disk_sync(r);
    add_write_v(w, name, snap, version, EW_SNAPSHOT);
}

/* ------------------------------------------------------------ persistence */

static pthread_mutex_t p_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { char *name; uint64_t version; int gone; } *p_seen;   /* newest version written per file; unlinked */
static size_t p_n, p_cap;

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes all of buf; -1 on error. */
static int write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        off += (size_t)k;
    }
    return 0;
}

/* content, then a newline when nl (journal records are lines). */
static int write_atomic(const char *rel, const char *content, int nl)
{
    char path[4096], tmp[4200], dir[4096];
    snprintf(path, sizeof path, "%s/%s", g_opts.data_dir, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (!content) {
        if (unlink(path) != 0 && errno != ENOENT) return -1;
        return fsync_dir(dir);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (write_all(fd, content, strlen(content)) != 0 || (nl && write_all(fd, "\n", 1) != 0) || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return fsync_dir(dir);
}

/* One journal record (a line) at the end of a file, synced.  A failed write
 * is cut off again so that the next record starts on a line of its own. */
static int append_line(const char *rel, const char *content)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_opts.data_dir, rel);
    int created = 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) { fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644); created = 1; }
    if (fd < 0) return -1;
    struct stat st;
    size_t len = strlen(content);
    char *line = emu_xmalloc(len + 1);
    memcpy(line, content, len);
    line[len] = '\n';
    int rc = fstat(fd, &st);
    if (rc == 0 && write_all(fd, line, len + 1) != 0) {
        rc = -1;
        if (ftruncate(fd, st.st_size) != 0) {}   /* best effort; a torn line is ignored on loading anyway */
    }
    free(line);
    if (rc == 0) rc = fdatasync(fd);
    close(fd);
    if (rc == 0 && created) {
        char *slash = strrchr(path, '/');
        *slash = 0;
        rc = fsync_dir(path);
    }
    return rc;
}

void persist_flush(emu_writes *w)
{
    emu_write *e = w->head;
    w->head = NULL;
    if (!e) return;
    pthread_mutex_lock(&p_lock);
    while (e) {
        emu_write *next = e->next;
        size_t i;
        for (i = 0; i < p_n; i++) if (strcmp(p_seen[i].name, e->name) == 0) break;
        if (i == p_n) {
            if (p_n == p_cap) {
                p_cap = p_cap ? p_cap * 2 : 64;
                p_seen = realloc(p_seen, p_cap * sizeof *p_seen);
                if (!p_seen) abort();
            }
            p_seen[p_n].name = emu_strdup(e->name);
            p_seen[p_n].version = 0;
            p_seen[p_n].gone = 0;
            p_n++;
        }
        int newer = e->version > p_seen[i].version, rc = 0;
        if (!e->content) {
            if (newer) { rc = write_atomic(e->name, NULL, 0); p_seen[i].gone = 1; }
        } else if (e->mode == EW_REPLACE || (e->mode == EW_SNAPSHOT && newer)) {
            if (newer) { rc = write_atomic(e->name, e->content, e->mode == EW_SNAPSHOT); p_seen[i].gone = 0; }
        } else if (newer || !p_seen[i].gone) {
            /* a record, or a snapshot older than a record already written: the
             * journal keeps it (on loading the newest version of each part wins) */
            rc = append_line(e->name, e->content);
            p_seen[i].gone = 0;
        }
        if (rc != 0)
            fprintf(stderr, "intuned-emulator: cannot write %s/%s: %s\n", g_opts.data_dir, e->name, strerror(errno));
        if (newer) p_seen[i].version = e->version;
        free(e->name);
        free(e->content);
        free(e);
        e = next;
    }
    pthread_mutex_unlock(&p_lock);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "intuned-emulator: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* Calls fn(path, parsed file), or text_fn(path, text), for every *.json of
 * data_dir/sub; drops leftovers of interrupted writes. */
static void each_file(const char *sub, void (*fn)(const char *, cJSON *), void (*text_fn)(const char *, char *))
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", g_opts.data_dir, sub);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) { unlink(path); continue; }
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        char *text = read_file(path);
        if (text_fn) {
            if (text) text_fn(path, text);
            else fprintf(stderr, "intuned-emulator: ignoring unreadable %s\n", path);
            free(text);
            continue;
        }
        cJSON *t = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!t) { fprintf(stderr, "intuned-emulator: ignoring unreadable %s\n", path); continue; }
        fn(path, t);
        cJSON_Delete(t);
    }
    closedir(d);
}

static const persist_loader *g_loader;   /* during persist_load */

static void load_job(const char *path, cJSON *f)
{
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(f, "project");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(f, "seq");
    cJSON *doc = cJSON_DetachItemFromObjectCaseSensitive(f, "job");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (!cJSON_IsString(project) || !cJSON_IsString(id) || !cJSON_IsNumber(seq) || seq->valuedouble < 0) {
        fprintf(stderr, "intuned-emulator: ignoring malformed %s\n", path);
        cJSON_Delete(doc);
        return;
    }
    emu_job *j = emu_xcalloc(1, sizeof *j);
    j->project = emu_strdup(project->valuestring);
    j->id = emu_strdup(id->valuestring);
    j->doc = doc;
    j->seq = (uint64_t)seq->valuedouble;
    itd_error err = ITD_ERROR_INIT;
    if (g_loader->job(j, &err)) {
        fprintf(stderr, "intuned-emulator: ignoring invalid job in %s: %s\n", path, err.message);
        itd_error_clear(&err);
    }
}

/* A record's version; files written before journals existed have none (0). */
static uint64_t rec_version(const cJSON *f)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "v");
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (uint64_t)v->valuedouble : 0;
}

static void apply_counters(emu_run *r, const cJSON *f)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(f, "status");
    if (cJSON_IsString(status)) snprintf(r->status, sizeof r->status, "%s", status->valuestring);
    r->end_time = parse_time(cJSON_GetObjectItemCaseSensitive(f, "end_time"));
    r->updated = parse_time(cJSON_GetObjectItemCaseSensitive(f, "updated"));
    r->max_in_flight = (int)numv(f, "max_in_flight", 0);
    r->deliveries_ok = (long)numv(f, "deliveries_ok", 0);
    r->deliveries_failed = (long)numv(f, "deliveries_failed", 0);
    r->deliveries_skipped = (long)numv(f, "deliveries_skipped", 0);
    r->delivery_attempts = (long)numv(f, "delivery_attempts", 0);
}

static void apply_payload(emu_pstate *ps, const cJSON *p)
{
    int st = (int)numv(p, "state", P_WAIT);
    int dv = (int)numv(p, "delivery", 0);
    ps->state = st >= P_WAIT && st <= P_FAIL && st != P_RUNNING ? st : P_WAIT;
    ps->attempts = (int)numv(p, "attempts", 0);
    ps->delivery = dv >= 0 && dv <= 4 ? dv : 0;
    free(ps->result);
    ps->result = NULL;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(p, "result");
    if (cJSON_IsObject(res)) ps->result = itd_json_print(res, NULL);
}

/* A run file: a journal of records, one per line (see the top of the file). */
static void load_run(const char *path, char *text)
{
    size_t nrec = 0, cap = 0, lines = 0;
    int dirty = 0;
    cJSON **recs = NULL, *base = NULL;
    uint64_t vmax = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        else dirty = 1;   /* no newline at the end: a torn record, or a file of the older single-document form */
        if (*line) {
            lines++;
            cJSON *f = cJSON_Parse(line);
            if (!cJSON_IsObject(f)) { cJSON_Delete(f); dirty = 1; }
            else {
                if (nrec == cap) {
                    cap = cap ? cap * 2 : 16;
                    recs = realloc(recs, cap * sizeof *recs);
                    if (!recs) abort();
                }
                recs[nrec++] = f;
                uint64_t v = rec_version(f);
                if (v > vmax) vmax = v;
                /* the newest snapshot is the base; the other records are laid over it */
                if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(f, "payloads"))
                    && (!base || v > rec_version(base))) base = f;
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    if (lines != 1) dirty = 1;
    if (vmax >= g_version) g_version = vmax + 1;
    emu_run *r = NULL;
    const cJSON *f = base;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(f, "project");
    const cJSON *job_id = cJSON_GetObjectItemCaseSensitive(f, "jobId");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(f, "status");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(f, "seq");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(f, "payloads");
    if (!cJSON_IsString(id) || !cJSON_IsString(project) || !cJSON_IsString(job_id) || !cJSON_IsString(type)
        || !cJSON_IsString(status) || !cJSON_IsNumber(seq) || seq->valuedouble < 0 || !cJSON_IsArray(ps)) {
        fprintf(stderr, "intuned-emulator: ignoring malformed %s\n", path);
        goto done;
    }
    if (!g_loader->run_wanted(project->valuestring, job_id->valuestring, id->valuestring)) {
        unlink(path);   /* its job was deleted before the runs were: finish that */
        goto done;
    }
    itd_job *snap = itd_decode_take(&itd_Job, cJSON_DetachItemFromObjectCaseSensitive(base, "job"), NULL, NULL);
    if (!snap || snap->payload.n != (size_t)cJSON_GetArraySize(ps)) {
        fprintf(stderr, "intuned-emulator: ignoring invalid run in %s\n", path);
        itd_free(&itd_Job, snap);
        goto done;
    }
    r = emu_xcalloc(1, sizeof *r);
    r->id = emu_strdup(id->valuestring);
    r->project = emu_strdup(project->valuestring);
    r->job_id = emu_strdup(job_id->valuestring);
    snprintf(r->type, sizeof r->type, "%s", type->valuestring);
    r->start_time = parse_time(cJSON_GetObjectItemCaseSensitive(f, "start_time"));
    apply_counters(r, f);
    r->snap = snap;
    r->n = snap->payload.n;
    r->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->ps);
    uint64_t *pv = emu_xcalloc(r->n ? r->n : 1, sizeof *pv);   /* version of what each payload holds */
    uint64_t bv = rec_version(base), cv = bv;
    size_t i = 0;
    for (const cJSON *p = ps->child; p; p = p->next, i++) { apply_payload(&r->ps[i], p); pv[i] = bv; }
    for (size_t k = 0; k < nrec; k++) {
        const cJSON *x = recs[k];
        uint64_t v = rec_version(x);
        if (x == base || v == 0) continue;
        const cJSON *xid = cJSON_GetObjectItemCaseSensitive(x, "id");
        if (!cJSON_IsString(xid) || strcmp(xid->valuestring, r->id) != 0) { dirty = 1; continue; }
        if (v > cv) { apply_counters(r, x); cv = v; }
        const cJSON *xs = cJSON_GetObjectItemCaseSensitive(x, "payloads");
        if (cJSON_IsArray(xs)) {   /* an older snapshot appended late: only what it holds newer */
            if ((size_t)cJSON_GetArraySize(xs) != r->n) continue;
            i = 0;
            for (const cJSON *p = xs->child; p; p = p->next, i++)
                if (v > pv[i]) { apply_payload(&r->ps[i], p); pv[i] = v; }
            continue;
        }
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(x, "changed");
        for (const cJSON *p = cJSON_IsArray(ch) ? ch->child : NULL; p; p = p->next) {
            double idx = numv(p, "i", -1);
            if (idx < 0 || idx >= (double)r->n || idx != floor(idx)) continue;
            size_t j = (size_t)idx;
            if (v > pv[j]) { apply_payload(&r->ps[j], p); pv[j] = v; }
        }
    }
    free(pv);
    r->seq = (uint64_t)seq->valuedouble;
    g_loader->run(r);
    /* what the file says, from now on; a journal is folded into one snapshot
     * (nothing appended may follow a torn line) */
    r->disk = emu_xcalloc(1, sizeof *r->disk);
    r->disk->ps = emu_xcalloc(r->n ? r->n : 1, sizeof *r->disk->ps);
    run_disk_sync(r);
    if (dirty) {
        char *snapshot = run_snapshot(r, g_version++);
        r->disk->base = strlen(snapshot) + 1;
        char rel[300];
        snprintf(rel, sizeof rel, "runs/%s.json", r->id);
        if (write_atomic(rel, snapshot, 1) != 0)
            fprintf(stderr, "intuned-emulator: cannot write %s: %s\n", path, strerror(errno));
        free(snapshot);
    } else {
        r->disk->base = strlen(text) + 1;
    }
done:
    for (size_t k = 0; k < nrec; k++) cJSON_Delete(recs[k]);
    free(recs);
}

int persist_load(const persist_loader *l)
{
    if (!g_opts.data_dir) return 0;
    char path[4096];
    if (ensure_dir(g_opts.data_dir)) return -1;
    snprintf(path, sizeof path, "%s/jobs", g_opts.data_dir);
    if (ensure_dir(path)) return -1;
    snprintf(path, sizeof path, "%s/runs", g_opts.data_dir);
    if (ensure_dir(path)) return -1;
    g_loader = l;
    each_file("jobs", load_job, NULL);
    each_file("runs", NULL, load_run);
    g_loader = NULL;
    return 0;
}

void persist_shutdown(void)
{
    pthread_mutex_lock(&p_lock);
    for (size_t i = 0; i < p_n; i++) free(p_seen[i].name);
    free(p_seen);
    p_seen = NULL;
    p_n = p_cap = 0;
    pthread_mutex_unlock(&p_lock);
}
