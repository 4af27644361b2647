/*
 * `access_log:` one JSON line per request (src/trace/access_log.h writes them; docs/access-log.md lists the
 * fields).  Off unless configured:
 *
 *   access_log: off | stderr | PATH
 *   access_log: {path: stderr | PATH, buffer_bytes: 1MB, flush_ms: 1000}
 *
 * The file itself is opened at start-up (gyre_access_log_open), where a path that cannot be opened for
 * appending is an error naming it.
 */
#include <string.h>

#include "common/alloc.h"
#include "config/config_int.h"

/* Each worker's buffer: at least 64 KiB (several lines), at most 256 MiB. */
#define ACCESS_LOG_MIN_BUFFER ((uint64_t)64 << 10)
#define ACCESS_LOG_MAX_BUFFER ((uint64_t)256 << 20)

static void set_path(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *v, const char *field)
{
    char *s = NULL;
    if (!gyre_cfg_get_string(ctx, v, field, &s))
        return;
    free(c->access_log);
    c->access_log = NULL;
    if (s[0] == '\0')
        ERR(ctx, v, field, "is empty (write off, stderr or a file's path)");
    else if (strcmp(s, "off") != 0 && strcmp(s, "false") != 0)
        c->access_log = gyre_strdup(s);
    free(s);
}

void gyre_cfg_parse_access_log(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    if (n->type == YAML_SCALAR_NODE) {
        set_path(ctx, c, n, "access_log");
        return;
    }
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, "access_log"))
        return;
    int have_path = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        uint64_t bytes;
        if (strcmp(key, "path") == 0) {
            set_path(ctx, c, v, "access_log.path");
            have_path = 1;
        } else if (strcmp(key, "buffer_bytes") == 0) {
            if (gyre_cfg_get_size(ctx, v, "access_log.buffer_bytes", ACCESS_LOG_MIN_BUFFER, &bytes)) {
                if (bytes > ACCESS_LOG_MAX_BUFFER)
                    ERR(ctx, v, "access_log.buffer_bytes", "is above the most allowed, 256MB");
                else
                    c->access_log_buffer_bytes = (size_t)bytes;
            }
        } else if (strcmp(key, "flush_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "access_log.flush_ms", 1, 60000, &u))
                c->access_log_flush_ms = (unsigned)u;
        } else {
            ERR(ctx, k, "access_log", "unknown field '%s' (known: path, buffer_bytes, flush_ms)", key);
        }
    }
    if (!have_path)
        ERR(ctx, n, "access_log", "needs a 'path' (stderr or a file's path)");
}
