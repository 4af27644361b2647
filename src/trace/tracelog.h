/*
 * The trace log: every trace, as it arrives, appended to a segmented,
 * append-only, CRC-checked log on disk.  The log is the source
 * of truth; the queryable store is an index built from it behind it
 * (trace/indexer.h).  It replaces the spool's role: traces are never held
 * in memory waiting for the store, they are in the log the moment the
 * writer thread has written them.
 *
 * Layout: a directory (`<store path>.log/` by default) of segment files
 * named by their sequence number, "%016llx.seg", plus LOCK (the flock that
 * keeps two gyres off one log) and index.pos (the indexer's checkpoint,
 * trace/indexer.h).  Every start writes into a new segment; a segment
 * grows to segment_bytes and is then closed for good, so a closed segment
 * is immutable and retention drops whole segments, oldest first.
 *
 * Segment header (32 bytes, little-endian):
 *
 *   0  magic      8  "GYRELOG1"
 *   8  seq        8  the segment's sequence number (as in its name)
 *  16  created_us 8  unix microseconds
 *  24  version    2  1
 *  26  reserved   2  0
 *  28  crc        4  zlib crc32 of bytes 0..27
 *
 * The header is informational: a reader never needs it to read the
 * records (the sequence is in the file name), so a corrupt header costs no
 * trace; it is reported.
 *
 * Record (16-byte header, then the payload):
 *
 *   0  sync    4  F7 47 4C 52: where a reader resynchronises
 *   4  len     4  payload bytes (<= GYRE_TRACELOG_RECORD_MAX)
 *   8  type    1  1: a trace; 2: a zstd dictionary (codec 0)
 *   9  codec   1  0: the payload is the trace's encoding (spool.h's
 *                 payload format); 1: a zstd frame of it; 2: a zstd
 *                 frame made with the segment's dictionary
 *  10  rsv     2  0
 *  12  crc     4  zlib crc32 of bytes 4..11 and the payload
 *
 * Reading: a record is taken only when its sync, bounds and CRC hold and
 * its payload decodes.  When one does not (a flipped bit, a torn write, a
 * truncated file, garbage), the reader scans forward byte by byte for the
 * next sync whose record checks, so one bad record costs that record and
 * no other (0xF7 never occurs in UTF-8 text, and a false sync must also
 * pass a 32-bit CRC).  What was skipped is counted and reported.
 *
 * Dictionary: the many calls that share a system prompt compress far
 * better against a dictionary trained on the traffic than one by one.  The
 * appender keeps the first dict_samples payloads of the run, a helper
 * thread trains a dictionary on them (zstd's ZDICT, dict_bytes), and from
 * then on every new segment starts with the dictionary, written twice (so
 * one bad byte cannot cost the segment's records), and its traces use it
 * (codec 2); the appender moves to a new segment as soon as it is ready.
 * A segment is self-contained: retention can drop any of them.
 *
 * Bounds: max_bytes bounds the whole log; an append that would pass it is
 * refused with -EFBIG (the caller counts it as dropped and says so
 * loudly): retention (the indexer) keeps the log under it while the index
 * keeps up, so the bound is reached only when the index is far behind.  A
 * disk that is full refuses with -ENOSPC, a read-only one with -EROFS or
 * -EACCES: the partial record is cut off so the segment stays whole, and
 * the next append tries again.  A record is at most
 * GYRE_TRACELOG_RECORD_MAX payload bytes (bodies are bounded far below).
 *
 * Durability: append is one pwrite(2) (the page cache survives a kill -9);
 * sync is fdatasync(2), which the writer thread calls every fsync_ms (the
 * power-cut bound).
 *
 * Threads: one appender (the writer thread) and readers (the indexer
 * thread, each with its own gyre_tracelog_reader_t).  A mutex guards the
 * segment list (touched when a segment is created or dropped); the active
 * segment's end is published with release/acquire, so a reader never sees
 * a record before it is whole.
 */
#ifndef GYRE_TRACE_TRACELOG_H
#define GYRE_TRACE_TRACELOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trace/trace.h"

#define GYRE_TRACELOG_SEGMENT_MAGIC "GYRELOG1"
#define GYRE_TRACELOG_SEGMENT_HEADER_SIZE 32
#define GYRE_TRACELOG_RECORD_HEADER_SIZE 16
#define GYRE_TRACELOG_RECORD_MAX ((size_t)64 << 20)
#define GYRE_TRACELOG_DEFAULT_MAX_BYTES ((uint64_t)20 << 30)
#define GYRE_TRACELOG_DEFAULT_SEGMENT_BYTES ((uint64_t)64 << 20)
#define GYRE_TRACELOG_DEFAULT_RETENTION_US ((int64_t)30 * 86400 * 1000000)

#define GYRE_TRACELOG_TYPE_TRACE 1
#define GYRE_TRACELOG_TYPE_DICT 2
#define GYRE_TRACELOG_CODEC_RAW 0
#define GYRE_TRACELOG_CODEC_ZSTD 1
#define GYRE_TRACELOG_CODEC_ZSTD_DICT 2
#define GYRE_TRACELOG_DICT_MAX ((size_t)1 << 20)

typedef struct gyre_tracelog gyre_tracelog_t;
typedef struct gyre_tracelog_reader gyre_tracelog_reader_t;

/* A place in the log: a segment and a byte offset in it. */
typedef struct gyre_tracelog_pos {
    uint64_t seq, off;
} gyre_tracelog_pos_t;

typedef struct gyre_tracelog_config {
    uint64_t max_bytes;     /* the whole log [20 GiB] */
    uint64_t segment_bytes; /* one segment [64 MiB, or max_bytes / 8 when that is smaller, at least 4 KiB] */
    int zstd_level;         /* [1]; 0 takes the default, -1 stores records uncompressed */
    int dict;               /* 1: train a dictionary, -1: never; 0: when segment_bytes >= 4 MiB */
    size_t dict_samples;    /* traces it is trained on [2000] */
    size_t dict_bytes;      /* its size [64 KiB] */
} gyre_tracelog_config_t;

#define GYRE_TRACELOG_READONLY 1 /* open without the lock and without a new segment (the CLI's stats) */

typedef struct gyre_tracelog_segment_info {
    uint64_t seq;
    uint64_t bytes;
    int64_t mtime_us; /* the last append: a closed segment's newest trace is about this old */
} gyre_tracelog_segment_info_t;

typedef struct gyre_tracelog_stats {
    uint64_t segments, bytes;
    uint64_t appended;                  /* records appended by this process */
    uint64_t refused_bound, refused_io; /* appends refused at max_bytes, and by the disk */
    int last_errno;                     /* the last append's failure (0: the last append succeeded) */
} gyre_tracelog_stats_t;

/* The log's directory: `log` when set (store.log), else "<store>.log" beside the store's file. */
void gyre_tracelog_dir_for(const char *log, const char *store, char *buf, size_t len);

/* Opens (creating the directory when missing) and starts a new segment.  0, -EBUSY when another process has
 * it, or a negative errno with err filled.  A directory that exists but where no segment can be created is
 * not an error: appends fail with the reason, and it is retried. */
int gyre_tracelog_open(const char *dir, const gyre_tracelog_config_t *cfg, int flags, gyre_tracelog_t **out, char *err,
                       size_t errlen);
void gyre_tracelog_close(gyre_tracelog_t *l);
const char *gyre_tracelog_dir(const gyre_tracelog_t *l);

/* Appends one trace (one pwrite): 0, -EFBIG at max_bytes, or the disk's negative errno. */
int gyre_tracelog_append(gyre_tracelog_t *l, const gyre_trace_t *t);
/* fdatasync of the active segment when anything was appended since the last one. */
int gyre_tracelog_sync(gyre_tracelog_t *l);
/* The end of what is written: a reader at it has read everything. */
gyre_tracelog_pos_t gyre_tracelog_end(gyre_tracelog_t *l);
/* The first record of the oldest segment. */
gyre_tracelog_pos_t gyre_tracelog_start(gyre_tracelog_t *l);
/* The segments, oldest first, into info[0..max); the number there are (may exceed max). */
size_t gyre_tracelog_segments(gyre_tracelog_t *l, gyre_tracelog_segment_info_t *info, size_t max);
/* Removes a closed segment's file (retention); -EBUSY for the active one, -ENOENT when none. */
int gyre_tracelog_remove(gyre_tracelog_t *l, uint64_t seq);
void gyre_tracelog_stats(gyre_tracelog_t *l, gyre_tracelog_stats_t *st);
/* 1 once the dictionary is in use (new segments carry it), -1 when training it failed, 0 before. */
int gyre_tracelog_dict_state(gyre_tracelog_t *l);
/* Bytes of the log from `pos` to its end. */
uint64_t gyre_tracelog_bytes_after(gyre_tracelog_t *l, gyre_tracelog_pos_t pos);

/* A reader of `l` (one thread's). */
gyre_tracelog_reader_t *gyre_tracelog_reader_create(gyre_tracelog_t *l);
void gyre_tracelog_reader_destroy(gyre_tracelog_reader_t *r);
/*
 * Reads up to `max` traces from *pos on (owned copies: free each with
 * free()), moving *pos past the records read and any bad bytes skipped.
 * With `one_segment` it stops at the end of pos->seq's segment.  The number
 * read (0 at the end), or a negative errno when a segment could not be
 * read (*pos stays at the record that failed).
 */
int gyre_tracelog_read(gyre_tracelog_reader_t *r, gyre_tracelog_pos_t *pos, gyre_trace_t **out, size_t max,
                       int one_segment);

/* What readers skipped: bad regions (a run of bytes between two good records) and their bytes, and headers
 * that did not check.  Counted across every reader of `l`. */
typedef struct gyre_tracelog_damage {
    uint64_t regions, bytes, bad_headers;
    uint64_t last_seq, last_off; /* where the last region started */
} gyre_tracelog_damage_t;
void gyre_tracelog_damage(gyre_tracelog_t *l, gyre_tracelog_damage_t *d);

/* The record format, for the fuzz driver and the tests: appends one whole record of `t` to `out`
 * (zstd_level -1: uncompressed).  0 or a negative errno. */
int gyre_tracelog_encode(const gyre_trace_t *t, int zstd_level, gyre_buf_t *out);

/*
 * The indexer's checkpoint, `index.pos` in the log's directory: how far the
 * index has taken the log, and flags.  Two 32-byte slots written in turn,
 * each "GYIP" | u32 flags | u64 generation | u64 seq | u32 off | u32 crc
 * (zlib crc32 of the 28 bytes before it); load takes the valid slot with
 * the higher generation, so a torn write leaves the previous one.  No file,
 * or no valid slot: position {0, 0} (the start of the log), flags 0.
 */
#define GYRE_TRACELOG_REBUILD 1u /* the index was found corrupt: the next start rebuilds it from the log */
typedef struct gyre_tracelog_checkpoint {
    gyre_tracelog_pos_t pos;
    unsigned flags;
    uint64_t gen;
} gyre_tracelog_checkpoint_t;
int gyre_tracelog_checkpoint_load(const char *dir, gyre_tracelog_checkpoint_t *cp);
/* Writes the next generation (cp->gen is advanced).  0 or a negative errno. */
int gyre_tracelog_checkpoint_save(const char *dir, gyre_tracelog_checkpoint_t *cp);

#endif
