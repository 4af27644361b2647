/*
 * The logging hook.  Library code never prints: it calls gyre_logf(), which
 * formats the line, escapes it as a whole and hands it to the hook the binary
 * set (by default, one write(2) to stderr per line).
 *
 * Escaping.  Log lines carry client- and upstream-controlled text (request
 * paths, upstream error messages): every byte that is not printable ASCII
 * (0x20-0x7E), and the backslash itself, is written as an escape (\r, \n,
 * \t, \\, \xNN), so a "%0d%0a" in a path can never start a line of its own.
 * The one newline that ends the line is the only raw control byte a line
 * has.  A line is bounded: at most GYRE_LOG_LINE_MAX bytes of escaped text,
 * then GYRE_LOG_TRUNCATED and the newline.
 *
 * Rate limiting.  Each call site (keyed on the format string's address) has
 * a token bucket shared by all threads: GYRE_LOG_BURST lines at once, then
 * GYRE_LOG_PER_SECOND a second.  A line over the limit is not formatted, only
 * counted; the next line that passes from that site is preceded by
 * "gyre: N similar lines suppressed: <format>", and gyre_log_flush() (called
 * periodically by the flusher thread and at exit) says the same for every
 * site with a count.  No lock and no allocation per line: the buckets are
 * atomics in a fixed table.
 */
#ifndef GYRE_COMMON_LOG_H
#define GYRE_COMMON_LOG_H

#include <stddef.h>
#include <stdint.h>

#define GYRE_LOG_LINE_MAX 4096 /* escaped bytes per line, before the marker and the newline */
#define GYRE_LOG_TRUNCATED " [truncated]"
#define GYRE_LOG_BURST 20       /* lines a call site may write at once */
#define GYRE_LOG_PER_SECOND 10  /* and then per second */
#define GYRE_LOG_SITES 256      /* distinct call sites rate-limited; more are logged unlimited */
#define GYRE_LOG_FLUSH_MS 10000 /* how often the flusher thread reports suppressed counts */

/* Receives one finished line: escaped, ending in its one '\n'; `len` includes it.  Called from any thread. */
typedef void (*gyre_log_hook_t)(void *ctx, const char *line, size_t len);

/* Sets where lines go (NULL: back to stderr).  Set it before any thread that logs starts: the binary does
 * (src/main.c), library code never does. */
void gyre_log_set_hook(gyre_log_hook_t hook, void *ctx);

/* A hook that writes each line to stderr with one write(2), so lines of different threads never interleave. */
void gyre_log_to_stderr(void *ctx, const char *line, size_t len);

/* Formats, escapes, rate-limits and writes one line; a trailing '\n' in the format is optional. */
void gyre_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writes `n` bytes of `in` escaped into `out` (capacity `cap`, at least
 * sizeof(GYRE_LOG_TRUNCATED) + 1): one trailing '\n' of the input is kept as
 * the line's end, and one is added when the input has none; when the escaped
 * text would pass GYRE_LOG_LINE_MAX or `cap` it stops at a whole escape and
 * appends GYRE_LOG_TRUNCATED.  Returns the line's length (NUL-terminated too).
 */
size_t gyre_log_escape(char *out, size_t cap, const char *in, size_t n);

/* Writes the suppressed count of every call site that has one, and zeroes them. */
void gyre_log_flush(void);

/* Starts a thread that calls gyre_log_flush() every GYRE_LOG_FLUSH_MS (with every signal blocked). 0 or -errno. */
int gyre_log_start_flusher(void);

/* For tests: the clock the buckets read (NULL: CLOCK_MONOTONIC), and forgetting every bucket. */
void gyre_log_set_clock(uint64_t (*now_ns)(void));
void gyre_log_reset(void);

#endif
