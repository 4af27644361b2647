/* Incremental server-sent-events parser (see sse.h). */
#include "common/sse.h"

#include <errno.h>
#include <string.h>

void gyre_sse_init(gyre_sse_parser_t *p, size_t max, gyre_sse_event_cb cb, void *ctx)
{
    memset(p, 0, sizeof(*p));
    gyre_buf_init(&p->line, max);
    gyre_buf_init(&p->data, max);
    gyre_buf_init(&p->event, 256);
    p->cb = cb;
    p->ctx = ctx;
}

void gyre_sse_dispose(gyre_sse_parser_t *p)
{
    gyre_buf_dispose(&p->line);
    gyre_buf_dispose(&p->data);
    gyre_buf_dispose(&p->event);
}

static void dispatch(gyre_sse_parser_t *p)
{
    if (p->has_data && p->cb != NULL)
        p->cb(p->ctx, p->event.base ? p->event.base : "", p->event.len, p->data.base ? p->data.base : "", p->data.len);
    gyre_buf_reset(&p->data);
    gyre_buf_reset(&p->event);
    p->has_data = 0;
}

static int process_line(gyre_sse_parser_t *p, const char *line, size_t len)
{
    if (len == 0) {
        dispatch(p);
        return 0;
    }
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t vlen = colon ? len - nlen - 1 : 0;
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if (p->has_data && gyre_buf_append(&p->data, "\n", 1) != 0)
            return -E2BIG;
        if (gyre_buf_append(&p->data, value, vlen) != 0)
            return -E2BIG;
        p->has_data = 1;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        gyre_buf_reset(&p->event);
        if (gyre_buf_append(&p->event, value, vlen) != 0)
            return -E2BIG;
    }
    /* id:, retry: and unknown fields do not matter to a relay. */
    return 0;
}

int gyre_sse_feed(gyre_sse_parser_t *p, const char *bytes, size_t len)
{
    size_t i = 0;
    /* An empty piece must not forget a CR that ended the previous one. */
    if (len == 0)
        return 0;
    if (p->last_was_cr && bytes[0] == '\n')
        i = 1;
    p->last_was_cr = 0;
    while (i < len) {
        /* find the end of the line in this piece */
        size_t j = i;
        while (j < len && bytes[j] != '\n' && bytes[j] != '\r')
            j++;
        if (j == len) {
            if (gyre_buf_append(&p->line, bytes + i, len - i) != 0)
                return -E2BIG;
            return 0;
        }
        int r;
        if (p->line.len != 0) {
            if (gyre_buf_append(&p->line, bytes + i, j - i) != 0)
                return -E2BIG;
            r = process_line(p, p->line.base, p->line.len);
            gyre_buf_reset(&p->line);
        } else {
            r = process_line(p, bytes + i, j - i);
        }
        if (r != 0)
            return r;
        if (bytes[j] == '\r') {
            if (j + 1 < len && bytes[j + 1] == '\n')
                j++;
            else if (j + 1 == len)
                p->last_was_cr = 1;
        }
        i = j + 1;
    }
    return 0;
}
