/*
 * libFuzzer driver for the fine-tuning files: the validator of OpenAI's
 * formats (src/loop/ftcheck.c), which reads any file a user points
 * `gyre datasets validate` at, and the dataset line composers
 * (src/loop/dataset.c), which read stored request and answer bodies.
 *
 * The input is read as a file: every line is checked in both formats.  Then
 * its first line is taken as a request's messages, its second as the answer
 * and its third as the tools, and composed into an SFT and a preference line.
 * The promises checked:
 *   - the validator never crashes, and its report has exactly one line per
 *     reported error, each starting with the line's number;
 *   - a composed line is one JSON object ending in one '\n' (and none
 *     before), with the same shape after redaction;
 *   - a composed line whose request had only well-formed messages passes the
 *     validator's checks of JSON and shape ("messages" an array of objects).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "loop/dataset.h"
#include "loop/ftcheck.h"
#include "trace/redact.h"

static void check_report(const gyre_ftcheck_t *c)
{
    size_t lines = 0;
    for (const char *p = c->report.base; p != NULL && *p; p++) {
        if (p == c->report.base || p[-1] == '\n') {
            if (*p < '0' || *p > '9')
                abort();
        }
        lines += *p == '\n';
    }
    size_t want = c->errors < GYRE_FTCHECK_REPORT_MAX ? c->errors : GYRE_FTCHECK_REPORT_MAX;
    if (lines != want)
        abort();
}

static void check_composed(const gyre_buf_t *b)
{
    if (b->len == 0 || b->base[b->len - 1] != '\n' || memchr(b->base, '\n', b->len - 1) != NULL)
        abort();
    cJSON *o = cJSON_ParseWithLength(b->base, b->len - 1);
    if (!cJSON_IsObject(o))
        abort();
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    for (int f = 0; f < 2; f++) {
        gyre_ftcheck_t c;
        gyre_ftcheck_init(&c, f == 0 ? GYRE_FT_OPENAI : GYRE_FT_PREFERENCE, 0, 0);
        const char *p = in, *end = in + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
            gyre_ftcheck_line(&c, p, len);
            p += len + 1;
        }
        gyre_ftcheck_finish(&c);
        check_report(&c);
        gyre_ftcheck_dispose(&c);
    }

    /* The composers: messages, answer and tools from the first three lines (NUL-terminated in place). */
    char *parts[3] = {NULL, NULL, NULL};
    char *q = in;
    for (int i = 0; i < 3 && q != NULL; i++) {
        parts[i] = q;
        q = strchr(q, '\n');
        if (q != NULL)
            *q++ = '\0';
    }
    gyre_example_t ex;
    memset(&ex, 0, sizeof(ex));
    ex.messages_json = parts[0];
    ex.answer_json = parts[1];
    ex.tools_json = parts[2];
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_DATASET_LINE_MAX + 1);
    char err[256];
    for (unsigned redact = 0; redact <= GYRE_REDACT_ALL; redact += GYRE_REDACT_ALL) {
        gyre_buf_reset(&b);
        if (gyre_dataset_sft_line(&ex, NULL, redact, &b, err, sizeof(err)) == 0)
            check_composed(&b);
        gyre_buf_reset(&b);
        if (gyre_dataset_sft_line(&ex, "a correction", redact, &b, err, sizeof(err)) == 0)
            check_composed(&b);
        gyre_buf_reset(&b);
        if (gyre_dataset_preference_line(&ex, NULL, "better", parts[1], redact, &b, err, sizeof(err)) == 0)
            check_composed(&b);
    }
    gyre_buf_dispose(&b);
    free(in);
    return 0;
}
