/*
 * Redaction: finding e-mail addresses, phone numbers, payment card numbers
 * and API keys in a trace's texts, so that they are replaced before anything
 * is stored or exported (docs/privacy.md says what each
 * kind matches and why).
 *
 * It runs on the event loop, on every finished trace whose route redacts, so
 * it costs little on what LLM traffic is made of (prose, code, numbers, ids,
 * and rarely PII): a pre-filter reads the text 64 bytes at a time for the
 * few places a match may begin, and only there do the matchers look, each
 * a bounded distance; no regex library and no allocation.  The scanner
 * reports matches one by one and the caller writes the output
 * (gyre_redact() into a buffer, gyre_trace_redact() in record.c into the
 * request's pool), so a text without a match is never copied.
 *
 * JSON: a text whose first non-blank byte is '{' or '[' is read as JSON.
 * Matches are never longer than a run of plain characters, so they never
 * contain a quote, a backslash or part of an escape sequence, and the tokens
 * contain none either: a JSON string stays a valid JSON string.  Outside
 * strings only a digit run can be valid JSON (a number), so there a match
 * made only of digits is left alone and valid JSON stays valid.  Escape
 * sequences count as separators and are not decoded: "\u0040" is not an '@'
 * (encoders write '@', '+', '-' and digits as they are).
 */
#ifndef GYRE_TRACE_REDACT_H
#define GYRE_TRACE_REDACT_H

#include <stddef.h>

/* The kinds, as bits of a policy (config: `redact:`). */
#include "config/redact_kinds.h"

typedef struct gyre_redact_match {
    size_t start, end; /* the bytes replaced: [start, end) */
    unsigned kind;     /* one GYRE_REDACT_* bit */
} gyre_redact_match_t;

/* A scan over one text (embedded, no resources: there is nothing to dispose). */
typedef struct gyre_redact_scan {
    const char *p;
    size_t len, pos;
    unsigned kinds;
    int json, prev_word, prev_local;
    size_t key_skip;        /* key attempts before this offset are known to fail */
    size_t next_at, at_run; /* the next '@' and where the local-part run before it starts */
    int at_known;           /* whether next_at and at_run have been looked for */
    size_t str_pos;         /* JSON strings are followed up to here, lazily: */
    int in_string;          /* whether str_pos is inside one */
} gyre_redact_scan_t;

void gyre_redact_scan_init(gyre_redact_scan_t *s, unsigned kinds, const char *p, size_t len);

/* The next match, left to right and never overlapping the previous one: 1 and *m, or 0 at the end. */
int gyre_redact_scan_next(gyre_redact_scan_t *s, gyre_redact_match_t *m);

/* The replacement for a kind ("[email]", ...); "" for anything else. */
const char *gyre_redact_token(unsigned kind);

/*
 * The most bytes the redacted copy of a `len`-byte text can take.  Only an
 * e-mail address can be shorter than its token ("a@b.cc" is 6 bytes,
 * "[email]" 7), by one byte for at least six.
 */
size_t gyre_redact_bound(size_t len);

/*
 * Writes the redacted copy of `in` to `out` (`cap` bytes, at least
 * gyre_redact_bound(len) for the whole copy; less truncates) and returns its
 * length.  Returns the number of matches in *count when count is not NULL.
 */
size_t gyre_redact(unsigned kinds, const char *in, size_t len, char *out, size_t cap, size_t *count);

#endif
