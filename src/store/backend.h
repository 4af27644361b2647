/*
 * What a store backend sees and no one else (SQLite's btreeInt.h beside
 * pager.h): the handle's definition and the shared helpers a backend
 * calls.  A backend's handle embeds `gyre_store_t` first ("super"), so the
 * shared code reaches the table and the shared state from any handle:
 *
 *   typedef struct sqlite_store { gyre_store_t super; sqlite3 *db; ... } sqlite_store_t;
 *
 * Only files in src/store include this header.
 */
#ifndef GYRE_STORE_BACKEND_H
#define GYRE_STORE_BACKEND_H

#include "common/buf.h"
#include "common/zstd.h"
#include "store/store.h"

struct gyre_store {
    const gyre_store_ops_t *ops; /* first: the handle carries its table */
    /* Shared state for rendering (owned by the handle): the zstd contexts bodies are compressed and expanded
     * with, the expanded body's scratch, and where bodies kept in the trace log are read from. */
    gyre_zstd_t *zstd;
    gyre_buf_t body, logreq, logresp;
    gyre_store_body_read_cb body_reader;
    void *body_reader_ctx;
};

/* The largest body a read expands (a stored frame that claims more is reported as an error, not allocated). */
#define GYRE_STORE_BODY_MAX (64u << 20)
/* The most calls get_session returns: an agent's trajectory, bounded so one session cannot pin a reader. */
#define GYRE_STORE_SESSION_MAX 1000
#define GYRE_STORE_LIMIT_DEFAULT 50
#define GYRE_STORE_LIMIT_MAX 1000
/* The longest free-text query a backend is handed. */
#define GYRE_STORE_TEXT_MAX 4096

/* The backends built in, each a table in its own file; gyre_store_open picks one by the DSN's scheme. */
extern const gyre_store_ops_t gyre_store_sqlite;

/* Sets up and tears down the shared part of a backend's handle. */
void gyre_store_init(gyre_store_t *s, const gyre_store_ops_t *ops);
void gyre_store_dispose(gyre_store_t *s);

void gyre_store_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- render.c ---- */

/* One row as a trace object (bodies included when `bodies`; summaries leave them out), appended to out.
 * 0, -EIO (a stored body does not expand: err names the trace and the body) or -E2BIG (out's bound). */
int gyre_store_render_row(gyre_store_t *s, const gyre_store_row_t *row, int bodies, gyre_buf_t *out, char *err,
                          size_t errlen);
/*
 * What the loop adds to a trace (/api/traces/{id}), appended to out (after the trace's last member, before its
 * closing brace):
 *   ,"feedback":[{"name":..,"value":X|null,"label":..|null,"comment":..|null,"correction":..|null,
 *                 "session":true|false (given by session),"created_us":N}],   (oldest first)
 *   "scores":[{"name":..,"source":"heuristic"|"judge"|"guardrail","version":..,"value":X|null,
 *              "label":..|null,"comment":..|null}],                           (oldest first)
 *   "cluster":{"id":N,"run":"<run id>"}|null                                  (the newest clustering's)
 * 0, -E2BIG, -EIO.
 */
int gyre_store_render_loop(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen);
/* "human", "heuristic", "judge", "guardrail" (gyre_score_source_t), "unknown" for any other. */
const char *gyre_store_score_source_name(int source);
/* What a backend stores for a trace's tags (sorted, duplicates dropped), meta (sorted by key; a repeated key
 * keeps its last value) and attempts, in the API's shape; each resets `out` first. */
void gyre_store_render_tags(const gyre_tstr_t *tags, size_t n, gyre_buf_t *out);
void gyre_store_render_meta(const gyre_trace_meta_t *meta, size_t n, gyre_buf_t *out);
void gyre_store_render_attempts(const gyre_trace_attempt_t *a, size_t n, gyre_buf_t *out);

/* ---- cursor.c ---- */

/* Reads "<started_us>_<trace_id>"; 0, or -EINVAL with "cursor: ..." in err. */
int gyre_store_cursor_parse(const char *text, gyre_store_cursor_t *out, char *err, size_t errlen);
/* Writes a row's cursor into buf (at least 64 bytes). */
void gyre_store_cursor_format(const gyre_store_row_t *row, char *buf, size_t len);

#endif
