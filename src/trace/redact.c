/*
 * Redaction (see redact.h): a matcher per kind, each tried only where its
 * match may begin, behind a pre-filter that finds those places 64 bytes at
 * a time, so that a body without PII costs a few vector passes and no copy.
 * docs/privacy.md lists what each matcher accepts and the look-alikes it
 * leaves alone.
 *
 * The matchers decide; the pre-filter only leaves out positions where the
 * scan, had it visited them byte by byte, would have found nothing and
 * changed nothing.  Where a match may begin (each begins after a separator,
 * that is not after a word character [A-Za-z0-9_] nor inside an escape):
 *   - an e-mail address: in the run of local-part characters just before an
 *     '@' (memchr finds each '@'); that run is scanned byte by byte;
 *   - a card or a phone: at a digit, '+' or '(' opening enough digits, or a
 *     digit group followed by a separator and more digits;
 *   - a key with a known prefix: at the start of a run of 15 or more key
 *     characters [A-Za-z0-9_-] (the shortest key, "xoxb-" and 10, has 15);
 *   - a bearer token: at "Bearer " or "bearer ".
 * JSON strings (whether a bare card number is inside one) are followed only
 * when a card made of digits alone is found in a JSON text.
 *
 * tests/unit/redact_reference.h keeps the byte-by-byte scan this replaced:
 * the unit tests and fuzz/fuzz_redact.c check that both give the same
 * matches, and bench/redact/ measures both.
 */
#include "trace/redact.h"

#include <stdint.h>
#include <string.h>

/*
 * The windows are read with SSE2 (part of x86-64), or with AVX2 or
 * AVX-512BW where the CPU has them (checked once per scan); elsewhere, or
 * with GYRE_REDACT_PORTABLE (to test that path), byte by byte.  The
 * AVX-512 reader uses only loads, comparisons and logic, the "light"
 * instructions; Intel CPUs before Ice Lake still run them at a lower clock.
 */
#if defined(__SSE2__) && !defined(GYRE_REDACT_PORTABLE)
#include <emmintrin.h>
#define REDACT_SSE2 1
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define REDACT_WIDE 1 /* read_window_avx2() and read_window_avx512(), chosen at run time */
#endif
#endif

/*
 * Byte classes: W a word character [A-Za-z0-9_], L one of an e-mail
 * address's local part (W and . % + -), K a key character (W and -), S a
 * byte where a card, a phone or a bearer token may begin (digits, + ( b B),
 * E a backslash, P the first letter of a key prefix (key_prefix_at(), AKIA).
 */
enum { W = 1, L = 2, K = 4, S = 8, E = 16, P = 32 };
#define LETTER (W | L | K)
#define DIGIT (W | L | K | S)
static const unsigned char classes[256] = {
    ['a'] = LETTER,     ['b'] = LETTER | S, ['c'] = LETTER,     ['d'] = LETTER,     ['e'] = LETTER, ['f'] = LETTER,
    ['g'] = LETTER | P, ['h'] = LETTER | P, ['i'] = LETTER,     ['j'] = LETTER,     ['k'] = LETTER, ['l'] = LETTER,
    ['m'] = LETTER,     ['n'] = LETTER | P, ['o'] = LETTER,     ['p'] = LETTER | P, ['q'] = LETTER, ['r'] = LETTER | P,
    ['s'] = LETTER | P, ['t'] = LETTER,     ['u'] = LETTER,     ['v'] = LETTER,     ['w'] = LETTER, ['x'] = LETTER | P,
    ['y'] = LETTER,     ['z'] = LETTER,     ['A'] = LETTER | P, ['B'] = LETTER | S, ['C'] = LETTER, ['D'] = LETTER,
    ['E'] = LETTER,     ['F'] = LETTER,     ['G'] = LETTER,     ['H'] = LETTER,     ['I'] = LETTER, ['J'] = LETTER,
    ['K'] = LETTER,     ['L'] = LETTER,     ['M'] = LETTER,     ['N'] = LETTER,     ['O'] = LETTER, ['P'] = LETTER,
    ['Q'] = LETTER,     ['R'] = LETTER,     ['S'] = LETTER,     ['T'] = LETTER,     ['U'] = LETTER, ['V'] = LETTER,
    ['W'] = LETTER,     ['X'] = LETTER,     ['Y'] = LETTER,     ['Z'] = LETTER,     ['0'] = DIGIT,  ['1'] = DIGIT,
    ['2'] = DIGIT,      ['3'] = DIGIT,      ['4'] = DIGIT,      ['5'] = DIGIT,      ['6'] = DIGIT,  ['7'] = DIGIT,
    ['8'] = DIGIT,      ['9'] = DIGIT,      ['_'] = W | L | K,  ['.'] = L,          ['%'] = L,      ['+'] = L | S,
    ['-'] = L | K,      ['('] = S,          ['\\'] = E};

/* [A-Za-z0-9_]: a match may not begin or end next to one. */
static int is_word(unsigned char c)
{
    return classes[c] & W;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The local part of an address: RFC 5321's common subset. */
static int is_local(unsigned char c)
{
    return classes[c] & L;
}

static int is_label(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-';
}

/* What a key with a known prefix is made of (base62 with '-' and '_'). */
static int is_key_body(unsigned char c)
{
    return classes[c] & K;
}

/* A bearer token (RFC 6750's b64token). */
static int is_token68(unsigned char c)
{
    return is_word(c) || c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* The length of the escape sequence at p[i] == '\\': 2, 6 for \uXXXX, or 1 for a backslash that starts none. */
static inline size_t escape_len(const char *p, size_t len, size_t i)
{
    /* The characters that make a two-byte escape after the backslash ('u' makes one of 6 or 2). */
    static const unsigned char two[256] = {
        ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1};
    if (i + 1 >= len)
        return 1;
    unsigned char c = (unsigned char)p[i + 1];
    if (c != 'u')
        return 1u + two[c];
    if (i + 6 <= len && is_hex((unsigned char)p[i + 2]) && is_hex((unsigned char)p[i + 3]) &&
        is_hex((unsigned char)p[i + 4]) && is_hex((unsigned char)p[i + 5]))
        return 6;
    return 2;
}

/* A digit run may not continue a number: "3.14159..." and "1,234,..." are kept whole. */
static int after_decimal_point(const char *p, size_t i)
{
    return i >= 2 && (p[i - 1] == '.' || p[i - 1] == ',') && is_digit((unsigned char)p[i - 2]);
}

/* Where a number-like match may end: not inside a word, nor before a decimal part. */
static int ends_number(const char *p, size_t len, size_t e)
{
    if (e >= len)
        return 1;
    unsigned char c = (unsigned char)p[e];
    if (is_word(c))
        return 0;
    return !((c == '.' || c == ',') && e + 1 < len && is_digit((unsigned char)p[e + 1]));
}

/* --- e-mail -------------------------------------------------------------- */

/*
 * local@domain where the domain has at least two labels and the last is two
 * or more letters; the longest such domain wins ("a@b.com." ends before the
 * dot).  `i` starts a run of local-part characters; the address starts
 * after its leading dots ("...bob@example.com").  Returns the end and sets
 * *start, or returns 0.
 */
static size_t match_email(const char *p, size_t len, size_t i, size_t *start)
{
    while (i < len && p[i] == '.')
        i++;
    size_t j = i;
    while (j < len && is_local((unsigned char)p[j]))
        j++;
    if (j == i || j >= len || p[j] != '@')
        return 0;
    *start = i;
    size_t d = j + 1, k = d, best = 0;
    int labels = 0;
    while (k < len) {
        size_t start = k;
        int letters_only = 1;
        while (k < len && is_label((unsigned char)p[k])) {
            if (!is_alpha((unsigned char)p[k]))
                letters_only = 0;
            k++;
        }
        if (k == start || p[start] == '-' || p[k - 1] == '-')
            break;
        labels++;
        /* A label ends the address if it is a top-level domain and what follows cannot continue a name. */
        if (labels >= 2 && letters_only && k - start >= 2 &&
            (k >= len || !(is_word((unsigned char)p[k]) || p[k] == '-')))
            best = k;
        if (k >= len || p[k] != '.')
            break;
        k++;
    }
    return best;
}

/* --- API keys ------------------------------------------------------------ */

typedef struct key_prefix {
    const char *prefix;
    size_t len;
    size_t min_body; /* key_body characters after the prefix, at least */
} key_prefix_t;

#define KP(s, min)                                                                                                     \
    {                                                                                                                  \
        s, sizeof(s) - 1, min                                                                                          \
    }

/*
 * Vendors' key prefixes.  The body must be long and random-looking (two of
 * lowercase, uppercase, digits), so "sk-this-is-a-long-phrase" stays.
 * "sk-" covers OpenAI's sk-proj-/sk-svcacct- and Anthropic's sk-ant-.
 */
static const key_prefix_t key_prefixes[] = {
    KP("sk-", 20),   KP("sk_live_", 16), KP("sk_test_", 16), KP("rk_live_", 16), KP("rk_test_", 16),    KP("ghp_", 30),
    KP("gho_", 30),  KP("ghu_", 30),     KP("ghs_", 30),     KP("ghr_", 30),     KP("github_pat_", 20), KP("xoxb-", 10),
    KP("xoxa-", 10), KP("xoxp-", 10),    KP("xoxr-", 10),    KP("xoxs-", 10),    KP("AIza", 35),        KP("hf_", 30),
    KP("gsk_", 40),  KP("glpat-", 20),   KP("npm_", 30),     KP("xai-", 40),     KP("pplx-", 40),       KP("r8_", 30),
};

/* Two of lowercase, uppercase and digits: what a random key has and a hyphenated phrase has not. */
static int mixed(const char *p, size_t from, size_t to)
{
    int lower = 0, upper = 0, digit = 0;
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)p[i];
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        digit |= is_digit(c);
    }
    return lower + upper + digit >= 2;
}

/* The first of the vendors' prefixes that p[i] starts, or NULL. */
static const key_prefix_t *key_prefix_at(const char *p, size_t len, size_t i)
{
    /* The prefixes' first two bytes: most words end here, before the table. */
    if (i + 1 >= len)
        return NULL;
    unsigned char c = (unsigned char)p[i];
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
    default: return NULL;
    }
    for (size_t n = 0; n < sizeof(key_prefixes) / sizeof(key_prefixes[0]); n++) {
        const key_prefix_t *kp = &key_prefixes[n];
        if (kp->prefix[0] == (char)c && i + kp->len <= len && memcmp(p + i, kp->prefix, kp->len) == 0)
            return kp;
    }
    return NULL;
}

/*
 * Whether the byte-by-byte scan would have skipped "Bearer" at p[i], just
 * after a '-': it skips key attempts inside the body of a prefixed key that
 * failed ("sk-4155552671-Bearer ..." is one failed "sk-" key), and the
 * pre-filter does not visit such a key at all when its run of key
 * characters is shorter than any key, so this looks back over that run for
 * a place the scan would have tried a prefix: its start (or the end of an
 * escape that covers the start) and each byte after a '-'.  Rare: only a
 * "Bearer" glued to a dash comes here.
 */
static int bearer_inside_failed_key(const char *p, size_t len, size_t i)
{
    size_t r = i;
    while (r > 0 && is_key_body((unsigned char)p[r - 1]))
        r--;
    size_t lo = r;
    if (r > 0 && p[r - 1] == '\\') {
        /* The last of an odd run of backslashes starts an escape, which may cover the run's first bytes. */
        size_t b = r - 1;
        while (b > 0 && p[b - 1] == '\\')
            b--;
        if ((r - b) % 2 == 1)
            lo = r - 1 + escape_len(p, len, r - 1);
    }
    for (size_t q = lo; q < i; q++)
        if ((q == lo || p[q - 1] == '-') && is_alpha((unsigned char)p[q]) && key_prefix_at(p, len, q) != NULL)
            return 1;
    return 0;
}

/*
 * A key at p[i]: sets *start (after "Bearer " for a bearer token, which keeps
 * the word) and returns the end, or 0.  *scanned is how far a failed attempt
 * read a key body, which no later attempt inside it can do better on.
 */
static size_t match_key(const char *p, size_t len, size_t i, size_t *start, size_t *scanned)
{
    unsigned char c = (unsigned char)p[i];
    *start = i;
    if ((c == 'A') && i + 20 <= len && (memcmp(p + i, "AKIA", 4) == 0 || memcmp(p + i, "ASIA", 4) == 0)) {
        /* An AWS access key id: exactly 16 of [A-Z0-9] after the prefix. */
        size_t k = i + 4;
        while (k < i + 20 && ((p[k] >= 'A' && p[k] <= 'Z') || is_digit((unsigned char)p[k])))
            k++;
        if (k == i + 20 && (k >= len || !is_key_body((unsigned char)p[k])))
            return k;
    }
    if ((c == 'B' || c == 'b') && i + 7 < len && memcmp(p + i + 1, "earer ", 6) == 0) {
        if (i > 0 && p[i - 1] == '-' && bearer_inside_failed_key(p, len, i))
            return 0;
        size_t t = i + 7;
        while (t < len && p[t] == ' ')
            t++;
        size_t k = t;
        while (k < len && is_token68((unsigned char)p[k]))
            k++;
        if (k - t >= 16 && mixed(p, t, k)) {
            *start = t;
            return k;
        }
        return 0;
    }
    const key_prefix_t *kp = key_prefix_at(p, len, i);
    if (kp == NULL)
        return 0;
    size_t k = i + kp->len;
    while (k < len && is_key_body((unsigned char)p[k]))
        k++;
    if (k - (i + kp->len) >= kp->min_body && mixed(p, i + kp->len, k))
        return k;
    *scanned = k;
    return 0;
}

/* --- card numbers -------------------------------------------------------- */

/* The issuer ranges of the card networks (first digits and length), which most long ids fall outside. */
static int card_issuer(const unsigned char *d, size_t n)
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

static int luhn(const unsigned char *d, size_t n)
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
static size_t match_card(const char *p, size_t len, size_t i, int *digits_only)
{
    unsigned char d[19];
    size_t nd = 0, ends[19], counts[19], ngroups = 0, k = i;
    char sep = 0;
    while (k < len && is_digit((unsigned char)p[k])) {
        while (k < len && is_digit((unsigned char)p[k]) && nd < 19)
            d[nd++] = (unsigned char)(p[k++] - '0');
        if (k < len && is_digit((unsigned char)p[k]))
            break; /* more than 19 digits: this group cannot end a card */
        ends[ngroups] = k;
        counts[ngroups++] = nd;
        if (k + 1 < len && (p[k] == ' ' || p[k] == '-') && (sep == 0 || p[k] == sep) &&
            is_digit((unsigned char)p[k + 1])) {
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
        if (g == ngroups - 1 && !ends_number(p, len, ends[g]))
            continue;
        if (card_issuer(d, n) && luhn(d, n)) {
            *digits_only = g == 0;
            return ends[g];
        }
    }
    return 0;
}

/* --- phone numbers ------------------------------------------------------- */

static int is_phone_sep(unsigned char c)
{
    return c == ' ' || c == '-' || c == '.';
}

/*
 * "+CC ...": '+' and 8 to 15 digits (E.164) in groups split by single
 * spaces, dashes or dots, a group possibly in parentheses ("+44 (0)20 ...");
 * the longest such number, but not across a change of separator once it
 * has enough digits.
 */
static size_t match_international(const char *p, size_t len, size_t i)
{
    size_t k = i + 1, nd = 0, best = 0;
    char last = 0;
    while (k < len) {
        int paren = p[k] == '(';
        size_t g = k + paren, start = g;
        while (g < len && is_digit((unsigned char)p[g]) && nd <= 15) {
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
        if (nd >= 8 && !paren && ends_number(p, len, k))
            best = k;
        if (k < len && p[k] == ')')
            break;
        if (k < len && is_phone_sep((unsigned char)p[k]) && k + 1 < len &&
            (is_digit((unsigned char)p[k + 1]) || p[k + 1] == '(')) {
            /* Once it is a whole number, a change of separator starts something else: "+1 415-555-2671 4111". */
            if (best != 0 && last != 0 && p[k] != last)
                break;
            last = p[k++];
        } else if (!(paren && k < len && is_digit((unsigned char)p[k])))
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
static size_t match_national(const char *p, size_t len, size_t i)
{
    size_t k = i, nd = 0;
    int area_paren = 0;
    if (p[k] == '(') {
        size_t g = k + 1;
        while (g < len && is_digit((unsigned char)p[g]) && g - k <= 5)
            g++;
        size_t n = g - k - 1;
        if (g >= len || p[g] != ')' || n < 2 || n > 5 || !(n == 3 || p[k + 1] == '0'))
            return 0;
        nd = n;
        k = g + 1;
        if (k < len && p[k] == ' ')
            k++;
        if (k >= len || !is_digit((unsigned char)p[k]))
            return 0;
        area_paren = 1;
    }
    /* The groups after the area code (or all of them), one separator kind. */
    size_t groups[8], ends[8], ng = 0, total[8];
    char sep = 0;
    while (k < len && ng < 8) {
        size_t g = k;
        while (g < len && is_digit((unsigned char)p[g]) && g - k < 16)
            g++;
        if (g == k)
            break;
        groups[ng] = g - k;
        nd += g - k;
        total[ng] = nd;
        ends[ng++] = g;
        k = g;
        if (nd > 15 || k + 1 >= len || !is_digit((unsigned char)p[k + 1]))
            break;
        char c = p[k];
        if (!(is_phone_sep((unsigned char)c) || (c == '/' && !area_paren)) || (sep != 0 && c != sep))
            break;
        sep = c;
        k++;
    }
    if (ng == 0)
        return 0;
    if (area_paren) {
        /* "(415) 555-2671": 9 to 12 digits in all. */
        for (size_t g = ng; g-- > 0;)
            if (total[g] >= 9 && total[g] <= 12 && (g < ng - 1 || ends_number(p, len, ends[g])))
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
            if (total[g] >= min && total[g] <= max && (g < ng - 1 || ends_number(p, len, ends[g])))
                return ends[g];
        }
        return 0;
    }
    /* NANP, with or without a leading "1" group; the number must end there. */
    size_t f = groups[0] == 1 && p[i] == '1' ? 1 : 0;
    if (ng != f + 3 || sep == '/' || groups[f] != 3 || groups[f + 1] != 3 || groups[f + 2] != 4)
        return 0;
    unsigned char area = (unsigned char)p[f ? ends[0] + 1 : i];
    if (area < '2' || !ends_number(p, len, ends[ng - 1]))
        return 0;
    /* "123-456-7890-12" is a part number, not a phone. */
    size_t e = ends[ng - 1];
    if (e + 1 < len && is_phone_sep((unsigned char)p[e]) && is_digit((unsigned char)p[e + 1]))
        return 0;
    return e;
}

/* --- the scan ------------------------------------------------------------ */

void gyre_redact_scan_init(gyre_redact_scan_t *s, unsigned kinds, const char *p, size_t len)
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
 * Where the next e-mail region begins: the run of local-part characters
 * before the next '@' at or after `pos` (found once per '@'), or the end of
 * the text.  An address can begin only there: from anywhere else the run of
 * local-part characters ends short of the '@'.
 */
static size_t email_region(gyre_redact_scan_t *s, size_t pos)
{
    if (!(s->kinds & GYRE_REDACT_EMAIL))
        return s->len;
    if (!s->at_known || s->next_at < pos) {
        const char *at = memchr(s->p + pos, '@', s->len - pos);
        size_t b = at != NULL ? (size_t)(at - s->p) : s->len;
        s->next_at = b;
        while (at != NULL && b > pos && is_local((unsigned char)s->p[b - 1]))
            b--;
        s->at_run = b;
        s->at_known = 1;
    }
    return s->at_run;
}

/*
 * Whether p[i] is inside a JSON string, following the text's quotes (not
 * those of escapes) from where the last call stopped: asked only for a card
 * made of digits alone, in increasing order of i.
 */
static int in_string_at(gyre_redact_scan_t *s, size_t i)
{
    const char *p = s->p;
    size_t k = s->str_pos;
    int in = s->in_string;
    while (k < i) {
        if (p[k] == '\\') {
            k += escape_len(p, s->len, k);
            continue;
        }
        if (p[k] == '"')
            in = !in;
        k++;
    }
    s->str_pos = k;
    s->in_string = in;
    return in;
}

/* A key, card or phone that begins at `i`, after a separator, or 0. */
static int match_after_separator(gyre_redact_scan_t *s, size_t i, gyre_redact_match_t *m)
{
    const char *p = s->p;
    size_t len = s->len, e, start;
    unsigned char c = (unsigned char)p[i];
    if ((s->kinds & GYRE_REDACT_API_KEY) && is_alpha(c) && i >= s->key_skip) {
        if ((e = match_key(p, len, i, &start, &s->key_skip)) != 0) {
            *m = (gyre_redact_match_t){start, e, GYRE_REDACT_API_KEY};
            return 1;
        }
    }
    if (!(is_digit(c) || c == '+' || c == '(') || after_decimal_point(p, i))
        return 0;
    int digits_only = 0;
    if ((s->kinds & GYRE_REDACT_CARD) && c >= '2' && c <= '6' && (e = match_card(p, len, i, &digits_only)) != 0 &&
        !(digits_only && s->json && !in_string_at(s, i))) {
        *m = (gyre_redact_match_t){i, e, GYRE_REDACT_CARD};
        return 1;
    }
    if (s->kinds & GYRE_REDACT_PHONE) {
        if (c == '+')
            e = i + 1 < len && is_digit((unsigned char)p[i + 1]) ? match_international(p, len, i) : 0;
        else
            e = match_national(p, len, i);
        if (e != 0) {
            *m = (gyre_redact_match_t){i, e, GYRE_REDACT_PHONE};
            return 1;
        }
    }
    return 0;
}

/* A match that begins at `i` (after a separator unless prev_word), or 0: the e-mail region's byte-by-byte step. */
static int match_at(gyre_redact_scan_t *s, size_t i, int prev_word, int prev_local, gyre_redact_match_t *m)
{
    size_t e, start;
    unsigned char c = (unsigned char)s->p[i];
    /* The region's run reaches the '@' from any of its bytes (email_region() found it from at most here). */
    if ((s->kinds & GYRE_REDACT_EMAIL) && !prev_local && is_local(c) && i >= s->at_run && i < s->next_at &&
        (e = match_email(s->p, s->len, i, &start)) != 0) {
        *m = (gyre_redact_match_t){start, e, GYRE_REDACT_EMAIL};
        return 1;
    }
    return !prev_word && match_after_separator(s, i, m);
}

/*
 * Whether a card or phone may begin at p[i] (a digit, '+' or '('), from
 * what the matchers need: '+' and at least 8 digits, '(' and a digit, a
 * card's 13 digits (from 2 to 6), or at least 9 digits (a national phone)
 * in groups joined by single separators, the way the matchers read them.
 * Most numbers in a text ("2024-03-18", "0.734", "1733059200123") end here.
 */
static int number_may_start(const char *p, size_t len, size_t i)
{
    unsigned char c = (unsigned char)p[i];
    if (c == '+' || c == '(') {
        if (i + 1 >= len || !is_digit((unsigned char)p[i + 1]))
            return 0;
        if (c == '(')
            return 1;
        /* International numbers also take "(0)" groups: only the first group is looked at. */
        size_t d = i + 1;
        while (d < len && is_digit((unsigned char)p[d]) && d - i <= 8)
            d++;
        return d - i > 8 || (d + 1 < len && (p[d] == ' ' || p[d] == '-' || p[d] == '.') &&
                             (is_digit((unsigned char)p[d + 1]) || p[d + 1] == '('));
    }
    /* One group is a card or nothing (13 to 19 digits from 2 to 6); two or more, a card or a national phone. */
    size_t k = i, digits = 0, groups = 0;
    for (;;) {
        size_t g = k;
        while (k < len && is_digit((unsigned char)p[k]))
            k++;
        digits += k - g;
        if (++groups >= 2 && digits >= 9)
            return 1;
        if (!(k + 1 < len && (p[k] == ' ' || p[k] == '-' || p[k] == '.' || p[k] == '/') &&
              is_digit((unsigned char)p[k + 1])))
            break;
        k++;
    }
    return groups == 1 && digits >= 13 && c >= '2' && c <= '6';
}

/* 64 bytes of a text as bit masks, bit i for byte i: what the pre-filter looks at. */
typedef struct window {
    uint64_t word;     /* W */
    uint64_t key_body; /* K */
    uint64_t digit;    /* [0-9] */
    uint64_t start;    /* S less the digits: + ( b B */
    uint64_t escape;   /* E */
} window_t;

static void read_window(const char *p, size_t avail, window_t *w)
{
    unsigned char tail[64];
    const unsigned char *q = (const unsigned char *)p;
    if (avail < 64) {
        /* The last bytes: zeros after them are in no class. */
        memset(tail, 0, sizeof(tail));
        memcpy(tail, p, avail);
        q = tail;
    }
#ifdef REDACT_SSE2
    const __m128i a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    const __m128i case_bit = _mm_set1_epi8(0x20), underscore = _mm_set1_epi8('_'), dash = _mm_set1_epi8('-');
    const __m128i plus = _mm_set1_epi8('+'), paren = _mm_set1_epi8('('), b = _mm_set1_epi8('b');
    const __m128i backslash = _mm_set1_epi8('\\');
    uint64_t word = 0, key_body = 0, digits = 0, start = 0, escape = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * k));
        /* Unsigned range checks: x - lo <= hi - lo, with min_epu8 as the comparison. */
        __m128i lower = _mm_or_si128(v, case_bit);
        __m128i la = _mm_sub_epi8(lower, a), d0 = _mm_sub_epi8(v, zero);
        __m128i letter = _mm_cmpeq_epi8(_mm_min_epu8(la, z), la);
        __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(d0, nine), d0);
        __m128i wv = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(v, underscore));
        __m128i kv = _mm_or_si128(wv, _mm_cmpeq_epi8(v, dash));
        __m128i sv =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, plus), _mm_cmpeq_epi8(v, paren)), _mm_cmpeq_epi8(lower, b));
        __m128i ev = _mm_cmpeq_epi8(v, backslash);
        unsigned shift = 16 * (unsigned)k;
        word |= (uint64_t)(unsigned)_mm_movemask_epi8(wv) << shift;
        key_body |= (uint64_t)(unsigned)_mm_movemask_epi8(kv) << shift;
        digits |= (uint64_t)(unsigned)_mm_movemask_epi8(digit) << shift;
        start |= (uint64_t)(unsigned)_mm_movemask_epi8(sv) << shift;
        escape |= (uint64_t)(unsigned)_mm_movemask_epi8(ev) << shift;
    }
    *w = (window_t){word, key_body, digits, start, escape};
#else
    *w = (window_t){0, 0, 0, 0, 0};
    for (unsigned i = 0; i < 64; i++) {
        unsigned c = classes[q[i]];
        w->word |= (uint64_t)(c & W) << i;
        w->key_body |= (uint64_t)((c & K) != 0) << i;
        w->digit |= (uint64_t)is_digit(q[i]) << i;
        w->start |= (uint64_t)((c & S) != 0 && !is_digit(q[i])) << i;
        w->escape |= (uint64_t)((c & E) != 0) << i;
    }
#endif
}

#ifdef REDACT_WIDE
/* read_window() 32 bytes at a time; the caller checks that the CPU has AVX2. */
__attribute__((target("avx2"))) static inline void read_window_avx2(const char *p, size_t avail, window_t *w)
{
    unsigned char tail[64];
    const unsigned char *q = (const unsigned char *)p;
    if (avail < 64) {
        memset(tail, 0, sizeof(tail));
        memcpy(tail, p, avail);
        q = tail;
    }
    const __m256i a = _mm256_set1_epi8('a'), z = _mm256_set1_epi8(25), zero = _mm256_set1_epi8('0');
    const __m256i nine = _mm256_set1_epi8(9), case_bit = _mm256_set1_epi8(0x20);
    const __m256i underscore = _mm256_set1_epi8('_'), dash = _mm256_set1_epi8('-'), plus = _mm256_set1_epi8('+');
    const __m256i paren = _mm256_set1_epi8('('), b = _mm256_set1_epi8('b'), backslash = _mm256_set1_epi8('\\');
    uint64_t word = 0, key_body = 0, digits = 0, start = 0, escape = 0;
    for (int k = 0; k < 2; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * k));
        __m256i lower = _mm256_or_si256(v, case_bit);
        __m256i la = _mm256_sub_epi8(lower, a), d0 = _mm256_sub_epi8(v, zero);
        __m256i letter = _mm256_cmpeq_epi8(_mm256_min_epu8(la, z), la);
        __m256i digit = _mm256_cmpeq_epi8(_mm256_min_epu8(d0, nine), d0);
        __m256i wv = _mm256_or_si256(_mm256_or_si256(letter, digit), _mm256_cmpeq_epi8(v, underscore));
        __m256i kv = _mm256_or_si256(wv, _mm256_cmpeq_epi8(v, dash));
        __m256i sv = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, plus), _mm256_cmpeq_epi8(v, paren)),
                                     _mm256_cmpeq_epi8(lower, b));
        __m256i ev = _mm256_cmpeq_epi8(v, backslash);
        unsigned shift = 32 * (unsigned)k;
        word |= (uint64_t)(uint32_t)_mm256_movemask_epi8(wv) << shift;
        key_body |= (uint64_t)(uint32_t)_mm256_movemask_epi8(kv) << shift;
        digits |= (uint64_t)(uint32_t)_mm256_movemask_epi8(digit) << shift;
        start |= (uint64_t)(uint32_t)_mm256_movemask_epi8(sv) << shift;
        escape |= (uint64_t)(uint32_t)_mm256_movemask_epi8(ev) << shift;
    }
    *w = (window_t){word, key_body, digits, start, escape};
}
#endif

#ifdef REDACT_WIDE
/* read_window() in one 64-byte vector, its comparisons giving the masks; the caller checks for AVX-512BW. */
__attribute__((target("avx512bw"))) static inline void read_window_avx512(const char *p, size_t avail, window_t *w)
{
    unsigned char tail[64];
    const unsigned char *q = (const unsigned char *)p;
    if (avail < 64) {
        memset(tail, 0, sizeof(tail));
        memcpy(tail, p, avail);
        q = tail;
    }
    __m512i v = _mm512_loadu_si512((const void *)q);
    __m512i lower = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
    __mmask64 letter = _mm512_cmple_epu8_mask(_mm512_sub_epi8(lower, _mm512_set1_epi8('a')), _mm512_set1_epi8(25));
    __mmask64 digit = _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('0')), _mm512_set1_epi8(9));
    uint64_t word = letter | digit | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('_'));
    w->word = word;
    w->key_body = word | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('-'));
    w->digit = digit;
    w->start = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('+')) | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('(')) |
               _mm512_cmpeq_epi8_mask(lower, _mm512_set1_epi8('b'));
    w->escape = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
}
#endif

/* Bit i: bits i to i + 14 are all set, those past the window counting as set (the next one may go on). */
static inline uint64_t runs_of_15(uint64_t x)
{
    x &= (x >> 1) | (~0ull << 63);
    x &= (x >> 2) | (~0ull << 62);
    x &= (x >> 4) | (~0ull << 60);
    x &= (x >> 7) | (~0ull << 57);
    return x;
}

/*
 * Bit i: a digit that opens a chain of at least 9 bytes of digits and
 * single non-digits between digits, which every card (13 digits) and
 * national phone (9 or more) that begins with a digit is: "2024", "0.734,"
 * and "1532.25," are not.  Past the window counts as digits.
 */
static inline uint64_t digit_chains_of_9(uint64_t d)
{
    uint64_t x = d | (~d & ((d >> 1) | (1ull << 63)) & (d << 1));
    uint64_t y = x;
    y &= (y >> 1) | (~0ull << 63);
    y &= (y >> 2) | (~0ull << 62);
    y &= (y >> 4) | (~0ull << 60);
    y &= (x >> 8) | (~0ull << 56);
    return d & y;
}

/* Whether p[q] can open a key: one of the two-byte openings of key_prefix_at(), or AKIA / ASIA. */
static inline int key_may_start(const char *p, size_t len, size_t q)
{
    if (q + 1 >= len)
        return 0;
    switch ((unsigned)(unsigned char)p[q] << 8 | (unsigned char)p[q + 1]) {
    case 's' << 8 | 'k':
    case 'r' << 8 | 'k':
    case 'g' << 8 | 'h':
    case 'g' << 8 | 'i':
    case 'g' << 8 | 's':
    case 'g' << 8 | 'l':
    case 'x' << 8 | 'o':
    case 'x' << 8 | 'a':
    case 'A' << 8 | 'I':
    case 'A' << 8 | 'K':
    case 'A' << 8 | 'S':
    case 'h' << 8 | 'f':
    case 'n' << 8 | 'p':
    case 'p' << 8 | 'p':
    case 'r' << 8 | '8': return 1;
    default: return 0;
    }
}

/* Whether the pre-filter's candidate at p[q] (after a separator) is worth the matchers, and the match if any. */
static inline int try_candidate(gyre_redact_scan_t *s, size_t q, int long_run, gyre_redact_match_t *m)
{
    const char *p = s->p;
    unsigned char c = (unsigned char)p[q];
    if (is_alpha(c)) {
        /* A key with a known prefix, in a long enough run, or "Bearer ". */
        if (!(s->kinds & GYRE_REDACT_API_KEY))
            return 0;
        if ((c | 0x20) == 'b') {
            if (!(q + 7 < s->len && memcmp(p + q + 1, "earer ", 6) == 0))
                return 0;
        } else if (!(long_run && (classes[c] & P) && key_may_start(p, s->len, q))) {
            return 0;
        }
    } else if (is_digit(c) || c == '+' || c == '(') {
        if (!(s->kinds & (GYRE_REDACT_CARD | GYRE_REDACT_PHONE)) || !number_may_start(p, s->len, q))
            return 0;
    } else {
        return 0;
    }
    return match_after_separator(s, q, m);
}

/*
 * The pre-filter, from `from` (after a word character if prev_word) to
 * `stop`: escapes and candidates in order, 64 bytes at a time.  Returns 1
 * and *m at the first match, or 0 and in *x the first position at or after
 * `stop` that is not inside an escape, with the scan's state there.
 */
static inline __attribute__((always_inline)) int scan_fast_with(gyre_redact_scan_t *s, size_t from, size_t stop,
                                                                int prev_word, gyre_redact_match_t *m, size_t *x,
                                                                int *x_word, int *x_local, int reader)
{
    const char *p = s->p;
    size_t len = s->len, esc_end = 0; /* where the last escape ended: a separator */
    int keys = (s->kinds & GYRE_REDACT_API_KEY) != 0;
    int any = (s->kinds & (GYRE_REDACT_API_KEY | GYRE_REDACT_CARD | GYRE_REDACT_PHONE)) != 0;
    uint64_t word_before = (uint64_t)(prev_word != 0);
    (void)reader; /* 0: read_window(), 1: read_window_avx2(), 2: read_window_avx512() */
    for (size_t b = from; b < stop; b += 64) {
        window_t w;
#ifdef REDACT_WIDE
        if (reader == 2)
            read_window_avx512(p + b, len - b, &w);
        else if (reader == 1)
            read_window_avx2(p + b, len - b, &w);
        else
#endif
            read_window(p + b, len - b, &w);
        /* after: bit i when byte i follows a separator, that is not a word character. */
        uint64_t after = ~((w.word << 1) | word_before), live = ~0ull;
        word_before = w.word >> 63;
        if (esc_end > from && esc_end >= b) {
            /* An escape from the last window runs into this one: its bytes begin nothing, the next byte may. */
            live = ~0ull << (esc_end - b);
            after |= 1ull << (esc_end - b);
        }
        uint64_t long_runs = keys ? runs_of_15(w.key_body) : 0;
        uint64_t raw = any ? long_runs | digit_chains_of_9(w.digit) | w.start : 0;
        uint64_t in_range = stop - b >= 64 ? ~0ull : (1ull << (stop - b)) - 1;
        /* Escapes first, in order (a backslash inside one starts none): separators, their bytes begin nothing. */
        uint64_t esc = w.escape & live & in_range;
        while (esc != 0) {
            unsigned t = (unsigned)__builtin_ctzll(esc);
            esc_end = b + t + escape_len(p, len, b + t);
            size_t d = esc_end - b;
            if (d >= 64) {
                live &= (1ull << t) - 1;
                break;
            }
            live &= ~((1ull << d) - (2ull << t));
            after |= 1ull << d;
            esc &= ~0ull << d;
        }
        uint64_t cand = raw & after & live & in_range;
        while (cand != 0) {
            unsigned t = (unsigned)__builtin_ctzll(cand);
            uint64_t bit = 1ull << t;
            cand &= cand - 1;
            if (try_candidate(s, b + t, (long_runs & bit) != 0, m))
                return 1;
        }
    }
    size_t at = esc_end > stop ? esc_end : stop;
    *x = at;
    if (at == esc_end) {
        *x_word = *x_local = 0;
    } else {
        *x_word = is_word((unsigned char)p[at - 1]);
        *x_local = is_local((unsigned char)p[at - 1]);
    }
    return 0;
}

/* scan_fast_with() compiled once per reader, so that the reader and its constants are inlined into its loop. */
#ifdef REDACT_WIDE
__attribute__((target("avx512bw"))) static int scan_fast_avx512(gyre_redact_scan_t *s, size_t from, size_t stop,
                                                                int prev_word, gyre_redact_match_t *m, size_t *x,
                                                                int *x_word, int *x_local)
{
    return scan_fast_with(s, from, stop, prev_word, m, x, x_word, x_local, 2);
}

__attribute__((target("avx2"))) static int scan_fast_avx2(gyre_redact_scan_t *s, size_t from, size_t stop,
                                                          int prev_word, gyre_redact_match_t *m, size_t *x, int *x_word,
                                                          int *x_local)
{
    return scan_fast_with(s, from, stop, prev_word, m, x, x_word, x_local, 1);
}
#endif

static int scan_fast(gyre_redact_scan_t *s, size_t from, size_t stop, int prev_word, gyre_redact_match_t *m, size_t *x,
                     int *x_word, int *x_local)
{
#ifdef REDACT_WIDE
    if (__builtin_cpu_supports("avx512bw"))
        return scan_fast_avx512(s, from, stop, prev_word, m, x, x_word, x_local);
    if (__builtin_cpu_supports("avx2"))
        return scan_fast_avx2(s, from, stop, prev_word, m, x, x_word, x_local);
#endif
    return scan_fast_with(s, from, stop, prev_word, m, x, x_word, x_local, 0);
}

int gyre_redact_scan_next(gyre_redact_scan_t *s, gyre_redact_match_t *m)
{
    /* The loop keeps its state in locals: the text's bytes could alias *s, which would reload it per byte. */
    const char *p = s->p;
    size_t len = s->len, pos = s->kinds != 0 ? s->pos : s->len;
    int prev_word = s->prev_word, prev_local = s->prev_local, found = 0;
    while (pos < len && !found) {
        size_t region = email_region(s, pos);
        if (region > pos) {
            if (scan_fast(s, pos, region, prev_word, m, &pos, &prev_word, &prev_local)) {
                pos = m->end;
                prev_word = prev_local = 0;
                found = 1;
            }
            continue;
        }
        /* In the run before an '@', through the '@': every byte, as the scan visited them before the pre-filter. */
        size_t end = s->next_at + 1;
        while (pos < end) {
            if (prev_word) {
                /* Inside a word nothing begins (each match starts after a separator): skip the rest of it. */
                while (pos < end && is_word((unsigned char)p[pos]))
                    pos++;
                prev_local = 1;
                if (pos == end)
                    break;
            }
            unsigned char c = (unsigned char)p[pos];
            if (c == '\\') {
                pos += escape_len(p, len, pos);
                prev_word = prev_local = 0;
                continue;
            }
            if ((is_local(c) || c == '(') && match_at(s, pos, prev_word, prev_local, m)) {
                /* What follows a match is a separator (each matcher checks), so the scan resumes at a boundary. */
                pos = m->end;
                prev_word = prev_local = 0;
                found = 1;
                break;
            }
            prev_word = is_word(c);
            prev_local = is_local(c);
            pos++;
        }
    }
    s->pos = pos;
    s->prev_word = prev_word;
    s->prev_local = prev_local;
    return found;
}

const char *gyre_redact_token(unsigned kind)
{
    switch (kind) {
    case GYRE_REDACT_EMAIL: return "[email]";
    case GYRE_REDACT_PHONE: return "[phone]";
    case GYRE_REDACT_CARD: return "[card]";
    case GYRE_REDACT_API_KEY: return "[api_key]";
    default: return "";
    }
}

size_t gyre_redact_bound(size_t len)
{
    return len + len / 6 + 1;
}

static size_t put(char *out, size_t cap, size_t o, const char *p, size_t n)
{
    if (o < cap)
        memcpy(out + o, p, n < cap - o ? n : cap - o);
    return o + n;
}

size_t gyre_redact(unsigned kinds, const char *in, size_t len, char *out, size_t cap, size_t *count)
{
    gyre_redact_scan_t s;
    gyre_redact_match_t m;
    size_t o = 0, from = 0, n = 0;
    gyre_redact_scan_init(&s, kinds, in, len);
    while (gyre_redact_scan_next(&s, &m)) {
        const char *tok = gyre_redact_token(m.kind);
        o = put(out, cap, o, in + from, m.start - from);
        o = put(out, cap, o, tok, strlen(tok));
        from = m.end;
        n++;
    }
    o = put(out, cap, o, in + from, len - from);
    if (count != NULL)
        *count = n;
    return o < cap ? o : cap;
}
