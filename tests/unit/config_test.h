/*
 * What the config tests share (tests/unit/config*.c): parsing a YAML text as
 * "t.yaml", and asserting the exact list of errors it gives.
 */
#ifndef GYRE_TEST_CONFIG_TEST_H
#define GYRE_TEST_CONFIG_TEST_H

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "test.h"

/* A provider line that is valid on its own, for tests about other fields. */
#define PROVIDER_P "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1'}\n"

static inline gyre_config_t *parse(const char *yaml, gyre_config_errors_t *errs)
{
    return gyre_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

/* All errors joined by newlines, for exact comparison; the caller frees it. */
static inline char *joined(const gyre_config_errors_t *errs)
{
    size_t n = 1;
    for (size_t i = 0; i < errs->count; i++)
        n += strlen(errs->items[i]) + 1;
    char *s = calloc(1, n);
    for (size_t i = 0; i < errs->count; i++) {
        strcat(s, errs->items[i]);
        strcat(s, "\n");
    }
    return s;
}

/* Asserts that `yaml` fails with exactly the errors in `expected` (one per line). */
#define CHECK_ERRORS(yaml, expected)                                                                                   \
    do {                                                                                                               \
        gyre_config_errors_t e_ = {0};                                                                                 \
        gyre_config_t *c_ = parse((yaml), &e_);                                                                        \
        CHECK(c_ == NULL);                                                                                             \
        char *all_ = joined(&e_);                                                                                      \
        CHECK_STR(all_, (expected));                                                                                   \
        free(all_);                                                                                                    \
        gyre_config_free(c_);                                                                                          \
        gyre_config_errors_dispose(&e_);                                                                               \
    } while (0)

#endif
