/*
 * Times as clients write them: the query API's `from`/`to` and the command
 * line's --since/--until read them with the same rules.
 */
#ifndef GYRE_COMMON_TIME_H
#define GYRE_COMMON_TIME_H

#include <stdint.h>

/*
 * Reads a time as unix milliseconds ("1764583200000") or RFC 3339
 * ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.250+01:00") into unix
 * microseconds.  Returns 0, or -1 when `s` is neither.
 */
int gyre_time_parse(const char *s, int64_t *us);

#endif
