/*
 * A growable byte buffer with a maximum set when it is created (curl's
 * dynbuf).  Appending past the maximum fails with -E2BIG and leaves the
 * buffer as it was, so the caller decides what the bound means (413, an
 * error event, a truncated log line).  The contents are always
 * NUL-terminated for convenience; `len` excludes the terminator.
 *
 * The error sticks: an append that fails also marks the buffer with its
 * error, which stays until gyre_buf_reset (or a rollback to a mark taken
 * before it).  A writer of many pieces need not check each append: it checks
 * gyre_buf_failed() once, where the bytes are used, and a buffer that lost a
 * piece is never taken for a whole one.  Later appends still run (a caller
 * may trim and go on), so the one check must come before the bytes leave.
 */
#ifndef GYRE_COMMON_BUF_H
#define GYRE_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gyre_buf {
    char *base;
    size_t len;
    size_t cap;
    size_t max; /* appends that would make len exceed this fail */
    int failed; /* the first error an append met since init or reset (0: none); see gyre_buf_failed() */
} gyre_buf_t;

/* A point to come back to: the length and the sticky error as they were (gyre_buf_mark, gyre_buf_rollback). */
typedef struct gyre_buf_mark {
    size_t len;
    int failed;
} gyre_buf_mark_t;

void gyre_buf_init(gyre_buf_t *b, size_t max);
void gyre_buf_dispose(gyre_buf_t *b);
void gyre_buf_reset(gyre_buf_t *b);
int gyre_buf_append(gyre_buf_t *b, const void *p, size_t n);
int gyre_buf_appends(gyre_buf_t *b, const char *s);
int gyre_buf_appendf(gyre_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gyre_buf_vappendf(gyre_buf_t *b, const char *fmt, va_list ap);
/* Appends `s` as a JSON string literal, quotes included; ill-formed UTF-8 in `s` becomes U+FFFD (common/utf8.h),
 * so the literal is always valid JSON whatever bytes `s` holds. */
int gyre_buf_append_json_string(gyre_buf_t *b, const char *s, size_t n);
/* The same escaping, with bytes from 0x80 copied as they are: for keys that must tell every input apart (the
 * cache's), never for JSON another program reads. */
int gyre_buf_append_json_bytes(gyre_buf_t *b, const char *s, size_t n);
/* Appends as much of `p[0..n)` as the maximum leaves room for (all of it when it fits) and returns how many bytes
 * that was: for text that may be cut, such as a provider's error message quoted in gyre's own.  Never fails, so it
 * never marks the buffer. */
size_t gyre_buf_append_upto(gyre_buf_t *b, const void *p, size_t n);
/* Makes room for `n` more bytes at once (one allocation instead of a doubling chain); -E2BIG past the maximum. */
int gyre_buf_reserve(gyre_buf_t *b, size_t n);
/* Appends a whole file: 0, -E2BIG past the buffer's maximum, or the negative errno of open/read. */
int gyre_buf_append_file(gyre_buf_t *b, const char *path);
/* Removes the first n bytes. */
void gyre_buf_consume(gyre_buf_t *b, size_t n);

/* The first error (-E2BIG, or a negative errno of gyre_buf_append_file) that an append met since the buffer was
 * initialised or reset; 0 when every append succeeded.  The one check before the bytes are used. */
static inline int gyre_buf_failed(const gyre_buf_t *b)
{
    return b->failed;
}

/* Where the buffer stands now, to roll back to: what a writer takes before a piece that may not fit. */
static inline gyre_buf_mark_t gyre_buf_mark(const gyre_buf_t *b)
{
    return (gyre_buf_mark_t){b->len, b->failed};
}

/* Cuts the buffer back to `m` (a mark of this buffer, taken since its last reset): the bytes after it go, and so
 * does an error met after it, which the caller has handled by rolling back. */
void gyre_buf_rollback(gyre_buf_t *b, gyre_buf_mark_t m);

#endif
