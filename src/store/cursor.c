/*
 * Page cursors, the same for every backend.  A cursor is the last row of a
 * page, "<started_us>_<trace_id>"; the next page is the rows strictly
 * before it in (started_us, trace_id) order, so traces written meanwhile
 * never shift a page.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/backend.h"

int gyre_store_cursor_parse(const char *c, gyre_store_cursor_t *out, char *err, size_t errlen)
{
    const char *p = c, *id;
    int64_t v = 0;
    size_t digits = 0, idlen = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (INT64_MAX - (*p - '0')) / 10)
            goto bad;
        v = v * 10 + (*p - '0');
    }
    if (digits == 0 || *p != '_')
        goto bad;
    id = ++p;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
        idlen++;
    if (*p != '\0' || idlen == 0 || idlen > 32)
        goto bad;
    out->started_us = v;
    memcpy(out->trace_id, id, idlen);
    out->trace_id[idlen] = '\0';
    return 0;
bad:
    gyre_store_set_err(err, errlen, "cursor: \"%.64s\" is not one this API returned (expected <started_us>_<trace_id>)",
                       c);
    return -EINVAL;
}

void gyre_store_cursor_format(const gyre_store_row_t *row, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRId64 "_%.*s", row->started_us, (int)(row->trace_id.len < 32 ? row->trace_id.len : 32),
             row->trace_id.p != NULL ? row->trace_id.p : "");
}
