/*
 * The loop runner (looprun.h): runs kept as JSON documents in the state
 * database, advanced one step at a time by one thread.
 *
 * A step does a bounded piece of work and writes the document back: a
 * curation, one start or poll of a training job, a load, a gate, a look at
 * the deployment.  What a step needs after a restart is in the document
 * (the dataset's id, the job's JSON, the candidate's name, the report's
 * path), so the thread never keeps a run's state in memory between steps.
 *
 * Bounds: one runner thread (runs advance in turn; a curation or a gate
 * holds the others for its duration, each bounded by its own limits); a
 * document keeps the last GYRE_LOOP_RUN_EVENTS events; a listing answers at
 * most GYRE_LOOP_RUNS_LIST_MAX runs; a spec is at most 256 KB.
 */
#include "loop/looprun.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "loop/dataset.h"
#include "loop/dataset_curate.h"
#include "loop/gate.h"
#include "loop/loopspec.h"
#include "loop/serve.h"
#include "loop/spec.h"
#include "loop/train.h"
#include "store/store.h"
#include "trace/record.h"

/* The gate's reports, a run's folder and the document: the report is read back whole for the API. */
#define LOOP_REPORT_MAX ((size_t)64 << 20)
/* How often the scheduler reads its spec files again (a file changed on disk is seen within this). */
#define LOOP_SCHEDULE_EVERY_US (5 * 1000000LL)
/* The runner's idle wait between rounds: a step that waits (a poll not due, a canary step held) costs a read. */
#define LOOP_TICK_MS 200

static const char schema[] = "CREATE TABLE IF NOT EXISTS loop_runs ("
                             " id TEXT PRIMARY KEY,"
                             " name TEXT NOT NULL,"
                             " status TEXT NOT NULL,"
                             " created_us INTEGER NOT NULL,"
                             " cancel INTEGER NOT NULL DEFAULT 0,"
                             " doc TEXT NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS loop_runs_by_name ON loop_runs (name, created_us);"
                             "CREATE INDEX IF NOT EXISTS loop_runs_by_status ON loop_runs (status);";

struct gyre_loop_runner {
    gyre_loop_host_t host;
    char key[128];
    char work_dir[4096];
    char **specs;
    size_t nspecs;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, wake, go;
    gyre_store_t *store; /* the thread's own handle, opened on first use */
    int64_t schedule_checked_us;
};

static int64_t now_us(void)
{
    return gyre_trace_now_us();
}

int gyre_loop_run_id_ok(const char *id, size_t len)
{
    if (len != 20 || memcmp(id, "run_", 4) != 0)
        return 0;
    for (size_t i = 4; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- The documents ------------------------------------------------------ */

static int doc_load(gyre_state_t *st, const char *id, cJSON **out, int *cancel)
{
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = -ENOENT;
    if (sqlite3_prepare_v2(db, "SELECT doc, cancel FROM loop_runs WHERE id = ?", -1, &q, NULL) != SQLITE_OK) {
        gyre_state_unlock(st);
        return -EIO;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(q, 0);
        *out = text != NULL ? cJSON_Parse(text) : NULL;
        if (cancel != NULL)
            *cancel = sqlite3_column_int(q, 1);
        rc = *out != NULL ? 0 : -EIO;
    }
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    return rc;
}

static int doc_save(gyre_state_t *st, cJSON *doc, int insert)
{
    cJSON_DeleteItemFromObject(doc, "updated_us");
    cJSON_AddNumberToObject(doc, "updated_us", (double)now_us());
    char *text = cJSON_PrintUnformatted(doc);
    if (text == NULL)
        return -ENOMEM;
    const cJSON *id = cJSON_GetObjectItem(doc, "id"), *name = cJSON_GetObjectItem(doc, "name"),
                *status = cJSON_GetObjectItem(doc, "status"), *created = cJSON_GetObjectItem(doc, "created_us");
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                insert ? "INSERT INTO loop_runs (id, name, status, created_us, doc) VALUES (?1, ?2, ?3, "
                                         "?4, ?5)"
                                       : "UPDATE loop_runs SET status = ?3, doc = ?5 WHERE id = ?1",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, cJSON_GetStringValue(id), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, cJSON_GetStringValue(name), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, cJSON_GetStringValue(status), -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)cJSON_GetNumberValue(created));
        sqlite3_bind_text(q, 5, text, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
    } else
        rc = -EIO;
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    free(text);
    if (rc != 0)
        gyre_logf("gyre: loop: cannot write run %s to the state database\n", cJSON_GetStringValue(id));
    return rc;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, name));
    return s != NULL ? s : "";
}

static void set_str(cJSON *o, const char *name, const char *value)
{
    cJSON_DeleteItemFromObject(o, name);
    cJSON_AddStringToObject(o, name, value);
}

static void set_num(cJSON *o, const char *name, double value)
{
    cJSON_DeleteItemFromObject(o, name);
    cJSON_AddNumberToObject(o, name, value);
}

/* An event: the time, the stage, what happened; the oldest go past GYRE_LOOP_RUN_EVENTS. */
static void add_event(cJSON *doc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_event(cJSON *doc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *events = cJSON_GetObjectItem(doc, "events");
    if (events == NULL)
        events = cJSON_AddArrayToObject(doc, "events");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "at_us", (double)now_us());
    cJSON_AddStringToObject(e, "stage", str_of(doc, "stage"));
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(events, e);
    if (cJSON_GetArraySize(events) > GYRE_LOOP_RUN_EVENTS) {
        cJSON_DeleteItemFromArray(events, 0);
        set_num(doc, "events_dropped", cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "events_dropped")) + 1);
    }
}

static void set_stage(cJSON *doc, const char *stage)
{
    set_str(doc, "stage", stage);
    add_event(doc, "stage %s", stage);
}

/* Ends the run: its status, why, and the stage it ended in stays. */
static void finish(cJSON *doc, const char *status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(cJSON *doc, const char *status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_str(doc, "status", status);
    set_str(doc, "reason", msg);
    set_num(doc, "finished_us", (double)now_us());
    add_event(doc, "%s: %s", status, msg);
}

/* ---- Submitting --------------------------------------------------------- */

int gyre_loop_submit(gyre_loop_runner_t *r, const char *text, size_t len, const char *path, const char *trigger,
                     char *id_out, size_t id_size, char *err, size_t errlen)
{
    return gyre_loop_submit_doc(r, text, len, path, trigger, id_out, id_size, NULL, err, errlen);
}

int gyre_loop_submit_doc(gyre_loop_runner_t *r, const char *text, size_t len, const char *path, const char *trigger,
                         char *id_out, size_t id_size, gyre_buf_t *out, char *err, size_t errlen)
{
    gyre_loop_spec_t *spec = gyre_loop_spec_parse(text, len, path, err, errlen);
    if (spec == NULL)
        return -EINVAL;
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    char id[GYRE_LOOP_RUN_ID_MAX];
    snprintf(id, sizeof(id), "run_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
             rnd[6], rnd[7]);
    /* One running run per name: two runs deploying to one route would fight over it. */
    sqlite3 *db = gyre_state_lock(r->host.state);
    sqlite3_stmt *q = NULL;
    char running[GYRE_LOOP_RUN_ID_MAX] = "";
    if (sqlite3_prepare_v2(db, "SELECT id FROM loop_runs WHERE name = ? AND status = 'running' LIMIT 1", -1, &q,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, spec->name, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(running, sizeof(running), "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
    }
    gyre_state_unlock(r->host.state);
    if (running[0] != '\0') {
        snprintf(err, errlen, "loop '%s' has a run going already (%s): wait for it or cancel it", spec->name, running);
        gyre_loop_spec_free(spec);
        return -EBUSY;
    }
    int64_t now = now_us();
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddStringToObject(doc, "name", spec->name);
    cJSON_AddStringToObject(doc, "route", spec->route);
    cJSON_AddStringToObject(doc, "trigger", trigger);
    cJSON_AddStringToObject(doc, "status", "running");
    cJSON_AddStringToObject(doc, "stage", spec->dataset != NULL ? "train" : "curate");
    cJSON_AddNumberToObject(doc, "created_us", (double)now);
    cJSON_AddStringToObject(doc, "spec_path", path != NULL ? path : "");
    cJSON_AddStringToObject(doc, "spec", spec->text);
    if (spec->dataset != NULL) {
        cJSON *ds = cJSON_AddObjectToObject(doc, "dataset");
        cJSON_AddStringToObject(ds, "id", spec->dataset);
    }
    add_event(doc, "submitted (%s)", trigger);
    int rc = doc_save(r->host.state, doc, 1);
    if (rc == 0 && out != NULL) {
        char *t = cJSON_PrintUnformatted(doc);
        if (t != NULL)
            gyre_buf_appends(out, t);
        free(t);
    }
    cJSON_Delete(doc);
    gyre_loop_spec_free(spec);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the run to the state database");
        return rc;
    }
    snprintf(id_out, id_size, "%s", id);
    pthread_mutex_lock(&r->mu);
    r->wake = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int gyre_loop_cancel(gyre_loop_runner_t *r, const char *id, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(r->host.state);
    sqlite3_stmt *q = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db, "SELECT status FROM loop_runs WHERE id = ?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW)
            rc = -ENOENT;
        else if (strcmp((const char *)sqlite3_column_text(q, 0), "running") != 0)
            rc = -EALREADY;
        else
            rc = 0;
        sqlite3_finalize(q);
    }
    if (rc == 0 && sqlite3_prepare_v2(db, "UPDATE loop_runs SET cancel = 1 WHERE id = ?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
        sqlite3_finalize(q);
    }
    gyre_state_unlock(r->host.state);
    if (rc == -ENOENT)
        snprintf(err, errlen, "no loop run %s", id);
    else if (rc == -EALREADY)
        snprintf(err, errlen, "loop run %s has ended already", id);
    else if (rc != 0)
        snprintf(err, errlen, "cannot write to the state database");
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        r->wake = 1;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

/* ---- Reading ------------------------------------------------------------ */

int gyre_loop_runs_json(gyre_state_t *st, size_t limit, gyre_buf_t *out, char *err, size_t errlen)
{
    if (limit == 0 || limit > GYRE_LOOP_RUNS_LIST_MAX)
        limit = GYRE_LOOP_RUNS_LIST_MAX;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT doc FROM loop_runs ORDER BY created_us DESC, id LIMIT ?", -1, &q, NULL) !=
        SQLITE_OK) {
        gyre_state_unlock(st);
        snprintf(err, errlen, "cannot read the state database: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(q, 1, (sqlite3_int64)limit);
    gyre_buf_appends(out, "{\"runs\":[");
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n++ > 0)
            gyre_buf_appends(out, ",");
        gyre_buf_append(out, sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0));
    }
    gyre_buf_appends(out, "]}");
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    return gyre_buf_failed(out) ? -E2BIG : 0;
}

int gyre_loop_run_json(gyre_state_t *st, const char *id, gyre_buf_t *out, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = -ENOENT;
    if (sqlite3_prepare_v2(db, "SELECT doc FROM loop_runs WHERE id = ?", -1, &q, NULL) != SQLITE_OK) {
        gyre_state_unlock(st);
        snprintf(err, errlen, "cannot read the state database");
        return -EIO;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        gyre_buf_append(out, sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0));
        rc = gyre_buf_failed(out) ? -E2BIG : 0;
    } else
        snprintf(err, errlen, "no loop run %s", id);
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    return rc;
}

int gyre_loop_run_report(gyre_state_t *st, const char *id, int markdown, gyre_buf_t *out, char *err, size_t errlen)
{
    cJSON *doc = NULL;
    int rc = doc_load(st, id, &doc, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "no loop run %s", id);
        return rc;
    }
    const char *path = str_of(cJSON_GetObjectItem(doc, "gate"), markdown ? "report_md" : "report_json");
    if (path[0] == '\0') {
        snprintf(err, errlen, "loop run %s has no gate report (yet)", id);
        cJSON_Delete(doc);
        return -ENOENT;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, LOOP_REPORT_MAX);
    rc = gyre_buf_append_file(&b, path);
    if (rc == 0)
        gyre_buf_append(out, b.base, b.len);
    else
        snprintf(err, errlen, "reading the gate report of %s: %s", id, strerror(-rc));
    gyre_buf_dispose(&b);
    cJSON_Delete(doc);
    return rc == 0 ? (gyre_buf_failed(out) ? -E2BIG : 0) : (rc == -ENOENT ? -ENOENT : rc);
}

/* ---- The stages --------------------------------------------------------- */

typedef struct step_ctx {
    gyre_loop_runner_t *r;
    cJSON *doc;
    const gyre_loop_spec_t *spec;
    const gyre_config_t *config;
    char run_dir[4096];
    char dataset_dir[4096];
    int64_t progress_at;
} step_ctx_t;

static void progress_set(step_ctx_t *c, const char *what, double done, double total)
{
    cJSON *p = cJSON_GetObjectItem(c->doc, "progress");
    if (p == NULL)
        p = cJSON_AddObjectToObject(c->doc, "progress");
    set_str(p, "stage", what);
    set_num(p, "done", done);
    set_num(p, "total", total);
    /* Written at most twice a second, and at the end: the CLI's progress bar reads it. */
    int64_t now = now_us();
    if (now - c->progress_at >= 500000 || done >= total) {
        c->progress_at = now;
        doc_save(c->r->host.state, c->doc, 0);
    }
}

static void curate_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_set(ctx, "curate", (double)done, (double)total);
}

static gyre_store_t *runner_store(gyre_loop_runner_t *r, char *err, size_t errlen)
{
    if (r->store == NULL && r->host.store_dsn != NULL && gyre_store_open(r->host.store_dsn, 0, &r->store, err, errlen) != 0)
        r->store = NULL;
    if (r->store == NULL && r->host.store_dsn == NULL)
        snprintf(err, errlen, "no trace store is configured");
    return r->store;
}

static void stage_curate(step_ctx_t *c)
{
    char err[1024] = "";
    gyre_curate_spec_t *cs = gyre_curate_spec_load(c->spec->curate_path, now_us(), err, sizeof(err));
    if (cs == NULL) {
        finish(c->doc, "failed", "the curation spec: %s", err);
        return;
    }
    gyre_store_t *store = runner_store(c->r, err, sizeof(err));
    if (store == NULL) {
        finish(c->doc, "failed", "the trace store: %s", err);
        gyre_curate_spec_free(cs);
        return;
    }
    char dir[4096];
    if (gyre_dataset_dir(c->config, dir, sizeof(dir)) == NULL) {
        finish(c->doc, "failed", "no datasets folder: set `datasets:` in the config");
        gyre_curate_spec_free(cs);
        return;
    }
    gyre_dataset_run_t run;
    memset(&run, 0, sizeof(run));
    int rc = gyre_dataset_curate(store, cs, dir, NULL, curate_progress, c, now_us(), &run, err, sizeof(err));
    gyre_curate_spec_free(cs);
    if (rc != 0) {
        finish(c->doc, "failed", "curation: %s", err);
        return;
    }
    cJSON *ds = cJSON_AddObjectToObject(c->doc, "dataset");
    cJSON_AddStringToObject(ds, "id", run.res.id);
    cJSON_AddNumberToObject(ds, "train", (double)run.res.lines[GYRE_DATASET_TRAIN]);
    cJSON_AddNumberToObject(ds, "heldout", (double)run.res.lines[GYRE_DATASET_HELDOUT]);
    cJSON_AddBoolToObject(ds, "existed", run.res.existed);
    add_event(c->doc, "dataset %s: %zu training and %zu held-out examples", run.res.id,
              run.res.lines[GYRE_DATASET_TRAIN], run.res.lines[GYRE_DATASET_HELDOUT]);
    size_t ntrain = run.res.lines[GYRE_DATASET_TRAIN], nheld = run.res.lines[GYRE_DATASET_HELDOUT];
    gyre_dataset_run_dispose(&run);
    if (ntrain == 0 || nheld == 0) {
        finish(c->doc, "failed", "the dataset has %zu training and %zu held-out examples: the gate needs both", ntrain,
               nheld);
        return;
    }
    set_stage(c->doc, "train");
}

static void job_event(void *ctx, int64_t at_us, const char *level, const char *message)
{
    (void)at_us;
    step_ctx_t *c = ctx;
    add_event(c->doc, "job %s: %s", level, message);
}

static void train_env(step_ctx_t *c, gyre_train_env_t *env)
{
    memset(env, 0, sizeof(*env));
    env->config = c->config;
    env->conf = &c->spec->train;
    env->dataset_dir = c->dataset_dir;
    env->work_dir = c->run_dir;
    env->run_id = str_of(c->doc, "id");
}

static void save_job(cJSON *doc, const gyre_train_job_t *job)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_train_job_json(job, &b);
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    gyre_buf_dispose(&b);
    cJSON_DeleteItemFromObject(doc, "job");
    if (j != NULL)
        cJSON_AddItemToObject(doc, "job", j);
}

static int load_job(const cJSON *doc, gyre_train_job_t *job)
{
    memset(job, 0, sizeof(*job));
    const cJSON *j = cJSON_GetObjectItem(doc, "job");
    if (j == NULL)
        return -ENOENT;
    char *text = cJSON_PrintUnformatted(j);
    int rc = text != NULL ? gyre_train_job_from_json(text, strlen(text), job) : -ENOMEM;
    free(text);
    return rc;
}

static void stage_train(step_ctx_t *c, int cancel)
{
    const gyre_train_backend_t *be = gyre_train_backend_find(c->spec->train.backend);
    char err[1024] = "";
    gyre_train_env_t env;
    train_env(c, &env);
    gyre_train_job_t job;
    if (load_job(c->doc, &job) != 0) {
        if (cancel) {
            finish(c->doc, "cancelled", "cancelled before training began");
            return;
        }
        memset(&job, 0, sizeof(job));
        if (be->start(&env, &job, err, sizeof(err)) != 0) {
            finish(c->doc, "failed", "starting the %s training job: %s", be->name, err);
            return;
        }
        add_event(c->doc, "job %s started on %s", job.id, be->name);
        save_job(c->doc, &job);
        set_num(c->doc, "next_poll_us", (double)(now_us() + (int64_t)c->spec->train.poll_ms * 1000));
        return;
    }
    int64_t now = now_us();
    if (cancel || now - job.started_us > (int64_t)c->spec->train.timeout_ms * 1000) {
        if (be->cancel(&env, &job, err, sizeof(err)) != 0)
            add_event(c->doc, "cancelling job %s: %s", job.id, err);
        save_job(c->doc, &job);
        if (cancel)
            finish(c->doc, "cancelled", "cancelled while training (job %s cancelled)", job.id);
        else
            finish(c->doc, "failed", "the training job %s ran past train.timeout and was cancelled", job.id);
        return;
    }
    if (now < (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(c->doc, "next_poll_us")))
        return;
    int rc = be->poll(&env, &job, job_event, c, err, sizeof(err));
    set_num(c->doc, "next_poll_us", (double)(now_us() + (int64_t)c->spec->train.poll_ms * 1000));
    if (rc != 0) {
        /* A poll that failed (the service unreachable for a moment) is tried again; the timeout bounds it. */
        add_event(c->doc, "polling job %s: %s", job.id, err);
        return;
    }
    save_job(c->doc, &job);
    if (job.progress >= 0)
        progress_set(c, "train", job.progress, 1);
    if (strcmp(job.status, "succeeded") == 0) {
        add_event(c->doc, "job %s succeeded: %s", job.id, job.model);
        set_stage(c->doc, "serve");
    } else if (strcmp(job.status, "failed") == 0)
        finish(c->doc, "failed", "the training job %s failed: %s", job.id, job.error[0] ? job.error : "(no reason)");
    else if (strcmp(job.status, "cancelled") == 0)
        finish(c->doc, "failed", "the training job %s was cancelled at the service", job.id);
}

/* The route's incumbent as the gate addresses it: "provider/model" of its first target. */
static int incumbent_of(const gyre_config_t *config, const char *route, char *out, size_t size)
{
    for (size_t i = 0; i < config->nroutes; i++) {
        const gyre_route_conf_t *rc = &config->routes[i];
        if (strcmp(rc->name, route) != 0 || rc->ntargets == 0)
            continue;
        snprintf(out, size, "%s/%s", config->providers[rc->targets[0].provider].name, rc->targets[0].model);
        return 0;
    }
    return -ENOENT;
}

static void stage_serve(step_ctx_t *c)
{
    gyre_train_job_t job;
    load_job(c->doc, &job);
    const gyre_serve_conf_t *sv = &c->spec->serve;
    char name[256], target[1024], err[1024] = "";
    if (sv->name != NULL)
        snprintf(name, sizeof(name), "%s", sv->name);
    else
        snprintf(name, sizeof(name), "gyre-%s", str_of(c->doc, "id"));
    if (sv->provider == NULL) {
        finish(c->doc, "failed", "serve.provider is not set: the candidate needs a provider that serves it");
        return;
    }
    if (gyre_serve_load(c->config, sv, job.model, name, target, sizeof(target), err, sizeof(err)) != 0) {
        finish(c->doc, "failed", "serving the candidate: %s", err);
        return;
    }
    cJSON *cand = cJSON_AddObjectToObject(c->doc, "candidate");
    cJSON_AddStringToObject(cand, "provider", sv->provider);
    cJSON_AddStringToObject(cand, "model", target);
    cJSON_AddStringToObject(cand, "adapter", sv->adapter == GYRE_ADAPTER_NONE ? "" : name);
    add_event(c->doc, "candidate %s/%s%s", sv->provider, target, sv->adapter != GYRE_ADAPTER_NONE ? " (adapter loaded)" : "");
    set_stage(c->doc, "gate");
}

static void gate_progress(void *ctx, unsigned done, unsigned total)
{
    progress_set(ctx, "gate", done, total);
}

static void unload_candidate(step_ctx_t *c)
{
    const char *adapter = str_of(cJSON_GetObjectItem(c->doc, "candidate"), "adapter");
    char err[512];
    if (adapter[0] != '\0' && gyre_serve_unload(c->config, &c->spec->serve, adapter, err, sizeof(err)) != 0)
        add_event(c->doc, "unloading adapter %s: %s", adapter, err);
}

static int write_file(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

static void stage_gate(step_ctx_t *c)
{
    const cJSON *cand = cJSON_GetObjectItem(c->doc, "candidate");
    char candidate[1400], incumbent[1400], err[1024] = "";
    snprintf(candidate, sizeof(candidate), "%s/%s", str_of(cand, "provider"), str_of(cand, "model"));
    if (incumbent_of(c->config, c->spec->route, incumbent, sizeof(incumbent)) != 0) {
        finish(c->doc, "failed", "route '%s' is not in the config in force (or has no target)", c->spec->route);
        return;
    }
    gyre_gate_env_t env;
    memset(&env, 0, sizeof(env));
    env.config = c->config;
    env.conf = &c->spec->gate;
    env.dataset_dir = c->dataset_dir;
    env.candidate = candidate;
    env.incumbent = incumbent;
    env.url = c->r->host.listener;
    env.key = c->r->key;
    env.progress = gate_progress;
    env.progress_ctx = c;
    gyre_buf_t json, md;
    gyre_buf_init(&json, LOOP_REPORT_MAX);
    gyre_buf_init(&md, LOOP_REPORT_MAX);
    int passed = 0;
    int rc = gyre_gate_run(&env, &json, &md, &passed, err, sizeof(err));
    if (rc != 0) {
        unload_candidate(c);
        finish(c->doc, "failed", "the gate could not run: %s", err);
    } else {
        char pj[4200], pm[4200];
        snprintf(pj, sizeof(pj), "%s/gate.json", c->run_dir);
        snprintf(pm, sizeof(pm), "%s/gate.md", c->run_dir);
        if (write_file(pj, json.base, json.len) != 0 || write_file(pm, md.base, md.len) != 0)
            add_event(c->doc, "cannot write the gate report in %s", c->run_dir);
        cJSON *g = cJSON_AddObjectToObject(c->doc, "gate");
        cJSON_AddBoolToObject(g, "passed", passed);
        cJSON_AddStringToObject(g, "incumbent", incumbent);
        cJSON_AddStringToObject(g, "candidate", candidate);
        cJSON_AddStringToObject(g, "report_json", pj);
        cJSON_AddStringToObject(g, "report_md", pm);
        /* The report's verdict and metrics, so that history shows them without reading the file. */
        cJSON *report = cJSON_ParseWithLength(json.base, json.len);
        const cJSON *metrics = cJSON_GetObjectItem(report, "metrics");
        if (metrics != NULL)
            cJSON_AddItemToObject(g, "metrics", cJSON_Duplicate(metrics, 1));
        cJSON_Delete(report);
        if (passed) {
            add_event(c->doc, "the gate passed %s against %s", candidate, incumbent);
            set_stage(c->doc, "deploy");
        } else {
            unload_candidate(c);
            finish(c->doc, "rejected", "the gate rejected %s against %s (report: %s)", candidate, incumbent, pm);
        }
    }
    gyre_buf_dispose(&json);
    gyre_buf_dispose(&md);
}

static void stage_deploy(step_ctx_t *c, int cancel)
{
    const gyre_deploy_host_t *h = c->r->host.deploy;
    const char *id = str_of(c->doc, "id");
    const cJSON *cand = cJSON_GetObjectItem(c->doc, "candidate");
    char err[1024] = "", state[64] = "";
    if (!cJSON_IsTrue(cJSON_GetObjectItem(c->doc, "deploy_begun"))) {
        if (cancel) {
            unload_candidate(c);
            finish(c->doc, "cancelled", "cancelled before the canary began");
            return;
        }
        /* The deployment loads an adapter itself (and unloads it on a rollback): the gate's copy goes first. */
        const char *model = str_of(cand, "model");
        gyre_train_job_t job;
        if (c->spec->serve.adapter != GYRE_ADAPTER_NONE) {
            unload_candidate(c);
            load_job(c->doc, &job);
            model = job.model;
        }
        if (gyre_deploy_begin_watch(h, &c->spec->deploy, c->spec->watch_window_ms, c->spec->route, id,
                                    str_of(cand, "provider"), model, &c->spec->serve, err, sizeof(err)) != 0) {
            unload_candidate(c);
            finish(c->doc, "failed", "starting the canary: %s", err);
            return;
        }
        cJSON_AddBoolToObject(c->doc, "deploy_begun", 1);
        add_event(c->doc, "canary of %s/%s on route %s at %u %%", str_of(cand, "provider"), str_of(cand, "model"),
                  c->spec->route, c->spec->deploy.ramp[0]);
        return;
    }
    if (cancel) {
        if (gyre_deploy_rollback(h, c->spec->route, "loop:cancel", "the loop run was cancelled", err, sizeof(err)) != 0)
            add_event(c->doc, "rolling back: %s", err);
        finish(c->doc, "cancelled", "cancelled during the deployment (rolled back)");
        return;
    }
    gyre_buf_t dj;
    gyre_buf_init(&dj, 4 << 20);
    if (gyre_deploy_run_state(h, id, state, sizeof(state), &dj) != 0) {
        gyre_buf_dispose(&dj);
        return;
    }
    cJSON *d = cJSON_ParseWithLength(dj.base, dj.len);
    gyre_buf_dispose(&dj);
    char before[64];
    snprintf(before, sizeof(before), "%s", str_of(cJSON_GetObjectItem(c->doc, "deployment"), "state"));
    if (d != NULL) {
        cJSON_DeleteItemFromObject(c->doc, "deployment");
        set_str(d, "state", state);
        cJSON_AddItemToObject(c->doc, "deployment", d);
    }
    if (strcmp(before, state) == 0)
        return;
    if (strcmp(state, "promoted") == 0) {
        add_event(c->doc, "promoted to 100 %%; watching");
        set_stage(c->doc, "watch");
    } else if (strcmp(state, "done") == 0) {
        set_stage(c->doc, "finished");
        finish(c->doc, "done", "the candidate serves route %s", c->spec->route);
    } else if (strcmp(state, "rolled_back") == 0) {
        /* Why: the last decision's (the rollback's) reason. */
        const cJSON *ds = cJSON_GetObjectItem(d, "decisions");
        const cJSON *last = cJSON_GetArrayItem(ds, cJSON_GetArraySize(ds) - 1);
        finish(c->doc, "rolled_back", "the deployment was rolled back: %s", str_of(last, "why"));
    }
}

/* a/b into out: 0, or -ENAMETOOLONG. */
static int path_join(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int mkdir_run(const char *dir)
{
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* One step of run `id`. */
static void step(gyre_loop_runner_t *r, const char *id)
{
    cJSON *doc = NULL;
    int cancel = 0;
    if (doc_load(r->host.state, id, &doc, &cancel) != 0)
        return;
    char err[1024] = "";
    const char *text = str_of(doc, "spec"), *path = str_of(doc, "spec_path");
    gyre_loop_spec_t *spec = gyre_loop_spec_parse(text, strlen(text), path[0] ? path : NULL, err, sizeof(err));
    const gyre_deploy_host_t *h = r->host.deploy;
    const gyre_config_t *config = h->config(h->ctx);
    char *was = cJSON_PrintUnformatted(doc);
    if (spec == NULL) {
        finish(doc, "failed", "the spec no longer reads: %s", err);
    } else {
        step_ctx_t c = {.r = r, .doc = doc, .spec = spec, .config = config};
        char dsdir[4096];
        const char *dsid = str_of(cJSON_GetObjectItem(doc, "dataset"), "id");
        mkdir(r->work_dir, 0700);
        const char *stage = str_of(doc, "stage");
        if (path_join(c.run_dir, sizeof(c.run_dir), r->work_dir, id) != 0 || mkdir_run(c.run_dir) != 0)
            finish(doc, "failed", "cannot make the run's folder under %s", r->work_dir);
        else if (gyre_dataset_dir(config, dsdir, sizeof(dsdir)) == NULL ||
                 path_join(c.dataset_dir, sizeof(c.dataset_dir), dsdir, dsid) != 0)
            finish(doc, "failed", "no datasets folder: set `datasets:` in the config");
        else if (cancel && (strcmp(stage, "curate") == 0 || strcmp(stage, "serve") == 0 || strcmp(stage, "gate") == 0)) {
            if (strcmp(stage, "gate") == 0)
                unload_candidate(&c);
            finish(doc, "cancelled", "cancelled at stage %s", stage);
        } else if (strcmp(stage, "curate") == 0)
            stage_curate(&c);
        else if (strcmp(stage, "train") == 0)
            stage_train(&c, cancel);
        else if (strcmp(stage, "serve") == 0)
            stage_serve(&c);
        else if (strcmp(stage, "gate") == 0)
            stage_gate(&c);
        else if (strcmp(stage, "deploy") == 0 || strcmp(stage, "watch") == 0)
            stage_deploy(&c, cancel);
        else
            finish(doc, "failed", "unknown stage '%s'", stage);
    }
    /* Written only when the step changed something (a poll not yet due changes nothing). */
    char *now = cJSON_PrintUnformatted(doc);
    if (now == NULL || was == NULL || strcmp(now, was) != 0)
        doc_save(r->host.state, doc, 0);
    free(now);
    free(was);
    gyre_loop_spec_free(spec);
    cJSON_Delete(doc);
}

/* ---- Scheduling --------------------------------------------------------- */

static int count_cb(void *ctx, const gyre_store_row_t *row)
{
    (void)row;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void schedule(gyre_loop_runner_t *r)
{
    for (size_t i = 0; i < r->nspecs; i++) {
        char err[1024];
        gyre_loop_spec_t *spec = gyre_loop_spec_load(r->specs[i], err, sizeof(err));
        if (spec == NULL) {
            gyre_logf("gyre: loop: %s\n", err);
            continue;
        }
        if (spec->every_ms == 0 && spec->new_traces == 0) {
            gyre_loop_spec_free(spec);
            continue;
        }
        int64_t last = -1;
        int running = 0;
        sqlite3 *db = gyre_state_lock(r->host.state);
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, "SELECT created_us, status FROM loop_runs WHERE name = ? ORDER BY created_us DESC "
                                   "LIMIT 1",
                               -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, spec->name, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                last = sqlite3_column_int64(q, 0);
                running = strcmp((const char *)sqlite3_column_text(q, 1), "running") == 0;
            }
            sqlite3_finalize(q);
        }
        gyre_state_unlock(r->host.state);
        int64_t now = now_us();
        const char *why = NULL;
        if (!running && spec->every_ms > 0 && (last < 0 || now - last >= (int64_t)spec->every_ms * 1000))
            why = "schedule:every";
        if (!running && why == NULL && spec->new_traces > 0) {
            gyre_store_t *s = runner_store(r, err, sizeof(err));
            uint64_t n = 0;
            gyre_trace_query_t tq = {.from_us = last > 0 ? last : 0, .route = spec->route};
            if (s != NULL && gyre_store_ops(s)->scan_traces(s, &tq, NULL, spec->new_traces, count_cb, &n, err,
                                                            sizeof(err)) == 0 &&
                n >= spec->new_traces)
                why = "schedule:new_traces";
        }
        if (why != NULL) {
            char id[GYRE_LOOP_RUN_ID_MAX];
            if (gyre_loop_submit(r, spec->text, strlen(spec->text), r->specs[i], why, id, sizeof(id), err,
                                 sizeof(err)) == 0)
                gyre_logf("gyre: loop: %s started run %s (%s)\n", spec->name, id, why);
        }
        gyre_loop_spec_free(spec);
    }
}

/* ---- The thread --------------------------------------------------------- */

static void *runner_main(void *arg)
{
    gyre_loop_runner_t *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->stop && !r->go)
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->stop && !r->wake) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += LOOP_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
        r->wake = 0;
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        /* The running runs, oldest first. */
        char ids[64][GYRE_LOOP_RUN_ID_MAX];
        size_t n = 0;
        sqlite3 *db = gyre_state_lock(r->host.state);
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, "SELECT id FROM loop_runs WHERE status = 'running' ORDER BY created_us LIMIT 64",
                               -1, &q, NULL) == SQLITE_OK) {
            while (n < 64 && sqlite3_step(q) == SQLITE_ROW)
                snprintf(ids[n++], GYRE_LOOP_RUN_ID_MAX, "%s", (const char *)sqlite3_column_text(q, 0));
            sqlite3_finalize(q);
        }
        gyre_state_unlock(r->host.state);
        for (size_t i = 0; i < n; i++)
            step(r, ids[i]);
        int64_t now = now_us();
        if (r->nspecs > 0 && now - r->schedule_checked_us >= LOOP_SCHEDULE_EVERY_US) {
            r->schedule_checked_us = now;
            schedule(r);
        }
    }
    return NULL;
}

gyre_loop_runner_t *gyre_loop_runner_start(const gyre_loop_host_t *host, char *err, size_t errlen)
{
    if (gyre_state_exec(host->state, schema, err, errlen) != 0)
        return NULL;
    gyre_loop_runner_t *r = gyre_calloc(1, sizeof(*r));
    r->host = *host;
    snprintf(r->key, sizeof(r->key), "%s", host->key != NULL ? host->key : "");
    r->host.key = r->key;
    snprintf(r->work_dir, sizeof(r->work_dir), "%s", host->work_dir);
    r->host.work_dir = r->work_dir;
    r->nspecs = host->nspecs;
    r->specs = gyre_calloc(r->nspecs ? r->nspecs : 1, sizeof(*r->specs));
    for (size_t i = 0; i < r->nspecs; i++)
        r->specs[i] = gyre_strdup(host->spec_paths[i]);
    r->host.spec_paths = (const char *const *)r->specs;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        snprintf(err, errlen, "cannot start the loop runner's thread");
        for (size_t i = 0; i < r->nspecs; i++)
            free(r->specs[i]);
        free(r->specs);
        free(r);
        return NULL;
    }
    return r;
}

void gyre_loop_runner_go(gyre_loop_runner_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->go = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void gyre_loop_runner_stop(gyre_loop_runner_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->store != NULL)
        gyre_store_close(r->store);
    explicit_bzero(r->key, sizeof(r->key));
    for (size_t i = 0; i < r->nspecs; i++)
        free(r->specs[i]);
    free(r->specs);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
