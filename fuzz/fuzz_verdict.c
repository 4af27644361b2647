/*
 * libFuzzer driver for what the LLM judge reads from the network: the
 * verdict's strict parser (src/loop/judge.c gyre_judge_parse_verdict), the
 * chat completion around it (gyre_judge_parse_answer), and the HTTP
 * client's chunked body framing that delivers it (src/otlp/httpc.c
 * gyre_httpc_chunked_decode).  The first byte picks the parser.  Checks: an
 * accepted verdict's score is in [0, 1] and its reasoning is a string; a
 * decoded body never exceeds its bound, and a complete decode of a body is
 * stable when decoded again.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "loop/judge.h"
#include "otlp/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char err[256];
    gyre_verdict_t v;
    switch (data[0] % 3) {
    case 0:
        if (gyre_judge_parse_verdict(in, n, &v, err, sizeof(err)) == 0 &&
            (!(v.score >= 0 && v.score <= 1) || memchr(v.reasoning, '\0', sizeof(v.reasoning)) == NULL))
            abort();
        break;
    case 1: {
        char *content = NULL;
        if (gyre_judge_parse_answer(in, n, &v, &content, err, sizeof(err)) == 0 && (content == NULL || !(v.score >= 0 && v.score <= 1)))
            abort();
        free(content);
        break;
    }
    default: {
        gyre_buf_t out, again;
        gyre_buf_init(&out, 4096);
        gyre_buf_init(&again, 4096);
        int r = gyre_httpc_chunked_decode(in, n, &out);
        if (out.len > 4096)
            abort();
        if (r == 1 && (gyre_httpc_chunked_decode(in, n, &again) != 1 || again.len != out.len ||
                       (out.len != 0 && memcmp(again.base, out.base, out.len) != 0)))
            abort();
        gyre_buf_dispose(&out);
        gyre_buf_dispose(&again);
        break;
    }
    }
    return 0;
}
