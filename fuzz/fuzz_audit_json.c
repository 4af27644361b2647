/*
 * libFuzzer driver for the audit log's secret check (src/control/audit.c,
 * gyre_audit_check_json) on hostile JSON: whatever the bytes, it answers 0
 * or -EINVAL and never reads past the text; and text that is accepted is
 * valid JSON (it is embedded as it is in /api/audit's answer).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "control/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A NUL-terminated copy of exactly `size` bytes (a NUL inside ends the text, as it would for a caller). */
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char err[512];
    int r = gyre_audit_check_json(in, "after", err, sizeof(err));
    if (r != 0 && r != -EINVAL)
        abort();
    if (r == 0 && !gyre_json_valid(in, strlen(in)))
        abort();
    free(in);
    return 0;
}
