/*
 * The trace writer: takes every trace from the event loops, appends it to
 * the trace log (trace/tracelog.h) the moment it arrives, and indexes the
 * log into the store behind it, so that an event loop never
 * waits on the store or on a disk, and the store's speed no longer decides
 * whether a trace is kept.
 *
 * Two threads:
 *
 * - The writer thread drains the workers' rings (queue.h: a bounded
 *   lock-free SPSC ring per worker; when one is full the copy goes on an
 *   overflow list under a mutex, bounded by overflow_max, past which a
 *   trace is dropped, counted and logged) round-robin and appends each
 *   trace to the log: one pwrite(2), zstd-compressed.  It polls every
 *   poll_ms (1 ms) when the rings are empty, so a trace is in the page
 *   cache within about 1 ms of its answer: that is the kill -9 bound
 *   (tests/integration/tracelog.test.mjs checks 10 ms).  It fdatasyncs
 *   the log every fsync_ms (`store: {fsync_ms:}`, 20 ms by default): the
 *   power-cut bound.  A trace the log refuses (its size bound, a full or
 *   read-only disk) is dropped, counted by reason and logged loudly, and
 *   /healthz reports it.
 *
 * - The indexer thread, at a lower priority (nice +10), reads the log
 *   from its checkpoint (index.pos, tracelog.h) in batches of up to
 *   index_batch_max and writes each with ops->write_batch, then moves the
 *   checkpoint.  When it has caught up it sleeps index_interval_ms (20
 *   ms), so a trace is queryable within about 20 ms plus a batch's write
 *   at ordinary load, and within 1 s up to half the saturating load.
 *   Under overload the index lags, the log does not: the lag is a metric
 *   and /healthz says when it passes 60 s.  A failing store is retried
 *   after 10 ms doubling to 1 s; nothing is lost meanwhile, the log holds
 *   it.  A store that reports corruption (-EBADMSG) stops the indexer:
 *   the checkpoint is flagged, /healthz and the log say so, and the next
 *   start rebuilds the index from the log (server.c).  The checkpoint is
 *   written after a batch commits, so a crash between the two re-indexes
 *   the batch, which the store takes as a no-op (a trace_id it holds); at
 *   start the indexer goes back to the start of the checkpoint's segment,
 *   so a power cut that lost the store's last commits (WAL,
 *   synchronous=NORMAL) loses nothing from the index either.
 *
 *   Retention runs in the indexer too: the oldest closed segment that is
 *   wholly indexed is dropped when its newest trace is older than
 *   retention_us or the log is over max_bytes less one segment: its
 *   traces' rows leave the index (ops->delete_traces, free text
 *   included), the file is removed, and ops->reclaim gives the freed pages
 *   back.
 *
 * - gyre_writer_drain_and_stop (SIGTERM): the workers must have stopped
 *   submitting.  Everything queued is appended and synced; the indexer
 *   then indexes up to the end of the log and stops; if the store keeps
 *   failing past drain_timeout_ms, what is not indexed stays in the log
 *   for the next start and it returns -EIO.
 *
 * - An older gyre's spool file (legacy_spool) is imported into the log at
 *   create and removed.
 *
 * - Stats are atomics, readable from any thread (for /metrics).
 */
#ifndef GYRE_TRACE_WRITER_H
#define GYRE_TRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"
#include "trace/queue.h"
#include "trace/trace.h"
#include "trace/tracelog.h"

typedef struct gyre_writer gyre_writer_t;

/* Zero fields take the defaults in brackets. */
typedef struct gyre_writer_config {
    size_t queue_capacity;      /* per worker ring [4096] */
    size_t overflow_max;        /* traces on the overflow list [65536] */
    unsigned poll_ms;           /* the writer thread's sleep when the rings are empty [1] */
    unsigned fsync_ms;          /* fdatasync of the log at least this often while anything is unsynced [20] */
    size_t index_batch_max;     /* traces per write_batch [2048] */
    unsigned index_interval_ms; /* the indexer's sleep when it has caught up [20] */
    unsigned drain_timeout_ms;  /* how long drain_and_stop retries a failing store [30000] */
    int64_t retention_us;       /* drop segments whose newest trace is older [30 days]; < 0: never */
    unsigned retention_check_ms;/* how often retention looks [1000] */
    int check_at_start;         /* the indexer runs ops->check before indexing (gyre_writer_open_index) */
    gyre_tracelog_config_t log; /* max_bytes [20 GiB], segment_bytes */
} gyre_writer_config_t;

typedef struct gyre_writer_stats {
    uint64_t queued;         /* traces in the rings and the overflow list now */
    uint64_t logged;         /* traces appended to the log */
    uint64_t written;        /* traces the index took */
    uint64_t dropped;        /* traces lost (all reasons below) */
    uint64_t dropped_bound;  /* ... at the log's max_bytes */
    uint64_t dropped_disk;   /* ... refused by the disk (full, read-only, I/O error) */
    uint64_t dropped_overflow; /* ... at the overflow list's bound */
    uint64_t store_errors;   /* write_batch calls that failed */
    uint64_t log_segments, log_bytes;
    uint64_t index_lag_bytes;  /* log bytes not yet indexed */
    uint64_t index_lag_ms;     /* how old the oldest trace not yet indexed is (0: caught up) */
    uint64_t damaged_regions, damaged_bytes; /* what readers skipped as corrupt */
    uint64_t segments_retired; /* dropped by retention */
    int index_corrupt;         /* the store reported corruption: the next start rebuilds it */
    int last_log_errno;        /* the last append's failure, 0 when it succeeded */
} gyre_writer_stats_t;

/* Opens the log at log_dir (importing legacy_spool when that file exists; NULL: none) and starts both threads.
 * `ops` and `store` stay the caller's and must outlive the writer.  0, or a negative errno with err filled. */
int gyre_writer_create(const gyre_store_ops_t *ops, gyre_store_t *store, const char *log_dir, const char *legacy_spool,
                       size_t nqueues, const gyre_writer_config_t *config, gyre_writer_t **out, char *err,
                       size_t errlen);
/*
 * Opens the index (the store at `dsn`) for the log at log_dir, rebuilding it
 * when it is corrupt: when the last run flagged it (index.pos), when opening
 * it says so (-EBADMSG), or when ops->check does.  Rebuilding moves the
 * database (and its -wal and -shm) aside to "<dsn>.corrupt-<unix seconds>",
 * says so in the log, creates an empty one and resets the checkpoint, so
 * the indexer takes the whole log again.  The check reads the whole
 * database, so it runs here only for a database of at most
 * GYRE_WRITER_CHECK_AT_OPEN_MAX bytes; for a larger one *check_later is set,
 * and the writer's indexer runs it before indexing (config check_at_start):
 * a corrupt one is then flagged and rebuilt at the next start, while gyre
 * serves.  0 with *out set, or a negative errno with err filled (a store
 * that cannot be opened for another reason).
 */
#define GYRE_WRITER_CHECK_AT_OPEN_MAX ((uint64_t)256 << 20)
int gyre_writer_open_index(const gyre_store_ops_t *ops, const char *dsn, const char *log_dir, gyre_store_t **out,
                           int *check_later, char *err, size_t errlen);
/* Moves the database at `dsn` aside as above, for `gyre store reindex` too; the new name into aside. */
int gyre_writer_move_index_aside(const char *dsn, const char *why, char *aside, size_t asidelen);

/* Worker i's ring. */
gyre_trace_queue_t *gyre_writer_queue(gyre_writer_t *w, size_t i);
/* From worker i only: copies `t` and queues it; never waits.  0, or -ENOSPC when it was dropped at a bound. */
int gyre_writer_submit(gyre_writer_t *w, size_t i, const gyre_trace_t *t);
/* Appends everything queued, indexes the log, then stops both threads (see above).  0 or -EIO. */
int gyre_writer_drain_and_stop(gyre_writer_t *w);
/* Stops the threads if they run (as drain_and_stop) and frees the writer. */
void gyre_writer_destroy(gyre_writer_t *w);
void gyre_writer_stats(gyre_writer_t *w, gyre_writer_stats_t *st);
/* What is wrong with the trace path, as JSON strings appended to `out` (comma-separated, no brackets), for
 * /healthz: 0 when nothing is, 1 when something is (then gyre is "degraded"). */
int gyre_writer_health(gyre_writer_t *w, gyre_buf_t *out);

#endif
