/*
 * Positioned reads and writes that finish what they start: the loops every
 * caller of pread(2)/pwrite(2) needs (a short count, EINTR), in one place.
 */
#ifndef GYRE_COMMON_FILEIO_H
#define GYRE_COMMON_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads up to `n` bytes at `off` into `p`; *got is what was read (less than n only at the end of the file).
 * 0, or the negative errno of pread. */
int gyre_pread_full(int fd, void *p, size_t n, uint64_t off, size_t *got);
/* Writes all `n` bytes at `off`: 0, or the negative errno of pwrite (ENOSPC for a full disk). */
int gyre_pwrite_full(int fd, const void *p, size_t n, uint64_t off);

#endif
