/*
 * zstd into bounded buffers.  The trace store keeps request and response
 * bodies compressed; these wrappers append a frame to a gyre_buf_t
 * and expand one back, so the buffer's maximum is the bound on what a
 * corrupt or hostile frame can make us allocate.  A gyre_zstd_t holds the
 * compression and decompression contexts so a writer that compresses
 * thousands of bodies a second does not build a context for each one.
 */
#ifndef GYRE_COMMON_ZSTD_H
#define GYRE_COMMON_ZSTD_H

#include <stddef.h>

#include "common/buf.h"

typedef struct gyre_zstd gyre_zstd_t;

#define GYRE_ZSTD_LEVEL_DEFAULT 3

/* Contexts for one thread's use (free with gyre_zstd_destroy). */
gyre_zstd_t *gyre_zstd_create(int level);
void gyre_zstd_destroy(gyre_zstd_t *z);

/*
 * Appends one zstd frame holding src[0..len) to `out`.  `z` may be NULL (a
 * one-off context, slower).  -E2BIG when the worst-case frame does not fit
 * under out->max; `out` is left as it was on any error.
 */
int gyre_zstd_compress(gyre_zstd_t *z, gyre_buf_t *out, const void *src, size_t len);

/*
 * Appends the bytes of the zstd frame(s) in src[0..len) to `out`.  -E2BIG
 * when they would take `out` past its maximum, -EINVAL when src is not
 * valid zstd (truncated, corrupt, trailing garbage); `out` is left as it
 * was on any error.
 */
int gyre_zstd_decompress(gyre_zstd_t *z, gyre_buf_t *out, const void *src, size_t len);

#endif
