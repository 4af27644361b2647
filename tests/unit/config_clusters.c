/*
 * src/config/clusters.c: the `clusters:` section, its defaults, and every
 * error naming its field.
 */
#include "config/config.h"

#include <string.h>

#include "config_test.h"
#include "test.h"

#define ROUTE_R "routes:\n  - {name: emb, targets: [{provider: p, model: m}]}\n"

TEST(config_clusters_absent_has_the_defaults)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->clusters.k, 0);
    CHECK_INT(c->clusters.min_sessions, 5);
    CHECK_INT(c->clusters.every_ms, 0);
    CHECK_INT(c->clusters.window_us, (int64_t)7 * 86400 * 1000000);
    CHECK_INT(c->clusters.seed, 1);
    CHECK(c->clusters.embeddings_route == NULL && c->clusters.naming_route == NULL);
    gyre_config_free(c);
}

TEST(config_clusters_every_field_is_read)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("clusters: {k: 12, min_sessions: 3, embeddings: emb, naming: emb, every: 6h, window: 30d, "
                             "seed: 77}\n" PROVIDER_P ROUTE_R,
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->clusters.k, 12);
    CHECK_INT(c->clusters.min_sessions, 3);
    CHECK_STR(c->clusters.embeddings_route, "emb");
    CHECK_STR(c->clusters.naming_route, "emb");
    CHECK_INT(c->clusters.every_ms, 6 * 3600 * 1000);
    CHECK_INT(c->clusters.window_us, (int64_t)30 * 86400 * 1000000);
    CHECK_INT(c->clusters.seed, 77);
    gyre_config_free(c);
}

TEST(config_clusters_errors_name_the_field)
{
    CHECK_ERRORS(PROVIDER_P ROUTE_R "clusters:\n  k: 300\n  embeddings: nope\n  every: 10s\n  window: 400d\n  colour: 1\n"
                                    "  min_sessions: 0\n",
                 "t.yaml:6: clusters.k: 300 is out of range (0 to 256)\n"
                 "t.yaml:7: clusters.embeddings: no route is named 'nope'\n"
                 "t.yaml:8: clusters.every: is below the least allowed, 1m (0 turns it off)\n"
                 "t.yaml:9: clusters.window: is above the most allowed, 366d\n"
                 "t.yaml:10: clusters: unknown field 'colour' (known: k, min_sessions, embeddings, naming, every, window, "
                 "seed)\n"
                 "t.yaml:11: clusters.min_sessions: 0 is out of range (1 to 1000000)\n");
}
