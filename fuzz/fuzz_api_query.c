/*
 * libFuzzer driver for what the query API reads from a client before any
 * store sees it: the /api/traces and /api/stats query strings
 * (src/server/api.c), the page cursor (src/store/cursor.c), and the
 * searchable text of a captured body (src/store/text.c).  Checks: a parsed
 * query's strings lie inside its own buffer and hold no NUL they did not
 * end with; a cursor that parses formats back to the same text; the text
 * of a body stays within its buffer's bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "server/api.h"
#include "store/backend.h"

static void check_str(const char *s, const char *base)
{
    if (s == NULL)
        return;
    if (s < base || s > base + GYRE_API_QUERY_MAX)
        abort();
    if (strlen(s) > GYRE_API_QUERY_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    static gyre_api_query_t q;
    static gyre_api_stats_query_t sq;
    gyre_api_error_t err;

    if (gyre_api_parse_traces_query(in, size, &q, &err) == 0) {
        const char *strs[] = {q.q.route, q.q.provider, q.q.model, q.q.agent, q.q.session,
                              q.q.user,  q.q.tag,      q.q.text,  q.q.cursor, q.q.otel_trace_id};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            check_str(strs[i], q.strings);
        if (q.q.limit > 1000)
            abort();
    }
    if (gyre_api_parse_stats_query(in, size, &sq, &err) == 0) {
        const char *strs[] = {sq.q.route, sq.q.provider, sq.q.model, sq.q.agent, sq.q.user};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            check_str(strs[i], sq.strings);
    }

    /* The cursor and the time, as NUL-terminated text. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    gyre_store_cursor_t c;
    if (gyre_store_cursor_parse(text, &c, NULL, 0) == 0) {
        char back[64];
        gyre_store_row_t row = {0};
        row.started_us = c.started_us;
        row.trace_id = (gyre_tstr_t){c.trace_id, strlen(c.trace_id)};
        gyre_store_cursor_format(&row, back, sizeof(back));
        if (strcmp(back, text) != 0 && !(text[0] == '0' && strlen(text) > 1))
            abort(); /* leading zeros read as the same number; anything else must round-trip */
    }
    int64_t us;
    (void)gyre_time_parse(text, &us);
    free(text);

    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_store_text_extract(in, size, &out);
    if (out.len > out.max)
        abort();
    gyre_buf_dispose(&out);
    return 0;
}
