/*
 * libFuzzer driver for the access log's line encoder (src/trace/access_log.c, gyre_access_log_format): every
 * value of a line is encoded there, from bytes a client chose (method, path, request id, a key id) and from
 * the trace (route, provider, model).  The input is split at 0xff bytes into the string fields, in order; the
 * numbers come from the first bytes.
 *
 * The promises checked, on any bytes: the output is exactly one line (one '\n', at its end), it is one valid
 * JSON text (gyre_json_valid) of well-formed UTF-8, it is at most GYRE_ACCESS_LOG_LINE_MAX bytes, cJSON reads
 * it as an object whose "path" is the input's path when that was short, well-formed and printable, and
 * "path_truncated" is there exactly when the path was longer than its bound.  Each field is copied into an
 * allocation of its own size, so a read past it is caught.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/utf8.h"
#include "trace/access_log.h"

#define NFIELDS 11

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *field[NFIELDS] = {0};
    size_t len[NFIELDS] = {0};
    size_t at = 0;
    for (int i = 0; i < NFIELDS; i++) {
        size_t end = at;
        while (end < size && data[end] != 0xff)
            end++;
        len[i] = end > at ? end - at : 0;
        field[i] = malloc(len[i] ? len[i] : 1);
        if (len[i])
            memcpy(field[i], data + at, len[i]);
        at = end < size ? end + 1 : size;
    }
    gyre_access_fields_t f = {
        .time_us = size > 0 ? (int64_t)data[0] * 1000003LL * 1000000LL : 0,
        .request_id = {field[0], len[0]},
        .remote = {field[1], len[1]},
        .method = {field[2], len[2]},
        .path = {field[3], len[3]},
        .query_keys = {field[4], len[4]},
        .status = size > 1 ? data[1] * 3 : 0,
        .bytes_in = size > 2 ? (uint64_t)data[2] << 40 : 0,
        .bytes_out = size,
        .duration_ms = size > 3 ? (double)data[3] / 7.0 - 10.0 : 0,
        .route = {field[5], len[5]},
        .provider = {field[6], len[6]},
        .model = {field[7], len[7]},
        .key_id = {field[8], len[8]},
        .trace_id = {field[9], len[9]},
        .call = size > 4 && (data[4] & 1),
        .cache_hit = size > 4 && (data[4] & 2),
        .attempts = size > 5 ? data[5] : 0,
    };
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_ACCESS_LOG_LINE_MAX);
    if (gyre_access_log_format(&f, &b) != 0)
        abort(); /* every field is bounded: a line always fits */
    if (b.len == 0 || b.len > GYRE_ACCESS_LOG_LINE_MAX || b.base[b.len - 1] != '\n' ||
        memchr(b.base, '\n', b.len - 1) != NULL)
        abort();
    if (!gyre_utf8_valid(b.base, b.len) || !gyre_json_valid(b.base, b.len - 1))
        abort();
    cJSON *j = cJSON_ParseWithLength(b.base, b.len - 1);
    if (!cJSON_IsObject(j))
        abort();
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(j, "path");
    int printable = 1;
    for (size_t i = 0; i < len[3]; i++)
        printable &= field[3][i] >= 0x20 && field[3][i] < 0x7f;
    if (len[3] <= GYRE_ACCESS_LOG_PATH_MAX && printable &&
        (!cJSON_IsString(path) || strlen(path->valuestring) != len[3] || memcmp(path->valuestring, field[3], len[3]) != 0))
        abort();
    if ((cJSON_GetObjectItemCaseSensitive(j, "path_truncated") != NULL) != (len[3] > GYRE_ACCESS_LOG_PATH_MAX))
        abort();
    cJSON_Delete(j);
    gyre_buf_dispose(&b);
    for (int i = 0; i < NFIELDS; i++)
        free(field[i]);
    return 0;
}
