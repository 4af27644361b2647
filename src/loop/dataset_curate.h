/*
 * From a curation to a dataset (issue 14, points 5 and 6): the one path both
 * `gyre curate` and POST /api/datasets take.  The curation (loop/curate.h)
 * says which traces and how; each is fetched from the store again
 * (gyre_corpus_fetch: the scan kept no bodies) and written by the dataset
 * writer (loop/dataset.h) in the curation's order, so the same spec over the
 * same store gives the same bytes and the same id.
 */
#ifndef GYRE_LOOP_DATASET_CURATE_H
#define GYRE_LOOP_DATASET_CURATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "loop/curate.h"
#include "loop/dataset.h"
#include "loop/spec.h"
#include "store/store.h"

/* The writing phase's progress: items written of the total, at most every 100 ms and at the end. */
typedef void (*gyre_dataset_progress_cb)(void *ctx, uint64_t done, uint64_t total);

/* A curation run and the dataset it wrote. */
typedef struct gyre_dataset_run {
    gyre_curation_t *cur; /* owned (gyre_dataset_run_dispose frees it) */
    gyre_dataset_result_t res;
    double write_ms;
    uint64_t missing; /* items whose trace was gone from the store by the time they were written */
} gyre_dataset_run_t;

/*
 * Runs `spec` over the store (gyre_curate_run, with `hooks`), then writes
 * the dataset under `dir`.  0 with *run filled (dispose it), or a negative
 * errno with err saying what failed.
 */
int gyre_dataset_curate(gyre_store_t *s, const gyre_curate_spec_t *spec, const char *dir,
                        const gyre_curate_hooks_t *hooks, gyre_dataset_progress_cb progress, void *ctx,
                        int64_t created_us, gyre_dataset_run_t *run, char *err, size_t errlen);

/* Writes an existing curation's dataset (what gyre_dataset_curate does after the run). */
int gyre_dataset_write_curation(gyre_store_t *s, const gyre_curation_t *cur, const gyre_curate_spec_t *spec,
                                const char *dir, gyre_dataset_progress_cb progress, void *ctx, int64_t created_us,
                                gyre_dataset_run_t *run, char *err, size_t errlen);

void gyre_dataset_run_dispose(gyre_dataset_run_t *run);

/* The curation's part of the manifest ("curation"): totals, clusters with names, score histograms, dedup groups;
 * never a time (it enters the id). */
void gyre_dataset_curation_json(const gyre_curation_t *cur, gyre_buf_t *out);

/* What `gyre curate --json` and POST /api/datasets answer: {"id", "existed", "path", "counts": {...},
 * "clusters": [...], "timings_ms": {...}, "files": [...]}. */
void gyre_dataset_run_json(const gyre_dataset_run_t *run, gyre_buf_t *out);

#endif
