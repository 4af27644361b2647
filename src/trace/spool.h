/*
 * The trace spool: an append-only file where traces wait when the store is
 * slower than traffic or failing, so that they are replayed later instead
 * of dropped.  Only the writer thread touches it.
 *
 * File format (little-endian throughout):
 *
 *   header   8 bytes  "GYRESPL2"
 *   record   u32 len | u32 crc | payload[len]
 *
 * `crc` is CRC-32 (IEEE, as zlib's crc32) over the four length bytes and
 * the payload, so a corrupt length is caught as well as corrupt data.  The
 * payload is one trace, every field of gyre_trace_t in declaration order:
 * ids and strings as u32 length + bytes (ids without their NUL; an id may
 * not contain a NUL byte), int64 fields as i64, int fields as i32, the cost
 * as the 8 bytes of its IEEE double (so NaN, "unknown", survives), counts
 * as u32 (bounded by the arrays).  A payload must decode exactly, with no
 * bytes left over; a record over GYRE_SPOOL_RECORD_MAX is corrupt.
 *
 * Recovery: open reads the whole file and stops at the first record that
 * is torn (cut short by a crash) or corrupt, and truncates the file there,
 * so every whole record before it is replayed and nothing after it is
 * misread.  Records are read back in the order they were appended.
 *
 * Reading is two-step, so a batch the store refuses is not lost: read
 * takes records from the read offset without consuming them; ack consumes
 * what the last read returned, and when nothing is left it truncates the
 * file back to its header.  The read offset lives in memory only: after a
 * crash every record still in the file is replayed, including any whose
 * batch reached the store just before the crash, so a store must treat
 * a trace_id it already holds as written (INSERT OR IGNORE).
 *
 * Bound: appends that would grow the file past max_bytes fail with -ENOSPC
 * and are counted as dropped (the caller logs it loudly).  The default is
 * large (1 GiB) because traces are never to be dropped; reaching
 * it means the store has been down for a long time.
 *
 * Durability: append is a write(2); sync is fdatasync(2), which the writer
 * calls at least every 50 ms while anything is unsynced.  Two processes
 * must not share a spool: open takes an exclusive flock and fails with
 * -EBUSY when another holds it (a killed process's lock goes with it).
 */
#ifndef GYRE_TRACE_SPOOL_H
#define GYRE_TRACE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trace/trace.h"

#define GYRE_SPOOL_MAGIC "GYRESPL2" /* 2: records carry otel_trace_id */
#define GYRE_SPOOL_HEADER_SIZE 8
#define GYRE_SPOOL_RECORD_HEADER_SIZE 8
#define GYRE_SPOOL_RECORD_MAX ((size_t)64 << 20) /* payload bytes: bodies are bounded well below this */
#define GYRE_SPOOL_DEFAULT_MAX_BYTES ((uint64_t)1 << 30)

typedef struct gyre_spool gyre_spool_t;

typedef struct gyre_spool_stats {
    uint64_t records;         /* records waiting (appended or found at open, not yet acked) */
    uint64_t bytes;           /* their size in the file, headers included */
    uint64_t recovered;       /* whole records found at open */
    uint64_t truncated_bytes; /* torn or corrupt tail cut off at open */
    uint64_t dropped;         /* appends refused at the bound */
} gyre_spool_stats_t;

/* Opens or creates the spool at `path` (max_bytes 0: the default), recovering it as described above.
 * -EINVAL when the file is not a spool (it is left as it was), -EBUSY when another process has it open. */
int gyre_spool_open(const char *path, uint64_t max_bytes, gyre_spool_t **out, char *err, size_t errlen);
void gyre_spool_close(gyre_spool_t *s);

/* Appends one trace: 0, -ENOSPC at the bound (counted as dropped), or another negative errno from write(2)
 * (the file is cut back to the records before it, so a failed append never leaves a torn record behind). */
int gyre_spool_append(gyre_spool_t *s, const gyre_trace_t *t);
/* fdatasync when anything was appended since the last sync; 0 or a negative errno. */
int gyre_spool_sync(gyre_spool_t *s);
/* Reads up to `max` records from the read offset into owned traces (free each with free());
 * the number read, 0 when none is left, or a negative errno. */
int gyre_spool_read(gyre_spool_t *s, gyre_trace_t **out, size_t max);
/* Consumes what the last read returned; truncates the file to its header when nothing is left. 0 or -errno. */
int gyre_spool_ack(gyre_spool_t *s);
void gyre_spool_stats(const gyre_spool_t *s, gyre_spool_stats_t *st);

/* The record format, for the fuzz driver and the tests. */
/* Appends one whole record (header and payload); -EINVAL when the trace's counts exceed the arrays. */
int gyre_spool_encode(const gyre_trace_t *t, gyre_buf_t *out);
/* Appends only the payload (the trace log's record payload too, trace/tracelog.h); -EINVAL or -E2BIG. */
int gyre_spool_encode_payload(const gyre_trace_t *t, gyre_buf_t *out);
/* Decodes a payload into `view`, whose strings point into `p` (copy it with gyre_trace_copy); 0 or -EINVAL. */
int gyre_spool_decode(const void *p, size_t len, gyre_trace_t *view);

#endif
