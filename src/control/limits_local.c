/*
 * The in-memory limits backend: exact for one process (every worker shares
 * it), the table of functions that a Redis backend will also fill
 * (docs/limits.md, "Another backend").
 *
 * Each (level, id) is an entry with its own mutex; a reservation locks the
 * entries of the levels that apply in one order (key, team, agent, user),
 * checks every limit of every level, and only then takes from all of them, so
 * a level that refuses leaves nothing behind on the others, and two workers
 * never see half of each other's reservation.  The locks are per id: two
 * requests of different keys, teams, agents and users never wait on each
 * other.  docs/decisions.md and bench/access give the cost (tens of ns
 * uncontended).
 *
 * The counters:
 * - rpm and tpm are GCRA buckets (a token bucket written as the time at which
 *   it is full again, `tat`): a limit of N per minute admits N at once, then
 *   one more every 60/N s; exact, O(1), and the reset time is the debt.
 * - live reservations (the slots in flight and the reserved spend) sit in a
 *   ring of RING buckets by the time they were made, each an eighth of
 *   `reservation_ttl` wide: a bucket older than the ring is expired and counts
 *   for nothing, so a reservation that is never settled is given back between
 *   ttl and 9/8 ttl after it was made, without a timer or a list.
 * - spend is per UTC calendar period, in nano-dollars; a settle lands in the
 *   period current when it settles.
 *
 * Bounds: at most GYRE_LIMITS_MAX_IDS ids per level are tracked; past it, new
 * ids of that level share one overflow entry (stricter, never looser: they
 * count against each other).  The tables only grow (an entry is a few hundred
 * bytes): 4 levels of 65,536 ids is the memory bound, about 100 MiB at the
 * worst, reached only by that many distinct users or agents.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "control/limits.h"

#define GYRE_LIMITS_MAX_IDS 65536
#define SLOTS (GYRE_LIMITS_MAX_IDS * 2) /* open addressing at most half full */
#define RING 9                          /* 8 buckets of ttl/8 live, plus the one being reused */
#define WINDOW_NS ((int64_t)60 * 1000000000) /* a minute: rpm and tpm */

typedef struct resv_bucket {
    int64_t epoch; /* which ttl/8 slice of time these reservations were made in */
    uint32_t n;    /* slots in flight */
    int64_t nusd;  /* reserved spend */
} resv_bucket_t;

struct gyre_limit_entry {
    pthread_mutex_t mu;
    char id[GYRE_PRINCIPAL_ID_MAX];
    int64_t req_tat_ns, tok_tat_ns; /* GCRA: when the request and token buckets are full again */
    resv_bucket_t ring[RING];
    int period;             /* gyre_budget_period_t of the spend below */
    int64_t period_start_us, period_next_us;
    int64_t spent_nusd;     /* settled in the period */
    unsigned alerted;       /* thresholds already reported in the period */
};

typedef struct level_table {
    struct gyre_limit_entry *_Atomic *slots;
    _Atomic size_t count;
    struct gyre_limit_entry overflow;
} level_table_t;

typedef struct local_state {
    level_table_t levels[GYRE_LIMIT_LEVELS];
} local_state_t;

static void entry_init(struct gyre_limit_entry *e, const char *id)
{
    memset(e, 0, sizeof(*e));
    /* Adaptive: a worker that finds the entry locked spins a little before it sleeps, since the holder is inside
     * a few hundred ns of arithmetic (glibc's PTHREAD_MUTEX_ADAPTIVE_NP). */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&e->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    strncpy(e->id, id, sizeof(e->id) - 1);
    for (int i = 0; i < RING; i++)
        e->ring[i].epoch = INT64_MIN;
}

static void *local_create(void)
{
    local_state_t *s = gyre_calloc(1, sizeof(*s));
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++) {
        s->levels[l].slots = gyre_calloc(SLOTS, sizeof(*s->levels[l].slots));
        entry_init(&s->levels[l].overflow, "(overflow)");
    }
    return s;
}

static void local_destroy(void *state)
{
    local_state_t *s = state;
    if (s == NULL)
        return;
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++) {
        for (size_t i = 0; i < SLOTS; i++) {
            struct gyre_limit_entry *e = s->levels[l].slots[i];
            if (e != NULL) {
                pthread_mutex_destroy(&e->mu);
                free(e);
            }
        }
        free(s->levels[l].slots);
        pthread_mutex_destroy(&s->levels[l].overflow.mu);
    }
    free(s);
}

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/*
 * The entry of `id`, made on first sight when `create`.  Insert-only open addressing with a compare-and-swap per
 * slot: readers take no lock, and an entry, once in, stays at its slot for the life of the process.
 */
static struct gyre_limit_entry *lookup(level_table_t *t, const char *id, int create)
{
    size_t i = (size_t)hash_id(id) & (SLOTS - 1);
    struct gyre_limit_entry *fresh = NULL;
    for (size_t probes = 0; probes < SLOTS; probes++, i = (i + 1) & (SLOTS - 1)) {
        struct gyre_limit_entry *e = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (e == NULL) {
            if (!create)
                return NULL;
            if (fresh == NULL) {
                if (atomic_fetch_add(&t->count, 1) >= GYRE_LIMITS_MAX_IDS) {
                    atomic_fetch_sub(&t->count, 1);
                    return &t->overflow;
                }
                fresh = gyre_malloc(sizeof(*fresh));
                entry_init(fresh, id);
            }
            struct gyre_limit_entry *expected = NULL;
            if (atomic_compare_exchange_strong_explicit(&t->slots[i], &expected, fresh, memory_order_acq_rel,
                                                        memory_order_acquire))
                return fresh;
            e = expected; /* another worker took the slot first: it may be the same id */
        }
        if (strcmp(e->id, id) == 0) {
            if (fresh != NULL) {
                atomic_fetch_sub(&t->count, 1);
                pthread_mutex_destroy(&fresh->mu);
                free(fresh);
            }
            return e;
        }
    }
    return &t->overflow; /* cannot happen: the table is never more than half full */
}

static int has_budget(const gyre_limit_set_t *s)
{
    return s->budget_usd >= 0 && s->budget_period != GYRE_BUDGET_NONE;
}

static int has_any(const gyre_limit_set_t *s)
{
    return s->rpm != 0 || s->tpm != 0 || s->concurrency != 0 || has_budget(s);
}

static int64_t budget_nusd(const gyre_limit_set_t *s)
{
    return (int64_t)(s->budget_usd * (double)GYRE_NUSD_PER_USD + 0.5);
}

/* The entry's spend moves to the period `now` is in (a new one starts at 0, its thresholds unreported). */
static void roll_period(struct gyre_limit_entry *e, const gyre_limit_set_t *s, int64_t now_us)
{
    if (!has_budget(s))
        return;
    /* Most calls fall in the period the entry already has: the calendar (gmtime_r and timegm, a few hundred ns
     * for a month) is read only when they do not. */
    if (e->period == (int)s->budget_period && now_us >= e->period_start_us && now_us < e->period_next_us)
        return;
    int64_t next;
    int64_t start = gyre_limits_period_start(now_us, s->budget_period, &next);
    if (e->period != (int)s->budget_period || e->period_start_us != start) {
        e->period = (int)s->budget_period;
        e->period_start_us = start;
        e->spent_nusd = 0;
        e->alerted = 0;
    }
    e->period_next_us = next;
}

static int64_t slice_us(int64_t ttl_us)
{
    int64_t s = ttl_us / 8;
    return s > 0 ? s : 1;
}

static void live_reserved(const struct gyre_limit_entry *e, int64_t epoch, uint32_t *n, int64_t *nusd)
{
    *n = 0;
    *nusd = 0;
    for (int i = 0; i < RING; i++)
        if (e->ring[i].epoch != INT64_MIN && e->ring[i].epoch <= epoch && epoch - e->ring[i].epoch < RING) {
            *n += e->ring[i].n;
            *nusd += e->ring[i].nusd;
        }
}

/* A bucket's cost of `units` out of `per_minute`, in ns of the minute (exact to the ns). */
static int64_t cost_ns(uint64_t units, uint64_t per_minute)
{
    return (int64_t)(((__int128)units * WINDOW_NS + (per_minute - 1)) / per_minute);
}

static int64_t debt_ns(int64_t tat, int64_t now_ns)
{
    return tat > now_ns ? tat - now_ns : 0;
}

/* Whether one level admits the request; fills `why` when it does not. */
static int level_admits(struct gyre_limit_entry *e, gyre_limit_level_t level, const gyre_limit_set_t *s,
                        uint64_t tokens, int64_t cost_nusd, int64_t epoch, int64_t now_us, gyre_limit_refusal_t *why)
{
    int64_t now_ns = now_us * 1000;
    memset(why, 0, sizeof(*why));
    why->level = level;
    memcpy(why->id, e->id, sizeof(why->id));
    if (s->rpm != 0) {
        int64_t d = debt_ns(e->req_tat_ns, now_ns), c = cost_ns(1, s->rpm);
        if (d + c > WINDOW_NS) {
            why->kind = GYRE_LIMIT_RPM;
            why->limit = s->rpm;
            why->retry_us = (d + c - WINDOW_NS + 999) / 1000;
            return 0;
        }
    }
    if (s->tpm != 0) {
        int64_t d = debt_ns(e->tok_tat_ns, now_ns);
        why->kind = GYRE_LIMIT_TPM;
        why->limit = s->tpm;
        if (tokens > s->tpm) {
            why->too_large = 1;
            why->retry_us = 0;
            return 0;
        }
        int64_t c = cost_ns(tokens, s->tpm);
        if (d + c > WINDOW_NS) {
            why->retry_us = (d + c - WINDOW_NS + 999) / 1000;
            return 0;
        }
    }
    uint32_t n;
    int64_t reserved;
    live_reserved(e, epoch, &n, &reserved);
    if (s->concurrency != 0 && n >= s->concurrency) {
        why->kind = GYRE_LIMIT_CONCURRENCY;
        why->limit = s->concurrency;
        why->retry_us = 1000000; /* a slot frees when a request ends: a second is a fair guess */
        return 0;
    }
    if (has_budget(s) && !s->budget_soft) {
        roll_period(e, s, now_us);
        int64_t b = budget_nusd(s);
        if (e->spent_nusd + reserved + cost_nusd > b) {
            int64_t next = e->period_next_us;
            why->kind = GYRE_LIMIT_BUDGET;
            why->budget_usd = s->budget_usd;
            why->period = s->budget_period;
            why->too_large = cost_nusd > b;
            why->retry_us = next - now_us;
            return 0;
        }
    }
    return 1;
}

static void level_take(struct gyre_limit_entry *e, const gyre_limit_set_t *s, uint64_t tokens, int64_t cost_nusd,
                       int64_t epoch, int64_t now_us)
{
    int64_t now_ns = now_us * 1000;
    if (s->rpm != 0) {
        int64_t base = e->req_tat_ns > now_ns ? e->req_tat_ns : now_ns;
        e->req_tat_ns = base + cost_ns(1, s->rpm);
    }
    if (s->tpm != 0) {
        int64_t base = e->tok_tat_ns > now_ns ? e->tok_tat_ns : now_ns;
        e->tok_tat_ns = base + cost_ns(tokens, s->tpm);
    }
    roll_period(e, s, now_us);
    resv_bucket_t *b = &e->ring[epoch % RING];
    if (b->epoch != epoch) {
        b->epoch = epoch; /* what was here is RING slices old: expired */
        b->n = 0;
        b->nusd = 0;
    }
    b->n++;
    b->nusd += cost_nusd;
}

static void fill_status(const struct gyre_limit_entry *e, const gyre_limit_set_t *s, int64_t now_us,
                        gyre_limit_status_t *st)
{
    int64_t now_ns = now_us * 1000;
    if (s->rpm != 0) {
        int64_t d = debt_ns(e->req_tat_ns, now_ns), c = cost_ns(1, s->rpm);
        st->has_rpm = 1;
        st->rpm = s->rpm;
        st->rpm_remaining = d >= WINDOW_NS ? 0 : (uint64_t)((WINDOW_NS - d) / c);
        st->rpm_reset_us = (d + 999) / 1000;
    }
    if (s->tpm != 0) {
        int64_t d = debt_ns(e->tok_tat_ns, now_ns);
        st->has_tpm = 1;
        st->tpm = s->tpm;
        st->tpm_remaining = d >= WINDOW_NS ? 0 : (uint64_t)((__int128)(WINDOW_NS - d) * s->tpm / WINDOW_NS);
        st->tpm_reset_us = (d + 999) / 1000;
    }
}

static int local_reserve(void *state, const gyre_limit_level_ask_t levels[GYRE_LIMIT_LEVELS], uint64_t tokens,
                         int64_t cost_nusd, int64_t ttl_us, int64_t now_us, gyre_limit_hold_t *hold,
                         gyre_limit_refusal_t *why, gyre_limit_status_t *status)
{
    local_state_t *s = state;
    struct gyre_limit_entry *es[GYRE_LIMIT_LEVELS] = {NULL};
    int64_t epoch = now_us / slice_us(ttl_us);
    memset(hold, 0, sizeof(*hold));
    if (status != NULL)
        memset(status, 0, sizeof(*status));
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++)
        if (levels[l].id != NULL && has_any(&levels[l].set))
            es[l] = lookup(&s->levels[l], levels[l].id, 1);
    /* Every level's lock, in level order (the one order every reservation and settle takes them in). */
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++)
        if (es[l] != NULL)
            pthread_mutex_lock(&es[l]->mu);
    int ok = 1;
    for (int l = 0; l < GYRE_LIMIT_LEVELS && ok; l++)
        if (es[l] != NULL)
            ok = level_admits(es[l], (gyre_limit_level_t)l, &levels[l].set, tokens, cost_nusd, epoch, now_us, why);
    if (ok) {
        for (int l = 0; l < GYRE_LIMIT_LEVELS; l++)
            if (es[l] != NULL)
                level_take(es[l], &levels[l].set, tokens, cost_nusd, epoch, now_us);
    }
    /* The key's own standing goes with every answer, a refusal's too (OpenAI's x-ratelimit-* headers). */
    if (status != NULL && es[GYRE_LIMIT_KEY] != NULL)
        fill_status(es[GYRE_LIMIT_KEY], &levels[GYRE_LIMIT_KEY].set, now_us, status);
    for (int l = GYRE_LIMIT_LEVELS - 1; l >= 0; l--)
        if (es[l] != NULL)
            pthread_mutex_unlock(&es[l]->mu);
    if (!ok)
        return -EAGAIN;
    memcpy(hold->entries, es, sizeof(es));
    hold->epoch = epoch;
    hold->tokens = tokens;
    hold->cost_nusd = cost_nusd;
    hold->active = 1;
    return 0;
}

static void local_settle(void *state, gyre_limit_hold_t *hold, uint64_t tokens, int64_t cost_nusd,
                         const gyre_limit_level_ask_t levels[GYRE_LIMIT_LEVELS], int64_t ttl_us, int64_t now_us,
                         unsigned crossed[GYRE_LIMIT_LEVELS])
{
    (void)state;
    (void)ttl_us;
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++)
        crossed[l] = 0;
    if (!hold->active)
        return;
    hold->active = 0;
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++) {
        struct gyre_limit_entry *e = hold->entries[l];
        if (e == NULL)
            continue;
        const gyre_limit_set_t *s = &levels[l].set;
        pthread_mutex_lock(&e->mu);
        resv_bucket_t *b = &e->ring[hold->epoch % RING];
        if (b->epoch == hold->epoch) { /* else it expired, and was given back then */
            b->n--;
            b->nusd -= hold->cost_nusd;
        }
        /* The token bucket takes the difference between what was used and what was reserved. */
        if (s->tpm != 0 && tokens != hold->tokens) {
            int64_t d = tokens > hold->tokens ? cost_ns(tokens - hold->tokens, s->tpm)
                                              : -cost_ns(hold->tokens - tokens, s->tpm);
            e->tok_tat_ns += d;
        }
        if (has_budget(s)) {
            roll_period(e, s, now_us);
            e->spent_nusd += cost_nusd;
            int64_t budget = budget_nusd(s);
            static const unsigned pct[3] = {50, 80, 100};
            for (int i = 0; i < 3; i++) {
                unsigned bit = 1u << i;
                if (!(e->alerted & bit) && (__int128)e->spent_nusd * 100 >= (__int128)budget * pct[i]) {
                    e->alerted |= bit;
                    crossed[l] |= bit;
                }
            }
        }
        pthread_mutex_unlock(&e->mu);
    }
}

static int local_usage(void *state, gyre_limit_level_t level, const char *id, const gyre_limit_set_t *set,
                       int64_t ttl_us, int64_t now_us, gyre_limit_usage_t *out)
{
    local_state_t *s = state;
    memset(out, 0, sizeof(*out));
    struct gyre_limit_entry *e = lookup(&s->levels[level], id, 0);
    if (e == NULL)
        return -ENOENT;
    int64_t now_ns = now_us * 1000, epoch = now_us / slice_us(ttl_us);
    pthread_mutex_lock(&e->mu);
    if (set != NULL) {
        roll_period(e, set, now_us);
        if (set->rpm != 0)
            out->requests_in_window =
                (uint64_t)(((__int128)debt_ns(e->req_tat_ns, now_ns) * set->rpm + WINDOW_NS - 1) / WINDOW_NS);
        if (set->tpm != 0) {
            __int128 d = debt_ns(e->tok_tat_ns, now_ns);
            out->tokens_in_window = (uint64_t)((d * set->tpm + WINDOW_NS - 1) / WINDOW_NS);
        }
    }
    live_reserved(e, epoch, &out->inflight, &out->reserved_nusd);
    out->spent_nusd = e->spent_nusd;
    out->period_start_us = e->period_start_us;
    out->alerted = e->alerted;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

const gyre_limits_backend_t gyre_limits_local = {
    .name = "local",
    .create = local_create,
    .destroy = local_destroy,
    .reserve = local_reserve,
    .settle = local_settle,
    .usage = local_usage,
};
