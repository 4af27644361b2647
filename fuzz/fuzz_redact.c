/*
 * libFuzzer driver for redaction (src/trace/redact.c), which reads every
 * body, error and metadata value a client or a provider sends.
 *
 * The input is redacted with every kind on (and once with only e-mail and
 * card).  The promises checked:
 *   - the output fits gyre_redact_bound(len), and is exactly the input with
 *     each reported match replaced by its token; matches are in order, do
 *     not overlap, and never contain a quote or a backslash;
 *   - no e-mail address or card number is left in the output, by checks
 *     written here independently of the matchers (simple forms each matcher
 *     must catch: "x@y.zz" and 16 digits starting with 4 that pass Luhn, not
 *     inside an escape and, in a JSON document, inside a string);
 *   - an object, array or string that is valid JSON (cJSON's reading, with
 *     numbers held to JSON's grammar) stays valid JSON;
 *   - the scanner finds exactly the matches (offsets, kinds) of the
 *     byte-by-byte scan it replaced (tests/unit/redact_reference.h), and
 *     gyre_redact() writes the same bytes as the reference's.
 * Each input is copied into an allocation of its own size, so a read past
 * it is caught.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/redact_reference.h"
#include "trace/redact.h"

static int word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int alnum(unsigned char c)
{
    return letter(c) || digit(c);
}

static int hexdigit(unsigned char c)
{
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Marks the bytes that belong to an escape sequence (JSON's grammar, as
 * redact.h documents it: a backslash and one of "\/bfnrt, or \u and four hex
 * digits) and, in a JSON document, those inside strings.
 */
static void classify(const char *p, size_t n, int json, unsigned char *escaped, unsigned char *in_string)
{
    int in = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] == '\\') {
            size_t e = 1;
            if (i + 1 < n) {
                char c = p[i + 1];
                if (c == 'u')
                    e = i + 6 <= n && hexdigit(p[i + 2]) && hexdigit(p[i + 3]) && hexdigit(p[i + 4]) &&
                                hexdigit(p[i + 5])
                            ? 6
                            : 2;
                else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0')
                    e = 2;
            }
            for (size_t k = i; k < i + e; k++) {
                escaped[k] = 1;
                in_string[k] = (unsigned char)in;
            }
            i += e;
            continue;
        }
        if (json && p[i] == '"')
            in = !in;
        escaped[i] = 0;
        in_string[i] = (unsigned char)(json ? in : 1);
        i++;
    }
}

/* "x@y.zz" where x is a letter or digit of its own, y letters and digits, zz two letters ending the name. */
static int has_email(const char *p, size_t n, const unsigned char *escaped)
{
    for (size_t i = 1; i + 5 <= n; i++) {
        if (p[i] != '@' || !alnum(p[i - 1]) || escaped[i - 1])
            continue;
        size_t k = i + 1;
        while (k < n && alnum(p[k]))
            k++;
        if (k == i + 1 || k + 3 > n || p[k] != '.' || !letter(p[k + 1]) || !letter(p[k + 2]))
            continue;
        if (k + 3 < n && (word(p[k + 3]) || p[k + 3] == '-'))
            continue;
        return 1;
    }
    return 0;
}

static int luhn16(const char *d)
{
    unsigned sum = 0;
    for (int k = 0; k < 16; k++) {
        unsigned v = (unsigned)(d[15 - k] - '0');
        if (k & 1)
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

/* 16 digits on their own, starting with 4, passing Luhn, where a card may be replaced. */
static int has_card(const char *p, size_t n, const unsigned char *escaped, const unsigned char *in_string)
{
    for (size_t i = 0; i + 16 <= n; i++) {
        if (p[i] != '4' || escaped[i] || !in_string[i])
            continue;
        if (i > 0 && (word(p[i - 1]) || escaped[i - 1]))
            continue;
        if (i >= 2 && (p[i - 1] == '.' || p[i - 1] == ',') && digit(p[i - 2]))
            continue;
        size_t k = i;
        while (k < n && k < i + 17 && digit(p[k]))
            k++;
        if (k != i + 16)
            continue;
        if (k < n && (word(p[k]) || ((p[k] == '.' || p[k] == ',') && k + 1 < n && digit(p[k + 1]))))
            continue;
        if (luhn16(p + i))
            return 1;
    }
    return 0;
}

static int starts_json(const char *p, size_t n, const char *which)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i < n && p[i] != '\0' && strchr(which, p[i]) != NULL;
}

/*
 * Whether every number outside the strings follows JSON's grammar (RFC 8259
 * section 6): cJSON reads numbers with strtod and so accepts "0012" and "1.",
 * which no JSON writer emits.  Redaction may read such a run as a phone
 * ("0001011920702.11": the "00" international prefix and 15 digits); it never
 * reads a number of the grammar as one, since a phone needs separators a
 * number cannot hold, or a leading zero followed by a digit.
 */
static int strict_numbers(const char *p, size_t n)
{
    int in = 0;
    for (size_t i = 0; i < n;) {
        if (in) {
            if (p[i] == '\\')
                i += 2;
            else
                in = p[i++] != '"';
            continue;
        }
        if (p[i] == '"') {
            in = 1;
            i++;
            continue;
        }
        if (p[i] != '-' && !digit((unsigned char)p[i])) {
            i++;
            continue;
        }
        /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and nothing of a number after it */
        if (p[i] == '-')
            i++;
        if (i >= n || !digit((unsigned char)p[i]))
            return 0;
        if (p[i] == '0')
            i++;
        else
            while (i < n && digit((unsigned char)p[i]))
                i++;
        if (i < n && p[i] == '.') {
            size_t f = ++i;
            while (i < n && digit((unsigned char)p[i]))
                i++;
            if (i == f)
                return 0;
        }
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
            i++;
            if (i < n && (p[i] == '+' || p[i] == '-'))
                i++;
            size_t x = i;
            while (i < n && digit((unsigned char)p[i]))
                i++;
            if (i == x)
                return 0;
        }
        if (i < n && (digit((unsigned char)p[i]) || p[i] == '.' || p[i] == '-' || p[i] == '+' || p[i] == 'e' ||
                      p[i] == 'E'))
            return 0;
    }
    return 1;
}

static int valid_json(const char *p, size_t n)
{
    if (!strict_numbers(p, n))
        return 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (j == NULL)
        return 0;
    cJSON_Delete(j);
    size_t off = (size_t)(end - p);
    while (off < n && (p[off] == ' ' || p[off] == '\t' || p[off] == '\r' || p[off] == '\n'))
        off++;
    return off == n;
}

static void check(unsigned kinds, const char *in, size_t len)
{
    size_t cap = gyre_redact_bound(len);
    char *out = malloc(cap ? cap : 1);
    size_t count;
    size_t olen = gyre_redact(kinds, in, len, out, cap, &count);
    if (olen > cap)
        abort();
    /* Rebuild the output from the matches: it must be the same bytes. */
    char *again = malloc(cap ? cap : 1);
    gyre_redact_scan_t s;
    gyre_redact_match_t m;
    size_t o = 0, from = 0, n = 0;
    gyre_redact_scan_init(&s, kinds, in, len);
    while (gyre_redact_scan_next(&s, &m)) {
        if (m.start < from || m.end <= m.start || m.end > len || (m.kind & kinds) != m.kind || m.kind == 0)
            abort();
        if (memchr(in + m.start, '"', m.end - m.start) != NULL || memchr(in + m.start, '\\', m.end - m.start))
            abort();
        const char *tok = gyre_redact_token(m.kind);
        size_t tl = strlen(tok);
        if (o + (m.start - from) + tl > cap)
            abort(); /* the bound is wrong */
        memcpy(again + o, in + from, m.start - from);
        o += m.start - from;
        memcpy(again + o, tok, tl);
        o += tl;
        from = m.end;
        n++;
    }
    if (o + (len - from) > cap)
        abort();
    memcpy(again + o, in + from, len - from);
    o += len - from;
    if (o != olen || n != count || memcmp(out, again, olen) != 0)
        abort();
    /* The reference scan: the same matches, one by one, and the same output. */
    ref_scan_t r;
    gyre_redact_match_t rm;
    gyre_redact_scan_init(&s, kinds, in, len);
    ref_scan_init(&r, kinds, in, len);
    for (;;) {
        int x = gyre_redact_scan_next(&s, &m), y = ref_scan_next(&r, &rm);
        if (x != y || (x && (m.start != rm.start || m.end != rm.end || m.kind != rm.kind)))
            abort();
        if (!x)
            break;
    }
    char *ref = malloc(cap ? cap : 1);
    size_t rcount, rlen = redact_reference(kinds, in, len, ref, cap, &rcount);
    if (rlen != olen || rcount != count || memcmp(ref, out, olen) != 0)
        abort();
    free(ref);
    /* Nothing the independent checks recognise is left. */
    unsigned char *escaped = malloc(olen ? olen : 1), *in_string = malloc(olen ? olen : 1);
    classify(out, olen, starts_json(in, len, "{["), escaped, in_string);
    if ((kinds & GYRE_REDACT_EMAIL) && has_email(out, olen, escaped))
        abort();
    if ((kinds & GYRE_REDACT_CARD) && has_card(out, olen, escaped, in_string))
        abort();
    /* JSON in, JSON out. */
    if (starts_json(in, len, "{[\"") && valid_json(in, len) && !valid_json(out, olen))
        abort();
    free(escaped);
    free(in_string);
    free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    check(GYRE_REDACT_ALL, in, size);
    check(GYRE_REDACT_EMAIL | GYRE_REDACT_CARD, in, size);
    check(GYRE_REDACT_PHONE | GYRE_REDACT_API_KEY, in, size);
    free(in);
    return 0;
}
