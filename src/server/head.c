/* RFC 9112 framing checks on a request head (see head.h). */
#include "server/head.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/phr.h"

static int name_is(const struct phr_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

/* A Content-Length value as RFC 9110 §8.6 writes it, 1*DIGIT; -1 for anything else (or past 2^62). */
static int64_t parse_length(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return -1; /* 18 digits is over an exabyte: longer is not a length gyre will ever read */
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

void gyre_head_check(const char *bytes, size_t len, size_t max_head_bytes, gyre_head_check_t *out)
{
    struct phr_header headers[GYRE_HEAD_MAX_HEADERS];
    size_t nheaders = GYRE_HEAD_MAX_HEADERS;
    int minor = 0;
    memset(out, 0, sizeof(*out));
    /* The bound: h2o never parses a head longer than this, so neither does the check. */
    if (len > GYRE_HEAD_MAX_BYTES)
        len = GYRE_HEAD_MAX_BYTES;
    int r = phr_parse_request(bytes, len, &out->method, &out->method_len, &out->path, &out->path_len, &minor, headers,
                              &nheaders, 0);
    if (r <= 0) {
        out->verdict = GYRE_HEAD_UNPARSED;
        out->method = out->path = NULL;
        out->method_len = out->path_len = 0;
        return;
    }
    out->head_len = (size_t)r;
    if (out->head_len > max_head_bytes) {
        out->verdict = GYRE_HEAD_TOO_LARGE;
        return;
    }
    int64_t length = -1;
    size_t nte = 0;
    for (size_t i = 0; i < nheaders; i++) {
        const struct phr_header *h = &headers[i];
        if (h->name_len == 0) {
            /* picohttpparser hands a line that starts with a space or a tab on as a header without a name, and h2o
             * keeps it so: a proxy would forward it as a malformed line.  RFC 9112 §5.2 lets a server refuse it. */
            out->verdict = GYRE_HEAD_BAD;
            out->reason = "a header line starts with a space or a tab (obsolete line folding, RFC 9112 section 5.2); "
                          "send each header on one line";
            return;
        }
        if (name_is(h, "content-length", 14)) {
            int64_t v = parse_length(h->value, h->value_len);
            if (v < 0) {
                out->verdict = GYRE_HEAD_BAD;
                out->reason = "a Content-Length header is not a decimal number";
                return;
            }
            if (length >= 0 && v != length) {
                /* h2o frames the body by the first one; anything in front of gyre may use another. */
                out->verdict = GYRE_HEAD_BAD;
                out->reason = "the request has Content-Length headers with different values (RFC 9112 section 6.3)";
                return;
            }
            length = v;
        } else if (name_is(h, "transfer-encoding", 17)) {
            if (++nte > 1) {
                /* h2o reads only the last Transfer-Encoding line; a reader that reads the first frames the body
                 * differently.  One line with a list says the same without the ambiguity. */
                out->verdict = GYRE_HEAD_BAD;
                out->reason = "the request has more than one Transfer-Encoding header";
                return;
            }
        }
    }
    if (nte != 0 && length >= 0) {
        out->verdict = GYRE_HEAD_CLOSE;
        out->reason = "the request has both Content-Length and Transfer-Encoding (RFC 9112 section 6.1)";
    } else if (nte != 0 && minor == 0) {
        out->verdict = GYRE_HEAD_CLOSE;
        out->reason = "an HTTP/1.0 request has Transfer-Encoding (RFC 9112 section 6.1)";
    }
}
