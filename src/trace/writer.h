/*
 * The trace writer: one thread that takes every trace from the event loops
 * and writes it to the store in batches (issue 5), so that an event loop
 * never waits on the store or on a disk.
 *
 * Design:
 *
 * - Each worker has its own ring (queue.h): a bounded lock-free SPSC ring
 *   of owned copies.  gyre_writer_submit(w, i, t) copies the trace and
 *   pushes it onto ring i; only worker i may call it.  When the ring is
 *   full the copy goes on an overflow list under a mutex (touched only on
 *   this slow path), which the writer empties into the spool.  The
 *   overflow list is bounded too (overflow_max); past it a trace is
 *   dropped, counted and logged, which means the writer thread has been
 *   stuck for a long time.
 *
 * - The writer thread drains the rings round-robin into a batch of up to
 *   batch_max traces and writes it with ops->write_batch; when fewer than
 *   batch_max were waiting it sleeps batch_interval_ms before the next
 *   round, so a batch is "batch_max traces or every few ms".
 *
 * - When the store is slower than traffic (after draining, the rings and
 *   the overflow still hold more than spill_threshold traces, or the
 *   oldest trace of the batch in hand ended more than spill_age_ms ago:
 *   the last store write took that long) or failing
 *   (write_batch returned an error: it is retried after a backoff of 10 ms
 *   doubling to 1 s), batches go to the spool (spool.h) instead.  When the
 *   store is healthy and the backlog is small again, the writer replays
 *   the spool into the store, one batch per round, oldest first; a batch
 *   is consumed from the spool only once the store has taken it.
 *
 * - kill -9: a trace is safe once the store committed it (a committed WAL
 *   transaction survives the process) or once it was written to the spool
 *   (the page cache survives the process).  Traces wait in memory for at
 *   most batch_interval_ms plus the store's write of the batch before, and
 *   spill_age_ms turns a slow write into a spill, so a kill -9 loses the
 *   last few tens of ms (tests/integration/traces-durability.test.mjs
 *   checks 50 ms).  The bound does not hold while the thread itself is
 *   blocked inside write_batch (a store locked by another process waits
 *   out the store's busy timeout): only a store that gives up quickly
 *   keeps it.  The spool is fdatasync'd at least every sync_interval_ms
 *   (20 ms) while anything is unsynced, and before each store write, for
 *   a power cut.  On create, a spool left by a crash is replayed first.
 *   The thread runs with every signal blocked (signals are the main
 *   thread's).
 *
 * - gyre_writer_drain_and_stop (SIGTERM): the workers must have stopped
 *   submitting.  The writer writes everything in the rings, the overflow
 *   and the spool into the store and returns 0; if the store keeps
 *   failing past drain_timeout_ms, what is left stays in the spool, synced,
 *   for the next start, and it returns -EIO.
 *
 * - Ordering: traces of one worker reach the store in submission order as
 *   long as none is spooled; spooled ones arrive later, in their order.
 *   After a crash, records whose batch the store had already committed may
 *   be replayed again: the store must ignore a trace_id it already holds.
 *
 * - Stats are atomics, readable from any thread (for /metrics).
 */
#ifndef GYRE_TRACE_WRITER_H
#define GYRE_TRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "trace/queue.h"
#include "trace/trace.h"

typedef struct gyre_writer gyre_writer_t;

/* Zero fields take the defaults in brackets. */
typedef struct gyre_writer_config {
    size_t queue_capacity;      /* per worker ring [4096] */
    size_t batch_max;           /* traces per write_batch [512] */
    unsigned batch_interval_ms; /* sleep when a round found less than a batch [5] */
    size_t spill_threshold;     /* backlog over which batches are spooled [queue_capacity * nqueues / 2] */
    size_t overflow_max;        /* traces on the overflow list [65536] */
    uint64_t spool_max_bytes;   /* [1 GiB] */
    unsigned sync_interval_ms;  /* [20] */
    unsigned drain_timeout_ms;  /* how long drain_and_stop retries a failing store [30000] */
    unsigned spill_age_ms;      /* a batch whose oldest trace ended longer ago than this is spooled [25] */
} gyre_writer_config_t;

typedef struct gyre_writer_stats {
    uint64_t queued;       /* traces in the rings and the overflow list now */
    uint64_t spool_records;/* traces waiting in the spool now */
    uint64_t spool_bytes;  /* their bytes */
    uint64_t written;      /* traces the store took (live and replayed) */
    uint64_t spooled;      /* traces appended to the spool */
    uint64_t replayed;     /* traces written from the spool */
    uint64_t dropped;      /* traces lost at a bound (overflow list or spool full, or a spool I/O error) */
    uint64_t store_errors; /* write_batch calls that failed */
} gyre_writer_stats_t;

/* Opens the spool at spool_path, replays what a previous run left there, and starts the writer thread.
 * `ops` and `store` stay the caller's and must outlive the writer.  0, or a negative errno with err filled. */
int gyre_writer_create(const gyre_store_ops_t *ops, gyre_store_t *store, const char *spool_path, size_t nqueues,
                       const gyre_writer_config_t *config, gyre_writer_t **out, char *err, size_t errlen);
/* Worker i's ring. */
gyre_trace_queue_t *gyre_writer_queue(gyre_writer_t *w, size_t i);
/* From worker i only: copies `t` and queues it; never waits.  0, or -ENOSPC when it was dropped at a bound. */
int gyre_writer_submit(gyre_writer_t *w, size_t i, const gyre_trace_t *t);
/* Writes everything queued or spooled, then stops the thread (see above).  0 or -EIO. */
int gyre_writer_drain_and_stop(gyre_writer_t *w);
/* Stops the thread if it runs (as drain_and_stop) and frees the writer. */
void gyre_writer_destroy(gyre_writer_t *w);
void gyre_writer_stats(gyre_writer_t *w, gyre_writer_stats_t *st);

#endif
