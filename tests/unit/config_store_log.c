/*
 * The trace log's fields of `store:` (issue 12, src/config/config.c
 * parse_store_log): sizes with units, durations, `retention: 0` for never,
 * and an error naming the field and what it expected for a bad value.
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "test.h"

TEST(config_store_log_fields_take_sizes_with_units_and_durations)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("store: {sqlite: x.db, log: /var/lib/gyre/log, fsync_ms: 5, retention: 7d,"
                             " max_bytes: 64MB, segment_bytes: 8KB}\n" PROVIDER_P,
                             &e);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_STR(c->store_log, "/var/lib/gyre/log");
    CHECK_INT(c->store_fsync_ms, 5);
    CHECK_INT(c->store_retention_us, (int64_t)7 * 86400 * 1000000);
    CHECK_INT(c->store_max_bytes, (uint64_t)64 << 20);
    CHECK_INT(c->store_segment_bytes, 8192);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_store_log_fields_left_out_are_zero_which_means_the_documented_defaults)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("store: {sqlite: x.db}\n" PROVIDER_P, &e);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(c->store_log == NULL);
    CHECK_INT(c->store_fsync_ms, 0);
    CHECK_INT(c->store_retention_us, 0);
    CHECK_INT(c->store_max_bytes, 0);
    CHECK_INT(c->store_segment_bytes, 0);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_store_retention_0_keeps_every_segment)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("store: {sqlite: x.db, retention: 0, max_bytes: 1TB}\n" PROVIDER_P, &e);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_INT(c->store_retention_us, -1);
    CHECK_INT(c->store_max_bytes, (uint64_t)1 << 40);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_store_log_bad_values_name_the_field_and_what_it_expects)
{
    CHECK_ERRORS("store: {sqlite: x.db, max_bytes: 20 GB, retention: 30 days, segment_bytes: 1KB, fsync_ms: 0}\n" PROVIDER_P,
                 "t.yaml:1: store.max_bytes: expected a size such as 20GB, 64MB or 4096 (bytes), found '20 GB'\n"
                 "t.yaml:1: store.retention: expected a duration such as 30d, 12h, 15m, 90s or 500ms, found '30 days'\n"
                 "t.yaml:1: store.segment_bytes: 1KB is below the least allowed, 4096 bytes\n"
                 "t.yaml:1: store.fsync_ms: 0 is out of range (1 to 3600000)\n");
}
