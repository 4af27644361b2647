/* Key pools: choosing a provider key, 429 rests, Retry-After (see keys.h). */
#include "route/keys.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "route/override.h"

void gyre_keypool_init(gyre_keypool_t *kp, const gyre_provider_conf_t *conf)
{
    kp->conf = conf;
    kp->overrides = NULL;
    kp->provider = 0;
    kp->nkeys = conf->nkeys > 0 ? conf->nkeys : 1;
    kp->keys = gyre_calloc(kp->nkeys, sizeof(*kp->keys));
    for (size_t i = 0; i < kp->nkeys; i++)
        gyre_breaker_init(&kp->keys[i].breaker);
    kp->next = 0;
}

void gyre_keypool_dispose(gyre_keypool_t *kp)
{
    free(kp->keys);
    kp->keys = NULL;
    kp->nkeys = 0;
}

static unsigned key_weight(const gyre_keypool_t *kp, size_t i)
{
    if (kp->conf->key_weights == NULL || i >= kp->conf->nkeys)
        return 1;
    return kp->conf->key_weights[i];
}

void gyre_keypool_set_overrides(gyre_keypool_t *kp, const struct gyre_overrides *o, size_t provider)
{
    kp->overrides = o;
    kp->provider = provider;
}

/* Whether key i could take a call now, overrides aside. */
static int key_ready(const gyre_keypool_t *kp, size_t i, uint64_t now_ms)
{
    const gyre_key_state_t *k = &kp->keys[i];
    return now_ms >= k->cooldown_until_ms && gyre_breaker_available(&k->breaker, &kp->conf->breaker, now_ms);
}

/*
 * Whether key i could take a call now.  A provider an alert holds open has none (as if every breaker were
 * open); a key an alert took out (`rotate_key`) is skipped like a resting key, unless it is the only ready one:
 * the override moves traffic to the other keys, it never leaves the provider without one.
 */
static int key_usable(const gyre_keypool_t *kp, size_t i, uint64_t now_ms)
{
    if (kp->overrides != NULL && gyre_overrides_provider_open(kp->overrides, kp->provider))
        return 0;
    if (!key_ready(kp, i, now_ms))
        return 0;
    if (kp->overrides == NULL || !gyre_overrides_key_out(kp->overrides, kp->provider, i))
        return 1;
    for (size_t j = 0; j < kp->nkeys; j++)
        if (j != i && key_ready(kp, j, now_ms) && !gyre_overrides_key_out(kp->overrides, kp->provider, j))
            return 0;
    return 1;
}

int gyre_keypool_available(const gyre_keypool_t *kp, uint64_t now_ms)
{
    for (size_t i = 0; i < kp->nkeys; i++)
        if (key_usable(kp, i, now_ms))
            return 1;
    return 0;
}

/*
 * Which usable keys one pick chooses among: all of them but `exclude` (when
 * another is usable), and of those only the ones with a weight, unless none
 * has one (`standby`: then the weight-0 keys stand in, each as weight 1).
 */
typedef struct pick_set {
    int exclude;
    int standby;
} pick_set_t;

static int in_set(const gyre_keypool_t *kp, const pick_set_t *s, size_t i, uint64_t now_ms)
{
    if ((long long)i == s->exclude || !key_usable(kp, i, now_ms))
        return 0;
    return s->standby || key_weight(kp, i) > 0;
}

static unsigned set_weight(const gyre_keypool_t *kp, const pick_set_t *s, size_t i)
{
    return s->standby ? 1 : key_weight(kp, i);
}

/* Fills `s`; returns 0 when no key at all is usable. */
static int make_set(const gyre_keypool_t *kp, uint64_t now_ms, int exclude, pick_set_t *s)
{
    int any = 0, other = 0, weighted = 0;
    for (size_t i = 0; i < kp->nkeys; i++) {
        if (!key_usable(kp, i, now_ms))
            continue;
        any = 1;
        if ((long long)i != exclude)
            other = 1;
    }
    if (!any)
        return 0;
    s->exclude = other ? exclude : -1;
    for (size_t i = 0; i < kp->nkeys; i++)
        if ((long long)i != s->exclude && key_usable(kp, i, now_ms) && key_weight(kp, i) > 0)
            weighted = 1;
    s->standby = !weighted;
    return 1;
}

static long pick_round_robin(gyre_keypool_t *kp, const pick_set_t *s, uint64_t now_ms)
{
    for (size_t k = 0; k < kp->nkeys; k++) {
        size_t i = (kp->next + k) % kp->nkeys;
        if (in_set(kp, s, i, now_ms)) {
            kp->next = (i + 1) % kp->nkeys;
            return (long)i;
        }
    }
    return -1;
}

/*
 * nginx's smooth weighted round robin: every candidate gains its weight, the
 * one with the most (the first on a tie) is chosen and pays back the total.
 * Over any stretch where the candidates stay the same, each key gets exactly
 * its share, spread out rather than in runs (3:1 gives a a b a).
 */
static long pick_weighted(gyre_keypool_t *kp, const pick_set_t *s, uint64_t now_ms)
{
    long best = -1;
    long long total = 0;
    for (size_t i = 0; i < kp->nkeys; i++) {
        if (!in_set(kp, s, i, now_ms))
            continue;
        unsigned w = set_weight(kp, s, i);
        kp->keys[i].wrr_current += (int)w;
        total += w;
        if (best < 0 || kp->keys[i].wrr_current > kp->keys[best].wrr_current)
            best = (long)i;
    }
    if (best >= 0)
        kp->keys[best].wrr_current -= (int)total;
    return best;
}

/*
 * Weighted rendezvous hashing: each key scores w / -ln(u), u uniform in (0,1)
 * from hashing the session with the key's id, and the highest score wins.  A
 * key's score does not depend on the others, so a key becoming unusable
 * moves only the sessions it held, and they come back when it does.
 */
static long pick_affinity(const gyre_keypool_t *kp, const pick_set_t *s, uint64_t now_ms, uint64_t affinity)
{
    long best = -1;
    double best_score = 0;
    for (size_t i = 0; i < kp->nkeys; i++) {
        if (!in_set(kp, s, i, now_ms))
            continue;
        const char *id = kp->conf->key_ids != NULL && i < kp->conf->nkeys ? kp->conf->key_ids[i] : "";
        uint64_t h = gyre_hash64(id, strlen(id), affinity);
        double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* (0,1): 2^53 steps, never 0 or 1 */
        double score = (double)set_weight(kp, s, i) / -log(u);
        if (best < 0 || score > best_score) {
            best = (long)i;
            best_score = score;
        }
    }
    return best;
}

int gyre_keypool_pick(gyre_keypool_t *kp, uint64_t now_ms, uint64_t affinity, int exclude)
{
    pick_set_t s;
    if (kp->nkeys == 0 || !make_set(kp, now_ms, exclude, &s))
        return -1;
    long i;
    if (affinity != 0)
        i = pick_affinity(kp, &s, now_ms, affinity);
    else if (kp->conf->key_strategy == GYRE_KEYS_WEIGHTED)
        i = pick_weighted(kp, &s, now_ms);
    else
        i = pick_round_robin(kp, &s, now_ms);
    /* The set held only available keys, so acquiring cannot be refused; if it
     * ever were, saying "none" is the safe answer. */
    if (i < 0 || !gyre_breaker_acquire(&kp->keys[i].breaker, &kp->conf->breaker, now_ms))
        return -1;
    return (int)i;
}

static gyre_key_state_t *key_at(gyre_keypool_t *kp, int i)
{
    return i >= 0 && (size_t)i < kp->nkeys ? &kp->keys[i] : NULL;
}

void gyre_keypool_cooldown(gyre_keypool_t *kp, int i, uint64_t until_ms, uint64_t now_ms)
{
    gyre_key_state_t *k = key_at(kp, i);
    if (k == NULL)
        return;
    if (until_ms <= now_ms)
        until_ms = now_ms + GYRE_KEYS_DEFAULT_COOLDOWN_MS;
    else if (until_ms - now_ms > GYRE_KEYS_MAX_COOLDOWN_MS)
        until_ms = now_ms + GYRE_KEYS_MAX_COOLDOWN_MS;
    if (until_ms > k->cooldown_until_ms)
        k->cooldown_until_ms = until_ms;
    gyre_breaker_record(&k->breaker, &kp->conf->breaker, 0, now_ms);
}

void gyre_keypool_record(gyre_keypool_t *kp, int i, int ok, uint64_t now_ms)
{
    gyre_key_state_t *k = key_at(kp, i);
    if (k != NULL)
        gyre_breaker_record(&k->breaker, &kp->conf->breaker, ok, now_ms);
}

void gyre_keypool_release(gyre_keypool_t *kp, int i)
{
    gyre_key_state_t *k = key_at(kp, i);
    if (k != NULL)
        gyre_breaker_release(&k->breaker);
}

/* When key i's breaker will let a call through, at the earliest. */
static uint64_t breaker_ready_ms(const gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms)
{
    if (gyre_breaker_available(b, c, now_ms))
        return now_ms;
    if (b->state == GYRE_BREAKER_OPEN)
        return b->opened_at_ms + c->cooldown_ms;
    return now_ms + 1; /* half-open with the probe out: its answer may come any moment */
}

uint64_t gyre_keypool_next_usable_ms(const gyre_keypool_t *kp, uint64_t now_ms)
{
    /* Held open by an alert: the alert is evaluated each second, so that is the soonest it may close. */
    if (kp->overrides != NULL && gyre_overrides_provider_open(kp->overrides, kp->provider))
        return now_ms + 1000;
    uint64_t best = 0;
    for (size_t i = 0; i < kp->nkeys; i++) {
        const gyre_key_state_t *k = &kp->keys[i];
        if (key_usable(kp, i, now_ms))
            return 0;
        uint64_t ready = breaker_ready_ms(&k->breaker, &kp->conf->breaker, now_ms);
        if (k->cooldown_until_ms > ready)
            ready = k->cooldown_until_ms;
        if (best == 0 || ready < best)
            best = ready;
    }
    return best;
}

/* splitmix64's finaliser (Stafford's Mix13). */
static uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t gyre_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ (uint64_t)n);
}

/* --- Retry-After --------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* delta-seconds, with an optional fraction: "120", "1.5". */
static uint64_t parse_delta(const char *s, const char *end)
{
    uint64_t secs = 0;
    const uint64_t max_secs = GYRE_RETRY_AFTER_MAX_MS / 1000;
    while (s < end && is_digit(*s)) {
        secs = secs * 10 + (uint64_t)(*s++ - '0');
        if (secs > max_secs)
            secs = max_secs + 1; /* saturate: more digits cannot make it smaller */
    }
    uint64_t ms = 0;
    if (s < end && *s == '.') {
        s++;
        if (s == end || !is_digit(*s))
            return 0;
        int place = 100, rest = 0;
        for (; s < end && is_digit(*s); s++) {
            if (place > 0) {
                ms += (uint64_t)(*s - '0') * (uint64_t)place;
                place /= 10;
            } else if (*s != '0') {
                rest = 1;
            }
        }
        ms += (uint64_t)rest; /* a fraction of a millisecond rounds up, so a positive delay never reads as 0 */
    }
    if (s != end)
        return 0;
    if (secs > max_secs)
        return GYRE_RETRY_AFTER_MAX_MS;
    ms += secs * 1000;
    return ms < GYRE_RETRY_AFTER_MAX_MS ? ms : GYRE_RETRY_AFTER_MAX_MS;
}

/* Reads exactly n digits at *s; -1 when they are not there. */
static int digits(const char **s, const char *end, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*s >= end || !is_digit(**s))
            return -1;
        v = v * 10 + (*(*s)++ - '0');
    }
    return v;
}

static int expect(const char **s, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *s) < n || memcmp(*s, lit, n) != 0)
        return 0;
    *s += n;
    return 1;
}

static int month_of(const char **s, const char *end)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (end - *s < 3)
        return -1;
    for (int m = 0; m < 12; m++)
        if (memcmp(*s, names + 3 * m, 3) == 0) {
            *s += 3;
            return m + 1;
        }
    return -1;
}

/* "08:49:37" as seconds into the day; -1 when malformed. */
static long time_of(const char **s, const char *end)
{
    int h = digits(s, end, 2);
    if (h < 0 || h > 23 || !expect(s, end, ":"))
        return -1;
    int m = digits(s, end, 2);
    if (m < 0 || m > 59 || !expect(s, end, ":"))
        return -1;
    int sec = digits(s, end, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second */
        return -1;
    return (long)h * 3600 + m * 60 + sec;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's days_from_civil). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * The three HTTP-date forms, as seconds since the epoch; -1 when malformed:
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime      Sun Nov  6 08:49:37 1994
 */
static long long parse_http_date(const char *s, const char *end)
{
    const char *p = s;
    while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
        p++;
    if (p - s < 3)
        return -1;
    int year, month, day;
    long tod;
    if (expect(&p, end, ", ")) {
        day = digits(&p, end, 2);
        if (day < 0)
            return -1;
        if (expect(&p, end, " ")) {
            if ((month = month_of(&p, end)) < 0 || !expect(&p, end, " ") || (year = digits(&p, end, 4)) < 0)
                return -1;
        } else if (expect(&p, end, "-")) {
            if ((month = month_of(&p, end)) < 0 || !expect(&p, end, "-") || (year = digits(&p, end, 2)) < 0)
                return -1;
            year += year < 70 ? 2000 : 1900; /* two-digit years: 70..99 are the 1900s */
        } else {
            return -1;
        }
        if (!expect(&p, end, " ") || (tod = time_of(&p, end)) < 0 || !expect(&p, end, " GMT"))
            return -1;
    } else if (expect(&p, end, " ")) {
        if ((month = month_of(&p, end)) < 0 || !expect(&p, end, " "))
            return -1;
        if (p < end && *p == ' ') {
            p++;
            day = digits(&p, end, 1);
        } else {
            day = digits(&p, end, 2);
        }
        if (day < 0 || !expect(&p, end, " ") || (tod = time_of(&p, end)) < 0 || !expect(&p, end, " ") ||
            (year = digits(&p, end, 4)) < 0)
            return -1;
    } else {
        return -1;
    }
    if (p != end || day < 1 || day > 31)
        return -1;
    return days_from_civil(year, month, day) * 86400 + tod;
}

uint64_t gyre_retry_after_ms(const char *value, size_t len, long long now_unix)
{
    if (value == NULL)
        return 0;
    const char *s = value, *end = value + len;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (s == end)
        return 0;
    if (is_digit(*s))
        return parse_delta(s, end);
    long long when = parse_http_date(s, end);
    if (when < 0 || when <= now_unix)
        return 0;
    unsigned long long secs = (unsigned long long)(when - now_unix);
    if (secs >= GYRE_RETRY_AFTER_MAX_MS / 1000)
        return GYRE_RETRY_AFTER_MAX_MS;
    return secs * 1000;
}

/* ---- Scrubbing a provider's secrets from relayed text. ---- */

/* len when the secret s[0..len) starts at p (n bytes left), else 0. */
static size_t match_secret(const char *p, size_t n, const char *s, size_t len)
{
    return len >= GYRE_KEYS_SCRUB_MIN && len <= n && p[0] == s[0] && memcmp(p, s, len) == 0 ? len : 0;
}

/* The length of the longest of conf's secrets that starts at p (n bytes left), or 0: each key whole, and
 * each ':'-separated part of it (a Bedrock key is AKID:SECRET[:TOKEN], and each part is sent on its own). */
static size_t secret_at(const gyre_provider_conf_t *conf, const char *p, size_t n)
{
    size_t best = 0;
    for (size_t k = 0; k < conf->nkeys; k++) {
        const char *key = conf->keys[k];
        if (key == NULL)
            continue;
        size_t m = match_secret(p, n, key, strlen(key));
        best = m > best ? m : best;
        if (strchr(key, ':') == NULL)
            continue;
        for (const char *part = key;;) {
            const char *colon = strchr(part, ':');
            m = match_secret(p, n, part, colon != NULL ? (size_t)(colon - part) : strlen(part));
            best = m > best ? m : best;
            if (colon == NULL)
                break;
            part = colon + 1;
        }
    }
    return best;
}

size_t gyre_keys_scrub(const gyre_provider_conf_t *conf, gyre_buf_t *b)
{
    if (conf == NULL || b->len == 0)
        return 0;
    const size_t marker = sizeof(GYRE_KEYS_SCRUB_MARKER) - 1;
    gyre_buf_t out = {0};
    size_t count = 0, from = 0;
    for (size_t i = 0; i < b->len;) {
        size_t len = secret_at(conf, b->base + i, b->len - i);
        if (len == 0) {
            i++;
            continue;
        }
        if (count++ == 0) {
            /* Nothing is allocated until a secret is found.  Each replaced secret is at least
             * GYRE_KEYS_SCRUB_MIN bytes long, so this bound always holds the result. */
            size_t bound = b->len + (b->len / GYRE_KEYS_SCRUB_MIN) * marker;
            gyre_buf_init(&out, bound);
            gyre_buf_reserve(&out, bound < b->len * 2 ? bound : b->len * 2);
        }
        gyre_buf_append(&out, b->base + from, i - from);
        gyre_buf_append(&out, GYRE_KEYS_SCRUB_MARKER, marker);
        i += len;
        from = i;
    }
    if (count == 0)
        return 0;
    gyre_buf_append(&out, b->base + from, b->len - from);
    if (gyre_buf_failed(&out) != 0) {
        /* Cannot happen (the bound above holds the result); if it did, a text that lost a piece could still hold
         * a key, so the whole text goes and the marker stands for it. */
        gyre_buf_dispose(&out);
        gyre_buf_reset(b);
        gyre_buf_append_upto(b, GYRE_KEYS_SCRUB_MARKER, marker);
        return count;
    }
    if (out.max < b->max)
        out.max = b->max;
    gyre_buf_dispose(b);
    *b = out;
    return count;
}
