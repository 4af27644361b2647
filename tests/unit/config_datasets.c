/* `datasets:` (src/config/datasets.c) and where datasets go without it (gyre_dataset_dir). */
#include "config_test.h"
#include "loop/dataset.h"

TEST(config_datasets_names_the_directory)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("datasets: /var/lib/gyre/ds\n", &e);
    CHECK(c != NULL);
    CHECK_STR(c->datasets_dir, "/var/lib/gyre/ds");
    char buf[256];
    CHECK_STR(gyre_dataset_dir(c, buf, sizeof(buf)), "/var/lib/gyre/ds");
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_datasets_default_is_beside_the_store)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("store: {sqlite: /data/g.db}\n", &e);
    CHECK(c != NULL);
    CHECK(c->datasets_dir == NULL);
    char buf[256];
    CHECK_STR(gyre_dataset_dir(c, buf, sizeof(buf)), "/data/g.db.datasets");
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_datasets_empty_or_not_a_string_is_an_error)
{
    CHECK_ERRORS("datasets: ''\n", "t.yaml:1: datasets: is empty (a directory's path)\n");
    CHECK_ERRORS("datasets: [a]\n", "t.yaml:1: datasets: expected a scalar, found a list\n");
}
