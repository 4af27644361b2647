/*
 * The error out-parameter every layer fills: `char *err, size_t errlen`,
 * a message naming what failed (never a secret), written with
 * gyre_errf.  One function, so no file keeps its own copy.
 */
#ifndef GYRE_COMMON_ERR_H
#define GYRE_COMMON_ERR_H

#include <stddef.h>

/* Formats into err (cut at errlen); does nothing when err is NULL or errlen 0. */
void gyre_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
