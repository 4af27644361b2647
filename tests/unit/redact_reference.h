/*
 * The redaction scanner as it was before the pre-filter (src/trace/redact.c
 * at 54ec38d), kept only as the judge of the fast one: the unit tests
 * (tests/unit/trace_redact.c), fuzz/fuzz_redact.c and bench/redact/ run both
 * and compare.  It is never linked into gyre: every name is static and
 * prefixed ref_, and nothing under src/ includes this file.  Do not change
 * it to follow a change in behaviour; change the behaviour on purpose, in
 * both, and say so in docs/privacy.md.
 */
#ifndef GYRE_TESTS_REDACT_REFERENCE_H
#define GYRE_TESTS_REDACT_REFERENCE_H

#include <stddef.h>
#include <string.h>

#include "trace/redact.h"

/* The old gyre_redact_scan_t. */
typedef struct ref_scan {
    const char *p;
    size_t len, pos;
    unsigned kinds;
    int json, in_string, prev_word, prev_local;
    size_t key_skip;
    size_t next_at, at_run;
} ref_scan_t;

/* Byte classes, looked up once per byte on the hot path: W a word character [A-Za-z0-9_], L one of an
 * e-mail address's local part (W and . % + -). */
enum { REF_W = 1, REF_L = 2 };
static const unsigned char ref_classes[256] = {
    ['a'] = REF_W | REF_L, ['b'] = REF_W | REF_L, ['c'] = REF_W | REF_L, ['d'] = REF_W | REF_L, ['e'] = REF_W | REF_L,
    ['f'] = REF_W | REF_L, ['g'] = REF_W | REF_L, ['h'] = REF_W | REF_L, ['i'] = REF_W | REF_L, ['j'] = REF_W | REF_L,
    ['k'] = REF_W | REF_L, ['l'] = REF_W | REF_L, ['m'] = REF_W | REF_L, ['n'] = REF_W | REF_L, ['o'] = REF_W | REF_L,
    ['p'] = REF_W | REF_L, ['q'] = REF_W | REF_L, ['r'] = REF_W | REF_L, ['s'] = REF_W | REF_L, ['t'] = REF_W | REF_L,
    ['u'] = REF_W | REF_L, ['v'] = REF_W | REF_L, ['w'] = REF_W | REF_L, ['x'] = REF_W | REF_L, ['y'] = REF_W | REF_L,
    ['z'] = REF_W | REF_L, ['A'] = REF_W | REF_L, ['B'] = REF_W | REF_L, ['C'] = REF_W | REF_L, ['D'] = REF_W | REF_L,
    ['E'] = REF_W | REF_L, ['F'] = REF_W | REF_L, ['G'] = REF_W | REF_L, ['H'] = REF_W | REF_L, ['I'] = REF_W | REF_L,
    ['J'] = REF_W | REF_L, ['K'] = REF_W | REF_L, ['L'] = REF_W | REF_L, ['M'] = REF_W | REF_L, ['N'] = REF_W | REF_L,
    ['O'] = REF_W | REF_L, ['P'] = REF_W | REF_L, ['Q'] = REF_W | REF_L, ['R'] = REF_W | REF_L, ['S'] = REF_W | REF_L,
    ['T'] = REF_W | REF_L, ['U'] = REF_W | REF_L, ['V'] = REF_W | REF_L, ['W'] = REF_W | REF_L, ['X'] = REF_W | REF_L,
    ['Y'] = REF_W | REF_L, ['Z'] = REF_W | REF_L, ['0'] = REF_W | REF_L, ['1'] = REF_W | REF_L, ['2'] = REF_W | REF_L,
    ['3'] = REF_W | REF_L, ['4'] = REF_W | REF_L, ['5'] = REF_W | REF_L, ['6'] = REF_W | REF_L, ['7'] = REF_W | REF_L,
    ['8'] = REF_W | REF_L, ['9'] = REF_W | REF_L, ['_'] = REF_W | REF_L, ['.'] = REF_L,         ['%'] = REF_L,
    ['+'] = REF_L,         ['-'] = REF_L};

/* [A-Za-z0-9_]: a match may not begin or end next to one. */
static int ref_is_word(unsigned char c)
{
    return ref_classes[c] & REF_W;
}

static int ref_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int ref_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int ref_is_hex(unsigned char c)
{
    return ref_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The local part of an address: RFC 5321's common subset. */
static int ref_is_local(unsigned char c)
{
    return ref_classes[c] & REF_L;
}

static int ref_is_label(unsigned char c)
{
    return ref_is_alpha(c) || ref_is_digit(c) || c == '-';
}

/* What a key with a known prefix is made of (base62 with '-' and '_'). */
static int ref_is_key_body(unsigned char c)
{
    return ref_is_word(c) || c == '-';
}

/* A bearer token (RFC 6750's b64token). */
static int ref_is_token68(unsigned char c)
{
    return ref_is_word(c) || c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* The length of the escape sequence at p[i] == '\\': 2, 6 for \uXXXX, or 1 for a backslash that starts none. */
static size_t ref_escape_len(const char *p, size_t len, size_t i)
{
    if (i + 1 >= len)
        return 1;
    unsigned char c = (unsigned char)p[i + 1];
    if (c == 'u') {
        if (i + 6 <= len && ref_is_hex((unsigned char)p[i + 2]) && ref_is_hex((unsigned char)p[i + 3]) &&
            ref_is_hex((unsigned char)p[i + 4]) && ref_is_hex((unsigned char)p[i + 5]))
            return 6;
        return 2;
    }
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't')
        return 2;
    return 1;
}

/* A digit run may not continue a number: "3.14159..." and "1,234,..." are kept whole. */
static int ref_after_decimal_point(const char *p, size_t i)
{
    return i >= 2 && (p[i - 1] == '.' || p[i - 1] == ',') && ref_is_digit((unsigned char)p[i - 2]);
}

/* Where a number-like match may end: not inside a word, nor before a decimal part. */
static int ref_ends_number(const char *p, size_t len, size_t e)
{
    if (e >= len)
        return 1;
    unsigned char c = (unsigned char)p[e];
    if (ref_is_word(c))
        return 0;
    return !((c == '.' || c == ',') && e + 1 < len && ref_is_digit((unsigned char)p[e + 1]));
}

/* --- e-mail -------------------------------------------------------------- */

/*
 * local@domain where the domain has at least two labels and the last is two
 * or more letters; the longest such domain wins ("a@b.com." ends before the
 * dot).  `i` starts a run of local-part characters; the address starts
 * after its leading dots ("...bob@example.com").  Returns the end and sets
 * *start, or returns 0.
 */
static size_t ref_match_email(const char *p, size_t len, size_t i, size_t *start)
{
    while (i < len && p[i] == '.')
        i++;
    size_t j = i;
    while (j < len && ref_is_local((unsigned char)p[j]))
        j++;
    if (j == i || j >= len || p[j] != '@')
        return 0;
    *start = i;
    size_t d = j + 1, k = d, best = 0;
    int labels = 0;
    while (k < len) {
        size_t start = k;
        int letters_only = 1;
        while (k < len && ref_is_label((unsigned char)p[k])) {
            if (!ref_is_alpha((unsigned char)p[k]))
                letters_only = 0;
            k++;
        }
        if (k == start || p[start] == '-' || p[k - 1] == '-')
            break;
        labels++;
        /* A label ends the address if it is a top-level domain and what follows cannot continue a name. */
        if (labels >= 2 && letters_only && k - start >= 2 &&
            (k >= len || !(ref_is_word((unsigned char)p[k]) || p[k] == '-')))
            best = k;
        if (k >= len || p[k] != '.')
            break;
        k++;
    }
    return best;
}

/* --- API keys ------------------------------------------------------------ */

typedef struct ref_key_prefix {
    const char *prefix;
    size_t len;
    size_t min_body; /* key_body characters after the prefix, at least */
} ref_key_prefix_t;

#define REF_KP(s, min)                                                                                                 \
    {                                                                                                                  \
        s, sizeof(s) - 1, min                                                                                          \
    }

/*
 * Vendors' key prefixes.  The body must be long and random-looking (two of
 * lowercase, uppercase, digits), so "sk-this-is-a-long-phrase" stays.
 * "sk-" covers OpenAI's sk-proj-/sk-svcacct- and Anthropic's sk-ant-.
 */
static const ref_key_prefix_t ref_key_prefixes[] = {
    REF_KP("sk-", 20),      REF_KP("sk_live_", 16), REF_KP("sk_test_", 16),    REF_KP("rk_live_", 16),
    REF_KP("rk_test_", 16), REF_KP("ghp_", 30),     REF_KP("gho_", 30),        REF_KP("ghu_", 30),
    REF_KP("ghs_", 30),     REF_KP("ghr_", 30),     REF_KP("github_pat_", 20), REF_KP("xoxb-", 10),
    REF_KP("xoxa-", 10),    REF_KP("xoxp-", 10),    REF_KP("xoxr-", 10),       REF_KP("xoxs-", 10),
    REF_KP("AIza", 35),     REF_KP("hf_", 30),      REF_KP("gsk_", 40),        REF_KP("glpat-", 20),
    REF_KP("npm_", 30),     REF_KP("xai-", 40),     REF_KP("pplx-", 40),       REF_KP("r8_", 30),
};

/* Two of lowercase, uppercase and digits: what a random key has and a hyphenated phrase has not. */
static int ref_mixed(const char *p, size_t from, size_t to)
{
    int lower = 0, upper = 0, digit = 0;
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)p[i];
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        digit |= ref_is_digit(c);
    }
    return lower + upper + digit >= 2;
}

/*
 * A key at p[i]: sets *start (after "Bearer " for a bearer token, which keeps
 * the word) and returns the end, or 0.  *scanned is how far a failed attempt
 * read a key body, which no later attempt inside it can do better on.
 */
static size_t ref_match_key(const char *p, size_t len, size_t i, size_t *start, size_t *scanned)
{
    unsigned char c = (unsigned char)p[i];
    *start = i;
    if ((c == 'A') && i + 20 <= len && (memcmp(p + i, "AKIA", 4) == 0 || memcmp(p + i, "ASIA", 4) == 0)) {
        /* An AWS access key id: exactly 16 of [A-Z0-9] after the prefix. */
        size_t k = i + 4;
        while (k < i + 20 && ((p[k] >= 'A' && p[k] <= 'Z') || ref_is_digit((unsigned char)p[k])))
            k++;
        if (k == i + 20 && (k >= len || !ref_is_key_body((unsigned char)p[k])))
            return k;
    }
    if ((c == 'B' || c == 'b') && i + 7 < len && strncmp(p + i + 1, "earer ", 6) == 0) {
        size_t t = i + 7;
        while (t < len && p[t] == ' ')
            t++;
        size_t k = t;
        while (k < len && ref_is_token68((unsigned char)p[k]))
            k++;
        if (k - t >= 16 && ref_mixed(p, t, k)) {
            *start = t;
            return k;
        }
        return 0;
    }
    /* The prefixes' first two bytes: most words end here, before the table. */
    if (i + 1 >= len)
        return 0;
    switch ((unsigned)c << 8 | (unsigned char)p[i + 1]) {
    case 's' << 8 | 'k':
    case 'r' << 8 | 'k':
    case 'g' << 8 | 'h':
    case 'g' << 8 | 'i':
    case 'g' << 8 | 's':
    case 'g' << 8 | 'l':
    case 'x' << 8 | 'o':
    case 'x' << 8 | 'a':
    case 'A' << 8 | 'I':
    case 'h' << 8 | 'f':
    case 'n' << 8 | 'p':
    case 'p' << 8 | 'p':
    case 'r' << 8 | '8': break;
    default: return 0;
    }
    for (size_t n = 0; n < sizeof(ref_key_prefixes) / sizeof(ref_key_prefixes[0]); n++) {
        const ref_key_prefix_t *kp = &ref_key_prefixes[n];
        if (kp->prefix[0] != (char)c || i + kp->len > len || memcmp(p + i, kp->prefix, kp->len) != 0)
            continue;
        size_t k = i + kp->len;
        while (k < len && ref_is_key_body((unsigned char)p[k]))
            k++;
        if (k - (i + kp->len) >= kp->min_body && ref_mixed(p, i + kp->len, k))
            return k;
        *scanned = k;
        return 0;
    }
    return 0;
}

/* --- card numbers -------------------------------------------------------- */

/* The issuer ranges of the card networks (first digits and length), which most long ids fall outside. */
static int ref_card_issuer(const unsigned char *d, size_t n)
{
    int two = d[0] * 10 + d[1], four = two * 100 + d[2] * 10 + d[3];
    switch (d[0]) {
    case 2: return n == 16 && four >= 2221 && four <= 2720; /* Mastercard's 2-series */
    case 3:
        if (two == 34 || two == 37)
            return n == 15; /* American Express */
        if (two == 35)
            return n >= 16;                                                   /* JCB */
        return (two == 30 || two == 36 || two == 38 || two == 39) && n >= 14; /* Diners Club */
    case 4: return 1;                                                         /* Visa */
    case 5: return n >= 16;                                                   /* Mastercard, Maestro */
    case 6: return 1;                                                         /* Discover, UnionPay, Maestro */
    default: return 0;
    }
}

static int ref_luhn(const unsigned char *d, size_t n)
{
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned v = d[n - 1 - k];
        if (k & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/*
 * 13 to 19 digits, in groups split by single spaces or dashes (one kind),
 * passing the Luhn check and in an issuer's range.  The longest such run of
 * whole groups wins.  *digits_only says the match has no separators.
 */
static size_t ref_match_card(const char *p, size_t len, size_t i, int *digits_only)
{
    unsigned char d[19];
    size_t nd = 0, ends[19], counts[19], ngroups = 0, k = i;
    char sep = 0;
    while (k < len && ref_is_digit((unsigned char)p[k])) {
        while (k < len && ref_is_digit((unsigned char)p[k]) && nd < 19)
            d[nd++] = (unsigned char)(p[k++] - '0');
        if (k < len && ref_is_digit((unsigned char)p[k]))
            break; /* more than 19 digits: this group cannot end a card */
        ends[ngroups] = k;
        counts[ngroups++] = nd;
        if (k + 1 < len && (p[k] == ' ' || p[k] == '-') && (sep == 0 || p[k] == sep) &&
            ref_is_digit((unsigned char)p[k + 1])) {
            sep = p[k];
            k++;
        } else {
            break;
        }
    }
    for (size_t g = ngroups; g-- > 0;) {
        size_t n = counts[g];
        if (n < 13)
            break;
        if (g == ngroups - 1 && !ref_ends_number(p, len, ends[g]))
            continue;
        if (ref_card_issuer(d, n) && ref_luhn(d, n)) {
            *digits_only = g == 0;
            return ends[g];
        }
    }
    return 0;
}

/* --- phone numbers ------------------------------------------------------- */

static int ref_is_phone_sep(unsigned char c)
{
    return c == ' ' || c == '-' || c == '.';
}

/*
 * "+CC ...": '+' and 8 to 15 digits (E.164) in groups split by single
 * spaces, dashes or dots, a group possibly in parentheses ("+44 (0)20 ...");
 * the longest such number, but not across a change of separator once it
 * has enough digits.
 */
static size_t ref_match_international(const char *p, size_t len, size_t i)
{
    size_t k = i + 1, nd = 0, best = 0;
    char last = 0;
    while (k < len) {
        int paren = p[k] == '(';
        size_t g = k + paren, start = g;
        while (g < len && ref_is_digit((unsigned char)p[g]) && nd <= 15) {
            g++;
            nd++;
        }
        if (g == start || nd > 15)
            break;
        if (paren) {
            if (g >= len || p[g] != ')')
                break;
            g++;
        }
        k = g;
        if (nd >= 8 && !paren && ref_ends_number(p, len, k))
            best = k;
        if (k < len && p[k] == ')')
            break;
        if (k < len && ref_is_phone_sep((unsigned char)p[k]) && k + 1 < len &&
            (ref_is_digit((unsigned char)p[k + 1]) || p[k + 1] == '(')) {
            /* Once it is a whole number, a change of separator starts something else: "+1 415-555-2671 4111". */
            if (best != 0 && last != 0 && p[k] != last)
                break;
            last = p[k++];
        } else if (!(paren && k < len && ref_is_digit((unsigned char)p[k])))
            break;
    }
    return best;
}

/*
 * National forms, which need separators so that plain numbers stay: NANP
 * "415-555-2671" / "415.555.2671" / "415 555 2671" (and "1-" before it),
 * "(415) 555-2671", and trunk-prefixed "020 7946 0958", "06 12 34 56 78",
 * "030/12345678" (9 to 11 digits; "00" international prefix: up to 15).
 */
static size_t ref_match_national(const char *p, size_t len, size_t i)
{
    size_t k = i, nd = 0;
    int area_paren = 0;
    if (p[k] == '(') {
        size_t g = k + 1;
        while (g < len && ref_is_digit((unsigned char)p[g]) && g - k <= 5)
            g++;
        size_t n = g - k - 1;
        if (g >= len || p[g] != ')' || n < 2 || n > 5 || !(n == 3 || p[k + 1] == '0'))
            return 0;
        nd = n;
        k = g + 1;
        if (k < len && p[k] == ' ')
            k++;
        if (k >= len || !ref_is_digit((unsigned char)p[k]))
            return 0;
        area_paren = 1;
    }
    /* The groups after the area code (or all of them), one separator kind. */
    size_t groups[8], ends[8], ng = 0, total[8];
    char sep = 0;
    while (k < len && ng < 8) {
        size_t g = k;
        while (g < len && ref_is_digit((unsigned char)p[g]) && g - k < 16)
            g++;
        if (g == k)
            break;
        groups[ng] = g - k;
        nd += g - k;
        total[ng] = nd;
        ends[ng++] = g;
        k = g;
        if (nd > 15 || k + 1 >= len || !ref_is_digit((unsigned char)p[k + 1]))
            break;
        char c = p[k];
        if (!(ref_is_phone_sep((unsigned char)c) || (c == '/' && !area_paren)) || (sep != 0 && c != sep))
            break;
        sep = c;
        k++;
    }
    if (ng == 0)
        return 0;
    if (area_paren) {
        /* "(415) 555-2671": 9 to 12 digits in all. */
        for (size_t g = ng; g-- > 0;)
            if (total[g] >= 9 && total[g] <= 12 && (g < ng - 1 || ref_ends_number(p, len, ends[g])))
                return ends[g];
        return 0;
    }
    if (p[i] == '0') {
        int intl = i + 1 < len && p[i + 1] == '0'; /* "0044 ...": the international prefix */
        size_t max = intl ? 15 : 11, min = intl ? 10 : 9;
        if (ng < 2 || groups[0] < 2)
            return 0;
        for (size_t g = ng; g-- > 1;) {
            if (groups[g] < 2)
                continue;
            if (total[g] >= min && total[g] <= max && (g < ng - 1 || ref_ends_number(p, len, ends[g])))
                return ends[g];
        }
        return 0;
    }
    /* NANP, with or without a leading "1" group; the number must end there. */
    size_t f = groups[0] == 1 && p[i] == '1' ? 1 : 0;
    if (ng != f + 3 || sep == '/' || groups[f] != 3 || groups[f + 1] != 3 || groups[f + 2] != 4)
        return 0;
    unsigned char area = (unsigned char)p[f ? ends[0] + 1 : i];
    if (area < '2' || !ref_ends_number(p, len, ends[ng - 1]))
        return 0;
    /* "123-456-7890-12" is a part number, not a phone. */
    size_t e = ends[ng - 1];
    if (e + 1 < len && ref_is_phone_sep((unsigned char)p[e]) && ref_is_digit((unsigned char)p[e + 1]))
        return 0;
    return e;
}

/* --- the scan ------------------------------------------------------------ */

static void ref_scan_init(ref_scan_t *s, unsigned kinds, const char *p, size_t len)
{
    memset(s, 0, sizeof(*s));
    s->p = p;
    s->len = len;
    s->kinds = kinds;
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    s->json = i < len && (p[i] == '{' || p[i] == '[');
}

/*
 * Where an e-mail attempt at `i` can reach an '@': the next '@' and the
 * start of the run of local-part characters before it (found looking back
 * once per '@').  An attempt from before that run ends short of the '@', so
 * most attempts, and every one in a text without '@', cost nothing.
 */
static size_t ref_email_run_start(ref_scan_t *s, size_t i)
{
    if (i > s->next_at || s->next_at == 0) {
        const char *at = i < s->len ? memchr(s->p + i, '@', s->len - i) : NULL;
        s->next_at = at != NULL ? (size_t)(at - s->p) : s->len;
        size_t b = s->next_at;
        while (at != NULL && b > i && ref_is_local((unsigned char)s->p[b - 1]))
            b--;
        s->at_run = at != NULL ? b : s->len;
    }
    return s->at_run;
}

/* A match that begins at `i` (after a separator unless prev_word), or 0. */
static int ref_match_at(ref_scan_t *s, size_t i, int prev_word, int prev_local, gyre_redact_match_t *m)
{
    const char *p = s->p;
    size_t len = s->len, e;
    unsigned char c = (unsigned char)p[i];
    size_t start;
    if ((s->kinds & GYRE_REDACT_EMAIL) && !prev_local && ref_is_local(c) && i >= ref_email_run_start(s, i) &&
        i < s->next_at && (e = ref_match_email(p, len, i, &start)) != 0) {
        *m = (gyre_redact_match_t){start, e, GYRE_REDACT_EMAIL};
        return 1;
    }
    if (prev_word)
        return 0;
    if ((s->kinds & GYRE_REDACT_API_KEY) && ref_is_alpha(c) && i >= s->key_skip) {
        if ((e = ref_match_key(p, len, i, &start, &s->key_skip)) != 0) {
            *m = (gyre_redact_match_t){start, e, GYRE_REDACT_API_KEY};
            return 1;
        }
    }
    if (!(ref_is_digit(c) || c == '+' || c == '(') || ref_after_decimal_point(p, i))
        return 0;
    int digits_only = 0;
    if ((s->kinds & GYRE_REDACT_CARD) && c >= '2' && c <= '6' && (e = ref_match_card(p, len, i, &digits_only)) != 0 &&
        !(digits_only && s->json && !s->in_string)) {
        *m = (gyre_redact_match_t){i, e, GYRE_REDACT_CARD};
        return 1;
    }
    if (s->kinds & GYRE_REDACT_PHONE) {
        if (c == '+')
            e = i + 1 < len && ref_is_digit((unsigned char)p[i + 1]) ? ref_match_international(p, len, i) : 0;
        else
            e = ref_match_national(p, len, i);
        if (e != 0) {
            *m = (gyre_redact_match_t){i, e, GYRE_REDACT_PHONE};
            return 1;
        }
    }
    return 0;
}

static int ref_scan_next(ref_scan_t *s, gyre_redact_match_t *m)
{
    /* The loop keeps its state in locals: the text's bytes could alias *s, which would reload it per byte. */
    const char *p = s->p;
    size_t len = s->len, pos = s->pos;
    int prev_word = s->prev_word, prev_local = s->prev_local, found = 0;
    while (pos < len) {
        if (prev_word) {
            /* Inside a word nothing begins (each match starts after a separator): skip the rest of it. */
            while (pos < len && ref_is_word((unsigned char)p[pos]))
                pos++;
            prev_local = 1;
            if (pos == len)
                break;
        }
        unsigned char c = (unsigned char)p[pos];
        if (c == '\\') {
            /* An escape is a separator, never part of a match (which would break it). */
            pos += ref_escape_len(p, len, pos);
            prev_word = prev_local = 0;
            continue;
        }
        if (c == '"' && s->json) {
            s->in_string = !s->in_string;
            pos++;
            prev_word = prev_local = 0;
            continue;
        }
        /* Every match begins with a local-part character or '(' (blanks and most punctuation begin none). */
        if ((ref_is_local(c) || c == '(') && s->kinds != 0 && ref_match_at(s, pos, prev_word, prev_local, m)) {
            /* What follows a match is a separator (each matcher checks), so the scan resumes at a boundary. */
            pos = m->end;
            prev_word = prev_local = 0;
            found = 1;
            break;
        }
        prev_word = ref_is_word(c);
        prev_local = ref_is_local(c);
        pos++;
    }
    s->pos = pos;
    s->prev_word = prev_word;
    s->prev_local = prev_local;
    return found;
}

static const char *ref_token(unsigned kind)
{
    switch (kind) {
    case GYRE_REDACT_EMAIL: return "[email]";
    case GYRE_REDACT_PHONE: return "[phone]";
    case GYRE_REDACT_CARD: return "[card]";
    case GYRE_REDACT_API_KEY: return "[api_key]";
    default: return "";
    }
}

static size_t ref_put(char *out, size_t cap, size_t o, const char *p, size_t n)
{
    if (o < cap)
        memcpy(out + o, p, n < cap - o ? n : cap - o);
    return o + n;
}

static inline size_t redact_reference(unsigned kinds, const char *in, size_t len, char *out, size_t cap, size_t *count)
{
    ref_scan_t s;
    gyre_redact_match_t m;
    size_t o = 0, from = 0, n = 0;
    ref_scan_init(&s, kinds, in, len);
    while (ref_scan_next(&s, &m)) {
        const char *tok = ref_token(m.kind);
        o = ref_put(out, cap, o, in + from, m.start - from);
        o = ref_put(out, cap, o, tok, strlen(tok));
        from = m.end;
        n++;
    }
    o = ref_put(out, cap, o, in + from, len - from);
    if (count != NULL)
        *count = n;
    return o < cap ? o : cap;
}

#endif
