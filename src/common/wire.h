/*
 * The rules for values that gyre writes into bytes another program parses:
 * a path segment or a query value of an upstream request, a header value
 * (upstream, or on gyre's own answers), a request target, and the model and
 * route names clients send.  Each kind of value has one function here, and
 * every place that writes such a value calls it, so a model name cannot
 * split an upstream request in two, climb out of its path, or add a header
 * to an answer.
 *
 * Functions that check return NULL when the value is fine, else a short
 * phrase saying what is wrong ("has a control byte (0x0D) at offset 5"),
 * which never repeats the value itself: the caller names the field.
 */
#ifndef GYRE_COMMON_WIRE_H
#define GYRE_COMMON_WIRE_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Model, route and provider names are 1 to this many bytes of 0x21-0x7E. */
#define GYRE_WIRE_NAME_MAX 256
/* A header value gyre writes, upstream or on an answer, is at most this long; longer is refused, not cut. */
#define GYRE_WIRE_HEADER_VALUE_MAX 8192
/* A header gyre writes on its own answers (x-gyre-model, x-request-id, ...) is at most this long: its values are
 * names (256 bytes), ids and counts. */
#define GYRE_WIRE_ANSWER_HEADER_MAX 1024
/* A request target gyre sends upstream is at most this long (a model of 256 bytes encodes to 768). */
#define GYRE_WIRE_TARGET_MAX 8192

/*
 * A model, route or provider name: 1 to GYRE_WIRE_NAME_MAX bytes, each
 * printable ASCII other than space (0x21-0x7E).  NULL when it is one, else
 * what is wrong, written into `why` (at least 64 bytes) and returned.
 */
const char *gyre_wire_name_problem(const char *s, size_t len, char *why, size_t why_size);

/*
 * Appends `s` as one path segment: every byte but RFC 3986's unreserved
 * ones (ALPHA DIGIT - . _ ~) percent-encoded, so '/', '?', '%', space and
 * CR LF all stay inside the segment.  Refused (-EINVAL, nothing appended):
 * an empty value, and a value that is a dot-segment ("." or "..") or has
 * one between its '/' or '\' separators, as it is or percent-decoded once,
 * because a server that decodes %2F before it resolves dot-segments (some
 * proxies do) would otherwise climb out of the path.  -E2BIG when `out` is full.
 */
int gyre_wire_append_segment(gyre_buf_t *out, const char *s, size_t len);

/* Appends `s` as a query value: every byte but the unreserved ones percent-encoded.  0 or -E2BIG. */
int gyre_wire_append_query_value(gyre_buf_t *out, const char *s, size_t len);

/* Whether `s` is an HTTP token (a method, a header name): 1 to 256 tchar bytes. */
int gyre_wire_is_token(const char *s, size_t len);

/* The value of one hexadecimal digit (either case), or -1: what a %HH escape and a hex id are read with. */
int gyre_wire_hex_digit(int c);

/* Writes the low 4*`digits` bits of `v` (`digits` even, 2 to 16) as that many lowercase hex digits, most
 * significant first, and a NUL after them (so `out` has room for digits + 1): the ids gyre makes of random
 * numbers (request, chat and trace ids).  The digits are h2o's (h2o_hex_encode of the bytes, big-endian). */
static inline void gyre_wire_hex_u64(char *out, uint64_t v, size_t digits)
{
    unsigned char b[8];
    size_t n = digits / 2;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    h2o_hex_encode(out, b, n);
}

/* Writes `c` as a percent escape, "%" and two upper-case hex digits (RFC 3986 section 2.1, and AWS's canonical
 * URI, which wants upper case; h2o_hex_encode writes lower case), into out[0..3): no NUL. */
void gyre_wire_percent_byte(char out[3], unsigned char c);

/* A table of header names, matched without regard to case (GYRE_WIRE_NAME("te") is an entry). */
typedef struct gyre_wire_name {
    const char *name;
    size_t len;
} gyre_wire_name_t;
#define GYRE_WIRE_NAME(s)                                                                                              \
    {                                                                                                                  \
        s, sizeof(s) - 1                                                                                               \
    }

/* Whether `name` is one of the `n` names in `table`. */
int gyre_wire_name_in(const gyre_wire_name_t *table, size_t n, const char *name, size_t len);

/*
 * A header value gyre writes: at most `max` bytes, no control byte but HTAB
 * (no CR, LF, NUL, DEL); bytes over 0x7F (RFC 9110's obs-text) are allowed.
 * NULL when fine, else what is wrong (a static phrase).
 */
const char *gyre_wire_header_value_problem(const char *v, size_t len, size_t max);

/*
 * A request target ("/path?query"): it starts with '/', its bytes are those
 * RFC 3986 allows in a path and a query, every '%' starts a %HH escape, and
 * no segment is a dot-segment, as it is, percent-decoded, or read up to a
 * ';' ("..;" is ".." to Tomcat and its kin).  A target from a client
 * (`from_client`) must also have no empty segment and no escape that decodes
 * to '/', '\', '%', a control byte or DEL: gyre passes it on as it came, so
 * it may not lean on how the provider decodes.  NULL when fine, else what is
 * wrong (a static phrase).
 */
const char *gyre_wire_target_problem(const char *t, size_t len, int from_client);

/*
 * Adds one of gyre's own headers to an answer's `headers` (x-gyre-model,
 * x-gyre-route, x-gyre-provider, x-gyre-trace-id, x-request-id, ...), the
 * one way gyre writes them: a value with a control byte, or longer than
 * GYRE_WIRE_ANSWER_HEADER_MAX, is not written at all (returns -EINVAL), so
 * no value can add a header or grow the answer's head.  Input checks keep
 * such values out long before (a model is a name); this is the last line.
 * `name` and `value` are borrowed: they must live as long as the answer
 * (a literal, the config, the request's pool).
 */
int gyre_wire_add_answer_header(h2o_mem_pool_t *pool, h2o_headers_t *headers, const char *name, size_t name_len,
                                const char *value, size_t value_len);

/*
 * A URL gyre connects to (a provider's base_url, otlp.endpoint), read by
 * h2o_url_parse with gyre's rules on top: http:// or https://, a host, no
 * credentials (refused before anything else reads the authority, so no
 * field or message keeps them), a port from 1 to 65534, no query or
 * fragment unless `allow_query` (then in the path only), and no control
 * byte or space.  NULL with *out filled (pointing into `url`), else what is
 * wrong (a static phrase, after the URL in the caller's message).
 */
const char *gyre_wire_url_problem(const char *url, int allow_query, h2o_url_t *out);

/* The port of a URL gyre_wire_url_problem read: the one written, else the scheme's (h2o_url_get_port's rule,
 * read here because libh2o exports no definition of that inline function). */
uint16_t gyre_wire_url_port(const h2o_url_t *url);

#endif
