/*
 * libFuzzer driver for the RFC 9112 checks on a request head
 * (src/server/head.c): the bytes are checked as h2o's input buffer would hold
 * them (a head, then whatever follows), under a limit taken from the input.
 * The checks read only what they were given (ASan sees the exact-size copy),
 * and the verdict is consistent: a head length within the bytes and the
 * bound, a request line inside the head, a reason for every refusal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* The first two bytes choose max_head_bytes (up to 64 KiB), so the 431 path is reached with small inputs. */
    size_t max = ((size_t)data[0] << 8 | data[1]);
    data += 2;
    size -= 2;
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    gyre_head_check_t c;
    gyre_head_check(copy, size, max, &c);
    switch (c.verdict) {
    case GYRE_HEAD_UNPARSED:
        if (c.head_len != 0 || c.method != NULL || c.path != NULL)
            abort();
        break;
    case GYRE_HEAD_TOO_LARGE:
        if (c.head_len <= max || c.head_len > size)
            abort();
        break;
    case GYRE_HEAD_OK:
    case GYRE_HEAD_CLOSE:
    case GYRE_HEAD_BAD:
        if (c.head_len == 0 || c.head_len > size || c.head_len > max)
            abort();
        if ((c.verdict == GYRE_HEAD_OK) != (c.reason == NULL))
            abort();
        break;
    default:
        abort();
    }
    if (c.verdict != GYRE_HEAD_UNPARSED) {
        /* The request line lies inside the head. */
        if (c.method < copy || c.method + c.method_len > copy + c.head_len || c.path < copy ||
            c.path + c.path_len > copy + c.head_len)
            abort();
    }
    free(copy);
    return 0;
}
