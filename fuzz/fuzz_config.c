/* libFuzzer driver for the configuration reader (src/config/config.c). */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("fuzz.yaml", (const char *)data, size, &errs);
    gyre_config_free(c);
    gyre_config_errors_dispose(&errs);
    return 0;
}
