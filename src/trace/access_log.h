/*
 * The access log: one JSON line per request, every request (a model call, a 401, a 404, /metrics, h2o's own
 * 413), written when the request is disposed, off unless `access_log:` is configured (docs/access-log.md lists
 * the fields and their meaning).
 *
 * Where the line is made: gyre_access_log_begin, at the first stage (or on the fallback path for h2o's own
 * answers), allocates the request's entry in its pool, with a dispose hook, and copies what the request line
 * says (method, path, remote address, request id).  The stages note the call's trace and who the client was
 * (gyre_access_entry_note).  Pool dispose hooks run last-registered-first and the entry is registered before
 * anything else of the request, so its hook runs after the proxy's has finished the trace: the line reads the
 * trace as it was completed (status, route, provider, model, cache, attempts, trace id) while the pool's memory
 * is still there.
 *
 * Where it goes: each worker appends its lines to its own buffer (`buffer_bytes`, default 1 MiB) under a mutex
 * only the log's writer thread shares; the writer thread swaps each buffer out every `flush_ms` (or sooner when
 * a worker's buffer is half full) and writes it with write(2), outside every lock.  A worker never waits on
 * the disk: a line that does not fit in its buffer is dropped and counted (gyre_access_log_stats, and a log
 * line at most every 10 s while drops happen).  Every value is JSON-encoded in one place,
 * gyre_access_log_format, which fuzz/fuzz_access_log.c drives with hostile bytes.
 */
#ifndef GYRE_TRACE_ACCESS_LOG_H
#define GYRE_TRACE_ACCESS_LOG_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "trace/trace.h"

/* The longest value of a field kept in a line (a longer path is cut there, and the line says so with
 * "path_truncated": true); every other string field is cut at GYRE_ACCESS_LOG_FIELD_MAX. */
#define GYRE_ACCESS_LOG_PATH_MAX 2048
#define GYRE_ACCESS_LOG_FIELD_MAX 256
/* The longest line: every field at its bound, escaped (6 bytes a byte at worst), with room to spare. */
#define GYRE_ACCESS_LOG_LINE_MAX (6 * (GYRE_ACCESS_LOG_PATH_MAX + 12 * GYRE_ACCESS_LOG_FIELD_MAX) + 1024)

typedef struct gyre_access_log gyre_access_log_t;
typedef struct gyre_access_entry gyre_access_entry_t;

/* A string field: bytes and length, any bytes (the encoder makes them valid JSON). */
typedef struct gyre_access_str {
    const char *p;
    size_t len;
} gyre_access_str_t;

/* One line's values, as gyre_access_log_format writes them. */
typedef struct gyre_access_fields {
    int64_t time_us; /* when the request's head was read (unix microseconds) */
    gyre_access_str_t request_id, remote, method, path, query_keys;
    int status;
    uint64_t bytes_in, bytes_out;
    double duration_ms;
    gyre_access_str_t route, provider, model, key_id, trace_id;
    int call;      /* 1 for a model call (cache and attempts mean something), else 0 */
    int cache_hit; /* a call answered from the route's cache */
    int attempts;  /* upstream attempts of a call */
} gyre_access_fields_t;

/* Appends the JSON line (ending in '\n') for `f` to `out`: every value encoded here, strings as UTF-8 with
 * ill-formed bytes as U+FFFD and each cut at its bound.  All or nothing: -E2BIG (out unchanged) when it does
 * not fit in `out`'s maximum. */
int gyre_access_log_format(const gyre_access_fields_t *f, gyre_buf_t *out);

/* Opens the log the config names (NULL *out, 0 when `access_log:` is off) for `nworkers` workers and starts
 * its writer thread.  -errno with `err` naming the path when the file cannot be opened for appending. */
int gyre_access_log_open(const gyre_config_t *config, unsigned nworkers, gyre_access_log_t **out, char *err,
                         size_t errlen);
/* Writes what the workers left (call once they have stopped), stops the writer and frees the log. */
void gyre_access_log_close(gyre_access_log_t *log);

typedef struct gyre_access_log_stats {
    uint64_t lines;   /* written */
    uint64_t dropped; /* did not fit in a worker's buffer */
    uint64_t write_errors;
} gyre_access_log_stats_t;
void gyre_access_log_stats(gyre_access_log_t *log, gyre_access_log_stats_t *out);

/* The request's entry (NULL when `log` is NULL), made once per request (by the head stage, or on the fallback
 * path for h2o's own answers), after its x-request-id is set.  On worker `worker`'s thread. */
gyre_access_entry_t *gyre_access_log_begin(gyre_access_log_t *log, unsigned worker, h2o_req_t *req);
/* What the stages learnt: the call's trace (read when the line is written; NULL for no call) and the client's
 * key id ("" when none).  Either may be NULL to leave it as it is; `entry` NULL does nothing. */
void gyre_access_entry_note(gyre_access_entry_t *entry, const gyre_trace_t *trace, const char *key_id);

#endif
