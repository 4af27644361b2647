/* Values gyre writes into what another program parses (see wire.h). */
#include "common/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* RFC 3986 pchar without the escapes: unreserved, sub-delims, ':' and '@'. */
static int is_pchar(unsigned char c)
{
    return is_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@", c) != NULL);
}

int gyre_wire_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* `s` decoded once into `out` (at least len bytes): each %HH becomes its byte, anything else stays. */
static size_t decode_once(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = gyre_wire_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = gyre_wire_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    return n;
}

/* Whether `s`, split at '/' and '\' and each piece read up to a ';', has a piece that is "." or "..". */
static int has_dot_piece(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/' && s[i] != '\\')
            continue;
        const char *p = s + start;
        size_t n = i - start;
        const char *semi = memchr(p, ';', n);
        if (semi != NULL)
            n = (size_t)(semi - p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 1;
        start = i + 1;
    }
    return 0;
}

/* has_dot_piece of `s` as it is and decoded once.  Values are bounded by their callers (names: 256 bytes,
 * targets: GYRE_WIRE_TARGET_MAX), so the decoded copy fits on the stack. */
static int is_dotty(const char *s, size_t len)
{
    char decoded[GYRE_WIRE_TARGET_MAX];
    if (has_dot_piece(s, len))
        return 1;
    if (len > sizeof(decoded))
        return 1; /* longer than anything gyre sends: refused as if it were one */
    return has_dot_piece(decoded, decode_once(s, len, decoded));
}

const char *gyre_wire_name_problem(const char *s, size_t len, char *why, size_t why_size)
{
    if (len == 0) {
        snprintf(why, why_size, "it is empty");
        return why;
    }
    if (len > GYRE_WIRE_NAME_MAX) {
        snprintf(why, why_size, "it is %zu bytes long", len);
        return why;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ')
            snprintf(why, why_size, "it has a space at offset %zu", i);
        else if (c < 0x20 || c == 0x7f)
            snprintf(why, why_size, "it has a control byte (0x%02X) at offset %zu", c, i);
        else if (c > 0x7f)
            snprintf(why, why_size, "it has a byte over 0x7E (0x%02X) at offset %zu", c, i);
        else
            continue;
        return why;
    }
    return NULL;
}

void gyre_wire_percent_byte(char out[3], unsigned char c)
{
    static const char digits[] = "0123456789ABCDEF";
    out[0] = '%', out[1] = digits[c >> 4], out[2] = digits[c & 15];
}

static int append_encoded(gyre_buf_t *out, const char *s, size_t len)
{
    if (gyre_buf_reserve(out, 3 * len) != 0)
        return -E2BIG;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[3];
        gyre_wire_percent_byte(esc, c);
        /* The room is reserved above, so this cannot fail; checked all the same, as every append is. */
        int r = is_unreserved(c) ? gyre_buf_append(out, &s[i], 1) : gyre_buf_append(out, esc, 3);
        if (r != 0)
            return r;
    }
    return 0;
}

int gyre_wire_append_segment(gyre_buf_t *out, const char *s, size_t len)
{
    if (len == 0 || is_dotty(s, len))
        return -EINVAL;
    return append_encoded(out, s, len);
}

int gyre_wire_append_query_value(gyre_buf_t *out, const char *s, size_t len)
{
    return append_encoded(out, s, len);
}

int gyre_wire_is_token(const char *s, size_t len)
{
    if (len == 0 || len > 256)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL)))
            return 0;
    }
    return 1;
}

const char *gyre_wire_header_value_problem(const char *v, size_t len, size_t max)
{
    if (len > max)
        return "is longer than gyre's bound for a header value";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "has a control byte (CR, LF, NUL or another)";
    }
    return NULL;
}

const char *gyre_wire_target_problem(const char *t, size_t len, int from_client)
{
    if (len == 0 || t[0] != '/')
        return "does not start with '/'";
    if (len > GYRE_WIRE_TARGET_MAX)
        return "is longer than gyre's bound for a request target";
    const char *q = memchr(t, '?', len);
    size_t plen = q != NULL ? (size_t)(q - t) : len;
    /* The path, segment by segment. */
    for (size_t start = 1; start <= plen;) {
        size_t end = start;
        while (end < plen && t[end] != '/')
            end++;
        const char *seg = t + start;
        size_t slen = end - start;
        for (size_t i = 0; i < slen; i++) {
            unsigned char c = (unsigned char)seg[i];
            if (c == '%') {
                int hi = i + 2 < slen ? gyre_wire_hex_digit((unsigned char)seg[i + 1]) : -1;
                int lo = i + 2 < slen ? gyre_wire_hex_digit((unsigned char)seg[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return "has a malformed percent-escape";
                int d = hi * 16 + lo;
                if (from_client && (d == '/' || d == '\\' || d == '%' || d < 0x20 || d == 0x7f))
                    return "has an encoded '/', '\\', '%' or control byte";
                i += 2;
            } else if (!is_pchar(c)) {
                return "has a byte that a request path may not carry (a space, a control byte, '\\', ...)";
            }
        }
        if (from_client && slen == 0)
            return "has an empty segment";
        if (is_dotty(seg, slen))
            return "has a dot-segment ('.' or '..')";
        start = end + 1;
    }
    if (q != NULL) {
        for (size_t i = plen + 1; i < len; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c == '%') {
                if (i + 2 >= len || gyre_wire_hex_digit((unsigned char)t[i + 1]) < 0 ||
                    gyre_wire_hex_digit((unsigned char)t[i + 2]) < 0)
                    return "has a malformed percent-escape";
                i += 2;
            } else if (!is_pchar(c) && c != '/' && c != '?') {
                return "has a byte that a query may not carry (a space, a control byte, '#', ...)";
            }
        }
    }
    return NULL;
}

int gyre_wire_add_answer_header(h2o_mem_pool_t *pool, h2o_headers_t *headers, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    if (!gyre_wire_is_token(name, name_len) ||
        gyre_wire_header_value_problem(value, value_len, GYRE_WIRE_ANSWER_HEADER_MAX) != NULL)
        return -EINVAL;
    h2o_add_header_by_str(pool, headers, name, name_len, 0, NULL, value, value_len);
    return 0;
}

int gyre_wire_name_in(const gyre_wire_name_t *table, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].len == len && h2o_lcstris(name, len, table[i].name, len))
            return 1;
    return 0;
}

const char *gyre_wire_url_problem(const char *url, int allow_query, h2o_url_t *out)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return "must start with http:// or https://";
    const char *auth = strstr(url, "://") + 3;
    size_t authlen = strcspn(auth, "/");
    if (memchr(auth, '@', authlen) != NULL)
        return "must not contain credentials (use keys:)";
    if (authlen == 0)
        return "has no host";
    if (strpbrk(auth, allow_query ? "#" : "?#") != NULL || memchr(auth, '?', authlen) != NULL)
        return allow_query ? "must not contain a fragment or a query before the path"
                           : "must not contain a query or fragment";
    for (const char *c = url; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return "has a control byte or a space";
    if (h2o_url_parse(url, SIZE_MAX, out) != 0 || gyre_wire_url_port(out) == 0)
        return "has an invalid port";
    return NULL;
}

uint16_t gyre_wire_url_port(const h2o_url_t *url)
{
    return url->_port != 65535 ? url->_port : url->scheme->default_port;
}
