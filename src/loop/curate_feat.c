/*
 * Featurising beside the scan: the MinHash signature and the clusterer's
 * features of each example are made on a second thread while the scan
 * reads and parses the next rows, so on two cores the scan's time and the
 * featurising's overlap instead of adding up (the 1M-trace target; per 1M
 * traces, measured: scan 22 s of CPU, MinHash 6 s, the clusterer's
 * features 10 s, so the worker takes both).
 *
 * The scan's example is valid only inside its callback, so the scan thread
 * copies what the worker reads into a batch: the trace id, session, time,
 * status, cost, the scores (source, name, value, label) and the task and
 * answer texts; those are all the fields gyre_clusterer_add and the dedup
 * text read (if the clusterer comes to read another, copy it here).
 * Two batches of GYRE_CURATE_FEAT_BATCH examples alternate: the scan fills
 * one while the worker works through the other, so memory is bounded by two
 * batches whatever the corpus, and examples reach the clusterer in the
 * scan's order (its result lines up with the records).
 *
 * The records' signature array is grown only at a hand-off, while the
 * worker is idle, so the worker never sees it move.  If the thread cannot
 * be started the batches are worked through inline at each hand-off: the
 * same result, without the overlap.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "loop/curate_int.h"

#define GYRE_CURATE_FEAT_BATCH 256
/* The bytes one batch may copy before it is handed off early: an example's texts are at most the corpus's
 * 256 KB each, so the arena's bound (twice this) is never reached. */
#define GYRE_CURATE_FEAT_BATCH_BYTES ((size_t)32 << 20)

typedef struct job {
    uint32_t idx;
    char trace_id[33];
    int64_t started_us;
    double cost_usd;
    int status;
    size_t session, task, answer; /* offsets into the arena; SIZE_MAX: NULL */
    size_t scores, nscores;       /* into the batch's scores */
} job_t;

typedef struct job_score {
    size_t name, label; /* offsets; SIZE_MAX: NULL */
    int source;
    double value;
} job_score_t;

typedef struct batch {
    job_t jobs[GYRE_CURATE_FEAT_BATCH];
    size_t n;
    job_score_t *scores;
    size_t nscores, capscores;
    gyre_buf_t arena;
} batch_t;

struct gyre_curate_feat {
    run_t *r;
    batch_t b[2];
    int cur;
    pthread_t thread;
    int threaded;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, idle_cv;
    int pending; /* the batch the worker is to take, or -1 */
    int busy, stop;
    int error; /* the first error (negative errno); the worker skips everything after it */
    char errmsg[256];
    gyre_buf_t text;                /* the worker's dedup text */
    gyre_example_score_t *exscores; /* the worker's scores of one example */
    size_t capex;
    double sign_s, sign_cpu_s, add_s, add_cpu_s;
};

static size_t put(batch_t *b, const char *s)
{
    if (s == NULL)
        return SIZE_MAX;
    size_t off = b->arena.len;
    gyre_buf_append(&b->arena, s, strlen(s) + 1);
    return off;
}

static const char *at(const batch_t *b, size_t off)
{
    return off == SIZE_MAX ? NULL : b->arena.base + off;
}

/* The text dedup compares: the task without its system lines (an agent's fixed instructions, the same in
 * every call of the agent, are not what makes two tasks the same), and the answer when the spec says so. */
static void dedup_text(gyre_curate_feat_t *f, const char *task, const char *answer)
{
    gyre_buf_t *t = &f->text;
    gyre_buf_reset(t);
    const char *p = task != NULL ? task : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (!(n >= 8 && memcmp(p, "system: ", 8) == 0)) {
            gyre_buf_append_upto(t, p, n);
            gyre_buf_append_upto(t, "\n", 1);
        }
        p += n + (nl != NULL);
    }
    if (f->r->spec->dedup_on == GYRE_CURATE_DEDUP_TASK_ANSWER && answer != NULL) {
        gyre_buf_append_upto(t, "\n", 1);
        gyre_buf_append_upto(t, answer, strlen(answer));
    }
}

/* Works through one batch (on the worker, or inline). */
static void work(gyre_curate_feat_t *f, batch_t *b)
{
    run_t *r = f->r;
    for (size_t i = 0; i < b->n && f->error == 0; i++) {
        const job_t *j = &b->jobs[i];
        const char *task = at(b, j->task), *answer = at(b, j->answer);
        if (r->sign) {
            double t0 = now_s(), c0 = cpu_s();
            dedup_text(f, task, answer);
            gyre_minhash_sign(f->text.base != NULL ? f->text.base : "", f->text.len, r->spec->seed, &r->sigs[j->idx]);
            f->sign_s += now_s() - t0;
            f->sign_cpu_s += cpu_s() - c0;
        }
        if (r->clusterer != NULL) {
            double t0 = now_s(), c0 = cpu_s();
            if (j->nscores > f->capex) {
                f->capex = j->nscores;
                f->exscores = gyre_realloc(f->exscores, f->capex * sizeof(*f->exscores));
            }
            for (size_t k = 0; k < j->nscores; k++) {
                const job_score_t *s = &b->scores[j->scores + k];
                f->exscores[k] = (gyre_example_score_t){at(b, s->name), s->source, NULL, s->value, at(b, s->label)};
            }
            gyre_example_t ex;
            memset(&ex, 0, sizeof(ex));
            memcpy(ex.trace_id, j->trace_id, sizeof(ex.trace_id));
            ex.session = at(b, j->session);
            ex.started_us = j->started_us;
            ex.cost_usd = j->cost_usd;
            ex.status = j->status;
            ex.latency_us = -1;
            ex.prompt_tokens = ex.completion_tokens = -1;
            ex.cluster = -1;
            ex.task_text = task;
            ex.answer_text = answer;
            ex.scores = f->exscores;
            ex.nscores = j->nscores;
            int rc = gyre_clusterer_add(r->clusterer, &ex);
            f->add_s += now_s() - t0;
            f->add_cpu_s += cpu_s() - c0;
            if (rc != 0) {
                f->error = rc;
                snprintf(f->errmsg, sizeof(f->errmsg), "clustering: %s",
                         rc == -E2BIG ? "more examples than the clusterer takes" : strerror(-rc));
            }
        }
    }
}

static void *worker_main(void *arg)
{
    gyre_curate_feat_t *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->pending < 0 && !f->stop)
            pthread_cond_wait(&f->work_cv, &f->mu);
        if (f->pending < 0)
            break;
        int k = f->pending;
        f->pending = -1;
        f->busy = 1;
        pthread_mutex_unlock(&f->mu);
        work(f, &f->b[k]);
        pthread_mutex_lock(&f->mu);
        f->busy = 0;
        pthread_cond_signal(&f->idle_cv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

gyre_curate_feat_t *gyre_curate_feat_start(run_t *r)
{
    gyre_curate_feat_t *f = gyre_calloc(1, sizeof(*f));
    f->r = r;
    f->pending = -1;
    for (int i = 0; i < 2; i++)
        gyre_buf_init(&f->b[i].arena, GYRE_CURATE_FEAT_BATCH_BYTES * 2);
    gyre_buf_init(&f->text, GYRE_MINHASH_MAX_TEXT);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->work_cv, NULL);
    pthread_cond_init(&f->idle_cv, NULL);
    f->threaded = pthread_create(&f->thread, NULL, worker_main, f) == 0;
    return f;
}

/* Waits until the worker holds no batch (the caller holds f->mu). */
static void wait_idle(gyre_curate_feat_t *f)
{
    while (f->pending >= 0 || f->busy)
        pthread_cond_wait(&f->idle_cv, &f->mu);
}

/* Hands the current batch to the worker (or works it inline) and starts filling the other. */
static int hand_off(gyre_curate_feat_t *f)
{
    run_t *r = f->r;
    batch_t *b = &f->b[f->cur];
    pthread_mutex_lock(&f->mu);
    wait_idle(f);
    /* The worker is idle: the signature array may move now. */
    size_t need = b->n > 0 ? (size_t)b->jobs[b->n - 1].idx + 1 : 0;
    if (r->sign && need > r->capsigs) {
        size_t cap = r->capsigs ? r->capsigs : 4096;
        while (cap < need)
            cap *= 2;
        r->sigs = gyre_realloc(r->sigs, cap * sizeof(*r->sigs));
        r->capsigs = cap;
    }
    int err = f->error;
    if (err == 0 && b->n > 0) {
        if (f->threaded) {
            f->pending = f->cur;
            pthread_cond_signal(&f->work_cv);
        } else {
            work(f, b);
            err = f->error;
        }
    }
    pthread_mutex_unlock(&f->mu);
    f->cur ^= 1;
    batch_t *next = &f->b[f->cur];
    next->n = 0;
    next->nscores = 0;
    gyre_buf_reset(&next->arena);
    return err;
}

int gyre_curate_feat_add(gyre_curate_feat_t *f, const gyre_example_t *ex, uint32_t idx)
{
    batch_t *b = &f->b[f->cur];
    job_t *j = &b->jobs[b->n++];
    j->idx = idx;
    memcpy(j->trace_id, ex->trace_id, sizeof(j->trace_id));
    j->trace_id[32] = '\0';
    j->started_us = ex->started_us;
    j->cost_usd = ex->cost_usd;
    j->status = ex->status;
    j->session = put(b, ex->session);
    j->task = put(b, ex->task_text);
    j->answer = put(b, ex->answer_text);
    j->scores = b->nscores;
    j->nscores = ex->nscores;
    if (b->nscores + ex->nscores > b->capscores) {
        b->capscores = (b->nscores + ex->nscores) * 2;
        b->scores = gyre_realloc(b->scores, b->capscores * sizeof(*b->scores));
    }
    for (size_t k = 0; k < ex->nscores; k++) {
        const gyre_example_score_t *s = &ex->scores[k];
        b->scores[b->nscores++] = (job_score_t){put(b, s->name), put(b, s->label), s->source, s->value};
    }
    if (gyre_buf_failed(&b->arena)) {
        /* Cannot happen (see GYRE_CURATE_FEAT_BATCH_BYTES); if it did, the example's features would be wrong,
         * so the run stops. */
        pthread_mutex_lock(&f->mu);
        wait_idle(f); /* the worker reads the error and the message: set them while it holds no batch */
        snprintf(f->errmsg, sizeof(f->errmsg), "featurising: an example larger than %zu bytes",
                 GYRE_CURATE_FEAT_BATCH_BYTES);
        f->error = -E2BIG;
        pthread_mutex_unlock(&f->mu);
        return -E2BIG;
    }
    if (b->n == GYRE_CURATE_FEAT_BATCH || b->arena.len >= GYRE_CURATE_FEAT_BATCH_BYTES)
        return hand_off(f);
    return 0; /* the worker's errors surface at the next hand-off */
}

int gyre_curate_feat_finish(gyre_curate_feat_t *f)
{
    int err = hand_off(f);
    pthread_mutex_lock(&f->mu);
    wait_idle(f);
    f->stop = 1;
    pthread_cond_signal(&f->work_cv);
    pthread_mutex_unlock(&f->mu);
    run_t *r = f->r;
    r->feat_inline = !f->threaded;
    r->sign_s = f->sign_s;
    r->sign_cpu_s = f->sign_cpu_s;
    if (f->threaded)
        pthread_join(f->thread, NULL);
    f->threaded = 0;
    if (err == 0)
        err = f->error;
    r->cluster_add_s = f->add_s;
    r->cluster_add_cpu_s = f->add_cpu_s;
    if (err != 0 && f->errmsg[0] != '\0')
        snprintf(r->err, r->errlen, "%s", f->errmsg);
    return err;
}

void gyre_curate_feat_free(gyre_curate_feat_t *f)
{
    if (f == NULL)
        return;
    if (f->threaded) {
        pthread_mutex_lock(&f->mu);
        wait_idle(f);
        f->stop = 1;
        pthread_cond_signal(&f->work_cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    for (int i = 0; i < 2; i++) {
        gyre_buf_dispose(&f->b[i].arena);
        free(f->b[i].scores);
    }
    gyre_buf_dispose(&f->text);
    free(f->exscores);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->work_cv);
    pthread_cond_destroy(&f->idle_cv);
    free(f);
}
