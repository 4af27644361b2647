/*
 * libFuzzer driver for the clusterer (src/loop/cluster.c, featurize.c,
 * kmeans.c): hostile task texts (any bytes: ill-formed UTF-8, controls, huge
 * words) and hostile scores and session names through add, finish and the
 * run's JSON.
 *
 * The input's first byte is k (0: automatic, else 1-8); the rest is texts
 * separated by NUL bytes; each text's first byte, when there is one, picks its
 * session (of 8), status (bit 3: 500) and a score's value (bit 4: 0, else 1).
 * Promises checked:
 *   - finish succeeds for any non-empty input and every example gets a leaf in
 *     [0, nleaves) whose parent is that leaf's parent;
 *   - the leaves' volumes add up to the examples;
 *   - the JSON is valid JSON, and a hidden cluster's entry is exactly its id,
 *     volume and "hidden": true;
 *   - the same input gives the same JSON twice (determinism).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "loop/cluster.h"

#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_cluster.c:%d: check(%s) failed\n", __LINE__, #ok);                                   \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static void run(const uint8_t *data, size_t size, gyre_buf_t *json)
{
    gyre_cluster_opts_t o = {.k = data[0] % 9, .seed = 3, .dims = 16};
    gyre_clusterer_t *c = gyre_clusterer_new(&o);
    char *copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    size_t n = 0;
    for (char *p = copy; p < copy + size - 1 && n < 512;) {
        size_t len = strlen(p);
        unsigned char b = len ? (unsigned char)p[0] : 0;
        char session[16];
        snprintf(session, sizeof(session), "s%u", b & 7);
        gyre_example_score_t sc = {.name = (b & 32) ? "judge" : "regex", .source = GYRE_SCORE_HEURISTIC,
                                   .value = (b & 16) ? 0 : 1};
        gyre_example_t ex = {0};
        snprintf(ex.trace_id, sizeof(ex.trace_id), "%032zx", n + 1);
        ex.session = session;
        ex.status = (b & 8) ? 500 : 200;
        ex.started_us = (int64_t)n;
        ex.cost_usd = 0.25;
        ex.task_text = p;
        ex.scores = &sc;
        ex.nscores = 1;
        check(gyre_clusterer_add(c, &ex) == 0);
        n++;
        p += len + 1;
    }
    gyre_cluster_result_t *r = NULL;
    char err[256];
    check(gyre_clusterer_finish(c, &r, err, sizeof(err)) == 0);
    check(r->n == n);
    uint64_t total = 0;
    for (size_t j = 0; j < r->nleaves; j++)
        total += r->clusters[j].volume;
    check(total == n);
    for (size_t i = 0; i < n; i++) {
        check(r->cluster[i] >= 0 && (size_t)r->cluster[i] < r->nleaves);
        check(r->parent[i] == r->clusters[r->cluster[i]].parent);
    }
    check(gyre_cluster_result_json(r, "cr_fuzz", 1, json) == 0);
    check(gyre_json_valid(json->base, json->len));
    cJSON *root = cJSON_ParseWithLength(json->base, json->len);
    check(root != NULL);
    const cJSON *cl;
    cJSON_ArrayForEach(cl, cJSON_GetObjectItemCaseSensitive(root, "clusters"))
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "hidden")))
            check(cJSON_GetArraySize(cl) == 3);
    }
    cJSON_Delete(root);
    gyre_cluster_result_free(r);
    gyre_clusterer_free(c);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    gyre_buf_t a, b;
    gyre_buf_init(&a, (size_t)16 << 20);
    gyre_buf_init(&b, (size_t)16 << 20);
    run(data, size, &a);
    run(data, size, &b);
    check(a.len == b.len && memcmp(a.base, b.base, a.len) == 0);
    gyre_buf_dispose(&a);
    gyre_buf_dispose(&b);
    return 0;
}
