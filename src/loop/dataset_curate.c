/* From a curation to a dataset (dataset_curate.h). */
#include "loop/dataset_curate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "loop/corpus.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* What one fetch writes. */
typedef struct fetch_ctx {
    gyre_dataset_writer_t *w;
    const gyre_curate_item_t *item;
    const char *rejected_answer; /* a score contrast's non-preferred answer (fetched first) */
    char *copy;                  /* fetch_answer_cb: the answer copied out */
    int wrote;                   /* 1: the line was written or left out and counted */
    char *err;
    size_t errlen;
} fetch_ctx_t;

static int write_item_cb(void *p, const gyre_example_t *ex)
{
    fetch_ctx_t *f = p;
    const gyre_curate_item_t *it = f->item;
    /* The curation's clustering (in-process or stored) is the one the dataset records. */
    gyre_example_t e = *ex;
    e.cluster = it->cluster;
    int r;
    if (it->role == GYRE_CURATE_SFT) {
        r = gyre_dataset_add_sft(f->w, it->split == GYRE_CURATE_HELDOUT ? GYRE_DATASET_HELDOUT : GYRE_DATASET_TRAIN,
                                 &e, it->use_correction ? ex->correction : NULL, f->err, f->errlen);
    } else if (it->rejected_id[0] == '\0') {
        /* A correction pair whose correction is gone (feedback is append-only, so only with the trace) is left
         * out by add_pair's refusal of an empty preferred side. */
        r = ex->correction != NULL ? gyre_dataset_add_pair(f->w, &e, ex->correction, NULL, NULL, f->err, f->errlen)
                                   : gyre_dataset_add_pair(f->w, &e, NULL, NULL, NULL, f->err, f->errlen);
    } else {
        r = gyre_dataset_add_pair(f->w, &e, NULL, f->rejected_answer, it->rejected_id, f->err, f->errlen);
    }
    f->wrote = 1;
    return r < 0 ? r : 0;
}

static int fetch_answer_cb(void *p, const gyre_example_t *ex)
{
    fetch_ctx_t *f = p;
    f->copy = ex->answer_json != NULL ? gyre_strdup(ex->answer_json) : NULL;
    return 0;
}

int gyre_dataset_write_curation(gyre_store_t *s, const gyre_curation_t *cur, const gyre_curate_spec_t *spec,
                                const char *dir, gyre_dataset_progress_cb progress, void *ctx, int64_t created_us,
                                gyre_dataset_run_t *run, char *err, size_t errlen)
{
    double t0 = now_ms();
    gyre_dataset_writer_t *w;
    int r = gyre_dataset_begin(dir, cur->spec_canonical != NULL ? cur->spec_canonical : spec->canonical,
                               spec->redaction, &w, err, errlen);
    if (r != 0)
        return r;
    unsigned formats = spec->formats != 0 ? spec->formats : GYRE_CURATE_FORMAT_OPENAI;
    double last = 0;
    for (size_t i = 0; i < cur->nitems; i++) {
        const gyre_curate_item_t *it = &cur->items[i];
        if (progress != NULL && (now_ms() - last >= 100 || i == 0)) {
            progress(ctx, i, cur->nitems);
            last = now_ms();
        }
        if (it->role == GYRE_CURATE_SFT && !(formats & GYRE_CURATE_FORMAT_OPENAI))
            continue;
        if (it->role == GYRE_CURATE_PREFERENCE && !(formats & GYRE_CURATE_FORMAT_PREFERENCE))
            continue;
        char ferr[512] = "";
        fetch_ctx_t f = {.w = w, .item = it, .err = ferr, .errlen = sizeof(ferr)};
        if (it->role == GYRE_CURATE_PREFERENCE && it->rejected_id[0] != '\0') {
            r = gyre_corpus_fetch(s, it->rejected_id, fetch_answer_cb, &f, ferr, sizeof(ferr));
            if (r == -ENOENT || (r == 0 && f.copy == NULL)) {
                run->missing++;
                free(f.copy);
                continue;
            }
            if (r != 0) {
                snprintf(err, errlen, "reading trace %s: %s", it->rejected_id, ferr);
                gyre_dataset_abort(w);
                return r;
            }
            f.rejected_answer = f.copy;
        }
        r = gyre_corpus_fetch(s, it->trace_id, write_item_cb, &f, ferr, sizeof(ferr));
        free(f.copy);
        if (r == -ENOENT) {
            run->missing++; /* gone since the scan (retention): the dataset is what is still there */
            continue;
        }
        if (r != 0) {
            snprintf(err, errlen, "%s trace %s: %s", f.wrote ? "writing" : "reading", it->trace_id, ferr);
            gyre_dataset_abort(w);
            return r;
        }
    }
    if (progress != NULL)
        progress(ctx, cur->nitems, cur->nitems);
    gyre_buf_t cj;
    gyre_buf_init(&cj, (size_t)256 << 20);
    gyre_dataset_curation_json(cur, &cj);
    if (gyre_buf_failed(&cj)) {
        snprintf(err, errlen, "the curation's summary is over its 256 MiB bound");
        gyre_buf_dispose(&cj);
        gyre_dataset_abort(w);
        return -E2BIG;
    }
    gyre_dataset_set_curation(w, cj.base);
    gyre_buf_dispose(&cj);
    r = gyre_dataset_commit(w, created_us, &run->res, err, errlen);
    run->write_ms = now_ms() - t0;
    return r;
}

int gyre_dataset_curate(gyre_store_t *s, const gyre_curate_spec_t *spec, const char *dir,
                        const gyre_curate_hooks_t *hooks, gyre_dataset_progress_cb progress, void *ctx,
                        int64_t created_us, gyre_dataset_run_t *run, char *err, size_t errlen)
{
    memset(run, 0, sizeof(*run));
    int r = gyre_curate_run(s, spec, hooks, &run->cur, err, errlen);
    if (r != 0)
        return r;
    return gyre_dataset_write_curation(s, run->cur, spec, dir, progress, ctx, created_us, run, err, errlen);
}

void gyre_dataset_run_dispose(gyre_dataset_run_t *run)
{
    if (run->cur != NULL)
        gyre_curation_free(run->cur);
    run->cur = NULL;
}

static void append_num(gyre_buf_t *b, double v)
{
    if (!isfinite(v))
        gyre_buf_appends(b, "null");
    else
        gyre_buf_appendf(b, "%.6g", v);
}

void gyre_dataset_curation_json(const gyre_curation_t *cur, gyre_buf_t *out)
{
    gyre_buf_appendf(out,
                     "{\"scanned\":%" PRIu64 ",\"unreadable\":%" PRIu64 ",\"in_source\":%" PRIu64
                     ",\"passed\":%" PRIu64 ",\"deduped\":%" PRIu64 ",\"selected\":%" PRIu64 ",\"heldout\":%" PRIu64
                     ",\"pairs\":%zu,\"clusters\":[",
                     cur->scanned, cur->skipped, cur->in_source, cur->passed, cur->deduped, cur->selected,
                     cur->heldout, cur->npairs);
    for (size_t i = 0; i < cur->nclusters; i++) {
        const gyre_curate_cluster_count_t *c = &cur->clusters[i];
        gyre_buf_appendf(out, "%s{\"cluster\":%" PRId32 ",\"name\":", i ? "," : "", c->cluster);
        if (c->name != NULL)
            gyre_buf_append_json_string(out, c->name, strlen(c->name));
        else
            gyre_buf_appends(out, "null");
        gyre_buf_appendf(out,
                         ",\"scanned\":%" PRIu64 ",\"passed\":%" PRIu64 ",\"deduped\":%" PRIu64
                         ",\"selected\":%" PRIu64 ",\"heldout\":%" PRIu64 "}",
                         c->scanned, c->passed, c->deduped, c->selected, c->heldout);
    }
    gyre_buf_appends(out, "],\"scores\":{");
    for (size_t i = 0; i < cur->nscores; i++) {
        const gyre_curate_score_dist_t *d = &cur->scores[i];
        gyre_buf_appends(out, i ? "," : "");
        gyre_buf_append_json_string(out, d->name, strlen(d->name));
        gyre_buf_appendf(out, ":{\"n\":%" PRIu64 ",\"mean\":", d->n);
        append_num(out, d->mean);
        gyre_buf_appends(out, ",\"min\":");
        append_num(out, d->min);
        gyre_buf_appends(out, ",\"max\":");
        append_num(out, d->max);
        gyre_buf_appends(out, ",\"histogram\":[");
        for (int k = 0; k < GYRE_CURATE_HIST_BINS; k++)
            gyre_buf_appendf(out, "%s%" PRIu64, k ? "," : "", d->hist[k]);
        gyre_buf_appends(out, "]}");
    }
    gyre_buf_appends(out, "},\"dedup_groups\":[");
    for (size_t i = 0; i < cur->ndups; i++) {
        const gyre_curate_dup_group_t *g = &cur->dups[i];
        gyre_buf_appendf(out, "%s{\"kept\":\"%s\",\"dropped\":[", i ? "," : "", g->kept);
        for (size_t k = 0; k < g->ndropped; k++)
            gyre_buf_appendf(out, "%s\"%s\"", k ? "," : "", g->dropped[k]);
        gyre_buf_appends(out, "]}");
    }
    gyre_buf_appends(out, "]}");
}

void gyre_dataset_run_json(const gyre_dataset_run_t *run, gyre_buf_t *out)
{
    const gyre_dataset_result_t *r = &run->res;
    const gyre_curation_t *c = run->cur;
    gyre_buf_appendf(out, "{\"id\":\"%s\",\"existed\":%s,\"path\":", r->id, r->existed ? "true" : "false");
    gyre_buf_append_json_string(out, r->path, strlen(r->path));
    gyre_buf_appendf(out,
                     ",\"counts\":{\"train\":%zu,\"heldout\":%zu,\"preference\":%zu,\"skipped\":%zu,\"missing\":%" PRIu64,
                     r->lines[0], r->lines[1], r->lines[2], r->skipped, run->missing);
    if (c != NULL)
        gyre_buf_appendf(out,
                         ",\"scanned\":%" PRIu64 ",\"in_source\":%" PRIu64 ",\"passed\":%" PRIu64
                         ",\"deduped\":%" PRIu64 ",\"selected\":%" PRIu64 "}",
                         c->scanned, c->in_source, c->passed, c->deduped, c->selected);
    else
        gyre_buf_appends(out, "}");
    gyre_buf_appends(out, ",\"clusters\":[");
    for (size_t i = 0; c != NULL && i < c->nclusters; i++)
        gyre_buf_appendf(out, "%s{\"cluster\":%" PRId32 ",\"selected\":%" PRIu64 ",\"heldout\":%" PRIu64 "}",
                         i ? "," : "", c->clusters[i].cluster, c->clusters[i].selected, c->clusters[i].heldout);
    gyre_buf_appends(out, "],\"timings_ms\":{");
    for (int p = 0; c != NULL && p < GYRE_CURATE_PHASES; p++) {
        gyre_buf_appendf(out, "\"%s\":", gyre_curate_phase_names[p]);
        append_num(out, c->phase_ms[p]);
        gyre_buf_appends(out, ",");
    }
    gyre_buf_appends(out, "\"write\":");
    append_num(out, run->write_ms);
    gyre_buf_appends(out, "},\"files\":[");
    for (int i = 0; i < GYRE_DATASET_NFILES; i++) {
        gyre_buf_appendf(out, "%s{\"name\":\"%s\",\"lines\":%zu,\"path\":", i ? "," : "", gyre_dataset_files[i],
                         r->lines[i]);
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", r->path, gyre_dataset_files[i]);
        gyre_buf_append_json_string(out, p, strlen(p));
        gyre_buf_appends(out, "}");
    }
    gyre_buf_appends(out, "]}");
}
