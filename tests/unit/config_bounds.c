/*
 * src/config/config.c at its buffers' bounds: an error message or an
 * embedded default that would not fit is reported as such, never with a
 * piece missing (gyre_buf's sticky error, checked once).
 */
#include <stdlib.h>
#include <string.h>

#include "config_test.h"

TEST(config_error_longer_than_4096_bytes_keeps_its_place_and_says_it_was_cut)
{
    /* An unknown strategy value is quoted in its error: 5000 bytes of it cannot fit. */
    size_t n = 5000;
    char *yaml = malloc(n + 200);
    strcpy(yaml, PROVIDER_P "routes:\n  - {name: r, strategy: ");
    size_t at = strlen(yaml);
    memset(yaml + at, 'x', n);
    strcpy(yaml + at + n, ", targets: [{provider: p, model: m}]}\n");
    CHECK_ERRORS(yaml, "t.yaml:4: routes[0].strategy: (the error message is longer than 4096 bytes)\n");
    free(yaml);
}

TEST(config_default_longer_than_64_kib_is_an_error_not_a_cut_config)
{
    char *url = malloc(70000);
    strcpy(url, "http://127.0.0.1:9/");
    memset(url + 19, 'a', 69000);
    url[69019] = '\0';
    setenv("GYRE_MOCK_URL", url, 1);
    CHECK(gyre_config_default_yaml() == NULL);
    gyre_config_errors_t e = {0};
    CHECK(gyre_config_default(&e) == NULL);
    CHECK_INT((int)e.count, 1);
    if (e.count == 1)
        CHECK_STR(e.items[0], "<embedded default>: is longer than 64 KiB (is GYRE_MOCK_URL that long?)");
    gyre_config_errors_dispose(&e);
    free(url);
}
