/*
 * The clusterer's cost on 1M synthetic tasks of 1-2 KB (issue 14's target: a
 * whole curation of 1M traces in < 60 s on 2 cores, < 2 GB peak): texts from
 * F planted task families (each with 100 words of its own, drawn from a
 * lexicon of pseudo-words, over 300 words every family shares, 30% family
 * words), fed to the clusterer one by one as gyre_corpus_scan would; prints
 * the featurising and clustering CPU seconds, the peak memory, k and the
 * adjusted Rand index against the planted families.
 *
 *   build/cluster-cpu [N] [FAMILIES] [K (0: automatic)] [DIMS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/rand.h"
#include "loop/cluster.h"

#define LEXICON 5000
#define FAMILY_WORDS 100
#define SHARED_WORDS 300

static const char *const syl[] = {"ka", "ro", "mi", "te", "lu", "sa", "no", "vi", "de", "po", "ri", "ga",
                                  "be", "zo", "fu", "ne", "la", "to", "chi", "mar", "ste", "gor", "pel", "tran"};

/* CPU seconds of this thread: the machine this runs on is shared, and wall time would count the waits. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    unsigned fams = argc > 2 ? (unsigned)atoi(argv[2]) : 20;
    unsigned k = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    unsigned dims = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
    uint64_t st = 12345;
    static char lex[LEXICON][16];
    for (size_t i = 0; i < LEXICON; i++) {
        int ns = 2 + (int)(gyre_rand_next(&st) % 3);
        lex[i][0] = '\0';
        for (int s = 0; s < ns; s++)
            strcat(lex[i], syl[gyre_rand_next(&st) % (sizeof(syl) / sizeof(syl[0]))]);
    }
    uint32_t(*fam)[FAMILY_WORDS] = malloc(fams * sizeof(*fam));
    uint32_t shared[SHARED_WORDS];
    for (size_t i = 0; i < SHARED_WORDS; i++)
        shared[i] = (uint32_t)(gyre_rand_next(&st) % LEXICON);
    for (unsigned f = 0; f < fams; f++)
        for (size_t i = 0; i < FAMILY_WORDS; i++)
            fam[f][i] = (uint32_t)(gyre_rand_next(&st) % LEXICON);
    int32_t *truth = malloc(n * sizeof(int32_t));
    gyre_clusterer_t *c = gyre_clusterer_new(&(gyre_cluster_opts_t){.k = k, .dims = dims, .seed = 1});
    char text[4096], sess[32];
    size_t bytes = 0;
    double gen = 0, t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        double g0 = now_s();
        unsigned f = (unsigned)(gyre_rand_next(&st) % fams);
        truth[i] = (int32_t)f;
        size_t len = (size_t)snprintf(text, sizeof(text), "user:");
        size_t target = 1024 + gyre_rand_next(&st) % 1024;
        while (len < target) {
            uint64_t r = gyre_rand_next(&st);
            const char *w = r % 10 < 3 ? lex[fam[f][(r >> 8) % FAMILY_WORDS]] : lex[shared[(r >> 8) % SHARED_WORDS]];
            len += (size_t)snprintf(text + len, sizeof(text) - len, " %s", w);
        }
        bytes += len;
        snprintf(sess, sizeof(sess), "s%zu", i / 4);
        gyre_example_t ex = {0};
        snprintf(ex.trace_id, sizeof(ex.trace_id), "%032zx", i + 1);
        ex.session = sess;
        ex.started_us = (int64_t)i;
        ex.status = 200;
        ex.cost_usd = 0.001;
        ex.task_text = text;
        gen += now_s() - g0;
        if (gyre_clusterer_add(c, &ex) != 0) {
            fprintf(stderr, "add failed at %zu\n", i);
            return 1;
        }
    }
    double add_s = now_s() - t0 - gen;
    gyre_cluster_result_t *r = NULL;
    char err[256];
    double f0 = now_s();
    if (gyre_clusterer_finish(c, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "finish: %s\n", err);
        return 1;
    }
    double finish_s = now_s() - f0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("cluster-cpu: %zu texts (%.0f MB, %u families), dims %u: featurise %.2f s (%.2f us/text), cluster %.2f s, "
           "k %zu%s, parents %zu, ARI %.3f, peak RSS %ld MB\n",
           n, (double)bytes / 1e6, fams, r->dims, add_s, add_s * 1e6 / (double)n, finish_s, r->nleaves,
           r->k_auto ? " (auto)" : "", r->nclusters - r->nleaves, gyre_cluster_ari(r->cluster, truth, n),
           ru.ru_maxrss / 1024);
    for (size_t j = 0; j < 3 && j < r->nleaves; j++)
        printf("  cluster %zu: %s (%llu)\n", j, r->clusters[j].name, (unsigned long long)r->clusters[j].volume);
    gyre_cluster_result_free(r);
    gyre_clusterer_free(c);
    free(truth);
    free(fam);
    return 0;
}
