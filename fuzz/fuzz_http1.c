/*
 * libFuzzer driver for the provider response reader (src/proxy/http1.c):
 * the head parser on every prefix of the input, then the chunked decoder on
 * the rest, fed in pieces whose sizes come from the input itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gyre_http1_response_t r;
    const char *in = (const char *)data;
    ssize_t head = -1;
    /* Every prefix: the parser must never read past what it was given. */
    for (size_t n = 0; n <= size && n < 512; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, in, n);
        ssize_t h = gyre_http1_parse_response(copy, n, &r);
        if (h > 0 && head < 0)
            head = h;
        free(copy);
    }
    if (head < 0 && size >= 512)
        head = gyre_http1_parse_response(in, size, &r);

    /* The body as chunked data, in pieces of 1..16 bytes chosen by the input. */
    size_t pos = head > 0 ? (size_t)head : 0;
    gyre_http1_chunked_t d = {0};
    char *pending = malloc(size + 1);
    size_t plen = 0, step = 1;
    while (pos < size) {
        step = (size_t)(data[pos] % 16) + 1;
        size_t take = size - pos < step ? size - pos : step;
        memcpy(pending + plen, in + pos, take);
        plen += take;
        pos += take;
        size_t len = plen, used = 0;
        int ret = gyre_http1_decode_chunked(&d, pending, &len, &used);
        if (ret != 0 || used > plen || len > used)
            break;
        memmove(pending, pending + used, plen - used);
        plen -= used;
    }
    free(pending);
    return 0;
}
