/*
 * /api/datasets (api.h): the curated datasets (loop/dataset.h).
 *
 *   GET  /api/datasets                       {"datasets": [{id, created, counts}, ...]}, newest first
 *   GET  /api/datasets/{id}                  its manifest.json
 *   GET  /api/datasets/{id}/files/{name}     train.jsonl, heldout.jsonl or preference.jsonl, at most
 *                                            API_DATASET_FILE_MAX bytes (a larger one is a 413 that names
 *                                            `gyre datasets export`, which streams any size)
 *   POST /api/datasets                       a curation spec (YAML) as the body: runs it, writes the dataset,
 *                                            answers {id, existed, counts, clusters, timings_ms, files}
 *
 * Reading needs the read token, writing the admin token (the access stage:
 * a curation reads every stored body and writes files).  Nothing here runs
 * on a worker's loop but the checks: each request is a job on a thread of
 * its own (reads of a 64 MiB file, or a curation of a million traces that
 * takes most of a minute, would stall every request on the loop), which
 * posts its answer back through h2o's multithread queue, as api.c's readers
 * do; a job whose client left is dropped when it comes back.  At most
 * API_DATASET_JOBS jobs run at once, and one curation: more are answered at
 * once (503, or 409 for a second curation) rather than queued.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "trace/record.h"
#include "loop/dataset.h"
#include "loop/dataset_curate.h"
#include "loop/spec.h"
#include "proxy/respond.h"
#include "server/api.h"

/* The largest dataset file an answer holds: 64 MiB, copied once into the request's pool.  Larger datasets are
 * read with `gyre datasets export`, which streams them. */
#define API_DATASET_FILE_MAX ((size_t)64 << 20)
/* The listing (the manifests' first lines) and a manifest: loop/dataset.c's bounds. */
#define API_DATASET_LIST_MAX ((size_t)64 << 20)
#define API_DATASET_MANIFEST_MAX ((size_t)320 << 20)
/* Jobs at once, all workers together: each holds up to one answer's bound. */
#define API_DATASET_JOBS 4
/* The job threads' nice value: below the workers, as api.c's readers. */
#define API_DATASET_NICE 10

enum { DS_LIST, DS_SHOW, DS_FILE, DS_CURATE };

typedef struct ds_job ds_job_t;

typedef struct ds_link {
    ds_job_t *job;
    h2o_req_t *req;
} ds_link_t;

struct ds_job {
    h2o_multithread_message_t super; /* first: posted back to the worker's loop */
    h2o_multithread_receiver_t *receiver;
    ds_link_t *link; /* worker's thread only */
    int kind;
    char id[33];
    char file[32];
    char dir[4096];
    char *dsn;
    char *spec; /* DS_CURATE: the body */
    size_t spec_len;
    /* The answer. */
    int status;
    const char *content_type;
    gyre_api_error_t err;
    gyre_buf_t out;
};

static _Atomic int jobs_running;
static atomic_flag curating = ATOMIC_FLAG_INIT;

static __thread h2o_multithread_receiver_t answers;
static __thread int answers_registered;

static void job_free(ds_job_t *j)
{
    gyre_buf_dispose(&j->out);
    free(j->dsn);
    free(j->spec);
    free(j);
}

static void fail(ds_job_t *j, int status, const char *code, const char *fmt, const char *msg)
{
    gyre_api_error_set(&j->err, status, status >= 500 ? "server_error" : "invalid_request_error", code, NULL, fmt,
                       msg);
    j->status = status;
}

static void run_read(ds_job_t *j)
{
    char msg[512] = "";
    int r;
    if (j->kind == DS_LIST) {
        gyre_buf_init(&j->out, API_DATASET_LIST_MAX);
        r = gyre_dataset_list_json(j->dir, &j->out, msg, sizeof(msg));
    } else {
        gyre_buf_init(&j->out, j->kind == DS_SHOW ? API_DATASET_MANIFEST_MAX : API_DATASET_FILE_MAX);
        r = gyre_dataset_read_file(j->dir, j->id, j->kind == DS_SHOW ? "manifest.json" : j->file, &j->out, msg,
                                   sizeof(msg));
    }
    j->status = 200;
    j->content_type = j->kind == DS_FILE ? "application/x-ndjson" : "application/json";
    if (r == -ENOENT)
        fail(j, 404, "dataset_not_found", "%s", msg);
    else if (r == -E2BIG && j->kind == DS_FILE)
        fail(j, 413, "file_too_large",
             "%s; an answer holds at most 64 MiB: read it with `gyre datasets export ID --format ... --out DIR`", msg);
    else if (r != 0)
        fail(j, 500, "dataset_error", "%s", msg);
}

static void run_curate(ds_job_t *j)
{
    char err[1024] = "";
    gyre_curate_spec_t *spec = gyre_curate_spec_parse(j->spec, j->spec_len, "spec", gyre_trace_now_us(), err,
                                                      sizeof(err));
    if (spec == NULL) {
        fail(j, 400, "invalid_spec", "%s", err);
        return;
    }
    gyre_store_t *s = NULL;
    if (gyre_store_open(j->dsn, 0, &s, err, sizeof(err)) != 0) {
        fail(j, 503, "store_unavailable", "opening the trace store: %s", err);
        gyre_curate_spec_free(spec);
        return;
    }
    gyre_dataset_run_t run;
    int r = gyre_dataset_curate(s, spec, j->dir, NULL, NULL, NULL, gyre_trace_now_us(), &run, err, sizeof(err));
    if (r == -EINVAL) {
        fail(j, 400, "invalid_spec", "%s", err);
    } else if (r != 0) {
        fail(j, 500, "curation_failed", "%s", err);
    } else {
        gyre_buf_init(&j->out, (size_t)16 << 20);
        gyre_dataset_run_json(&run, &j->out);
        j->status = run.res.existed ? 200 : 201;
        j->content_type = "application/json";
    }
    gyre_dataset_run_dispose(&run);
    gyre_store_close(s);
    gyre_curate_spec_free(spec);
}

static void *job_main(void *arg)
{
    ds_job_t *j = arg;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), API_DATASET_NICE);
    if (j->kind == DS_CURATE) {
        run_curate(j);
        atomic_flag_clear(&curating);
    } else {
        run_read(j);
    }
    gyre_json_arena_release(); /* the corpus parsed bodies in this thread's arena; the thread ends here */
    atomic_fetch_sub(&jobs_running, 1);
    h2o_multithread_send_message(j->receiver, &j->super);
    return NULL;
}

static void respond_job(h2o_req_t *req, ds_job_t *j)
{
    if (j->status >= 400) {
        gyre_respond_error(req, &j->err);
        return;
    }
    if (j->content_type != NULL && strcmp(j->content_type, "application/json") == 0) {
        gyre_respond_json(req, j->status, j->out.base, j->out.len);
        return;
    }
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_strdup(&req->pool, j->out.base, j->out.len);
    req->res.status = j->status;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, j->content_type,
                   strlen(j->content_type));
    req->res.content_length = buf.len;
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void on_answers_cb(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        ds_job_t *j = H2O_STRUCT_FROM_MEMBER(ds_job_t, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        if (j->link != NULL) {
            j->link->job = NULL;
            respond_job(j->link->req, j);
        }
        job_free(j);
    }
}

static void on_link_dispose_cb(void *p)
{
    ds_link_t *link = p;
    if (link->job != NULL)
        link->job->link = NULL;
}

static void refuse(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
{
    gyre_api_error_t err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gyre_api_error_set(&err, status, status >= 500 ? "server_error" : "invalid_request_error", code, NULL, "%s", msg);
    gyre_respond_error(req, &err);
}

static void submit(gyre_worker_t *w, h2o_req_t *req, ds_job_t *j)
{
    if (!answers_registered) {
        h2o_multithread_register_receiver(w->super.ctx.queue, &answers, on_answers_cb);
        answers_registered = 1;
    }
    if (j->kind == DS_CURATE && atomic_flag_test_and_set(&curating)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("10"));
        refuse(req, 409, "curation_running", "a curation is running; one runs at a time");
        job_free(j);
        return;
    }
    if (atomic_fetch_add(&jobs_running, 1) >= API_DATASET_JOBS) {
        atomic_fetch_sub(&jobs_running, 1);
        if (j->kind == DS_CURATE)
            atomic_flag_clear(&curating);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        refuse(req, 503, "datasets_busy", "%d dataset requests are running; try again shortly", API_DATASET_JOBS);
        job_free(j);
        return;
    }
    j->receiver = &answers;
    ds_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose_cb);
    link->job = j;
    link->req = req;
    j->link = link;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        link->job = NULL;
        atomic_fetch_sub(&jobs_running, 1);
        if (j->kind == DS_CURATE)
            atomic_flag_clear(&curating);
        refuse(req, 503, "datasets_busy", "no thread could be started for the request (%s)", strerror(r));
        job_free(j);
    }
}

static int has_prefix(const char *p, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && memcmp(p, prefix, plen) == 0;
}

int gyre_api_datasets_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path)
{
    static const char base[] = "/api/datasets";
    size_t blen = sizeof(base) - 1;
    if (!h2o_memis(path.base, path.len, base, blen) &&
        !(has_prefix(path.base, path.len, base, blen) && path.len > blen && path.base[blen] == '/'))
        return 0;
    const gyre_config_t *c = w->server->config;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")),
        post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    ds_job_t *j = gyre_calloc(1, sizeof(*j));
    const char *rest = path.base + blen;
    size_t rlen = path.len - blen;
    if (rlen == 0) {
        j->kind = post ? DS_CURATE : DS_LIST;
        /* The access stage asked for the admin token on exactly this normalised path: a curation runs only
         * where that decision was made. */
        if (post && !h2o_memis(req->path_normalized.base, req->path_normalized.len, base, blen)) {
            refuse(req, 400, "invalid_path", "POST /api/datasets must be written plainly, without dot segments");
            goto drop;
        }
        if (!get && !post) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, POST"));
            refuse(req, 405, "method_not_allowed", "%.*s /api/datasets is not allowed; use GET or POST",
                   (int)(req->method.len < 32 ? req->method.len : 32), req->method.base);
            goto drop;
        }
    } else {
        /* /{id} or /{id}/files/{name} */
        rest++;
        rlen--;
        const char *slash = memchr(rest, '/', rlen);
        size_t idlen = slash != NULL ? (size_t)(slash - rest) : rlen;
        if (!gyre_dataset_id_valid(rest, idlen)) {
            refuse(req, 404, "dataset_not_found", "no dataset '%.*s': dataset ids are 32 lowercase hex digits",
                   (int)(idlen < 64 ? idlen : 64), rest);
            goto drop;
        }
        memcpy(j->id, rest, 32);
        j->kind = DS_SHOW;
        if (slash != NULL) {
            const char *f = slash + 1;
            size_t flen = rlen - idlen - 1;
            int known = 0;
            if (flen > 6 && memcmp(f, "files/", 6) == 0)
                for (int i = 0; i < GYRE_DATASET_NFILES; i++)
                    known |= h2o_memis(f + 6, flen - 6, gyre_dataset_files[i], strlen(gyre_dataset_files[i]));
            if (!known) {
                refuse(req, 404, "unknown_url",
                       "unknown path %.*s; a dataset's files are /api/datasets/{id}/files/{train.jsonl, "
                       "heldout.jsonl, preference.jsonl}",
                       (int)(path.len < 256 ? path.len : 256), path.base);
                goto drop;
            }
            snprintf(j->file, sizeof(j->file), "%.*s", (int)(flen - 6), f + 6);
            j->kind = DS_FILE;
        }
        if (!get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
            refuse(req, 405, "method_not_allowed", "%.*s is not allowed on a dataset (they are immutable); use GET",
                   (int)(req->method.len < 32 ? req->method.len : 32), req->method.base);
            goto drop;
        }
    }
    if (gyre_dataset_dir(c, j->dir, sizeof(j->dir)) == NULL) {
        refuse(req, 404, "datasets_not_configured",
               "this gateway keeps no datasets: the config has neither datasets: nor a store");
        goto drop;
    }
    if (j->kind == DS_CURATE) {
        if (c->store_dsn == NULL) {
            refuse(req, 404, "store_not_configured", "this gateway keeps no traces to curate: the config has no store");
            goto drop;
        }
        if (req->entity.len == 0 || req->entity.base == NULL) {
            refuse(req, 400, "invalid_spec", "the body must be a curation spec (YAML, docs/datasets.md)");
            goto drop;
        }
        if (req->entity.len > GYRE_CURATE_SPEC_MAX_BYTES) {
            refuse(req, 413, "request_too_large", "a curation spec is at most %d bytes", GYRE_CURATE_SPEC_MAX_BYTES);
            goto drop;
        }
        j->spec = gyre_strndup(req->entity.base, req->entity.len);
        j->spec_len = req->entity.len;
        j->dsn = gyre_strdup(c->store_dsn);
    }
    submit(w, req, j);
    return 1;
drop:
    job_free(j);
    return 1;
}
